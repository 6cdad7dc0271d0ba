//! The controller's side of the cluster's trust: the cluster CA (in `<data dir>/pki/`), the
//! controller's own certificate (made anew at every start), the join of a node, the renewal of
//! its certificate, and the TLS clients the links use.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use strata_agent_api::{CertRenewal, Hello, JoinBind, JoinOffer, PATH_CERTIFICATE, PATH_JOIN};
use strata_model::security::NodeCert;
use strata_tls::verify::Credentials;
use strata_tls::{join, verify, ClusterCa, Identity, Issued};

pub const PKI_DIR: &str = "pki";

/// How the controller reaches one node's satellite.
#[derive(Clone, Debug)]
pub struct Channel {
    pub http: reqwest::Client,
    pub tls: bool,
}

impl Channel {
    pub fn url(&self, addr: SocketAddr, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{addr}{path}")
    }
}

pub struct Trust {
    ca: ClusterCa,
    creds: Credentials,
    /// How long a node certificate is valid; renewed when a third of it is left.
    pub node_cert_validity: Duration,
    /// How long a join token made by the controller is accepted.
    pub join_token_ttl: Duration,
}

/// Why a join failed.
#[derive(Debug)]
pub enum JoinError {
    /// The satellite does not speak TLS (it runs with `[netcom] type = "plain"`).
    NotTls(String),
    Failed(String),
}

impl std::fmt::Display for JoinError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JoinError::NotTls(m) | JoinError::Failed(m) => f.write_str(m),
        }
    }
}

fn client(config: strata_tls::rustls::ClientConfig) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .connect_timeout(Duration::from_secs(2))
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| format!("TLS client: {e}"))
}

/// A request's error with the chain of its causes.
pub(crate) fn describe(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    msg
}

/// Whether a failed TLS connection met a peer that answered in plain HTTP.
fn peer_is_plain(msg: &str) -> bool {
    msg.contains("InvalidContentType") || msg.contains("corrupt message")
}

async fn answer<T: serde::de::DeserializeOwned>(
    req: reqwest::RequestBuilder,
) -> Result<T, JoinError> {
    let resp = req
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| {
            let msg = describe(&e);
            if peer_is_plain(&msg) {
                JoinError::NotTls(msg)
            } else {
                JoinError::Failed(msg)
            }
        })?;
    let status = resp.status();
    if !status.is_success() {
        let msg = resp
            .json::<strata_agent_api::AgentError>()
            .await
            .map(|e| e.message)
            .unwrap_or_else(|_| format!("HTTP status {status}"));
        return Err(JoinError::Failed(format!("the satellite refused: {msg}")));
    }
    resp.json::<T>()
        .await
        .map_err(|e| JoinError::Failed(format!("unreadable answer: {}", describe(&e))))
}

impl Trust {
    /// Loads (or makes, the first time) the cluster CA in `<data_dir>/pki`, and makes the
    /// controller's certificate.
    pub fn load(
        data_dir: &Path,
        cluster_id: &str,
        node_cert_validity: Duration,
        join_token_ttl: Duration,
    ) -> anyhow::Result<Trust> {
        let ca = ClusterCa::load_or_create(&data_dir.join(PKI_DIR), cluster_id)?;
        let (chain, key) =
            ca.credentials(&Identity::Controller, Duration::from_secs(365 * 86400))?;
        Ok(Trust {
            ca,
            creds: Credentials { chain, key },
            node_cert_validity,
            join_token_ttl,
        })
    }

    pub fn ca_pem(&self) -> &str {
        self.ca.cert_pem()
    }

    /// The TLS client for a joined node: it admits only that node's certificate of this
    /// cluster, none of the `revoked` serials.
    pub fn client_for(&self, node: &str, revoked: verify::Revoked) -> Result<Channel, String> {
        let config = verify::controller_to_node(self.ca.cert_der(), &self.creds, node, revoked)
            .map_err(|e| e.to_string())?;
        Ok(Channel {
            http: client(config)?,
            tls: true,
        })
    }

