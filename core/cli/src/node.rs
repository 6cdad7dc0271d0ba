//! `node` (`n`): nodes and their network interfaces.

use std::net::{IpAddr, ToSocketAddrs};

use clap::{Args, Subcommand};
#[cfg(test)]
use serde_json::json;
use strata_api::types::{self, request, NetInterface, Node};
use strata_client::calls;

use crate::common::{prop_cell, ranged, show_prop_columns, ListOpts, Request, SetPropArgs, AUX};
use crate::context::{self, parse, Ctx};
use crate::error::CliError;
use crate::output::{color, Style};
use crate::table::{Cell, Table};

pub const NODE_TYPES: &[&str] = &["controller", "auxiliary", "combined", "satellite"];

fn node_type(s: &str) -> Result<String, String> {
    let l = s.to_ascii_lowercase();
    if NODE_TYPES.contains(&l.as_str()) {
        Ok(l)
    } else {
        Err(format!(
            "invalid node type '{s}' (choose from {})",
            NODE_TYPES.join(", ")
        ))
    }
}

fn com_type(s: &str) -> Result<String, String> {
    let l = s.to_ascii_lowercase();
    if l == "plain" || l == "ssl" {
        Ok(l)
    } else {
        Err(format!(
            "invalid communication type '{s}' (choose from plain, ssl)"
        ))
    }
}

fn if_type(s: &str) -> Result<String, String> {
    let l = s.to_ascii_lowercase();
    if l == "ip" {
        Ok(l)
    } else {
        Err(format!("invalid interface type '{s}' (choose from ip)"))
    }
}

#[derive(Subcommand, Debug, Clone, PartialEq)]
pub enum NodeCmd {
    /// Creates a node entry for a node that participates in the cluster.
    #[command(visible_alias = "c")]
    Create(NodeCreate),
    /// Lists the nodes of the cluster.
    #[command(visible_alias = "l")]
    List(NodeList),
    /// Removes a node; its resources are undeployed first.
    #[command(visible_alias = "d")]
    Delete(NodeName),
    /// Removes an unrecoverable node and everything deployed on it.
    #[command(visible_alias = "lo")]
    Lost(NodeName),
    /// Changes the type of a node.
    #[command(visible_alias = "m")]
    Modify(NodeModify),
    /// Gives a node a new one-time join token, for its satellite to join the cluster again
    /// (after its state was lost, or its certificate revoked); the controller makes one and
    /// prints it unless --token is given.
    JoinToken {
        node_name: String,
        /// The token (e.g. the one the satellite wrote into <state dir>/tls/join-token).
        #[arg(long = "token")]
        token: Option<String>,
    },
    /// Reconnects nodes to the controller.
    #[command(visible_alias = "rc")]
    Reconnect {
        /// Nodes to reconnect.
        #[arg(required = true)]
        nodes: Vec<String>,
    },
    /// Sets a property on a node.
    #[command(visible_alias = "sp")]
    SetProperty {
        node_name: String,
        #[command(flatten)]
        prop: SetPropArgs,
    },
    /// Prints the properties of a node.
    #[command(visible_alias = "lp")]
    ListProperties {
        #[arg(short = 'p', long)]
        pastable: bool,
        node_name: String,
    },
    /// Network interface subcommands.
    #[command(visible_alias = "i", subcommand)]
    Interface(NetIfCmd),
}

#[derive(Args, Debug, Clone, PartialEq)]
pub struct NodeCreate {
    /// Satellite port (default: 3366 plain, 3367 ssl; 3370/3371 for controllers).
    #[arg(short = 'p', long = "port", alias = "satellite-port", value_parser = ranged(1, 65535))]
    pub port: Option<i64>,
    /// Node type: controller, auxiliary, combined or satellite.
    #[arg(long = "node-type", default_value = "satellite", value_parser = node_type)]
    pub node_type: String,
    /// Communication type: plain or ssl.
    #[arg(long = "communication-type", default_value = "plain", value_parser = com_type)]
    pub communication_type: String,
    /// Interface type.
    #[arg(long = "interface-type", default_value = "ip", value_parser = if_type)]
    pub interface_type: String,
    /// Name of the node's first network interface.
    #[arg(long = "interface-name", default_value = "default")]
    pub interface_name: String,
    /// The one-time token the node's satellite joins the cluster with (the satellite writes
    /// one into <state dir>/tls/join-token at its first start); left out, the controller
    /// makes one and prints it, to be given to the satellite.
    #[arg(long = "join-token")]
    pub join_token: Option<String>,
    /// Name of the new node; must match the node's host name.
    pub name: String,
    /// IP address of the node; resolved from the name when left out.
    pub ip: Option<String>,
}

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct NodeName {
    /// Deprecated, kept for compatibility.
    #[arg(long = "async")]
    pub async_: bool,
    pub name: String,
}

