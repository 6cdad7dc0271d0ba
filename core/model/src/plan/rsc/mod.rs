//! Resources: explicit creation, autoplace, make-available, modification, deletion, and the
//! finishing of deletions once nodes confirm them.
//!
//! The planners of the requests live in `create`, `place`, `toggle`, `modify` and `delete`.
//! What they share sits below them: the storage pool and room of a resource (`pools`), its
//! layer stack (`layers`), the tie-breaker (`tiebreaker`), the step every creation ends with
//! (`commit`) and small helpers (`shared`).

mod commit;
pub(crate) mod create;
mod delete;
mod layers;
mod modify;
pub(crate) mod place;
pub(crate) mod pools;
mod shared;
mod tiebreaker;
mod toggle;

pub use create::{create_resources, RscCreate};
pub use delete::{delete_resource, finish_deletions};
pub use modify::{modify_resource, modify_volume};
pub use place::{
    adjust_rd, autoplace, autoplace_rd, make_available, AutoplaceRequest, DEFAULT_PLACE_COUNT,
};
pub use toggle::{finish_migration, migrations_due, toggle_disk, ToggleDisk};
