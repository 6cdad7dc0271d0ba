//! Each call the Cinder driver makes, on top of the shared adapter. Names are the driver's
//! (`CV_<volume id>`, `SN_<snapshot id>`, as Cinder's own LINSTOR driver names them); sizes
//! are Cinder's GiB.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};
use strata_adapter::naming::valid_resource_name;
use strata_adapter::size::{gib_from_kib, kib_from_gib};
use strata_adapter::volume::{size_kib, Placement, SnapOp};
use strata_adapter::{Connection, ControllerSettings, Volumes};
use strata_api::types::{PropsModify, ResourceDefinitionModify, ResourceModify};

use crate::protocol::{Failure, Kind, Request};

/// The properties of a volume's resource definition.
/// (The driver sets it, with `Aux/cinder/volume-name`, from Cinder's volume.)
pub const PROP_VOLUME_ID: &str = "Aux/cinder/volume-id";
/// On the resource of the host a volume is attached to: the Nova instance using it.
pub const PROP_INSTANCE_UUID: &str = "Aux/cinder/instance-uuid";
pub const PROP_INSTANCE_NAME: &str = "Aux/cinder/instance-name";
/// Every property of ours starts so (what unmanage removes).
const PROP_PREFIX: &str = "Aux/cinder/";

/// The backend's settings, from its section of cinder.conf.
pub struct Backend {
    pub controllers: ControllerSettings,
    /// The resource group of volume types that name none.
    pub group: String,
    /// Attach diskless where the host has no replica (else a local replica is made).
    pub diskless: bool,
    pub timeout: Duration,
}

