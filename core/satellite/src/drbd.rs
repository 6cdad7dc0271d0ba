//! The DRBD layer on this node: one `.res` file per resource in our own directory (pulled
//! into the DRBD configuration by an include file), metadata created where a backing volume
//! has none, and `drbdadm adjust` to make the kernel match; `down` and `wipe-md` when a
//! resource goes. Every command goes through `strata_drbd::adm` and so through `exec`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strata_drbd::adm::{self, AdmConfig};
use strata_drbd::config::{Local, Resource};
use strata_drbd::version::Capability;
use strata_exec::CommandRunner;
use strata_model::observed::Capabilities;
use strata_model::LayerKind;

use crate::record::write_atomically;

/// Records in `caps` what DRBD detection `found` (versions, and the layer as supported or
/// not with its reason) and says whether the node runs the DRBD layer. `dry_run` (a testing
/// aid: drbdadm only prints) runs it whatever was found.
pub fn record_capability(found: &Capability, dry_run: bool, caps: &mut Capabilities) -> bool {
    caps.drbd_version = found.kernel.as_ref().map(|v| v.to_string());
    caps.drbd_utils_version = found.utils.as_ref().map(|v| v.to_string());
    if !found.supported && !dry_run {
        let why = found
            .reason
            .clone()
            .unwrap_or_else(|| "DRBD is not available".to_string());
        caps.unsupported_layers.insert(LayerKind::Drbd, vec![why]);
        caps.layers.retain(|l| *l != LayerKind::Drbd);
        return false;
    }
    caps.unsupported_layers.remove(&LayerKind::Drbd);
    if !caps.layers.contains(&LayerKind::Drbd) {
        caps.layers.push(LayerKind::Drbd);
    }
    true
}

/// Where the DRBD layer keeps its files, and how drbdadm runs.
pub struct DrbdDriver {
    runner: Arc<dyn CommandRunner>,
    adm: AdmConfig,
    /// Directory of the `.res` files this satellite writes (and only those).
    res_dir: PathBuf,
}

/// The device DRBD gives a volume with `minor`.
pub fn device_path(minor: u32) -> String {
    format!("/dev/drbd{minor}")
}

impl DrbdDriver {
    /// `res_dir` holds our `.res` files; `include` (e.g. `/etc/drbd.d/strata.res`) is
    /// written to pull them in, unless `None` (drbdadm is then given its own `-c` file).
    pub fn new(
        runner: Arc<dyn CommandRunner>,
        adm: AdmConfig,
        res_dir: PathBuf,
        include: Option<&Path>,
    ) -> std::io::Result<DrbdDriver> {
        std::fs::create_dir_all(&res_dir)?;
        if let Some(inc) = include {
            let want = strata_drbd::res::include_file(&res_dir);
            if std::fs::read_to_string(inc).ok().as_deref() != Some(want.as_str()) {
                if let Some(parent) = inc.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                write_atomically(inc, want.as_bytes())?;
            }
        }
        Ok(DrbdDriver {
            runner,
            adm,
            res_dir,
        })
    }

    /// How drbdadm runs on this node.
    pub fn adm(&self) -> &AdmConfig {
        &self.adm
    }

    /// drbdadm as run for `node`: the `.res` files name hosts by node name, which need not
    /// be the host name.
    fn adm_for(&self, node: &str) -> AdmConfig {
        AdmConfig {
            node_name: Some(node.to_string()),
            ..self.adm.clone()
        }
    }

    pub fn res_file(&self, name: &str) -> PathBuf {
        self.res_dir.join(strata_drbd::res::file_name(name))
    }

    /// Makes resource `res` true on node `node` whose backing devices are `disks` (by
    /// volume number; a volume without one is diskless here).
    pub fn apply(
        &self,
        node: &str,
        res: &Resource,
        disks: &BTreeMap<u32, String>,
    ) -> Result<(), String> {
        let local = Local {
            node: node.to_string(),
            disks: disks.clone(),
        };
        let text = strata_drbd::res::render(res, &local).map_err(|e| e.to_string())?;
        let path = self.res_file(&res.name);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            write_atomically(&path, text.as_bytes())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        let runner = self.runner.as_ref();
        let adm = &self.adm_for(node);
        for v in &res.volumes {
            let Some(dev) = disks.get(&v.number) else {
                continue;
            };
            let has = adm::has_metadata(runner, adm, dev, v.minor)
                .map_err(|e| format!("cannot tell whether {dev} carries DRBD metadata: {e}"))?;
            if !has {
                adm::create_md_striped(
                    runner,
                    adm,
                    &res.name,
                    v.number,
                    res.peer_slots,
                    res.al_stripes,
                    res.al_stripe_size_kib,
                )
                .map_err(|e| e.to_string())?;
            }
        }
        adm::adjust(runner, adm, &res.name).map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Takes resource `res` down, wipes the metadata of its local volumes (`disks`) and
    /// removes its `.res` file. Files we did not write are never touched.
    pub fn remove(
        &self,
        node: &str,
        res: &Resource,
        disks: &BTreeMap<u32, String>,
    ) -> Result<(), String> {
        let path = self.res_file(&res.name);
        if !path.exists() {
            return Ok(());
        }
        let runner = self.runner.as_ref();
        let adm = &self.adm_for(node);
        adm::down(runner, adm, &res.name).map_err(|e| e.to_string())?;
        for v in &res.volumes {
            if disks.contains_key(&v.number) {
                adm::wipe_md(runner, adm, &res.name, v.number).map_err(|e| e.to_string())?;
            }
        }
        std::fs::remove_file(&path).map_err(|e| format!("cannot remove {}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_drbd::version::{capability, parse_drbdadm_version};

    #[test]
    fn capability_is_recorded_with_its_reason() {
        // drbd-utils 9.22 installed, no module loaded (this machine).
        let adm = parse_drbdadm_version("DRBDADM_BUILDTAG=GIT-hash\nDRBDADM_API_VERSION=2\nDRBD_KERNEL_VERSION_CODE=0x000000\nDRBDADM_VERSION_CODE=0x091600\nDRBDADM_VERSION=9.22.0\n");
        let found = capability(None, Some(adm));
        let mut caps = Capabilities::default();
        assert!(!record_capability(&found, false, &mut caps));
        assert!(!caps.supports_layer(LayerKind::Drbd));
        assert!(caps
            .layer_reason(LayerKind::Drbd)
            .contains("kernel module is not loaded"));
        assert_eq!(caps.drbd_utils_version.as_deref(), Some("9.22.0"));
        assert_eq!(caps.drbd_version, None);
        // The dry run takes the layer on anyway.
        assert!(record_capability(&found, true, &mut caps));
        assert!(caps.supports_layer(LayerKind::Drbd));
        // A loaded DRBD 9 module with its utils.
        let found = capability(
            strata_drbd::version::parse_proc_drbd("version: 9.2.12 (api:2/proto:86-122)\n"),
            Some(adm),
        );
        let mut caps = Capabilities::default();
        assert!(record_capability(&found, false, &mut caps));
        assert_eq!(caps.drbd_version.as_deref(), Some("9.2.12"));
    }
}
