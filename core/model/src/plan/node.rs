//! Nodes, their network interfaces, and controller properties.

use std::net::IpAddr;

use super::{
    parse_netif_name, parse_node_name, parse_pool_name, prop_error, Env, Op, Plan, PlanResult,
    Reply,
};
use crate::cluster::{Change, Cluster};
use crate::error::{code, ApiError, ObjKind};
use crate::kinds::{EncryptionType, NodeType, ProviderKind};
use crate::objects::{
    NetInterface, Node, StorPool, StorPoolDefinition, DEFAULT_DISKLESS_STOR_POOL, DEFAULT_NETIF,
    DEFAULT_SATELLITE_PORT,
};
use crate::props::{Props, PropsChange, PropsOwner};
use crate::security::{JoinToken, SecurityRecord};

#[derive(Debug, Clone, Default)]
pub struct NetIfCreate {
    pub name: String,
    pub address: String,
    pub satellite_port: Option<i64>,
    pub encryption: Option<String>,
    pub is_active: Option<bool>,
}

#[derive(Debug, Clone, Default)]
pub struct NodeCreate {
    pub name: String,
    pub node_type: Option<String>,
    pub net_interfaces: Vec<NetIfCreate>,
    pub props: Props,
    /// The one-time token the node's satellite joins with; `None`: the node gets none (it
    /// must be given one before its first connection).
    pub join_token: Option<String>,
    /// Whether the client chose the token (else the controller made it, and the answer
    /// tells it).
    pub join_token_given: bool,
    /// How long the token is accepted.
    pub join_token_ttl_ms: u64,
}

fn parse_port(port: i64, object: ObjKind) -> Result<u16, ApiError> {
    if !(1..=65535).contains(&port) {
        return Err(ApiError::new(
            code::FAIL_INVLD_NET_PORT,
            object,
            format!("Invalid satellite port {port}"),
        )
        .correction("Use a TCP port from 1 to 65535 (the satellite default is 3366)"));
    }
    Ok(port as u16)
}

fn build_netif(
    req: &NetIfCreate,
    env: &mut dyn Env,
    only_one: bool,
) -> Result<NetInterface, ApiError> {
    let name = parse_netif_name(if req.name.is_empty() {
        DEFAULT_NETIF
    } else {
        &req.name
    })?;
    let address = req.address.trim();
    let ip: IpAddr = address.parse().map_err(|_| {
        ApiError::new(
            code::FAIL_INVLD_NET_ADDR,
            ObjKind::NetIf,
            format!("Invalid IP address '{address}'"),
        )
        .correction("Give an IPv4 or IPv6 address, e.g. 192.0.2.10")
    })?;
    let encryption = match &req.encryption {
        Some(e) if !e.is_empty() => Some(e.parse::<EncryptionType>().map_err(|err| {
            ApiError::new(
                code::FAIL_INVLD_ENCRYPT_TYPE,
                ObjKind::NetIf,
                format!("Invalid satellite encryption type '{e}'"),
            )
            .cause(err)
        })?),
        _ => None,
    };
    let mut port = match req.satellite_port {
        Some(p) => Some(parse_port(p, ObjKind::NetIf)?),
        None => None,
    };
    let mut enc = encryption;
    if only_one && port.is_none() {
        port = Some(DEFAULT_SATELLITE_PORT);
    }
    if port.is_some() && enc.is_none() {
        enc = Some(EncryptionType::Ssl);
    }
    Ok(NetInterface {
        name,
        address: ip.to_string(),
        satellite_port: port,
        encryption: enc,
        is_active: req.is_active.unwrap_or(port.is_some()),
        uuid: env.uuid(),
    })
}

