//! Cloning a resource definition: from pools with snapshots, a snapshot of the source (every
//! replica's copy of the same moment), the clone made from it in one transaction, then the
//! snapshot dropped where the clone does not depend on it (ZFS clones keep their origin
//! snapshot); from other pools, the clone made in one transaction with each node copying its
//! replica of the (unused) source.

use std::sync::Arc;

use strata_model::kinds::ProviderKind;
use strata_model::plan;
use strata_model::plan::clone::{self as pclone, CloneRequest};
use strata_model::plan::snapshot::SnapshotCreate;
use strata_model::{ApiError, Cluster, ResourceName};

use crate::core::{Answer, Core};
use crate::env::RealEnv;

/// How a clone of a definition stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloneStatus {
    Cloning,
    Failed,
    Complete,
}

impl CloneStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CloneStatus::Cloning => "CLONING",
            CloneStatus::Failed => "FAILED",
            CloneStatus::Complete => "COMPLETE",
        }
    }
}

impl Core {
    /// Clones `src` as `req` asks; answers the clone's name and the replies.
    pub async fn clone_rd(
        self: &Arc<Self>,
        src: String,
        req: CloneRequest,
    ) -> Result<(ResourceName, Answer), ApiError> {
        let (dst, by_snapshot) = {
            let cluster = self.cluster();
            let mut env = RealEnv;
            let dst = pclone::check(&cluster, &mut env, &src, &req)?.name;
            (dst, pclone::by_snapshot(&cluster, &src)?)
        };
        if !by_snapshot {
            let (s, q) = (src.clone(), req.clone());
            let made = self
                .mutate(move |c, env, o| pclone::create_copy(c, env, o, &s, &q))
                .await?;
            return Ok((dst, made));
        }
        let snap = pclone::snapshot_name(&dst);
        let taken = self
            .take_snapshot(
                src.clone(),
                SnapshotCreate {
                    name: snap.clone(),
                    nodes: Vec::new(),
                },
            )
            .await?;
        if taken.has_errors() {
            return Ok((dst, taken));
        }
        let (s, n, q) = (src.clone(), snap.clone(), req.clone());
        let made = self
            .mutate(move |c, env, o| pclone::create(c, env, o, &s, &n, &q))
            .await;
        let keep = {
            let cluster = self.cluster();
            made.is_ok() && needs_origin(&cluster, &src, &snap)
        };
        if !keep {
            let (s, n) = (src.clone(), snap.clone());
            if let Err(e) = self
                .mutate(move |c, _, _| plan::snapshot::delete(c, &s, &n))
                .await
            {
                tracing::warn!(source = %src, snapshot = %snap, "the clone's snapshot could not be deleted: {}", e.message);
            }
        }
        Ok((dst, made?))
    }

    /// How the clone `dst` of `src` stands; `None` when `dst` is not a clone of `src`.
    pub fn clone_status(&self, src: &str, dst: &str) -> Option<CloneStatus> {
        let cluster = self.cluster();
        let src = ResourceName::new(src).ok()?;
        let dst = ResourceName::new(dst).ok()?;
        let rscs: Vec<_> = cluster.resources_of(&dst).collect();
        if rscs.is_empty()
            || !rscs.iter().any(|r| {
                r.restored_from.as_ref().is_some_and(|f| f.rsc_name == src)
                    || r.cloned_from.as_ref() == Some(&src)
            })
        {
            return None;
        }
        // Same lock order as planning: cluster, then observed.
        let observed = self.observed();
        let mut status = CloneStatus::Complete;
        for r in rscs.iter().filter(|r| !r.is_diskless()) {
            match observed.resource(&r.node, dst.as_str()) {
                Some(st) if st.volumes.iter().any(|v| v.error.is_some()) => {
                    return Some(CloneStatus::Failed)
                }
                Some(st) if st.volumes.len() >= r.volumes.len() => {}
                _ => status = CloneStatus::Cloning,
            }
        }
        Some(status)
    }
}

/// Whether copies made from snapshot `snap` of `src` depend on it (ZFS clones do).
fn needs_origin(cluster: &Cluster, src: &str, snap: &str) -> bool {
    let Ok(s) = plan::snapshot::snapshot_of(cluster, src, snap) else {
        return false;
    };
    s.nodes.iter().any(|n| {
        n.volumes.iter().any(|v| {
            cluster
                .stor_pool(&n.node, &v.storage_pool)
                .is_some_and(|sp| matches!(sp.kind, ProviderKind::Zfs | ProviderKind::ZfsThin))
        })
    })
}
