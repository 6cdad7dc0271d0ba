//! Every call of the REST API a client of this project makes, written once: the method, the
//! path (from [`strata_api::paths`]) and the body type of each operation. A [`Call`] is plain
//! data; [`crate::Client::send`] sends one, and the `linstor` command line builds its requests
//! from these and compares them in its tests. What clients create they describe with the
//! bodies of [`strata_api::types::request`], which send only the fields set.

use reqwest::Method;
use serde::Serialize;
use serde_json::Value;
use strata_api::paths::{self, fill};
use strata_api::types::*;

use crate::QueryBuilder;

/// One REST call: everything needed to send it, nothing that needs a server to compute.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub method: Method,
    pub path: String,
    pub body: Option<Value>,
}

impl Call {
    pub fn new(method: Method, path: impl Into<String>, body: Option<Value>) -> Call {
        Call {
            method,
            path: path.into(),
            body,
        }
    }

    pub fn get(path: impl Into<String>) -> Call {
        Call::new(Method::GET, path, None)
    }

    pub fn post(path: impl Into<String>, body: Value) -> Call {
        Call::new(Method::POST, path, Some(body))
    }

    pub fn put(path: impl Into<String>, body: Value) -> Call {
        Call::new(Method::PUT, path, Some(body))
    }

    pub fn delete(path: impl Into<String>) -> Call {
        Call::new(Method::DELETE, path, None)
    }
}

/// A body as JSON. The wire types are plain data with string keys, which always serialise.
fn json<B: Serialize>(body: &B) -> Value {
    serde_json::to_value(body).expect("wire types serialise to JSON")
}

fn with_body<B: Serialize>(method: Method, path: impl Into<String>, body: &B) -> Call {
    Call::new(method, path, Some(json(body)))
}

fn nr(n: u32) -> String {
    n.to_string()
}

// --- controller ---

pub fn controller_version() -> Call {
    Call::get(paths::CONTROLLER_VERSION)
}

pub fn controller_props() -> Call {
    Call::get(paths::CONTROLLER_PROPS)
}

pub fn controller_props_modify(m: &PropsModify) -> Call {
    with_body(Method::POST, paths::CONTROLLER_PROPS, m)
}

// --- token authentication ---

pub fn auth_init(req: &strata_api::auth::InitAuthTokenRequest) -> Call {
    with_body(Method::POST, paths::AUTH_INIT, req)
}

pub fn auth_tokens() -> Call {
    Call::get(paths::AUTH_TOKENS)
}

pub fn auth_token_create(req: &strata_api::auth::CreateAuthToken) -> Call {
    with_body(Method::POST, paths::AUTH_TOKENS, req)
}

pub fn auth_token_modify(id: u64, req: &strata_api::auth::ModifyAuthToken) -> Call {
    with_body(
        Method::PUT,
        fill(paths::AUTH_TOKEN, &[&id.to_string()]),
        req,
    )
}

pub fn auth_token_delete(id: u64) -> Call {
    Call::delete(fill(paths::AUTH_TOKEN, &[&id.to_string()]))
}

// --- nodes and their connections ---

pub fn nodes(names: &[String], props: &[String]) -> Call {
    let q = QueryBuilder::new()
        .list("nodes", names)
        .list("props", props)
        .build();
    Call::get(format!("{}{q}", paths::NODES))
}

pub fn node_create(n: &request::Node) -> Call {
    with_body(Method::POST, paths::NODES, n)
}

pub fn node_modify(node: &str, m: &NodeModify) -> Call {
    with_body(Method::PUT, fill(paths::NODE, &[node]), m)
}

pub fn node_delete(node: &str) -> Call {
    Call::delete(fill(paths::NODE, &[node]))
}

pub fn node_lost(node: &str) -> Call {
    Call::delete(fill(paths::NODE_LOST, &[node]))
}

/// A new one-time join token for `node` (made by the controller when `token` is `None`).
pub fn node_join_token(node: &str, token: Option<&str>) -> Call {
    with_body(
        Method::POST,
        fill(paths::NODE_JOIN_TOKEN, &[node]),
        &serde_json::json!({ "join_token": token }),
    )
}

pub fn node_reconnect(node: &str) -> Call {
    Call::new(Method::PUT, fill(paths::NODE_RECONNECT, &[node]), None)
}

