//! Nodes, their network interfaces and storage pools, and storage pool definitions.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use strata_agent_api::PoolConfig;
use strata_api::convert;
use strata_api::types::{
    NetInterface, Node, NodeModify, PropsModify, StoragePool, StoragePoolDefinition,
};
use strata_model::error::code;
use strata_model::plan::{
    self, node as pn, pool as pp, NetIfCreate, NodeCreate, Op, Reply, StorPoolCreate,
};
use strata_model::props::matches_filter;
use strata_model::{ApiError, Change, ObjKind};

use super::{error, json, not_found, ok, replies, run, run_create, wanted, AppState, Body, Query};

fn node_view(core: &AppState, n: &strata_model::objects::Node) -> Node {
    let observed = core.observed();
    let obs = observed.nodes.get(&n.name);
    convert::node(
        n,
        observed.status(&n.name),
        obs.and_then(|o| o.caps.as_ref()),
    )
}

pub async fn list(State(core): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let q = Query::parse(q.as_deref());
    let names = q.names("nodes");
    let props = q.values("props");
    let nodes: Vec<strata_model::objects::Node> = {
        let cluster = core.cluster();
        cluster
            .nodes
            .values()
            .filter(|n| wanted(&names, n.name.key()) && matches_filter(&n.props, &props))
            .cloned()
            .collect()
    };
    let views: Vec<Node> = nodes.iter().map(|n| node_view(&core, n)).collect();
    ok(&q.page(views))
}

fn find_node(core: &AppState, name: &str) -> Option<strata_model::objects::Node> {
    let cluster = core.cluster();
    cluster
        .nodes
        .values()
        .find(|n| n.name.as_str().eq_ignore_ascii_case(name))
        .cloned()
}

pub async fn get_one(State(core): State<AppState>, Path(node): Path<String>) -> Response {
    match find_node(&core, &node) {
        Some(n) => ok(&node_view(&core, &n)),
        None => not_found(code::FAIL_NOT_FOUND_NODE, ObjKind::Node, "node", &node),
    }
}

pub async fn create(State(core): State<AppState>, Body(req): Body<Node>) -> Response {
    let plan_req = NodeCreate {
        name: req.name.clone(),
        node_type: Some(req.node_type.clone()).filter(|t| !t.is_empty()),
        net_interfaces: req
            .net_interfaces
            .iter()
            .map(|n| NetIfCreate {
                name: n.name.clone(),
                address: n.address.clone(),
                satellite_port: n.satellite_port,
                encryption: n.satellite_encryption_type.clone(),
                is_active: n.is_active,
            })
            .collect(),
        props: req.props.clone(),
        join_token_given: req.join_token.is_some(),
        join_token: Some(
            req.join_token
                .clone()
                .unwrap_or_else(strata_tls::join::new_token),
        ),
        join_token_ttl_ms: core.settings.join_token_ttl.as_millis() as u64,
    };
    let result = core
        .mutate(move |c, env, _| pn::create_node(c, env, &plan_req))
        .await;
    match result {
        Ok(mut answer) => {
            if let Ok(name) = plan::parse_node_name(&req.name) {
                if let Some(w) = core.first_contact(&name).await {
                    answer.replies.push(w);
                }
            }
            replies(&answer.replies, StatusCode::CREATED)
        }
        Err(e) => error(Op::Create, e),
    }
}

pub async fn modify(
    State(core): State<AppState>,
    Path(node): Path<String>,
    Body(req): Body<NodeModify>,
) -> Response {
    let change = convert::props_change(&req.props);
    run(&core, Op::Modify, StatusCode::OK, move |c, _, _| {
        pn::modify_node(c, &node, req.node_type.as_deref(), &change)
    })
    .await
}

pub async fn delete_one(State(core): State<AppState>, Path(node): Path<String>) -> Response {
    run(&core, Op::Delete, StatusCode::OK, move |c, env, _| {
        pn::delete_node(c, &node, env.now_ms())
    })
    .await
}

/// Removes a node that will never come back, with everything it had, without its satellite.
pub async fn lost(State(core): State<AppState>, Path(node): Path<String>) -> Response {
    run(&core, Op::Delete, StatusCode::OK, move |c, env, _| {
        pn::lose_node(c, &node, env.now_ms())
    })
    .await
}

/// Body of `POST /v1/nodes/{node}/join-token`.
#[derive(Debug, Default, serde::Deserialize)]
pub struct JoinTokenRequest {
    #[serde(default)]
    pub join_token: Option<String>,
}

