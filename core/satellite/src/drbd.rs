//! The DRBD layer on this node: one `.res` file per resource in our own directory (pulled
//! into the DRBD configuration by an include file), metadata created where a backing volume
//! has none, and `drbdadm adjust` to make the kernel match; `down` and `wipe-md` when a
//! resource goes. Every command goes through `strata_drbd::adm` and so through `exec`.

use std::collections::{BTreeMap, BTreeSet};
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
    /// Where the kernel shows block devices (`/sys/block`): DRBD devices' sizes.
    sys_block: PathBuf,
}

/// What [`DrbdDriver::apply`] makes true: resource `res` on node `node`, and what the
/// satellite knows of the resource's local volumes.
pub struct DrbdApply<'a> {
    pub node: &'a str,
    pub res: &'a Resource,
    /// The backing devices by volume number; a volume without one is diskless here.
    pub disks: &'a BTreeMap<u32, String>,
    /// Volumes known to carry metadata (asking drbdmeta about a device DRBD holds is
    /// refused).
    pub known_md: &'a BTreeSet<u32>,
    /// Volumes restored or copied from another resource's volume: they get metadata of their
    /// own whatever they carry.
    pub fresh: &'a BTreeSet<u32>,
    /// Volumes whose backing device grew: resized after the adjust.
    pub grown: &'a [u32],
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
            sys_block: PathBuf::from("/sys/block"),
        })
    }

    /// The same driver reading device sizes under `dir` instead of `/sys/block` (tests).
    pub fn with_sys_block(self, dir: PathBuf) -> DrbdDriver {
        DrbdDriver {
            sys_block: dir,
            ..self
        }
    }

    /// The size (KiB) of DRBD device `minor` as the kernel has it; `None` when the device
    /// is not up (or not there: a dry run).
    pub fn device_size_kib(&self, minor: u32) -> Option<u64> {
        let path = self.sys_block.join(format!("drbd{minor}")).join("size");
        let sectors: u64 = std::fs::read_to_string(path).ok()?.trim().parse().ok()?;
        (sectors > 0).then_some(sectors / 2)
    }

    /// Asks DRBD to take the size of the backing devices of volume `vol` of `res` (it grows
    /// to the smallest of all replicas').
    pub fn resize(&self, node: &str, res: &str, vol: u32) -> Result<(), String> {
        adm::resize(self.runner.as_ref(), &self.adm_for(node), res, vol)
            .map(|_| ())
            .map_err(|e| e.to_string())
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

    /// Makes resource `a.res` true on node `a.node` over its local backing devices: writes the
    /// `.res` file, creates metadata where a backing device has none, adjusts, and resizes
    /// the volumes whose backing device grew.
    pub fn apply(&self, a: &DrbdApply<'_>) -> Result<(), String> {
        self.write_res_file(a)?;
        self.ensure_metadata(a)?;
        let runner = self.runner.as_ref();
        let adm = &self.adm_for(a.node);
        let res = a.res;
        let alone = res.hosts.len() < 2;
        let diskless = res.volumes.iter().any(|v| !a.disks.contains_key(&v.number));
        if self.adm.drbd84 && (alone || diskless) {
            // drbdadm-84 cannot adjust a resource without a peer, nor a diskless volume.
            adm::adjust84_by_plan(runner, adm, &res.name, !alone).map_err(|e| e.to_string())?;
        } else {
            adm::adjust(runner, adm, &res.name).map_err(|e| e.to_string())?;
        }
        for v in a.grown {
            if a.disks.contains_key(v) {
                adm::resize(runner, adm, &res.name, *v)
                    .map_err(|e| format!("volume {v} could not be resized: {e}"))?;
            }
        }
        Ok(())
    }

    /// Writes the `.res` file of the resource as its node sees it, unless it says that
    /// already.
    fn write_res_file(&self, a: &DrbdApply<'_>) -> Result<(), String> {
        let local = Local {
            node: a.node.to_string(),
            disks: a.disks.clone(),
        };
        let text = if self.adm.drbd84 {
            strata_drbd::res::render84(a.res, &local)
        } else {
            strata_drbd::res::render(a.res, &local)
        }
        .map_err(|e| e.to_string())?;
        let path = self.res_file(&a.res.name);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            write_atomically(&path, text.as_bytes())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        Ok(())
    }

    /// Creates DRBD metadata on the local backing devices that have none (see
    /// [`DrbdApply::known_md`] and [`DrbdApply::fresh`]).
    fn ensure_metadata(&self, a: &DrbdApply<'_>) -> Result<(), String> {
        let runner = self.runner.as_ref();
        let adm = &self.adm_for(a.node);
        let res = a.res;
        for v in &res.volumes {
            let Some(dev) = a.disks.get(&v.number) else {
                continue;
            };
            if a.known_md.contains(&v.number) {
                continue;
            }
            // A volume restored from a snapshot carries the metadata of the resource the
            // snapshot was taken of: it gets its own.
            let has = if a.fresh.contains(&v.number) {
                Ok(false)
            } else {
                adm::has_metadata(runner, adm, dev, v.minor)
            };
            let has = match has {
                Ok(has) => has,
                // drbdmeta refuses to look at a device DRBD holds: it has metadata.
                Err(e) if e.stderr().contains("is configured") => true,
                Err(e) => {
                    return Err(format!(
                        "cannot tell whether {dev} carries DRBD metadata: {e}"
                    ))
                }
            };
            if has {
                tracing::info!(resource = %res.name, volume = v.number, device = %dev, "DRBD metadata found on the backing device; kept");
            } else {
                tracing::info!(resource = %res.name, volume = v.number, device = %dev, "creating DRBD metadata");
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
        Ok(())
    }

    /// Takes resource `res` down (for a rollback) without touching its metadata; a resource
    /// this node never set up is fine.
    pub fn take_down(&self, node: &str, res: &str) -> Result<(), String> {
        if !self.res_file(res).exists() {
            return Ok(());
        }
        adm::down(self.runner.as_ref(), &self.adm_for(node), res)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Suspends (or resumes) the I/O of resource `res` while snapshots of it are taken.
    pub fn set_io_suspended(&self, node: &str, res: &str, suspended: bool) -> Result<(), String> {
        let adm = &self.adm_for(node);
        let done = if suspended {
            adm::suspend_io(self.runner.as_ref(), adm, res)
        } else {
            adm::resume_io(self.runner.as_ref(), adm, res)
        };
        done.map(|_| ()).map_err(|e| e.to_string())
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
        self.take_down(node, &res.name)?;
        let runner = self.runner.as_ref();
        let adm = &self.adm_for(node);
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
    use strata_drbd::config::{Host, Volume};
    use strata_drbd::version::{capability, parse_drbdadm_version};
    use strata_exec::{Output, ScriptedRunner};

    fn resource(hosts: &[(&str, u32)]) -> Resource {
        Resource {
            name: "r0".into(),
            volumes: vec![Volume {
                number: 0,
                minor: 1000,
            }],
            hosts: hosts
                .iter()
                .map(|(n, id)| Host {
                    name: n.to_string(),
                    node_id: *id,
                    address: format!("127.0.0.{}", id + 2),
                    port: 7000,
                    diskless: false,
                })
                .collect(),
            ..Default::default()
        }
    }

    fn driver(dir: &Path) -> (Arc<ScriptedRunner>, DrbdDriver) {
        let runner = Arc::new(ScriptedRunner::new());
        let d =
            DrbdDriver::new(runner.clone(), AdmConfig::default(), dir.join("res"), None).unwrap();
        (runner, d)
    }

    const DSTATE: &[&str] = &[
        "drbdmeta",
        "1000",
        "v09",
        "/dev/loop7",
        "internal",
        "dstate",
    ];

    fn disk() -> BTreeMap<u32, String> {
        [(0, "/dev/loop7".to_string())].into()
    }

    /// Applies `res` on node alpha over `disks`, with no volume fresh.
    fn apply(
        d: &DrbdDriver,
        res: &Resource,
        disks: &BTreeMap<u32, String>,
        known_md: &BTreeSet<u32>,
        grown: &[u32],
    ) -> Result<(), String> {
        d.apply(&DrbdApply {
            node: "alpha",
            res,
            disks,
            known_md,
            fresh: &BTreeSet::new(),
            grown,
        })
    }

    /// On a DRBD 8.4 node: the file is in 8.4 syntax, metadata is probed and created as v08
    /// (no `--max-peers`), and the rest is the same drbdadm commands (drbdadm hands them to
    /// its 8.4 tools).
    #[test]
    fn drbd84_node_command_sequence() {
        let dir = tempfile::tempdir().unwrap();
        let runner = Arc::new(ScriptedRunner::new());
        let adm = AdmConfig {
            drbd84: true,
            ..Default::default()
        };
        let d = DrbdDriver::new(runner.clone(), adm, dir.path().join("res"), None).unwrap();
        runner
            .expect(
                &[
                    "drbdmeta",
                    "1000",
                    "v08",
                    "/dev/loop7",
                    "internal",
                    "dstate",
                ],
                Output::failed(1, "No valid meta data found"),
            )
            .expect(&["drbdadm", "create-md", "--force", "r0/0"], Output::ok(""))
            .expect(&["drbdadm", "adjust", "r0"], Output::ok(""));
        let mut two = resource(&[("alpha", 0), ("beta", 1)]);
        two.peer_slots = 1;
        apply(&d, &two, &disk(), &BTreeSet::new(), &[]).unwrap();
        assert!(runner.remaining().is_empty(), "{:?}", runner.remaining());
        let text = std::fs::read_to_string(d.res_file("r0")).unwrap();
        assert!(
            text.contains("(DRBD 8.4)") && !text.contains("node-id"),
            "{text}"
        );

        // A third host cannot be written for 8.4: the error says so, nothing runs.
        let three = resource(&[("alpha", 0), ("beta", 1), ("gamma", 2)]);
        let err = apply(&d, &three, &disk(), &[0].into(), &[]).unwrap_err();
        assert!(err.contains("two hosts"), "{err}");
        assert!(!std::fs::read_to_string(d.res_file("r0"))
            .unwrap()
            .contains("gamma"));
    }

    /// The life of a replica on node alpha, command by command: create, a peer added, a peer
    /// removed, the backing volume grown, deletion.
    #[test]
    fn command_sequences_of_a_replica() {
        let dir = tempfile::tempdir().unwrap();
        let (runner, d) = driver(dir.path());
        let none = BTreeSet::new();
        let known: BTreeSet<u32> = [0].into();

        // Create: no metadata yet -> create-md with the peer slots, then adjust.
        runner
            .expect(DSTATE, Output::failed(1, "No valid meta data found"))
            .expect(
                &["drbdadm", "create-md", "--force", "--max-peers=7", "r0/0"],
                Output::ok(""),
            )
            .expect(&["drbdadm", "adjust", "r0"], Output::ok(""));
        let two = resource(&[("alpha", 0), ("beta", 1)]);
        apply(&d, &two, &disk(), &none, &[]).unwrap();
        assert!(runner.remaining().is_empty(), "{:?}", runner.remaining());
        let text = std::fs::read_to_string(d.res_file("r0")).unwrap();
        assert!(text.contains("beta") && !text.contains("gamma"), "{text}");

        // A peer is added: the file grows a host, adjust connects it; metadata is not asked
        // about again (DRBD holds the device).
        runner.expect(&["drbdadm", "adjust", "r0"], Output::ok(""));
        let three = resource(&[("alpha", 0), ("beta", 1), ("gamma", 2)]);
        apply(&d, &three, &disk(), &known, &[]).unwrap();
        assert!(runner.remaining().is_empty());
        let text = std::fs::read_to_string(d.res_file("r0")).unwrap();
        assert!(text.contains("gamma"), "{text}");

        // A peer is removed: adjust disconnects and forgets it.
        runner.expect(&["drbdadm", "adjust", "r0"], Output::ok(""));
        let moved = resource(&[("alpha", 0), ("gamma", 2)]);
        apply(&d, &moved, &disk(), &known, &[]).unwrap();
        let text = std::fs::read_to_string(d.res_file("r0")).unwrap();
        assert!(!text.contains("beta"), "{text}");

        // The backing volume grew: adjust, then resize.
        runner
            .expect(&["drbdadm", "adjust", "r0"], Output::ok(""))
            .expect(&["drbdadm", "resize", "r0/0"], Output::ok(""));
        apply(&d, &moved, &disk(), &known, &[0]).unwrap();
        assert!(runner.remaining().is_empty());

        // Deletion: down, wipe the metadata, remove the file.
        runner
            .expect(&["drbdadm", "down", "r0"], Output::ok(""))
            .expect(
                &["drbdadm", "--", "--force", "wipe-md", "r0/0"],
                Output::ok(""),
            );
        d.remove("alpha", &moved, &disk()).unwrap();
        assert!(runner.remaining().is_empty());
        assert!(!d.res_file("r0").exists());
        let drbd_calls: Vec<String> = runner.calls().iter().map(|c| c[..2].join(" ")).collect();
        assert_eq!(
            drbd_calls,
            [
                "drbdmeta 1000",
                "drbdadm create-md",
                "drbdadm adjust",
                "drbdadm adjust",
                "drbdadm adjust",
                "drbdadm adjust",
                "drbdadm resize",
                "drbdadm down",
                "drbdadm --",
            ]
        );
    }

    #[test]
    fn existing_metadata_is_kept_and_failures_change_nothing_more() {
        let dir = tempfile::tempdir().unwrap();
        let (runner, d) = driver(dir.path());
        let none = BTreeSet::new();
        let two = resource(&[("alpha", 0), ("beta", 1)]);
        // Metadata already there (an adopted volume, or a lost record): no create-md.
        runner
            .expect(DSTATE, Output::ok("UpToDate/DUnknown\n"))
            .expect(&["drbdadm", "adjust", "r0"], Output::ok(""));
        apply(&d, &two, &disk(), &none, &[]).unwrap();
        // The record was lost while DRBD holds the device: drbdmeta refuses, which says the
        // metadata is there.
        runner
            .expect(
                DSTATE,
                Output::failed(20, "Device '/dev/drbd1000' is configured!"),
            )
            .expect(&["drbdadm", "adjust", "r0"], Output::ok(""));
        apply(&d, &two, &disk(), &none, &[]).unwrap();
        assert!(runner.remaining().is_empty());
        // drbdmeta cannot read the device: an error naming it, nothing created.
        runner.expect(DSTATE, Output::failed(20, "open(/dev/loop7) failed"));
        let e = apply(&d, &two, &disk(), &none, &[]).unwrap_err();
        assert!(e.contains("/dev/loop7"), "{e}");
        // A failed resize is an error (the caller keeps the old size and tries again).
        runner
            .expect(&["drbdadm", "adjust", "r0"], Output::ok(""))
            .expect(
                &["drbdadm", "resize", "r0/0"],
                Output::failed(10, "peer not connected"),
            );
        let e = apply(&d, &two, &disk(), &[0].into(), &[0]).unwrap_err();
        assert!(e.contains("could not be resized"), "{e}");
        // A diskless node: no metadata, no resize.
        runner.expect(&["drbdadm", "adjust", "r0"], Output::ok(""));
        apply(&d, &two, &BTreeMap::new(), &none, &[0]).unwrap();
        assert!(runner.remaining().is_empty(), "{:?}", runner.remaining());
    }

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
