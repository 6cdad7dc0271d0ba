//! The TLS settings of both ends of the agent link.

use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig,
    SignatureScheme,
};

use crate::{facts, provider, Identity, Result, TlsError};

/// Tells whether a certificate serial (lower-case hex) is revoked.
pub type Revoked = Arc<dyn Fn(&str) -> bool + Send + Sync>;

fn roots(ca: &CertificateDer<'static>) -> Result<Arc<RootCertStore>> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone())?;
    Ok(Arc::new(roots))
}

fn bad(msg: String) -> rustls::Error {
    rustls::Error::General(msg)
}

/// The controller's check of a satellite: issued by the cluster CA, naming the node it
/// meant to reach, not revoked.
#[derive(Debug)]
struct NodeVerifier {
    roots: Arc<RootCertStore>,
    node: String,
    revoked: RevokedDebug,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

struct RevokedDebug(Revoked);

impl std::fmt::Debug for RevokedDebug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Revoked")
    }
}

/// The handshake-signature checks of a server verifier with a `provider` field: those of
/// the crypto provider, as webpki's own verifier does them.
macro_rules! provider_signatures {
    () => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.provider
                .signature_verification_algorithms
                .supported_schemes()
        }
    };
}

impl ServerCertVerifier for NodeVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        let f = facts(end_entity).map_err(|e| bad(e.to_string()))?;
        let want = Identity::Node(self.node.clone());
        if f.identity.as_ref() != Some(&want) {
            return Err(bad(format!(
                "the satellite showed a certificate of {}, not of {want}",
                f.identity
                    .map(|i| i.to_string())
                    .unwrap_or_else(|| "no node".into())
            )));
        }
        if (self.revoked.0)(&f.serial) {
            return Err(bad(format!(
                "the certificate of {want} (serial {}) was revoked; the node must join again with a new token",
                f.serial
            )));
        }
        Ok(ServerCertVerified::assertion())
    }

    provider_signatures!();
}

/// What the controller saw of a satellite that has not joined (or must join again): any
/// certificate, whose public key is recorded; the join's proofs bind that key.
#[derive(Debug)]
struct RecordingVerifier {
    seen: Arc<Mutex<Option<Vec<u8>>>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let f = facts(end_entity).map_err(|e| bad(e.to_string()))?;
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(f.spki);
        Ok(ServerCertVerified::assertion())
    }

    provider_signatures!();
}

