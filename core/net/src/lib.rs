//! Serving an axum router on a TCP listener, in plain HTTP or over TLS, with the bounds a
//! service on a hostile network needs: a cap on open connections, a time-out for the TLS
//! handshake and for a request's head, and a cap on request bodies. Every request carries the
//! [`ConnInfo`] of its connection (peer address, and the certificates a TLS client showed), so
//! that handlers can tell who is asking.

pub mod metrics;
pub mod service;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls_pki_types::CertificateDer;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// Bounds of a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once; more are closed as soon as they are accepted.
    pub max_connections: usize,
    /// Time a client has to finish the TLS handshake.
    pub handshake_timeout: Duration,
    /// Time a client has to send a request's head, once it started one or after the last
    /// answer on a kept-alive connection.
    pub header_timeout: Duration,
    /// Largest request body accepted, in bytes.
    pub max_body: usize,
    /// On shutdown, how long requests under way may take to finish.
    pub drain: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 4096,
            handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            max_body: 8 << 20,
            drain: Duration::from_secs(5),
        }
    }
}

/// Raises this process's soft limit of open files to its hard limit, so that the connection
/// cap, not the default of 1024 descriptors, bounds a server; answers the limit now in force.
pub fn raise_fd_limit() -> std::io::Result<u64> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(std::io::Error::from)?;
    // An unlimited hard limit still stops at the kernel's nr_open.
    let most = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(1 << 20);
    let want = hard.min(most);
    if soft >= want {
        return Ok(soft);
    }
    setrlimit(Resource::RLIMIT_NOFILE, want, hard).map_err(std::io::Error::from)?;
    Ok(want)
}

/// The connection a request came on.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    /// Whether the connection is TLS.
    pub tls: bool,
    /// The certificate chain a TLS client presented (end entity first); empty otherwise.
    pub peer_certs: Arc<[CertificateDer<'static>]>,
}

/// Where the TLS settings of each new connection come from; asked once per connection, so
/// that a certificate or trust change applies to new connections without a restart.
pub type TlsSource = Arc<dyn Fn() -> Arc<rustls::ServerConfig> + Send + Sync>;

/// A TLS source that always answers `config`.
pub fn fixed_tls(config: Arc<rustls::ServerConfig>) -> TlsSource {
    Arc::new(move || config.clone())
}

/// Serves `app` on `listener` until `shutdown` completes, then lets requests under way finish
/// for at most `limits.drain`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<TlsSource>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = app.layer(DefaultBodyLimit::max(limits.max_body));
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "connection refused: {} connections open already", limits.max_connections);
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        let tls = tls.as_ref().map(|source| source());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                None => {
                    let info = ConnInfo {
                        peer,
                        tls: false,
                        peer_certs: Arc::from(Vec::new()),
                    };
                    run_http(tcp, app, info, &limits, watcher).await;
                }
                Some(config) => {
                    let acceptor = tokio_rustls::TlsAcceptor::from(config);
                    let stream =
                        match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp))
                            .await
                        {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, "TLS handshake refused: {e}");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake timed out");
                                return;
                            }
                        };
                    let peer_certs: Vec<CertificateDer<'static>> = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
                        .unwrap_or_default();
                    let info = ConnInfo {
                        peer,
                        tls: true,
                        peer_certs: Arc::from(peer_certs),
                    };
                    run_http(stream, app, info, &limits, watcher).await;
                }
            }
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(limits.drain, graceful.shutdown()).await;
    Ok(())
}

async fn run_http<S>(
    stream: S,
    app: Router,
    info: ConnInfo,
    limits: &Limits,
    watcher: hyper_util::server::graceful::Watcher,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(info.clone());
            app.clone().oneshot(req)
        });
    // HTTP/1 alone: the version sniffing of hyper-util's auto builder waits for a first byte
    // without any time-out, which let a client that never writes hold its connection for
    // good; hyper's own HTTP/1 connection applies the head time-out from the start.
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!("connection ended: {e}");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_fd_limit_rises_to_the_hard_limit() {
        let now = super::raise_fd_limit().unwrap();
        let (soft, hard) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!(now, soft);
        assert!(
            soft == hard || hard == nix::sys::resource::RLIM_INFINITY,
            "{soft} {hard}"
        );
    }
}
