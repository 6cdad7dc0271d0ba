//! `snapshot` (`s`): take, list and delete snapshots, and restore them into another
//! resource definition.

use clap::{Args, Subcommand};
#[cfg(test)]
use serde_json::json;
use strata_api::types::{request, Snapshot, SnapshotRollback};
use strata_client::calls;

use crate::common::Request;
use crate::context::{parse, Ctx};
use crate::error::{CliError, ARGPARSE_ERROR};
use crate::resource::created_on;
use crate::table::Table;

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum SnapshotCmd {
    /// Takes a snapshot of a resource on all its diskful nodes, or on the nodes named first.
    #[command(visible_alias = "c")]
    Create {
        /// [NODE ...] RESOURCE SNAPSHOT
        #[arg(required = true, num_args = 2.., value_name = "NODE... RESOURCE SNAPSHOT")]
        args: Vec<String>,
        /// Deprecated, kept for compatibility.
        #[arg(long = "async")]
        async_: bool,
    },
    /// Takes one snapshot of each resource named, all of the same moment (I/O of all of
    /// them is suspended together).
    #[command(name = "create-multiple", visible_alias = "cm")]
    CreateMultiple {
        /// Only on these nodes (default: every diskful node of each resource).
        #[arg(short = 'n', long = "nodes", num_args = 1..)]
        nodes: Vec<String>,
        snapshot_name: String,
        #[arg(required = true)]
        resource_names: Vec<String>,
    },
    /// Lists the snapshots.
    #[command(visible_alias = "l")]
    List {
        /// Only snapshots of these resources.
        #[arg(short = 'r', long = "resources", num_args = 1..)]
        resources: Vec<String>,
        /// Only snapshots on these nodes.
        #[arg(short = 'n', long = "nodes", num_args = 1..)]
        nodes: Vec<String>,
        /// Generate pastable output (ASCII, no colours).
        #[arg(short = 'p', long)]
        pastable: bool,
    },
    /// Rolls a resource back to a snapshot on all its nodes (it must be unused).
    Rollback {
        resource_definition_name: String,
        snapshot_name: String,
    },
    /// Deletes a snapshot (all its copies, or those on the nodes named).
    #[command(visible_alias = "d")]
    Delete {
        /// Only the copies on these nodes.
        #[arg(short = 'n', long = "nodes", num_args = 1..)]
        nodes: Vec<String>,
        resource_definition_name: String,
        snapshot_name: String,
    },
    /// Restores volume definitions from a snapshot into an empty resource definition.
    #[command(name = "volume-definition", visible_alias = "vd", subcommand)]
    VolumeDefinition(RestoreVd),
    /// Restores resources from a snapshot into a resource definition.
    #[command(visible_alias = "r", subcommand)]
    Resource(RestoreRsc),
}

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum RestoreVd {
    /// Gives the target definition the snapshot's volume definitions.
    Restore(FromTo),
}

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum RestoreRsc {
    /// Creates the target's resources from the snapshot's copies (on every node that has
    /// one, or on the nodes named).
    Restore {
        #[command(flatten)]
        from_to: FromTo,
        /// Nodes to restore on (default: every node holding the snapshot).
        node_name: Vec<String>,
    },
}

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct FromTo {
    #[arg(long = "from-resource", visible_alias = "from-rsc", required = true)]
    pub from_resource: String,
    #[arg(long = "from-snapshot", visible_alias = "from-snap", required = true)]
    pub from_snapshot: String,
    #[arg(long = "to-resource", visible_alias = "to-rsc", required = true)]
    pub to_resource: String,
}

pub fn requests(cmd: &SnapshotCmd) -> Result<Vec<Request>, CliError> {
    Ok(match cmd {
        SnapshotCmd::Create { args, .. } => {
            let (rest, names) = args.split_at(args.len() - 2);
            if names.len() != 2 {
                return Err(CliError::new(
                    ARGPARSE_ERROR,
                    "snapshot create needs a resource and a snapshot name",
                ));
            }
            vec![calls::snapshot_create(
                &names[0],
                &request::Snapshot {
                    name: names[1].clone(),
                    resource_name: None,
                    nodes: rest.to_vec(),
                },
            )]
        }
        SnapshotCmd::Delete {
            nodes,
            resource_definition_name,
            snapshot_name,
        } => vec![calls::snapshot_delete(
            resource_definition_name,
            snapshot_name,
            nodes,
        )],
        SnapshotCmd::CreateMultiple {
            nodes,
            snapshot_name,
            resource_names,
        } => {
            let snapshots = resource_names
                .iter()
                .map(|r| request::Snapshot {
                    name: snapshot_name.clone(),
                    resource_name: Some(r.clone()),
                    nodes: nodes.clone(),
                })
                .collect();
            vec![calls::snapshot_create_multi(
                &request::CreateMultiSnapshotRequest { snapshots },
            )]
        }
        SnapshotCmd::Rollback {
            resource_definition_name,
            snapshot_name,
        } => vec![calls::snapshot_rollback(
            resource_definition_name,
            snapshot_name,
            &SnapshotRollback::default(),
        )],
        SnapshotCmd::VolumeDefinition(RestoreVd::Restore(f)) => {
            vec![calls::snapshot_restore_volume_dfns(
                &f.from_resource,
                &f.from_snapshot,
                &request::SnapshotRestore {
                    to_resource: f.to_resource.clone(),
                    nodes: Vec::new(),
                },
            )]
        }
        SnapshotCmd::Resource(RestoreRsc::Restore { from_to, node_name }) => {
            vec![calls::snapshot_restore_resources(
                &from_to.from_resource,
                &from_to.from_snapshot,
                &request::SnapshotRestore {
                    to_resource: from_to.to_resource.clone(),
                    nodes: node_name.clone(),
                },
            )]
        }
        SnapshotCmd::List { .. } => Vec::new(),
    })
}

