//! A typed client of the LINSTOR REST API v1.
//!
//! Controllers are tried in the order given (`host`, `host:port`, or a `http://` URL, as in
//! `LS_CONTROLLERS`); the first that answers serves the call.

use std::time::Duration;

pub use reqwest::Method;
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde::Serialize;
use strata_api::paths;
use strata_api::types::*;
use strata_api::ApiCallRc;

pub const DEFAULT_PORT: u16 = 3370;

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
}

impl ClientError {
    pub fn replies(&self) -> &[ApiCallRc] {
        match self {
            ClientError::Api { replies, .. } => replies,
            _ => &[],
        }
    }
}

/// Turns `alpha`, `alpha:3370`, `[::1]:3370` or `http://alpha:3370` into a base URL.
pub fn controller_url(spec: &str) -> Result<String, ClientError> {
    let s = spec.trim().trim_end_matches('/');
    if s.is_empty() {
        return Err(ClientError::BadController(spec.to_string()));
    }
    if let Some(rest) = s.strip_prefix("http://") {
        return Ok(format!("http://{}", with_port(rest)));
    }
    if s.starts_with("https://") || s.starts_with("linstor+ssl://") {
        return Err(ClientError::BadController(format!(
            "{spec} (HTTPS is not supported; use http://)"
        )));
    }
    let s = s.strip_prefix("linstor://").unwrap_or(s);
    Ok(format!("http://{}", with_port(s)))
}

fn with_port(hostport: &str) -> String {
    if hostport.starts_with('[') {
        if hostport.contains("]:") {
            hostport.to_string()
        } else {
            format!("{hostport}:{DEFAULT_PORT}")
        }
    } else if hostport.matches(':').count() > 1 {
        format!("[{hostport}]:{DEFAULT_PORT}")
    } else if hostport.contains(':') {
        hostport.to_string()
    } else {
        format!("{hostport}:{DEFAULT_PORT}")
    }
}

#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    bases: Vec<String>,
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

    pub fn build(&self) -> String {
        if self.0.is_empty() {
            return String::new();
        }
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        format!("?{}", parts.join("&"))
    }
}

fn encode(s: &str) -> String {
    paths::encode(s)
}

/// A path segment, percent-encoded.
pub fn seg(s: &str) -> String {
    paths::encode(s)
}

impl Client {
    pub fn new(controllers: &[String], timeout: Duration) -> Result<Client, ClientError> {
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
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(timeout)
            .build()
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        Ok(Client { http, bases })
    }

    pub fn controllers(&self) -> &[String] {
        &self.bases
    }