/// Gives a node a new one-time join token (made here unless given), and connects it again:
/// its satellite joins with it as soon as it holds the token.
pub async fn join_token(
    State(core): State<AppState>,
    Path(node): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let req: JoinTokenRequest = if body.iter().all(u8::is_ascii_whitespace) {
        JoinTokenRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => {
                return error(
                    Op::Modify,
                    strata_model::ApiError::new(
                        code::FAIL_INVLD_REQUEST,
                        ObjKind::Node,
                        format!("Invalid join token request: {e}"),
                    )
                    .correction("Send {\"join_token\": \"...\"}, or no body to have one made"),
                )
            }
        }
    };
    let given = req.join_token.is_some();
    let token = req.join_token.unwrap_or_else(strata_tls::join::new_token);
    let ttl = core.settings.join_token_ttl.as_millis() as u64;
    let n = node.clone();
    let result = core
        .mutate(move |c, env, _| pn::set_join_token(c, env, &n, &token, given, ttl))
        .await;
    match result {
        Ok(answer) => {
            if let Ok(name) = plan::parse_node_name(&node) {
                core.reconnect(&name);
            }
            replies(&answer.replies, StatusCode::OK)
        }
        Err(e) => error(Op::Modify, e),
    }
}

pub async fn reconnect(State(core): State<AppState>, Path(node): Path<String>) -> Response {
    let Ok(name) = plan::parse_node_name(&node) else {
        return not_found(code::FAIL_NOT_FOUND_NODE, ObjKind::Node, "node", &node);
    };
    if !core.reconnect(&name) {
        return not_found(code::FAIL_NOT_FOUND_NODE, ObjKind::Node, "node", &node);
    }
    replies(
        &[Reply::modified(
            ObjKind::Node,
            format!("Node '{node}' is reconnecting."),
        )],
        StatusCode::OK,
    )
}

pub async fn netif_list(
    State(core): State<AppState>,
    Path(node): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let q = Query::parse(q.as_deref());
    match find_node(&core, &node) {
        Some(n) => ok(&q.page(
            n.net_interfaces
                .iter()
                .map(convert::net_interface)
                .collect::<Vec<_>>(),
        )),
        None => not_found(code::FAIL_NOT_FOUND_NODE, ObjKind::Node, "node", &node),
    }
}

pub async fn netif_get(
    State(core): State<AppState>,
    Path((node, netif)): Path<(String, String)>,
) -> Response {
    let Some(n) = find_node(&core, &node) else {
        return not_found(code::FAIL_NOT_FOUND_NODE, ObjKind::Node, "node", &node);
    };
    match n
        .net_interfaces
        .iter()
        .find(|i| i.name.as_str().eq_ignore_ascii_case(&netif))
    {
        Some(i) => ok(&convert::net_interface(i)),
        None => not_found(
            code::FAIL_NOT_FOUND_NET_IF,
            ObjKind::NetIf,
            "network interface",
            &netif,
        ),
    }
}

fn netif_req(n: &NetInterface) -> NetIfCreate {
    NetIfCreate {
        name: n.name.clone(),
        address: n.address.clone(),
        satellite_port: n.satellite_port,
        encryption: n.satellite_encryption_type.clone(),
        is_active: n.is_active,
    }
}

pub async fn netif_create(
    State(core): State<AppState>,
    Path(node): Path<String>,
    Body(req): Body<NetInterface>,
) -> Response {
    let r = netif_req(&req);
    run_create(
        &core,
        ObjKind::NetIf,
        StatusCode::CREATED,
        move |c, env, _| pn::create_netif(c, env, &node, &r),
    )
    .await
}

pub async fn netif_modify(
    State(core): State<AppState>,
    Path((node, netif)): Path<(String, String)>,
    Body(req): Body<NetInterface>,
) -> Response {
    let r = netif_req(&req);
    run(&core, Op::Modify, StatusCode::OK, move |c, env, _| {
        pn::modify_netif(c, env, &node, &netif, &r)
    })
    .await
}

pub async fn netif_delete(
    State(core): State<AppState>,
    Path((node, netif)): Path<(String, String)>,
) -> Response {
    run(&core, Op::Delete, StatusCode::OK, move |c, _, _| {
        pn::delete_netif(c, &node, &netif)
    })
    .await
}

pub fn pool_view(core: &AppState, sp: &strata_model::objects::StorPool) -> StoragePool {
    let observed = core.observed();
    let state = observed
        .nodes
        .get(&sp.node)
        .filter(|_| observed.status(&sp.node) == strata_model::ConnectionStatus::Online)
        .and_then(|n| n.pool(sp.name.key()));
    convert::stor_pool(sp, state)
}

pub async fn sp_list(
    State(core): State<AppState>,
    Path(node): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let q = Query::parse(q.as_deref());
    let pools_filter = q.names("storage_pools");
    let Some(n) = find_node(&core, &node) else {
        return not_found(code::FAIL_NOT_FOUND_NODE, ObjKind::Node, "node", &node);
    };
    let pools: Vec<_> = {
        let cluster = core.cluster();
        cluster
            .pools_on(&n.name)
            .filter(|sp| wanted(&pools_filter, sp.name.key()))
            .cloned()
            .collect()
    };
    ok(&q.page(
        pools
            .iter()
            .map(|sp| pool_view(&core, sp))
            .collect::<Vec<_>>(),
    ))
}