#[derive(Args, Debug, Clone, PartialEq)]
pub struct NodeModify {
    /// The new node type.
    #[arg(short = 't', long = "node-type", default_value = "satellite", value_parser = node_type)]
    pub node_type: String,
    pub node_name: String,
}

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct NodeList {
    #[command(flatten)]
    pub list: ListOpts,
    /// Filter by nodes.
    #[arg(short = 'n', long = "nodes", num_args = 1..)]
    pub nodes: Vec<String>,
    /// Show the auxiliary properties of the nodes.
    #[arg(long = "show-aux-props")]
    pub show_aux_props: bool,
    /// Filter by properties (KEY=VALUE or KEY).
    #[arg(long = "props", num_args = 1..)]
    pub props: Vec<String>,
    /// Show these properties as columns (KEY or KEY=HEADER).
    #[arg(short = 's', long = "show-props", num_args = 1..)]
    pub show_props: Vec<String>,
}

#[derive(Subcommand, Debug, Clone, PartialEq)]
pub enum NetIfCmd {
    /// Adds a network interface to a node.
    #[command(visible_alias = "c")]
    Create(NetIfCreate),
    /// Lists the network interfaces of a node.
    #[command(visible_alias = "l")]
    List {
        #[arg(short = 'p', long)]
        pastable: bool,
        node_name: String,
    },
    /// Changes a network interface.
    #[command(visible_alias = "m")]
    Modify(NetIfModify),
    /// Deletes network interfaces from a node.
    #[command(visible_alias = "d")]
    Delete {
        node_name: String,
        #[arg(required = true)]
        interface_name: Vec<String>,
    },
}

#[derive(Args, Debug, Clone, PartialEq)]
pub struct NetIfCreate {
    /// Port for satellite connections over this interface.
    #[arg(short = 'p', long = "port", value_parser = ranged(1, 65535))]
    pub port: Option<i64>,
    #[arg(long = "communication-type", default_value = "plain", value_parser = com_type)]
    pub communication_type: String,
    /// Make this the active satellite connection.
    #[arg(long)]
    pub active: bool,
    pub node_name: String,
    pub interface_name: String,
    pub ip: String,
}

#[derive(Args, Debug, Clone, PartialEq)]
pub struct NetIfModify {
    #[arg(short = 'p', long = "port", value_parser = ranged(1, 65535))]
    pub port: Option<i64>,
    #[arg(long = "communication-type", default_value = "plain", value_parser = com_type)]
    pub communication_type: String,
    #[arg(long)]
    pub active: bool,
    /// New IP address of the interface.
    #[arg(long)]
    pub ip: Option<String>,
    pub node_name: String,
    pub interface_name: String,
}

/// The satellite port python-linstor picks when none is given.
pub fn default_port(node_type: &str, com: &str) -> i64 {
    match (node_type == "controller", com == "ssl") {
        (true, false) => 3370,
        (true, true) => 3371,
        (false, false) => 3366,
        (false, true) => 3367,
    }
}

pub fn create_request(a: &NodeCreate, address: &str) -> Request {
    let port = a
        .port
        .unwrap_or_else(|| default_port(&a.node_type, &a.communication_type));
    calls::node_create(&request::Node {
        name: a.name.clone(),
        node_type: a.node_type.clone(),
        net_interfaces: vec![NetInterface {
            name: a.interface_name.clone(),
            address: address.to_string(),
            satellite_port: Some(port),
            satellite_encryption_type: Some(a.communication_type.clone()),
            is_active: Some(true),
            ..NetInterface::default()
        }],
        join_token: a.join_token.clone(),
        ..request::Node::default()
    })
}

