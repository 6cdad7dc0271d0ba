//! The volume operations every platform needs, over the typed client.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use strata_api::types::{
    PropsModify, ResourceDefinition, ResourceDefinitionModify, ResourceGroupSpawn,
    ResourceMakeAvailable, ResourceWithVolumes, VolumeDefinitionModify,
};
use strata_api::ApiCallRc;
use strata_client::{Client, ClientError};

/// The resource property that marks an attachment an adapter made (and may remove again).
pub const PROP_ATTACHED_BY: &str = "Aux/strata/attached-by";

/// How an unreachable controller is said (the start of [`AdapterError::Unreachable`]'s text).
pub const UNREACHABLE: &str = "the controller cannot be reached";

#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    #[error("the controller cannot be reached: {0}")]
    Unreachable(String),
    #[error("{0}")]
    Refused(String),
    #[error("volume '{0}' does not exist")]
    NotFound(String),
    #[error("volume '{volume}' is in use on node '{node}'; stop what uses it there first")]
    InUse { volume: String, node: String },
    #[error("volume '{volume}' has no device on node '{node}' after {waited:?}")]
    NoDevice {
        volume: String,
        node: String,
        waited: Duration,
    },
}

/// The first error of the replies as one line: message, cause and correction.
fn reply_text(replies: &[ApiCallRc]) -> Option<String> {
    let r = replies.iter().find(|r| r.is_error())?;
    let mut text = r.message.clone();
    if let Some(c) = r.cause.as_deref().filter(|c| !c.is_empty()) {
        text.push_str(&format!(" ({c})"));
    }
    if let Some(c) = r.correction.as_deref().filter(|c| !c.is_empty()) {
        text.push_str(&format!("; {c}"));
    }
    Some(text)
}

impl From<ClientError> for AdapterError {
    fn from(e: ClientError) -> Self {
        match &e {
            ClientError::Unreachable { .. } => AdapterError::Unreachable(e.to_string()),
            ClientError::Api { replies, .. } => {
                AdapterError::Refused(reply_text(replies).unwrap_or_else(|| e.to_string()))
            }
            _ => AdapterError::Refused(e.to_string()),
        }
    }
}

/// Errors among replies that came with a success status.
fn check(replies: Vec<ApiCallRc>) -> Result<Vec<ApiCallRc>, AdapterError> {
    match reply_text(&replies) {
        Some(t) => Err(AdapterError::Refused(t)),
        None => Ok(replies),
    }
}

/// Whether the resource is opened on its node (as the node reports).
pub fn in_use(r: &ResourceWithVolumes) -> bool {
    r.resource
        .state
        .as_ref()
        .and_then(|s| s.in_use)
        .unwrap_or(false)
}

/// The size of volume 0 of definition `rd`, in KiB (0 when it has none).
pub fn size_kib(rd: &ResourceDefinition) -> u64 {
    rd.volume_definitions
        .iter()
        .flatten()
        .find(|v| v.volume_number.unwrap_or(0) == 0)
        .and_then(|v| v.size_kib)
        .unwrap_or(0)
        .max(0) as u64
}

/// The nodes other than `node` that have the resource open.
pub fn open_on_others(rscs: &[ResourceWithVolumes], node: &str) -> Vec<String> {
    rscs.iter()
        .filter(|r| !r.resource.node_name.eq_ignore_ascii_case(node) && in_use(r))
        .map(|r| r.resource.node_name.clone())
        .collect()
}

/// A volume made usable on a node: its device, and the other nodes that had it open then.
#[derive(Debug, Clone)]
pub struct Attached {
    pub device: String,
    pub open_elsewhere: Vec<String>,
}

/// The definition property that marks a two-primaries hand-over an adapter opened (its
/// value: `<from node> -> <to node>`), so that only such a one is closed again.
pub const PROP_HAND_OVER: &str = "Aux/strata/hand-over";

/// DRBD's permission for two nodes to be primary at once.
pub const TWO_PRIMARIES: &str = "DrbdOptions/Net/allow-two-primaries";

/// What [`Volumes::snapshot`] does.
/// What a volume's placement may change of its resource group's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    pub place_count: Option<u32>,
    pub storage_pool: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapOp {
    Take,
    Delete,
    Rollback,
}