pub async fn sp_get(
    State(core): State<AppState>,
    Path((node, pool)): Path<(String, String)>,
) -> Response {
    let found = {
        let cluster = core.cluster();
        cluster
            .stor_pools
            .iter()
            .find(|(n, _)| n.as_str().eq_ignore_ascii_case(&node))
            .and_then(|(_, pools)| {
                pools
                    .values()
                    .find(|sp| sp.name.as_str().eq_ignore_ascii_case(&pool))
                    .cloned()
            })
    };
    match found {
        Some(sp) => ok(&pool_view(&core, &sp)),
        None => not_found(
            code::FAIL_NOT_FOUND_STOR_POOL,
            ObjKind::StorPool,
            "storage pool",
            &format!("{pool}' on node '{node}"),
        ),
    }
}

pub async fn sp_create(
    State(core): State<AppState>,
    Path(node): Path<String>,
    Body(req): Body<StoragePool>,
) -> Response {
    let plan_req = StorPoolCreate {
        name: req.storage_pool_name.clone(),
        provider_kind: req.provider_kind.clone(),
        props: req.props.clone(),
        free_space_mgr_name: req.free_space_mgr_name.clone().filter(|s| !s.is_empty()),
        external_locking: req.external_locking,
    };
    // Validate first, then ask the satellite whether the pool is usable before recording it.
    let planned = {
        let cluster = core.cluster();
        let observed = core.observed();
        pp::create_stor_pool(
            &cluster,
            &mut crate::env::RealEnv,
            &*observed,
            &node,
            &plan_req,
        )
    };
    let planned = match planned {
        Ok(p) => p,
        Err(e) => return error(Op::Create, e.creating(ObjKind::StorPool)),
    };
    let new_pool = planned.changes.iter().find_map(|c| match c {
        Change::PutStorPool(sp) => Some(sp.clone()),
        _ => None,
    });
    if let Some(sp) = new_pool {
        let cfg = PoolConfig {
            name: sp.name.to_string(),
            kind: sp.kind,
            props: sp.props.clone(),
        };
        if let Some(probe) = core.probe_pool(&sp.node, &cfg).await {
            if !probe.ok {
                return error(
                    Op::Create,
                    ApiError::new(
                        code::FAIL_STOR_POOL_CONFIGURATION_ERROR,
                        ObjKind::StorPool,
                        format!(
                            "Storage pool '{}' cannot be used on node '{}'",
                            sp.name, sp.node
                        ),
                    )
                    .cause(probe.error.unwrap_or_default())
                    .correction("Create the backing pool on the node first (directory, volume group or zpool) or correct its name; nothing was recorded"),
                );
            }
        }
    }
    run_create(
        &core,
        ObjKind::StorPool,
        StatusCode::CREATED,
        move |c, env, o| pp::create_stor_pool(c, env, o, &node, &plan_req),
    )
    .await
}

pub async fn sp_modify(
    State(core): State<AppState>,
    Path((node, pool)): Path<(String, String)>,
    Body(req): Body<PropsModify>,
) -> Response {
    let change = convert::props_change(&req);
    run(&core, Op::Modify, StatusCode::OK, move |c, _, _| {
        pp::modify_stor_pool(c, &node, &pool, &change)
    })
    .await
}

pub async fn sp_delete(
    State(core): State<AppState>,
    Path((node, pool)): Path<(String, String)>,
) -> Response {
    run(&core, Op::Delete, StatusCode::OK, move |c, _, _| {
        pp::delete_stor_pool(c, &node, &pool)
    })
    .await
}

pub async fn spd_list(State(core): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let q = Query::parse(q.as_deref());
    let names = q.names("storage_pools");
    let cluster = core.cluster();
    let list: Vec<StoragePoolDefinition> = cluster
        .stor_pool_dfns
        .values()
        .filter(|d| wanted(&names, d.name.key()))
        .map(convert::stor_pool_dfn)
        .collect();
    json(StatusCode::OK, &q.page(list))
}

pub async fn spd_get(State(core): State<AppState>, Path(pool): Path<String>) -> Response {
    let cluster = core.cluster();
    match cluster
        .stor_pool_dfns
        .values()
        .find(|d| d.name.as_str().eq_ignore_ascii_case(&pool))
    {
        Some(d) => ok(&convert::stor_pool_dfn(d)),
        None => not_found(
            code::FAIL_NOT_FOUND_STOR_POOL_DFN,
            ObjKind::StorPoolDfn,
            "storage pool definition",
            &pool,
        ),
    }
}

pub async fn spd_create(
    State(core): State<AppState>,
    Body(req): Body<StoragePoolDefinition>,
) -> Response {
    run(&core, Op::Create, StatusCode::CREATED, move |c, env, _| {
        pp::create_spd(c, env, &req.storage_pool_name, &req.props)
    })
    .await
}

pub async fn spd_modify(
    State(core): State<AppState>,
    Path(pool): Path<String>,
    Body(req): Body<PropsModify>,
) -> Response {
    let change = convert::props_change(&req);
    run(&core, Op::Modify, StatusCode::OK, move |c, _, _| {
        pp::modify_spd(c, &pool, &change)
    })
    .await
}

pub async fn spd_delete(State(core): State<AppState>, Path(pool): Path<String>) -> Response {
    run(&core, Op::Delete, StatusCode::OK, move |c, _, _| {
        pp::delete_spd(c, &pool)
    })
    .await
}