/// A warning when another node's satellite already listens on the same address and port.
/// LINSTOR allows it (test set-ups and NAT put several nodes behind one address), and so do
/// we; where it is a mistake, both nodes reach the same satellite, which then refuses the
/// second node's configuration as belonging to another node.
fn shared_endpoint_warning(
    cluster: &Cluster,
    except: Option<&crate::name::NodeName>,
    nif: &NetInterface,
) -> Option<Reply> {
    let port = nif.satellite_port?;
    let (node, other) = cluster
        .nodes
        .values()
        .filter(|node| Some(&node.name) != except)
        .find_map(|node| {
            node.net_interfaces
                .iter()
                .find(|o| o.address == nif.address && o.satellite_port == Some(port))
                .map(|o| (node, o))
        })?;
    Some(
        Reply::warning(
            Op::Create,
            ObjKind::NetIf,
            code::WARN_INVLD_CONF,
            format!(
                "The satellite address {}:{port} is also used by node '{}' (interface '{}')",
                nif.address, node.name, other.name
            ),
        )
        .with_cause("Two nodes share one satellite endpoint; that is right only behind NAT or a port forward that tells them apart")
        .with_correction("Give each satellite its own address or port unless this is intended"),
    )
}

/// The node property naming the interface the controller reaches the satellite through.
pub const PROP_CUR_STLT_CONN_NAME: &str = "CurStltConnName";

/// Points `CurStltConnName` at the interface the controller connects through now.
fn follow_conn_name(node: &mut Node) {
    if let Some(nif) = node.satellite_interface() {
        let name = nif.name.to_string();
        node.props.insert(PROP_CUR_STLT_CONN_NAME.into(), name);
    }
}

/// The interfaces of a new node, with warnings about endpoints other nodes use too.
fn new_netifs(
    cluster: &Cluster,
    env: &mut dyn Env,
    req: &NodeCreate,
    name: &crate::name::NodeName,
) -> Result<(Vec<NetInterface>, Vec<Reply>), ApiError> {
    if req.net_interfaces.is_empty() {
        return Err(ApiError::new(
            code::FAIL_INVLD_NET_ADDR,
            ObjKind::Node,
            format!("Node '{name}' has no network interface"),
        )
        .correction("Give the node an IP address the controller can reach its satellite on"));
    }
    let only_one = req.net_interfaces.len() == 1;
    let mut nifs: Vec<NetInterface> = Vec::new();
    let mut warnings: Vec<Reply> = Vec::new();
    for r in &req.net_interfaces {
        let nif = build_netif(r, env, only_one)?;
        if nifs.iter().any(|n| n.name == nif.name) {
            return Err(ApiError::new(
                code::FAIL_EXISTS_NET_IF,
                ObjKind::NetIf,
                format!("Network interface '{}' is given twice", nif.name),
            ));
        }
        warnings.extend(shared_endpoint_warning(cluster, None, &nif));
        nifs.push(nif);
    }
    Ok((nifs, warnings))
}

