//! What the controller and a satellite say to each other, over HTTP/JSON on the satellite's
//! port (3366 by default).
//!
//! - `GET  /v1/hello`   -> [`Hello`]: version, capabilities, what the satellite last applied.
//! - `PUT  /v1/config`  with [`NodeConfig`] -> [`Report`]: the whole desired state of the node.
//!   The satellite makes it true and answers with what it observes. A configuration older
//!   than the one it applied last is not applied; the answer then carries the newer state.
//! - `PUT  /v1/config/delta` with [`NodeConfigDelta`] -> [`Report`] (partial): what changed
//!   since the generation the satellite holds. A satellite that holds another generation
//!   refuses it (409) and the controller sends the whole configuration instead; so a change
//!   costs the same however much the node holds.
//! - `GET  /v1/report`  -> [`Report`]: observed state, for polling.
//! - `POST /v1/pools/probe` with [`PoolConfig`] -> [`PoolProbe`]: can this pool be used
//!   (asked before the controller records a new pool).
//! - `GET  /v1/drbd?after=SEQ&wait_ms=MS` -> `Option<DrbdReport>`: the DRBD state of the node,
//!   answered as soon as it changed after `SEQ` (or after `MS` milliseconds, at most
//!   [`DRBD_WAIT_MAX_MS`]); `null` when the node has no DRBD layer.
//!
//! Over TLS (the default) a satellite that has not joined a cluster serves only the join:
//! - `GET  /v1/join?node=NAME` -> [`JoinOffer`]: the satellite's proof that it holds the
//!   node's one-time join token, over the key its TLS connection showed.
//! - `POST /v1/join` with [`JoinBind`] -> [`Hello`]: the controller's proof, the cluster CA and
//!   the node's certificate; the satellite binds itself to that cluster for good.
//!
//! and, once joined, everything above, to the cluster's controller only, plus
//! - `PUT  /v1/tls/certificate` with [`CertRenewal`] -> [`Hello`]: a new certificate for the
//!   node's key (rotation), used from the next connection on.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use strata_model::kinds::{LayerKind, ProviderKind};
use strata_model::observed::{Capabilities, DrbdReport, PoolState, ResourceState};

/// Version of this protocol; both sides refuse a peer that speaks another.
pub const AGENT_API_VERSION: u32 = 1;

pub const PATH_HELLO: &str = "/v1/hello";
pub const PATH_CONFIG: &str = "/v1/config";
pub const PATH_CONFIG_DELTA: &str = "/v1/config/delta";
pub const PATH_REPORT: &str = "/v1/report";
pub const PATH_POOL_PROBE: &str = "/v1/pools/probe";
pub const PATH_DRBD: &str = "/v1/drbd";
pub const PATH_JOIN: &str = "/v1/join";
pub const PATH_CERTIFICATE: &str = "/v1/tls/certificate";
/// Longest a `GET /v1/drbd` waits for a change.
pub const DRBD_WAIT_MAX_MS: u64 = 30_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    pub agent_api: u32,
    pub version: String,
    /// The node name the satellite was given by its controller, if any yet.
    pub node_name: Option<String>,
    /// The cluster the satellite belongs to, if it has been configured.
    pub cluster_id: Option<String>,
    pub applied_generation: u64,
    pub capabilities: Capabilities,
}

/// The satellite's side of a join.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinOffer {
    /// Hex HMAC of the join token over the node name and the satellite's public key.
    pub proof: String,
}

/// The controller's side of a join.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinBind {
    pub node: String,
    /// The cluster CA's certificate, PEM.
    pub ca_pem: String,
    /// The node's certificate, PEM, over the key the satellite showed.
    pub cert_pem: String,
    /// Hex HMAC of the join token over the node, the CA and the certificate.
    pub proof: String,
}

/// A renewed certificate for the node's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertRenewal {
    pub cert_pem: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolConfig {
    pub name: String,
    pub kind: ProviderKind,
    /// The pool's properties (`StorDriver/...` select the backing pool).
    pub props: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeConfig {
    pub number: u32,
    /// Net size users get, in KiB.
    pub size_kib: u64,
    /// Storage pool the volume lives in.
    pub pool: String,
    /// Name of the backing volume (`<resource>_<nnnnn>` unless overridden).
    pub backing_name: String,
    /// Make a new volume from this snapshot (in the same pool) instead of empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_from: Option<VolumeRestore>,
    /// The backing name was given by the administrator (OverrideVlmId): a volume of that
    /// name that exists in the pool is taken over as it is, data and DRBD metadata included.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adopt: bool,
    /// Make a new volume as a copy of this volume of the same pool (a clone from a pool
    /// without snapshots); never made empty instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_from: Option<String>,
    /// With DRBD: the size its device must reach (the volume definition's). DRBD grows only
    /// once every replica's backing volume grew, so a node whose device is smaller asks
    /// DRBD again until it is reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_kib: Option<u64>,
}

/// The snapshot copy a restored volume is made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeRestore {
    /// Backing name of the volume the snapshot was taken of.
    pub volume: String,
    pub snapshot: String,
}

