//! Datastore actions (`remotes/datastore/<driver>/<action>`): the image's volume.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use strata_adapter::volume::SnapOp;
use strata_adapter::{AdapterError, Volumes};

use crate::conf::{self, DsConf};
use crate::host;
use crate::xml::{self, DsAction, Image};

fn err(e: AdapterError) -> String {
    e.to_string()
}

/// Where OpenNebula keeps the driver scripts (`remotes`).
pub fn remotes_dir() -> PathBuf {
    match std::env::var_os("ONE_LOCATION") {
        Some(l) => Path::new(&l).join("var/remotes"),
        None => PathBuf::from("/var/lib/one/remotes"),
    }
}

/// Runs datastore action `action` with the action data oned passed (base64) on stdin;
/// what oned reads from stdout.
pub async fn run(action: &str, args: &[String], stdin: &str) -> Result<String, String> {
    let a = xml::ds_action(&xml::decode(stdin)?)?;
    let conf = DsConf::of(&a.ds)?;
    let v = conf.volumes()?;
    match action {
        "cp" => cp(&conf, &v, &a).await,
        "mkfs" => mkfs(&conf, &v, &a).await,
        "rm" => rm(&v, image(&a)?).await,
        "clone" => clone(&conf, &v, &a).await,
        "stat" => stat(&a, args, stdin),
        "monitor" => monitor(&conf, &v).await,
        "snap_delete" | "snap_revert" | "snap_flatten" => snap(&v, action, image(&a)?).await,
        "export" => export(&conf, &v, &a, args).await,
        other => Err(format!(
            "'{other}' is not a datastore action of this driver"
        )),
    }
}

fn image(a: &DsAction) -> Result<&Image, String> {
    a.image
        .as_ref()
        .ok_or_else(|| "the action data has no IMAGE".to_string())
}

/// Properties of an image's volume.
fn image_props(a: &DsAction, img: &Image) -> BTreeMap<String, String> {
    let mut p = BTreeMap::from([
        (
            conf::PROP_IMAGE_ID.to_string(),
            img.id.unwrap_or(0).to_string(),
        ),
        (conf::PROP_DATASTORE_ID.to_string(), a.ds.id.to_string()),
    ]);
    if !img.name.is_empty() {
        p.insert(conf::PROP_IMAGE_NAME.to_string(), img.name.clone());
    }
    p
}

/// OpenNebula's rule for local files: nothing under RESTRICTED_DIRS unless under SAFE_DIRS.
fn check_restricted(ds: &xml::Datastore, path: &str) -> Result<(), String> {
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| PathBuf::from(path));
    let listed = |key: &str| -> Vec<String> {
        ds.template
            .get(key)
            .map(|dirs| dirs.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    };
    // OpenNebula's own state, configuration and home are restricted whatever the
    // datastore says (as its libfs.sh has it).
    let mut restricted = listed("RESTRICTED_DIRS");
    match std::env::var_os("ONE_LOCATION") {
        Some(l) => {
            let l = Path::new(&l);
            restricted.push(l.join("var").display().to_string());
            restricted.push(l.join("etc").display().to_string());
        }
        None => restricted.extend(["/var/lib/one".to_string(), "/etc/one".to_string()]),
    }
    if let Some(home) = std::env::var_os("HOME").filter(|h| Path::new(h) != Path::new("/")) {
        restricted.push(Path::new(&home).display().to_string());
    }
    let under = |dirs: &[String]| dirs.iter().any(|d| real.starts_with(Path::new(d)));
    if under(&restricted) && !under(&listed("SAFE_DIRS")) {
        return Err(format!(
            "'{path}' is in a restricted directory of datastore {} (RESTRICTED_DIRS); put it under one of SAFE_DIRS or use a URL",
            ds.id
        ));
    }
    Ok(())
}

