//! What can go wrong in a call of the plugin, by what failed. The message of each is the
//! `Err` Docker shows whoever ran `docker volume ...` or `docker run -v ...`: it says what was
//! being done and, when the controller refused, the controller's own reasons.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use strata_api::ApiCallRc;
use strata_client::ClientError;
use strata_exec::ExecError;

use crate::opts::OptError;

/// A call of the plugin to the controller, as the messages name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// Listing the resource definitions, to find the plugin's volumes.
    ListVolumes,
    /// Listing the storage pools, to check the ones the options name.
    ListPools,
    /// Creating the resource definition of a new volume.
    CreateDefinition { volume: String },
    /// Creating the volume definition (the size) of a new volume.
    DefineSize { volume: String },
    /// Creating or auto-placing the replicas of a new volume.
    PlaceReplicas { volume: String },
    /// Deleting the resource definition of a volume.
    Remove { volume: String },
    /// Listing the resources of a volume, to see where it is and whether it is in use.
    ReadResources,
    /// Making a volume available, diskless, on this node.
    Attach { volume: String, node: String },
    /// Setting or clearing the mark of a mounted volume on its resource.
    RecordMount,
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Call::ListVolumes => f.write_str("cannot list the volumes"),
            Call::ListPools => f.write_str("cannot list the storage pools"),
            Call::CreateDefinition { volume } => write!(f, "cannot create volume '{volume}'"),
            Call::DefineSize { volume } => write!(f, "cannot create volume '{volume}': size"),
            Call::PlaceReplicas { volume } => {
                write!(f, "cannot create volume '{volume}': placing the replicas")
            }
            Call::Remove { volume } => write!(f, "cannot remove volume '{volume}'"),
            Call::ReadResources => f.write_str("cannot read where the volume is"),
            Call::Attach { volume, node } => {
                write!(f, "cannot attach volume '{volume}' on node '{node}'")
            }
            Call::RecordMount => f.write_str("cannot record where the volume is mounted"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The body of a protocol request is not the JSON Docker sends.
    #[error("cannot read the request: {0}")]
    BadRequest(#[source] serde_json::Error),
    /// A volume name Docker itself would refuse.
    #[error(
        "invalid volume name '{name}': use letters, digits, '_', '.' and '-', starting with a letter or digit"
    )]
    BadVolumeName { name: String },
    /// An option of the volume that is unknown or has a bad value.
    #[error("{0}")]
    BadOption(#[from] OptError),
    /// No volume of the plugin has the name asked for.
    #[error("no such volume")]
    NotFound,
    /// A storage pool an option names is on no node; `pools` are the ones there are.
    #[error(
        "storage pool '{pool}' does not exist on any node; the pools are: {}",
        pools.join(", ")
    )]
    NoSuchPool { pool: String, pools: Vec<String> },
    /// A storage pool an option names is missing on one of the nodes named.
    #[error("storage pool '{pool}' does not exist on node '{node}'")]
    PoolNotOnNode { pool: String, node: String },
    /// The controller refused the call and said why (its error replies).
    #[error("{call}: {}", reasons(replies))]
    Refused {
        call: Call,
        status: u16,
        replies: Vec<ApiCallRc>,
    },
    /// The call got no answer the plugin can act on: no controller reached, an answer that
    /// is not LINSTOR's, or a failure without reasons.
    #[error("{call}: {source}")]
    CallFailed {
        call: Call,
        #[source]
        source: ClientError,
    },
    /// A volume named through `external_name` was created, but the controller's replies do
    /// not say which name it got.
    #[error(
        "cannot create volume '{volume}': the controller did not name its resource definition"
    )]
    Unnamed { volume: String },
    /// Removal refused: containers on this node still use the volume.
    #[error("volume '{volume}' is mounted here by {containers} container(s); stop them first")]
    MountedHere { volume: String, containers: usize },
    /// Removal refused: the volume is opened or mounted on another node.
    #[error("volume '{volume}' is in use on node '{node}'; stop its containers there first")]
    InUseOnNode { volume: String, node: String },
    /// Mount refused: the volume is mounted (or stays opened) on another node.
    #[error(
        "volume '{volume}' is in use on node '{node}'; it can be mounted on one node at a time"
    )]
    MountedOnNode { volume: String, node: String },
    /// The volume was made available here, but its block device did not show up.
    #[error(
        "the volume's device did not appear on node '{node}' within {}s",
        waited.as_secs()
    )]
    NoDevice { node: String, waited: Duration },
    /// Making the file system or mounting it here failed (boxed: command errors are big).
    #[error("cannot mount volume '{volume}': {source}")]
    MountFailed {
        volume: String,
        #[source]
        source: Box<DeviceError>,
    },
    /// Unmounting here failed; the record of the container is kept for the next try.
    #[error("cannot unmount volume '{volume}': {source}")]
    UnmountFailed {
        volume: String,
        #[source]
        source: Box<DeviceError>,
    },
    /// The plugin's record of mounted volumes could not be written.
    #[error("cannot save the plugin's state in {}: {source}", path.display())]
    StateFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A blocking step (commands, file system work) ended without an answer.
    #[error("{0}")]
    Worker(#[source] tokio::task::JoinError),
}

/// What failed on this node while a volume's device was prepared, mounted or unmounted.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// DRBD 8.4 would not make the resource primary here.
    #[error("cannot make it primary on this node: {0}")]
    Promote(#[source] ExecError),
    /// blkid could not be run.
    #[error("{0}")]
    Blkid(#[source] ExecError),
    /// blkid ran but could not read the device.
    #[error("cannot probe {device}: {}", stderr.trim())]
    Probe {
        device: String,
        status: i32,
        stderr: String,
    },
    #[error("making the {fs} file system failed: {source}")]
    Mkfs {
        fs: String,
        #[source]
        source: ExecError,
    },
    /// The mount point could not be created.
    #[error("{}: {source}", path.display())]
    Mountpoint {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Mount(#[source] ExecError),
    #[error("{0}")]
    Unmount(#[source] ExecError),
    /// DRBD 8.4: the resource could not be made secondary again after the last unmount.
    #[error("{0}")]
    Demote(#[source] ExecError),
}

/// The failure of `call`: a refusal when the controller gave reasons, the client's error
/// otherwise. For `map_err`.
pub fn failed(call: Call) -> impl FnOnce(ClientError) -> PluginError {
    move |e| match e {
        ClientError::Api { status, replies } if replies.iter().any(ApiCallRc::is_error) => {
            PluginError::Refused {
                call,
                status,
                replies,
            }
        }
        source => PluginError::CallFailed { call, source },
    }
}

/// The error replies, each with its cause and correction.
fn reasons(replies: &[ApiCallRc]) -> String {
    let said: Vec<String> = replies
        .iter()
        .filter(|r| r.is_error())
        .map(|r| {
            let mut s = r.message.clone();
            if let Some(c) = r.cause.as_deref().filter(|c| !c.is_empty()) {
                s.push_str(&format!(" ({c})"));
            }
            if let Some(c) = r.correction.as_deref().filter(|c| !c.is_empty()) {
                s.push_str(&format!("; {c}"));
            }
            s
        })
        .collect();
    said.join("; ")
}
