//! Settings of a datastore (its template's attributes), the names of volumes, and what the
//! driver asks oned's command line tools.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use strata_adapter::{Connection, ControllerSettings, Volumes};

use crate::xml::{self, Datastore, Vm};

/// Our attribute, or the one OpenNebula's LINSTOR add-on uses, so that a datastore defined
/// for it works unchanged.
fn attr<'a>(t: &'a BTreeMap<String, String>, ours: &str, addon: &str) -> Option<&'a str> {
    [ours, addon]
        .iter()
        .filter_map(|k| t.get(*k))
        .map(|v| v.trim())
        .find(|v| !v.is_empty())
}

/// What a datastore's attributes say about reaching the cluster and placing volumes.
#[derive(Debug, Clone)]
pub struct DsConf {
    pub ds_id: u32,
    pub controllers: ControllerSettings,
    pub group: String,
    /// Hosts the datastore actions may use to reach a volume's data (BRIDGE_LIST).
    pub bridges: Vec<String>,
    pub timeout: Duration,
}

impl DsConf {
    pub fn of(ds: &Datastore) -> Result<DsConf, String> {
        let t = &ds.template;
        let flag = |k: &str| {
            t.get(k)
                .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "yes" | "true" | "1"))
        };
        Ok(DsConf {
            ds_id: ds.id,
            controllers: ControllerSettings::from_connection(&Connection {
                controllers: attr(t, "STRATA_CONTROLLERS", "LINSTOR_CONTROLLERS"),
                ca_file: attr(t, "STRATA_CAFILE", "LINSTOR_CLIENT_CA"),
                cert_file: attr(t, "STRATA_CERTFILE", "LINSTOR_CLIENT_CERT"),
                key_file: attr(t, "STRATA_KEYFILE", "LINSTOR_CLIENT_KEY"),
                token_file: attr(t, "STRATA_TOKEN_FILE", "LINSTOR_TOKEN_FILE"),
                allow_insecure_auth: flag("STRATA_ALLOW_INSECURE_AUTH"),
            })?,
            group: attr(t, "STRATA_RESOURCE_GROUP", "LINSTOR_RESOURCE_GROUP")
                .unwrap_or("DfltRscGrp")
                .to_string(),
            bridges: t
                .get("BRIDGE_LIST")
                .map(|b| b.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default(),
            timeout: Duration::from_secs(
                attr(t, "STRATA_TIMEOUT", "LINSTOR_TIMEOUT")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(60),
            ),
        })
    }

    /// The datastore `id`, as `onedatastore show -x` describes it.
    pub fn load(id: u32) -> Result<DsConf, String> {
        let out = one_cli("onedatastore", &id.to_string())?;
        DsConf::of(&xml::datastore(&out)?)
    }

    pub fn volumes(&self) -> Result<Volumes, String> {
        let mut v = Volumes::new(self.controllers.client(self.timeout)?, "opennebula");
        v.device_wait = self.timeout;
        // Volumes are attached on the hosts, not where the driver runs.
        v.devices_here = false;
        Ok(v)
    }

    /// A host of BRIDGE_LIST to reach image data on (the first one).
    pub fn bridge(&self) -> Result<&str, String> {
        self.bridges.first().map(String::as_str).ok_or_else(|| {
            format!(
                "datastore {} has no BRIDGE_LIST; name the hosts (nodes of the cluster) that may copy image data: onedatastore update {}",
                self.ds_id, self.ds_id
            )
        })
    }
}

/// `<tool> show -x <id>` of oned's command line.
pub fn one_cli(tool: &str, id: &str) -> Result<String, String> {
    let out = Command::new(tool)
        .args(["show", "-x", id])
        .output()
        .map_err(|e| format!("cannot run {tool}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{tool} show {id}: {}",
            crate::host::one_line(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn load_vm(id: u32) -> Result<Vm, String> {
    xml::vm(&one_cli("onevm", &id.to_string())?)
}

/// The volume of image `id`: what OpenNebula's LINSTOR add-on names it too.
pub fn image_volume(id: u32) -> String {
    format!("OpenNebula-Image-{id}")
}

/// A VM's own copy of an image (a non-persistent disk).
pub fn clone_volume(source: &str, vm: u32, disk: u32) -> String {
    format!("{source}-vm{vm}-disk{disk}")
}

/// A volatile disk of a VM.
pub fn volatile_volume(vm: u32, disk: u32) -> String {
    format!("one-vm-{vm}-disk-{disk}")
}

/// The snapshot an OpenNebula snapshot id stands for.
pub fn snapshot_name(id: u32) -> String {
    format!("one-snap-{id}")
}

/// Properties that let `linstor rd list --props` find what OpenNebula made.
pub const PROP_IMAGE_ID: &str = "Aux/one/image-id";
pub const PROP_IMAGE_NAME: &str = "Aux/one/image-name";
pub const PROP_VM_ID: &str = "Aux/one/vm-id";
pub const PROP_VM_NAME: &str = "Aux/one/vm-name";
pub const PROP_DISK_ID: &str = "Aux/one/disk-id";
pub const PROP_DATASTORE_ID: &str = "Aux/one/datastore-id";

/// `host:what` as oned writes locations and sources (without a host: the front-end's).
pub fn split_location(loc: &str) -> (String, String) {
    match loc.split_once(':') {
        Some((h, p)) if !h.is_empty() && !h.contains('/') => (h.to_string(), p.to_string()),
        _ => (String::new(), loc.to_string()),
    }
}

/// `3` of `.../disk.3`.
pub fn disk_id(path: &str) -> Option<u32> {
    path.rsplit('/').next()?.strip_prefix("disk.")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_locations() {
        assert_eq!(image_volume(7), "OpenNebula-Image-7");
        assert_eq!(
            clone_volume("OpenNebula-Image-7", 5, 0),
            "OpenNebula-Image-7-vm5-disk0"
        );
        assert_eq!(volatile_volume(5, 2), "one-vm-5-disk-2");
        assert_eq!(
            split_location("node1:/var/lib/one//datastores/0/5/disk.1"),
            ("node1".into(), "/var/lib/one//datastores/0/5/disk.1".into())
        );
        assert_eq!(split_location("OpenNebula-Image-7").0, "");
        assert_eq!(
            split_location("fe:OpenNebula-Image-7"),
            ("fe".into(), "OpenNebula-Image-7".into())
        );
        assert_eq!(disk_id("/var/lib/one/datastores/0/5/disk.12"), Some(12));
        assert_eq!(disk_id("/var/lib/one/datastores/0/5"), None);
    }

    #[test]
    fn the_addon_attributes_work_and_ours_win() {
        let ds = Datastore {
            id: 1,
            template: [
                (
                    "LINSTOR_CONTROLLERS".to_string(),
                    "linstor://ctl:3370".to_string(),
                ),
                (
                    "LINSTOR_RESOURCE_GROUP".to_string(),
                    "OneRscGrp".to_string(),
                ),
                ("STRATA_RESOURCE_GROUP".to_string(), "ours".to_string()),
                ("BRIDGE_LIST".to_string(), "node1 node2".to_string()),
            ]
            .into(),
        };
        let c = DsConf::of(&ds).unwrap();
        assert_eq!(c.controllers.controllers, ["linstor://ctl:3370"]);
        assert_eq!(c.group, "ours");
        assert_eq!(c.bridge().unwrap(), "node1");
        let bare = DsConf::of(&Datastore::default()).unwrap();
        assert_eq!(bare.group, "DfltRscGrp");
        assert!(bare.bridge().unwrap_err().contains("BRIDGE_LIST"));
    }
}
