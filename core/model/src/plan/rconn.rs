//! Resource connections: the properties of the connection between the resources of one
//! definition on two nodes (DRBD net and peer-device options for that pair only).
//!
//! As in LINSTOR, a connection object comes into being the first time its properties are
//! set, and goes with its definition or with either of its two resources.

use super::common::{rd_of, refuse_if_deleting};
use super::{parse_node_name, prop_error, Env, Plan, PlanResult, Reply};
use crate::cluster::{Change, Cluster};
use crate::error::{code, ApiError, ObjKind};
use crate::name::{NodeName, ResourceName};
use crate::objects::{Resource, ResourceConnection};
use crate::props::{PropsChange, PropsOwner, DRBD_OPTIONS_NAMESPACE};

/// The DRBD option sections that can differ per connection.
pub const CONNECTION_SECTIONS: [&str; 2] = ["Net", "PeerDevice"];

fn with_refs(r: Reply, rsc: &ResourceName, a: &NodeName, b: &NodeName) -> Reply {
    r.with_ref("RscDfn", rsc.as_str())
        .with_ref("FirstNode", a.as_str())
        .with_ref("SecondNode", b.as_str())
}

/// The two resources a connection joins, checked: both nodes exist, are different and have
/// a resource of the definition.
fn ends<'a>(
    cluster: &'a Cluster,
    rsc: &ResourceName,
    node_a: &str,
    node_b: &str,
) -> Result<(&'a Resource, &'a Resource), ApiError> {
    let a = parse_node_name(node_a)?;
    let b = parse_node_name(node_b)?;
    if a == b {
        return Err(ApiError::new(
            code::FAIL_INVLD_REQUEST,
            ObjKind::RscConn,
            format!("A resource connection needs two different nodes, '{node_a}' is named twice"),
        )
        .cause("A connection joins the resource on one node with the resource on another node")
        .correction("Name two different nodes that both have the resource"));
    }
    let mut found = Vec::with_capacity(2);
    for (name, given) in [(&a, node_a), (&b, node_b)] {
        if !cluster.nodes.contains_key(name) {
            return Err(ApiError::not_found(
                code::FAIL_NOT_FOUND_NODE,
                ObjKind::Node,
                "node",
                given,
            ));
        }
        let Some(r) = cluster.resource(rsc, name) else {
            return Err(ApiError::new(
                code::FAIL_NOT_FOUND_RSC,
                ObjKind::Rsc,
                format!("Node '{given}' has no resource '{rsc}'"),
            )
            .cause("A resource connection joins two resources of the same definition")
            .correction(format!(
                "Create the resource on node '{given}' first, or name a node that has it"
            )));
        };
        found.push(r);
    }
    Ok((found[0], found[1]))
}

/// DRBD options on a connection must belong to a per-connection section.
fn check_sections(change: &PropsChange) -> Result<(), ApiError> {
    let prefix = format!("{DRBD_OPTIONS_NAMESPACE}/");
    for key in change.set.keys() {
        let Some(rest) = key.strip_prefix(&prefix) else {
            continue;
        };
        let section = rest.split('/').next().unwrap_or("");
        if !CONNECTION_SECTIONS.contains(&section) {
            return Err(ApiError::new(
                code::FAIL_INVLD_PROP,
                ObjKind::RscConn,
                format!("'{key}' cannot be set on a resource connection"),
            )
            .cause("Only DRBD net and peer-device options can differ per connection")
            .correction(format!(
                "Use DrbdOptions/Net/... or DrbdOptions/PeerDevice/... here, and set '{key}' on the resource definition or the resource"
            )));
        }
    }
    Ok(())
}

/// Sets, deletes and deletes namespaces of properties on the connection of `rsc` between
/// `node_a` and `node_b`, creating the connection on first use.
pub fn modify_rsc_conn(
    cluster: &Cluster,
    env: &mut dyn Env,
    rsc: &str,
    node_a: &str,
    node_b: &str,
    change: &PropsChange,
) -> PlanResult {
    let rd = rd_of(cluster, rsc)?;
    refuse_if_deleting(rd)?;
    let (ra, rb) = ends(cluster, &rd.name, node_a, node_b)?;
    for r in [ra, rb] {
        if r.is_deleting() {
            return Err(ApiError::new(
                code::FAIL_IN_USE,
                ObjKind::RscConn,
                format!(
                    "Resource '{}' on node '{}' is being deleted",
                    r.name, r.node
                ),
            )
            .correction("Wait until the deletion has finished; the connection goes with it"));
        }
    }
    check_sections(change)?;
    // Node names as the resources carry them, so that every view spells them alike.
    let (a, b) = ResourceConnection::ordered(ra.node.clone(), rb.node.clone());
    let existing = cluster.connection(&rd.name, &a, &b);
    let mut conn = match existing {
        Some(c) => c.clone(),
        None => ResourceConnection {
            name: rd.name.clone(),
            node_a: a.clone(),
            node_b: b.clone(),
            props: Default::default(),
            flags: Default::default(),
            uuid: env.uuid(),
        },
    };
    conn.props = change
        .apply(PropsOwner::ResourceConnection, &conn.props)
        .map_err(|e| prop_error(ObjKind::RscConn, e))?;
    let mut plan = Plan::new();
    if existing != Some(&conn) {
        plan.change(Change::PutRscConn(conn));
    }
    plan.reply(with_refs(
        Reply::modified(
            ObjKind::RscConn,
            format!(
                "Resource connection between nodes '{a}' and '{b}' of resource '{}' modified.",
                rd.name
            ),
        ),
        &rd.name,
        &a,
        &b,
    ));
    Ok(plan)
}

/// The connection of `rsc` between two nodes, for showing it.
pub fn rsc_conn_of<'a>(
    cluster: &'a Cluster,
    rsc: &str,
    node_a: &str,
    node_b: &str,
) -> Result<&'a ResourceConnection, ApiError> {
    let rd = rd_of(cluster, rsc)?;
    let a = parse_node_name(node_a)?;
    let b = parse_node_name(node_b)?;
    cluster.connection(&rd.name, &a, &b).ok_or_else(|| {
        ApiError::new(
            code::FAIL_NOT_FOUND_RSC_CONN,
            ObjKind::RscConn,
            format!(
                "Resource connection between nodes '{node_a}' and '{node_b}' of resource '{rsc}' not found"
            ),
        )
        .cause("No property was ever set on this connection, or one of its resources is gone")
        .correction("Set a property on the connection to create it (linstor resource-connection set-property)")
    })
}

/// Deletions of the connections of `rsc` (only those joining `node`, when given), for a plan
/// that removes the definition or the resource.
pub fn drop_connections(
    cluster: &Cluster,
    rsc: &ResourceName,
    node: Option<&NodeName>,
) -> Vec<Change> {
    cluster
        .connections_of(rsc)
        .filter(|c| node.is_none_or(|n| c.joins(n)))
        .map(|c| Change::DelRscConn(c.name.clone(), c.node_a.clone(), c.node_b.clone()))
        .collect()
}