pub fn create_node(cluster: &Cluster, env: &mut dyn Env, req: &NodeCreate) -> PlanResult {
    let name = parse_node_name(&req.name)?;
    if let Some(existing) = cluster.nodes.get(&name) {
        return Err(ApiError::new(
            code::FAIL_EXISTS_NODE,
            ObjKind::Node,
            format!("Node '{}' already exists", existing.name),
        )
        .correction("Choose another name, or delete the existing node first"));
    }
    let node_type = match req.node_type.as_deref() {
        None | Some("") => NodeType::Satellite,
        Some(t) => t.parse::<NodeType>().map_err(|e| {
            ApiError::new(
                code::FAIL_INVLD_NODE_TYPE,
                ObjKind::Node,
                format!("Invalid node type '{t}'"),
            )
            .cause(e)
        })?,
    };
    let (nifs, warnings) = new_netifs(cluster, env, req, &name)?;
    if node_type.hosts_storage() && !nifs.iter().any(|n| n.satellite_port.is_some()) {
        return Err(ApiError::new(
            code::FAIL_INVLD_NET_PORT,
            ObjKind::Node,
            format!("No network interface of node '{name}' names a satellite port"),
        )
        .correction("Give one interface a satellite port (default 3366)"));
    }
    let change = PropsChange {
        set: req.props.clone(),
        ..Default::default()
    };
    let props = change
        .apply(PropsOwner::Node, &Props::new())
        .map_err(|e| prop_error(ObjKind::Node, e))?;

    let mut node = Node {
        name: name.clone(),
        node_type,
        props,
        flags: Default::default(),
        net_interfaces: nifs,
        uuid: env.uuid(),
    };
    follow_conn_name(&mut node);
    let plain = node
        .satellite_interface()
        .is_some_and(|n| n.encryption == Some(EncryptionType::Plain));
    let mut plan = Plan::new();
    plan.change(Change::PutNode(node));
    let mut told = Plan::new();
    if let Some(token) = &req.join_token {
        join_token_changes(
            &mut told,
            env,
            &name,
            token,
            req.join_token_given,
            req.join_token_ttl_ms,
        )?;
        plan.changes.append(&mut told.changes);
    }
    if node_type.hosts_storage() {
        let pool_name = parse_pool_name(DEFAULT_DISKLESS_STOR_POOL)?;
        if !cluster.stor_pool_dfns.contains_key(&pool_name) {
            plan.change(Change::PutStorPoolDfn(StorPoolDefinition {
                name: pool_name.clone(),
                props: Props::new(),
                uuid: env.uuid(),
            }));
        }
        plan.change(Change::PutStorPool(StorPool {
            node: name.clone(),
            name: pool_name,
            kind: ProviderKind::Diskless,
            props: Props::new(),
            free_space_mgr_name: None,
            external_locking: false,
            uuid: env.uuid(),
        }));
    }
    plan.reply(
        Reply::created(ObjKind::Node, format!("New node '{name}' registered."))
            .with_ref("Node", name.as_str()),
    );
    for w in warnings {
        plan.reply(w);
    }
    // What the controller made is told; a token the client gave is not repeated.
    if !req.join_token_given {
        for r in told.replies {
            plan.reply(r);
        }
    }
    if plain {
        plan.reply(plain_info(&name));
    }
    Ok(plan)
}

/// Gives an existing node a new one-time join token (`given`: chosen by the client, else made
/// by the controller and told in the answer).
pub fn set_join_token(
    cluster: &Cluster,
    env: &mut dyn Env,
    node: &str,
    token: &str,
    given: bool,
    ttl_ms: u64,
) -> PlanResult {
    let name = parse_node_name(node)?;
    if !cluster.nodes.contains_key(&name) {
        return Err(ApiError::not_found(
            code::FAIL_NOT_FOUND_NODE,
            ObjKind::Node,
            "node",
            node,
        ));
    }
    let mut plan = Plan::new();
    join_token_changes(&mut plan, env, &name, token, given, ttl_ms)?;
    Ok(plan)
}

/// The join token record of `name`, and the answer that tells a token the controller made.
fn join_token_changes(
    plan: &mut Plan,
    env: &mut dyn Env,
    name: &crate::name::NodeName,
    token: &str,
    given: bool,
    ttl_ms: u64,
) -> Result<(), ApiError> {
    if !valid_join_token(token) {
        return Err(ApiError::new(
            code::FAIL_INVLD_NODE_NAME,
            ObjKind::Node,
            "The join token is not a token",
        )
        .cause("A join token has 16 to 256 printable characters and no spaces")
        .correction("Give the token the satellite wrote into <state dir>/tls/join-token, or leave it out and the controller makes one"));
    }
    plan.change(Change::PutSecurity(SecurityRecord::JoinToken(JoinToken {
        node: name.clone(),
        secret: token.to_string(),
        expires_at_ms: (env.now_ms().max(0) as u64).saturating_add(ttl_ms),
    })));
    if given {
        plan.reply(Reply::modified(
            ObjKind::Node,
            format!("Node '{name}' joins the cluster with the token given"),
        ));
    } else {
        plan.reply(
            Reply::info(
                Op::Create,
                ObjKind::Node,
                0,
                format!("Node '{name}' joins the cluster with the one-time token {token}"),
            )
            .with_cause("The controller and the satellite trust each other only after this join")
            .with_correction(format!("Give the token to the satellite of '{name}': write it into its <state dir>/tls/join-token (/var/lib/linstor-satellite/tls/join-token), or start it with --join-token {token}"))
            .with_ref("JoinToken", token),
        );
    }
    Ok(())
}