/// Volume operations for one platform (`platform` names it in the attachments it makes).
pub struct Volumes {
    pub client: Client,
    pub platform: String,
    /// How long to wait for a device to appear.
    pub device_wait: Duration,
    /// The program runs on the node it attaches volumes to (Proxmox, Docker), so a device
    /// counts only once it exists here; false when it attaches them on other hosts (the
    /// OpenNebula front-end), where the node's report of the device is what counts.
    pub devices_here: bool,
}

impl Volumes {
    pub fn new(client: Client, platform: &str) -> Volumes {
        Volumes {
            client,
            platform: platform.to_string(),
            device_wait: Duration::from_secs(60),
            devices_here: true,
        }
    }

    /// Creates volume `name` of `size_kib` from resource group `group`, its definition
    /// carrying `props`. Nothing is left behind when a step fails.
    pub async fn create(
        &self,
        name: &str,
        size_kib: u64,
        group: &str,
        props: BTreeMap<String, String>,
    ) -> Result<(), AdapterError> {
        self.create_placed(name, size_kib, group, props, Placement::default())
            .await
    }

    /// [`Volumes::create`], placed with `over` overriding the group's place count or
    /// storage pool.
    pub async fn create_placed(
        &self,
        name: &str,
        size_kib: u64,
        group: &str,
        props: BTreeMap<String, String>,
        over: Placement,
    ) -> Result<(), AdapterError> {
        if size_kib == 0 {
            return Err(AdapterError::Refused(format!(
                "volume '{name}': a size of 0 is not a size"
            )));
        }
        let mut spawn = ResourceGroupSpawn {
            resource_definition_name: Some(name.to_string()),
            volume_sizes: vec![size_kib as i64],
            ..Default::default()
        };
        spawn.select_filter.place_count = over.place_count.map(i64::from);
        spawn.select_filter.storage_pool = over.storage_pool;
        let spawned = self
            .client
            .send::<Vec<ApiCallRc>>(strata_client::calls::resource_group_spawn(group, &spawn))
            .await
            .map_err(AdapterError::from)
            .and_then(check);
        if let Err(e) = spawned {
            // A failed placement may leave the definition: take it away again.
            if self.find(name).await.ok().flatten().is_some() {
                let _ = self.client.resource_dfn_delete(name).await;
            }
            return Err(e);
        }
        if props.is_empty() {
            return Ok(());
        }
        let m = ResourceDefinitionModify {
            props: PropsModify {
                override_props: props,
                ..Default::default()
            },
            ..Default::default()
        };
        let set = self
            .client
            .send::<Vec<ApiCallRc>>(strata_client::calls::resource_dfn_modify(name, &m))
            .await
            .map_err(AdapterError::from)
            .and_then(check);
        if let Err(e) = set {
            let _ = self.client.resource_dfn_delete(name).await;
            return Err(e);
        }
        Ok(())
    }

    /// The definition `name` with its volume definitions, if it exists.
    pub async fn find(&self, name: &str) -> Result<Option<ResourceDefinition>, AdapterError> {
        let rds = self
            .client
            .resource_dfns(&[name.to_string()], &[], true)
            .await?;
        Ok(rds.into_iter().find(|d| d.name.eq_ignore_ascii_case(name)))
    }

    /// Every definition, with its volume definitions.
    pub async fn all(&self) -> Result<Vec<ResourceDefinition>, AdapterError> {
        Ok(self.client.resource_dfns(&[], &[], true).await?)
    }

    pub async fn resources(&self, name: &str) -> Result<Vec<ResourceWithVolumes>, AdapterError> {
        Ok(self
            .client
            .resources(&[], &[name.to_string()], &[], &[])
            .await?)
    }

    /// Deletes volume `name` with all its replicas, unless it is in use somewhere.
    pub async fn delete(&self, name: &str) -> Result<(), AdapterError> {
        if self.find(name).await?.is_none() {
            return Err(AdapterError::NotFound(name.to_string()));
        }
        if let Some(r) = self.resources(name).await?.iter().find(|r| in_use(r)) {
            return Err(AdapterError::InUse {
                volume: name.to_string(),
                node: r.resource.node_name.clone(),
            });
        }
        check(self.client.resource_dfn_delete(name).await?)?;
        Ok(())
    }

