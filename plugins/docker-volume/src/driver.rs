//! What each call of the Docker volume protocol does: volumes are resource definitions
//! marked as the plugin's, created through the controller; mounting makes the volume
//! available on this node (a diskless attachment when it has no replica here), makes the
//! file system on first use and mounts it; the mount IDs of containers are counted so that
//! the last one to go unmounts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use strata_api::types::{
    request, AutoSelectFilter, Props, PropsModify, ResourceDefinition, ResourceMakeAvailable,
    ResourceModify, ResourceWithVolumes, StoragePool,
};
use strata_client::Client;
use strata_exec::{Cmd, CommandRunner};

use crate::config::Settings;
use crate::error::{failed, Call, DeviceError, PluginError};
use crate::opts::{self, VolumeOpts};

/// Property marking a resource definition as a Docker volume; its value is the volume name.
pub const PROP_VOLUME: &str = "Aux/strata/docker-volume";
const PROP_FS: &str = "Aux/strata/docker-fs";
const PROP_FSOPTS: &str = "Aux/strata/docker-fsopts";
const PROP_MOUNTOPTS: &str = "Aux/strata/docker-mountopts";
/// Set on the resource of the node where the volume is mounted, so that the plugins of the
/// other nodes know at once (the controller's view of open devices follows later).
pub const PROP_MOUNTED: &str = "Aux/strata/docker-mounted";

/// How long a volume opened on another node (not mounted there by a plugin) is waited for.
const IN_USE_WAIT: Duration = Duration::from_secs(10);
/// How long a volume's device may take to appear after it was made available here.
const DEVICE_WAIT: Duration = Duration::from_secs(60);

/// What this node has of a volume: the containers using it and whether the plugin attached
/// it here (diskless) and must detach it when they are gone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mounted {
    pub ids: BTreeSet<String>,
    pub attached_here: bool,
    pub mountpoint: String,
    /// The plugin made the DRBD resource primary here (DRBD 8.4 has no auto-promote) and
    /// makes it secondary again after the last unmount.
    #[serde(default)]
    pub promoted: bool,
}

/// The plugin's own record, kept across restarts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub volumes: BTreeMap<String, Mounted>,
}

/// A volume as Docker sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeInfo {
    pub name: String,
    pub rd: String,
    pub mountpoint: String,
    pub status: BTreeMap<String, String>,
}

pub struct Driver {
    pub settings: Settings,
    client: Client,
    runner: Arc<dyn CommandRunner>,
    state: tokio::sync::Mutex<State>,
}

impl Driver {
    pub fn new(settings: Settings, runner: Arc<dyn CommandRunner>) -> anyhow::Result<Driver> {
        let client =
            Client::with_security(&settings.controllers, settings.timeout, &settings.security)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        let state = load_state(&settings.state_dir)?;
        Ok(Driver {
            settings,
            client,
            runner,
            state: tokio::sync::Mutex::new(state),
        })
    }

    fn state_file(&self) -> PathBuf {
        self.settings.state_dir.join("state.json")
    }

    fn save(&self, state: &State) -> Result<(), PluginError> {
        let path = self.state_file();
        let tmp = path.with_extension("json.tmp");
        serde_json::to_vec_pretty(state)
            .map_err(std::io::Error::from)
            .and_then(|text| std::fs::write(&tmp, text))
            .and_then(|_| std::fs::rename(&tmp, &path))
            .map_err(|source| PluginError::StateFile { path, source })
    }

    fn mountpoint_of(&self, name: &str) -> PathBuf {
        self.settings.state_dir.join("mnt").join(name)
    }

    /// Every resource definition that is one of the plugin's volumes.
    async fn volume_rds(&self) -> Result<Vec<ResourceDefinition>, PluginError> {
        let rds = self
            .client
            .resource_dfns(&[], &[], true)
            .await
            .map_err(failed(Call::ListVolumes))?;
        Ok(rds
            .into_iter()
            .filter(|d| d.props.contains_key(PROP_VOLUME))
            .collect())
    }

    async fn find(&self, name: &str) -> Result<Option<ResourceDefinition>, PluginError> {
        Ok(self
            .volume_rds()
            .await?
            .into_iter()
            .find(|d| d.props.get(PROP_VOLUME).map(String::as_str) == Some(name)))
    }

