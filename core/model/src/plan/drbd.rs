//! The DRBD layer's numbers and rules: node ids, TCP ports, minors, peer slots and the shared
//! secret of new resources; the automatic tie-breaker; automatic quorum.
//!
//! Everything here is pure: it reads the cluster and returns what to change, so the rules
//! are tested without a node in sight.

use std::collections::BTreeSet;

use crate::cluster::Cluster;
use crate::error::{code, ApiError, ObjKind};
use crate::name::NodeName;
use crate::objects::{Resource, ResourceDefinition};

/// DRBD node ids run from 0 to 31.
pub const MAX_NODE_ID: u32 = 31;
/// The minors handed out when none is asked for.
pub const DEFAULT_MINOR_RANGE: (u32, u32) = (1000, 49999);
/// The TCP ports handed out per node when none is asked for.
pub const DEFAULT_PORT_RANGE: (u16, u16) = (7000, 7999);
pub const DEFAULT_PEER_SLOTS: u32 = 7;
pub const DEFAULT_AL_STRIPES: u32 = 1;
pub const DEFAULT_AL_STRIPE_SIZE_KIB: u32 = 32;

pub const PROP_PORT_RANGE: &str = "TcpPortAutoRange";
pub const PROP_MINOR_RANGE: &str = "MinorNrAutoRange";
pub const PROP_PEER_SLOTS: &str = "PeerSlotsNewResource";
pub const PROP_AUTO_TIEBREAKER: &str = "DrbdOptions/auto-add-quorum-tiebreaker";
pub const PROP_AUTO_QUORUM: &str = "DrbdOptions/auto-quorum";

fn parse_range(text: &str) -> Option<(u32, u32)> {
    let (a, b) = text.trim().split_once('-')?;
    let (a, b): (u32, u32) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (a <= b).then_some((a, b))
}

/// The port range for `node`: `TcpPortAutoRange` on the node, else on the controller.
pub fn port_range(cluster: &Cluster, node: &NodeName) -> (u16, u16) {
    let text = cluster
        .nodes
        .get(node)
        .and_then(|n| n.props.get(PROP_PORT_RANGE).cloned())
        .or_else(|| cluster.ctrl_props.get(PROP_PORT_RANGE).cloned());
    text.and_then(|t| parse_range(&t))
        .filter(|(_, b)| *b <= u16::MAX as u32)
        .map(|(a, b)| (a as u16, b as u16))
        .unwrap_or(DEFAULT_PORT_RANGE)
}

pub fn minor_range(cluster: &Cluster) -> (u32, u32) {
    cluster
        .ctrl_props
        .get(PROP_MINOR_RANGE)
        .and_then(|t| parse_range(t))
        .unwrap_or(DEFAULT_MINOR_RANGE)
}

/// Peer slots for a new resource: the definition's own setting, else `PeerSlotsNewResource`
/// from the definition, its group or the controller, else 7.
pub fn peer_slots_for_new(cluster: &Cluster, rd: &ResourceDefinition) -> u32 {
    if let Some(p) = rd.drbd_peer_slots {
        return p;
    }
    if let Some(p) = cluster
        .rsc_grps
        .get(&rd.resource_group)
        .and_then(|g| g.peer_slots)
    {
        return p;
    }
    cluster
        .effective_prop(PROP_PEER_SLOTS, None, Some(rd), None, None)
        .and_then(|v| v.parse().ok())
        .filter(|p| (1..=MAX_NODE_ID).contains(p))
        .unwrap_or(DEFAULT_PEER_SLOTS)
}

/// The lowest number of `lo..=hi` that neither `used` (in order) nor `taken` holds.
fn lowest_free<T>(
    lo: T,
    hi: T,
    used: impl Iterator<Item = T>,
    taken: impl Fn(T) -> bool,
) -> Option<T>
where
    T: Copy + Ord + std::ops::Add<Output = T> + From<u8>,
{
    let one = T::from(1u8);
    let mut cand = lo;
    let mut used = used.peekable();
    loop {
        while used.peek().is_some_and(|u| *u < cand) {
            used.next();
        }
        if used.peek() == Some(&cand) || taken(cand) {
            if cand >= hi {
                return None;
            }
            cand = cand + one;
            continue;
        }
        return Some(cand);
    }
}

