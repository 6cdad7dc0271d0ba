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
    .with_rsc_refs(tb)
}

/// What the tie-breaker of a DRBD definition should do.
pub(super) enum TieBreakerMove {
    Add(Resource),
    Drop(Resource),
}

/// The tie-breaker question of definition `rd` with its `live` resources; `keep` keeps an
/// existing tie-breaker.
pub(super) struct TieBreakerCheck<'a> {
    pub cluster: &'a Cluster,
    pub observed: &'a dyn Observed,
    pub rd: &'a ResourceDefinition,
    pub live: &'a [&'a Resource],
    pub keep: bool,
}

impl TieBreakerCheck<'_> {
    /// Whether the definition needs a tie-breaker added (on a node that can take one) or its
    /// tie-breaker dropped.
    pub fn wanted_move(&self, env: &mut dyn Env) -> Option<TieBreakerMove> {
        // DRBD 8.4 knows no tie-breaker (nor a third node).
        let wants = drbd::auto_tiebreaker_enabled(self.cluster, self.rd)
            && drbd::wants_tiebreaker(self.live)
            && !crate::plan::drbd84::any_drbd8(self.observed, self.live);
        match self.live.iter().find(|r| r.is_tiebreaker()) {
            Some(tb) if !wants && !self.keep => Some(TieBreakerMove::Drop((*tb).clone())),
            None if wants => self.new_tiebreaker(env).map(TieBreakerMove::Add),
            _ => None,
        }
    }

    /// Adds or drops the tie-breaker as the live resources ask.
    pub fn make_move(&self, plan: &mut Plan, env: &mut dyn Env) -> Result<(), ApiError> {
        match self.wanted_move(env) {
            Some(TieBreakerMove::Drop(tb)) => drop_tiebreaker(plan, self.cluster, &tb),
            Some(TieBreakerMove::Add(tb)) => {
                let mut one = vec![tb];
                drbd::assign_resources(self.cluster, self.rd, self.live, &mut one, &[None])?;
                let tb = one.remove(0);
                plan.reply(tiebreaker_reply(&tb));
                plan.change(Change::PutRsc(tb));
            }
            None => {}
        }
        Ok(())
    }

    /// A diskless tie-breaker on a node that can take it, if any.
    fn new_tiebreaker(&self, env: &mut dyn Env) -> Option<Resource> {
        let pool = tb_pool();
        let node = drbd::tiebreaker_node(self.cluster, self.rd, self.live, &pool, &|n| {
            drbd_support(self.observed, n).is_ok()
                && !crate::plan::drbd84::is_drbd8(self.observed, n)
        })?;
        let props: Props = [("StorPoolName".to_string(), pool.to_string())].into();
        let flags = Flags::from([Flag::DrbdDiskless, Flag::TieBreaker]);
        Some(new_resource(env, self.rd, &node, &pool, props, flags))
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
    TieBreakerCheck {
        cluster,
        observed,
        rd,
        live: &live,
        keep,
    }
    .make_move(plan, env)
}
