//! Each storage-plugin call Proxmox makes, on top of the shared adapter.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};
use strata_adapter::naming::{free_disk_name, parse_pve, PveDisk};
use strata_adapter::size::{bytes_from_kib, kib_from_bytes};
use strata_adapter::volume::{size_kib, SnapOp, PROP_HAND_OVER};
use strata_adapter::{AdapterError, Connection, ControllerSettings, Volumes};
use strata_api::types::ResourceDefinition;

use crate::protocol::Request;

/// The properties of a volume's resource definition.
pub const PROP_VMID: &str = "Aux/pve/vmid";
pub const PROP_VOLNAME: &str = "Aux/pve/volname";
pub const PROP_STOREID: &str = "Aux/pve/storeid";
/// The guest's name, where Proxmox knows it when the disk is made.
pub const PROP_VMNAME: &str = "Aux/pve/vm-name";

/// The storage's settings, from its section of storage.cfg.
#[derive(Debug, Clone)]
pub struct Storage {
    pub storeid: String,
    pub node: String,
    pub controllers: ControllerSettings,
    pub group: String,
    pub prefer_local: bool,
    /// The controller VM: its disks are left alone.
    pub controller_vm: Option<u32>,
    pub timeout: Duration,
    /// How long a status answer is reused (`strata-statuscache`, seconds; 0: never).
    pub status_cache: Duration,
}

fn text(scfg: &BTreeMap<String, Value>, key: &str) -> Option<String> {
    match scfg.get(key)? {
        Value::String(s) => Some(s.clone()).filter(|s| !s.is_empty()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(if *b { "1" } else { "0" }.to_string()),
        _ => None,
    }
}

fn flag(scfg: &BTreeMap<String, Value>, key: &str) -> bool {
    matches!(
        text(scfg, key).as_deref(),
        Some("1" | "yes" | "true" | "on")
    )
}

impl Storage {
    pub fn from_request(req: &Request) -> Result<Storage, String> {
        let s = &req.scfg;
        let controller_vm = match text(s, "strata-controllervm") {
            Some(v) => Some(
                v.parse()
                    .map_err(|_| format!("strata-controllervm '{v}' is not a VM id"))?,
            ),
            None => None,
        };
        Ok(Storage {
            storeid: req.storeid.clone(),
            node: req.node.clone(),
            controllers: ControllerSettings::from_connection(&Connection {
                controllers: text(s, "strata-controllers").as_deref(),
                ca_file: text(s, "strata-cafile").as_deref(),
                cert_file: text(s, "strata-certfile").as_deref(),
                key_file: text(s, "strata-keyfile").as_deref(),
                token_file: text(s, "strata-token-file").as_deref(),
                allow_insecure_auth: flag(s, "strata-allow-insecure-auth"),
            })?,
            group: text(s, "strata-group").unwrap_or_else(|| "DfltRscGrp".into()),
            status_cache: Duration::from_secs(
                text(s, "strata-statuscache")
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0),
            ),
            prefer_local: flag(s, "strata-preferlocal"),
            controller_vm,
            // Proxmox holds its storage lock for 60 s: every call ends well before.
            timeout: Duration::from_secs(
                text(s, "strata-timeout")
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(20),
            ),
        })
    }

    pub fn volumes(&self) -> Result<Volumes, String> {
        let mut v = Volumes::new(self.controllers.client(self.timeout)?, "proxmox");
        v.device_wait = self.timeout;
        Ok(v)
    }
}

fn arg_str(args: &Value, key: &str) -> Option<String> {
    args.get(key)?
        .as_str()
        .map(str::to_string)
        .filter(|s| !s.is_empty())
}

fn arg_u64(args: &Value, key: &str) -> Result<u64, String> {
    let v = args.get(key).ok_or_else(|| format!("'{key}' is missing"))?;
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .ok_or_else(|| format!("'{key}' is not a number: {v}"))
}

fn arg_vmid(args: &Value, key: &str) -> Result<u32, String> {
    u32::try_from(arg_u64(args, key)?).map_err(|_| format!("'{key}' is out of range"))
}

fn err(e: AdapterError) -> String {
    e.to_string()
}

/// A disk of this storage: its Proxmox volume name and its resource definition. The
/// definition keeps the name it was made with; templates and renames change only the
/// volume name it carries (`Aux/pve/volname`), as definitions cannot be renamed.
#[derive(Clone)]
struct Disk {
    disk: PveDisk,
    rd: ResourceDefinition,
}