fn text(cfg: &BTreeMap<String, Value>, key: &str) -> Option<String> {
    match cfg.get(key)? {
        Value::String(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn flag(cfg: &BTreeMap<String, Value>, key: &str, default: bool) -> bool {
    match text(cfg, key).as_deref() {
        Some("1" | "yes" | "true" | "on" | "True") => true,
        Some("0" | "no" | "false" | "off" | "False") => false,
        _ => default,
    }
}

impl Backend {
    pub fn from_request(req: &Request) -> Result<Backend, Failure> {
        let c = &req.config;
        let timeout = match text(c, "timeout") {
            Some(t) => t
                .parse()
                .map_err(|_| Failure::invalid(format!("strata_timeout '{t}' is not seconds")))?,
            None => 30,
        };
        Ok(Backend {
            controllers: ControllerSettings::from_connection(&Connection {
                controllers: text(c, "controllers").as_deref(),
                ca_file: text(c, "cafile").as_deref(),
                cert_file: text(c, "certfile").as_deref(),
                key_file: text(c, "keyfile").as_deref(),
                token_file: text(c, "token_file").as_deref(),
                allow_insecure_auth: flag(c, "allow_insecure_auth", false),
            })
            .map_err(Failure::invalid)?,
            group: text(c, "group").unwrap_or_else(|| "DfltRscGrp".into()),
            diskless: flag(c, "diskless", true),
            timeout: Duration::from_secs(timeout),
        })
    }

    fn volumes(&self) -> Result<Volumes, Failure> {
        let mut v = Volumes::new(
            self.controllers
                .client(self.timeout)
                .map_err(Failure::invalid)?,
            "cinder",
        );
        v.device_wait = self.timeout;
        // The driver attaches on the host it runs on (Cinder's own copies) and on compute
        // hosts (Nova's attachments): the node's report of the device is what counts.
        v.devices_here = false;
        Ok(v)
    }
}

fn s(args: &Value, key: &str) -> Result<String, Failure> {
    args.get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Failure::invalid(format!("'{key}' is missing")))
}

fn opt(args: &Value, key: &str) -> Option<String> {
    args.get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .filter(|s| !s.is_empty())
}

/// A resource name of the request, checked against LINSTOR's rules.
fn name(args: &Value, key: &str) -> Result<String, Failure> {
    let n = s(args, key)?;
    if !valid_resource_name(&n) {
        return Err(Failure::invalid(format!(
            "'{n}' is not a valid resource name (letters, digits, _ and -, starting with a letter or _, at most 48)"
        )));
    }
    Ok(n)
}

fn gib(args: &Value, key: &str) -> Result<u64, Failure> {
    let v = args
        .get(key)
        .ok_or_else(|| Failure::invalid(format!("'{key}' is missing")))?;
    let g = v
        .as_u64()
        .ok_or_else(|| Failure::invalid(format!("'{key}' is not a whole number of GiB: {v}")))?;
    if g == 0 {
        return Err(Failure::invalid(format!("a {key} of 0 GiB is not a size")));
    }
    Ok(g)
}

fn props(args: &Value) -> BTreeMap<String, String> {
    args.get("props")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn group(b: &Backend, args: &Value) -> String {
    opt(args, "group").unwrap_or_else(|| b.group.clone())
}

pub async fn run(req: &Request) -> Result<Value, Failure> {
    let b = Backend::from_request(req)?;
    let a = &req.args;
    match req.op.as_str() {
        "stats" => stats(&b, a).await,
        "create" => create(&b, a).await,
        "delete" => delete(&b, a).await,
        "extend" => extend(&b, a).await,
        "snapshot_create" => snapshot(&b, a, SnapOp::Take).await,
        "snapshot_delete" => snapshot(&b, a, SnapOp::Delete).await,
        "revert" => snapshot(&b, a, SnapOp::Rollback).await,
        "from_snapshot" => from_snapshot(&b, a).await,
        "clone" => clone(&b, a).await,
        "attach" => attach(&b, a).await,
        "detach" => detach(&b, a).await,
        "manage_size" => manage_size(&b, a).await,
        "manage" => manage(&b, a).await,
        "unmanage" => unmanage(&b, a).await,
        "retype" => retype(&b, a).await,
        other => Err(Failure::invalid(format!("'{other}' is not an operation"))),
    }
}

/// Total and free GiB of each resource group asked for (its pools on its nodes).
async fn stats(b: &Backend, a: &Value) -> Result<Value, Failure> {
    let v = b.volumes()?;
    let mut groups: Vec<String> = a
        .get("groups")
        .and_then(Value::as_array)
        .map(|g| {
            g.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if groups.is_empty() {
        groups.push(b.group.clone());
    }
    let mut pools = Vec::new();
    for g in &groups {
        let (total, free) = v.group_space(g).await.map_err(|e| match e {
            strata_adapter::AdapterError::Unreachable(_) => Failure::from(e),
            other => Failure::new(Kind::NotFound, format!("resource group '{g}': {other}")),
        })?;
        pools.push(json!({"group": g, "total_kib": total, "free_kib": free}));
    }
    Ok(json!({ "pools": pools }))
}

async fn create(b: &Backend, a: &Value) -> Result<Value, Failure> {
    let n = name(a, "name")?;
    let size = gib(a, "size_gib")?;
    let v = b.volumes()?;
    if v.find(&n).await?.is_some() {
        return Err(Failure::invalid(format!(
            "volume '{n}' exists already in the cluster"
        )));
    }
    let over = Placement {
        place_count: match a.get("place_count") {
            None | Some(Value::Null) => None,
            Some(p) => Some(
                p.as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .filter(|n| *n > 0)
                    .ok_or_else(|| Failure::invalid(format!("place count {p} is not a count")))?,
            ),
        },
        storage_pool: opt(a, "storage_pool"),
    };
    if let Some(pool) = &over.storage_pool {
        let pools = v
            .client
            .storage_pools(&[], std::slice::from_ref(pool))
            .await
            .map_err(|e| Failure::from(strata_adapter::AdapterError::from(e)))?;
        if !pools
            .iter()
            .any(|p| p.storage_pool_name.eq_ignore_ascii_case(pool))
        {
            return Err(Failure::invalid(format!(
                "storage pool '{pool}' (the volume type's strata:storage_pool) is on no node; name one `linstor storage-pool list` shows"
            )));
        }
    }
    v.create_placed(&n, kib_from_gib(size), &group(b, a), props(a), over)
        .await?;
    Ok(json!({ "name": n }))
}

/// Deletes a volume with its replicas; one that is gone is done, one in use is refused.
async fn delete(b: &Backend, a: &Value) -> Result<Value, Failure> {
    let n = name(a, "name")?;
    let v = b.volumes()?;
    match v.delete(&n).await {
        Ok(()) => Ok(json!({ "deleted": true })),
        Err(strata_adapter::AdapterError::NotFound(_)) => Ok(json!({ "deleted": false })),
        Err(e) => Err(e.into()),
    }
}

async fn extend(b: &Backend, a: &Value) -> Result<Value, Failure> {
    let n = name(a, "name")?;
    let size = gib(a, "size_gib")?;
    let v = b.volumes()?;
    let rd = v
        .find(&n)
        .await?
        .ok_or_else(|| Failure::new(Kind::NotFound, format!("volume '{n}' does not exist")))?;
    if kib_from_gib(size) < size_kib(&rd) {
        return Err(Failure::invalid(format!(
            "volume '{n}' is {} GiB; volumes only grow",
            gib_from_kib(size_kib(&rd))
        )));
    }
    v.resize(&n, kib_from_gib(size)).await?;
    Ok(json!({}))
}

async fn snapshot(b: &Backend, a: &Value, op: SnapOp) -> Result<Value, Failure> {
    let n = name(a, "name")?;
    let snap = name(a, "snapshot")?;
    let v = b.volumes()?;
    if v.find(&n).await?.is_none() {
        if matches!(op, SnapOp::Delete) {
            return Ok(json!({ "deleted": false }));
        }
        return Err(Failure::new(
            Kind::NotFound,
            format!("volume '{n}' does not exist"),
        ));
    }
    if !matches!(op, SnapOp::Take) && !has_snapshot(&v, &n, &snap).await? {
        if matches!(op, SnapOp::Delete) {
            return Ok(json!({ "deleted": false }));
        }
        return Err(Failure::new(
            Kind::NotFound,
            format!("volume '{n}' has no snapshot '{snap}'"),
        ));
    }
    v.snapshot(&n, &snap, op).await?;
    Ok(json!({}))
}

async fn has_snapshot(v: &Volumes, rsc: &str, snap: &str) -> Result<bool, Failure> {
    let snaps = v.snapshots(&[rsc.to_string()]).await?;
    Ok(snaps.iter().any(|s| s.name.eq_ignore_ascii_case(snap)))
}

/// Grows a new volume to what Cinder asked for; deletes it when that fails.
async fn grow_new(v: &Volumes, n: &str, size_gib: Option<u64>) -> Result<(), Failure> {
    let Some(want) = size_gib.map(kib_from_gib) else {
        return Ok(());
    };
    if let Err(e) = v.grow_to(n, want).await {
        let _ = v.delete(n).await;
        return Err(e.into());
    }
    Ok(())
}

async fn from_snapshot(b: &Backend, a: &Value) -> Result<Value, Failure> {
    let src = name(a, "source")?;
    let snap = name(a, "snapshot")?;
    let n = name(a, "name")?;
    let size = a.get("size_gib").and_then(Value::as_u64);
    let v = b.volumes()?;
    if v.find(&n).await?.is_some() {
        return Err(Failure::invalid(format!(
            "volume '{n}' exists already in the cluster"
        )));
    }
    if !has_snapshot(&v, &src, &snap).await? {
        return Err(Failure::new(
            Kind::NotFound,
            format!("volume '{src}' has no snapshot '{snap}'"),
        ));
    }
    v.restore_snapshot(&src, &snap, &n, &group(b, a), props(a))
        .await?;
    grow_new(&v, &n, size).await?;
    Ok(json!({ "name": n }))
}

async fn clone(b: &Backend, a: &Value) -> Result<Value, Failure> {
    let src = name(a, "source")?;
    let n = name(a, "name")?;
    let size = a.get("size_gib").and_then(Value::as_u64);
    let v = b.volumes()?;
    if v.find(&src).await?.is_none() {
        return Err(Failure::new(
            Kind::NotFound,
            format!("volume '{src}' does not exist"),
        ));
    }
    if v.find(&n).await?.is_some() {
        return Err(Failure::invalid(format!(
            "volume '{n}' exists already in the cluster"
        )));
    }
    v.clone_volume(&src, &n, &group(b, a), props(a)).await?;
    grow_new(&v, &n, size).await?;
    Ok(json!({ "name": n }))
}

async fn set_resource_props(
    v: &Volumes,
    rsc: &str,
    node: &str,
    set: BTreeMap<String, String>,
    delete: Vec<String>,
) -> Result<(), Failure> {
    let m = ResourceModify {
        props: PropsModify {
            override_props: set,
            delete_props: delete,
            ..Default::default()
        },
        ..Default::default()
    };
    let replies = v
        .client
        .resource_modify(rsc, node, &m)
        .await
        .map_err(|e| Failure::from(strata_adapter::AdapterError::from(e)))?;
    if let Some(r) = replies.iter().find(|r| r.is_error()) {
        return Err(Failure::from(r.message.clone()));
    }
    Ok(())
}

/// Makes the volume usable on a host (diskless where it has no replica, unless the backend
/// wants local replicas) and records the instance using it there; answers its device.
async fn attach(b: &Backend, a: &Value) -> Result<Value, Failure> {
    let n = name(a, "name")?;
    let host = s(a, "host")?;
    let v = b.volumes()?;
    let got = v.attach(&n, &host, !b.diskless).await?;
    // Open on another host (the instance runs there: a live migration, or a multi-attach
    // volume): both may have it open while this one takes over.
    if let Some(from) = got.open_elsewhere.first() {
        let rd = v
            .find(&n)
            .await?
            .ok_or_else(|| strata_adapter::AdapterError::NotFound(n.clone()))?;
        v.begin_hand_over(&rd, from, &host).await?;
    }
    let mut set = BTreeMap::new();
    if let Some(u) = opt(a, "instance_uuid") {
        set.insert(PROP_INSTANCE_UUID.to_string(), u);
    }
    if let Some(name) = opt(a, "instance_name") {
        set.insert(PROP_INSTANCE_NAME.to_string(), name);
    }
    if !set.is_empty() {
        set_resource_props(&v, &n, &host, set, Vec::new()).await?;
    }
    Ok(json!({ "device": got.device, "open_elsewhere": got.open_elsewhere }))
}

/// Forgets the instance on the host and removes the attachment if the driver made it (a
/// replica the resource group placed stays).
async fn detach(b: &Backend, a: &Value) -> Result<Value, Failure> {
    let n = name(a, "name")?;
    let host = s(a, "host")?;
    let v = b.volumes()?;
    let rscs = match v.resources(&n).await {
        Ok(r) => r,
        Err(strata_adapter::AdapterError::NotFound(_)) => return Ok(json!({"released": false})),
        Err(e) => return Err(e.into()),
    };
    let Some(here) = rscs
        .iter()
        .find(|r| r.resource.node_name.eq_ignore_ascii_case(&host))
    else {
        return Ok(json!({ "released": false }));
    };
    let ours: Vec<String> = [PROP_INSTANCE_UUID, PROP_INSTANCE_NAME]
        .iter()
        .filter(|k| here.resource.props.contains_key(**k))
        .map(|k| k.to_string())
        .collect();
    if !ours.is_empty() {
        set_resource_props(&v, &n, &host, BTreeMap::new(), ours).await?;
    }
    let released = v.release(&n, &host).await?;
    if let Some(rd) = v.find(&n).await? {
        v.end_hand_over(&rd, &host).await?;
    }
    Ok(json!({ "released": released }))
}

/// The definition a manage names.
async fn manageable(
    v: &Volumes,
    n: &str,
) -> Result<strata_api::types::ResourceDefinition, Failure> {
    v.find(n).await?.ok_or_else(|| {
        Failure::new(
            Kind::NotFound,
            format!("no resource definition '{n}' to manage"),
        )
    })
}

/// The size (whole GiB, rounded up) of a volume to adopt.
async fn manage_size(b: &Backend, a: &Value) -> Result<Value, Failure> {
    let n = name(a, "name")?;
    let v = b.volumes()?;
    let rd = manageable(&v, &n).await?;
    if rd.volume_definitions.as_ref().is_none_or(|v| v.is_empty()) {
        return Err(Failure::invalid(format!("'{n}' has no volume to manage")));
    }
    Ok(json!({ "size_gib": gib_from_kib(size_kib(&rd)), "size_kib": size_kib(&rd) }))
}

/// Adopts a resource by its name: it keeps its name, gets the volume's properties, and is
/// grown to whole GiB (Cinder counts in GiB). One another Cinder volume has is refused.
async fn manage(b: &Backend, a: &Value) -> Result<Value, Failure> {
    let n = name(a, "name")?;
    let v = b.volumes()?;
    let rd = manageable(&v, &n).await?;
    let p = props(a);
    if let (Some(have), Some(want)) = (rd.props.get(PROP_VOLUME_ID), p.get(PROP_VOLUME_ID)) {
        if have != want {
            return Err(Failure::invalid(format!(
                "'{n}' belongs to Cinder volume {have} already"
            )));
        }
    }
    let have = size_kib(&rd);
    let whole = kib_from_gib(gib_from_kib(have));
    if whole > have {
        v.resize(&n, whole).await?;
    }
    v.set_props(&n, p.into_iter().map(|(k, val)| (k, Some(val))).collect())
        .await?;
    Ok(json!({ "name": n, "size_gib": gib_from_kib(have) }))
}

/// Leaves the resource in the cluster, without Cinder's properties.
async fn unmanage(b: &Backend, a: &Value) -> Result<Value, Failure> {
    let n = name(a, "name")?;
    let v = b.volumes()?;
    let Some(rd) = v.find(&n).await? else {
        return Ok(json!({}));
    };
    let ours: BTreeMap<String, Option<String>> = rd
        .props
        .keys()
        .filter(|k| k.starts_with(PROP_PREFIX))
        .map(|k| (k.clone(), None))
        .collect();
    if !ours.is_empty() {
        v.set_props(&n, ours).await?;
    }
    Ok(json!({}))
}

/// Moves the volume to another resource group (a new volume type). What the new group
/// places differently applies to replicas placed from then on.
async fn retype(b: &Backend, a: &Value) -> Result<Value, Failure> {
    let n = name(a, "name")?;
    let to = s(a, "group")?;
    let v = b.volumes()?;
    let rd = v
        .find(&n)
        .await?
        .ok_or_else(|| Failure::new(Kind::NotFound, format!("volume '{n}' does not exist")))?;
    if rd
        .resource_group_name
        .as_deref()
        .is_some_and(|g| g.eq_ignore_ascii_case(&to))
    {
        return Ok(json!({ "moved": false }));
    }
    let m = ResourceDefinitionModify {
        resource_group: Some(to.clone()),
        ..Default::default()
    };
    v.send_checked(strata_client::calls::resource_dfn_modify(&n, &m))
        .await?;
    Ok(json!({ "moved": true }))
}
