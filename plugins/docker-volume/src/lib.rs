//! The Docker volume plugin of the suite: `docker volume create -d linstor` gives a volume
//! replicated by the cluster. See `docs/plugins/docker.md`.

pub mod config;
pub mod driver;
pub mod error;
pub mod opts;
pub mod server;