/// The lowest free minor of the range: not used by any volume definition, nor in `extra`
/// (minors handed out earlier in the same change).
pub fn free_minor(cluster: &Cluster, extra: &BTreeSet<u32>) -> Result<u32, ApiError> {
    let (lo, hi) = minor_range(cluster);
    lowest_free(lo, hi, cluster.used_minors().range(lo, hi), |m| {
        extra.contains(&m)
    })
    .ok_or_else(|| {
        ApiError::new(
            code::FAIL_POOL_EXHAUSTED_MINOR_NR,
            ObjKind::VlmDfn,
            format!("Every DRBD minor number from {lo} to {hi} is in use"),
        )
        .correction(format!(
            "Delete unused volume definitions, or widen the range with the controller property {PROP_MINOR_RANGE}"
        ))
    })
}

/// The lowest port of `node`'s range that no resource on it uses, no definition asked for,
/// and `also_taken` does not hold.
fn free_port(cluster: &Cluster, node: &NodeName, also_taken: impl Fn(u16) -> bool) -> Option<u16> {
    let (lo, hi) = port_range(cluster, node);
    let reserved = cluster.rd_ports();
    let used = cluster
        .ports_on(node)
        .into_iter()
        .flat_map(|u| u.range(lo, hi));
    lowest_free(lo, hi, used, |p| reserved.contains(&p) || also_taken(p))
}

/// Whether `node` can give a resource of a definition with port `fixed` (or none) a port.
pub fn node_has_port(cluster: &Cluster, node: &NodeName, fixed: Option<u16>) -> bool {
    match fixed {
        Some(p) => !cluster.ports_on(node).is_some_and(|u| u.contains(&p)),
        None => free_port(cluster, node, |_| false).is_some(),
    }
}

/// Fills in node ids, ports and peer slots of `new` resources of `rd` (a definition using
/// DRBD) that has `existing` live resources; `requested_ids` are the node ids asked for, in
/// the order of `new`. Refuses clashes, exhausted pools and too few peer slots.
pub fn assign_resources(
    cluster: &Cluster,
    rd: &ResourceDefinition,
    existing: &[&Resource],
    new: &mut [Resource],
    requested_ids: &[Option<i64>],
) -> Result<(), ApiError> {
    let total = existing.len() + new.len();
    if total > (MAX_NODE_ID + 1) as usize {
        return Err(ApiError::new(
            code::FAIL_INSUFFICIENT_PEER_SLOTS,
            ObjKind::Rsc,
            format!(
                "Resource '{}' would have {total} replicas; DRBD connects at most {} nodes",
                rd.name,
                MAX_NODE_ID + 1
            ),
        )
        .correction("Use fewer replicas (diskless ones count too)"));
    }
    let numbers = Assignment {
        cluster,
        rd,
        existing,
    };
    numbers.node_ids(new, requested_ids)?;
    numbers.peer_slots(new)?;
    numbers.ports(new)
}

/// What the DRBD numbers of new resources are assigned against: the definition (one using
/// DRBD) and its `existing` live resources.
struct Assignment<'a> {
    cluster: &'a Cluster,
    rd: &'a ResourceDefinition,
    existing: &'a [&'a Resource],
}

