//! Planning: turn a request and the current state into the changes to persist and the replies
//! to give, or into an error that says what is wrong. Planners never mutate the cluster; the
//! caller commits the changes and applies them only after the database accepted them.

pub mod auth;
pub mod autoplace;
pub mod clone;
mod common;
pub mod drbd;
pub mod drbd84;
pub mod node;
pub mod pool;
pub mod rconn;
pub mod rd;
pub mod rg;
pub mod rsc;
pub mod safety;
pub mod snapshot;

use std::collections::BTreeMap;

pub use autoplace::{autoplace, Placement, PlacementRequest};
pub use node::{NetIfCreate, NodeCreate};
pub use pool::StorPoolCreate;
pub use rd::{RscDfnCreate, RscDfnModify, VlmDfnCreate, VlmDfnModify};
pub use rg::{RscGrpCreate, RscGrpModify, Spawn, VlmGrpCreate};
pub use rsc::{AutoplaceRequest, RscCreate};

use crate::cluster::Change;
#[cfg(test)]
use crate::cluster::Cluster;
use crate::error::{code, ApiError, ObjKind};
use crate::flags::{Flag, Flags};
use crate::kinds::LayerKind;
use crate::name::{
    InvalidName, NetIfName, NodeName, ResourceGroupName, ResourceName, SnapshotName, StorPoolName,
};
use crate::objects::Resource;
use crate::observed::{Capabilities, DrbdObserved, PoolState};

/// Sources of the only impure inputs a plan needs: fresh ids and the clock.
pub trait Env {
    fn uuid(&mut self) -> String;
    fn now_ms(&self) -> i64;
}

/// What the planner needs to know of the satellites' reports.
pub trait Observed {
    fn is_online(&self, node: &NodeName) -> bool;
    fn capabilities(&self, node: &NodeName) -> Option<&Capabilities>;
    fn pool_state(&self, node: &NodeName, pool: &StorPoolName) -> Option<&PoolState>;
    /// What DRBD currently says of resource `rsc` on `node`; `None` when that is not known
    /// (the node is offline, does not follow DRBD, or has not seen its complete state).
    fn drbd_state(&self, node: &NodeName, rsc: &ResourceName) -> Option<&DrbdObserved>;
    /// Whether `rsc` is in use on `node` (a DRBD Primary, a device opened exclusively), as
    /// the node last reported; `None` when that is not known.
    fn in_use(&self, node: &NodeName, rsc: &ResourceName) -> Option<bool> {
        let _ = (node, rsc);
        None
    }
    /// Space (KiB) promised to volumes placed in `pool` on `node` that the node's last
    /// report does not account for yet.
    fn promised_kib(&self, node: &NodeName, pool: &StorPoolName) -> u64 {
        let _ = (node, pool);
        0
    }
}

/// What a change of `DrbdOptions/...` properties of `object` says before the MODIFIED
/// entry, as LINSTOR answers its drbd-options commands: the keys set, the keys removed.
pub(crate) fn drbd_option_replies(
    object: ObjKind,
    change: &crate::props::PropsChange,
) -> Vec<Reply> {
    let drbd = |k: &&String| k.starts_with("DrbdOptions/");
    let set: Vec<&str> = change.set.keys().filter(drbd).map(String::as_str).collect();
    let removed: Vec<&str> = change
        .delete
        .iter()
        .chain(&change.delete_namespaces)
        .filter(drbd)
        .map(String::as_str)
        .collect();
    let mut out = Vec::new();
    if !set.is_empty() {
        out.push(Reply::info(
            Op::Modify,
            object,
            code::INFO_PROP_SET,
            format!("Successfully set property key(s): {}", set.join(",")),
        ));
    }
    if !removed.is_empty() {
        out.push(Reply::info(
            Op::Modify,
            object,
            code::INFO_PROP_REMOVED,
            format!(
                "Successfully deleted property key(s): {}",
                removed.join(",")
            ),
        ));
    }
    out
}

/// The operation class of a reply; it selects the operation bits of a `ret_code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Create,
    Modify,
    Delete,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Success,
    Info,
    Warning,
    Error,
}