    fn info(&self, rd: &ResourceDefinition, state: &State) -> VolumeInfo {
        let name = rd.props.get(PROP_VOLUME).cloned().unwrap_or_default();
        let mountpoint = state
            .volumes
            .get(&name)
            .filter(|m| !m.ids.is_empty())
            .map(|m| m.mountpoint.clone())
            .unwrap_or_default();
        let mut status = BTreeMap::new();
        status.insert("resource".to_string(), rd.name.clone());
        if let Some(fs) = rd.props.get(PROP_FS) {
            status.insert("fs".into(), fs.clone());
        }
        if let Some(vd) = rd.volume_definitions.as_ref().and_then(|v| v.first()) {
            if let Some(kib) = vd.size_kib {
                status.insert(
                    "size".into(),
                    strata_model::size::HumanKib(kib.max(0) as u64).to_string(),
                );
            }
        }
        VolumeInfo {
            name,
            rd: rd.name.clone(),
            mountpoint,
            status,
        }
    }

    pub async fn get(&self, name: &str) -> Result<VolumeInfo, PluginError> {
        let rd = self.find(name).await?.ok_or(PluginError::NotFound)?;
        let state = self.state.lock().await;
        Ok(self.info(&rd, &state))
    }

    pub async fn list(&self) -> Result<Vec<VolumeInfo>, PluginError> {
        let rds = self.volume_rds().await?;
        let state = self.state.lock().await;
        Ok(rds.iter().map(|rd| self.info(rd, &state)).collect())
    }

    pub async fn path(&self, name: &str) -> Result<String, PluginError> {
        Ok(self.get(name).await?.mountpoint)
    }

    pub async fn create(
        &self,
        name: &str,
        given: &BTreeMap<String, String>,
    ) -> Result<(), PluginError> {
        check_volume_name(name)?;
        let o = opts::apply(&self.settings.defaults, given)?;
        let _guard = self.state.lock().await;
        if self.find(name).await?.is_some() {
            return Ok(());
        }
        self.check_pools(&o).await?;
        let mut props = Props::new();
        props.insert(PROP_VOLUME.into(), name.into());
        props.insert(PROP_FS.into(), o.fs.clone());
        if !o.fsopts.is_empty() {
            props.insert(PROP_FSOPTS.into(), o.fsopts.clone());
        }
        if !o.mountopts.is_empty() {
            props.insert(PROP_MOUNTOPTS.into(), o.mountopts.clone());
        }
        // A name LINSTOR accepts names the definition; any other goes through external_name.
        let plain = strata_model::ResourceName::new(name).is_ok();
        let rd = request::ResourceDefinition {
            name: plain.then(|| name.to_string()),
            external_name: (!plain).then(|| name.to_string()),
            props,
            resource_group_name: o.resource_group.clone(),
            ..Default::default()
        };
        let replies = self
            .client
            .resource_dfn_create(&request::ResourceDefinitionCreate {
                resource_definition: rd,
                ..Default::default()
            })
            .await
            .map_err(failed(Call::CreateDefinition {
                volume: name.to_string(),
            }))?;
        let rd_name = if plain {
            name.to_string()
        } else {
            replies
                .iter()
                .find_map(|r| r.obj_refs.get("RscDfn").cloned())
                .ok_or_else(|| PluginError::Unnamed {
                    volume: name.to_string(),
                })?
        };
        if let Err(e) = self.deploy(name, &rd_name, &o).await {
            // Nothing half-made stays behind.
            let _ = self.client.resource_dfn_delete(&rd_name).await;
            return Err(e);
        }
        Ok(())
    }

