//! Transfer actions (`remotes/tm/<driver>/<action>`): VM disks on hosts.
//!
//! A disk on a host is the link `<VM directory>/disk.<id>` to the device of its volume, made
//! usable on that host through the controller (a diskless attachment where the host has no
//! replica, marked as this driver's so that only it is removed again).

use std::collections::BTreeMap;

use strata_adapter::volume::{SnapOp, PROP_HAND_OVER};
use strata_adapter::{AdapterError, Volumes};

use crate::conf::{self, split_location, DsConf};
use crate::host;
use crate::xml::{self, Vm};

fn err(e: AdapterError) -> String {
    e.to_string()
}

fn arg<'a>(args: &'a [String], i: usize, what: &str) -> Result<&'a str, String> {
    args.get(i)
        .map(String::as_str)
        .ok_or_else(|| format!("argument {} ({what}) is missing", i + 1))
}

fn num<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> Result<T, String> {
    let a = arg(args, i, what)?;
    a.parse()
        .map_err(|_| format!("argument {} ({what}) is not a number: '{a}'", i + 1))
}

/// A disk location `host:<dir>/disk.<id>`.
struct DiskAt {
    host: String,
    path: String,
    id: u32,
}

fn disk_at(loc: &str) -> Result<DiskAt, String> {
    let (host, path) = split_location(loc);
    let id = conf::disk_id(&path)
        .ok_or_else(|| format!("'{loc}' is not a VM disk location (host:<dir>/disk.<id>)"))?;
    Ok(DiskAt { host, path, id })
}

/// Runs transfer action `action` of driver `driver`.
pub async fn run(
    driver: &str,
    action: &str,
    args: &[String],
    stdin: Option<&str>,
) -> Result<(), String> {
    match action {
        "clone" => clone(args).await,
        "ln" => ln(args).await,
        "mkimage" => volatile(args, false).await,
        "mkswap" => volatile(args, true).await,
        "delete" => delete(args).await,
        "mvds" => mvds(args).await,
        "mv" => mv(args).await,
        "cpds" => cpds(args).await,
        "resize" => resize(args).await,
        "snap_create" => snap(args, SnapOp::Take).await,
        "snap_delete" => snap(args, SnapOp::Delete).await,
        "snap_revert" => snap(args, SnapOp::Rollback).await,
        "premigrate" | "postmigrate" | "failmigrate" => {
            migrate(driver, action, args, stdin.unwrap_or_default()).await
        }
        "monitor" => {
            let a = xml::ds_action(&xml::decode(stdin.unwrap_or_default())?)?;
            let c = DsConf::of(&a.ds)?;
            let v = c.volumes()?;
            let space = crate::ds::monitor(&c, &v).await?;
            if a.monitor_vm_disks {
                // The sizes are extra: the space is reported even when they cannot be.
                if let Err(e) = send_vm_disks(&v).await {
                    eprintln!("WARN: VM disk sizes: {e}");
                }
            }
            println!("{space}");
            Ok(())
        }
        // The context CD is a file of the VM's directory: the system datastore's usual way.
        "context" => crate::delegate("tm", "ssh", "context", args, None).map(|_| ()),
        other => Err(format!("'{other}' is not a transfer action of this driver")),
    }
}

/// The properties of a VM's own volume.
fn vm_props(vm: Option<&Vm>, vmid: u32, disk: u32, ds: u32) -> BTreeMap<String, String> {
    let mut p = BTreeMap::from([
        (conf::PROP_VM_ID.to_string(), vmid.to_string()),
        (conf::PROP_DISK_ID.to_string(), disk.to_string()),
        (conf::PROP_DATASTORE_ID.to_string(), ds.to_string()),
    ]);
    if let Some(vm) = vm {
        if !vm.name.is_empty() {
            p.insert(conf::PROP_VM_NAME.to_string(), vm.name.clone());
        }
        if let Some(img) = vm.disk(disk).and_then(|d| d.image_id) {
            p.insert(conf::PROP_IMAGE_ID.to_string(), img.to_string());
        }
    }
    p
}