/// What the cluster holds, from one listing: the disks of this storage (the definitions it
/// made, by their volume name, and those LINBIT's plugin made, `pm-xxxxxxxx_<vmid>`, under
/// their own name) and the names of all definitions.
struct Catalog {
    disks: Vec<Disk>,
    names: Vec<String>,
}

impl Catalog {
    async fn read(st: &Storage, v: &Volumes) -> Result<Catalog, String> {
        let rds = v.all().await.map_err(err)?;
        let names = rds.iter().map(|rd| rd.name.clone()).collect();
        let disks = rds
            .into_iter()
            .filter_map(|rd| {
                let volname = match rd.props.get(PROP_VOLNAME) {
                    Some(_) if rd.props.get(PROP_STOREID).is_some_and(|s| s != &st.storeid) => {
                        return None
                    }
                    Some(n) => n.clone(),
                    None if rd.name.starts_with("pm-") => rd.name.clone(),
                    None => return None,
                };
                let disk = parse_pve(&volname).ok()?;
                Some(Disk { disk, rd })
            })
            .collect();
        Ok(Catalog { disks, names })
    }

    /// The disk `wanted` names.
    fn find(&self, st: &Storage, wanted: &PveDisk) -> Result<Disk, String> {
        self.disks
            .iter()
            .find(|d| d.disk.volname == wanted.volname)
            .cloned()
            .ok_or_else(|| format!("volume '{}:{}' does not exist", st.storeid, wanted.volname))
    }

    fn has(&self, volname: &str) -> bool {
        self.disks.iter().any(|d| d.disk.volname == volname)
    }

    /// The first `vm-<vmid>-disk-<n>` no disk of this storage is named.
    fn free_disk_name(&self, vmid: u32) -> String {
        free_disk_name(vmid, self.disks.iter().map(|d| d.disk.name.as_str()))
    }
}

/// The disk name in the call's `key` argument, checked before anything is asked of the
/// controller.
fn named(a: &Value, key: &str) -> Result<PveDisk, String> {
    parse_pve(&arg_str(a, key).ok_or_else(|| format!("'{key}' is missing"))?)
}

/// The disk named by the call's `key` argument, for calls that need nothing else listed.
async fn resolve(st: &Storage, v: &Volumes, a: &Value, key: &str) -> Result<Disk, String> {
    let wanted = named(a, key)?;
    Catalog::read(st, v).await?.find(st, &wanted)
}

/// A definition name for a new disk: its volume's last part, or that with `_<n>` when a
/// definition of that name exists (a template or a renamed disk keeps its old name).
fn free_rd_name(wanted: &str, taken: &[String]) -> String {
    let taken: std::collections::HashSet<String> =
        taken.iter().map(|t| t.to_ascii_lowercase()).collect();
    std::iter::once(wanted.to_string())
        .chain((1..).map(|n| format!("{wanted}_{n}")))
        .find(|n| !taken.contains(&n.to_ascii_lowercase()))
        .expect("some number is free")
}

fn pve_props(st: &Storage, vmid: u32, volname: &str) -> BTreeMap<String, String> {
    [
        (PROP_VMID.to_string(), vmid.to_string()),
        (PROP_VOLNAME.to_string(), volname.to_string()),
        (PROP_STOREID.to_string(), st.storeid.clone()),
    ]
    .into()
}

/// Runs one call; the answer's result, or the message Proxmox shows.
pub async fn run(req: &Request) -> Result<Value, String> {
    let st = Storage::from_request(req)?;
    let a = &req.args;
    let v = st.volumes()?;
    match req.op.as_str() {
        "status" => {
            if let Some(cached) = crate::local::cached_status(&st.storeid, st.status_cache) {
                return Ok(cached);
            }
            let answer = status(&st, &v).await?;
            if !st.status_cache.is_zero() && answer["active"] == true {
                crate::local::note_status(&st.storeid, &answer);
            }
            Ok(answer)
        }
        "alloc_image" => alloc(&st, &v, a).await,
        "free_image" => {
            let d = resolve(&st, &v, a, "volname").await?;
            v.delete(&d.rd.name).await.map_err(err)?;
            Ok(Value::Null)
        }
        "list_images" => list(&st, &v, a).await,
        "activate_volume" => or_local(&st, a, activate(&st, &v, a).await),
        "deactivate_volume" => {
            let d = resolve(&st, &v, a, "volname").await?;
            v.release(&d.rd.name, &st.node).await.map_err(err)?;
            v.end_hand_over(&d.rd, &st.node).await.map_err(err)?;
            crate::local::forget(&st.storeid, &d.disk.volname);
            Ok(Value::Null)
        }
        "path" => or_local(&st, a, path(&st, &v, a).await),
        "volume_size_info" => size_info(&st, &v, a).await,
        "volume_resize" => {
            let d = resolve(&st, &v, a, "volname").await?;
            let bytes = arg_u64(a, "size")?;
            v.resize(&d.rd.name, kib_from_bytes(bytes))
                .await
                .map_err(err)?;
            Ok(Value::Null)
        }
        "volume_snapshot" => snapshot(&st, &v, a, SnapOp::Take).await,
        "volume_snapshot_delete" => snapshot(&st, &v, a, SnapOp::Delete).await,
        "volume_snapshot_rollback" => snapshot(&st, &v, a, SnapOp::Rollback).await,
        "volume_snapshot_info" => snapshot_info(&st, &v, a).await,
        "create_base" => create_base(&st, &v, a).await,
        "clone_image" => clone_image(&st, &v, a).await,
        "rename_volume" => rename(&st, &v, a).await,
        other => Err(format!(
            "'{other}' is not an operation of strata-pve (protocol version {})",
            crate::protocol::VERSION
        )),
    }
}