    /// Refuses pools that exist on no node (or not on the nodes named), naming the ones
    /// there are, before anything is created.
    async fn check_pools(&self, o: &VolumeOpts) -> Result<(), PluginError> {
        let named: Vec<&String> = o
            .storage_pool
            .iter()
            .chain(o.diskless_storage_pool.iter())
            .collect();
        if named.is_empty() {
            return Ok(());
        }
        let pools: Vec<StoragePool> = self
            .client
            .storage_pools(&[], &[])
            .await
            .map_err(failed(Call::ListPools))?;
        for want in named {
            let on: Vec<&str> = pools
                .iter()
                .filter(|p| p.storage_pool_name.eq_ignore_ascii_case(want))
                .filter_map(|p| p.node_name.as_deref())
                .collect();
            if on.is_empty() {
                let mut there: Vec<String> =
                    pools.iter().map(|p| p.storage_pool_name.clone()).collect();
                there.sort_unstable();
                there.dedup();
                return Err(PluginError::NoSuchPool {
                    pool: want.clone(),
                    pools: there,
                });
            }
            if let Some(n) = o
                .nodes
                .iter()
                .find(|n| !on.iter().any(|x| x.eq_ignore_ascii_case(n)))
            {
                return Err(PluginError::PoolNotOnNode {
                    pool: want.clone(),
                    node: n.clone(),
                });
            }
        }
        Ok(())
    }

    /// The volume definition and the replicas of the new volume `name`.
    async fn deploy(&self, name: &str, rd: &str, o: &VolumeOpts) -> Result<(), PluginError> {
        let volume = name.to_string();
        let vd = request::VolumeDefinition {
            // Parsed sizes are at most MAX_SIZE_KIB, which is i64::MAX.
            size_kib: o.size_kib as i64,
            // Unlike the command line, the plugin sends no flags, not even an empty list.
            flags: None,
            ..Default::default()
        };
        self.client
            .volume_dfn_create(
                rd,
                &request::VolumeDefinitionCreate {
                    volume_definition: vd,
                    ..Default::default()
                },
            )
            .await
            .map_err(failed(Call::DefineSize {
                volume: volume.clone(),
            }))?;
        if !o.nodes.is_empty() {
            let pool: Props = o
                .storage_pool
                .iter()
                .map(|sp| ("StorPoolName".to_string(), sp.clone()))
                .collect();
            let list: Vec<request::ResourceCreate> = o
                .nodes
                .iter()
                .map(|n| request::ResourceCreate {
                    resource: request::Resource {
                        node_name: n.clone(),
                        props: pool.clone(),
                        ..Default::default()
                    },
                    ..Default::default()
                })
                .collect();
            self.client
                .resource_create(rd, &list)
                .await
                .map_err(failed(Call::PlaceReplicas { volume }))?;
            return Ok(());
        }
        self.client
            .autoplace(rd, &autoplace_request(o))
            .await
            .map_err(failed(Call::PlaceReplicas { volume }))?;
        Ok(())
    }

    pub async fn remove(&self, name: &str) -> Result<(), PluginError> {
        let mut state = self.state.lock().await;
        if let Some(m) = state.volumes.get(name).filter(|m| !m.ids.is_empty()) {
            return Err(PluginError::MountedHere {
                volume: name.to_string(),
                containers: m.ids.len(),
            });
        }
        let Some(rd) = self.find(name).await? else {
            return Err(PluginError::NotFound);
        };
        let rscs = self.resources(&rd.name).await?;
        if let Some(r) = rscs.iter().find(|r| in_use(r)) {
            return Err(PluginError::InUseOnNode {
                volume: name.to_string(),
                node: r.resource.node_name.clone(),
            });
        }
        self.client
            .resource_dfn_delete(&rd.name)
            .await
            .map_err(failed(Call::Remove {
                volume: name.to_string(),
            }))?;
        if state.volumes.remove(name).is_some() {
            self.save(&state)?;
        }
        Ok(())
    }

    async fn resources(&self, rd: &str) -> Result<Vec<ResourceWithVolumes>, PluginError> {
        self.client
            .resources(&[], &[rd.to_string()], &[], &[])
            .await
            .map_err(failed(Call::ReadResources))
    }