/// Makes `name` usable on `host` and links the disk location to its device.
async fn attach_and_link(v: &Volumes, name: &str, at: &DiskAt) -> Result<(), String> {
    let got = v.attach(name, &at.host, false).await.map_err(err)?;
    if let Err(e) = host::run(&at.host, &host::link_script(&at.path, name, &got.device)) {
        let _ = v.release(name, &at.host).await;
        return Err(e);
    }
    Ok(())
}

/// Removes the disk link on its host (best effort: a host that is gone has no link to
/// remove) and the attachment this driver made there.
async fn unlink_and_release(v: &Volumes, name: Option<&str>, at: &DiskAt) -> Result<(), String> {
    if let Err(e) = host::run(&at.host, &host::unlink_script(&at.path)) {
        eprintln!("WARN: {e}");
    }
    if let Some(name) = name {
        v.release(name, &at.host).await.map_err(err)?;
    }
    Ok(())
}

/// The volume behind a VM's disk.
struct DiskVolume {
    name: String,
    /// The VM's own (a clone or a volatile disk), not the image itself.
    own: bool,
}

/// The volume behind disk `disk` of VM `vmid`: the VM's own (a clone or a volatile disk,
/// found by its properties, or by its name for volumes made before them, such as the
/// LINSTOR add-on's clones), else the image itself (a persistent disk).
async fn disk_volume(
    v: &Volumes,
    vmid: u32,
    disk: u32,
    vm: Option<&Vm>,
) -> Result<Option<DiskVolume>, String> {
    let (vm_s, disk_s) = (vmid.to_string(), disk.to_string());
    let all = v.all().await.map_err(err)?;
    let own = |name: String| Some(DiskVolume { name, own: true });
    if let Some(rd) = all.iter().find(|rd| {
        rd.props.get(conf::PROP_VM_ID) == Some(&vm_s)
            && rd.props.get(conf::PROP_DISK_ID) == Some(&disk_s)
    }) {
        return Ok(own(rd.name.clone()));
    }
    let loaded;
    let vm = match vm {
        Some(vm) => Some(vm),
        None => {
            loaded = conf::load_vm(vmid).ok();
            loaded.as_ref()
        }
    };
    let Some(d) = vm.and_then(|vm| vm.disk(disk)) else {
        return Ok(None);
    };
    let exists = |name: &str| all.iter().any(|rd| rd.name.eq_ignore_ascii_case(name));
    let named = if d.source.is_empty() {
        conf::volatile_volume(vmid, disk)
    } else {
        conf::clone_volume(&d.source, vmid, disk)
    };
    if (d.clone || d.source.is_empty()) && exists(&named) {
        return Ok(own(named));
    }
    Ok(Some(DiskVolume {
        name: d.source.clone(),
        own: false,
    })
    .filter(|d| !d.name.is_empty()))
}

async fn disk_volume_or_err(v: &Volumes, vmid: u32, at: &DiskAt) -> Result<String, String> {
    disk_volume(v, vmid, at.id, None)
        .await?
        .map(|d| d.name)
        .ok_or_else(|| {
            format!(
                "VM {vmid} disk {}: no volume of the cluster belongs to it",
                at.id
            )
        })
}

/// CLONE fe:SOURCE host:DIR/disk.N VMID DSID: the VM's own copy of the image.
async fn clone(args: &[String]) -> Result<(), String> {
    let (_, source) = split_location(arg(args, 0, "source")?);
    let at = disk_at(arg(args, 1, "destination")?)?;
    let vmid: u32 = num(args, 2, "VM id")?;
    let dsid: u32 = num(args, 3, "datastore id")?;
    let c = DsConf::load(dsid)?;
    let v = c.volumes()?;
    let vm = conf::load_vm(vmid).ok();
    let name = conf::clone_volume(&source, vmid, at.id);
    if v.find(&source).await.map_err(err)?.is_none() {
        return Err(format!(
            "VM {vmid} disk {}: the image's volume '{source}' does not exist",
            at.id
        ));
    }
    v.clone_volume(
        &source,
        &name,
        &c.group,
        vm_props(vm.as_ref(), vmid, at.id, dsid),
    )
    .await
    .map_err(|e| format!("VM {vmid} disk {}: {e}", at.id))?;
    let size = vm.as_ref().and_then(|vm| vm.disk(at.id)?.size_mb);
    let ready = async {
        if let Some(mb) = size {
            v.grow_to(&name, mb * 1024).await.map_err(err)?;
        }
        attach_and_link(&v, &name, &at).await
    }
    .await;
    if let Err(e) = ready {
        let _ = v.delete(&name).await;
        return Err(format!("VM {vmid} disk {}: {e}", at.id));
    }
    Ok(())
}

