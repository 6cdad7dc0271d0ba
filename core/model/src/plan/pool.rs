//! Storage pool definitions and storage pools.

use super::common::storage_node;
use super::{
    parse_node_name, parse_pool_name, prop_error, Env, Observed, Op, Plan, PlanResult, Reply,
};
use crate::cluster::{Change, Cluster};
use crate::error::{code, ApiError, ObjKind};
use crate::kinds::ProviderKind;
use crate::name::NodeName;
use crate::objects::{Node, StorPool, StorPoolDefinition};
use crate::props::{Props, PropsChange, PropsOwner};

/// The combined "backing pool" key clients send; the controller maps it to the key of the
/// provider (`StorDriver/LvmVg`, `StorDriver/FileDir`, ...).
pub const STOR_POOL_NAME_KEY: &str = "StorDriver/StorPoolName";

#[derive(Debug, Clone, Default)]
pub struct StorPoolCreate {
    pub name: String,
    pub provider_kind: String,
    pub props: Props,
    pub free_space_mgr_name: Option<String>,
    pub external_locking: bool,
}

fn driver_keys(kind: ProviderKind) -> &'static [&'static str] {
    match kind {
        ProviderKind::Lvm => &["StorDriver/LvmVg"],
        ProviderKind::LvmThin => &["StorDriver/LvmVg", "StorDriver/ThinPool"],
        ProviderKind::Zfs => &["StorDriver/ZPool"],
        ProviderKind::ZfsThin => &["StorDriver/ZPoolThin"],
        ProviderKind::File | ProviderKind::FileThin => &["StorDriver/FileDir"],
        _ => &[],
    }
}

/// Maps the generic backing pool name onto the provider's own keys and checks that what the
/// provider needs is there.
fn map_driver_props(kind: ProviderKind, mut props: Props) -> Result<Props, ApiError> {
    if let Some(value) = props.remove(STOR_POOL_NAME_KEY) {
        match kind {
            ProviderKind::LvmThin => {
                let Some((vg, thin)) = value.split_once('/') else {
                    return Err(ApiError::new(
                        code::FAIL_INVLD_PROP,
                        ObjKind::StorPool,
                        format!("'{value}' does not name an LVM thin pool"),
                    )
                    .correction(
                        "Give the thin pool as <volume group>/<thin pool>, e.g. vg_ssd/thinpool",
                    ));
                };
                props.insert("StorDriver/LvmVg".into(), vg.into());
                props.insert("StorDriver/ThinPool".into(), thin.into());
            }
            ProviderKind::Diskless => {}
            k => {
                if let Some(key) = k.pool_name_key() {
                    props.insert(key.into(), value);
                }
            }
        }
    }
    for key in driver_keys(kind) {
        match props.get(*key) {
            Some(v) if !v.trim().is_empty() => {}
            _ => {
                return Err(ApiError::new(
                    code::FAIL_MISSING_PROPS,
                    ObjKind::StorPool,
                    format!("A {kind} storage pool needs '{key}'"),
                )
                .correction(match kind {
                    ProviderKind::File | ProviderKind::FileThin => {
                        "Name the directory that holds the volume files, e.g. /var/lib/linstor/pool"
                    }
                    ProviderKind::LvmThin => "Name the thin pool as <volume group>/<thin pool>",
                    ProviderKind::Lvm => "Name the LVM volume group",
                    _ => "Name the ZFS pool (or dataset)",
                }));
            }
        }
    }
    if matches!(kind, ProviderKind::File | ProviderKind::FileThin) {
        let dir = &props["StorDriver/FileDir"];
        if !dir.starts_with('/') || dir.split('/').any(|seg| seg == "..") {
            return Err(ApiError::new(
                code::FAIL_INVLD_PROP,
                ObjKind::StorPool,
                format!("'{dir}' is not an absolute directory path"),
            )
            .correction("Give an absolute path without '..', e.g. /var/lib/linstor/pool"));
        }
    }
    Ok(props)
}

/// The storage provider a request names: known, and implemented here.
fn parse_provider(name: &str) -> Result<ProviderKind, ApiError> {
    let kind: ProviderKind = name.parse().map_err(|e: String| {
        ApiError::new(
            code::FAIL_INVLD_STOR_DRIVER,
            ObjKind::StorPool,
            format!("Unknown storage provider '{name}'"),
        )
        .cause(e)
    })?;
    if !kind.is_implemented() {
        return Err(ApiError::new(
            code::FAIL_INVLD_STOR_DRIVER,
            ObjKind::StorPool,
            format!("The {kind} provider is not supported"),
        )
        .correction("Use LVM, LVM_THIN, ZFS, ZFS_THIN, FILE, FILE_THIN or DISKLESS"));
    }
    Ok(kind)
}