impl Assignment<'_> {
    /// Gives each new resource its DRBD node id: the one asked for, which must be valid and
    /// free, or the lowest free one.
    fn node_ids(
        &self,
        new: &mut [Resource],
        requested_ids: &[Option<i64>],
    ) -> Result<(), ApiError> {
        // Ids of resources still being deleted stay taken: their peers may not have let go yet.
        let mut ids: BTreeSet<u32> = self
            .existing
            .iter()
            .copied()
            .chain(self.cluster.resources_of(&self.rd.name))
            .filter_map(|r| r.node_id)
            .collect();
        // Asked-for ids first, so that an automatic one never takes an id asked for later.
        for (r, want) in new.iter_mut().zip(requested_ids) {
            let Some(want) = want else { continue };
            if !(0..=MAX_NODE_ID as i64).contains(want) {
                return Err(ApiError::new(
                    code::FAIL_INVLD_NODE_ID,
                    ObjKind::Rsc,
                    format!("Invalid DRBD node id {want}"),
                )
                .correction(format!("Use a node id from 0 to {MAX_NODE_ID}")));
            }
            let id = *want as u32;
            if !ids.insert(id) {
                let holder = self
                    .existing
                    .iter()
                    .find(|e| e.node_id == Some(id))
                    .map(|e| format!("the resource on node '{}'", e.node))
                    .unwrap_or_else(|| "another resource of this request".into());
                return Err(ApiError::new(
                    code::FAIL_INVLD_NODE_ID,
                    ObjKind::Rsc,
                    format!(
                        "DRBD node id {id} of resource '{}' is already used by {holder}",
                        self.rd.name
                    ),
                )
                .correction("Choose a free node id, or leave it out to have one assigned"));
            }
            r.node_id = Some(id);
        }
        for r in new.iter_mut().filter(|r| r.node_id.is_none()) {
            let id = (0..=MAX_NODE_ID)
                .find(|i| !ids.contains(i))
                .ok_or_else(|| {
                    ApiError::new(
                        code::FAIL_POOL_EXHAUSTED_NODE_ID,
                        ObjKind::Rsc,
                        format!("Resource '{}' has no free DRBD node id left", self.rd.name),
                    )
                })?;
            ids.insert(id);
            r.node_id = Some(id);
        }
        Ok(())
    }

    /// Gives the new resources the peer slots of new resources of `rd`, and refuses when any
    /// resource (existing or new) would have fewer slots than peers.
    fn peer_slots(&self, new: &mut [Resource]) -> Result<(), ApiError> {
        // Peer slots: each resource's metadata has room for that many peers, fixed at creation.
        let slots = peer_slots_for_new(self.cluster, self.rd);
        for r in new.iter_mut() {
            r.peer_slots = Some(slots);
        }
        let peers = (self.existing.len() + new.len()).saturating_sub(1);
        let tightest = self
            .existing
            .iter()
            .map(|r| {
                (
                    r.peer_slots.unwrap_or(DEFAULT_PEER_SLOTS),
                    r.node.to_string(),
                )
            })
            .chain(std::iter::once((slots, "the new resources".to_string())))
            .min();
        if let Some((have, on)) = tightest {
            if (have as usize) < peers {
                return Err(ApiError::new(
                    code::FAIL_INSUFFICIENT_PEER_SLOTS,
                    ObjKind::Rsc,
                    format!(
                        "Resource '{}' would have {peers} peers, but {on} has only {have} peer slot(s)",
                        self.rd.name
                    ),
                )
                .cause("DRBD metadata reserves a fixed number of peer slots when it is created")
                .correction(format!(
                    "Use fewer replicas, or create the resource definition with more peer slots (--peer-slots, property {PROP_PEER_SLOTS})"
                )));
            }
        }
        Ok(())
    }

    /// Gives each new resource its TCP port: the definition's own port when it has one (which
    /// must be free on the node), else the lowest free port of the node's range.
    fn ports(&self, new: &mut [Resource]) -> Result<(), ApiError> {
        let mut given: Vec<(NodeName, u16)> = Vec::new();
        for r in new.iter_mut() {
            if let Some(p) = self.rd.drbd_port {
                if !node_has_port(self.cluster, &r.node, Some(p)) {
                    return Err(ApiError::new(
                        code::FAIL_INVLD_RSC_PORT,
                        ObjKind::Rsc,
                        format!(
                            "TCP port {p} of resource '{}' is already used on node '{}'",
                            self.rd.name, r.node
                        ),
                    )
                    .correction("Give the resource definition another port (--port), or none to have ports assigned"));
                }
                r.tcp_port = Some(p);
                continue;
            }
            let (lo, hi) = port_range(self.cluster, &r.node);
            let found = free_port(self.cluster, &r.node, |p| {
                given.iter().any(|(n, q)| n == &r.node && *q == p)
            });
            let port = found.ok_or_else(|| {
                ApiError::new(
                    code::FAIL_POOL_EXHAUSTED_TCP_PORT,
                    ObjKind::Rsc,
                    format!("Node '{}' has no free DRBD port from {lo} to {hi}", r.node),
                )
                .correction(format!(
                    "Widen the range with the property {PROP_PORT_RANGE}, or delete unused resources on that node"
                ))
            })?;
            given.push((r.node.clone(), port));
            r.tcp_port = Some(port);
        }
        Ok(())
    }
}