/// LN fe:SOURCE host:DIR/disk.N VMID DSID: the image itself (a persistent disk).
async fn ln(args: &[String]) -> Result<(), String> {
    let (_, source) = split_location(arg(args, 0, "source")?);
    let at = disk_at(arg(args, 1, "destination")?)?;
    let dsid: u32 = num(args, 3, "datastore id")?;
    let v = DsConf::load(dsid)?.volumes()?;
    attach_and_link(&v, &source, &at).await
}

/// MKIMAGE SIZE FORMAT host:DIR/disk.N VMID DSID, MKSWAP SIZE host:DIR/disk.N VMID DSID:
/// a volatile disk of the system datastore's resource group.
async fn volatile(args: &[String], swap: bool) -> Result<(), String> {
    let size: u64 = num(args, 0, "size in MiB")?;
    let rest = if swap {
        &args[1..]
    } else {
        args.get(2..).unwrap_or(&[])
    };
    let at = disk_at(arg(rest, 0, "destination")?)?;
    let vmid: u32 = num(rest, 1, "VM id")?;
    let dsid: u32 = num(rest, 2, "datastore id")?;
    let c = DsConf::load(dsid)?;
    let v = c.volumes()?;
    let vm = conf::load_vm(vmid).ok();
    let name = conf::volatile_volume(vmid, at.id);
    v.create(
        &name,
        size * 1024,
        &c.group,
        vm_props(vm.as_ref(), vmid, at.id, dsid),
    )
    .await
    .map_err(|e| format!("VM {vmid} disk {}: {e}", at.id))?;
    let ready = async {
        let got = v.attach(&name, &at.host, false).await.map_err(err)?;
        let mut script = host::link_script(&at.path, &name, &got.device);
        if swap {
            script.push_str(&format!("mkswap {} >/dev/null\n", host::quote(&got.device)));
        }
        host::run(&at.host, &script).map(|_| ())
    }
    .await;
    if let Err(e) = ready {
        let _ = v.release(&name, &at.host).await;
        let _ = v.delete(&name).await;
        return Err(format!("VM {vmid} disk {}: {e}", at.id));
    }
    Ok(())
}

/// DELETE host:DIR/disk.N VMID DSID: the VM's own volume goes; an image (persistent) is only
/// let go of on the host. DELETE host:DIR: the VM's directory, the ssh driver's way.
async fn delete(args: &[String]) -> Result<(), String> {
    let loc = arg(args, 0, "location")?;
    let (_, path) = split_location(loc);
    if conf::disk_id(&path).is_none() {
        return crate::delegate("tm", "ssh", "delete", args, None).map(|_| ());
    }
    let at = disk_at(loc)?;
    let vmid: u32 = num(args, 1, "VM id")?;
    let dsid: u32 = num(args, 2, "datastore id")?;
    let v = DsConf::load(dsid)?.volumes()?;
    match disk_volume(&v, vmid, at.id, None).await? {
        Some(d) if d.own => {
            unlink_and_release(&v, Some(&d.name), &at).await?;
            match v.delete(&d.name).await {
                Ok(()) | Err(AdapterError::NotFound(_)) => Ok(()),
                Err(e) => Err(format!("VM {vmid} disk {}: {e}", at.id)),
            }
        }
        image => unlink_and_release(&v, image.as_ref().map(|d| d.name.as_str()), &at).await,
    }
}

/// MVDS host:DIR/disk.N SOURCE VMID DSID: a persistent disk goes back to its datastore
/// (the volume is the image already: only the host lets go of it).
async fn mvds(args: &[String]) -> Result<(), String> {
    let at = disk_at(arg(args, 0, "disk")?)?;
    let (_, source) = split_location(arg(args, 1, "source")?);
    let dsid: u32 = num(args, 3, "datastore id")?;
    let v = DsConf::load(dsid)?.volumes()?;
    unlink_and_release(&v, Some(&source), &at).await
}