/// The State column: as LINSTOR's client shows it.
fn state(s: &Snapshot) -> &'static str {
    if s.flags.iter().any(|f| f == "DELETE") {
        "Deleting"
    } else if s.flags.iter().any(|f| f == "SUCCESSFUL") {
        "Successful"
    } else {
        "Incomplete"
    }
}

pub fn render(list: &[Snapshot], style: crate::output::Style) -> String {
    let mut t = Table::new(style);
    t.column("ResourceName")
        .column("SnapshotName")
        .column("NodeNames")
        .column("Volumes")
        .column("CreatedOn")
        .column("State");
    for s in list {
        let volumes: Vec<String> = s
            .volume_definitions
            .iter()
            .map(|v| {
                format!(
                    "{}: {}",
                    v.volume_number,
                    strata_model::size::HumanKib(v.size_kib.max(0) as u64)
                )
            })
            .collect();
        let created = s.snapshots.iter().filter_map(|n| n.create_timestamp).min();
        t.row(vec![
            t.cell(s.resource_name.clone(), None),
            t.cell(s.name.clone(), None),
            t.cell(s.nodes.join(", "), None),
            t.cell(volumes.join(", "), None),
            t.cell(created_on(created), None),
            t.cell(state(s), None),
        ]);
    }
    t.sort_by_first();
    t.render()
}

pub async fn run(ctx: &mut Ctx, cmd: SnapshotCmd) -> Result<i32, CliError> {
    if let SnapshotCmd::List {
        resources,
        nodes,
        pastable,
    } = &cmd
    {
        let raw = ctx.fetch(calls::snapshots(resources, nodes)).await?;
        let style = ctx.style(*pastable);
        return ctx.show_list(&raw, || {
            let list: Vec<Snapshot> = parse(&raw, "snapshot list")?;
            Ok(render(&list, style))
        });
    }
    let reqs = requests(&cmd)?;
    ctx.send(reqs).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse_line, Command};

    fn cmd(args: &[&str]) -> SnapshotCmd {
        match parse_line(args).unwrap().command {
            Some(Command::Snapshot(c)) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn snapshot_requests() {
        let r = requests(&cmd(&["linstor", "snapshot", "create", "r1", "s1"])).unwrap();
        assert_eq!(
            r,
            vec![Request::post(
                "/v1/resource-definitions/r1/snapshots",
                json!({"name": "s1"})
            )]
        );
        let r = requests(&cmd(&["linstor", "s", "c", "alpha", "bravo", "r1", "s1"])).unwrap();
        assert_eq!(
            r[0].body,
            Some(json!({"name": "s1", "nodes": ["alpha", "bravo"]}))
        );
        assert!(parse_line(&["linstor", "snapshot", "create", "r1"]).is_err());
        let r = requests(&cmd(&["linstor", "snapshot", "delete", "r1", "s1"])).unwrap();
        assert_eq!(
            r,
            vec![Request::delete("/v1/resource-definitions/r1/snapshots/s1")]
        );
        let r = requests(&cmd(&["linstor", "snapshot", "rollback", "r1", "s1"])).unwrap();
        assert_eq!(
            r,
            vec![Request::post(
                "/v1/resource-definitions/r1/snapshot-rollback/s1",
                json!({})
            )]
        );
        let r = requests(&cmd(&[
            "linstor",
            "snapshot",
            "volume-definition",
            "restore",
            "--from-resource",
            "r1",
            "--from-snapshot",
            "s1",
            "--to-resource",
            "r2",
        ]))
        .unwrap();
        assert_eq!(
            r,
            vec![Request::post(
                "/v1/resource-definitions/r1/snapshot-restore-volume-definition/s1",
                json!({"to_resource": "r2"})
            )]
        );
        let r = requests(&cmd(&[
            "linstor",
            "snapshot",
            "resource",
            "restore",
            "--from-resource",
            "r1",
            "--from-snapshot",
            "s1",
            "--to-resource",
            "r2",
            "alpha",
        ]))
        .unwrap();
        assert_eq!(
            r,
            vec![Request::post(
                "/v1/resource-definitions/r1/snapshot-restore-resource/s1",
                json!({"to_resource": "r2", "nodes": ["alpha"]})
            )]
        );
    }

    #[test]
    fn snapshot_table() {
        let list: Vec<Snapshot> = serde_json::from_value(json!([{
            "name": "s1", "resource_name": "r1", "nodes": ["alpha", "bravo"],
            "flags": ["SUCCESSFUL"],
            "volume_definitions": [{"volume_number": 0, "size_kib": 65536}],
            "snapshots": []
        }, {
            "name": "s2", "resource_name": "r1", "nodes": ["alpha"], "flags": [],
            "volume_definitions": [], "snapshots": []
        }]))
        .unwrap();
        let text = render(
            &list,
            crate::output::Style {
                utf8: false,
                color: false,
            },
        );
        assert!(text.contains("| r1           | s1           | alpha, bravo | 0: 64 MiB |           | Successful |"), "{text}");
        assert!(text.contains("Incomplete"), "{text}");
    }
}