/// A shared secret for a new definition, drawn from the random `seed` (a v4 UUID).
pub fn secret_from(seed: &str) -> String {
    let hex: String = seed.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    // 20 characters from the 122 random bits of the UUID, in a wider alphabet.
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let bits = u128::from_str_radix(&hex, 16).unwrap_or(0);
    let mut n = bits;
    (0..20)
        .map(|_| {
            let c = ALPHABET[(n % ALPHABET.len() as u128) as usize] as char;
            n /= ALPHABET.len() as u128;
            if n == 0 {
                n = bits.rotate_left(17) | 1;
            }
            c
        })
        .collect()
}

fn truthy(v: Option<String>, default: bool) -> bool {
    match v.as_deref().map(str::to_ascii_lowercase).as_deref() {
        Some("false") | Some("no") | Some("0") | Some("disabled") => false,
        Some(_) => true,
        None => default,
    }
}

/// Whether the automatic tie-breaker is enabled for `rd`.
pub fn auto_tiebreaker_enabled(cluster: &Cluster, rd: &ResourceDefinition) -> bool {
    truthy(
        cluster.effective_prop(PROP_AUTO_TIEBREAKER, None, Some(rd), None, None),
        true,
    )
}

/// Whether a definition with these live resources wants a tie-breaker: an even number (two
/// or more) of diskful replicas and no diskless one other than a tie-breaker.
pub fn wants_tiebreaker(live: &[&Resource]) -> bool {
    let diskful = live.iter().filter(|r| !r.is_diskless()).count();
    let diskless = live
        .iter()
        .filter(|r| r.is_diskless() && !r.is_tiebreaker())
        .count();
    diskful >= 2 && diskful % 2 == 0 && diskless == 0
}

/// The quorum options DRBD gets for a definition with these live resources, unless
/// `DrbdOptions/auto-quorum` is `disabled`: `quorum majority` with three or more diskful
/// replicas, or two diskful and at least one diskless (a tie-breaker counts).
pub fn auto_quorum(
    cluster: &Cluster,
    rd: &ResourceDefinition,
    live: &[&Resource],
) -> Option<(String, String)> {
    let setting = cluster.effective_prop(PROP_AUTO_QUORUM, None, Some(rd), None, None);
    let on_no_quorum = match setting.as_deref() {
        Some("disabled") => return None,
        Some("suspend-io") => "suspend-io",
        _ => "io-error",
    };
    let diskful = live.iter().filter(|r| !r.is_diskless()).count();
    let diskless = live.len() - diskful;
    (diskful >= 3 || (diskful == 2 && diskless >= 1))
        .then(|| ("majority".to_string(), on_no_quorum.to_string()))
}

/// The node a tie-breaker goes to: one that can run DRBD, holds no resource of `rd`, and
/// has a diskless pool; the least loaded first, by name among equals.
pub fn tiebreaker_node(
    cluster: &Cluster,
    rd: &ResourceDefinition,
    live: &[&Resource],
    diskless_pool: &crate::name::StorPoolName,
    can_run_drbd: &dyn Fn(&NodeName) -> bool,
) -> Option<NodeName> {
    cluster
        .nodes
        .values()
        .filter(|n| n.node_type.hosts_storage())
        .filter(|n| !live.iter().any(|r| r.node == n.name))
        .filter(|n| cluster.resource(&rd.name, &n.name).is_none())
        .filter(|n| {
            cluster
                .stor_pool(&n.name, diskless_pool)
                .is_some_and(|sp| sp.kind == crate::kinds::ProviderKind::Diskless)
        })
        .filter(|n| can_run_drbd(&n.name))
        .min_by_key(|n| (cluster.resource_count_on(&n.name), n.name.clone()))
        .map(|n| n.name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("7000-7999"), Some((7000, 7999)));
        assert_eq!(parse_range(" 10 - 20 "), Some((10, 20)));
        assert_eq!(parse_range("20-10"), None);
        assert_eq!(parse_range("x"), None);
    }

    #[test]
    fn secrets_differ_and_stay_in_the_alphabet() {
        let a = secret_from("5c3b2a10-1111-4222-8333-123456789abc");
        let b = secret_from("5c3b2a10-1111-4222-8333-123456789abd");
        assert_eq!(a.len(), 20);
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
    }
}