/// Whether `host` is a node of the cluster (the front-end of a stop/undeploy may not be).
async fn is_node(v: &Volumes, host: &str) -> Result<bool, String> {
    let nodes = v
        .client
        .nodes(&[host.to_string()], &[])
        .await
        .map_err(|e| err(e.into()))?;
    Ok(nodes.iter().any(|n| n.name.eq_ignore_ascii_case(host)))
}

/// MV src:DIR/disk.N dst:DIR/disk.N VMID DSID: a cold migration, stop/undeploy (to the
/// front-end) or resume (from it). MV of a VM directory is the ssh driver's.
async fn mv(args: &[String]) -> Result<(), String> {
    let (from_loc, to_loc) = (arg(args, 0, "source")?, arg(args, 1, "destination")?);
    if conf::disk_id(&split_location(to_loc).1).is_none() {
        return crate::delegate("tm", "ssh", "mv", args, None).map(|_| ());
    }
    let (from, to) = (disk_at(from_loc)?, disk_at(to_loc)?);
    let vmid: u32 = num(args, 2, "VM id")?;
    let dsid: u32 = num(args, 3, "datastore id")?;
    let v = DsConf::load(dsid)?.volumes()?;
    let name = disk_volume_or_err(&v, vmid, &from).await?;
    if from.host == to.host {
        return Ok(());
    }
    if is_node(&v, &from.host).await? {
        unlink_and_release(&v, Some(&name), &from).await?;
    }
    if is_node(&v, &to.host).await? {
        attach_and_link(&v, &name, &to).await?;
    }
    Ok(())
}

/// CPDS host:DIR/disk.N NEW_SOURCE SNAP_ID VMID DSID: the disk (or one of its snapshots)
/// saved into the image `mkfs` made for it.
async fn cpds(args: &[String]) -> Result<(), String> {
    let at = disk_at(arg(args, 0, "disk")?)?;
    let (_, target) = split_location(arg(args, 1, "new source")?);
    let snap: i64 = num(args, 2, "snapshot id")?;
    let vmid: u32 = num(args, 3, "VM id")?;
    let dsid: u32 = num(args, 4, "datastore id")?;
    let c = DsConf::load(dsid)?;
    let v = c.volumes()?;
    let name = disk_volume_or_err(&v, vmid, &at).await?;
    let new = v
        .find(&target)
        .await
        .map_err(err)?
        .ok_or_else(|| format!("the image volume '{target}' to save into does not exist"))?;
    if snap >= 0 {
        // The snapshot's data becomes the image: the empty volume gives way to a restore.
        let snap = conf::snapshot_name(snap as u32);
        v.delete(&target).await.map_err(err)?;
        let props = new.props.clone().into_iter().collect();
        return v
            .restore_snapshot(&name, &snap, &target, &c.group, props)
            .await
            .map_err(|e| format!("VM {vmid} disk {}: {e}", at.id));
    }
    let disk_dev = v.attach(&name, &at.host, false).await.map_err(err)?.device;
    let copied = async {
        let new_dev = v
            .attach(&target, &at.host, false)
            .await
            .map_err(err)?
            .device;
        host::run(
            &at.host,
            &format!(
                "dd if={} of={} bs=4M oflag=direct conv=fsync status=none",
                host::quote(&disk_dev),
                host::quote(&new_dev)
            ),
        )
        .map(|_| ())
    }
    .await;
    let _ = v.release(&target, &at.host).await;
    copied.map_err(|e| format!("VM {vmid} disk {}: saving it: {e}", at.id))
}

/// RESIZE host:DIR/disk.N SIZE VMID DSID: grows the disk (online).
async fn resize(args: &[String]) -> Result<(), String> {
    let at = disk_at(arg(args, 0, "disk")?)?;
    let size: u64 = num(args, 1, "size in MiB")?;
    let vmid: u32 = num(args, 2, "VM id")?;
    let dsid: u32 = num(args, 3, "datastore id")?;
    let v = DsConf::load(dsid)?.volumes()?;
    let name = disk_volume_or_err(&v, vmid, &at).await?;
    v.resize(&name, size * 1024)
        .await
        .map_err(|e| format!("VM {vmid} disk {}: {e}", at.id))
}

