//! Trust between the controller and its satellites.
//!
//! The controller holds a cluster certificate authority (`ca.rs`). A satellite joins once, with
//! a one-time token both sides know (`join.rs`: proofs that each side holds the token, bound
//! to the satellite's key, so that no one in between can take the certificate); it then holds
//! a certificate naming its node, and from then on every connection is mutual TLS
//! (`verify.rs`): a satellite accepts only a certificate of its cluster that names the
//! controller, the controller only the certificate of the node it meant to reach, and never a
//! revoked one. Identities live in the certificate as a URI subject alternative name:
//! `strata:controller` or `strata:node:<name>`.

use std::sync::Arc;

pub mod ca;
pub mod join;
pub mod verify;

pub use ca::{ClusterCa, Issued, NodeKey};
pub use rustls;
pub use rustls_pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read or write {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("certificate error: {0}")]
    Cert(#[from] rcgen::Error),
    #[error("{0}")]
    Invalid(String),
    #[error("TLS settings: {0}")]
    Rustls(#[from] rustls::Error),
}

pub type Result<T> = std::result::Result<T, TlsError>;

/// Who a certificate speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    Controller,
    Node(String),
}

const URI_CONTROLLER: &str = "strata:controller";
const URI_NODE: &str = "strata:node:";

impl Identity {
    pub fn uri(&self) -> String {
        match self {
            Identity::Controller => URI_CONTROLLER.to_string(),
            Identity::Node(n) => format!("{URI_NODE}{n}"),
        }
    }

    fn from_uri(uri: &str) -> Option<Identity> {
        if uri == URI_CONTROLLER {
            return Some(Identity::Controller);
        }
        uri.strip_prefix(URI_NODE)
            .filter(|n| !n.is_empty())
            .map(|n| Identity::Node(n.to_string()))
    }
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Identity::Controller => f.write_str("the controller"),
            Identity::Node(n) => write!(f, "node '{n}'"),
        }
    }
}

/// What a certificate says, read from its DER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFacts {
    /// `None` for a certificate without one of our identities.
    pub identity: Option<Identity>,
    /// Lower-case hex, without leading zero bytes.
    pub serial: String,
    /// Lower-case hex SHA-256 of the DER.
    pub fingerprint: String,
    pub not_after_ms: u64,
    /// The SubjectPublicKeyInfo, DER.
    pub spki: Vec<u8>,
}

pub fn facts(der: &[u8]) -> Result<CertFacts> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| TlsError::Invalid(format!("not an X.509 certificate: {e}")))?;
    let mut identity = None;
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::URI(uri) = name {
                if let Some(id) = Identity::from_uri(uri) {
                    identity = Some(id);
                }
            }
        }
    }
    let serial = hex(cert.raw_serial());
    let serial = serial.trim_start_matches("00").to_string();
    Ok(CertFacts {
        identity,
        serial: if serial.is_empty() {
            "0".into()
        } else {
            serial
        },
        fingerprint: sha256_hex(der),
        not_after_ms: (cert.validity().not_after.timestamp().max(0) as u64) * 1000,
        spki: cert.public_key().raw.to_vec(),
    })
}

pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The bytes of lower-case or upper-case hex; `None` for anything else.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, data).as_ref())
}

/// The crypto provider every TLS setting of the suite uses.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Certificates from PEM text, in order.
pub fn certs_from_pem(pem: &str) -> Result<Vec<CertificateDer<'static>>> {
    use rustls_pki_types::pem::PemObject;
    let certs: std::result::Result<Vec<_>, _> =
        CertificateDer::pem_slice_iter(pem.as_bytes()).collect();
    let certs = certs.map_err(|e| TlsError::Invalid(format!("bad PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(TlsError::Invalid("no certificate in the PEM text".into()));
    }
    Ok(certs)
}

/// A private key from PEM text.
pub fn key_from_pem(pem: &str) -> Result<PrivateKeyDer<'static>> {
    use rustls_pki_types::pem::PemObject;
    PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| TlsError::Invalid(format!("bad PEM private key: {e}")))
}

/// Writes `data` to `path` readable by its owner only, atomically (temporary file, rename).
pub fn write_private(path: &std::path::Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(data).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    Ok(())
}

pub fn read_text(path: &std::path::Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(TlsError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}