/// Resolves a node name with the system resolver, preferring an IPv4 address that is not a
/// loopback address, as the upstream client does.
pub fn resolve_address(name: &str) -> Result<String, CliError> {
    let addrs: Vec<IpAddr> = (name, 0)
        .to_socket_addrs()
        .map_err(|e| {
            CliError::usage(format!(
                "Unable to resolve ip address for '{name}': {e}; give the address as the second argument"
            ))
        })?
        .map(|a| a.ip())
        .collect();
    let pick = addrs
        .iter()
        .find(|a| a.is_ipv4() && !a.is_loopback())
        .or_else(|| addrs.iter().find(|a| !a.is_loopback()));
    match pick {
        Some(a) => Ok(a.to_string()),
        None => Err(CliError::usage(format!(
            "Unable to determine a valid ip address for '{name}' (it resolves only to loopback addresses); \
             give the address as the second argument"
        ))),
    }
}

pub fn requests(cmd: &NodeCmd) -> Option<Vec<Request>> {
    Some(match cmd {
        NodeCmd::Delete(a) => vec![calls::node_delete(&a.name)],
        NodeCmd::Lost(a) => vec![calls::node_lost(&a.name)],
        NodeCmd::Modify(a) => vec![calls::node_modify(
            &a.node_name,
            &types::NodeModify {
                node_type: Some(a.node_type.clone()),
                ..types::NodeModify::default()
            },
        )],
        NodeCmd::Reconnect { nodes } => nodes.iter().map(|n| calls::node_reconnect(n)).collect(),
        NodeCmd::JoinToken { node_name, token } => {
            vec![calls::node_join_token(node_name, token.as_deref())]
        }
        NodeCmd::SetProperty { node_name, prop } => vec![calls::node_modify(
            node_name,
            &types::NodeModify {
                props: prop.props_modify(),
                ..types::NodeModify::default()
            },
        )],
        NodeCmd::Interface(NetIfCmd::Create(a)) => vec![netif_create_request(a)],
        NodeCmd::Interface(NetIfCmd::Modify(a)) => vec![netif_modify_request(a)],
        NodeCmd::Interface(NetIfCmd::Delete {
            node_name,
            interface_name,
        }) => interface_name
            .iter()
            .map(|i| calls::netif_delete(node_name, i))
            .collect(),
        _ => return None,
    })
}

/// The encryption type is sent with a port only, as python-linstor does.
pub fn netif_create_request(a: &NetIfCreate) -> Request {
    calls::netif_create(
        &a.node_name,
        &NetInterface {
            name: a.interface_name.clone(),
            address: a.ip.clone(),
            satellite_port: a.port,
            satellite_encryption_type: a.port.map(|_| a.communication_type.clone()),
            is_active: Some(a.active),
            ..NetInterface::default()
        },
    )
}

pub fn netif_modify_request(a: &NetIfModify) -> Request {
    calls::netif_modify(
        &a.node_name,
        &a.interface_name,
        &request::NetInterface {
            name: a.interface_name.clone(),
            address: a.ip.clone(),
            satellite_port: a.port,
            satellite_encryption_type: Some(a.communication_type.clone()),
            is_active: Some(a.active),
        },
    )
}

/// The path of the node list query.
#[cfg(test)]
pub fn list_path(nodes: &[String], props: &[String]) -> String {
    calls::nodes(nodes, props).path
}

pub async fn run(ctx: &mut Ctx, cmd: NodeCmd) -> Result<i32, CliError> {
    if let Some(reqs) = requests(&cmd) {
        return ctx.send(reqs).await;
    }
    match cmd {
        NodeCmd::Create(a) => {
            let address = match &a.ip {
                Some(ip) => ip.clone(),
                None => resolve_address(&a.name)?,
            };
            ctx.send(vec![create_request(&a, &address)]).await
        }
        NodeCmd::List(a) => {
            let raw = ctx.fetch(calls::nodes(&a.nodes, &a.props)).await?;
            let style = ctx.style(a.list.pastable);
            ctx.show_list(&raw, || {
                let nodes: Vec<Node> = parse(&raw, "node list")?;
                Ok(render_nodes(&nodes, &a, style))
            })
        }
        NodeCmd::ListProperties {
            pastable,
            node_name,
        } => {
            let raw = ctx
                .fetch(calls::nodes(std::slice::from_ref(&node_name), &[]))
                .await?;
            let nodes: Vec<Node> = parse(&raw, "node list")?;
            match nodes
                .iter()
                .find(|n| n.name.eq_ignore_ascii_case(&node_name))
            {
                Some(n) => Ok(ctx.show_props(Some(&n.props), pastable)),
                None => Err(CliError::not_found(format!(
                    "Node '{node_name}' not found on controller."
                ))),
            }
        }
        NodeCmd::Interface(NetIfCmd::List {
            pastable,
            node_name,
        }) => {
            let raw = ctx
                .fetch(calls::nodes(std::slice::from_ref(&node_name), &[]))
                .await?;
            let nodes: Vec<Node> = parse(&raw, "node list")?;
            let node = nodes
                .iter()
                .find(|n| n.name.eq_ignore_ascii_case(&node_name))
                .ok_or_else(|| {
                    CliError::not_found(format!("Node '{node_name}' not found on controller."))
                })?;
            if ctx.settings.machine {
                return ctx.show_list(&raw, || Ok(String::new()));
            }
            context::out(&render_netifs(node, ctx.style(pastable)));
            Ok(crate::error::OK)
        }
        _ => unreachable!("write commands are handled by requests()"),
    }
}