/// What a node created PLAIN is told: the LINSTOR clients' default, and harmless, since a
/// satellite in TLS mode is joined over TLS whatever the node says.
fn plain_info(name: &crate::name::NodeName) -> Reply {
    Reply::info(
        Op::Create,
        ObjKind::NetIf,
        0,
        format!("Node '{name}' asks for PLAIN: it is joined over TLS (and shown as SSL) unless its satellite runs with [netcom] type = \"plain\""),
    )
}

/// Whether `token` can be a join token.
pub fn valid_join_token(token: &str) -> bool {
    (16..=256).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_graphic())
}

/// What goes with a node that leaves: its join token, and its certificate, which is revoked.
fn forget_trust(
    cluster: &Cluster,
    name: &crate::name::NodeName,
    now_ms: i64,
    why: &str,
    plan: &mut Plan,
) {
    let join = crate::security::join_token_key(name);
    if cluster.security.contains_key(&join) {
        plan.change(Change::DelSecurity(join));
    }
    let key = crate::security::node_cert_key(name);
    if let Some(SecurityRecord::NodeCert(c)) = cluster.security.get(&key) {
        plan.change(Change::DelSecurity(key));
        plan.change(Change::PutSecurity(SecurityRecord::Revoked(
            crate::security::RevokedCert {
                serial: c.serial.clone(),
                node: name.clone(),
                revoked_at_ms: now_ms.max(0) as u64,
                reason: why.to_string(),
            },
        )));
    }
}

pub fn modify_node(
    cluster: &Cluster,
    node: &str,
    node_type: Option<&str>,
    props: &PropsChange,
) -> PlanResult {
    let name = parse_node_name(node)?;
    let Some(existing) = cluster.nodes.get(&name) else {
        return Err(ApiError::not_found(
            code::FAIL_NOT_FOUND_NODE,
            ObjKind::Node,
            "node",
            node,
        ));
    };
    let mut updated = existing.clone();
    if let Some(t) = node_type.filter(|t| !t.is_empty()) {
        let nt = t.parse::<NodeType>().map_err(|e| {
            ApiError::new(
                code::FAIL_INVLD_NODE_TYPE,
                ObjKind::Node,
                format!("Invalid node type '{t}'"),
            )
            .cause(e)
        })?;
        if !nt.hosts_storage() && cluster.resources_on(&name).next().is_some() {
            return Err(ApiError::new(
                code::FAIL_IN_USE,
                ObjKind::Node,
                format!("Node '{name}' has resources and cannot become a {nt} node"),
            ));
        }
        updated.node_type = nt;
    }
    updated.props = props
        .apply(PropsOwner::Node, &existing.props)
        .map_err(|e| prop_error(ObjKind::Node, e))?;
    let mut plan = Plan::new();
    plan.change(Change::PutNode(updated));
    plan.reply(
        Reply::modified(ObjKind::Node, format!("Node '{name}' modified."))
            .with_ref("Node", name.as_str()),
    );
    Ok(plan)
}