pub fn netif_create(node: &str, n: &NetInterface) -> Call {
    with_body(Method::POST, fill(paths::NET_IFS, &[node]), n)
}

pub fn netif_modify(node: &str, netif: &str, n: &request::NetInterface) -> Call {
    with_body(Method::PUT, fill(paths::NET_IF, &[node, netif]), n)
}

pub fn netif_delete(node: &str, netif: &str) -> Call {
    Call::delete(fill(paths::NET_IF, &[node, netif]))
}

/// LINSTOR's connection of two nodes. This controller does not serve it (it is not in
/// [`paths::ROUTES`]), so its template lives here and not in [`strata_api::paths`]; the
/// command line still sends it, as python-linstor does, and shows the answer.
const NODE_CONN: &str = "/v1/node-connections/{node_a}/{node_b}";

pub fn node_connection_modify(node_a: &str, node_b: &str, m: &PropsModify) -> Call {
    with_body(Method::PUT, fill(NODE_CONN, &[node_a, node_b]), m)
}

// --- storage pools and their definitions ---

pub fn storage_pools(nodes: &[String], pools: &[String], props: &[String]) -> Call {
    let q = QueryBuilder::new()
        .list("nodes", nodes)
        .list("storage_pools", pools)
        .list("props", props)
        .build();
    Call::get(format!("{}{q}", paths::VIEW_STOR_POOLS))
}

pub fn storage_pool_create(node: &str, sp: &request::StoragePool) -> Call {
    with_body(Method::POST, fill(paths::NODE_STOR_POOLS, &[node]), sp)
}

pub fn storage_pool_modify(node: &str, pool: &str, m: &PropsModify) -> Call {
    with_body(Method::PUT, fill(paths::NODE_STOR_POOL, &[node, pool]), m)
}

pub fn storage_pool_delete(node: &str, pool: &str) -> Call {
    Call::delete(fill(paths::NODE_STOR_POOL, &[node, pool]))
}

pub fn storage_pool_dfns() -> Call {
    Call::get(paths::STOR_POOL_DFNS)
}

pub fn storage_pool_dfn_create(d: &request::StoragePoolDefinition) -> Call {
    with_body(Method::POST, paths::STOR_POOL_DFNS, d)
}

pub fn storage_pool_dfn_modify(name: &str, m: &PropsModify) -> Call {
    with_body(Method::PUT, fill(paths::STOR_POOL_DFN, &[name]), m)
}

pub fn storage_pool_dfn_delete(name: &str) -> Call {
    Call::delete(fill(paths::STOR_POOL_DFN, &[name]))
}

// --- resource definitions and volume definitions ---

pub fn resource_dfns(names: &[String], props: &[String], with_vds: bool) -> Call {
    let q = QueryBuilder::new()
        .list("resource_definitions", names)
        .flag("with_volume_definitions", with_vds)
        .list("props", props)
        .build();
    Call::get(format!("{}{q}", paths::RSC_DFNS))
}

pub fn resource_dfn(name: &str) -> Call {
    Call::get(fill(paths::RSC_DFN, &[name]))
}

pub fn resource_dfn_create(d: &request::ResourceDefinitionCreate) -> Call {
    with_body(Method::POST, paths::RSC_DFNS, d)
}

pub fn resource_dfn_modify(name: &str, m: &ResourceDefinitionModify) -> Call {
    with_body(Method::PUT, fill(paths::RSC_DFN, &[name]), m)
}

pub fn resource_dfn_delete(name: &str) -> Call {
    Call::delete(fill(paths::RSC_DFN, &[name]))
}

pub fn resource_dfn_clone(rsc: &str, c: &ResourceDefinitionCloneRequest) -> Call {
    with_body(Method::POST, fill(paths::CLONE, &[rsc]), c)
}

pub fn volume_dfn_create(rsc: &str, v: &request::VolumeDefinitionCreate) -> Call {
    with_body(Method::POST, fill(paths::VLM_DFNS, &[rsc]), v)
}

pub fn volume_dfn_modify(rsc: &str, vnr: u32, m: &VolumeDefinitionModify) -> Call {
    with_body(Method::PUT, fill(paths::VLM_DFN, &[rsc, &nr(vnr)]), m)
}

pub fn volume_dfn_delete(rsc: &str, vnr: u32) -> Call {
    Call::delete(fill(paths::VLM_DFN, &[rsc, &nr(vnr)]))
}