    pub async fn mount(&self, name: &str, id: &str) -> Result<String, PluginError> {
        let mut state = self.state.lock().await;
        let me = self.settings.node.clone();
        let mountpoint = self.mountpoint_of(name);
        if let Some(m) = state.volumes.get_mut(name).filter(|m| !m.ids.is_empty()) {
            // Mounted here already: one more container.
            m.ids.insert(id.to_string());
            let mp = m.mountpoint.clone();
            self.save(&state)?;
            return Ok(mp);
        }
        let rd = self.find(name).await?.ok_or(PluginError::NotFound)?;
        // Mounted elsewhere by a plugin: refused at once. Opened elsewhere: a moment's use
        // (DRBD makes a new volume's first replica primary once) is waited out.
        let start = Instant::now();
        let rscs = loop {
            let rscs = self.resources(&rd.name).await?;
            let busy = rscs
                .iter()
                .find(|r| r.resource.node_name != me && in_use(r))
                .map(|r| {
                    (
                        r.resource.node_name.clone(),
                        r.resource.props.contains_key(PROP_MOUNTED),
                    )
                });
            match busy {
                None => break rscs,
                Some((node, marked)) if marked || start.elapsed() > IN_USE_WAIT => {
                    return Err(PluginError::MountedOnNode {
                        volume: name.to_string(),
                        node,
                    });
                }
                Some(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        };
        let attached_here = !rscs.iter().any(|r| r.resource.node_name == me);
        if attached_here {
            let diskless = ResourceMakeAvailable {
                diskful: Some(false),
                ..Default::default()
            };
            self.client
                .make_available(&rd.name, &me, &diskless)
                .await
                .map_err(failed(Call::Attach {
                    volume: name.to_string(),
                    node: me.clone(),
                }))?;
        }
        let mut result = self.mark_mounted(&rd.name, &me, true).await.map(|_| false);
        if result.is_ok() {
            result = self.mount_here(&rd, name, &me, &mountpoint).await;
            if result.is_err() {
                let _ = self.mark_mounted(&rd.name, &me, false).await;
            }
        }
        match result {
            Ok(promoted) => {
                let mp = mountpoint.display().to_string();
                let m = state.volumes.entry(name.to_string()).or_default();
                m.ids.insert(id.to_string());
                m.attached_here = attached_here;
                m.promoted = promoted;
                m.mountpoint = mp.clone();
                self.save(&state)?;
                Ok(mp)
            }
            Err(e) => {
                if attached_here {
                    self.detach(&rd.name, &me).await;
                }
                Err(e)
            }
        }
    }

    /// Mounts the volume here; answers whether it had to make DRBD primary for that.
    async fn mount_here(
        &self,
        rd: &ResourceDefinition,
        name: &str,
        me: &str,
        mountpoint: &Path,
    ) -> Result<bool, PluginError> {
        let dev = self.device(&rd.name, me).await?;
        let rsc = rd.name.clone();
        let fs = rd
            .props
            .get(PROP_FS)
            .cloned()
            .unwrap_or_else(|| "ext4".into());
        let runner = self.runner.clone();
        let fsopts = rd.props.get(PROP_FSOPTS).cloned().unwrap_or_default();
        let mountopts = rd.props.get(PROP_MOUNTOPTS).cloned().unwrap_or_default();
        let mp = mountpoint.to_path_buf();
        tokio::task::spawn_blocking(move || {
            let promoted = promote_if_needed(runner.as_ref(), &dev, &rsc)?;
            let mounted = prepare_and_mount(runner.as_ref(), &dev, &fs, &fsopts, &mountopts, &mp);
            if mounted.is_err() && promoted {
                let _ = runner.run(&Cmd::new("drbdadm").arg("secondary").arg(&rsc));
            }
            mounted.map(|_| promoted)
        })
        .await
        .map_err(PluginError::Worker)?
        .map_err(|source| PluginError::MountFailed {
            volume: name.to_string(),
            source: Box::new(source),
        })
    }

    /// The block device of the volume on `node`, once it exists.
    async fn device(&self, rd: &str, node: &str) -> Result<String, PluginError> {
        let start = Instant::now();
        loop {
            let rscs = self.resources(rd).await?;
            let dev = rscs
                .iter()
                .find(|r| r.resource.node_name == node)
                .and_then(|r| r.volumes.first())
                .and_then(|v| v.device_path.clone());
            if let Some(d) = dev.filter(|d| Path::new(d).exists()) {
                return Ok(d);
            }
            if start.elapsed() > DEVICE_WAIT {
                return Err(PluginError::NoDevice {
                    node: node.to_string(),
                    waited: DEVICE_WAIT,
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Sets or clears [`PROP_MOUNTED`] on the volume's resource on `node`.
    async fn mark_mounted(&self, rd: &str, node: &str, on: bool) -> Result<(), PluginError> {
        let props = if on {
            PropsModify {
                override_props: [(PROP_MOUNTED.to_string(), "true".to_string())].into(),
                ..Default::default()
            }
        } else {
            PropsModify {
                delete_props: vec![PROP_MOUNTED.to_string()],
                ..Default::default()
            }
        };
        let m = ResourceModify {
            props,
            ..Default::default()
        };
        self.client
            .resource_modify(rd, node, &m)
            .await
            .map(|_| ())
            .map_err(failed(Call::RecordMount))
    }

    async fn detach(&self, rd: &str, node: &str) {
        if let Err(e) = self.client.resource_delete(rd, node).await {
            tracing::warn!("detaching {rd} from {node} failed: {e}");
        }
    }

    pub async fn unmount(&self, name: &str, id: &str) -> Result<(), PluginError> {
        let mut state = self.state.lock().await;
        let Some(m) = state.volumes.get_mut(name) else {
            return Ok(()); // not mounted here: nothing to do
        };
        m.ids.remove(id);
        if !m.ids.is_empty() {
            self.save(&state)?;
            return Ok(());
        }
        let mp = PathBuf::from(&m.mountpoint);
        let attached_here = m.attached_here;
        let promoted = m.promoted;
        let runner = self.runner.clone();
        let rd = self.find(name).await?;
        let rsc = rd.as_ref().map(|d| d.name.clone());
        let unmounted = tokio::task::spawn_blocking(move || {
            unmount_dir(runner.as_ref(), &mp)?;
            if let (true, Some(rsc)) = (promoted, rsc) {
                runner
                    .run(&Cmd::new("drbdadm").arg("secondary").arg(&rsc))
                    .map_err(DeviceError::Demote)?;
            }
            Ok(())
        })
        .await
        .map_err(PluginError::Worker)?;
        if let Err(source) = unmounted {
            // Keep the record: the next unmount tries again.
            m.ids.insert(id.to_string());
            return Err(PluginError::UnmountFailed {
                volume: name.to_string(),
                source: Box::new(source),
            });
        }
        state.volumes.remove(name);
        self.save(&state)?;
        if let Some(rd) = rd {
            if attached_here {
                self.detach(&rd.name, &self.settings.node).await;
            } else if let Err(e) = self
                .mark_mounted(&rd.name, &self.settings.node, false)
                .await
            {
                tracing::warn!("{e}");
            }
        }
        Ok(())
    }
}

/// The autoplace request of the options: only those given are sent, all in the filter. The
/// diskless pool is the one the diskless resources of `disklessonremaining` go into.
fn autoplace_request(o: &VolumeOpts) -> request::AutoPlaceRequest {
    let list = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    request::AutoPlaceRequest {
        // Unlike the command line, the plugin sends no `diskless_on_remaining` beside the
        // filter, not even `null`: its choice is the filter's.
        diskless_on_remaining: None,
        select_filter: AutoSelectFilter {
            place_count: o.replicas.map(i64::from),
            storage_pool: o.storage_pool.clone(),
            storage_pool_diskless_list: o.diskless_storage_pool.clone().map(|p| vec![p]),
            replicas_on_same: list(&o.replicas_on_same),
            replicas_on_different: list(&o.replicas_on_different),
            not_place_with_rsc_regex: o.do_not_place_with_regex.clone(),
            diskless_on_remaining: o.diskless_on_remaining,
            ..Default::default()
        },
        layer_list: Vec::new(),
    }
}

/// Whether the resource is in use on its node: opened (as the node reports) or mounted there
/// by a plugin.
fn in_use(r: &ResourceWithVolumes) -> bool {
    r.resource.props.contains_key(PROP_MOUNTED) || strata_adapter::volume::in_use(r)
}

/// Docker's rule for volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn check_volume_name(name: &str) -> Result<(), PluginError> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if name.len() < 2 || !first_ok || !rest_ok {
        return Err(PluginError::BadVolumeName {
            name: name.to_string(),
        });
    }
    Ok(())
}

fn load_state(dir: &Path) -> anyhow::Result<State> {
    std::fs::create_dir_all(dir.join("mnt"))
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join("state.json");
    match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b)
            .map_err(|e| anyhow::anyhow!("{} is damaged: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
        Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
    }
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

/// Makes the file system on `dev` if it has none, and mounts it on `mp` (created) unless
/// something is mounted there already.
fn prepare_and_mount(
    runner: &dyn CommandRunner,
    dev: &str,
    fs: &str,
    fsopts: &str,
    mountopts: &str,
    mp: &Path,
) -> Result<(), DeviceError> {
    // blkid exits 2 when it finds no file system signature.
    let probe = runner
        .run_any(&Cmd::new("blkid").args(["-p", "-o", "value", "-s", "TYPE", dev]))
        .map_err(DeviceError::Blkid)?;
    let found = probe.stdout.trim().to_string();
    if probe.status == 2 || (probe.status == 0 && found.is_empty()) {
        let mut mkfs = Cmd::new(format!("mkfs.{fs}")).timeout(Duration::from_secs(600));
        mkfs = match fs {
            "xfs" => mkfs.arg("-q"),
            _ => mkfs.args(["-q", "-F"]),
        };
        runner
            .run(&mkfs.args(words(fsopts)).arg(dev))
            .map_err(|source| DeviceError::Mkfs {
                fs: fs.to_string(),
                source,
            })?;
    } else if probe.status != 0 {
        return Err(DeviceError::Probe {
            device: dev.to_string(),
            status: probe.status,
            stderr: probe.stderr,
        });
    } else if found != fs {
        tracing::info!("{dev} holds {found}; mounting it as it is");
    }
    std::fs::create_dir_all(mp).map_err(|source| DeviceError::Mountpoint {
        path: mp.to_path_buf(),
        source,
    })?;
    if is_mountpoint(mp) {
        return Ok(());
    }
    let mut mount = Cmd::new("mount");
    if !mountopts.is_empty() {
        mount = mount.args(["-o", mountopts]);
    }
    runner
        .run(&mount.arg(dev).arg(mp.display().to_string()))
        .map_err(DeviceError::Mount)?;
    Ok(())
}

/// DRBD 8.4 has no auto-promote and refuses to open a Secondary's device: such a resource is
/// made primary before use. Answers whether it was (DRBD 9 promotes itself on open).
fn promote_if_needed(
    runner: &dyn CommandRunner,
    dev: &str,
    rsc: &str,
) -> Result<bool, DeviceError> {
    if !dev.starts_with("/dev/drbd") {
        return Ok(false);
    }
    let drbd84 = std::fs::read_to_string("/proc/drbd")
        .map(|t| t.starts_with("version: 8."))
        .unwrap_or(false);
    if !drbd84 {
        return Ok(false);
    }
    // A resource just attached here needs a moment to connect to an up-to-date peer.
    let start = Instant::now();
    loop {
        match runner.run(&Cmd::new("drbdadm").arg("primary").arg(rsc)) {
            Ok(_) => return Ok(true),
            Err(e) if start.elapsed() > Duration::from_secs(30) => {
                return Err(DeviceError::Promote(e))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

fn is_mountpoint(mp: &Path) -> bool {
    let want = mp.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|t| {
            t.lines()
                .any(|l| l.split(' ').nth(4) == Some(want.as_str()))
        })
        .unwrap_or(false)
}

fn unmount_dir(runner: &dyn CommandRunner, mp: &Path) -> Result<(), DeviceError> {
    if is_mountpoint(mp) {
        runner
            .run(&Cmd::new("umount").arg(mp.display().to_string()))
            .map_err(DeviceError::Unmount)?;
    }
    let _ = std::fs::remove_dir(mp);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_names_follow_docker() {
        for ok in ["v1", "my.volume", "db_data-2", "9lives"] {
            assert!(check_volume_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "x", "-v", ".v", "a b", "a/b"] {
            assert!(check_volume_name(bad).is_err(), "{bad}");
        }
    }
}
