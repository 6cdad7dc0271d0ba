//! What the platform adapters share, on top of the typed client: the controller list and the
//! security settings (`settings`), names of hypervisor disks and how they map to resource
//! definitions (`naming`), size conversions (`size`), and the volume operations every
//! platform needs (`volume`: create from a resource group, find, delete unless in use,
//! resize, make usable on a node and wait for its device).

pub mod naming;
pub mod settings;
pub mod size;
pub mod volume;

pub use settings::{Connection, ControllerSettings};
pub use volume::{AdapterError, Volumes};
