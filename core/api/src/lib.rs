//! The LINSTOR REST API v1 as this project speaks it: wire types, ApiCallRc with its
//! masked return codes, and conversion between the wire and the domain model.

pub mod auth;
pub mod convert;
mod lenient;
pub mod paths;
pub mod rc;
pub mod rsc_conn;
pub mod types;
pub mod view;

pub use rc::ApiCallRc;

/// The REST API version this implementation is compatible with.
pub const REST_API_VERSION: &str = "1.28.0";
