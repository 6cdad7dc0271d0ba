//! The REST API over HTTPS, as LINSTOR serves it on 3371: the TLS settings read from PEM
//! files (and read again when a file changes, so that a renewed certificate applies to new
//! connections without a restart), and the plain port's redirect to HTTPS.
//!
//! With HTTPS on, the plain port redirects every call with 302 and a `Location` on the HTTPS
//! port (python-linstor probes for exactly that and then talks HTTPS), unless it listens on
//! loopback only: then it serves the API to local tools, as LINSTOR does.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use strata_api::paths;

use crate::config::HttpsSettings;

fn certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        anyhow::bail!("{}: no PEM certificate in it", path.display());
    }
    Ok(certs)
}

/// The TLS settings of the HTTPS port, from its PEM files.
pub fn server_config(h: &HttpsSettings) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match &h.client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in certs(ca)? {
                roots
                    .add(c)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", ca.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| anyhow::anyhow!("{}: {e}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let key = PrivateKeyDer::from_pem_file(&h.private_key)
        .map_err(|e| anyhow::anyhow!("{}: {e}", h.private_key.display()))?;
    let mut config = builder
        .with_single_cert(certs(&h.certificate)?, key)
        .map_err(|e| {
            anyhow::anyhow!(
                "{} and {} do not make a server identity: {e}",
                h.certificate.display(),
                h.private_key.display()
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn stamps(h: &HttpsSettings) -> Vec<Option<SystemTime>> {
    [
        Some(&h.certificate),
        Some(&h.private_key),
        h.client_ca.as_ref(),
    ]
    .into_iter()
    .flatten()
    .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
    .collect()
}

/// The TLS settings for each new connection: read again when a file changed; a change that
/// does not load (a key written before its certificate) keeps the settings before it.
pub fn tls_source(h: &HttpsSettings) -> anyhow::Result<strata_net::TlsSource> {
    let h = h.clone();
    let state = Mutex::new((stamps(&h), server_config(&h)?));
    Ok(Arc::new(move || {
        let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
        let now = stamps(&h);
        if now != state.0 {
            match server_config(&h) {
                Ok(config) => {
                    tracing::info!("HTTPS certificate files changed: reloaded");
                    *state = (now, config);
                }
                Err(e) => tracing::warn!("HTTPS certificate files changed but do not load: {e}"),
            }
        }
        state.1.clone()
    }))
}

/// The host part of a `Host` header (`[::1]:3370` -> `[::1]`, `ctrl:3370` -> `ctrl`).
fn host_only(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    match host.rsplit_once(':') {
        Some((h, _)) if !h.contains(':') => h,
        _ => host,
    }
}

/// The plain port with HTTPS on: every call is sent to the same path on the HTTPS port.
pub fn redirect(https_port: u16) -> Router {
    Router::new()
        .route(paths::HEALTH, get(|| async { StatusCode::OK }))
        .fallback(move |req: Request| async move {
            let host = req
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(host_only)
                .unwrap_or("localhost");
            let path = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            let location = format!("https://{host}:{https_port}{path}");
            let mut resp = StatusCode::FOUND.into_response();
            match HeaderValue::from_str(&location) {
                Ok(v) => {
                    resp.headers_mut().insert(header::LOCATION, v);
                    resp
                }
                Err(_) => StatusCode::BAD_REQUEST.into_response(),
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(host_only("ctrl:3370"), "ctrl");
        assert_eq!(host_only("ctrl"), "ctrl");
        assert_eq!(host_only("[::1]:3370"), "[::1]");
        assert_eq!(host_only("[::1]"), "[::1]");
        assert_eq!(host_only("10.0.0.1:3370"), "10.0.0.1");
    }
}