/// The answer of `path` or `activate_volume`, noted for this node; when the controller
/// cannot be reached, the device noted before (if it still exists) instead.
fn or_local(st: &Storage, a: &Value, answer: Result<Value, String>) -> Result<Value, String> {
    let volname = arg_str(a, "volname").unwrap_or_default();
    match answer {
        Ok(Value::String(dev)) => {
            crate::local::remember(&st.storeid, &volname, &dev);
            Ok(Value::String(dev))
        }
        Err(e) if e.starts_with(strata_adapter::volume::UNREACHABLE) => {
            match crate::local::recall(&st.storeid, &volname) {
                Some(dev) => Ok(Value::String(dev)),
                None => Err(format!(
                    "{e}; '{volname}' was not set up on this node before, so it cannot be used until the controller answers"
                )),
            }
        }
        other => other,
    }
}

/// Space of the resource group's pools (every pool when the group names none). An
/// unreachable controller answers "inactive" at once rather than holding Proxmox up.
async fn status(st: &Storage, v: &Volumes) -> Result<Value, String> {
    let (total, free) = match v.group_space(&st.group).await {
        Ok(space) => space,
        Err(AdapterError::Unreachable(_)) => {
            return Ok(json!({"total": 0, "avail": 0, "used": 0, "active": false}));
        }
        Err(e) => return Err(format!("{e}, or set strata-group")),
    };
    Ok(json!({
        "total": bytes_from_kib(total),
        "avail": bytes_from_kib(free),
        "used": bytes_from_kib(total.saturating_sub(free)),
        "active": true,
    }))
}

async fn alloc(st: &Storage, v: &Volumes, a: &Value) -> Result<Value, String> {
    let vmid = arg_vmid(a, "vmid")?;
    let size = arg_u64(a, "size_kib")?;
    if size == 0 {
        return Err("a disk of size 0 cannot be made; give a size".into());
    }
    let cat = Catalog::read(st, v).await?;
    let volname = match arg_str(a, "name") {
        Some(n) => {
            let d = parse_pve(&n)?;
            if d.vmid != vmid || d.base.is_some() {
                return Err(format!(
                    "illegal name '{n}' - should be 'vm-{vmid}-*' or 'base-{vmid}-*'"
                ));
            }
            if cat.has(&n) {
                return Err(format!("volume '{}:{n}' already exists", st.storeid));
            }
            n
        }
        None => cat.free_disk_name(vmid),
    };
    let rd_name = free_rd_name(&volname, &cat.names);
    let mut props = pve_props(st, vmid, &volname);
    if let Some(n) = arg_str(a, "vmname") {
        props.insert(PROP_VMNAME.to_string(), n);
    }
    v.create(&rd_name, size, &st.group, props)
        .await
        .map_err(err)?;
    Ok(Value::String(volname))
}