pub fn delete_node(cluster: &Cluster, node: &str, now_ms: i64) -> PlanResult {
    let name = parse_node_name(node)?;
    let Some(existing) = cluster.nodes.get(&name) else {
        return Ok(Plan::only(
            Reply::warning(
                Op::Delete,
                ObjKind::Node,
                code::WARN_NOT_FOUND,
                format!("Node '{node}' not found; nothing to delete."),
            )
            .with_ref("Node", node),
        ));
    };
    let in_use: Vec<String> = cluster
        .resources_on(&name)
        .map(|r| r.name.to_string())
        .collect();
    if !in_use.is_empty() {
        return Err(ApiError::new(
            code::FAIL_IN_USE,
            ObjKind::Node,
            format!(
                "Node '{}' still has {} resource(s) and cannot be deleted",
                existing.name,
                in_use.len()
            ),
        )
        .cause(format!("Resources on the node: {}", in_use.join(", ")))
        .correction(
            "Delete or move the resources first (linstor resource delete <node> <resource>)",
        ));
    }
    let mut plan = Plan::new();
    for pool in cluster.pools_on(&name) {
        plan.change(Change::DelStorPool(name.clone(), pool.name.clone()));
    }
    forget_trust(cluster, &name, now_ms, "node deleted", &mut plan);
    plan.change(Change::DelNode(name.clone()));
    plan.reply(
        Reply::deleted(ObjKind::Node, format!("Node '{}' deleted.", existing.name))
            .with_ref("Node", existing.name.as_str()),
    );
    Ok(plan)
}

fn node_of<'a>(cluster: &'a Cluster, node: &str) -> Result<&'a Node, ApiError> {
    let name = parse_node_name(node)?;
    cluster
        .nodes
        .get(&name)
        .ok_or_else(|| ApiError::not_found(code::FAIL_NOT_FOUND_NODE, ObjKind::Node, "node", node))
}

pub fn create_netif(
    cluster: &Cluster,
    env: &mut dyn Env,
    node: &str,
    req: &NetIfCreate,
) -> PlanResult {
    let existing = node_of(cluster, node)?;
    let nif = build_netif(req, env, false)?;
    if existing.net_interface(&nif.name).is_some() {
        return Err(ApiError::new(
            code::FAIL_EXISTS_NET_IF,
            ObjKind::NetIf,
            format!(
                "Node '{}' already has a network interface '{}'",
                existing.name, nif.name
            ),
        ));
    }
    let shared = shared_endpoint_warning(cluster, Some(&existing.name), &nif);
    let mut updated = existing.clone();
    if nif.is_active && nif.satellite_port.is_some() {
        for other in &mut updated.net_interfaces {
            other.is_active = false;
        }
    }
    let reply = Reply::created(
        ObjKind::NetIf,
        format!(
            "Network interface '{}' created on node '{}'.",
            nif.name, existing.name
        ),
    )
    .with_ref("Node", existing.name.as_str())
    .with_ref("NetIf", nif.name.as_str());
    updated.net_interfaces.push(nif);
    let mut plan = Plan::new();
    follow_conn_name(&mut updated);
    plan.change(Change::PutNode(updated));
    plan.reply(reply);
    if let Some(w) = shared {
        plan.reply(w);
    }
    Ok(plan)
}

pub fn modify_netif(
    cluster: &Cluster,
    env: &mut dyn Env,
    node: &str,
    netif: &str,
    req: &NetIfCreate,
) -> PlanResult {
    let existing = node_of(cluster, node)?;
    let nif_name = parse_netif_name(netif)?;
    let Some(pos) = existing
        .net_interfaces
        .iter()
        .position(|n| n.name == nif_name)
    else {
        return Err(ApiError::not_found(
            code::FAIL_NOT_FOUND_NET_IF,
            ObjKind::NetIf,
            "network interface",
            netif,
        ));
    };
    let old = &existing.net_interfaces[pos];
    let merged = NetIfCreate {
        name: old.name.to_string(),
        address: if req.address.is_empty() {
            old.address.clone()
        } else {
            req.address.clone()
        },
        satellite_port: req.satellite_port.or(old.satellite_port.map(i64::from)),
        encryption: req
            .encryption
            .clone()
            .or(old.encryption.map(|e| e.as_str().to_string())),
        is_active: req.is_active.or(Some(old.is_active)),
    };
    let mut nif = build_netif(&merged, env, false)?;
    nif.uuid = old.uuid.clone();
    let shared = shared_endpoint_warning(cluster, Some(&existing.name), &nif);
    let mut updated = existing.clone();
    if nif.is_active {
        for other in &mut updated.net_interfaces {
            other.is_active = false;
        }
    }
    updated.net_interfaces[pos] = nif;
    let mut plan = Plan::new();
    follow_conn_name(&mut updated);
    plan.change(Change::PutNode(updated));
    plan.reply(
        Reply::modified(
            ObjKind::NetIf,
            format!(
                "Network interface '{nif_name}' on node '{}' modified.",
                existing.name
            ),
        )
        .with_ref("Node", existing.name.as_str()),
    );
    if let Some(w) = shared {
        plan.reply(w);
    }
    Ok(plan)
}