    /// The first half of a join of the satellite at `addr` as `node` with `token`: checks
    /// the satellite's proof and issues its certificate. The caller records the certificate,
    /// then hands it over with [`PendingJoin::hand_over`], so that the database knows a
    /// certificate before the satellite uses it.
    pub async fn start_join(
        &self,
        node: &str,
        addr: SocketAddr,
        token: &str,
    ) -> Result<PendingJoin, JoinError> {
        let seen = Arc::new(Mutex::new(None));
        let config = verify::controller_to_joining(&self.creds, seen.clone())
            .map_err(|e| JoinError::Failed(e.to_string()))?;
        let http = client(config).map_err(JoinError::Failed)?;
        let offer: JoinOffer = answer(
            http.get(format!("https://{addr}{PATH_JOIN}"))
                .query(&[("node", node)]),
        )
        .await?;
        let spki = seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or_else(|| JoinError::Failed("the satellite showed no certificate".into()))?;
        if !join::check_satellite_proof(token, node, &spki, &offer.proof) {
            return Err(JoinError::Failed(format!(
                "the satellite at {addr} does not hold the join token of node '{node}'; give it that token (the one `linstor node create` took or printed) in <state dir>/tls/join-token, its configuration, or --join-token"
            )));
        }
        let issued = self.issue(node, &spki).map_err(JoinError::Failed)?;
        Ok(PendingJoin {
            http,
            addr,
            cert: node_cert(node, &issued),
            bind: JoinBind {
                node: node.to_string(),
                ca_pem: self.ca.cert_pem().to_string(),
                proof: join::controller_proof(token, node, self.ca.cert_pem(), &issued.pem),
                cert_pem: issued.pem,
            },
        })
    }

    fn issue(&self, node: &str, spki: &[u8]) -> Result<Issued, String> {
        self.ca
            .issue(
                &Identity::Node(node.to_string()),
                spki,
                self.node_cert_validity,
            )
            .map_err(|e| e.to_string())
    }

    /// Whether `cert` is due for renewal at `now_ms`: a third of its validity left.
    pub fn renewal_due(&self, cert: &NodeCert, now_ms: u64) -> bool {
        let third = self.node_cert_validity.as_millis() as u64 / 3;
        cert.not_after_ms.saturating_sub(now_ms) < third
    }

    /// Hands the node a new certificate over `channel` (an authenticated connection); answers
    /// the new certificate's record.
    pub async fn renew(
        &self,
        channel: &Channel,
        addr: SocketAddr,
        old: &NodeCert,
    ) -> Result<NodeCert, String> {
        let spki = strata_tls::unhex(&old.spki)
            .ok_or_else(|| format!("the record of node '{}''s certificate has no key", old.node))?;
        let issued = self.issue(old.node.as_str(), &spki)?;
        let new = node_cert(old.node.as_str(), &issued);
        let resp = channel
            .http
            .put(channel.url(addr, PATH_CERTIFICATE))
            .json(&CertRenewal {
                cert_pem: issued.pem,
            })
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| describe(&e))?;
        if !resp.status().is_success() {
            return Err(format!(
                "the satellite refused the renewal: HTTP {}",
                resp.status()
            ));
        }
        Ok(new)
    }
}

/// A join whose certificate is issued, not yet handed over.
pub struct PendingJoin {
    http: reqwest::Client,
    addr: SocketAddr,
    bind: JoinBind,
    pub cert: NodeCert,
}

impl PendingJoin {
    pub async fn hand_over(self) -> Result<Hello, JoinError> {
        answer(
            self.http
                .post(format!("https://{}{PATH_JOIN}", self.addr))
                .json(&self.bind),
        )
        .await
    }
}

fn node_cert(node: &str, issued: &Issued) -> NodeCert {
    NodeCert {
        node: node.parse().expect("a node name the caller validated"),
        serial: issued.facts.serial.clone(),
        fingerprint: issued.facts.fingerprint.clone(),
        not_after_ms: issued.facts.not_after_ms,
        spki: strata_tls::hex(&issued.facts.spki),
    }
}

/// A plain-HTTP channel (nodes whose satellite runs with `[netcom] type = "plain"`).
pub fn plain_channel(http: &reqwest::Client) -> Channel {
    Channel {
        http: http.clone(),
        tls: false,
    }
}