async fn list(st: &Storage, v: &Volumes, a: &Value) -> Result<Value, String> {
    let vmid = a.get("vmid").and_then(|v| {
        v.as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    });
    let vollist: Option<Vec<String>> = a.get("vollist").and_then(|v| {
        v.as_array().map(|l| {
            l.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
    });
    let mut out = Vec::new();
    for Disk { disk: d, rd } in Catalog::read(st, v).await?.disks {
        if vmid.is_some_and(|id| id != u64::from(d.vmid)) {
            continue;
        }
        let volid = format!("{}:{}", st.storeid, d.volname);
        if vollist.as_ref().is_some_and(|l| !l.contains(&volid)) {
            continue;
        }
        let mut info = json!({
            "volid": volid,
            "format": "raw",
            "size": bytes_from_kib(size_kib(&rd)),
            "vmid": d.vmid,
        });
        if let Some((base, _)) = &d.base {
            info["parent"] = json!(base);
        }
        out.push(info);
    }
    out.sort_by(|x, y| x["volid"].as_str().cmp(&y["volid"].as_str()));
    Ok(Value::Array(out))
}

async fn activate(st: &Storage, v: &Volumes, a: &Value) -> Result<Value, String> {
    let d = resolve(st, v, a, "volname").await?;
    if arg_str(a, "snapname").is_some() {
        return Err(format!(
            "a snapshot of '{}' cannot be activated; clone it to use its data",
            d.disk.volname
        ));
    }
    if st.controller_vm == Some(d.disk.vmid) {
        // The controller VM's disks are set up outside the cluster's control.
        return Ok(Value::Null);
    }
    let got = v
        .attach(&d.rd.name, &st.node, st.prefer_local)
        .await
        .map_err(err)?;
    // Open on another node: a live migration hands the disk over from there.
    match got.open_elsewhere.as_slice() {
        [] if d.rd.props.contains_key(PROP_HAND_OVER) => {
            v.end_hand_over(&d.rd, &st.node).await.map_err(err)?;
        }
        [] => {}
        [from] => v
            .begin_hand_over(&d.rd, from, &st.node)
            .await
            .map_err(err)?,
        many => {
            let _ = v.release(&d.rd.name, &st.node).await;
            return Err(format!(
                "volume '{}:{}' is open on nodes {}; a disk passes from one node to one other, so stop it on all but one first",
                st.storeid,
                d.disk.volname,
                many.join(", ")
            ));
        }
    }
    Ok(Value::String(got.device))
}

async fn path(st: &Storage, v: &Volumes, a: &Value) -> Result<Value, String> {
    let d = resolve(st, v, a, "volname").await?;
    if let Some(dev) = v.device(&d.rd.name, &st.node).await.map_err(err)? {
        return Ok(Value::String(dev));
    }
    if d.rd.layer_data.iter().any(|l| l.layer_type == "DRBD") {
        // The name drbd-utils' udev rules give the device on every node.
        return Ok(Value::String(format!("/dev/drbd/by-res/{}/0", d.rd.name)));
    }
    Err(format!(
        "volume '{}:{}' is not active on node '{}'; activate it first",
        st.storeid, d.disk.volname, st.node
    ))
}

async fn size_info(st: &Storage, v: &Volumes, a: &Value) -> Result<Value, String> {
    let d = resolve(st, v, a, "volname").await?;
    let size = bytes_from_kib(size_kib(&d.rd));
    let used: u64 = v
        .resources(&d.rd.name)
        .await
        .map_err(err)?
        .iter()
        .filter_map(|r| r.volumes.first()?.allocated_size_kib)
        .map(|k| bytes_from_kib(k.max(0) as u64))
        .max()
        .unwrap_or(0);
    Ok(json!({"size": size, "format": "raw", "used": used, "parent": d.disk.base.map(|b| b.0)}))
}

async fn snapshot(st: &Storage, v: &Volumes, a: &Value, op: SnapOp) -> Result<Value, String> {
    let d = resolve(st, v, a, "volname").await?;
    let snap = arg_str(a, "snap").ok_or("'snap' is missing")?;
    v.snapshot(&d.rd.name, &snap, op).await.map_err(err)?;
    Ok(Value::Null)
}

async fn snapshot_info(st: &Storage, v: &Volumes, a: &Value) -> Result<Value, String> {
    let d = resolve(st, v, a, "volname").await?;
    let snaps = v
        .snapshots(std::slice::from_ref(&d.rd.name))
        .await
        .map_err(err)?;
    // Taken when its first copy was (seconds, as Proxmox counts), oldest first.
    let mut taken: Vec<(i64, &str)> = snaps
        .iter()
        .map(|s| {
            let ms = s.snapshots.iter().filter_map(|n| n.create_timestamp).min();
            (ms.unwrap_or(0) / 1000, s.name.as_str())
        })
        .collect();
    taken.sort();
    let mut out = serde_json::Map::new();
    for (i, (at, name)) in taken.into_iter().enumerate() {
        out.insert(name.to_string(), json!({"id": i + 1, "timestamp": at}));
    }
    Ok(Value::Object(out))
}

/// Makes a VM's disk a template's: the same definition, now named `base-<vmid>-...`.
async fn create_base(st: &Storage, v: &Volumes, a: &Value) -> Result<Value, String> {
    let wanted = named(a, "volname")?;
    let cat = Catalog::read(st, v).await?;
    let d = cat.find(st, &wanted)?;
    if d.disk.is_base || d.disk.base.is_some() {
        return Err(format!(
            "'{}' is a template's disk or a linked clone; a template is made from a VM's own disk",
            d.disk.volname
        ));
    }
    let new = d.disk.name.replacen("vm-", "base-", 1);
    if cat.has(&new) {
        return Err(format!("volume '{}:{new}' already exists", st.storeid));
    }
    v.set_props(
        &d.rd.name,
        [(PROP_VOLNAME.to_string(), Some(new.clone()))].into(),
    )
    .await
    .map_err(err)?;
    Ok(Value::String(new))
}

/// A linked clone of a template's disk for VM `vmid`: the controller's clone of the
/// definition (a snapshot of it, copied by reflink, ZFS or LVM-thin where the pools allow),
/// named `base-<b>-disk-<n>/vm-<vmid>-disk-<m>`.
async fn clone_image(st: &Storage, v: &Volumes, a: &Value) -> Result<Value, String> {
    let wanted = named(a, "volname")?;
    let cat = Catalog::read(st, v).await?;
    let d = cat.find(st, &wanted)?;
    let vmid = arg_vmid(a, "vmid")?;
    if let Some(snap) = arg_str(a, "snap") {
        return clone_snapshot(st, v, &cat, &d, vmid, &snap).await;
    }
    if !d.disk.is_base {
        return Err(format!(
            "'{}' is not a template's disk; convert the VM to a template first",
            d.disk.volname
        ));
    }
    let name = cat.free_disk_name(vmid);
    let volname = format!("{}/{name}", d.disk.volname);
    let rd_name = free_rd_name(&name, &cat.names);
    v.clone_volume(
        &d.rd.name,
        &rd_name,
        &st.group,
        pve_props(st, vmid, &volname),
    )
    .await
    .map_err(err)?;
    Ok(Value::String(volname))
}

/// A new disk for VM `vmid` with the data of snapshot `snap` of `d`: a definition of the
/// storage's resource group, restored from the snapshot (volume definitions, then resources);
/// nothing is left when a step fails.
async fn clone_snapshot(
    st: &Storage,
    v: &Volumes,
    cat: &Catalog,
    d: &Disk,
    vmid: u32,
    snap: &str,
) -> Result<Value, String> {
    let volname = cat.free_disk_name(vmid);
    let rd_name = free_rd_name(&volname, &cat.names);
    v.restore_snapshot(
        &d.rd.name,
        snap,
        &rd_name,
        &st.group,
        pve_props(st, vmid, &volname),
    )
    .await
    .map_err(|e| format!("cloning '{}': {e}", d.disk.volname))?;
    Ok(Value::String(volname))
}

/// Gives a disk to another VM: the same definition under the new volume name.
async fn rename(st: &Storage, v: &Volumes, a: &Value) -> Result<Value, String> {
    let wanted = named(a, "volname")?;
    let cat = Catalog::read(st, v).await?;
    let d = cat.find(st, &wanted)?;
    let vmid = arg_vmid(a, "target_vmid")?;
    let name = match arg_str(a, "target_volname") {
        Some(n) => {
            let t = parse_pve(&n)?;
            if t.vmid != vmid || t.base.is_some() {
                return Err(format!("illegal name '{n}' - should be 'vm-{vmid}-*'"));
            }
            t.name
        }
        None => cat.free_disk_name(vmid),
    };
    let volname = match &d.disk.base {
        Some((base, _)) => format!("{base}/{name}"),
        None => name,
    };
    if cat.has(&volname) {
        return Err(format!("target volume '{volname}' already exists"));
    }
    v.set_props(
        &d.rd.name,
        [
            (PROP_VOLNAME.to_string(), Some(volname.clone())),
            (PROP_VMID.to_string(), Some(vmid.to_string())),
        ]
        .into(),
    )
    .await
    .map_err(err)?;
    Ok(Value::String(format!("{}:{volname}", st.storeid)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definition_names_step_aside_for_kept_ones() {
        let taken = vec!["vm-1-disk-0".to_string(), "VM-1-DISK-0_1".to_string()];
        assert_eq!(free_rd_name("vm-1-disk-0", &taken), "vm-1-disk-0_2");
        assert_eq!(free_rd_name("vm-1-disk-1", &taken), "vm-1-disk-1");
    }
}
