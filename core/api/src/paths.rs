//! The paths of the REST API, written once: the controller routes these templates and every
//! client (the typed client, the CLI, the platform adapters) fills them with [`fill`].
//!
//! Templates use the router's syntax: `{name}` is one path segment, `{*name}` the rest of the
//! path. [`ROUTES`] lists every method and path the controller serves; a test of the
//! controller holds the router to it and both to the LINSTOR REST API specification.

pub const HEALTH: &str = "/health";
pub const CONTROLLER_VERSION: &str = "/v1/controller/version";
pub const CONTROLLER_PROPS: &str = "/v1/controller/properties";
pub const CONTROLLER_PROP: &str = "/v1/controller/properties/{*key}";
pub const AUTH_INIT: &str = "/v1/controller/auth/initialize-token-auth";
pub const AUTH_TOKENS: &str = "/v1/controller/auth/token";
pub const AUTH_TOKEN: &str = "/v1/controller/auth/token/{id}";

pub const NODES: &str = "/v1/nodes";
pub const NODE: &str = "/v1/nodes/{node}";
pub const NODE_LOST: &str = "/v1/nodes/{node}/lost";
pub const NODE_RECONNECT: &str = "/v1/nodes/{node}/reconnect";
/// An extension: a new one-time join token for a node (to join it again).
pub const NODE_JOIN_TOKEN: &str = "/v1/nodes/{node}/join-token";
pub const NET_IFS: &str = "/v1/nodes/{node}/net-interfaces";
pub const NET_IF: &str = "/v1/nodes/{node}/net-interfaces/{netif}";
pub const NODE_STOR_POOLS: &str = "/v1/nodes/{node}/storage-pools";
pub const NODE_STOR_POOL: &str = "/v1/nodes/{node}/storage-pools/{pool}";

pub const STOR_POOL_DFNS: &str = "/v1/storage-pool-definitions";
pub const STOR_POOL_DFN: &str = "/v1/storage-pool-definitions/{pool}";

pub const RSC_DFNS: &str = "/v1/resource-definitions";
pub const RSC_DFN: &str = "/v1/resource-definitions/{rsc}";
pub const VLM_DFNS: &str = "/v1/resource-definitions/{rsc}/volume-definitions";
pub const VLM_DFN: &str = "/v1/resource-definitions/{rsc}/volume-definitions/{vnr}";
pub const RSCS: &str = "/v1/resource-definitions/{rsc}/resources";
pub const RSC: &str = "/v1/resource-definitions/{rsc}/resources/{node}";
pub const MAKE_AVAILABLE: &str = "/v1/resource-definitions/{rsc}/resources/{node}/make-available";
pub const TOGGLE_DISK: &str = "/v1/resource-definitions/{rsc}/resources/{node}/toggle-disk";
pub const TOGGLE_DISK_TO: &str =
    "/v1/resource-definitions/{rsc}/resources/{node}/toggle-disk/{how}";
pub const TOGGLE_DISK_TO_POOL: &str =
    "/v1/resource-definitions/{rsc}/resources/{node}/toggle-disk/{how}/{pool}";
pub const MIGRATE_DISK: &str =
    "/v1/resource-definitions/{rsc}/resources/{node}/migrate-disk/{from}";
pub const MIGRATE_DISK_TO_POOL: &str =
    "/v1/resource-definitions/{rsc}/resources/{node}/migrate-disk/{from}/{pool}";
pub const VLMS: &str = "/v1/resource-definitions/{rsc}/resources/{node}/volumes";
pub const VLM: &str = "/v1/resource-definitions/{rsc}/resources/{node}/volumes/{vnr}";
pub const AUTOPLACE: &str = "/v1/resource-definitions/{rsc}/autoplace";
pub const CLONE: &str = "/v1/resource-definitions/{rsc}/clone";
pub const CLONE_STATUS: &str = "/v1/resource-definitions/{rsc}/clone/{clone}";
pub const RSC_CONNS: &str = "/v1/resource-definitions/{rsc}/resource-connections";
pub const RSC_CONN: &str = "/v1/resource-definitions/{rsc}/resource-connections/{node_a}/{node_b}";
pub const SNAPSHOTS: &str = "/v1/resource-definitions/{rsc}/snapshots";
pub const SNAPSHOT: &str = "/v1/resource-definitions/{rsc}/snapshots/{snap}";
pub const SNAPSHOT_RESTORE_VLM_DFN: &str =
    "/v1/resource-definitions/{rsc}/snapshot-restore-volume-definition/{snap}";