/// The State cell of a node: flags first, then the connection status.
pub fn node_state(n: &Node) -> (String, Option<&'static str>) {
    for (flag, col) in [
        ("EVICTED", color::RED),
        ("DELETE", color::RED),
        ("EVACUATE", color::YELLOW),
    ] {
        if n.flags.iter().any(|f| f == flag) {
            return (flag.to_string(), Some(col));
        }
    }
    let status = n.connection_status.as_deref().unwrap_or("UNKNOWN");
    let (text, col) = match status {
        "OFFLINE" => ("OFFLINE", color::RED),
        "CONNECTED" => ("Connected", color::YELLOW),
        "ONLINE" => ("Online", color::GREEN),
        "VERSION_MISMATCH" => ("OFFLINE(VERSION MISMATCH)", color::RED),
        "FULL_SYNC_FAILED" => ("OFFLINE(FULL SYNC FAILED)", color::RED),
        "MISSING_EXT_TOOLS" => ("OFFLINE(MISSING EXTERNAL TOOLS)", color::RED),
        "AUTHENTICATION_ERROR" => ("OFFLINE(AUTHENTICATION ERROR)", color::RED),
        "UNKNOWN" => ("Unknown", color::YELLOW),
        "HOSTNAME_MISMATCH" => ("OFFLINE(HOSTNAME MISMATCH)", color::RED),
        "OTHER_CONTROLLER" => ("OFFLINE(OTHER_CONTROLLER)", color::RED),
        "NO_STLT_CONN" => ("OFFLINE(NO CONNECTION TO SATELLITE)", color::RED),
        other => return (other.to_string(), Some(color::YELLOW)),
    };
    (text.to_string(), Some(col))
}

/// `address:port (ENCRYPTION)` of the active satellite connection.
pub fn active_address(n: &Node) -> String {
    let mut out = String::new();
    for i in &n.net_interfaces {
        if let (Some(true), Some(port)) = (i.is_active, i.satellite_port) {
            out = format!(
                "{}:{} ({})",
                i.address,
                port,
                i.satellite_encryption_type.as_deref().unwrap_or("")
            );
        }
    }
    out
}

pub fn render_nodes(nodes: &[Node], a: &NodeList, style: Style) -> String {
    let mut t = Table::new(style);
    t.column("Node").column("NodeType").column("Addresses");
    if a.show_aux_props {
        t.column("AuxProps");
    }
    t.column_with("State", Some(color::DARKGREEN), crate::table::Just::Left);
    let extra = show_prop_columns(&a.show_props);
    for (_, header) in &extra {
        t.column(header);
    }
    for n in nodes {
        let mut row: Vec<Cell> = vec![
            n.name.as_str().into(),
            n.node_type.as_str().into(),
            active_address(n).into(),
        ];
        if a.show_aux_props {
            let aux: Vec<String> = n
                .props
                .iter()
                .filter(|(k, _)| k.starts_with(AUX))
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            row.push(aux.join("\n").into());
        }
        let (state, col) = node_state(n);
        row.push(t.cell(state, col));
        for (key, _) in &extra {
            row.push(prop_cell(&n.props, key).into());
        }
        t.row(row);
    }
    if a.list.groupby.is_empty() {
        t.sort_by_first();
    } else {
        t.sort_by(&a.list.groupby);
    }
    t.render()
}