/// SNAP_CREATE / SNAP_DELETE / SNAP_REVERT host:DIR/disk.N SNAP_ID VMID DSID.
async fn snap(args: &[String], op: SnapOp) -> Result<(), String> {
    let at = disk_at(arg(args, 0, "disk")?)?;
    let id: u32 = num(args, 1, "snapshot id")?;
    let vmid: u32 = num(args, 2, "VM id")?;
    let dsid: u32 = num(args, 3, "datastore id")?;
    let v = DsConf::load(dsid)?.volumes()?;
    let name = disk_volume_or_err(&v, vmid, &at).await?;
    v.snapshot(&name, &conf::snapshot_name(id), op)
        .await
        .map_err(|e| format!("VM {vmid} disk {} snapshot {id}: {e}", at.id))
}

/// PREMIGRATE / POSTMIGRATE / FAILMIGRATE SRC_HOST DST_HOST DIR VMID DSID [CALLER], the VM
/// (base64) on stdin: every disk of this driver is attached on the target before the move
/// (two DRBD primaries allowed while the running VM is handed over), let go of on the source
/// after it, or on the target when the migration failed.
async fn migrate(driver: &str, action: &str, args: &[String], stdin: &str) -> Result<(), String> {
    let (src, dst) = (arg(args, 0, "source host")?, arg(args, 1, "target host")?);
    let dir = arg(args, 2, "VM directory")?;
    let vmid: u32 = num(args, 3, "VM id")?;
    let sys_ds: u32 = num(args, 4, "datastore id")?;
    let vm = xml::vm(&xml::decode(stdin)?)?;
    // Called as the system datastore's driver (no caller named), the VM's disks of other
    // drivers get the same action, the caller's name added, as OpenNebula's ssh and shared
    // drivers do it (tm_common.sh's migrate_other); first, since the ssh driver's premigrate
    // empties the VM directory on the target.
    if args.get(5).is_none() {
        let mut others: Vec<&str> = Vec::new();
        for d in &vm.disks {
            let tm = d.tm_mad.as_str();
            let plain = tm
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !tm.is_empty() && plain && tm != driver && !others.contains(&tm) {
                others.push(tm);
            }
        }
        // A driver without this action has nothing to do for it.
        others.retain(|tm| {
            crate::ds::remotes_dir()
                .join("tm")
                .join(tm)
                .join(action)
                .is_file()
        });
        for tm in others {
            let mut with_caller = args[..5].to_vec();
            with_caller.push(driver.to_string());
            crate::delegate("tm", tm, action, &with_caller, Some(stdin))?;
        }
    }
    migrate_disks(driver, action, &vm, (src, dst, dir, vmid, sys_ds)).await
}

/// The migration action for the VM's disks of this driver.
async fn migrate_disks(
    driver: &str,
    action: &str,
    vm: &Vm,
    (src, dst, dir, vmid, sys_ds): (&str, &str, &str, u32, u32),
) -> Result<(), String> {
    for d in vm.disks.iter().filter(|d| d.tm_mad == driver) {
        let c = DsConf::load(d.datastore_id.unwrap_or(sys_ds))?;
        let v = c.volumes()?;
        let Some(DiskVolume { name, .. }) = disk_volume(&v, vmid, d.id, Some(vm)).await? else {
            continue;
        };
        let on = |host: &str| DiskAt {
            host: host.to_string(),
            path: format!("{}/disk.{}", dir.trim_end_matches('/'), d.id),
            id: d.id,
        };
        let fail = |e: String| format!("VM {vmid} disk {} ({name}): {e}", d.id);
        match action {
            "premigrate" => {
                let got = v
                    .attach(&name, dst, false)
                    .await
                    .map_err(err)
                    .map_err(fail)?;
                if got
                    .open_elsewhere
                    .iter()
                    .any(|n| n.eq_ignore_ascii_case(src))
                {
                    let rd = v.find(&name).await.map_err(err)?.ok_or("gone")?;
                    v.begin_hand_over(&rd, src, dst)
                        .await
                        .map_err(err)
                        .map_err(fail)?;
                }
                let at = on(dst);
                host::run(dst, &host::link_script(&at.path, &name, &got.device)).map_err(fail)?;
            }
            "postmigrate" => {
                unlink_and_release(&v, Some(&name), &on(src))
                    .await
                    .map_err(fail)?;
                end_hand_over(&v, &name, src).await.map_err(fail)?;
            }
            _ => {
                unlink_and_release(&v, Some(&name), &on(dst))
                    .await
                    .map_err(fail)?;
                end_hand_over(&v, &name, dst).await.map_err(fail)?;
            }
        }
    }
    Ok(())
}

