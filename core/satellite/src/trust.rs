//! The satellite's side of the cluster's trust (TLS mode, the default).
//!
//! The satellite keeps, in `<state dir>/tls/`: its key (`node.key`, made at the first start),
//! and once it joined, the cluster CA (`cluster-ca.crt`) and its certificate (`node.crt`).
//! Until then it shows a self-signed certificate and serves only the join, which needs the
//! node's one-time join token: given on the command line or in the configuration, or else
//! the one in `join-token` (written at the first start, readable by root only, renewed after
//! each join, so that the node can be joined again if the controller must re-admit it).
//! Once joined it admits only certificates of its cluster that name the controller.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use strata_tls::rustls::ServerConfig;
use strata_tls::{facts, join, verify, CertificateDer, Identity, NodeKey};

pub const TLS_DIR: &str = "tls";
pub const KEY_FILE: &str = "node.key";
pub const CERT_FILE: &str = "node.crt";
pub const CA_FILE: &str = "cluster-ca.crt";
pub const TOKEN_FILE: &str = "join-token";

/// What the satellite is bound to.
#[derive(Debug, Clone)]
struct Bound {
    node: String,
    ca_pem: String,
    ca: CertificateDer<'static>,
    cert_pem: String,
}

struct State {
    bound: Option<Bound>,
    config: Arc<ServerConfig>,
}

pub struct Trust {
    dir: PathBuf,
    key: NodeKey,
    /// A token from the command line or the configuration file; the token file otherwise.
    configured_token: Option<String>,
    state: RwLock<State>,
}

/// Why a join or renewal was refused; the message is the answer.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

fn refuse(msg: impl Into<String>) -> Refusal {
    Refusal(msg.into())
}

impl Trust {
    /// Loads (or makes) the key and what the satellite is bound to, and makes sure a join
    /// token exists while it is not bound.
    pub fn load(state_dir: &Path, configured_token: Option<String>) -> anyhow::Result<Trust> {
        let dir = state_dir.join(TLS_DIR);
        std::fs::create_dir_all(&dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        if let Some(t) = &configured_token {
            if !join::valid_token(t) {
                anyhow::bail!("the join token given is not a token (16 to 256 printable characters without spaces)");
            }
        }
        let key = NodeKey::load_or_create(&dir.join(KEY_FILE))?;
        let bound = match (
            strata_tls::read_text(&dir.join(CA_FILE))?,
            strata_tls::read_text(&dir.join(CERT_FILE))?,
        ) {
            (Some(ca_pem), Some(cert_pem)) => {
                let ca = strata_tls::certs_from_pem(&ca_pem)?.remove(0);
                let cert = strata_tls::certs_from_pem(&cert_pem)?.remove(0);
                let f = facts(&cert)?;
                let Some(Identity::Node(node)) = f.identity else {
                    anyhow::bail!(
                        "{} names no node; remove it and {} to join a cluster again",
                        dir.join(CERT_FILE).display(),
                        dir.join(CA_FILE).display()
                    );
                };
                Some(Bound {
                    node,
                    ca_pem,
                    ca,
                    cert_pem,
                })
            }
            _ => None,
        };
        let config = Arc::new(server_config(&key, bound.as_ref())?);
        let trust = Trust {
            dir,
            key,
            configured_token,
            state: RwLock::new(State { bound, config }),
        };
        match trust.bound_node() {
            Some(node) => tracing::info!("joined to a cluster as node '{node}'"),
            None if trust.configured_token.is_some() => {
                tracing::info!("not joined to a cluster yet; waiting for the controller with the join token given")
            }
            None => {
                let file = trust.token_file();
                if !file.exists() {
                    strata_tls::write_private(&file, join::new_token().as_bytes())?;
                }
                tracing::info!(
                    "not joined to a cluster yet; give the controller the join token in {} (`linstor node create NAME ADDRESS --join-token $(cat {})`), or give this satellite the token the controller printed",
                    file.display(),
                    file.display()
                );
            }
        }
        Ok(trust)
    }

    fn token_file(&self) -> PathBuf {
        self.dir.join(TOKEN_FILE)
    }

    /// The join token now: the one configured, else the file's (read each time, so that a
    /// token written while the satellite runs counts).
    fn token(&self) -> Option<String> {
        if let Some(t) = &self.configured_token {
            return Some(t.clone());
        }
        let text = strata_tls::read_text(&self.token_file()).ok()??;
        let t = text.trim().to_string();
        (!t.is_empty()).then_some(t)
    }

    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.state
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .config
            .clone()
    }

    pub fn bound_node(&self) -> Option<String> {
        self.state
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .bound
            .as_ref()
            .map(|b| b.node.clone())
    }