/// Refuses a provider that the node, while online, reports it cannot run.
fn refuse_unsupported_provider(
    observed: &dyn Observed,
    node_name: &NodeName,
    n: &Node,
    kind: ProviderKind,
) -> Result<(), ApiError> {
    if let Some(caps) = observed.capabilities(node_name) {
        if observed.is_online(node_name) && !caps.supports_provider(kind) {
            return Err(ApiError::new(
                code::FAIL_STLT_DOES_NOT_SUPPORT_PROVIDER,
                ObjKind::StorPool,
                format!("Node '{}' does not support the {kind} provider", n.name),
            )
            .cause(caps.provider_reason(kind))
            .correction("Install what the satellite reports as missing, or use another provider"));
        }
    }
    Ok(())
}

pub fn create_stor_pool(
    cluster: &Cluster,
    env: &mut dyn Env,
    observed: &dyn Observed,
    node: &str,
    req: &StorPoolCreate,
) -> PlanResult {
    let (node_name, n) = storage_node(cluster, node, ObjKind::StorPool, "have storage pools")?;
    let pool_name = parse_pool_name(&req.name)?;
    if cluster.stor_pool(&node_name, &pool_name).is_some() {
        return Err(ApiError::new(
            code::FAIL_EXISTS_STOR_POOL,
            ObjKind::StorPool,
            format!(
                "Storage pool '{pool_name}' already exists on node '{}'",
                n.name
            ),
        )
        .correction("Choose another name, or delete the existing pool first"));
    }
    let kind = parse_provider(&req.provider_kind)?;
    let mapped = map_driver_props(kind, req.props.clone())?;
    let props = PropsChange {
        set: mapped,
        ..Default::default()
    }
    .apply(PropsOwner::StorPool, &Props::new())
    .map_err(|e| prop_error(ObjKind::StorPool, e))?;
    refuse_unsupported_provider(observed, &node_name, n, kind)?;

    let mut plan = Plan::new();
    if !cluster.stor_pool_dfns.contains_key(&pool_name) {
        plan.change(Change::PutStorPoolDfn(StorPoolDefinition {
            name: pool_name.clone(),
            props: Props::new(),
            uuid: env.uuid(),
        }));
    }
    plan.change(Change::PutStorPool(StorPool {
        node: node_name.clone(),
        name: pool_name.clone(),
        kind,
        props,
        free_space_mgr_name: req.free_space_mgr_name.clone(),
        external_locking: req.external_locking,
        uuid: env.uuid(),
    }));
    plan.reply(
        Reply::created(
            ObjKind::StorPool,
            format!(
                "Storage pool '{pool_name}' on node '{}' registered.",
                n.name
            ),
        )
        .with_ref("StorPool", pool_name.as_str())
        .with_ref("Node", n.name.as_str()),
    );
    Ok(plan)
}

pub fn modify_stor_pool(
    cluster: &Cluster,
    node: &str,
    pool: &str,
    change: &PropsChange,
) -> PlanResult {
    let node_name = parse_node_name(node)?;
    let pool_name = parse_pool_name(pool)?;
    let Some(existing) = cluster.stor_pool(&node_name, &pool_name) else {
        return Err(ApiError::not_found(
            code::FAIL_NOT_FOUND_STOR_POOL,
            ObjKind::StorPool,
            "storage pool",
            &format!("{pool}' on node '{node}"),
        ));
    };
    let props = change
        .apply(PropsOwner::StorPool, &existing.props)
        .map_err(|e| prop_error(ObjKind::StorPool, e))?;
    let driver_changed = driver_keys(existing.kind)
        .iter()
        .any(|k| props.get(*k) != existing.props.get(*k));
    if driver_changed
        && cluster
            .volumes_in_pool(&node_name, &pool_name)
            .next()
            .is_some()
    {
        return Err(ApiError::new(
            code::FAIL_IN_USE,
            ObjKind::StorPool,
            format!("Storage pool '{pool_name}' holds volumes; its backing pool cannot change"),
        ));
    }
    let props = map_driver_props(existing.kind, props)?;
    let mut updated = existing.clone();
    updated.props = props;
    let mut plan = Plan::new();
    plan.change(Change::PutStorPool(updated));
    plan.reply(Reply::modified(
        ObjKind::StorPool,
        format!(
            "Storage pool '{pool_name}' on node '{}' modified.",
            existing.node
        ),
    ));
    Ok(plan)
}