pub fn delete_netif(cluster: &Cluster, node: &str, netif: &str) -> PlanResult {
    let existing = node_of(cluster, node)?;
    let nif_name = parse_netif_name(netif)?;
    let Some(pos) = existing
        .net_interfaces
        .iter()
        .position(|n| n.name == nif_name)
    else {
        return Ok(Plan::only(Reply::warning(
            Op::Delete,
            ObjKind::NetIf,
            code::WARN_NOT_FOUND,
            format!(
                "Network interface '{netif}' not found on node '{}'; nothing to delete.",
                existing.name
            ),
        )));
    };
    if existing.net_interfaces.len() == 1 {
        return Err(ApiError::new(
            code::FAIL_IN_USE,
            ObjKind::NetIf,
            format!(
                "'{nif_name}' is the only network interface of node '{}'",
                existing.name
            ),
        )
        .correction("Create another interface first, or delete the node"));
    }
    let nif = &existing.net_interfaces[pos];
    if existing
        .satellite_interface()
        .is_some_and(|s| s.name == nif.name)
    {
        return Err(ApiError::new(
            code::FAIL_IN_USE,
            ObjKind::NetIf,
            format!(
                "'{nif_name}' carries the satellite connection of node '{}'",
                existing.name
            ),
        )
        .correction("Make another interface the active satellite connection first"));
    }
    let mut updated = existing.clone();
    updated.net_interfaces.remove(pos);
    let mut plan = Plan::new();
    follow_conn_name(&mut updated);
    plan.change(Change::PutNode(updated));
    plan.reply(Reply::deleted(
        ObjKind::NetIf,
        format!(
            "Network interface '{nif_name}' of node '{}' deleted.",
            existing.name
        ),
    ));
    Ok(plan)
}

pub fn modify_ctrl_props(cluster: &Cluster, change: &PropsChange) -> PlanResult {
    let props = change
        .apply(PropsOwner::Controller, &cluster.ctrl_props)
        .map_err(|e| prop_error(ObjKind::CtrlConf, e))?;
    let mut plan = Plan::new();
    plan.change(Change::CtrlProps(props));
    for r in super::drbd_option_replies(ObjKind::CtrlConf, change) {
        plan.reply(r);
    }
    plan.reply(Reply::modified(
        ObjKind::CtrlConf,
        "Controller properties applied.",
    ));
    Ok(plan)
}