// --- resources and volumes ---

pub fn resources(nodes: &[String], rscs: &[String], pools: &[String], props: &[String]) -> Call {
    let q = QueryBuilder::new()
        .list("nodes", nodes)
        .list("storage_pools", pools)
        .list("resources", rscs)
        .list("props", props)
        .build();
    Call::get(format!("{}{q}", paths::VIEW_RESOURCES))
}

pub fn resource_create(rsc: &str, reqs: &[request::ResourceCreate]) -> Call {
    with_body(Method::POST, fill(paths::RSCS, &[rsc]), &reqs)
}

pub fn resource_modify(rsc: &str, node: &str, m: &ResourceModify) -> Call {
    with_body(Method::PUT, fill(paths::RSC, &[rsc, node]), m)
}

pub fn resource_delete(rsc: &str, node: &str) -> Call {
    Call::delete(fill(paths::RSC, &[rsc, node]))
}

pub fn volume_modify(rsc: &str, node: &str, vnr: u32, m: &VolumeModify) -> Call {
    with_body(Method::PUT, fill(paths::VLM, &[rsc, node, &nr(vnr)]), m)
}

pub fn autoplace(rsc: &str, req: &request::AutoPlaceRequest) -> Call {
    with_body(Method::POST, fill(paths::AUTOPLACE, &[rsc]), req)
}

pub fn make_available(rsc: &str, node: &str, req: &ResourceMakeAvailable) -> Call {
    with_body(Method::POST, fill(paths::MAKE_AVAILABLE, &[rsc, node]), req)
}

pub fn toggle_disk(rsc: &str, node: &str, req: &ToggleDiskRequest) -> Call {
    with_body(Method::PUT, fill(paths::TOGGLE_DISK, &[rsc, node]), req)
}

pub fn resource_connection_modify(
    rsc: &str,
    node_a: &str,
    node_b: &str,
    m: &ResourceConnectionModify,
) -> Call {
    with_body(
        Method::PUT,
        fill(paths::RSC_CONN, &[rsc, node_a, node_b]),
        m,
    )
}

// --- snapshots ---

pub fn snapshots(rscs: &[String], nodes: &[String]) -> Call {
    let q = QueryBuilder::new()
        .list("resources", rscs)
        .list("nodes", nodes)
        .build();
    Call::get(format!("{}{q}", paths::VIEW_SNAPSHOTS))
}

pub fn snapshot_create(rsc: &str, s: &request::Snapshot) -> Call {
    with_body(Method::POST, fill(paths::SNAPSHOTS, &[rsc]), s)
}

pub fn snapshot_create_multi(m: &request::CreateMultiSnapshotRequest) -> Call {
    with_body(Method::POST, paths::SNAPSHOT_MULTI, m)
}

/// Deletes a snapshot: every copy, or only those on `nodes`.
pub fn snapshot_delete(rsc: &str, snap: &str, nodes: &[String]) -> Call {
    let q = QueryBuilder::new().list("nodes", nodes).build();
    Call::delete(format!("{}{q}", fill(paths::SNAPSHOT, &[rsc, snap])))
}

pub fn snapshot_rollback(rsc: &str, snap: &str, r: &SnapshotRollback) -> Call {
    with_body(
        Method::POST,
        fill(paths::SNAPSHOT_ROLLBACK, &[rsc, snap]),
        r,
    )
}

pub fn snapshot_restore_volume_dfns(rsc: &str, snap: &str, r: &request::SnapshotRestore) -> Call {
    let path = fill(paths::SNAPSHOT_RESTORE_VLM_DFN, &[rsc, snap]);
    with_body(Method::POST, path, r)
}

pub fn snapshot_restore_resources(rsc: &str, snap: &str, r: &request::SnapshotRestore) -> Call {
    with_body(
        Method::POST,
        fill(paths::SNAPSHOT_RESTORE_RSC, &[rsc, snap]),
        r,
    )
}

// --- resource groups and volume groups ---

pub fn resource_groups(names: &[String], props: &[String]) -> Call {
    let q = QueryBuilder::new()
        .list("resource_groups", names)
        .list("props", props)
        .build();
    Call::get(format!("{}{q}", paths::RSC_GRPS))
}

pub fn resource_group_create(g: &request::ResourceGroup) -> Call {
    with_body(Method::POST, paths::RSC_GRPS, g)
}