pub fn delete_stor_pool(cluster: &Cluster, node: &str, pool: &str) -> PlanResult {
    let node_name = parse_node_name(node)?;
    let pool_name = parse_pool_name(pool)?;
    let Some(existing) = cluster.stor_pool(&node_name, &pool_name) else {
        return Ok(Plan::only(Reply::warning(
            Op::Delete,
            ObjKind::StorPool,
            code::WARN_NOT_FOUND,
            format!("Storage pool '{pool}' not found on node '{node}'; nothing to delete."),
        )));
    };
    let users: Vec<String> = cluster
        .volumes_in_pool(&node_name, &pool_name)
        .map(|(r, nr)| format!("{}/{}", r.name, nr))
        .collect();
    if !users.is_empty() {
        return Err(ApiError::new(
            code::FAIL_IN_USE,
            ObjKind::StorPool,
            format!(
                "Storage pool '{}' on node '{}' still holds {} volume(s)",
                existing.name,
                existing.node,
                users.len()
            ),
        )
        .cause(format!("Volumes in the pool: {}", users.join(", ")))
        .correction("Delete those resources from the node first"));
    }
    let mut plan = Plan::new();
    plan.change(Change::DelStorPool(node_name, pool_name));
    plan.reply(
        Reply::deleted(
            ObjKind::StorPool,
            format!(
                "Storage pool '{}' on node '{}' deleted.",
                existing.name, existing.node
            ),
        )
        .with_ref("StorPool", existing.name.as_str()),
    );
    Ok(plan)
}

pub fn create_spd(cluster: &Cluster, env: &mut dyn Env, name: &str, props: &Props) -> PlanResult {
    let pool_name = parse_pool_name(name)?;
    if cluster.stor_pool_dfns.contains_key(&pool_name) {
        return Err(ApiError::new(
            code::FAIL_EXISTS_STOR_POOL_DFN,
            ObjKind::StorPoolDfn,
            format!("Storage pool definition '{pool_name}' already exists"),
        ));
    }
    let props = PropsChange {
        set: props.clone(),
        ..Default::default()
    }
    .apply(PropsOwner::StorPoolDefinition, &Props::new())
    .map_err(|e| prop_error(ObjKind::StorPoolDfn, e))?;
    let mut plan = Plan::new();
    plan.change(Change::PutStorPoolDfn(StorPoolDefinition {
        name: pool_name.clone(),
        props,
        uuid: env.uuid(),
    }));
    plan.reply(
        Reply::created(
            ObjKind::StorPoolDfn,
            format!("New storage pool definition '{pool_name}' created."),
        )
        .with_ref("StorPoolDfn", pool_name.as_str()),
    );
    Ok(plan)
}

pub fn modify_spd(cluster: &Cluster, name: &str, change: &PropsChange) -> PlanResult {
    let pool_name = parse_pool_name(name)?;
    let Some(existing) = cluster.stor_pool_dfns.get(&pool_name) else {
        return Err(ApiError::not_found(
            code::FAIL_NOT_FOUND_STOR_POOL_DFN,
            ObjKind::StorPoolDfn,
            "storage pool definition",
            name,
        ));
    };
    let mut updated = existing.clone();
    updated.props = change
        .apply(PropsOwner::StorPoolDefinition, &existing.props)
        .map_err(|e| prop_error(ObjKind::StorPoolDfn, e))?;
    let mut plan = Plan::new();
    plan.change(Change::PutStorPoolDfn(updated));
    plan.reply(Reply::modified(
        ObjKind::StorPoolDfn,
        format!("Storage pool definition '{pool_name}' modified."),
    ));
    Ok(plan)
}

