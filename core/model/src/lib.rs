//! The pure domain of the storage suite: validated names, sizes, properties, the cluster's
//! desired state, and the planning of every change to it. No I/O, no async.

pub mod cluster;
pub mod drbd_state;
pub mod error;
pub mod flags;
pub mod kinds;
pub mod name;
pub mod objects;
pub mod observed;
pub mod plan;
pub mod props;
pub mod security;
pub mod size;
pub mod vecmap;

pub use cluster::{Change, Cluster, ObjectClass};
pub use error::{ApiError, ApiResult, ObjKind};
pub use kinds::{ConnectionStatus, EncryptionType, LayerKind, NodeType, ProviderKind};
pub use name::{
    InvalidName, NetIfName, NodeName, ResourceGroupName, ResourceName, SnapshotName, StorPoolName,
};
pub use props::{Props, PropsChange, PropsOwner};