/// A new image's volume from a file or URL: created from the resource group, made usable
/// on a bridge host, filled there with what OpenNebula's downloader fetches.
async fn cp(c: &DsConf, v: &Volumes, a: &DsAction) -> Result<String, String> {
    let img = image(a)?;
    let id = img.id()?;
    if img.size_mb == 0 {
        return Err(format!("image {id}: its SIZE is 0 or missing"));
    }
    if !img.path.contains("://") {
        check_restricted(&a.ds, &img.path)?;
    }
    let bridge = c.bridge()?.to_string();
    let name = conf::image_volume(id);
    v.create(&name, img.size_mb * 1024, &c.group, image_props(a, img))
        .await
        .map_err(err)?;
    let filled = async {
        let dev = v.make_available(&name, &bridge, false).await.map_err(err)?;
        let mut download = Command::new(remotes_dir().join("datastore/downloader.sh"));
        download.args([&img.path, "-"]);
        let dd = format!(
            "dd of={} bs=4M iflag=fullblock oflag=direct status=none",
            host::quote(&dev)
        );
        let head = host::pipe(&mut download, &bridge, &dd, 4)?;
        if head.starts_with(b"QFI\xfb") {
            return Err(format!(
                "'{}' is a qcow2 image; this datastore holds raw volumes: convert it first (qemu-img convert -O raw)",
                img.path
            ));
        }
        Ok(())
    }
    .await;
    let _ = v.release(&name, &bridge).await;
    if let Err(e) = filled {
        let _ = v.delete(&name).await;
        return Err(format!("image {id}: {e}"));
    }
    Ok(format!("{name} raw"))
}

/// An empty image (a datablock), with a file system when FS names one.
async fn mkfs(c: &DsConf, v: &Volumes, a: &DsAction) -> Result<String, String> {
    let img = image(a)?;
    let id = img.id()?;
    if img.size_mb == 0 {
        return Err(format!("image {id}: its SIZE is 0 or missing"));
    }
    let name = conf::image_volume(id);
    v.create(&name, img.size_mb * 1024, &c.group, image_props(a, img))
        .await
        .map_err(err)?;
    let fs = img.fs.trim();
    if fs.is_empty() || fs == "raw" || img.format == "save_as" {
        return Ok(name);
    }
    let made = async {
        let bridge = c.bridge()?.to_string();
        let dev = v.make_available(&name, &bridge, false).await.map_err(err)?;
        let run = host::run(
            &bridge,
            &format!(
                "mkfs -t {} -q {} >/dev/null",
                host::quote(fs),
                host::quote(&dev)
            ),
        );
        let _ = v.release(&name, &bridge).await;
        run.map(|_| ())
    }
    .await;
    if let Err(e) = made {
        let _ = v.delete(&name).await;
        return Err(format!("image {id}: making a {fs} file system: {e}"));
    }
    Ok(name)
}

async fn rm(v: &Volumes, img: &Image) -> Result<String, String> {
    let id = img.id()?;
    match v.delete(&img.source).await {
        Ok(()) | Err(AdapterError::NotFound(_)) => Ok(String::new()),
        Err(e) => Err(format!("image {id}: {e}")),
    }
}

/// A copy of another image (`PATH` is its SOURCE): the controller's clone, grown when the
/// new image asks for more.
async fn clone(c: &DsConf, v: &Volumes, a: &DsAction) -> Result<String, String> {
    let img = image(a)?;
    let id = img.id()?;
    let from = img.path.trim();
    let name = conf::image_volume(id);
    if v.find(from).await.map_err(err)?.is_none() {
        return Err(format!(
            "image {id}: the image to copy ('{from}') has no volume in the cluster"
        ));
    }
    v.clone_volume(from, &name, &c.group, image_props(a, img))
        .await
        .map_err(|e| format!("image {id}: {e}"))?;
    if let Err(e) = v.grow_to(&name, img.size_mb * 1024).await {
        let _ = v.delete(&name).await;
        return Err(format!("image {id}: {e}"));
    }
    Ok(format!("{name} raw"))
}