/// One line of an answer, as LINSTOR's ApiCallRc carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub severity: Severity,
    pub op: Op,
    pub object: ObjKind,
    pub code: u64,
    pub message: String,
    pub cause: Option<String>,
    pub correction: Option<String>,
    pub details: Option<String>,
    pub obj_refs: BTreeMap<String, String>,
    /// Error reports written about it.
    pub report_ids: Vec<String>,
}

impl Reply {
    pub fn success(op: Op, object: ObjKind, code: u64, message: impl Into<String>) -> Reply {
        Reply {
            severity: Severity::Success,
            op,
            object,
            code,
            message: message.into(),
            cause: None,
            correction: None,
            details: None,
            obj_refs: BTreeMap::new(),
            report_ids: Vec::new(),
        }
    }

    pub fn created(object: ObjKind, message: impl Into<String>) -> Reply {
        Reply::success(Op::Create, object, 1, message)
    }

    pub fn modified(object: ObjKind, message: impl Into<String>) -> Reply {
        Reply::success(Op::Modify, object, 3, message)
    }

    pub fn deleted(object: ObjKind, message: impl Into<String>) -> Reply {
        Reply::success(Op::Delete, object, 2, message)
    }

    pub fn warning(op: Op, object: ObjKind, code: u64, message: impl Into<String>) -> Reply {
        Reply {
            severity: Severity::Warning,
            ..Reply::success(op, object, code, message)
        }
    }

    pub fn info(op: Op, object: ObjKind, code: u64, message: impl Into<String>) -> Reply {
        Reply {
            severity: Severity::Info,
            ..Reply::success(op, object, code, message)
        }
    }

    pub fn from_error(op: Op, err: ApiError) -> Reply {
        Reply {
            severity: Severity::Error,
            op,
            object: err.object,
            code: err.code,
            message: err.message,
            cause: err.cause,
            correction: err.correction,
            details: err.details,
            obj_refs: BTreeMap::new(),
            report_ids: err.report_id.map(|id| *id).into_iter().collect(),
        }
    }

    pub fn with_ref(mut self, key: &str, value: impl Into<String>) -> Reply {
        self.obj_refs.insert(key.to_string(), value.into());
        self
    }

    /// Refers to resource `r`: its definition and its node.
    pub fn with_rsc_refs(self, r: &Resource) -> Reply {
        self.with_ref("RscDfn", r.name.as_str())
            .with_ref("Node", r.node.as_str())
    }

    pub fn with_cause(mut self, cause: impl Into<String>) -> Reply {
        self.cause = Some(cause.into());
        self
    }

    pub fn with_correction(mut self, correction: impl Into<String>) -> Reply {
        self.correction = Some(correction.into());
        self
    }

    pub fn with_details(mut self, details: impl Into<String>) -> Reply {
        self.details = Some(details.into());
        self
    }
}

/// The outcome of planning: what to persist and what to say.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub changes: Vec<Change>,
    pub replies: Vec<Reply>,
}

impl Plan {
    pub fn new() -> Plan {
        Plan::default()
    }

    pub fn change(&mut self, c: Change) {
        self.changes.push(c);
    }

    pub fn reply(&mut self, r: Reply) {
        self.replies.push(r);
    }

    pub fn extend(&mut self, other: Plan) {
        self.changes.extend(other.changes);
        self.replies.extend(other.replies);
    }

    /// A plan that changes nothing and says one thing.
    pub fn only(reply: Reply) -> Plan {
        Plan {
            changes: Vec::new(),
            replies: vec![reply],
        }
    }
}

pub type PlanResult = Result<Plan, ApiError>;

fn name_error(code: u64, object: ObjKind, what: &str, e: InvalidName) -> ApiError {
    ApiError::new(code, object, format!("Invalid {what}"))
        .cause(e.reason)
        .correction(match object {
            ObjKind::Node => "A node name is a host name: letters, digits and '-' in dot-separated parts, 2 to 255 characters".to_string(),
            ObjKind::StorPool => "Use 3 to 48 characters: letters, digits, '_' and '-', starting with a letter or '_'".to_string(),
            ObjKind::NetIf => "Use 3 to 32 characters: letters, digits, '_' and '-', starting with a letter or '_'".to_string(),
            _ => format!("Use 2 to 48 characters for the {what}: letters, digits, '_' and '-', starting with a letter or '_', with at least one letter"),
        })
}