    /// Sends a request and returns the status and raw body of the first controller reached.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(StatusCode, Vec<u8>), ClientError> {
        let mut last = String::new();
        for base in &self.bases {
            let mut req = self.http.request(method.clone(), format!("{base}{path}"));
            if let Some(b) = body {
                req = req.json(b);
            }
            match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let bytes = resp
                        .bytes()
                        .await
                        .map_err(|e| ClientError::Protocol(e.to_string()))?;
                    return Ok((status, Vec::from(bytes)));
                }
                Err(e) if e.is_connect() => {
                    last = format!("{base}: connection refused or unreachable");
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
            tried: self.bases.join(", "),
            reason: last,
        })
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let body = body
            .map(|b| serde_json::to_value(b).map_err(|e| ClientError::Protocol(e.to_string())))
            .transpose()?;
        let (status, bytes) = self.raw(method, path, body.as_ref()).await?;
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
        serde_json::from_slice(text).map_err(|e| ClientError::Protocol(format!("{path}: {e}")))
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call::<(), T>(Method::GET, path, None).await
    }

    pub async fn write<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<Vec<ApiCallRc>, ClientError> {
        self.call(method, path, body).await
    }

    // --- controller ---

    pub async fn version(&self) -> Result<ControllerVersion, ClientError> {
        self.get(paths::CONTROLLER_VERSION).await
    }

    pub async fn controller_props(&self) -> Result<Props, ClientError> {
        self.get(paths::CONTROLLER_PROPS).await
    }

    pub async fn controller_props_modify(
        &self,
        m: &PropsModify,
    ) -> Result<Vec<ApiCallRc>, ClientError> {
        self.write(Method::POST, paths::CONTROLLER_PROPS, Some(m))
            .await
    }

    // --- nodes ---

    pub async fn nodes(
        &self,
        names: &[String],
        props: &[String],
    ) -> Result<Vec<Node>, ClientError> {
        let q = QueryBuilder::new()
            .list("nodes", names)
            .list("props", props)
            .build();
        self.get(&format!("{}{q}", paths::NODES)).await
    }

    pub async fn node_create(&self, n: &Node) -> Result<Vec<ApiCallRc>, ClientError> {
        self.write(Method::POST, paths::NODES, Some(n)).await
    }

    pub async fn node_modify(
        &self,
        node: &str,
        m: &NodeModify,
    ) -> Result<Vec<ApiCallRc>, ClientError> {
        self.write(Method::PUT, &paths::fill(paths::NODE, &[node]), Some(m))
            .await
    }

    pub async fn node_delete(&self, node: &str) -> Result<Vec<ApiCallRc>, ClientError> {
        self.write::<()>(Method::DELETE, &paths::fill(paths::NODE, &[node]), None)
            .await
    }

    pub async fn node_lost(&self, node: &str) -> Result<Vec<ApiCallRc>, ClientError> {
        self.write::<()>(
            Method::DELETE,
            &paths::fill(paths::NODE_LOST, &[node]),
            None,
        )
        .await
    }

    pub async fn node_reconnect(&self, node: &str) -> Result<Vec<ApiCallRc>, ClientError> {
        self.write::<()>(
            Method::PUT,
            &paths::fill(paths::NODE_RECONNECT, &[node]),
            None,
        )
        .await
    }

    pub async fn netifs(&self, node: &str) -> Result<Vec<NetInterface>, ClientError> {
        self.get(&paths::fill(paths::NET_IFS, &[node])).await
    }

    pub async fn netif_create(
        &self,
        node: &str,
        n: &NetInterface,
    ) -> Result<Vec<ApiCallRc>, ClientError> {
        self.write(Method::POST, &paths::fill(paths::NET_IFS, &[node]), Some(n))
            .await
    }

    pub async fn netif_modify(
        &self,
        node: &str,
        name: &str,
        n: &NetInterface,
    ) -> Result<Vec<ApiCallRc>, ClientError> {
        self.write(
            Method::PUT,
            &paths::fill(paths::NET_IF, &[node, name]),
            Some(n),
        )
        .await
    }

    pub async fn netif_delete(
        &self,
        node: &str,
        name: &str,
    ) -> Result<Vec<ApiCallRc>, ClientError> {
        self.write::<()>(
            Method::DELETE,
            &paths::fill(paths::NET_IF, &[node, name]),
            None,
        )
        .await
    }

    // --- storage pools ---

    pub async fn storage_pools(
        &self,
        nodes: &[String],
        pools: &[String],
    ) -> Result<Vec<StoragePool>, ClientError> {
        let q = QueryBuilder::new()
            .list("nodes", nodes)
            .list("storage_pools", pools)
            .build();
        self.get(&format!("{}{q}", paths::VIEW_STOR_POOLS)).await
    }

    pub async fn storage_pool_create(
        &self,
        node: &str,
        sp: &StoragePool,
    ) -> Result<Vec<ApiCallRc>, ClientError> {
        self.write(
            Method::POST,
            &paths::fill(paths::NODE_STOR_POOLS, &[node]),
            Some(sp),
        )
        .await
    }

    pub async fn storage_pool_modify(
        &self,
        node: &str,
        pool: &str,
        m: &PropsModify,
    ) -> Result<Vec<ApiCallRc>, ClientError> {
        self.write(
            Method::PUT,
            &paths::fill(paths::NODE_STOR_POOL, &[node, pool]),
            Some(m),
        )
        .await
    }

    pub async fn storage_pool_delete(
        &self,
        node: &str,
        pool: &str,
    ) -> Result<Vec<ApiCallRc>, ClientError> {
        self.write::<()>(
            Method::DELETE,
            &paths::fill(paths::NODE_STOR_POOL, &[node, pool]),
            None,
        )
        .await
    }

    pub async fn storage_pool_dfns(&self) -> Result<Vec<StoragePoolDefinition>, ClientError> {
        self.get(paths::STOR_POOL_DFNS).await
    }

    pub async fn storage_pool_dfn_create(
        &self,
        d: &StoragePoolDefinition,
    ) -> Result<Vec<ApiCallRc>, ClientError> {
        self.write(Method::POST, paths::STOR_POOL_DFNS, Some(d))
            .await
    }

    pub async fn storage_pool_dfn_modify(
        &self,
        name: &str,
        m: &PropsModify,
    ) -> Result<Vec<ApiCallRc>, ClientError> {
        self.write(
            Method::PUT,
            &paths::fill(paths::STOR_POOL_DFN, &[name]),
            Some(m),
        )
        .await
    }

    pub async fn storage_pool_dfn_delete(&self, name: &str) -> Result<Vec<ApiCallRc>, ClientError> {
        self.write::<()>(
            Method::DELETE,
            &paths::fill(paths::STOR_POOL_DFN, &[name]),
            None,
        )
        .await
    }

    // --- resource definitions and volume definitions ---

    pub async fn resource_dfns(
        &self,
        names: &[String],
        props: &[String],
        with_vds: bool,
    ) -> Result<Vec<ResourceDefinition>, ClientError> {
        let q = QueryBuilder::new()
            .list("resource_definitions", names)
            .list("props", props)
            .flag("with_volume_definitions", with_vds)
            .build();
        self.get(&format!("{}{q}", paths::RSC_DFNS)).await
    }

    pub async fn resource_dfn_create(
        &self,
        d: &ResourceDefinitionCreate,
    ) -> Result<Vec<ApiCallRc>, ClientError> {
        self.write(Method::POST, paths::RSC_DFNS, Some(d)).await
    }

    /// [`Client::resource_dfn_create`] with only the fields set sent (see [`sparse`]).
    pub async fn resource_dfn_create_sparse(
        &self,
        d: &sparse::ResourceDefinitionCreate,
    ) -> Result<Vec<ApiCallRc>, ClientError> {
        self.write(Method::POST, paths::RSC_DFNS, Some(d)).await
    }

    pub async fn resource_dfn_modify(
        &self,
        name: &str,
        m: &ResourceDefinitionModify,
    ) -> Result<Vec<ApiCallRc>, ClientError> {
        self.write(Method::PUT, &paths::fill(paths::RSC_DFN, &[name]), Some(m))
            .await
    }

    pub async fn resource_dfn_delete(&self, name: &str) -> Result<Vec<ApiCallRc>, ClientError> {
        self.write::<()>(Method::DELETE, &paths::fill(paths::RSC_DFN, &[name]), None)
            .await
    }

    pub async fn volume_dfns(&self, rsc: &str) -> Result<Vec<VolumeDefinition>, ClientError> {
        self.get(&paths::fill(paths::VLM_DFNS, &[rsc])).await
    }

    pub async fn volume_dfn_create(
        &self,
        rsc: &str,
        v: &VolumeDefinitionCreate,
    ) -> Result<Vec<ApiCallRc>, ClientError> {
        self.write(Method::POST, &paths::fill(paths::VLM_DFNS, &[rsc]), Some(v))
            .await
    }

    /// [`Client::volume_dfn_create`] with only the fields set sent (see [`sparse`]).
    pub async fn volume_dfn_create_sparse(
        &self,
        rsc: &str,
        v: &sparse::VolumeDefinitionCreate,
    ) -> Result<Vec<ApiCallRc>, ClientError> {
        self.write(Method::POST, &paths::fill(paths::VLM_DFNS, &[rsc]), Some(v))
            .await
    }

    pub async fn volume_dfn_modify(
        &self,
        rsc: &str,
        nr: u32,
        m: &VolumeDefinitionModify,
    ) -> Result<Vec<ApiCallRc>, ClientError> {
        self.write(
            Method::PUT,
            &paths::fill(paths::VLM_DFN, &[rsc, &nr.to_string()]),
            Some(m),
        )
        .await
    }

    pub async fn volume_dfn_delete(
        &self,
        rsc: &str,
        nr: u32,
    ) -> Result<Vec<ApiCallRc>, ClientError> {
        self.write::<()>(
            Method::DELETE,
            &paths::fill(paths::VLM_DFN, &[rsc, &nr.to_string()]),
            None,
        )
        .await
    }

    // --- resources ---

    pub async fn resources(
        &self,
        nodes: &[String],
        rscs: &[String],
        pools: &[String],
        props: &[String],
    ) -> Result<Vec<ResourceWithVolumes>, ClientError> {
        let q = QueryBuilder::new()
            .list("nodes", nodes)
            .list("resources", rscs)
            .list("storage_pools", pools)
            .list("props", props)
            .build();
        self.get(&format!("{}{q}", paths::VIEW_RESOURCES)).await
    }

    pub async fn resource_create(
        &self,
        rsc: &str,
        reqs: &[ResourceCreate],
    ) -> Result<Vec<ApiCallRc>, ClientError> {
        self.write(Method::POST, &paths::fill(paths::RSCS, &[rsc]), Some(&reqs))
            .await
    }

    /// [`Client::resource_create`] with only the fields set sent (see [`sparse`]).
    pub async fn resource_create_sparse(
        &self,
        rsc: &str,
        reqs: &[sparse::ResourceCreate],
    ) -> Result<Vec<ApiCallRc>, ClientError> {
        self.write(Method::POST, &paths::fill(paths::RSCS, &[rsc]), Some(&reqs))
            .await
    }

    pub async fn resource_modify(
        &self,
        rsc: &str,
        node: &str,
        m: &ResourceModify,
    ) -> Result<Vec<ApiCallRc>, ClientError> {
        self.write(Method::PUT, &paths::fill(paths::RSC, &[rsc, node]), Some(m))
            .await
    }

    pub async fn resource_delete(
        &self,
        rsc: &str,
        node: &str,
    ) -> Result<Vec<ApiCallRc>, ClientError> {
        self.write::<()>(Method::DELETE, &paths::fill(paths::RSC, &[rsc, node]), None)
            .await
    }

    pub async fn volume_modify(
        &self,
        rsc: &str,
        node: &str,
        nr: u32,
        m: &VolumeModify,
    ) -> Result<Vec<ApiCallRc>, ClientError> {
        self.write(
            Method::PUT,
            &paths::fill(paths::VLM, &[rsc, node, &nr.to_string()]),
            Some(m),
        )
        .await
    }

    pub async fn autoplace(
        &self,
        rsc: &str,
        req: &AutoPlaceRequest,
    ) -> Result<Vec<ApiCallRc>, ClientError> {
        self.write(
            Method::POST,
            &paths::fill(paths::AUTOPLACE, &[rsc]),
            Some(req),
        )
        .await
    }

    /// [`Client::autoplace`] with the filter of [`sparse::AutoPlaceRequest`].
    pub async fn autoplace_sparse(
        &self,
        rsc: &str,
        req: &sparse::AutoPlaceRequest,
    ) -> Result<Vec<ApiCallRc>, ClientError> {
        self.write(
            Method::POST,
            &paths::fill(paths::AUTOPLACE, &[rsc]),
            Some(req),
        )
        .await
    }

    pub async fn make_available(
        &self,
        rsc: &str,
        node: &str,
        req: &ResourceMakeAvailable,
    ) -> Result<Vec<ApiCallRc>, ClientError> {
        self.write(
            Method::POST,
            &paths::fill(paths::MAKE_AVAILABLE, &[rsc, node]),
            Some(req),
        )
        .await
    }

    // --- resource groups and volume groups ---

    pub async fn resource_groups(
        &self,
        names: &[String],
        props: &[String],
    ) -> Result<Vec<ResourceGroup>, ClientError> {
        let q = QueryBuilder::new()
            .list("resource_groups", names)
            .list("props", props)
            .build();
        self.get(&format!("{}{q}", paths::RSC_GRPS)).await
    }

    pub async fn resource_group_create(
        &self,
        g: &ResourceGroup,
    ) -> Result<Vec<ApiCallRc>, ClientError> {
        self.write(Method::POST, paths::RSC_GRPS, Some(g)).await
    }

    pub async fn resource_group_modify(
        &self,
        name: &str,
        m: &ResourceGroupModify,
    ) -> Result<Vec<ApiCallRc>, ClientError> {
        self.write(Method::PUT, &paths::fill(paths::RSC_GRP, &[name]), Some(m))
            .await
    }

    pub async fn resource_group_delete(&self, name: &str) -> Result<Vec<ApiCallRc>, ClientError> {
        self.write::<()>(Method::DELETE, &paths::fill(paths::RSC_GRP, &[name]), None)
            .await
    }

    pub async fn resource_group_spawn(
        &self,
        name: &str,
        s: &ResourceGroupSpawn,
    ) -> Result<Vec<ApiCallRc>, ClientError> {
        self.write(
            Method::POST,
            &paths::fill(paths::RSC_GRP_SPAWN, &[name]),
            Some(s),
        )
        .await
    }

    pub async fn resource_group_max_volume_size(
        &self,
        name: &str,
    ) -> Result<MaxVolumeSizes, ClientError> {
        self.get(&paths::fill(paths::RSC_GRP_MAX_VLM_SIZE, &[name]))
            .await
    }

    pub async fn max_volume_size(
        &self,
        f: &AutoSelectFilter,
    ) -> Result<MaxVolumeSizes, ClientError> {
        self.call(Method::OPTIONS, paths::MAX_VLM_SIZE, Some(f))
            .await
    }

    pub async fn volume_groups(&self, rg: &str) -> Result<Vec<VolumeGroup>, ClientError> {
        self.get(&paths::fill(paths::VLM_GRPS, &[rg])).await
    }

    pub async fn volume_group_create(
        &self,
        rg: &str,
        v: &VolumeGroup,
    ) -> Result<Vec<ApiCallRc>, ClientError> {
        self.write(Method::POST, &paths::fill(paths::VLM_GRPS, &[rg]), Some(v))
            .await
    }

    pub async fn volume_group_modify(
        &self,
        rg: &str,
        nr: u32,
        m: &VolumeGroupModify,
    ) -> Result<Vec<ApiCallRc>, ClientError> {
        self.write(
            Method::PUT,
            &paths::fill(paths::VLM_GRP, &[rg, &nr.to_string()]),
            Some(m),
        )
        .await
    }

    pub async fn volume_group_delete(
        &self,
        rg: &str,
        nr: u32,
    ) -> Result<Vec<ApiCallRc>, ClientError> {
        self.write::<()>(
            Method::DELETE,
            &paths::fill(paths::VLM_GRP, &[rg, &nr.to_string()]),
            None,
        )
        .await
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
        assert!(controller_url("https://x").is_err());
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

    /// Serves one request on a local port and answers it `[]`; hands back its request line
    /// and body as received.
    async fn one_request() -> (String, tokio::task::JoinHandle<(String, String)>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let served = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let n = s.read(&mut chunk).await.unwrap();
                assert!(n > 0, "the request ended early");
                buf.extend_from_slice(&chunk[..n]);
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
                return (line, body.to_string());
            }
        });
        (addr, served)
    }

    #[tokio::test]
    async fn sparse_bodies_carry_only_what_is_set() {
        let timeout = Duration::from_secs(10);
        let (addr, served) = one_request().await;
        let c = Client::new(&[addr], timeout).unwrap();
        let rd = sparse::ResourceDefinitionCreate {
            resource_definition: sparse::ResourceDefinition {
                name: Some("r1".into()),
                ..Default::default()
            },
        };
        c.resource_dfn_create_sparse(&rd).await.unwrap();
        assert_eq!(
            served.await.unwrap(),
            (
                "POST /v1/resource-definitions HTTP/1.1".to_string(),
                r#"{"resource_definition":{"name":"r1"}}"#.to_string()
            )
        );

        let (addr, served) = one_request().await;
        let c = Client::new(&[addr], timeout).unwrap();
        let vd = sparse::VolumeDefinitionCreate {
            volume_definition: sparse::VolumeDefinition {
                size_kib: 2048,
                ..Default::default()
            },
        };
        c.volume_dfn_create_sparse("my rsc", &vd).await.unwrap();
        assert_eq!(
            served.await.unwrap(),
            (
                "POST /v1/resource-definitions/my%20rsc/volume-definitions HTTP/1.1".to_string(),
                r#"{"volume_definition":{"size_kib":2048}}"#.to_string()
            )
        );

        let (addr, served) = one_request().await;
        let c = Client::new(&[addr], timeout).unwrap();
        let r = sparse::ResourceCreate {
            resource: sparse::Resource {
                node_name: "alpha".into(),
                ..Default::default()
            },
        };
        c.resource_create_sparse("r1", &[r]).await.unwrap();
        assert_eq!(
            served.await.unwrap(),
            (
                "POST /v1/resource-definitions/r1/resources HTTP/1.1".to_string(),
                r#"[{"resource":{"node_name":"alpha"}}]"#.to_string()
            )
        );

        let (addr, served) = one_request().await;
        let c = Client::new(&[addr], timeout).unwrap();
        let mut a = sparse::AutoPlaceRequest::default();
        a.select_filter.filter.place_count = Some(2);
        c.autoplace_sparse("r1", &a).await.unwrap();
        assert_eq!(
            served.await.unwrap(),
            (
                "POST /v1/resource-definitions/r1/autoplace HTTP/1.1".to_string(),
                r#"{"select_filter":{"place_count":2}}"#.to_string()
            )
        );
    }

    #[tokio::test]
    async fn unreachable_controller_is_reported() {
        let c = Client::new(&["127.0.0.1:1".to_string()], Duration::from_secs(2)).unwrap();
        let err = c.version().await.unwrap_err();
        assert!(matches!(err, ClientError::Unreachable { .. }), "{err:?}");
        assert!(err.to_string().contains("127.0.0.1:1"));
    }
}