/// `node lost`: removes a node that will never come back, with everything it had, without
/// its satellite. Deletions that waited only for it finish: definitions without other
/// resources, and the node's snapshot copies (a snapshot without copies left goes).
pub fn lose_node(c: &Cluster, node: &str, now_ms: i64) -> PlanResult {
    let name = parse_node_name(node)?;
    let Some(n) = c.nodes.get(&name) else {
        return Err(ApiError::not_found(
            code::FAIL_NOT_FOUND_NODE,
            ObjKind::Node,
            "node",
            node,
        ));
    };
    let mut p = Plan::new();
    for r in c.resources_on(&name) {
        p.changes
            .extend(super::rconn::drop_connections(c, &r.name, Some(&name)));
        p.change(Change::DelRsc(r.name.clone(), name.clone()));
    }
    for r in c.resources_on(&name) {
        if let Some(rd) = c.rsc_dfns.get(&r.name) {
            let others = c.resources_of(&rd.name).any(|o| o.node != name);
            if rd.is_deleting() && !others {
                p.change(Change::DelRscDfn(rd.name.clone()));
            }
        }
    }
    for s in c.snapshots.values().flat_map(|m| m.values()) {
        if s.on(&name).is_none() {
            continue;
        }
        let mut u = s.clone();
        u.nodes.retain(|x| x.node != name);
        p.change(if u.nodes.is_empty() {
            Change::DelSnapshot(s.rsc_name.clone(), s.name.clone())
        } else {
            Change::PutSnapshot(u)
        });
    }
    for sp in c.pools_on(&name) {
        p.change(Change::DelStorPool(name.clone(), sp.name.clone()));
    }
    forget_trust(c, &name, now_ms, "node lost", &mut p);
    p.change(Change::DelNode(name.clone()));
    p.reply(
        Reply::deleted(
            ObjKind::Node,
            format!("Node '{}' and its resources removed as lost.", n.name),
        )
        .with_ref("Node", n.name.as_str()),
    );
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::super::testenv::{commit, TestEnv};
    use super::*;

    fn nif(addr: &str, port: Option<i64>) -> NetIfCreate {
        NetIfCreate {
            name: "default".into(),
            address: addr.into(),
            satellite_port: port,
            ..Default::default()
        }
    }

    fn node_req(name: &str, addr: &str) -> NodeCreate {
        NodeCreate {
            name: name.into(),
            node_type: Some("Satellite".into()),
            net_interfaces: vec![nif(addr, None)],
            props: Props::new(),
            ..Default::default()
        }
    }

    #[test]
    fn a_node_keeps_its_join_token_until_it_leaves_and_its_certificate_is_revoked_then() {
        use crate::security::{join_token_key, node_cert_key, NodeCert};
        let mut c = Cluster::default();
        let mut env = TestEnv(0);
        let mut req = node_req("alpha", "10.0.0.1");
        req.join_token = Some("short".into());
        let e = create_node(&c, &mut env, &req).unwrap_err();
        assert!(e.message.contains("join token"), "{}", e.message);
        assert!(c.nodes.is_empty());
        req.join_token = Some("0123456789abcdef0123".into());
        req.join_token_ttl_ms = 1000;
        let plan = create_node(&c, &mut env, &req).unwrap();
        // Made by the controller (not given): the answer tells it.
        assert!(plan.replies.iter().any(
            |r| r.obj_refs.get("JoinToken").map(String::as_str) == Some("0123456789abcdef0123")
        ));
        commit(&mut c, &plan);
        let name: crate::name::NodeName = "alpha".parse().unwrap();
        match c.security.get(&join_token_key(&name)) {
            Some(SecurityRecord::JoinToken(t)) => {
                assert_eq!(t.secret, "0123456789abcdef0123");
                assert_eq!(t.expires_at_ms, env.now_ms() as u64 + 1000);
            }
            other => panic!("{other:?}"),
        }
        // Joined: the certificate is known, the token gone.
        c.apply(Change::DelSecurity(join_token_key(&name)));
        c.apply(Change::PutSecurity(SecurityRecord::NodeCert(NodeCert {
            node: name.clone(),
            serial: "abc".into(),
            fingerprint: "f".into(),
            not_after_ms: 1,
            spki: "00".into(),
        })));
        let plan = delete_node(&c, "alpha", 77).unwrap();
        commit(&mut c, &plan);
        assert!(!c.security.contains_key(&node_cert_key(&name)));
        match c.security.get(&crate::security::revoked_key("abc")) {
            Some(SecurityRecord::Revoked(r)) => {
                assert_eq!(r.revoked_at_ms, 77);
                assert_eq!(r.reason, "node deleted");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn create_registers_node_and_diskless_pool() {
        let mut c = Cluster::default();
        let mut env = TestEnv(0);
        let plan = create_node(&c, &mut env, &node_req("alpha", "10.0.0.1")).unwrap();
        commit(&mut c, &plan);
        let n = c.nodes.values().next().unwrap();
        assert_eq!(n.node_type, NodeType::Satellite);
        assert_eq!(n.net_interfaces[0].satellite_port, Some(3366));
        // TLS unless the client asks for PLAIN.
        assert_eq!(n.net_interfaces[0].encryption, Some(EncryptionType::Ssl));
        assert_eq!(c.pools_on(&n.name).count(), 1);
        assert_eq!(plan.replies[0].obj_refs["Node"], "alpha");
        assert_eq!(
            n.props.get(PROP_CUR_STLT_CONN_NAME).map(String::as_str),
            Some("default")
        );
        assert!(plan
            .replies
            .iter()
            .all(|r| r.severity != crate::plan::Severity::Warning));
    }

    #[test]
    fn duplicates_and_bad_input_change_nothing() {
        let mut c = Cluster::default();
        let mut env = TestEnv(0);
        let plan = create_node(&c, &mut env, &node_req("alpha", "10.0.0.1")).unwrap();
        commit(&mut c, &plan);
        let e = create_node(&c, &mut env, &node_req("ALPHA", "10.0.0.2")).unwrap_err();
        assert_eq!(e.code, code::FAIL_EXISTS_NODE);
        // A second node on the same address and port is accepted, with a warning.
        let shared = create_node(&c, &mut env, &node_req("beta", "10.0.0.1")).unwrap();
        let w = shared
            .replies
            .iter()
            .find(|r| r.severity == crate::plan::Severity::Warning)
            .expect("a warning about the shared endpoint");
        assert!(w.message.contains("10.0.0.1:3366"), "{}", w.message);
        assert!(w.message.contains("'alpha'"), "{}", w.message);
        let e = create_node(&c, &mut env, &node_req("be ta", "10.0.0.3")).unwrap_err();
        assert_eq!(e.code, code::FAIL_INVLD_NODE_NAME);
        let e = create_node(&c, &mut env, &node_req("gamma", "not-an-ip")).unwrap_err();
        assert_eq!(e.code, code::FAIL_INVLD_NET_ADDR);
        let mut bad_port = node_req("delta", "10.0.0.4");
        bad_port.net_interfaces[0].satellite_port = Some(70000);
        assert_eq!(
            create_node(&c, &mut env, &bad_port).unwrap_err().code,
            code::FAIL_INVLD_NET_PORT
        );
        let mut bad_type = node_req("delta", "10.0.0.4");
        bad_type.node_type = Some("Toaster".into());
        assert_eq!(
            create_node(&c, &mut env, &bad_type).unwrap_err().code,
            code::FAIL_INVLD_NODE_TYPE
        );
        assert_eq!(c.nodes.len(), 1);
    }

    #[test]
    fn delete_missing_node_warns() {
        let c = Cluster::default();
        let plan = delete_node(&c, "ghost", 0).unwrap();
        assert!(plan.changes.is_empty());
        assert_eq!(plan.replies[0].code, code::WARN_NOT_FOUND);
    }

    #[test]
    fn netif_lifecycle() {
        let mut c = Cluster::default();
        let mut env = TestEnv(0);
        let p = create_node(&c, &mut env, &node_req("alpha", "10.0.0.1")).unwrap();
        commit(&mut c, &p);
        let p = create_netif(
            &c,
            &mut env,
            "alpha",
            &NetIfCreate {
                name: "data".into(),
                address: "10.1.0.1".into(),
                ..Default::default()
            },
        )
        .unwrap();
        commit(&mut c, &p);
        assert_eq!(c.nodes.values().next().unwrap().net_interfaces.len(), 2);
        assert_eq!(
            delete_netif(&c, "alpha", "default").unwrap_err().code,
            code::FAIL_IN_USE
        );
        let p = delete_netif(&c, "alpha", "data").unwrap();
        commit(&mut c, &p);
        assert_eq!(c.nodes.values().next().unwrap().net_interfaces.len(), 1);
    }
}
