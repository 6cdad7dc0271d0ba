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

/// Volume operations for one platform (`platform` names it in the attachments it makes).
pub struct Volumes {
    pub client: Client,
    pub platform: String,
    /// How long to wait for a device to appear.
    pub device_wait: Duration,
}

impl Volumes {
    pub fn new(client: Client, platform: &str) -> Volumes {
        Volumes {
            client,
            platform: platform.to_string(),
            device_wait: Duration::from_secs(60),
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
        if size_kib == 0 {
            return Err(AdapterError::Refused(format!(
                "volume '{name}': a size of 0 is not a size"
            )));
        }
        let spawn = ResourceGroupSpawn {
            resource_definition_name: Some(name.to_string()),
            volume_sizes: vec![size_kib as i64],
            ..Default::default()
        };
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
            .filter(|d| std::path::Path::new(d).exists())
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
                if std::path::Path::new(&device).exists() {
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

    /// Total and free KiB of the storage pools named `pools` (every pool when empty), over
    /// all nodes, diskless pools left out.
    pub async fn space(&self, pools: &[String]) -> Result<(u64, u64), AdapterError> {
        let sps = self.client.storage_pools(&[], pools).await?;
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