pub fn parse_node_name(s: &str) -> Result<NodeName, ApiError> {
    NodeName::new(s)
        .map_err(|e| name_error(code::FAIL_INVLD_NODE_NAME, ObjKind::Node, "node name", e))
}

pub fn parse_rsc_name(s: &str) -> Result<ResourceName, ApiError> {
    ResourceName::new(s).map_err(|e| {
        name_error(
            code::FAIL_INVLD_RSC_NAME,
            ObjKind::RscDfn,
            "resource name",
            e,
        )
    })
}

pub fn parse_pool_name(s: &str) -> Result<StorPoolName, ApiError> {
    StorPoolName::new(s).map_err(|e| {
        name_error(
            code::FAIL_INVLD_STOR_POOL_NAME,
            ObjKind::StorPool,
            "storage pool name",
            e,
        )
    })
}

pub fn parse_rg_name(s: &str) -> Result<ResourceGroupName, ApiError> {
    ResourceGroupName::new(s).map_err(|e| {
        name_error(
            code::FAIL_INVLD_RSC_GRP_NAME,
            ObjKind::RscGrp,
            "resource group name",
            e,
        )
    })
}

pub fn parse_netif_name(s: &str) -> Result<NetIfName, ApiError> {
    NetIfName::new(s).map_err(|e| {
        name_error(
            code::FAIL_INVLD_NET_NAME,
            ObjKind::NetIf,
            "network interface name",
            e,
        )
    })
}

pub fn parse_snapshot_name(s: &str) -> Result<SnapshotName, ApiError> {
    SnapshotName::new(s).map_err(|e| {
        name_error(
            code::FAIL_INVLD_SNAPSHOT_NAME,
            ObjKind::Snapshot,
            "snapshot name",
            e,
        )
    })
}

/// The volume number to use for a new volume definition or group: the requested one if it
/// is valid and free, else the lowest free one. `exists` describes a clash for the message.
pub(crate) fn volume_number(
    requested: Option<i64>,
    taken: impl Fn(u32) -> bool,
    object: ObjKind,
    exists_code: u64,
    exists: impl Fn(i64) -> String,
) -> Result<u32, ApiError> {
    use crate::objects::MAX_VOLUME_NUMBER;
    match requested {
        Some(n) => {
            if !(0..=MAX_VOLUME_NUMBER as i64).contains(&n) {
                return Err(ApiError::new(
                    code::FAIL_INVLD_VLM_NR,
                    object,
                    format!("Invalid volume number {n}"),
                )
                .correction(format!("Use a volume number from 0 to {MAX_VOLUME_NUMBER}")));
            }
            if taken(n as u32) {
                return Err(ApiError::new(exists_code, object, exists(n)));
            }
            Ok(n as u32)
        }
        None => (0..=MAX_VOLUME_NUMBER).find(|n| !taken(*n)).ok_or_else(|| {
            ApiError::new(
                code::FAIL_POOL_EXHAUSTED_VLM_NR,
                object,
                "No free volume number left",
            )
        }),
    }
}

/// Parses the flag list of volume definitions and groups: `GROSS_SIZE`, or `-GROSS_SIZE` to
/// clear it on modification.
pub(crate) fn volume_flags(
    flags: &[String],
    object: ObjKind,
    what: &str,
) -> Result<Vec<String>, ApiError> {
    flags
        .iter()
        .filter(|f| !f.is_empty())
        .map(|f| {
            let up = f.to_ascii_uppercase();
            if Flag::parse(up.trim_start_matches('-')) == Flag::GrossSize {
                Ok(up)
            } else {
                Err(ApiError::new(
                    code::FAIL_INVLD_REQUEST,
                    object,
                    format!("Unknown {what} flag '{f}'"),
                )
                .correction("The only flag is GROSS_SIZE"))
            }
        })
        .collect()
}