/// A snapshot the node should hold (copies of some of its volumes), or be taking now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotConfig {
    pub resource: String,
    pub name: String,
    pub volumes: Vec<SnapshotVolumeConfig>,
    /// Suspend the resource's DRBD I/O (so that every node's copy is of the same moment).
    pub suspend_io: bool,
    /// Take the copies now where missing. Otherwise a missing copy stays missing: taken
    /// later it would be of another moment.
    pub take: bool,
    /// Roll the resource back to this snapshot: with `down_only`, take its DRBD resource
    /// down and keep it down; then give the volumes the snapshot's content (once per id)
    /// and bring DRBD up again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackConfig>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackConfig {
    pub id: u64,
    pub down_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotVolumeConfig {
    pub number: u32,
    pub pool: String,
    pub backing_name: String,
}

/// What the node holds of a snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotReport {
    pub resource: String,
    pub name: String,
    /// Volume numbers whose copy exists.
    pub volumes: Vec<u32>,
    /// Whether the resource's I/O is suspended for it.
    pub suspended: bool,
    pub error: Option<String>,
    /// The rollback to it: DRBD is down for it (`down`) / the volumes were rolled back (`done`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_down: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_done: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceConfig {
    pub name: String,
    pub layers: Vec<LayerKind>,
    pub diskless: bool,
    pub volumes: Vec<VolumeConfig>,
    /// The DRBD resource every node of it shares, when the DRBD layer is used. Volume sizes
    /// above are then those of the backing volumes (DRBD's metadata included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drbd: Option<strata_drbd::config::Resource>,
    /// Set on the one node that starts a new DRBD resource's data: how, once every diskful
    /// node is connected and every disk is still `Inconsistent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_sync: Option<InitialSync>,
}

/// How a new DRBD resource gets its first up-to-date data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitialSync {
    /// Every backing volume is new and reads zeroes (thin, sparse or zeroed): declare them in
    /// sync without copying anything.
    Skip,
    /// Backing volumes hold whatever was on the disk before: make this node primary once, by
    /// force, so that a full sync copies its data to the others.
    Full,
}

/// Everything a node should have. Whatever the satellite created and is not in here goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeConfig {
    pub generation: u64,
    pub cluster_id: String,
    pub node_name: String,
    pub pools: Vec<PoolConfig>,
    pub resources: Vec<ResourceConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub snapshots: Vec<SnapshotConfig>,
}

/// The node's configuration at `generation`, as the changes to the one it holds at `base`:
/// the resources to add or replace, the ones to remove, the pools (always whole) and the
/// snapshots (whole, when they changed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeConfigDelta {
    pub generation: u64,
    pub base: u64,
    pub cluster_id: String,
    pub node_name: String,
    pub pools: Vec<PoolConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upsert: Vec<ResourceConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshots: Option<Vec<SnapshotConfig>>,
}

impl NodeConfigDelta {
    /// The resources this delta is about (upserted or removed).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.upsert
            .iter()
            .map(|r| r.name.as_str())
            .chain(self.remove.iter().map(String::as_str))
    }

    /// `base` with this delta applied: the node's whole configuration at `generation`.
    pub fn apply_to(&self, base: &NodeConfig) -> NodeConfig {
        let mut cfg = base.clone();
        cfg.generation = self.generation;
        cfg.cluster_id = self.cluster_id.clone();
        cfg.node_name = self.node_name.clone();
        cfg.pools = self.pools.clone();
        let gone: std::collections::HashSet<&str> = self.names().collect();
        cfg.resources.retain(|r| !gone.contains(r.name.as_str()));
        cfg.resources.extend(self.upsert.iter().cloned());
        if let Some(s) = &self.snapshots {
            cfg.snapshots = s.clone();
        }
        cfg
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub node_name: Option<String>,
    pub applied_generation: u64,
    pub pools: BTreeMap<String, PoolState>,
    pub resources: Vec<ResourceState>,
    /// Problems that concern the node as a whole (e.g. its own record could not be read).
    pub errors: Vec<String>,
    /// What DRBD says, on nodes with the DRBD layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drbd: Option<DrbdReport>,
    /// The snapshots the node holds or was asked for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub snapshots: Vec<SnapshotReport>,
    /// The answer to a delta: `resources` holds only the resources the delta was about (a
    /// removed one that is gone is absent); pools, errors and snapshots are whole; `drbd` is
    /// left out (the controller follows DRBD on its own).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
    /// In a partial report: the resources the delta was about that the node no longer has.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gone: Vec<String>,
}

impl Report {
    pub fn resource(&self, name: &str) -> Option<&ResourceState> {
        self.resources
            .iter()
            .find(|r| r.name.eq_ignore_ascii_case(name))
    }

    pub fn snapshot(&self, rsc: &str, name: &str) -> Option<&SnapshotReport> {
        self.snapshots
            .iter()
            .find(|s| s.resource.eq_ignore_ascii_case(rsc) && s.name.eq_ignore_ascii_case(name))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolProbe {
    pub ok: bool,
    pub error: Option<String>,
    pub state: Option<PoolState>,
}

/// An error answer of the satellite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentError {
    pub message: String,
}