pub const SNAPSHOT_RESTORE_RSC: &str =
    "/v1/resource-definitions/{rsc}/snapshot-restore-resource/{snap}";
pub const SNAPSHOT_ROLLBACK: &str = "/v1/resource-definitions/{rsc}/snapshot-rollback/{snap}";

pub const RSC_GRPS: &str = "/v1/resource-groups";
pub const RSC_GRP: &str = "/v1/resource-groups/{rg}";
pub const RSC_GRP_SPAWN: &str = "/v1/resource-groups/{rg}/spawn";
pub const RSC_GRP_ADJUST: &str = "/v1/resource-groups/{rg}/adjust";
pub const RSC_GRPS_ADJUST_ALL: &str = "/v1/resource-groups/adjustall";
pub const VLM_GRPS: &str = "/v1/resource-groups/{rg}/volume-groups";
pub const VLM_GRP: &str = "/v1/resource-groups/{rg}/volume-groups/{vnr}";
pub const RSC_GRP_MAX_VLM_SIZE: &str = "/v1/resource-groups/{rg}/query-max-volume-size";
pub const RSC_GRP_SIZE_INFO: &str = "/v1/resource-groups/{rg}/query-size-info";
pub const RSC_GRPS_SIZE_INFO: &str = "/v1/queries/resource-groups/query-all-size-info";
pub const MAX_VLM_SIZE: &str = "/v1/query-max-volume-size";

pub const VIEW_RESOURCES: &str = "/v1/view/resources";
pub const VIEW_STOR_POOLS: &str = "/v1/view/storage-pools";
pub const VIEW_SNAPSHOTS: &str = "/v1/view/snapshots";
pub const SNAPSHOT_MULTI: &str = "/v1/actions/snapshot/multi";
pub const EVENTS_PROMOTION: &str = "/v1/events/drbd/promotion";
pub const EVENTS_NODES: &str = "/v1/events/nodes";
pub const EVENTS_RESOURCES: &str = "/v1/events/resources";
pub const METRICS: &str = "/metrics";

pub const ERROR_REPORTS: &str = "/v1/error-reports";
pub const ERROR_REPORT: &str = "/v1/error-reports/{id}";

