//! `resource-connection` (`rc`) and `node-connection` (`nc`): the DRBD options of one
//! connection, between two nodes for one resource or for all resources of the two nodes.

use clap::Subcommand;
use strata_api::types::ResourceConnectionModify;
use strata_client::calls;

use crate::common::Request;
use crate::context::Ctx;
use crate::drbd_opts::{DrbdOptionArgs, PeerSections};
use crate::error::CliError;

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum RcCmd {
    /// Sets DRBD net and peer-device options of the connection between two nodes of a
    /// resource; --unset-<option> removes one.
    #[command(name = "drbd-peer-options", visible_alias = "popt")]
    DrbdPeerOptions {
        /// The first node of the connection.
        node_a: String,
        /// The second node of the connection.
        node_b: String,
        resource_name: String,
        #[command(flatten)]
        opts: DrbdOptionArgs<PeerSections>,
    },
}

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum NcCmd {
    /// Sets DRBD net and peer-device options of every connection between two nodes;
    /// --unset-<option> removes one.
    #[command(name = "drbd-peer-options", visible_alias = "popt")]
    DrbdPeerOptions {
        /// The first node of the connection.
        node_a: String,
        /// The second node of the connection.
        node_b: String,
        #[command(flatten)]
        opts: DrbdOptionArgs<PeerSections>,
    },
}

pub fn rc_requests(cmd: &RcCmd) -> Result<Vec<Request>, CliError> {
    match cmd {
        RcCmd::DrbdPeerOptions {
            node_a,
            node_b,
            resource_name,
            opts,
        } => Ok(vec![calls::resource_connection_modify(
            resource_name,
            node_a,
            node_b,
            &ResourceConnectionModify {
                props: opts.props_modify()?,
            },
        )]),
    }
}

pub fn nc_requests(cmd: &NcCmd) -> Result<Vec<Request>, CliError> {
    match cmd {
        NcCmd::DrbdPeerOptions {
            node_a,
            node_b,
            opts,
        } => Ok(vec![calls::node_connection_modify(
            node_a,
            node_b,
            &opts.props_modify()?,
        )]),
    }
}

pub async fn run_rc(ctx: &mut Ctx, cmd: RcCmd) -> Result<i32, CliError> {
    let reqs = rc_requests(&cmd)?;
    ctx.send(reqs).await
}

pub async fn run_nc(ctx: &mut Ctx, cmd: NcCmd) -> Result<i32, CliError> {
    let reqs = nc_requests(&cmd)?;
    ctx.send(reqs).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse_line, Command};
    use serde_json::json;

    fn rc(args: &[&str]) -> RcCmd {
        match parse_line(args).unwrap().command {
            Some(Command::ResourceConnection(c)) => c,
            other => panic!("{other:?}"),
        }
    }

    fn nc(args: &[&str]) -> NcCmd {
        match parse_line(args).unwrap().command {
            Some(Command::NodeConnection(c)) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn resource_connection_peer_options() {
        let r = rc_requests(&rc(&[
            "linstor",
            "resource-connection",
            "drbd-peer-options",
            "alpha",
            "charlie",
            "backups",
            "--protocol",
            "A",
            "--c-max-rate",
            "200M",
            "--unset-max-buffers",
        ]))
        .unwrap();
        assert_eq!(
            r,
            vec![Request::put(
                "/v1/resource-definitions/backups/resource-connections/alpha/charlie",
                json!({
                    "override_props": {
                        "DrbdOptions/Net/protocol": "A",
                        "DrbdOptions/PeerDevice/c-max-rate": "200M"
                    },
                    "delete_props": ["DrbdOptions/Net/max-buffers"]
                })
            )]
        );
        let r = rc_requests(&rc(&[
            "linstor",
            "rc",
            "popt",
            "a",
            "b",
            "r",
            "--unset-protocol",
        ]))
        .unwrap();
        assert_eq!(
            r[0].body,
            Some(json!({"delete_props": ["DrbdOptions/Net/protocol"]}))
        );
        let e = rc_requests(&rc(&["linstor", "rc", "popt", "a", "b", "r"])).unwrap_err();
        assert_eq!(e.code, crate::error::ARGPARSE_ERROR);
        // Only net and peer-device options belong to a connection.
        for bad in [
            vec!["--quorum", "majority"],
            vec!["--on-io-error", "detach"],
            vec!["--no-such-option", "1"],
        ] {
            let mut line = vec!["linstor", "rc", "popt", "a", "b", "r"];
            line.extend(bad.iter().copied());
            assert!(parse_line(&line).is_err(), "{line:?}");
        }
    }

    #[test]
    fn node_connection_peer_options() {
        let r = nc_requests(&nc(&[
            "linstor",
            "node-connection",
            "drbd-peer-options",
            "alpha",
            "bravo",
            "--ping-timeout",
            "10",
            "--allow-two-primaries",
            "yes",
            "--unset-resync-rate",
        ]))
        .unwrap();
        assert_eq!(
            r,
            vec![Request::put(
                "/v1/node-connections/alpha/bravo",
                json!({
                    "override_props": {
                        "DrbdOptions/Net/ping-timeout": "10",
                        "DrbdOptions/Net/allow-two-primaries": "yes"
                    },
                    "delete_props": ["DrbdOptions/PeerDevice/resync-rate"]
                })
            )]
        );
        let e = nc_requests(&nc(&["linstor", "nc", "popt", "a", "b"])).unwrap_err();
        assert_eq!(e.code, crate::error::ARGPARSE_ERROR);
        assert!(parse_line(&["linstor", "nc", "popt", "a", "b", "--fence-peer", "x"]).is_err());
        assert!(parse_line(&["linstor", "nc", "popt", "a", "b", "--protocl", "A"]).is_err());
    }
}