    /// The satellite's proof for a join as `node`.
    pub fn offer(&self, node: &str) -> Result<String, Refusal> {
        let token = self.token().ok_or_else(|| {
            refuse(format!(
                "this satellite has no join token; write the token `linstor node create` printed into {}, or start the satellite with --join-token",
                self.token_file().display()
            ))
        })?;
        Ok(join::satellite_proof(&token, node, &self.key.spki()))
    }

    /// Binds the satellite to the cluster of the join, if the controller's proof holds and
    /// the certificate is for this satellite's key and node.
    pub fn bind(&self, req: &strata_agent_api::JoinBind) -> Result<(), Refusal> {
        let token = self
            .token()
            .ok_or_else(|| refuse("this satellite has no join token"))?;
        if !join::check_controller_proof(&token, &req.node, &req.ca_pem, &req.cert_pem, &req.proof)
        {
            return Err(refuse(
                "the join was refused: the controller does not hold this satellite's join token",
            ));
        }
        let ca = strata_tls::certs_from_pem(&req.ca_pem)
            .map_err(|e| refuse(format!("the cluster CA: {e}")))?
            .remove(0);
        if let Some(b) = &self.state.read().unwrap_or_else(|e| e.into_inner()).bound {
            if b.ca != ca {
                return Err(refuse(format!(
                    "this satellite belongs to another cluster (as node '{}'); to move it, stop it, remove {} and {}, and start it again",
                    b.node,
                    self.dir.join(CA_FILE).display(),
                    self.dir.join(CERT_FILE).display()
                )));
            }
        }
        self.install(&req.node, &req.ca_pem, ca, &req.cert_pem)?;
        if self.configured_token.is_none() {
            // One use only: the next join needs a new token.
            if let Err(e) =
                strata_tls::write_private(&self.token_file(), join::new_token().as_bytes())
            {
                tracing::warn!("the join token could not be renewed: {e}");
            }
        }
        tracing::info!("joined the cluster as node '{}'", req.node);
        Ok(())
    }

    /// Takes a renewed certificate for this node (from the controller, over an authenticated
    /// connection).
    pub fn renew(&self, cert_pem: &str) -> Result<(), Refusal> {
        let bound = self
            .state
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .bound
            .clone()
            .ok_or_else(|| refuse("this satellite has not joined a cluster"))?;
        self.install(&bound.node, &bound.ca_pem, bound.ca, cert_pem)?;
        tracing::info!("took a renewed certificate");
        Ok(())
    }

    /// Checks `cert_pem` (for this key, naming `node`, issued by `ca`), writes the files and
    /// switches new connections to it.
    fn install(
        &self,
        node: &str,
        ca_pem: &str,
        ca: CertificateDer<'static>,
        cert_pem: &str,
    ) -> Result<(), Refusal> {
        let cert = strata_tls::certs_from_pem(cert_pem)
            .map_err(|e| refuse(format!("the certificate: {e}")))?
            .remove(0);
        let f = facts(&cert).map_err(|e| refuse(e.to_string()))?;
        if f.identity != Some(Identity::Node(node.to_string())) {
            return Err(refuse(format!(
                "the certificate does not name node '{node}'"
            )));
        }
        if f.spki != self.key.spki() {
            return Err(refuse("the certificate is not for this satellite's key"));
        }
        let bound = Bound {
            node: node.to_string(),
            ca_pem: ca_pem.to_string(),
            ca,
            cert_pem: cert_pem.to_string(),
        };
        // Checks that the CA issued it, by building the settings that will use it.
        let config = server_config(&self.key, Some(&bound)).map_err(|e| refuse(e.to_string()))?;
        strata_tls::verify::check_issued_by(&bound.ca, &cert).map_err(|e| {
            refuse(format!(
                "the certificate was not issued by the cluster CA: {e}"
            ))
        })?;
        let write = |file: &str, text: &str| {
            strata_tls::write_private(&self.dir.join(file), text.as_bytes())
                .map_err(|e| refuse(format!("cannot keep the certificate: {e}")))
        };
        write(CERT_FILE, cert_pem)?;
        write(CA_FILE, ca_pem)?;
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        state.bound = Some(bound);
        state.config = Arc::new(config);
        Ok(())
    }
}

fn server_config(key: &NodeKey, bound: Option<&Bound>) -> anyhow::Result<ServerConfig> {
    Ok(match bound {
        Some(b) => verify::satellite_bound(
            &b.ca,
            strata_tls::certs_from_pem(&b.cert_pem)?,
            key.private_der(),
        )?,
        None => verify::satellite_unbound(key.self_signed()?, key.private_der())?,
    })
}