pub fn delete_spd(cluster: &Cluster, name: &str) -> PlanResult {
    let pool_name = parse_pool_name(name)?;
    let Some(existing) = cluster.stor_pool_dfns.get(&pool_name) else {
        return Ok(Plan::only(Reply::warning(
            Op::Delete,
            ObjKind::StorPoolDfn,
            code::WARN_NOT_FOUND,
            format!("Storage pool definition '{name}' not found; nothing to delete."),
        )));
    };
    let nodes: Vec<String> = cluster
        .stor_pools
        .iter()
        .filter(|(_, pools)| pools.contains_key(&pool_name))
        .map(|(n, _)| n.to_string())
        .collect();
    if !nodes.is_empty() {
        return Err(ApiError::new(
            code::FAIL_IN_USE,
            ObjKind::StorPoolDfn,
            format!(
                "Storage pool definition '{}' is still used by storage pools on: {}",
                existing.name,
                nodes.join(", ")
            ),
        )
        .correction("Delete those storage pools first"));
    }
    let mut plan = Plan::new();
    plan.change(Change::DelStorPoolDfn(pool_name));
    plan.reply(Reply::deleted(
        ObjKind::StorPoolDfn,
        format!("Storage pool definition '{}' deleted.", existing.name),
    ));
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::super::node::{create_node, NodeCreate};
    use super::super::testenv::{commit, TestEnv, TestObserved};
    use super::super::NetIfCreate;
    use super::*;
    use crate::name::{NodeName, StorPoolName};
    use crate::observed::Capabilities;

    fn with_node() -> (Cluster, TestEnv) {
        let mut c = Cluster::default();
        let mut env = TestEnv(0);
        let p = create_node(
            &c,
            &mut env,
            &NodeCreate {
                name: "alpha".into(),
                net_interfaces: vec![NetIfCreate {
                    name: "default".into(),
                    address: "127.0.0.1".into(),
                    ..Default::default()
                }],
                ..Default::default()
            },
        )
        .unwrap();
        commit(&mut c, &p);
        (c, env)
    }

    fn req(kind: &str, pool_name: &str) -> StorPoolCreate {
        StorPoolCreate {
            name: "pool1".into(),
            provider_kind: kind.into(),
            props: [(STOR_POOL_NAME_KEY.to_string(), pool_name.to_string())].into(),
            ..Default::default()
        }
    }

    #[test]
    fn maps_combined_pool_name() {
        let (c, mut env) = with_node();
        let obs = TestObserved::default();
        let plan =
            create_stor_pool(&c, &mut env, &obs, "alpha", &req("LVM_THIN", "vg/thin")).unwrap();
        let Change::PutStorPool(sp) = plan.changes.last().unwrap() else {
            panic!()
        };
        assert_eq!(sp.props["StorDriver/LvmVg"], "vg");
        assert_eq!(sp.props["StorDriver/ThinPool"], "thin");
        assert!(!sp.props.contains_key(STOR_POOL_NAME_KEY));
        assert_eq!(sp.backing_pool().unwrap(), "vg/thin");
        // A definition is created implicitly.
        assert!(matches!(plan.changes[0], Change::PutStorPoolDfn(_)));

        let plan =
            create_stor_pool(&c, &mut env, &obs, "alpha", &req("filethin", "/srv/pool")).unwrap();
        let Change::PutStorPool(sp) = plan.changes.last().unwrap() else {
            panic!()
        };
        assert_eq!(sp.props["StorDriver/FileDir"], "/srv/pool");
    }

    #[test]
    fn refuses_bad_pools() {
        let (mut c, mut env) = with_node();
        let mut obs = TestObserved::default();
        assert_eq!(
            create_stor_pool(&c, &mut env, &obs, "alpha", &req("LVM_THIN", "novgslash"))
                .unwrap_err()
                .code,
            code::FAIL_INVLD_PROP
        );
        assert_eq!(
            create_stor_pool(&c, &mut env, &obs, "alpha", &req("FILE", "relative/dir"))
                .unwrap_err()
                .code,
            code::FAIL_INVLD_PROP
        );
        assert_eq!(
            create_stor_pool(&c, &mut env, &obs, "alpha", &req("TAPE", "x"))
                .unwrap_err()
                .code,
            code::FAIL_INVLD_STOR_DRIVER
        );
        assert_eq!(
            create_stor_pool(&c, &mut env, &obs, "nosuch", &req("FILE", "/x"))
                .unwrap_err()
                .code,
            code::FAIL_NOT_FOUND_NODE
        );
        let mut missing = req("LVM", "x");
        missing.props.clear();
        assert_eq!(
            create_stor_pool(&c, &mut env, &obs, "alpha", &missing)
                .unwrap_err()
                .code,
            code::FAIL_MISSING_PROPS
        );
        // An online satellite that lacks the provider refuses it with its reason.
        let alpha = NodeName::new("alpha").unwrap();
        let mut caps = Capabilities {
            providers: vec![ProviderKind::File, ProviderKind::FileThin],
            ..Default::default()
        };
        caps.unsupported_providers
            .insert(ProviderKind::Lvm, vec!["'lvm' not found".into()]);
        obs.online.insert(alpha.clone(), caps);
        let e = create_stor_pool(&c, &mut env, &obs, "alpha", &req("LVM", "vg")).unwrap_err();
        assert_eq!(e.code, code::FAIL_STLT_DOES_NOT_SUPPORT_PROVIDER);
        assert!(e.cause.unwrap().contains("'lvm' not found"));

        let plan = create_stor_pool(&c, &mut env, &obs, "alpha", &req("FILE", "/srv/p")).unwrap();
        commit(&mut c, &plan);
        assert!(c
            .stor_pool(&alpha, &StorPoolName::new("pool1").unwrap())
            .is_some());
        assert_eq!(
            create_stor_pool(&c, &mut env, &obs, "alpha", &req("FILE", "/srv/p"))
                .unwrap_err()
                .code,
            code::FAIL_EXISTS_STOR_POOL
        );
        // The definition is in use while the pool exists.
        assert_eq!(delete_spd(&c, "pool1").unwrap_err().code, code::FAIL_IN_USE);
    }
}
