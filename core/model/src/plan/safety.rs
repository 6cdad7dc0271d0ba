//! Checks that keep data safe, made against what DRBD reports: a resource in use is not taken
//! away from under its user, and the only up-to-date copy of a volume is not deleted while the
//! other replicas are still receiving it (moving a replica is create, wait for the sync,
//! delete; deleting too early would lose the redundancy the move was meant to keep).
//!
//! What DRBD does not report (an offline node, a watcher that has not seen the whole state)
//! blocks nothing by itself: the checks refuse only on what was observed.

use super::Observed;
use crate::cluster::Cluster;
use crate::error::{code, ApiError, ObjKind};
use crate::kinds::LayerKind;
use crate::name::{NodeName, ResourceName};
use crate::objects::{Resource, ResourceDefinition};

/// Whether `rsc` was seen in use on `node` by either witness: the node's last report (a
/// device opened, a Primary) or its DRBD event stream. The two arrive separately, so a
/// check that must not act on a used volume asks both.
pub(crate) fn seen_in_use(observed: &dyn Observed, node: &NodeName, rsc: &ResourceName) -> bool {
    observed.in_use(node, rsc) == Some(true) || drbd_primary(observed, node, rsc)
}

/// Whether DRBD's state on `node` shows `rsc` Primary.
fn drbd_primary(observed: &dyn Observed, node: &NodeName, rsc: &ResourceName) -> bool {
    observed
        .drbd_state(node, rsc)
        .and_then(|d| d.in_use())
        .unwrap_or(false)
}

/// Refuses when `r` is in use (DRBD Primary) on its node.
pub(crate) fn refuse_if_in_use(
    observed: &dyn Observed,
    r: &Resource,
    what: &str,
) -> Result<(), ApiError> {
    if !drbd_primary(observed, &r.node, &r.name) {
        return Ok(());
    }
    Err(ApiError::new(
        code::FAIL_IN_USE,
        ObjKind::Rsc,
        format!(
            "Resource '{}' is in use on node '{}' (DRBD Primary); {what}",
            r.name, r.node
        ),
    )
    .cause("Deleting it would pull the device away from whatever has it open there")
    .correction(format!(
        "Stop what uses it on node '{}' (unmount the filesystem, stop the virtual machine or container), then delete again",
        r.node
    )))
}

/// Checks that deleting resource `r` of `rd` loses neither a user's open device nor the only
/// up-to-date copy of a volume that other replicas are meant to keep.
pub fn check_resource_removal(
    cluster: &Cluster,
    observed: &dyn Observed,
    rd: &ResourceDefinition,
    r: &Resource,
) -> Result<(), ApiError> {
    if !rd.layer_stack.contains(&LayerKind::Drbd) {
        return Ok(());
    }
    refuse_if_in_use(observed, r, "it cannot be deleted now")?;
    check_not_only_copy(cluster, observed, rd, r, "deleted", &[])
}

