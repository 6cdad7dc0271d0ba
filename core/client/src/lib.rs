//! A typed client of the LINSTOR REST API v1.
//!
//! Controllers are tried in the order given (`host`, `host:port`, or a `http://`, `https://`
//! or `linstor+ssl://` URL, as in `LS_CONTROLLERS`); the first that answers serves the call.
//!
//! Over HTTPS the controller's certificate is checked against the CA file given (or the
//! system's roots), and a client certificate is shown when one is given. A bearer token is
//! sent over HTTPS only, unless plain HTTP is allowed explicitly (python-linstor's rule); a
//! plain port that redirects to HTTPS (302 with an `https://` Location, as a controller with
//! HTTPS on answers) is followed, and the HTTPS address is used from then on.

use std::fmt::Display;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

pub use reqwest::Method;
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde::Serialize;
use strata_api::paths;
use strata_api::types::*;
use strata_api::ApiCallRc;

pub mod calls;

pub use calls::Call;

pub const DEFAULT_PORT: u16 = 3370;
pub const DEFAULT_HTTPS_PORT: u16 = 3371;

/// How the client proves who it is and checks whom it talks to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Security {
    /// Sent as `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// PEM: the CA(s) the controller's certificate must chain to (else the system's roots).
    pub ca_file: Option<PathBuf>,
    /// PEM: a client certificate and its key, for controllers that require one.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// Send the token over plain HTTP too.
    pub allow_insecure_auth: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid controller address '{0}'")]
    BadController(String),
    #[error("cannot reach any controller ({tried}): {reason}")]
    Unreachable { tried: String, reason: String },
    /// The controller answered with errors.
    #[error("the controller refused the request (HTTP {status})")]
    Api {
        status: u16,
        replies: Vec<ApiCallRc>,
    },
    #[error("unexpected answer from the controller: {0}")]
    Protocol(String),
    #[error("the controller at {0} asks for a token, which is not sent over plain HTTP: use https:// (linstor+ssl://) or --allow-insecure-auth")]
    TokenWithheld(String),
    #[error("{0}")]
    Settings(String),
}

impl ClientError {
    pub fn replies(&self) -> &[ApiCallRc] {
        match self {
            ClientError::Api { replies, .. } => replies,
            _ => &[],
        }
    }
}

/// Turns `alpha`, `alpha:3370`, `[::1]:3370`, `http://alpha:3370`, `https://alpha` or
/// `linstor+ssl://alpha` (port 3371 by default) into a base URL.
pub fn controller_url(spec: &str) -> Result<String, ClientError> {
    let s = spec.trim().trim_end_matches('/');
    if s.is_empty() {
        return Err(ClientError::BadController(spec.to_string()));
    }
    if let Some(rest) = s.strip_prefix("http://") {
        return Ok(format!("http://{}", with_port(rest, DEFAULT_PORT)));
    }
    if let Some(rest) = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("linstor+ssl://"))
    {
        return Ok(format!("https://{}", with_port(rest, DEFAULT_HTTPS_PORT)));
    }
    if s.contains("://") && !s.starts_with("linstor://") {
        return Err(ClientError::BadController(format!(
            "{spec} (use http://, https://, linstor:// or linstor+ssl://)"
        )));
    }
    let s = s.strip_prefix("linstor://").unwrap_or(s);
    Ok(format!("http://{}", with_port(s, DEFAULT_PORT)))
}

fn with_port(hostport: &str, port: u16) -> String {
    if hostport.starts_with('[') {
        if hostport.contains("]:") {
            hostport.to_string()
        } else {
            format!("{hostport}:{port}")
        }
    } else if hostport.matches(':').count() > 1 {
        format!("[{hostport}]:{port}")
    } else if hostport.contains(':') {
        hostport.to_string()
    } else {
        format!("{hostport}:{port}")
    }
}