    /// Grows volume 0 of `name` to `size_kib`.
    pub async fn resize(&self, name: &str, size_kib: u64) -> Result<(), AdapterError> {
        let m = VolumeDefinitionModify {
            size_kib: Some(size_kib as i64),
            ..Default::default()
        };
        check(
            self.client
                .send(strata_client::calls::volume_dfn_modify(name, 0, &m))
                .await?,
        )?;
        Ok(())
    }

    /// Sets (or, with `None`, removes) properties of definition `name`.
    pub async fn set_props(
        &self,
        name: &str,
        props: BTreeMap<String, Option<String>>,
    ) -> Result<(), AdapterError> {
        let mut m = ResourceDefinitionModify::default();
        for (k, v) in props {
            match v {
                Some(v) => {
                    m.props.override_props.insert(k, v);
                }
                None => m.props.delete_props.push(k),
            }
        }
        check(
            self.client
                .send(strata_client::calls::resource_dfn_modify(name, &m))
                .await?,
        )?;
        Ok(())
    }

    /// The device of volume 0 of `name` on `node`, if the node has the resource and reports
    /// a device.
    pub async fn device(&self, name: &str, node: &str) -> Result<Option<String>, AdapterError> {
        Ok(self
            .resources(name)
            .await?
            .iter()
            .find(|r| r.resource.node_name.eq_ignore_ascii_case(node))
            .and_then(|r| r.volumes.iter().find(|v| v.volume_number == 0))
            .and_then(|v| v.device_path.clone()))
    }

    /// Makes `name` usable on `node` (a diskless attachment where it has no replica, or a
    /// replica of its own with `local`), and waits for its device. Attachments made here
    /// are marked, so that [`Volumes::release`] removes only those.
    pub async fn make_available(
        &self,
        name: &str,
        node: &str,
        local: bool,
    ) -> Result<String, AdapterError> {
        Ok(self.attach(name, node, local).await?.device)
    }