async fn end_hand_over(v: &Volumes, name: &str, node: &str) -> Result<(), String> {
    if let Some(rd) = v.find(name).await.map_err(err)? {
        if rd.props.contains_key(PROP_HAND_OVER) {
            v.end_hand_over(&rd, node).await.map_err(err)?;
        }
    }
    Ok(())
}

/// The `MONITOR_VM` message of a system datastore's monitor: for every VM with volumes of
/// this driver (found by their properties), each disk's size (what its replicas hold, else
/// its size) and its snapshots', sent to OpenNebula's monitor daemon the way its own drivers
/// send it (scripts_common.sh's `send_to_monitor`).
async fn send_vm_disks(v: &Volumes) -> Result<(), String> {
    let payload = vm_disks(v).await?;
    if payload.is_empty() {
        return Ok(());
    }
    let lib = match std::env::var_os("ONE_LOCATION") {
        Some(l) => std::path::Path::new(&l).join("lib/sh/scripts_common.sh"),
        None => std::path::PathBuf::from("/usr/lib/one/sh/scripts_common.sh"),
    };
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(". \"$0\" && send_to_monitor MONITOR_VM 0 -1 \"$1\"")
        .arg(&lib)
        .arg(&payload)
        .output()
        .map_err(|e| format!("cannot run bash: {e}"))?;
    if !out.status.success() {
        return Err(host::one_line(&out.stderr));
    }
    Ok(())
}

/// `VM=[ID=<vm>, MONITOR="<base64 of DISK_SIZE=[..] SNAPSHOT_SIZE=[..]>"]`, one line a VM.
async fn vm_disks(v: &Volumes) -> Result<String, String> {
    use base64::Engine as _;
    let rds = v.all().await.map_err(err)?;
    let rscs = v
        .client
        .resources(&[], &[], &[], &[])
        .await
        .map_err(|e| err(e.into()))?;
    let snaps = v.snapshots(&[]).await.map_err(err)?;
    let mut vms: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for rd in &rds {
        let id = |k: &str| rd.props.get(k).and_then(|s| s.parse::<u32>().ok());
        let (Some(vm), Some(disk)) = (id(conf::PROP_VM_ID), id(conf::PROP_DISK_ID)) else {
            continue;
        };
        let held = rscs
            .iter()
            .filter(|r| r.resource.name.eq_ignore_ascii_case(&rd.name))
            .flat_map(|r| r.volumes.iter())
            .filter(|vol| vol.volume_number == 0)
            .filter_map(|vol| vol.allocated_size_kib)
            .max()
            .and_then(|k| u64::try_from(k).ok());
        let size_kib = strata_adapter::volume::size_kib(rd);
        let mb = held.unwrap_or(size_kib).div_ceil(1024);
        let parts = vms.entry(vm).or_default();
        parts.push(format!("DISK_SIZE=[ID={disk},SIZE={mb}]"));
        for s in snaps
            .iter()
            .filter(|s| s.resource_name.eq_ignore_ascii_case(&rd.name))
        {
            if let Some(n) = s
                .name
                .strip_prefix("one-snap-")
                .and_then(|n| n.parse::<u32>().ok())
            {
                parts.push(format!(
                    "SNAPSHOT_SIZE=[ID={n},DISK_ID={disk},SIZE={}]",
                    size_kib.div_ceil(1024)
                ));
            }
        }
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    Ok(vms
        .iter()
        .map(|(vm, parts)| format!("VM=[ID={vm}, MONITOR=\"{}\"]", b64.encode(parts.join(" "))))
        .collect::<Vec<_>>()
        .join("\n"))
}