/// Every method and path the controller serves.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", HEALTH),
    ("GET", CONTROLLER_VERSION),
    ("GET", CONTROLLER_PROPS),
    ("POST", CONTROLLER_PROPS),
    ("DELETE", CONTROLLER_PROP),
    ("POST", AUTH_INIT),
    ("GET", AUTH_TOKENS),
    ("POST", AUTH_TOKENS),
    ("PUT", AUTH_TOKEN),
    ("DELETE", AUTH_TOKEN),
    ("GET", NODES),
    ("POST", NODES),
    ("GET", NODE),
    ("PUT", NODE),
    ("DELETE", NODE),
    ("DELETE", NODE_LOST),
    ("PUT", NODE_RECONNECT),
    ("POST", NODE_JOIN_TOKEN),
    ("GET", NET_IFS),
    ("POST", NET_IFS),
    ("GET", NET_IF),
    ("PUT", NET_IF),
    ("DELETE", NET_IF),
    ("GET", NODE_STOR_POOLS),
    ("POST", NODE_STOR_POOLS),
    ("GET", NODE_STOR_POOL),
    ("PUT", NODE_STOR_POOL),
    ("DELETE", NODE_STOR_POOL),
    ("GET", STOR_POOL_DFNS),
    ("POST", STOR_POOL_DFNS),
    ("GET", STOR_POOL_DFN),
    ("PUT", STOR_POOL_DFN),
    ("DELETE", STOR_POOL_DFN),
    ("GET", RSC_DFNS),
    ("POST", RSC_DFNS),
    ("GET", RSC_DFN),
    ("PUT", RSC_DFN),
    ("DELETE", RSC_DFN),
    ("GET", VLM_DFNS),
    ("POST", VLM_DFNS),
    ("GET", VLM_DFN),
    ("PUT", VLM_DFN),
    ("DELETE", VLM_DFN),
    ("GET", RSCS),
    ("POST", RSCS),
    ("GET", RSC),
    ("POST", RSC),
    ("PUT", RSC),
    ("DELETE", RSC),
    ("POST", MAKE_AVAILABLE),
    ("PUT", TOGGLE_DISK),
    ("PUT", TOGGLE_DISK_TO),
    ("PUT", TOGGLE_DISK_TO_POOL),
    ("PUT", MIGRATE_DISK),
    ("PUT", MIGRATE_DISK_TO_POOL),
    ("GET", VLMS),
    ("GET", VLM),
    ("PUT", VLM),
    ("POST", AUTOPLACE),
    ("POST", CLONE),
    ("GET", CLONE_STATUS),
    ("GET", RSC_CONNS),
    ("GET", RSC_CONN),
    ("PUT", RSC_CONN),
    ("GET", SNAPSHOTS),
    ("POST", SNAPSHOTS),
    ("GET", SNAPSHOT),
    ("DELETE", SNAPSHOT),
    ("POST", SNAPSHOT_RESTORE_VLM_DFN),
    ("POST", SNAPSHOT_RESTORE_RSC),
    ("POST", SNAPSHOT_ROLLBACK),
    ("GET", RSC_GRPS),
    ("POST", RSC_GRPS),
    ("GET", RSC_GRP),
    ("PUT", RSC_GRP),
    ("DELETE", RSC_GRP),
    ("POST", RSC_GRP_SPAWN),
    ("POST", RSC_GRP_ADJUST),
    ("POST", RSC_GRPS_ADJUST_ALL),
    ("GET", VLM_GRPS),
    ("POST", VLM_GRPS),
    ("GET", VLM_GRP),
    ("PUT", VLM_GRP),
    ("DELETE", VLM_GRP),
    ("GET", RSC_GRP_MAX_VLM_SIZE),
    ("POST", RSC_GRP_SIZE_INFO),
    ("POST", RSC_GRPS_SIZE_INFO),
    ("OPTIONS", MAX_VLM_SIZE),
    ("POST", MAX_VLM_SIZE),
    ("GET", VIEW_RESOURCES),
    ("GET", VIEW_STOR_POOLS),
    ("GET", VIEW_SNAPSHOTS),
    ("POST", SNAPSHOT_MULTI),
    ("GET", EVENTS_PROMOTION),
    ("GET", EVENTS_NODES),
    ("GET", EVENTS_RESOURCES),
    ("GET", METRICS),
    ("GET", ERROR_REPORTS),
    ("PATCH", ERROR_REPORTS),
    ("GET", ERROR_REPORT),
    ("DELETE", ERROR_REPORT),
];

/// Percent-encodes `s` as one path segment or query value: everything but ASCII letters,
/// digits and `-_.~`.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
    out
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// `template` with its placeholders replaced by `values`, in order: each `{name}` by one
/// encoded segment, a `{*name}` by the value with its `/` kept.
///
/// Panics when the number of values differs from the number of placeholders: that is a
/// mistake in the calling code, not in its input.
pub fn fill(template: &str, values: &[&str]) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut values = values.iter();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = open + rest[open..].find('}').expect("placeholders are closed");
        let value = values
            .next()
            .unwrap_or_else(|| panic!("{template}: too few values"));
        if rest[open + 1..].starts_with('*') {
            let parts: Vec<String> = value.split('/').map(encode).collect();
            out.push_str(&parts.join("/"));
        } else {
            out.push_str(&encode(value));
        }
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    assert!(values.next().is_none(), "{template}: too many values");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_in_order_and_encoded() {
        assert_eq!(fill(NODE, &["alpha"]), "/v1/nodes/alpha");
        assert_eq!(
            fill(RSC_CONN, &["r1", "a b", "ü/x"]),
            "/v1/resource-definitions/r1/resource-connections/a%20b/%C3%BC%2Fx"
        );
        assert_eq!(
            fill(CONTROLLER_PROP, &["Aux/some key"]),
            "/v1/controller/properties/Aux/some%20key"
        );
        assert_eq!(fill(NODES, &[]), "/v1/nodes");
    }

    #[test]
    #[should_panic(expected = "too many values")]
    fn a_value_too_many_is_a_mistake() {
        fill(NODES, &["x"]);
    }

    #[test]
    fn every_route_is_listed_once() {
        let mut seen = std::collections::BTreeSet::new();
        for r in ROUTES {
            assert!(seen.insert(r), "{r:?} is listed twice");
            assert!(r.1.starts_with('/'), "{r:?}");
        }
    }
}
