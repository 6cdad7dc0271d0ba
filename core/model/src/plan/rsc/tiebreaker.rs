//! The diskless tie-breaker of a DRBD definition: added when the replica count asks for one,
//! dropped when it no longer does.

use super::layers::drbd_support;
use super::shared::{live_resources, mark_deleting, new_resource, tb_pool};
use crate::cluster::{Change, Cluster};
use crate::error::{code, ApiError, ObjKind};
use crate::flags::{Flag, Flags};
use crate::kinds::LayerKind;
use crate::objects::{Resource, ResourceDefinition};
use crate::plan::drbd;
use crate::plan::{Env, Observed, Op, Plan, Reply};
use crate::props::Props;

pub(super) fn tiebreaker_reply(tb: &Resource) -> Reply {
    Reply::info(
        Op::Create,
        ObjKind::Rsc,
        code::INFO_TIE_BREAKER_CREATED,
        format!(
            "Tie breaker resource '{}' created on node '{}'",
            tb.name, tb.node
        ),
    )
    .with_ref("RscDfn", tb.name.as_str())
    .with_ref("Node", tb.node.as_str())
}

/// A diskless tie-breaker for `rd` on a node that can take it, if any.
fn new_tiebreaker(
    cluster: &Cluster,
    env: &mut dyn Env,
    observed: &dyn Observed,
    rd: &ResourceDefinition,
    live: &[&Resource],
) -> Option<Resource> {
    let pool = tb_pool();
    let node = drbd::tiebreaker_node(cluster, rd, live, &pool, &|n| {
        drbd_support(observed, n).is_ok() && !crate::plan::drbd84::is_drbd8(observed, n)
    })?;
    let props: Props = [("StorPoolName".to_string(), pool.to_string())].into();
    let flags = Flags::from([Flag::DrbdDiskless, Flag::TieBreaker]);
    Some(new_resource(env, rd, &node, &pool, props, flags))
}

/// What the tie-breaker of a DRBD definition should do.
pub(super) enum TieBreakerMove {
    Add(Resource),
    Drop(Resource),
}

/// Whether a definition with `live` resources needs a tie-breaker added (on a node that can
/// take one) or its tie-breaker dropped; `keep` keeps an existing one.
pub(super) fn tiebreaker_move(
    cluster: &Cluster,
    env: &mut dyn Env,
    observed: &dyn Observed,
    rd: &ResourceDefinition,
    live: &[&Resource],
    keep: bool,
) -> Option<TieBreakerMove> {
    // DRBD 8.4 knows no tie-breaker (nor a third node).
    let wants = drbd::auto_tiebreaker_enabled(cluster, rd)
        && drbd::wants_tiebreaker(live)
        && !crate::plan::drbd84::any_drbd8(observed, live);
    match live.iter().find(|r| r.is_tiebreaker()) {
        Some(tb) if !wants && !keep => Some(TieBreakerMove::Drop((*tb).clone())),
        None if wants => new_tiebreaker(cluster, env, observed, rd, live).map(TieBreakerMove::Add),
        _ => None,
    }
}

pub(super) fn drop_tiebreaker(plan: &mut Plan, cluster: &Cluster, tb: &Resource) {
    plan.change(Change::PutRsc(mark_deleting(cluster, tb)));
    plan.reply(
        Reply::info(
            Op::Delete,
            ObjKind::Rsc,
            code::INFO_TIE_BREAKER_DELETING,
            format!(
                "Tie breaker resource '{}' on node '{}' is no longer needed and is deleted",
                tb.name, tb.node
            ),
        )
        .with_ref("RscDfn", tb.name.as_str()),
    );
}

/// After `gone` stop counting, adds or drops the tie-breaker of `rd` as the rules ask;
/// `keep` keeps an existing tie-breaker.
pub(crate) fn rebalance_tiebreaker(
    plan: &mut Plan,
    cluster: &Cluster,
    env: &mut dyn Env,
    observed: &dyn Observed,
    rd: &ResourceDefinition,
    gone: &[&Resource],
    keep: bool,
) -> Result<(), ApiError> {
    if !rd.layer_stack.contains(&LayerKind::Drbd) || rd.is_deleting() {
        return Ok(());
    }
    let live: Vec<&Resource> = live_resources(cluster, &rd.name)
        .into_iter()
        .filter(|r| !gone.iter().any(|g| g.node == r.node))
        .collect();
    move_tiebreaker(plan, cluster, env, observed, rd, &live, keep)
}

/// Adds or drops the tie-breaker of `rd` as its `live` resources ask.
pub(super) fn move_tiebreaker(
    plan: &mut Plan,
    cluster: &Cluster,
    env: &mut dyn Env,
    observed: &dyn Observed,
    rd: &ResourceDefinition,
    live: &[&Resource],
    keep: bool,
) -> Result<(), ApiError> {
    match tiebreaker_move(cluster, env, observed, rd, live, keep) {
        Some(TieBreakerMove::Drop(tb)) => drop_tiebreaker(plan, cluster, &tb),
        Some(TieBreakerMove::Add(tb)) => {
            let mut one = vec![tb];
            drbd::assign_resources(cluster, rd, live, &mut one, &[None])?;
            let tb = one.remove(0);
            plan.reply(tiebreaker_reply(&tb));
            plan.change(Change::PutRsc(tb));
        }
        None => {}
    }
    Ok(())
}
