//! Each storage-plugin call Proxmox makes, on top of the shared adapter.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};
use strata_adapter::naming::{free_disk_name, parse_pve, PveDisk};
use strata_adapter::settings::{controller_list, token_from_auth_json, token_from_file};
use strata_adapter::size::{bytes_from_kib, kib_from_bytes};
use strata_adapter::{AdapterError, ControllerSettings, Volumes};
use strata_api::types::{ResourceDefinition, ResourceGroup, Snapshot};

use crate::protocol::Request;

/// The properties of a volume's resource definition.
pub const PROP_VMID: &str = "Aux/pve/vmid";
pub const PROP_VOLNAME: &str = "Aux/pve/volname";
pub const PROP_STOREID: &str = "Aux/pve/storeid";

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
        let token = match text(s, "strata-token-file") {
            Some(f) => token_from_file(std::path::Path::new(&f))?,
            None => token_from_auth_json(),
        };
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
            controllers: ControllerSettings {
                controllers: controller_list(
                    &text(s, "strata-controllers").unwrap_or_else(|| "127.0.0.1:3370".into()),
                ),
                security: strata_client::Security {
                    ca_file: text(s, "strata-cafile").map(PathBuf::from),
                    cert_file: text(s, "strata-certfile").map(PathBuf::from),
                    key_file: text(s, "strata-keyfile").map(PathBuf::from),
                    token,
                    allow_insecure_auth: flag(s, "strata-allow-insecure-auth"),
                },
            },
            group: text(s, "strata-group").unwrap_or_else(|| "DfltRscGrp".into()),
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

fn disk(args: &Value) -> Result<PveDisk, String> {
    parse_pve(&arg_str(args, "volname").ok_or("'volname' is missing")?)
}

fn size_kib(rd: &ResourceDefinition) -> u64 {
    rd.volume_definitions
        .as_ref()
        .and_then(|vds| {
            vds.iter()
                .find(|v| v.volume_number.unwrap_or(0) == 0)
                .and_then(|v| v.size_kib)
        })
        .unwrap_or(0)
        .max(0) as u64
}

fn err(e: AdapterError) -> String {
    e.to_string()
}

/// Runs one call; the answer's result, or the message Proxmox shows.
pub async fn run(req: &Request) -> Result<Value, String> {
    let st = Storage::from_request(req)?;
    let a = &req.args;
    match req.op.as_str() {
        "status" => status(&st).await,
        "alloc_image" => alloc(&st, a).await,
        "free_image" => {
            let d = disk(a)?;
            st.volumes()?.delete(&d.name).await.map_err(err)?;
            Ok(Value::Null)
        }
        "list_images" => list(&st, a).await,
        "activate_volume" => activate(&st, a).await,
        "deactivate_volume" => {
            let d = disk(a)?;
            st.volumes()?
                .release(&d.name, &st.node)
                .await
                .map_err(err)?;
            Ok(Value::Null)
        }
        "path" => path(&st, a).await,
        "volume_size_info" => size_info(&st, a).await,
        "volume_resize" => {
            let d = disk(a)?;
            let bytes = arg_u64(a, "size")?;
            st.volumes()?
                .resize(&d.name, kib_from_bytes(bytes))
                .await
                .map_err(err)?;
            Ok(Value::Null)
        }
        "volume_snapshot" => snapshot(&st, a, SnapOp::Take).await,
        "volume_snapshot_delete" => snapshot(&st, a, SnapOp::Delete).await,
        "volume_snapshot_rollback" => snapshot(&st, a, SnapOp::Rollback).await,
        "volume_snapshot_info" => snapshot_info(&st, a).await,
        other => Err(format!(
            "'{other}' is not an operation of strata-pve (protocol version {})",
            crate::protocol::VERSION
        )),
    }
}

/// Space of the resource group's pools (every pool when the group names none). An
/// unreachable controller answers "inactive" at once rather than holding Proxmox up.
async fn status(st: &Storage) -> Result<Value, String> {
    let v = st.volumes()?;
    let groups: Result<Vec<ResourceGroup>, _> = v
        .client
        .send(strata_client::calls::resource_groups(
            std::slice::from_ref(&st.group),
            &[],
        ))
        .await;
    let groups = match groups {
        Ok(g) => g,
        Err(strata_client::ClientError::Unreachable { .. }) => {
            return Ok(json!({"total": 0, "avail": 0, "used": 0, "active": false}));
        }
        Err(e) => return Err(err(e.into())),
    };
    let group = groups
        .iter()
        .find(|g| g.name.eq_ignore_ascii_case(&st.group))
        .ok_or_else(|| {
            format!(
                "resource group '{}' does not exist; create it (linstor resource-group create {} --storage-pool POOL --place-count N) or set strata-group",
                st.group, st.group
            )
        })?;
    let mut pools: Vec<String> = group.select_filter.storage_pool.iter().cloned().collect();
    pools.extend(
        group
            .select_filter
            .storage_pool_list
            .iter()
            .flatten()
            .cloned(),
    );
    let (total, free) = v.space(&pools).await.map_err(err)?;
    Ok(json!({
        "total": bytes_from_kib(total),
        "avail": bytes_from_kib(free),
        "used": bytes_from_kib(total.saturating_sub(free)),
        "active": true,
    }))
}