pub fn render_netifs(node: &Node, style: Style) -> String {
    let mut t = Table::new(style);
    t.column_with(&node.name, Some(color::GREEN), crate::table::Just::Left)
        .column("NetInterface")
        .column("IP")
        .column("Port")
        .column("EncryptionType");
    for i in &node.net_interfaces {
        let NetInterface {
            name,
            address,
            satellite_port,
            satellite_encryption_type,
            is_active,
            ..
        } = i;
        t.row(vec![
            if *is_active == Some(true) {
                "+ StltCon"
            } else {
                "+"
            }
            .into(),
            name.as_str().into(),
            address.as_str().into(),
            satellite_port
                .map(|p| p.to_string())
                .unwrap_or_default()
                .into(),
            satellite_encryption_type.clone().unwrap_or_default().into(),
        ]);
    }
    t.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse_line, Command};

    fn node_cmd(args: &[&str]) -> NodeCmd {
        match parse_line(args).unwrap().command {
            Some(Command::Node(c)) => c,
            other => panic!("not a node command: {other:?}"),
        }
    }

    #[test]
    fn create_with_address() {
        let NodeCmd::Create(a) = node_cmd(&["linstor", "node", "create", "node2", "192.0.2.120"])
        else {
            panic!()
        };
        let r = create_request(&a, a.ip.as_deref().unwrap());
        assert_eq!(r.method, reqwest::Method::POST);
        assert_eq!(r.path, "/v1/nodes");
        assert_eq!(
            r.body.unwrap(),
            json!({
                "name": "node2",
                "type": "satellite",
                "net_interfaces": [{
                    "name": "default",
                    "address": "192.0.2.120",
                    "satellite_port": 3366,
                    "satellite_encryption_type": "plain",
                    "is_active": true
                }]
            })
        );
    }

    #[test]
    fn create_combined_with_port() {
        for port_flag in ["--satellite-port", "--port", "-p"] {
            let NodeCmd::Create(a) = node_cmd(&[
                "linstor",
                "node",
                "create",
                "alpha",
                "127.0.0.1",
                "--node-type",
                "combined",
                port_flag,
                "3400",
            ]) else {
                panic!()
            };
            let body = create_request(&a, "127.0.0.1").body.unwrap();
            assert_eq!(body["type"], "combined");
            assert_eq!(body["net_interfaces"][0]["satellite_port"], 3400);
            assert_eq!(body["net_interfaces"][0]["address"], "127.0.0.1");
        }
    }

    #[test]
    fn create_without_address_resolves_the_name() {
        let NodeCmd::Create(a) = node_cmd(&[
            "linstor",
            "node",
            "create",
            "--node-type",
            "Combined",
            "drbd-arm",
        ]) else {
            panic!()
        };
        assert_eq!(a.name, "drbd-arm");
        assert_eq!(a.ip, None);
        assert_eq!(a.node_type, "combined");
        // An IP literal resolves to itself; a loopback-only name is refused with a clear error.
        assert_eq!(resolve_address("192.0.2.7").unwrap(), "192.0.2.7");
        let e = resolve_address("127.0.0.1").unwrap_err();
        assert_eq!(e.code, crate::error::ARGPARSE_ERROR);
        assert!(e.message.unwrap().contains("loopback"));
    }

    #[test]
    fn controller_and_ssl_ports() {
        assert_eq!(default_port("controller", "plain"), 3370);
        assert_eq!(default_port("controller", "ssl"), 3371);
        assert_eq!(default_port("satellite", "ssl"), 3367);
        assert!(parse_line(&[
            "linstor",
            "node",
            "create",
            "--node-type",
            "robot",
            "x",
            "1.2.3.4"
        ])
        .is_err());
    }

    #[test]
    fn write_commands() {
        let r = requests(&node_cmd(&["linstor", "n", "d", "alpha"])).unwrap();
        assert_eq!(r, vec![Request::delete("/v1/nodes/alpha")]);
        let r = requests(&node_cmd(&["linstor", "node", "lost", "alpha"])).unwrap();
        assert_eq!(r[0].path, "/v1/nodes/alpha/lost");
        let r = requests(&node_cmd(&["linstor", "node", "rc", "a", "b"])).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(
            (r[1].method.clone(), r[1].path.as_str(), r[1].body.clone()),
            (reqwest::Method::PUT, "/v1/nodes/b/reconnect", None)
        );
        let r = requests(&node_cmd(&[
            "linstor", "node", "m", "-t", "Combined", "alpha",
        ]))
        .unwrap();
        assert_eq!(r[0].body, Some(json!({"node_type": "combined"})));
        let r = requests(&node_cmd(&[
            "linstor", "node", "sp", "alpha", "--aux", "site", "eu",
        ]))
        .unwrap();
        assert_eq!(
            r[0],
            Request::put(
                "/v1/nodes/alpha",
                json!({"override_props": {"Aux/site": "eu"}})
            )
        );
        let r = requests(&node_cmd(&[
            "linstor",
            "node",
            "set-property",
            "alpha",
            "Aux/site",
        ]))
        .unwrap();
        assert_eq!(r[0].body, Some(json!({"delete_props": ["Aux/site"]})));
    }

    #[test]
    fn interface_commands() {
        let r = requests(&node_cmd(&[
            "linstor",
            "node",
            "interface",
            "create",
            "alpha",
            "data",
            "10.0.0.1",
        ]))
        .unwrap();
        assert_eq!(
            r[0],
            Request::post(
                "/v1/nodes/alpha/net-interfaces",
                json!({"name": "data", "address": "10.0.0.1", "is_active": false})
            )
        );
        let r = requests(&node_cmd(&[
            "linstor",
            "n",
            "i",
            "c",
            "-p",
            "3367",
            "--communication-type",
            "SSL",
            "--active",
            "alpha",
            "data",
            "10.0.0.1",
        ]))
        .unwrap();
        assert_eq!(
            r[0].body,
            Some(
                json!({"name": "data", "address": "10.0.0.1", "is_active": true, "satellite_port": 3367, "satellite_encryption_type": "ssl"})
            )
        );
        let r = requests(&node_cmd(&[
            "linstor", "n", "i", "m", "--ip", "10.0.0.2", "alpha", "data",
        ]))
        .unwrap();
        assert_eq!(r[0].method, reqwest::Method::PUT);
        assert_eq!(r[0].path, "/v1/nodes/alpha/net-interfaces/data");
        assert_eq!(
            r[0].body,
            Some(
                json!({"name": "data", "address": "10.0.0.2", "satellite_encryption_type": "plain", "is_active": false})
            )
        );
        let r = requests(&node_cmd(&[
            "linstor", "n", "i", "d", "alpha", "data", "backup",
        ]))
        .unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(
            r[1],
            Request::delete("/v1/nodes/alpha/net-interfaces/backup")
        );
        assert!(parse_line(&["linstor", "n", "i", "d", "alpha"]).is_err());
    }

    #[test]
    fn list_query_and_table() {
        let NodeCmd::List(a) = node_cmd(&["linstor", "node", "list"]) else {
            panic!()
        };
        assert_eq!(list_path(&a.nodes, &a.props), "/v1/nodes");
        let NodeCmd::List(b) = node_cmd(&[
            "linstor",
            "n",
            "l",
            "-n",
            "a",
            "b",
            "--props",
            "Aux/site=eu",
        ]) else {
            panic!()
        };
        assert_eq!(
            list_path(&b.nodes, &b.props),
            "/v1/nodes?nodes=a&nodes=b&props=Aux%2Fsite%3Deu"
        );
        let nodes: Vec<Node> = serde_json::from_value(json!([
            {"name": "beta", "type": "SATELLITE", "connection_status": "OFFLINE",
             "net_interfaces": [{"name": "default", "address": "10.0.0.2", "satellite_port": 3366,
                                 "satellite_encryption_type": "PLAIN", "is_active": true}]},
            {"name": "alpha", "type": "COMBINED", "connection_status": "ONLINE", "flags": [],
             "net_interfaces": [{"name": "default", "address": "10.0.0.1", "satellite_port": 3366,
                                 "satellite_encryption_type": "PLAIN", "is_active": true}]}
        ]))
        .unwrap();
        let expected = "\
+-----------------------------------------------------+
| Node  | NodeType  | Addresses             | State   |
|=====================================================|
| alpha | COMBINED  | 10.0.0.1:3366 (PLAIN) | Online  |
| beta  | SATELLITE | 10.0.0.2:3366 (PLAIN) | OFFLINE |
+-----------------------------------------------------+
";
        assert_eq!(render_nodes(&nodes, &a, Style::PLAIN), expected);
    }
}
