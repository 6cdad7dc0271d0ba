//! The cluster's certificate authority (kept by the controller in its data directory), and
//! the key a satellite keeps for good.

use std::path::Path;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::{facts, read_text, write_private, CertFacts, Identity, Result, TlsError};

pub const CA_CERT_FILE: &str = "ca.crt";
pub const CA_KEY_FILE: &str = "ca.key";

/// A certificate the CA issued.
#[derive(Debug, Clone)]
pub struct Issued {
    pub pem: String,
    pub der: CertificateDer<'static>,
    pub facts: CertFacts,
}

pub struct ClusterCa {
    key: KeyPair,
    /// The CA certificate rebuilt as an issuer (same name, same key).
    issuer: rcgen::Certificate,
    pem: String,
    der: CertificateDer<'static>,
}

impl std::fmt::Debug for ClusterCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterCa").finish_non_exhaustive()
    }
}

fn random_serial() -> Result<SerialNumber> {
    let mut bytes = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| TlsError::Invalid("no randomness".into()))?;
    bytes[0] &= 0x7f; // a positive number
    bytes[0] |= 0x01; // without a leading zero byte
    Ok(SerialNumber::from_slice(&bytes))
}

fn validity(params: &mut CertificateParams, valid_for: Duration) {
    let now = time::OffsetDateTime::now_utc();
    // An hour back, for clocks a little behind.
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::seconds(valid_for.as_secs() as i64);
}

impl ClusterCa {
    /// A new CA named after `cluster`.
    pub fn generate(cluster: &str) -> Result<ClusterCa> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, format!("Strata cluster CA {cluster}"));
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.serial_number = Some(random_serial()?);
        validity(&mut params, Duration::from_secs(20 * 365 * 86400));
        let cert = params.self_signed(&key)?;
        Self::from_parts(cert.pem(), key)
    }

    fn from_parts(pem: String, key: KeyPair) -> Result<ClusterCa> {
        let issuer = CertificateParams::from_ca_cert_pem(&pem)?.self_signed(&key)?;
        let der = crate::certs_from_pem(&pem)?.remove(0);
        Ok(ClusterCa {
            key,
            issuer,
            pem,
            der,
        })
    }

    /// The CA of `dir` (`ca.crt`, `ca.key`), made there if neither file exists.
    pub fn load_or_create(dir: &Path, cluster: &str) -> Result<ClusterCa> {
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        match (read_text(&cert_path)?, read_text(&key_path)?) {
            (Some(pem), Some(key)) => {
                let key = KeyPair::from_pem(&key).map_err(|e| {
                    TlsError::Invalid(format!("{}: {e}", key_path.display()))
                })?;
                Self::from_parts(pem, key)
            }
            (None, None) => {
                let ca = Self::generate(cluster)?;
                write_private(&key_path, ca.key.serialize_pem().as_bytes())?;
                write_private(&cert_path, ca.pem.as_bytes())?;
                tracing::info!("made the cluster CA in {}", dir.display());
                Ok(ca)
            }
            (Some(_), None) => Err(TlsError::Invalid(format!(
                "{} exists but its key {} does not; restore the key from a backup, or move both away to make a new CA (every node must then join again)",
                cert_path.display(),
                key_path.display()
            ))),
            (None, Some(_)) => Err(TlsError::Invalid(format!(
                "{} exists but its certificate {} does not; restore it from a backup",
                key_path.display(),
                cert_path.display()
            ))),
        }
    }

    pub fn cert_pem(&self) -> &str {
        &self.pem
    }

    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.der
    }

    /// A certificate for `identity` over the public key `spki` (DER SubjectPublicKeyInfo).
    pub fn issue(&self, identity: &Identity, spki: &[u8], valid_for: Duration) -> Result<Issued> {
        let public = rcgen::SubjectPublicKeyInfo::from_der(spki)?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            match identity {
                Identity::Controller => "controller".to_string(),
                Identity::Node(n) => n.clone(),
            },
        );
        params.distinguished_name = dn;
        params.subject_alt_names =
            vec![SanType::URI(identity.uri().try_into().map_err(|_| {
                TlsError::Invalid(format!("bad identity {identity}"))
            })?)];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.serial_number = Some(random_serial()?);
        validity(&mut params, valid_for);
        let cert = params.signed_by(&public, &self.issuer, &self.key)?;
        let der = cert.der().clone();
        Ok(Issued {
            pem: cert.pem(),
            facts: facts(&der)?,
            der,
        })
    }

    /// Fresh credentials for `identity` (a new key and its certificate), for the controller
    /// itself: it makes its own at every start.
    pub fn credentials(
        &self,
        identity: &Identity,
        valid_for: Duration,
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
        let key = KeyPair::generate()?;
        let issued = self.issue(identity, &key.public_key_der(), valid_for)?;
        Ok((
            vec![issued.der],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        ))
    }
}

/// A satellite's own key, made once and kept (`node.key` in its TLS directory).
pub struct NodeKey {
    key: KeyPair,
}

impl NodeKey {
    pub fn generate() -> Result<NodeKey> {
        Ok(NodeKey {
            key: KeyPair::generate()?,
        })
    }

    pub fn load_or_create(path: &Path) -> Result<NodeKey> {
        match read_text(path)? {
            Some(pem) => Ok(NodeKey {
                key: KeyPair::from_pem(&pem)
                    .map_err(|e| TlsError::Invalid(format!("{}: {e}", path.display())))?,
            }),
            None => {
                let k = Self::generate()?;
                write_private(path, k.key.serialize_pem().as_bytes())?;
                Ok(k)
            }
        }
    }

    /// The public key, DER SubjectPublicKeyInfo.
    pub fn spki(&self) -> Vec<u8> {
        self.key.public_key_der()
    }

    pub fn private_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.serialize_der()))
    }

    /// A self-signed certificate over this key, shown while the satellite has not joined.
    pub fn self_signed(&self) -> Result<CertificateDer<'static>> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "strata satellite (not joined)");
        params.distinguished_name = dn;
        params.serial_number = Some(random_serial()?);
        validity(&mut params, Duration::from_secs(10 * 365 * 86400));
        Ok(params.self_signed(&self.key)?.der().clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_issues_node_certificates_over_a_given_key() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ClusterCa::load_or_create(dir.path(), "test").unwrap();
        let again = ClusterCa::load_or_create(dir.path(), "test").unwrap();
        assert_eq!(
            ca.cert_pem(),
            again.cert_pem(),
            "the CA is kept, not remade"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(CA_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);

        let node = NodeKey::generate().unwrap();
        let issued = ca
            .issue(
                &Identity::Node("alpha".into()),
                &node.spki(),
                Duration::from_secs(3600),
            )
            .unwrap();
        assert_eq!(issued.facts.identity, Some(Identity::Node("alpha".into())));
        assert_eq!(issued.facts.spki, node.spki());
        let other = ca
            .issue(&Identity::Controller, &node.spki(), Duration::from_secs(60))
            .unwrap();
        assert_ne!(issued.facts.serial, other.facts.serial);
        assert_eq!(other.facts.identity, Some(Identity::Controller));
        let self_signed = facts(&node.self_signed().unwrap()).unwrap();
        assert_eq!(self_signed.identity, None);

        std::fs::remove_file(dir.path().join(CA_KEY_FILE)).unwrap();
        let err = ClusterCa::load_or_create(dir.path(), "test").unwrap_err();
        assert!(err.to_string().contains("restore the key"), "{err}");
    }
}