    /// [`Volumes::make_available`], also saying which other nodes had the volume open at
    /// that moment (what a live migration's hand-over needs to know).
    pub async fn attach(
        &self,
        name: &str,
        node: &str,
        local: bool,
    ) -> Result<Attached, AdapterError> {
        let rscs = self.resources(name).await?;
        let open_elsewhere = open_on_others(&rscs, node);
        let here = rscs
            .iter()
            .find(|r| r.resource.node_name.eq_ignore_ascii_case(node));
        // Already usable here: the listing just made says where.
        if let Some(device) = here
            .and_then(|r| r.volumes.iter().find(|v| v.volume_number == 0))
            .and_then(|v| v.device_path.clone())
            .filter(|d| self.device_exists(d))
        {
            return Ok(Attached {
                device,
                open_elsewhere,
            });
        }
        if here.is_none() {
            if self.find(name).await?.is_none() {
                return Err(AdapterError::NotFound(name.to_string()));
            }
            let req = ResourceMakeAvailable {
                diskful: Some(local),
                ..Default::default()
            };
            check(self.client.make_available(name, node, &req).await?)?;
            let mark = strata_api::types::ResourceModify {
                props: PropsModify {
                    override_props: [(PROP_ATTACHED_BY.to_string(), self.platform.clone())].into(),
                    ..Default::default()
                },
                ..Default::default()
            };
            check(self.client.resource_modify(name, node, &mark).await?)?;
        }
        let start = Instant::now();
        loop {
            if let Some(device) = self.device(name, node).await? {
                if self.device_exists(&device) {
                    return Ok(Attached {
                        device,
                        open_elsewhere,
                    });
                }
            }
            if start.elapsed() > self.device_wait {
                return Err(AdapterError::NoDevice {
                    volume: name.to_string(),
                    node: node.to_string(),
                    waited: self.device_wait,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn device_exists(&self, device: &str) -> bool {
        !self.devices_here || std::path::Path::new(device).exists()
    }

    /// Copies definition `from` into a new definition `to` of resource group `group`
    /// carrying `props` (the controller's clone: a reflink copy, a ZFS clone or an LVM-thin
    /// snapshot where the pools allow). Nothing is left behind when a step fails.
    pub async fn clone_volume(
        &self,
        from: &str,
        to: &str,
        group: &str,
        props: BTreeMap<String, String>,
    ) -> Result<(), AdapterError> {
        let req = strata_api::types::ResourceDefinitionCloneRequest {
            name: to.to_string(),
            resource_group: Some(group.to_string()),
            ..Default::default()
        };
        // The answer is the clone's start: its messages say whether it went well.
        let started: serde_json::Value = self
            .client
            .send(strata_client::calls::resource_dfn_clone(from, &req))
            .await?;
        let messages: Vec<ApiCallRc> = serde_json::from_value(
            started
                .get("messages")
                .cloned()
                .unwrap_or(serde_json::Value::Array(vec![])),
        )
        .map_err(|e| AdapterError::Refused(format!("unexpected answer to the clone: {e}")))?;
        check(messages)?;
        let props = props.into_iter().map(|(k, v)| (k, Some(v))).collect();
        if let Err(e) = self.set_props(to, props).await {
            let _ = self.client.resource_dfn_delete(to).await;
            return Err(e);
        }
        Ok(())
    }

    /// A new definition `to` of resource group `group`, carrying `props`, with the data of
    /// snapshot `snap` of `from` (volume definitions, then resources restored). Nothing is
    /// left when a step fails.
    pub async fn restore_snapshot(
        &self,
        from: &str,
        snap: &str,
        to: &str,
        group: &str,
        props: BTreeMap<String, String>,
    ) -> Result<(), AdapterError> {
        use strata_api::types::request;
        let create = request::ResourceDefinitionCreate {
            resource_definition: request::ResourceDefinition {
                name: Some(to.to_string()),
                props,
                resource_group_name: Some(group.to_string()),
                ..Default::default()
            },
            ..Default::default()
        };
        self.send_checked(strata_client::calls::resource_dfn_create(&create))
            .await?;
        let restore = request::SnapshotRestore {
            to_resource: to.to_string(),
            ..Default::default()
        };
        let restored = async {
            self.send_checked(strata_client::calls::snapshot_restore_volume_dfns(
                from, snap, &restore,
            ))
            .await?;
            self.send_checked(strata_client::calls::snapshot_restore_resources(
                from, snap, &restore,
            ))
            .await
        }
        .await;
        if let Err(e) = restored {
            let _ = self.client.resource_dfn_delete(to).await;
            return Err(AdapterError::Refused(format!(
                "restoring snapshot '{snap}' of '{from}': {e}"
            )));
        }
        Ok(())
    }

    /// Grows volume 0 of `name` to `size_kib` when it is smaller; a bigger one stays.
    pub async fn grow_to(&self, name: &str, size_kib: u64) -> Result<(), AdapterError> {
        let rd = self
            .find(name)
            .await?
            .ok_or_else(|| AdapterError::NotFound(name.to_string()))?;
        if size_kib > self::size_kib(&rd) {
            self.resize(name, size_kib).await?;
        }
        Ok(())
    }

    /// The snapshots of the definitions `of` (of every definition when empty).
    pub async fn snapshots(
        &self,
        of: &[String],
    ) -> Result<Vec<strata_api::types::Snapshot>, AdapterError> {
        let snaps: Vec<strata_api::types::Snapshot> = self
            .client
            .send(strata_client::calls::snapshots(of, &[]))
            .await?;
        Ok(snaps
            .into_iter()
            .filter(|s| {
                of.is_empty() || of.iter().any(|n| n.eq_ignore_ascii_case(&s.resource_name))
            })
            .collect())
    }

    /// Takes, deletes or rolls back to snapshot `snap` of definition `name`.
    pub async fn snapshot(&self, name: &str, snap: &str, op: SnapOp) -> Result<(), AdapterError> {
        let call = match op {
            SnapOp::Take => strata_client::calls::snapshot_create(
                name,
                &strata_api::types::request::Snapshot {
                    name: snap.to_string(),
                    ..Default::default()
                },
            ),
            SnapOp::Delete => strata_client::calls::snapshot_delete(name, snap, &[]),
            SnapOp::Rollback => strata_client::calls::snapshot_rollback(
                name,
                snap,
                &strata_api::types::SnapshotRollback::default(),
            ),
        };
        self.send_checked(call).await
    }

    /// Sends a call answered by replies; an error among them is the error.
    pub async fn send_checked(&self, call: strata_client::Call) -> Result<(), AdapterError> {
        check(self.client.send(call).await?)?;
        Ok(())
    }

    /// Total and free KiB of what resource group `group` places on: its storage pools (any
    /// pool when it names none) on its nodes (any node when it names none).
    pub async fn group_space(&self, group: &str) -> Result<(u64, u64), AdapterError> {
        let groups: Vec<strata_api::types::ResourceGroup> = self
            .client
            .send(strata_client::calls::resource_groups(
                &[group.to_string()],
                &[],
            ))
            .await?;
        let g = groups
            .iter()
            .find(|g| g.name.eq_ignore_ascii_case(group))
            .ok_or_else(|| {
                AdapterError::Refused(format!(
                    "resource group '{group}' does not exist; create it (linstor resource-group create {group} --storage-pool POOL --place-count N)"
                ))
            })?;
        let f = &g.select_filter;
        let mut pools: Vec<String> = f.storage_pool.iter().cloned().collect();
        pools.extend(f.storage_pool_list.iter().flatten().cloned());
        let nodes: Vec<String> = f.node_name_list.iter().flatten().cloned().collect();
        self.space(&nodes, &pools).await
    }

    /// Removes the attachment of `name` on `node` if this platform made it; anything else
    /// (a replica placed by the resource group) stays.
    pub async fn release(&self, name: &str, node: &str) -> Result<bool, AdapterError> {
        let rscs = self.resources(name).await?;
        let ours = rscs.iter().find(|r| {
            r.resource.node_name.eq_ignore_ascii_case(node)
                && r.resource.props.get(PROP_ATTACHED_BY) == Some(&self.platform)
        });
        let Some(r) = ours else {
            return Ok(false);
        };
        if in_use(r) {
            return Err(AdapterError::InUse {
                volume: name.to_string(),
                node: node.to_string(),
            });
        }
        check(self.client.resource_delete(name, node).await?)?;
        Ok(true)
    }

    /// Lets `node` open `rd` while `from` still has it open: the hand-over of a live
    /// migration, where the guest runs on the source until the target takes over. DRBD
    /// allows it only with two primaries permitted; that permission is set on the
    /// definition (and marked, so that [`Volumes::end_hand_over`] takes back only what was
    /// set here) and applied on the nodes before this returns. A definition whose two
    /// primaries an administrator allowed is left as it is.
    pub async fn begin_hand_over(
        &self,
        rd: &ResourceDefinition,
        from: &str,
        node: &str,
    ) -> Result<(), AdapterError> {
        if rd.props.get(TWO_PRIMARIES).map(String::as_str) == Some("yes")
            && !rd.props.contains_key(PROP_HAND_OVER)
        {
            return Ok(());
        }
        let props = [
            (TWO_PRIMARIES.to_string(), Some("yes".to_string())),
            (
                PROP_HAND_OVER.to_string(),
                Some(format!("{from} -> {node}")),
            ),
        ];
        self.set_props(&rd.name, props.into()).await
    }

    /// Ends a hand-over [`Volumes::begin_hand_over`] began on `rd` once at most one node
    /// other than `node` (which has just let go of it) still has it open. True when it ended
    /// one.
    pub async fn end_hand_over(
        &self,
        rd: &ResourceDefinition,
        node: &str,
    ) -> Result<bool, AdapterError> {
        if !rd.props.contains_key(PROP_HAND_OVER) {
            return Ok(false);
        }
        if open_on_others(&self.resources(&rd.name).await?, node).len() > 1 {
            return Ok(false);
        }
        let props = [
            (TWO_PRIMARIES.to_string(), None),
            (PROP_HAND_OVER.to_string(), None),
        ];
        self.set_props(&rd.name, props.into()).await?;
        Ok(true)
    }

    /// Total and free KiB of the storage pools named `pools` (every pool when empty) on
    /// `nodes` (every node when empty), diskless pools left out.
    pub async fn space(
        &self,
        nodes: &[String],
        pools: &[String],
    ) -> Result<(u64, u64), AdapterError> {
        let sps = self.client.storage_pools(nodes, pools).await?;
        let mut total = 0u64;
        let mut free = 0u64;
        for sp in sps
            .iter()
            .filter(|sp| !sp.provider_kind.eq_ignore_ascii_case("DISKLESS"))
        {
            total += sp.total_capacity.unwrap_or(0).max(0) as u64;
            free += sp.free_capacity.unwrap_or(0).max(0) as u64;
        }
        Ok((total, free))
    }
}