/// The satellite's check of whoever connects: a certificate of its cluster naming the
/// controller. A node's certificate, even a valid one, is refused.
#[derive(Debug)]
struct ControllerOnly {
    inner: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for ControllerOnly {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> std::result::Result<ClientCertVerified, rustls::Error> {
        self.inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let f = facts(end_entity).map_err(|e| bad(e.to_string()))?;
        if f.identity != Some(Identity::Controller) {
            return Err(bad(format!(
                "a certificate of {} is not the controller's",
                f.identity
                    .map(|i| i.to_string())
                    .unwrap_or_else(|| "no one".into())
            )));
        }
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Checks that `ca` issued `cert` and that it is valid now.
pub fn check_issued_by(ca: &CertificateDer<'static>, cert: &CertificateDer<'_>) -> Result<()> {
    let parsed = rustls::server::ParsedCertificate::try_from(cert)?;
    rustls::client::verify_server_cert_signed_by_trust_anchor(
        &parsed,
        &*roots(ca)?,
        &[],
        UnixTime::now(),
        provider().signature_verification_algorithms.all,
    )?;
    Ok(())
}

/// The controller's credentials: its certificate chain and key.
#[derive(Debug)]
pub struct Credentials {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl Clone for Credentials {
    fn clone(&self) -> Self {
        Credentials {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

fn client_builder() -> Result<rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier>> {
    Ok(ClientConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?)
}

/// The controller's settings to reach node `node`, which must show the certificate of that
/// node issued by `ca` and not revoked.
pub fn controller_to_node(
    ca: &CertificateDer<'static>,
    creds: &Credentials,
    node: &str,
    revoked: Revoked,
) -> Result<ClientConfig> {
    let verifier = NodeVerifier {
        roots: roots(ca)?,
        node: node.to_string(),
        revoked: RevokedDebug(revoked),
        provider: provider(),
    };
    Ok(client_builder()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(creds.chain.clone(), creds.key.clone_key())?)
}

/// The controller's settings to join a satellite: any server certificate, its key recorded
/// in `seen`.
pub fn controller_to_joining(
    creds: &Credentials,
    seen: Arc<Mutex<Option<Vec<u8>>>>,
) -> Result<ClientConfig> {
    let verifier = RecordingVerifier {
        seen,
        provider: provider(),
    };
    Ok(client_builder()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(creds.chain.clone(), creds.key.clone_key())?)
}

fn server_builder() -> Result<rustls::ConfigBuilder<ServerConfig, rustls::WantsVerifier>> {
    Ok(ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?)
}

/// A satellite bound to the cluster of `ca`: it shows its node certificate and admits only
/// the controller's.
pub fn satellite_bound(
    ca: &CertificateDer<'static>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<ServerConfig> {
    let inner = rustls::server::WebPkiClientVerifier::builder_with_provider(roots(ca)?, provider())
        .build()
        .map_err(|e| TlsError::Invalid(format!("client verifier: {e}")))?;
    Ok(server_builder()?
        .with_client_cert_verifier(Arc::new(ControllerOnly { inner }))
        .with_single_cert(chain, key)?)
}

/// A satellite that has not joined: it shows its self-signed certificate and asks for none;
/// only the join is served on such connections.
pub fn satellite_unbound(
    self_signed: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
) -> Result<ServerConfig> {
    Ok(server_builder()?
        .with_no_client_auth()
        .with_single_cert(vec![self_signed], key)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ClusterCa, NodeKey};
    use std::time::Duration;

    /// Runs a handshake between the two configs in memory; `Ok` when both accept.
    fn handshake(
        client: ClientConfig,
        server: ServerConfig,
    ) -> std::result::Result<(), rustls::Error> {
        let mut c = rustls::ClientConnection::new(
            Arc::new(client),
            ServerName::try_from("127.0.0.1").unwrap(),
        )?;
        let mut s = rustls::ServerConnection::new(Arc::new(server))?;
        for _ in 0..10 {
            let mut buf = Vec::new();
            while c.wants_write() {
                c.write_tls(&mut buf).unwrap();
            }
            let mut rd = &buf[..];
            while !rd.is_empty() {
                s.read_tls(&mut rd).unwrap();
            }
            s.process_new_packets()?;
            let mut buf = Vec::new();
            while s.wants_write() {
                s.write_tls(&mut buf).unwrap();
            }
            let mut rd = &buf[..];
            while !rd.is_empty() {
                c.read_tls(&mut rd).unwrap();
            }
            c.process_new_packets()?;
            if !c.is_handshaking() && !s.is_handshaking() {
                return Ok(());
            }
        }
        Err(rustls::Error::General("handshake did not finish".into()))
    }

    fn creds(ca: &ClusterCa, id: Identity) -> Credentials {
        let (chain, key) = ca.credentials(&id, Duration::from_secs(3600)).unwrap();
        Credentials { chain, key }
    }

    fn never() -> Revoked {
        Arc::new(|_| false)
    }

    #[test]
    fn only_the_controller_reaches_a_bound_node_and_only_that_node_answers() {
        let ca = ClusterCa::generate("one").unwrap();
        let other_ca = ClusterCa::generate("two").unwrap();
        let node = NodeKey::generate().unwrap();
        let issued = ca
            .issue(
                &Identity::Node("alpha".into()),
                &node.spki(),
                Duration::from_secs(3600),
            )
            .unwrap();
        let server = || {
            satellite_bound(ca.cert_der(), vec![issued.der.clone()], node.private_der()).unwrap()
        };
        let ctrl = creds(&ca, Identity::Controller);
        // The controller, expecting alpha: both sides accept.
        handshake(
            controller_to_node(ca.cert_der(), &ctrl, "alpha", never()).unwrap(),
            server(),
        )
        .unwrap();
        // Expecting beta at alpha's address: the controller refuses.
        let e = handshake(
            controller_to_node(ca.cert_der(), &ctrl, "beta", never()).unwrap(),
            server(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("not of node 'beta'"), "{e}");
        // Alpha's certificate revoked: refused.
        let serial = issued.facts.serial.clone();
        let e = handshake(
            controller_to_node(
                ca.cert_der(),
                &ctrl,
                "alpha",
                Arc::new(move |s| s == serial),
            )
            .unwrap(),
            server(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("revoked"), "{e}");
        // A node's certificate of the same cluster cannot act as the controller.
        let stolen = creds(&ca, Identity::Node("beta".into()));
        assert!(handshake(
            controller_to_node(ca.cert_der(), &stolen, "alpha", never()).unwrap(),
            server()
        )
        .is_err());
        // Nor can a controller of another cluster.
        let foreign = creds(&other_ca, Identity::Controller);
        assert!(handshake(
            controller_to_node(ca.cert_der(), &foreign, "alpha", never()).unwrap(),
            server()
        )
        .is_err());
        // A controller of another cluster does not accept alpha either.
        assert!(handshake(
            controller_to_node(other_ca.cert_der(), &foreign, "alpha", never()).unwrap(),
            server()
        )
        .is_err());
    }

    #[test]
    fn a_joining_satellite_shows_its_key() {
        let ca = ClusterCa::generate("one").unwrap();
        let node = NodeKey::generate().unwrap();
        let seen = Arc::new(Mutex::new(None));
        let ctrl = creds(&ca, Identity::Controller);
        handshake(
            controller_to_joining(&ctrl, seen.clone()).unwrap(),
            satellite_unbound(node.self_signed().unwrap(), node.private_der()).unwrap(),
        )
        .unwrap();
        assert_eq!(seen.lock().unwrap().as_deref(), Some(&node.spki()[..]));
    }
}