pub fn resource_group_modify(name: &str, m: &ResourceGroupModify) -> Call {
    with_body(Method::PUT, fill(paths::RSC_GRP, &[name]), m)
}

pub fn resource_group_delete(name: &str) -> Call {
    Call::delete(fill(paths::RSC_GRP, &[name]))
}

pub fn resource_group_spawn(name: &str, s: &ResourceGroupSpawn) -> Call {
    with_body(Method::POST, fill(paths::RSC_GRP_SPAWN, &[name]), s)
}

pub fn resource_group_adjust(name: &str, a: &ResourceGroupAdjust) -> Call {
    with_body(Method::POST, fill(paths::RSC_GRP_ADJUST, &[name]), a)
}

pub fn resource_groups_adjust_all(a: &ResourceGroupAdjust) -> Call {
    with_body(Method::POST, paths::RSC_GRPS_ADJUST_ALL, a)
}

pub fn resource_group_max_volume_size(name: &str) -> Call {
    Call::get(fill(paths::RSC_GRP_MAX_VLM_SIZE, &[name]))
}

/// The largest volume the storage pools could hold for the filter (`OPTIONS`, as
/// python-linstor asks).
pub fn max_volume_size(f: &AutoSelectFilter) -> Call {
    with_body(Method::OPTIONS, paths::MAX_VLM_SIZE, f)
}

pub fn volume_groups(rg: &str) -> Call {
    Call::get(fill(paths::VLM_GRPS, &[rg]))
}

pub fn volume_group_create(rg: &str, v: &request::VolumeGroup) -> Call {
    with_body(Method::POST, fill(paths::VLM_GRPS, &[rg]), v)
}

pub fn volume_group_modify(rg: &str, vnr: u32, m: &VolumeGroupModify) -> Call {
    with_body(Method::PUT, fill(paths::VLM_GRP, &[rg, &nr(vnr)]), m)
}

pub fn volume_group_delete(rg: &str, vnr: u32) -> Call {
    Call::delete(fill(paths::VLM_GRP, &[rg, &nr(vnr)]))
}

// --- error reports ---

/// The error reports, with their text or without; of `nodes` only, and within a time range
/// (milliseconds since the epoch) when given.
pub fn error_reports(
    with_content: bool,
    nodes: &[String],
    since: Option<i64>,
    to: Option<i64>,
) -> Call {
    let q = QueryBuilder::new()
        .value("withContent", with_content)
        .list("node", nodes)
        .opt("since", since)
        .opt("to", to)
        .build();
    Call::get(format!("{}{q}", paths::ERROR_REPORTS))
}

/// One error report with its text.
pub fn error_report(id: &str) -> Call {
    let q = QueryBuilder::new().value("withContent", true).build();
    Call::get(format!("{}{q}", fill(paths::ERROR_REPORT, &[id])))
}

pub fn error_reports_delete(d: &ErrorReportDelete) -> Call {
    with_body(Method::PATCH, paths::ERROR_REPORTS, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_filled_and_queries_kept_in_order() {
        assert_eq!(
            volume_dfn_delete("my rsc", 1),
            Call::delete("/v1/resource-definitions/my%20rsc/volume-definitions/1")
        );
        assert_eq!(
            node_connection_modify("a", "b", &PropsModify::default()).path,
            "/v1/node-connections/a/b"
        );
        assert_eq!(
            snapshot_delete("r", "s", &["n1".into(), "n 2".into()]).path,
            "/v1/resource-definitions/r/snapshots/s?nodes=n1&nodes=n%202"
        );
        assert_eq!(
            error_reports(false, &["n1".into()], Some(5), None).path,
            "/v1/error-reports?withContent=false&node=n1&since=5"
        );
        assert_eq!(
            error_report("abc").path,
            "/v1/error-reports/abc?withContent=true"
        );
        let r = resource_dfns(&[], &["Aux/a=1".into()], true);
        assert_eq!(
            r.path,
            "/v1/resource-definitions?with_volume_definitions=true&props=Aux%2Fa%3D1"
        );
        assert_eq!(r.method, Method::GET);
        let m = max_volume_size(&AutoSelectFilter {
            place_count: Some(2),
            ..Default::default()
        });
        assert_eq!(
            (m.method, m.body),
            (Method::OPTIONS, Some(serde_json::json!({"place_count": 2})))
        );
    }
}