/// Refuses taking the disk of `r` away (deleting it, or making it diskless: `done` names
/// which) while it holds the only up-to-date copy of a volume other replicas are meant to
/// keep; what DRBD has not reported does not refuse. The replicas on `leaving` nodes go too
/// and do not count as keeping the data.
pub fn check_not_only_copy(
    cluster: &Cluster,
    observed: &dyn Observed,
    rd: &ResourceDefinition,
    r: &Resource,
    done: &str,
    leaving: &[&crate::name::NodeName],
) -> Result<(), ApiError> {
    if r.is_diskless() || !rd.layer_stack.contains(&LayerKind::Drbd) {
        return Ok(());
    }
    let others: Vec<&Resource> = cluster
        .resources_of(&rd.name)
        .filter(|o| o.node != r.node && !o.is_deleting() && !o.is_diskless())
        .filter(|o| !leaving.contains(&&o.node))
        .collect();
    // Deleting the last copy is what the request says; nothing else is meant to hold the data.
    if others.is_empty() {
        return Ok(());
    }
    let Some(mine) = observed.drbd_state(&r.node, &r.name) else {
        return Ok(());
    };
    let mut only_here: Vec<u32> = Vec::new();
    let mut elsewhere: Vec<String> = Vec::new();
    for (nr, v) in &mine.volumes {
        if !v.is_up_to_date() {
            continue;
        }
        let states: Vec<(String, bool)> = others
            .iter()
            .map(|o| match observed.drbd_state(&o.node, &o.name) {
                Some(d) => match d.volumes.get(nr) {
                    Some(ov) => (ov.summary(), ov.is_up_to_date()),
                    None => ("not set up".to_string(), false),
                },
                None if observed.is_online(&o.node) => ("not reported".to_string(), false),
                None => ("unknown, the node is offline".to_string(), false),
            })
            .collect();
        if states.iter().any(|(_, ok)| *ok) {
            continue;
        }
        only_here.push(*nr);
        for (o, (text, _)) in others.iter().zip(states) {
            elsewhere.push(format!("volume {nr} on '{}': {text}", o.node));
        }
    }
    if only_here.is_empty() {
        return Ok(());
    }
    let vols = only_here
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    Err(ApiError::new(
        code::FAIL_NOT_ALL_UPTODATE,
        ObjKind::Rsc,
        format!(
            "Resource '{}' on node '{}' holds the only up-to-date copy of volume {vols}; it cannot be {done} before another replica has the data",
            r.name, r.node
        ),
    )
    .cause(format!("The other replicas: {}", elsewhere.join("; ")))
    .correction(format!(
        "Wait until 'linstor resource-definition wait-sync {}' returns (start the nodes of offline replicas first), then try again",
        r.name
    )))
}

/// Checks that deleting `rd` takes no device away from a user: no resource of it may be in
/// use. (Deleting the definition deletes every copy; that is what the request says.)
pub fn check_definition_removal(
    cluster: &Cluster,
    observed: &dyn Observed,
    rd: &ResourceDefinition,
) -> Result<(), ApiError> {
    if !rd.layer_stack.contains(&LayerKind::Drbd) {
        return Ok(());
    }
    for r in cluster.resources_of(&rd.name).filter(|r| !r.is_deleting()) {
        refuse_if_in_use(
            observed,
            r,
            &format!("resource definition '{}' cannot be deleted now", rd.name),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drbd_state::Role;
    use crate::name::StorPoolName;
    use crate::observed::{Capabilities, DrbdObserved, PoolState};

    /// A node whose report says `reported` and whose DRBD stream says `role`.
    struct Witnesses {
        reported: Option<bool>,
        drbd: Option<DrbdObserved>,
    }

    impl Observed for Witnesses {
        fn is_online(&self, _: &NodeName) -> bool {
            true
        }
        fn capabilities(&self, _: &NodeName) -> Option<&Capabilities> {
            None
        }
        fn pool_state(&self, _: &NodeName, _: &StorPoolName) -> Option<&PoolState> {
            None
        }
        fn drbd_state(&self, _: &NodeName, _: &ResourceName) -> Option<&DrbdObserved> {
            self.drbd.as_ref()
        }
        fn in_use(&self, _: &NodeName, _: &ResourceName) -> Option<bool> {
            self.reported
        }
    }

    #[test]
    fn either_witness_of_use_counts() {
        let (node, rsc) = (
            NodeName::new("alpha").unwrap(),
            ResourceName::new("r1").unwrap(),
        );
        let role = |r| {
            Some(DrbdObserved {
                role: Some(r),
                ..Default::default()
            })
        };
        let cases = [
            (None, None, false),
            (Some(false), role(Role::Secondary), false),
            (Some(true), None, true),
            (Some(true), role(Role::Secondary), true),
            (None, role(Role::Primary), true),
            (Some(false), role(Role::Primary), true),
        ];
        for (reported, drbd, expected) in cases {
            let seen = seen_in_use(
                &Witnesses {
                    reported,
                    drbd: drbd.clone(),
                },
                &node,
                &rsc,
            );
            assert_eq!(seen, expected, "report {reported:?}, DRBD {drbd:?}");
        }
    }
}