async fn alloc(st: &Storage, a: &Value) -> Result<Value, String> {
    let vmid = u32::try_from(arg_u64(a, "vmid")?).map_err(|_| "'vmid' is out of range")?;
    let size = arg_u64(a, "size_kib")?;
    if size == 0 {
        return Err("a disk of size 0 cannot be made; give a size".into());
    }
    let v = st.volumes()?;
    let name = match arg_str(a, "name") {
        Some(n) => {
            let d = parse_pve(&n)?;
            if d.vmid != vmid || d.base.is_some() {
                return Err(format!(
                    "illegal name '{n}' - should be 'vm-{vmid}-*' or 'base-{vmid}-*'"
                ));
            }
            if v.find(&d.name).await.map_err(err)?.is_some() {
                return Err(format!("volume '{}:{n}' already exists", st.storeid));
            }
            d.name
        }
        None => {
            let names = v.names().await.map_err(err)?;
            free_disk_name(vmid, names.iter().map(String::as_str))
        }
    };
    let props: BTreeMap<String, String> = [
        (PROP_VMID.to_string(), vmid.to_string()),
        (PROP_VOLNAME.to_string(), name.clone()),
        (PROP_STOREID.to_string(), st.storeid.clone()),
    ]
    .into();
    v.create(&name, size, &st.group, props).await.map_err(err)?;
    Ok(Value::String(name))
}

async fn list(st: &Storage, a: &Value) -> Result<Value, String> {
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
    let rds = st.volumes()?.with_prop(PROP_VOLNAME).await.map_err(err)?;
    let mut out = Vec::new();
    for rd in rds {
        if rd.props.get(PROP_STOREID).is_some_and(|s| s != &st.storeid) {
            continue;
        }
        let Ok(d) = parse_pve(&rd.props[PROP_VOLNAME]) else {
            continue;
        };
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

async fn activate(st: &Storage, a: &Value) -> Result<Value, String> {
    let d = disk(a)?;
    if arg_str(a, "snapname").is_some() {
        return Err(format!(
            "a snapshot of '{}' cannot be activated; clone it to use its data",
            d.volname
        ));
    }
    if st.controller_vm == Some(d.vmid) {
        // The controller VM's disks are set up outside the cluster's control.
        return Ok(Value::Null);
    }
    let dev = st
        .volumes()?
        .make_available(&d.name, &st.node, st.prefer_local)
        .await
        .map_err(err)?;
    Ok(Value::String(dev))
}

async fn path(st: &Storage, a: &Value) -> Result<Value, String> {
    let d = disk(a)?;
    let v = st.volumes()?;
    if let Some(dev) = v.device(&d.name, &st.node).await.map_err(err)? {
        return Ok(Value::String(dev));
    }
    let rd = v
        .find(&d.name)
        .await
        .map_err(err)?
        .ok_or_else(|| format!("volume '{}:{}' does not exist", st.storeid, d.volname))?;
    if rd.layer_data.iter().any(|l| l.layer_type == "DRBD") {
        // The name drbd-utils' udev rules give the device on every node.
        return Ok(Value::String(format!("/dev/drbd/by-res/{}/0", rd.name)));
    }
    Err(format!(
        "volume '{}:{}' is not active on node '{}'; activate it first",
        st.storeid, d.volname, st.node
    ))
}

async fn size_info(st: &Storage, a: &Value) -> Result<Value, String> {
    let d = disk(a)?;
    let v = st.volumes()?;
    let rd = v
        .find(&d.name)
        .await
        .map_err(err)?
        .ok_or_else(|| format!("volume '{}:{}' does not exist", st.storeid, d.volname))?;
    let size = bytes_from_kib(size_kib(&rd));
    let used: u64 = v
        .resources(&d.name)
        .await
        .map_err(err)?
        .iter()
        .filter_map(|r| r.volumes.first()?.allocated_size_kib)
        .map(|k| bytes_from_kib(k.max(0) as u64))
        .max()
        .unwrap_or(0);
    Ok(json!({"size": size, "format": "raw", "used": used, "parent": d.base.map(|b| b.0)}))
}

enum SnapOp {
    Take,
    Delete,
    Rollback,
}

async fn snapshot(st: &Storage, a: &Value, op: SnapOp) -> Result<Value, String> {
    let d = disk(a)?;
    let snap = arg_str(a, "snap").ok_or("'snap' is missing")?;
    let v = st.volumes()?;
    let call = match op {
        SnapOp::Take => strata_client::calls::snapshot_create(
            &d.name,
            &strata_api::types::request::Snapshot {
                name: snap,
                ..Default::default()
            },
        ),
        SnapOp::Delete => strata_client::calls::snapshot_delete(&d.name, &snap, &[]),
        SnapOp::Rollback => strata_client::calls::snapshot_rollback(
            &d.name,
            &snap,
            &strata_api::types::SnapshotRollback::default(),
        ),
    };
    let replies: Vec<strata_api::ApiCallRc> =
        v.client.send(call).await.map_err(|e| err(e.into()))?;
    if let Some(r) = replies.iter().find(|r| r.is_error()) {
        return Err(r.message.clone());
    }
    Ok(Value::Null)
}

async fn snapshot_info(st: &Storage, a: &Value) -> Result<Value, String> {
    let d = disk(a)?;
    let v = st.volumes()?;
    let snaps: Vec<Snapshot> = v
        .client
        .send(strata_client::calls::snapshots(
            std::slice::from_ref(&d.name),
            &[],
        ))
        .await
        .map_err(|e| err(e.into()))?;
    let mut out = serde_json::Map::new();
    for (i, s) in snaps
        .iter()
        .filter(|s| s.resource_name.eq_ignore_ascii_case(&d.name))
        .enumerate()
    {
        out.insert(s.name.clone(), json!({"id": i + 1, "timestamp": 0}));
    }
    Ok(Value::Object(out))
}