/// Applies flags parsed by `volume_flags` to a flag set: `-NAME` clears the flag, `NAME`
/// sets it.
pub(crate) fn apply_volume_flags(set: &mut Flags, flags: Vec<String>) {
    for f in flags {
        match f.strip_prefix('-') {
            Some(off) => {
                set.remove(Flag::parse(off));
            }
            None => {
                set.insert(Flag::parse(&f));
            }
        }
    }
}

fn prop_error(object: ObjKind, e: crate::props::InvalidProp) -> ApiError {
    ApiError::new(code::FAIL_INVLD_PROP, object, e.message.clone())
        .cause(e.message)
        .correction(e.correction)
}

/// Parses a layer list and checks that it is a stack this implementation can build.
pub fn parse_layer_stack(items: &[String], object: ObjKind) -> Result<Vec<LayerKind>, ApiError> {
    let mut out = Vec::new();
    for item in items {
        let layer: LayerKind = item.parse().map_err(|e: String| {
            ApiError::new(
                code::FAIL_INVLD_LAYER_KIND,
                object,
                format!("Unknown layer '{item}'"),
            )
            .cause(e)
            .correction("Use a layer list such as 'drbd,storage' or 'storage'")
        })?;
        if out.contains(&layer) {
            return Err(ApiError::new(
                code::FAIL_INVLD_LAYER_STACK,
                object,
                format!("Layer {layer} appears twice in the layer list"),
            )
            .correction("Name each layer once, e.g. 'drbd,storage'"));
        }
        out.push(layer);
    }
    check_layer_stack(&out, object)?;
    Ok(out)
}

pub fn check_layer_stack(stack: &[LayerKind], object: ObjKind) -> Result<(), ApiError> {
    if stack.is_empty() {
        return Ok(());
    }
    if stack.last() != Some(&LayerKind::Storage) {
        return Err(ApiError::new(
            code::FAIL_INVLD_LAYER_STACK,
            object,
            format!(
                "Invalid layer list '{}': the lowest layer must be STORAGE",
                stack
                    .iter()
                    .map(|l| l.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        )
        .correction("End the layer list with 'storage', e.g. 'drbd,storage'"));
    }
    for layer in stack {
        if !matches!(layer, LayerKind::Drbd | LayerKind::Storage) {
            return Err(ApiError::new(
                code::FAIL_INVLD_LAYER_STACK,
                object,
                format!("The {layer} layer is not supported by this controller"),
            )
            .correction("Use 'drbd,storage' or 'storage'"));
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod testenv {
    use std::collections::HashMap;

    use super::*;

    pub struct TestEnv(pub u64);

    impl Env for TestEnv {
        fn uuid(&mut self) -> String {
            self.0 += 1;
            format!("00000000-0000-4000-8000-{:012}", self.0)
        }
        fn now_ms(&self) -> i64 {
            1_700_000_000_000
        }
    }

    #[derive(Default)]
    pub struct TestObserved {
        pub online: HashMap<NodeName, Capabilities>,
        pub pools: HashMap<(NodeName, StorPoolName), PoolState>,
        pub drbd: HashMap<(NodeName, ResourceName), DrbdObserved>,
        pub promised: HashMap<(NodeName, StorPoolName), u64>,
    }

    impl Observed for TestObserved {
        fn is_online(&self, node: &NodeName) -> bool {
            self.online.contains_key(node)
        }
        fn capabilities(&self, node: &NodeName) -> Option<&Capabilities> {
            self.online.get(node)
        }
        fn pool_state(&self, node: &NodeName, pool: &StorPoolName) -> Option<&PoolState> {
            self.pools.get(&(node.clone(), pool.clone()))
        }
        fn drbd_state(&self, node: &NodeName, rsc: &ResourceName) -> Option<&DrbdObserved> {
            self.drbd.get(&(node.clone(), rsc.clone()))
        }
        fn promised_kib(&self, node: &NodeName, pool: &StorPoolName) -> u64 {
            self.promised
                .get(&(node.clone(), pool.clone()))
                .copied()
                .unwrap_or(0)
        }
    }

    /// Applies a plan to the cluster the way the controller does after committing it.
    pub fn commit(cluster: &mut Cluster, plan: &Plan) {
        for c in &plan.changes {
            cluster.apply(c.clone());
        }
        cluster.generation += 1;
    }
}

#[cfg(test)]
mod tests;