/// The origin (`https://host:port`) of an `https://` redirect target.
fn https_origin(location: &str) -> Option<String> {
    let rest = location.strip_prefix("https://")?;
    let authority = rest.split('/').next().filter(|a| !a.is_empty())?;
    Some(format!("https://{authority}"))
}

#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    /// Where each controller is reached; an entry turns to HTTPS when its plain port
    /// redirects there.
    bases: Arc<RwLock<Vec<String>>>,
    token: Option<String>,
    allow_insecure_auth: bool,
}

fn read_file(what: &str, path: &std::path::Path) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path).map_err(|e| {
        ClientError::Settings(format!("cannot read the {what} {}: {e}", path.display()))
    })
}

/// Builds `?key=v1&key=v2` query strings.
#[derive(Debug, Default)]
pub struct QueryBuilder(Vec<(String, String)>);

impl QueryBuilder {
    pub fn new() -> QueryBuilder {
        QueryBuilder::default()
    }

    pub fn list(mut self, key: &str, values: &[String]) -> QueryBuilder {
        for v in values {
            self.0.push((key.to_string(), v.clone()));
        }
        self
    }

    pub fn flag(mut self, key: &str, on: bool) -> QueryBuilder {
        if on {
            self.0.push((key.to_string(), "true".into()));
        }
        self
    }

    pub fn value(mut self, key: &str, value: impl Display) -> QueryBuilder {
        self.0.push((key.to_string(), value.to_string()));
        self
    }

    pub fn opt(self, key: &str, value: Option<impl Display>) -> QueryBuilder {
        match value {
            Some(v) => self.value(key, v),
            None => self,
        }
    }

    pub fn build(&self) -> String {
        if self.0.is_empty() {
            return String::new();
        }
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(k, v)| format!("{}={}", paths::encode(k), paths::encode(v)))
            .collect();
        format!("?{}", parts.join("&"))
    }
}

impl Client {
    pub fn new(controllers: &[String], timeout: Duration) -> Result<Client, ClientError> {
        Client::with_security(controllers, timeout, &Security::default())
    }

