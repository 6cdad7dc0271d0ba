//! Small pieces the resource planners share: the resource a request names, the live
//! resources of a definition, a new resource, and the marking of one for deletion.

use crate::cluster::Cluster;
use crate::error::{code, ApiError, ObjKind};
use crate::flags::{Flag, Flags};
use crate::name::{NodeName, ResourceName, StorPoolName};
use crate::objects::{Resource, ResourceDefinition, Volume, DEFAULT_DISKLESS_STOR_POOL};
use crate::plan::common::rd_of;
use crate::plan::{parse_node_name, Env};
use crate::props::Props;

pub(super) fn new_resource(
    env: &mut dyn Env,
    rd: &ResourceDefinition,
    node: &NodeName,
    pool: &StorPoolName,
    props: Props,
    flags: Flags,
) -> Resource {
    let volumes = rd
        .volume_definitions
        .values()
        .filter(|v| !v.is_deleting())
        .map(|v| {
            (
                v.number,
                Volume {
                    number: v.number,
                    storage_pool: pool.clone(),
                    props: Props::new(),
                    flags: Default::default(),
                    uuid: env.uuid(),
                },
            )
        })
        .collect();
    Resource {
        name: rd.name.clone(),
        node: node.clone(),
        props,
        flags,
        volumes,
        node_id: None,
        tcp_port: None,
        peer_slots: None,
        create_timestamp: env.now_ms(),
        delete_generation: None,
        uuid: env.uuid(),
        restored_from: None,
        migrate_from: None,
        cloned_from: None,
    }
}

pub(super) fn live_resources<'a>(cluster: &'a Cluster, rd: &ResourceName) -> Vec<&'a Resource> {
    cluster
        .resources_of(rd)
        .filter(|r| !r.is_deleting())
        .collect()
}

pub(super) fn tb_pool() -> StorPoolName {
    StorPoolName::new(DEFAULT_DISKLESS_STOR_POOL).expect("the default diskless pool name is valid")
}

pub(super) fn mark_deleting(cluster: &Cluster, r: &Resource) -> Resource {
    let mut u = r.clone();
    u.flags.insert(Flag::Delete);
    u.delete_generation = Some(cluster.generation + 1);
    u
}

pub(super) fn rsc_of<'a>(
    cluster: &'a Cluster,
    rsc: &str,
    node: &str,
) -> Result<&'a Resource, ApiError> {
    let rd = rd_of(cluster, rsc)?;
    let node_name = parse_node_name(node)?;
    cluster.resource(&rd.name, &node_name).ok_or_else(|| {
        ApiError::not_found(
            code::FAIL_NOT_FOUND_RSC,
            ObjKind::Rsc,
            "resource",
            &format!("{rsc}' on node '{node}"),
        )
    })
}
