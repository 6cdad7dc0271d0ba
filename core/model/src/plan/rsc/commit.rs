//! The last step of every creation: the layer stack and DRBD numbers of the new resources,
//! the tie-breaker, and the changes and replies that persist them.

use std::collections::BTreeSet;

use super::layers::{unreplicated_warning, Layers};
use super::shared::tb_pool;
use super::tiebreaker::{drop_tiebreaker, tiebreaker_reply, TieBreakerCheck, TieBreakerMove};
use crate::cluster::{Change, Cluster};
use crate::error::{ApiError, ObjKind};
use crate::kinds::LayerKind;
use crate::name::StorPoolName;
use crate::objects::{Resource, ResourceDefinition};
use crate::plan::drbd;
use crate::plan::{Env, Observed, Plan, Reply};

/// Appends the resources (and the definition, when its layer stack or DRBD numbers change)
/// to `plan`. With DRBD, the new resources get their node ids, ports and peer slots, the
/// volume definitions their minors, the definition its secret, and a tie-breaker is added
/// or dropped as the replica count asks.
#[allow(clippy::too_many_arguments)]
pub(super) fn commit_resources(
    plan: &mut Plan,
    cluster: &Cluster,
    env: &mut dyn Env,
    observed: &dyn Observed,
    rd: &ResourceDefinition,
    layers: Layers,
    existing: &[&Resource],
    mut new: Vec<(Resource, StorPoolName)>,
    requested_ids: Vec<Option<i64>>,
) -> Result<(), ApiError> {
    let mut u = rd.clone();
    u.layer_stack = layers.stack;
    u.layers_chosen |= layers.chosen;
    let diskful = existing.iter().filter(|r| !r.is_diskless()).count()
        + new.iter().filter(|(r, _)| !r.is_diskless()).count();
    if !u.layer_stack.contains(&LayerKind::Drbd) && diskful > 1 {
        plan.reply(unreplicated_warning(rd, diskful, &u.layer_stack));
    }
    if u.layer_stack.contains(&LayerKind::Drbd) {
        if u.drbd_secret.is_none() {
            u.drbd_secret = Some(drbd::secret_from(&env.uuid()));
        }
        let mut used = BTreeSet::new();
        for vd in u.volume_definitions.values_mut() {
            if vd.minor.is_none() && !vd.is_deleting() {
                let m = drbd::free_minor(cluster, &used)?;
                used.insert(m);
                vd.minor = Some(m);
            }
        }
        let mut ids = requested_ids;
        ids.resize(new.len(), None);
        let mut live: Vec<&Resource> = existing.to_vec();
        live.extend(new.iter().map(|(r, _)| r));
        let counted: Vec<&Resource> = live
            .iter()
            .copied()
            .filter(|r| !r.is_tiebreaker())
            .collect();
        let on_drbd8 = crate::plan::drbd84::check(cluster, observed, &u, &counted)?;
        let check = TieBreakerCheck {
            cluster,
            observed,
            rd: &u,
            live: &live,
            keep: false,
        };
        match check.wanted_move(env) {
            Some(TieBreakerMove::Add(tb)) => {
                plan.reply(tiebreaker_reply(&tb));
                new.push((tb, tb_pool()));
                ids.push(None);
            }
            Some(TieBreakerMove::Drop(tb)) => drop_tiebreaker(plan, cluster, &tb),
            None => {}
        }
        let mut rscs: Vec<Resource> = new.iter().map(|(r, _)| r.clone()).collect();
        drbd::assign_resources(cluster, &u, existing, &mut rscs, &ids)?;
        for ((r, _), mut assigned) in new.iter_mut().zip(rscs) {
            if on_drbd8 {
                // DRBD 8.4 metadata (v08) has room for exactly one peer.
                assigned.peer_slots = Some(crate::plan::drbd84::PEER_SLOTS);
            }
            *r = assigned;
        }
    }
    if u != *rd {
        plan.change(Change::PutRscDfn(u));
    }
    for (r, pool) in new {
        if !r.is_tiebreaker() {
            plan.reply(created_reply(&r, &pool));
        }
        plan.change(Change::PutRsc(r));
    }
    Ok(())
}

fn created_reply(r: &Resource, pool: &StorPoolName) -> Reply {
    Reply::created(
        ObjKind::Rsc,
        format!(
            "New resource '{}' on node '{}' registered (storage pool '{pool}').",
            r.name, r.node
        ),
    )
    .with_rsc_refs(r)
}