/// Export to a marketplace (run by the market driver, the app id as argument): a raw copy
/// of the image in the staging directory (STAGING_DIR, else /var/tmp) of a bridge host,
/// which the marketplace fetches over ssh and removes after (DISPOSE_CMD); the image's
/// volume is attached there only while it is copied.
async fn export(c: &DsConf, v: &Volumes, a: &DsAction, args: &[String]) -> Result<String, String> {
    let img = image(a)?;
    let id = img.id()?;
    let app = args.first().map(String::as_str).unwrap_or("0");
    if !app.chars().all(|ch| ch.is_ascii_digit()) {
        return Err(format!("export of image {id}: '{app}' is not an app id"));
    }
    let rd = v
        .find(&img.source)
        .await
        .map_err(err)?
        .ok_or_else(|| format!("image {id}: its volume '{}' does not exist", img.source))?;
    let size_mb = strata_adapter::volume::size_kib(&rd).div_ceil(1024);
    let bridge = c.bridge()?.to_string();
    let staging =
        a.ds.template
            .get("STAGING_DIR")
            .map(|d| d.trim().trim_end_matches('/').to_string())
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| "/var/tmp".into());
    let file = format!("{staging}/{}-export-{app}.raw", img.source);
    let dev = v
        .make_available(&img.source, &bridge, false)
        .await
        .map_err(|e| format!("image {id}: {e}"))?;
    let f = host::quote(&file);
    let copied = host::run(
        &bridge,
        &format!(
            "mkdir -p {dir}\ntrap 'rm -f {f}' EXIT\n\
             dd if={dev} of={f} bs=1M count={size_mb} iflag=fullblock status=none\n\
             sum=$(md5sum {f})\ntrap - EXIT\necho \"${{sum%% *}}\"",
            dir = host::quote(&staging),
            dev = host::quote(&dev),
        ),
    );
    let _ = v.release(&img.source, &bridge).await;
    let md5 = copied.map_err(|e| format!("image {id}: copying it for the marketplace: {e}"))?;
    let md5 = md5.trim();
    let dispose = format!("ssh {} rm -f {f}", host::quote(&bridge));
    Ok(format!(
        "<IMPORT_INFO><IMPORT_SOURCE><![CDATA[ssh://{bridge}:{file}]]></IMPORT_SOURCE>\
         <MD5><![CDATA[{md5}]]></MD5><SIZE><![CDATA[{size_mb}]]></SIZE>\
         <FORMAT><![CDATA[raw]]></FORMAT><DISPOSE>YES</DISPOSE>\
         <DISPOSE_CMD><![CDATA[{dispose}]]></DISPOSE_CMD></IMPORT_INFO>"
    ))
}

/// Size in MiB of what `PATH` names: local files here; anything else (URLs) the way
/// OpenNebula's own `fs` driver measures it.
fn stat(a: &DsAction, args: &[String], stdin: &str) -> Result<String, String> {
    let img = image(a)?;
    let p = Path::new(&img.path);
    if !img.path.contains("://") {
        check_restricted(&a.ds, &img.path)?;
        let meta = std::fs::metadata(p).map_err(|e| format!("cannot read '{}': {e}", img.path))?;
        if !meta.is_file() {
            return Err(format!("'{}' is not a file", img.path));
        }
        return Ok(meta.len().div_ceil(1 << 20).to_string());
    }
    let out = crate::delegate("datastore", "fs", "stat", args, Some(stdin))?;
    Ok(out.trim().to_string())
}

/// Space of the resource group's pools, as oned reads it.
pub async fn monitor(c: &DsConf, v: &Volumes) -> Result<String, String> {
    let (total, free) = v.group_space(&c.group).await.map_err(err)?;
    Ok(format!(
        "USED_MB={}\nTOTAL_MB={}\nFREE_MB={}",
        total.saturating_sub(free) / 1024,
        total / 1024,
        free / 1024
    ))
}

/// An image's snapshots (taken by the transfer driver's snap_create).
async fn snap(v: &Volumes, action: &str, img: &Image) -> Result<String, String> {
    let image_id = img.id()?;
    let id = img
        .target_snapshot
        .ok_or_else(|| format!("image {image_id}: no TARGET_SNAPSHOT"))?;
    let snap = conf::snapshot_name(id);
    let done = match action {
        "snap_delete" => v.snapshot(&img.source, &snap, SnapOp::Delete).await,
        "snap_revert" => v.snapshot(&img.source, &snap, SnapOp::Rollback).await,
        _ => {
            // Flatten: the image becomes that snapshot's data, and keeps no snapshots.
            let rolled = v.snapshot(&img.source, &snap, SnapOp::Rollback).await;
            match rolled {
                Ok(()) => {
                    for s in &img.snapshots {
                        let name = conf::snapshot_name(*s);
                        v.snapshot(&img.source, &name, SnapOp::Delete)
                            .await
                            .map_err(|e| format!("image {image_id}: {e}"))?;
                    }
                    Ok(())
                }
                Err(e) => Err(e),
            }
        }
    };
    done.map_err(|e| format!("image {image_id} snapshot {id}: {e}"))?;
    Ok(String::new())
}