    pub fn with_security(
        controllers: &[String],
        timeout: Duration,
        security: &Security,
    ) -> Result<Client, ClientError> {
        let specs: Vec<String> = if controllers.is_empty() {
            vec!["localhost".to_string()]
        } else {
            controllers
                .iter()
                .flat_map(|c| c.split(','))
                .map(str::to_string)
                .collect()
        };
        let bases = specs
            .iter()
            .map(|s| controller_url(s))
            .collect::<Result<Vec<_>, _>>()?;
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none());
        if let Some(ca) = &security.ca_file {
            let pem = read_file("CA file", ca)?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| ClientError::Settings(format!("{}: {e}", ca.display())))?;
            if certs.is_empty() {
                return Err(ClientError::Settings(format!(
                    "{}: no PEM certificate in it",
                    ca.display()
                )));
            }
            builder = builder.tls_built_in_root_certs(false);
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        match (&security.cert_file, &security.key_file) {
            (Some(cert), key) => {
                let mut pem = read_file("certificate", cert)?;
                if let Some(key) = key {
                    pem.push(b'\n');
                    pem.extend(read_file("key", key)?);
                }
                let id = reqwest::Identity::from_pem(&pem).map_err(|e| {
                    ClientError::Settings(format!(
                        "{}: not a certificate and key: {e}",
                        cert.display()
                    ))
                })?;
                builder = builder.identity(id);
            }
            (None, Some(key)) => {
                return Err(ClientError::Settings(format!(
                    "a key file ({}) without its certificate file",
                    key.display()
                )))
            }
            (None, None) => {}
        }
        let http = builder
            .build()
            .map_err(|e| ClientError::Settings(e.to_string()))?;
        Ok(Client {
            http,
            bases: Arc::new(RwLock::new(bases)),
            token: security.token.clone().filter(|t| !t.trim().is_empty()),
            allow_insecure_auth: security.allow_insecure_auth,
        })
    }

    /// The controllers, as reached now.
    pub fn bases(&self) -> Vec<String> {
        self.bases.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Sends one request to `base`, with the token where it may go; answers whether the
    /// token went with it.
    async fn send_to(
        &self,
        base: &str,
        method: &Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(reqwest::Response, bool), reqwest::Error> {
        let mut req = self.http.request(method.clone(), format!("{base}{path}"));
        if let Some(b) = body {
            req = req.json(b);
        }
        let mut sent = false;
        if let Some(t) = &self.token {
            if base.starts_with("https://") || self.allow_insecure_auth {
                req = req.bearer_auth(t);
                sent = true;
            }
        }
        Ok((req.send().await?, sent))
    }

    /// Sends a request and returns the status and raw body of the first controller reached.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(StatusCode, Vec<u8>), ClientError> {
        let mut last = String::new();
        for (i, mut base) in self.bases().into_iter().enumerate() {
            let mut sent = self.send_to(&base, &method, path, body).await;
            // A plain port sending us to HTTPS: go there, now and from now on.
            if let Ok((resp, _)) = &sent {
                let to = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .and_then(https_origin);
                if let (true, Some(to)) = (resp.status().is_redirection(), to) {
                    if let Some(b) = self
                        .bases
                        .write()
                        .unwrap_or_else(|e| e.into_inner())
                        .get_mut(i)
                    {
                        *b = to.clone();
                    }
                    base = to;
                    sent = self.send_to(&base, &method, path, body).await;
                }
            }
            match sent {
                Ok((resp, token_sent)) => {
                    let status = resp.status();
                    if status == StatusCode::UNAUTHORIZED && self.token.is_some() && !token_sent {
                        return Err(ClientError::TokenWithheld(base));
                    }
                    let bytes = resp
                        .bytes()
                        .await
                        .map_err(|e| ClientError::Protocol(e.to_string()))?;
                    return Ok((status, Vec::from(bytes)));
                }
                Err(e) if e.is_connect() => {
                    // The innermost cause says whether it was the network or TLS.
                    let mut cause: &dyn std::error::Error = &e;
                    while let Some(inner) = cause.source() {
                        cause = inner;
                    }
                    last = format!("{base}: cannot connect: {cause}");
                    continue;
                }
                Err(e) if e.is_timeout() => {
                    return Err(ClientError::Unreachable {
                        tried: base.clone(),
                        reason: "no answer in time".into(),
                    })
                }
                Err(e) => {
                    last = format!("{base}: {e}");
                    continue;
                }
            }
        }
        Err(ClientError::Unreachable {
            tried: self.bases().join(", "),
            reason: last,
        })
    }

    /// Sends a call and reads its answer: a `T` on success, the replies of an error as
    /// [`ClientError::Api`].
    pub async fn send<T: DeserializeOwned>(&self, call: Call) -> Result<T, ClientError> {
        let (status, bytes) = self
            .raw(call.method, &call.path, call.body.as_ref())
            .await?;
        if !status.is_success() {
            let replies: Vec<ApiCallRc> = serde_json::from_slice(&bytes).map_err(|_| {
                ClientError::Protocol(format!(
                    "HTTP {status} with body: {}",
                    String::from_utf8_lossy(&bytes)
                ))
            })?;
            return Err(ClientError::Api {
                status: status.as_u16(),
                replies,
            });
        }
        let text: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
        serde_json::from_slice(text)
            .map_err(|e| ClientError::Protocol(format!("{}: {e}", call.path)))
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.send(Call::get(path)).await
    }

    /// Sends any body to any path; the typed calls are in [`calls`].
    pub async fn write<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<Vec<ApiCallRc>, ClientError> {
        let body = body
            .map(|b| serde_json::to_value(b).map_err(|e| ClientError::Protocol(e.to_string())))
            .transpose()?;
        self.send(Call::new(method, path, body)).await
    }

    // --- nodes and storage pools ---

    pub async fn nodes(
        &self,
        names: &[String],
        props: &[String],
    ) -> Result<Vec<Node>, ClientError> {
        self.send(calls::nodes(names, props)).await
    }

    pub async fn storage_pools(
        &self,
        nodes: &[String],
        pools: &[String],
    ) -> Result<Vec<StoragePool>, ClientError> {
        self.send(calls::storage_pools(nodes, pools, &[])).await
    }

    // --- resource definitions and volume definitions ---

    pub async fn resource_dfns(
        &self,
        names: &[String],
        props: &[String],
        with_vds: bool,
    ) -> Result<Vec<ResourceDefinition>, ClientError> {
        self.send(calls::resource_dfns(names, props, with_vds))
            .await
    }

    pub async fn resource_dfn_create(
        &self,
        d: &request::ResourceDefinitionCreate,
    ) -> Result<Vec<ApiCallRc>, ClientError> {
        self.send(calls::resource_dfn_create(d)).await
    }

    pub async fn resource_dfn_delete(&self, name: &str) -> Result<Vec<ApiCallRc>, ClientError> {
        self.send(calls::resource_dfn_delete(name)).await
    }

    pub async fn volume_dfn_create(
        &self,
        rsc: &str,
        v: &request::VolumeDefinitionCreate,
    ) -> Result<Vec<ApiCallRc>, ClientError> {
        self.send(calls::volume_dfn_create(rsc, v)).await
    }

    // --- resources ---

    pub async fn resources(
        &self,
        nodes: &[String],
        rscs: &[String],
        pools: &[String],
        props: &[String],
    ) -> Result<Vec<ResourceWithVolumes>, ClientError> {
        self.send(calls::resources(nodes, rscs, pools, props)).await
    }

    pub async fn resource_create(
        &self,
        rsc: &str,
        reqs: &[request::ResourceCreate],
    ) -> Result<Vec<ApiCallRc>, ClientError> {
        self.send(calls::resource_create(rsc, reqs)).await
    }

    pub async fn resource_modify(
        &self,
        rsc: &str,
        node: &str,
        m: &ResourceModify,
    ) -> Result<Vec<ApiCallRc>, ClientError> {
        self.send(calls::resource_modify(rsc, node, m)).await
    }

    pub async fn resource_delete(
        &self,
        rsc: &str,
        node: &str,
    ) -> Result<Vec<ApiCallRc>, ClientError> {
        self.send(calls::resource_delete(rsc, node)).await
    }

    pub async fn autoplace(
        &self,
        rsc: &str,
        req: &request::AutoPlaceRequest,
    ) -> Result<Vec<ApiCallRc>, ClientError> {
        self.send(calls::autoplace(rsc, req)).await
    }

    pub async fn make_available(
        &self,
        rsc: &str,
        node: &str,
        req: &ResourceMakeAvailable,
    ) -> Result<Vec<ApiCallRc>, ClientError> {
        self.send(calls::make_available(rsc, node, req)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controller_addresses() {
        assert_eq!(controller_url("alpha").unwrap(), "http://alpha:3370");
        assert_eq!(controller_url("alpha:4000").unwrap(), "http://alpha:4000");
        assert_eq!(
            controller_url("http://10.0.0.1:3370/").unwrap(),
            "http://10.0.0.1:3370"
        );
        assert_eq!(
            controller_url("linstor://beta").unwrap(),
            "http://beta:3370"
        );
        assert_eq!(controller_url("::1").unwrap(), "http://[::1]:3370");
        assert_eq!(controller_url("[::1]:5000").unwrap(), "http://[::1]:5000");
        assert_eq!(controller_url("https://x").unwrap(), "https://x:3371");
        assert_eq!(
            controller_url("linstor+ssl://x:4443").unwrap(),
            "https://x:4443"
        );
        assert!(controller_url("ftp://x").is_err());
        assert_eq!(
            https_origin("https://10.0.0.1:3371/v1/nodes?x=1").as_deref(),
            Some("https://10.0.0.1:3371")
        );
        assert_eq!(https_origin("http://a/b"), None);
        assert!(controller_url(" ").is_err());
    }

    #[test]
    fn queries() {
        let q = QueryBuilder::new()
            .list("nodes", &["a".into(), "b".into()])
            .list("props", &["Aux/site=a".into()])
            .flag("with_volume_definitions", true)
            .build();
        assert_eq!(
            q,
            "?nodes=a&nodes=b&props=Aux%2Fsite%3Da&with_volume_definitions=true"
        );
        assert_eq!(QueryBuilder::new().build(), "");
    }

    /// Serves `n` requests on a local port and answers each `[]`; hands back their request
    /// lines and bodies as received.
    async fn requests(n: usize) -> (String, tokio::task::JoinHandle<Vec<(String, String)>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let served = tokio::spawn(async move {
            let mut seen = Vec::new();
            while seen.len() < n {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let k = s.read(&mut chunk).await.unwrap();
                    assert!(k > 0, "the request ended early");
                    buf.extend_from_slice(&chunk[..k]);
                    let text = String::from_utf8_lossy(&buf).into_owned();
                    let Some((head, body)) = text.split_once("\r\n\r\n") else {
                        continue;
                    };
                    let len = head
                        .lines()
                        .find_map(|l| {
                            let l = l.to_ascii_lowercase();
                            l.strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if body.len() < len {
                        continue;
                    }
                    s.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n[]")
                        .await
                        .unwrap();
                    let line = head.lines().next().unwrap_or_default().to_string();
                    seen.push((line, body.to_string()));
                    break;
                }
            }
            seen
        });
        (addr, served)
    }

    #[tokio::test]
    async fn create_bodies_carry_only_what_is_set() {
        let (addr, served) = requests(4).await;
        let c = Client::new(&[addr], Duration::from_secs(10)).unwrap();
        let mut rd = request::ResourceDefinitionCreate::default();
        rd.resource_definition.name = Some("r1".into());
        c.resource_dfn_create(&rd).await.unwrap();
        let mut vd = request::VolumeDefinitionCreate::default();
        vd.volume_definition.size_kib = 2048;
        c.volume_dfn_create("my rsc", &vd).await.unwrap();
        let mut r = request::ResourceCreate::default();
        r.resource.node_name = "alpha".into();
        c.resource_create("r1", &[r]).await.unwrap();
        let mut a = request::AutoPlaceRequest::default();
        a.select_filter.place_count = Some(2);
        c.autoplace("r1", &a).await.unwrap();
        let want = [
            (
                "POST /v1/resource-definitions",
                r#"{"resource_definition":{"name":"r1"}}"#,
            ),
            (
                "POST /v1/resource-definitions/my%20rsc/volume-definitions",
                r#"{"volume_definition":{"size_kib":2048}}"#,
            ),
            (
                "POST /v1/resource-definitions/r1/resources",
                r#"[{"resource":{"node_name":"alpha"}}]"#,
            ),
            (
                "POST /v1/resource-definitions/r1/autoplace",
                r#"{"select_filter":{"place_count":2}}"#,
            ),
        ]
        .map(|(line, body)| (format!("{line} HTTP/1.1"), body.to_string()));
        assert_eq!(served.await.unwrap(), want);
    }

    #[tokio::test]
    async fn unreachable_controller_is_reported() {
        let c = Client::new(&["127.0.0.1:1".to_string()], Duration::from_secs(2)).unwrap();
        let err = c
            .send::<ControllerVersion>(calls::controller_version())
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Unreachable { .. }), "{err:?}");
        assert!(err.to_string().contains("127.0.0.1:1"));
    }
}
