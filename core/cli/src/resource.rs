//! `resource` (`r`) and `volume` (`v`).

use std::collections::BTreeMap;

use clap::{Args, Subcommand};
#[cfg(test)]
use serde_json::json;
use strata_api::types::{
    request, ResourceLayer, ResourceMakeAvailable, ResourceModify, ResourceWithVolumes,
    ToggleDiskRequest, Volume, VolumeModify,
};
use strata_client::calls;
use strata_model::size::HumanKib;

use crate::common::{
    autoplace_request, parse_layer_list, parse_place_count, parse_provider_list, prop_cell,
    show_prop_columns, FilterArgs, LayerList, ListOpts, ProviderList, Request, SelectFilter,
    SetPropArgs,
};
use crate::context::{parse, Ctx};
use crate::error::CliError;
use crate::output::{self, color, Style};
use crate::table::{Cell, Just, Table};

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum ResourceCmd {
    /// Deploys a resource definition on nodes, or lets the auto-placer pick them.
    #[command(visible_alias = "c")]
    Create(RCreate),
    /// Makes a resource available on a node (does nothing if it is already there).
    #[command(visible_alias = "mkavail")]
    MakeAvailable {
        /// Make the resource diskful on the node.
        #[arg(long)]
        diskful: bool,
        /// Comma separated layer list, top-most layer first.
        #[arg(short = 'l', long = "layer-list", value_parser = parse_layer_list)]
        layer_list: Option<LayerList>,
        node_name: String,
        resource_name: String,
    },
    /// Gives a diskless resource a disk, or takes the disk of a resource away (DRBD only).
    #[command(visible_alias = "td")]
    ToggleDisk {
        /// Storage pool of the new disk (or the DISKLESS pool to use with --diskless).
        #[arg(
            short = 's',
            long = "storage-pool",
            conflicts_with = "default_storage_pool"
        )]
        storage_pool: Option<String>,
        /// Use the storage pool the resource would get by default.
        #[arg(long = "default-storage-pool", visible_alias = "dflt")]
        default_storage_pool: bool,
        /// Take the disk away: the resource reads and writes through its peers.
        #[arg(short = 'd', long)]
        diskless: bool,
        /// Delete the resource on this node once the new disk is in sync.
        #[arg(long = "migrate-from", value_name = "MIGRATION_SOURCE")]
        migrate_from: Option<String>,
        /// Deprecated, kept for compatibility.
        #[arg(long = "async")]
        async_: bool,
        node_name: String,
        name: String,
    },
    /// Lists the resources.
    #[command(visible_alias = "l")]
    List(RList),
    /// Lists the volumes of the resources.
    #[command(visible_alias = "lv")]
    ListVolumes(VList),
    /// Removes a resource from nodes.
    #[command(visible_alias = "d")]
    Delete {
        /// Deprecated, kept for compatibility.
        #[arg(long = "async")]
        async_: bool,
        #[arg(required = true)]
        node_name: Vec<String>,
        name: String,
    },
    /// Sets a property of a resource on a node.
    #[command(visible_alias = "sp")]
    SetProperty {
        node_name: String,
        name: String,
        #[command(flatten)]
        prop: SetPropArgs,
    },
    /// Prints the properties of a resource on a node.
    #[command(visible_alias = "lp")]
    ListProperties {
        #[arg(short = 'p', long)]
        pastable: bool,
        node_name: String,
        resource_name: String,
    },
}

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct RCreate {
    /// Deprecated: use --drbd-diskless or --nvme-initiator.
    #[arg(short = 'd', long)]
    pub diskless: bool,
    /// Use this DRBD node id.
    #[arg(long = "node-id")]
    pub node_id: Option<i64>,
    /// Deprecated, kept for compatibility.
    #[arg(long = "async")]
    pub async_: bool,
    /// Mark the resource as NVMe initiator.
    #[arg(long = "nvme-initiator")]
    pub nvme_initiator: bool,
    /// Mark the resource as DRBD diskless.
    #[arg(long = "drbd-diskless")]
    pub drbd_diskless: bool,
    /// Mark the resource as EBS initiator.
    #[arg(long = "ebs-initiator")]
    pub ebs_initiator: bool,
    /// Create the resource inactive.
    #[arg(long)]
    pub inactive: bool,
    /// Storage pool to use (repeat the option or separate with commas for several).
    #[arg(
        short = 's',
        long = "storage-pool",
        num_args = 1,
        value_delimiter = ','
    )]
    pub storage_pool: Option<Vec<String>>,
    /// Place the resource on this many nodes (N, +N for additional ones, or max).
    #[arg(long = "auto-place", value_name = "REPLICA_COUNT")]
    pub auto_place: Option<String>,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Comma separated provider kinds the storage pools must have.
    #[arg(short = 'p', long = "providers", value_parser = parse_provider_list)]
    pub providers: Option<ProviderList>,
    /// Nodes to deploy the resource on, then the resource definition (the last name).
    #[arg(required = true, value_name = "NODE_NAME... RESOURCE_DEFINITION_NAME")]
    pub names: Vec<String>,
}

impl RCreate {
    /// The nodes named before the resource definition.
    pub fn nodes(&self) -> &[String] {
        self.names.split_last().map(|(_, n)| n).unwrap_or(&[])
    }

    pub fn resource_definition_name(&self) -> &str {
        self.names.last().map(String::as_str).unwrap_or("")
    }
}

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct RList {
    #[command(flatten)]
    pub list: ListOpts,
    /// Filter by resources.
    #[arg(short = 'r', long = "resources", num_args = 1..)]
    pub resources: Vec<String>,
    /// Filter by nodes.
    #[arg(short = 'n', long = "nodes", num_args = 1..)]
    pub nodes: Vec<String>,
    /// Show all resources.
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only show faulty resources.
    #[arg(long)]
    pub faulty: bool,
    /// Filter by properties.
    #[arg(long = "props", num_args = 1..)]
    pub props: Vec<String>,
    /// Show these properties as columns (KEY or KEY=HEADER).
    #[arg(short = 's', long = "show-props", num_args = 1..)]
    pub show_props: Vec<String>,
}

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct VList {
    /// Generate pastable output (ASCII, no colours).
    #[arg(short = 'p', long)]
    pub pastable: bool,
    /// Filter by nodes.
    #[arg(short = 'n', long = "nodes", num_args = 1..)]
    pub nodes: Vec<String>,
    /// Filter by storage pools.
    #[arg(short = 's', long = "storage-pools", num_args = 1..)]
    pub storage_pools: Vec<String>,
    /// Filter by resources.
    #[arg(short = 'r', long = "resources", num_args = 1..)]
    pub resources: Vec<String>,
    /// Show all resources.
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Show these properties as columns (KEY or KEY=HEADER).
    #[arg(long = "show-props", num_args = 1..)]
    pub show_props: Vec<String>,
}

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum VolumeCmd {
    /// Lists the volumes of the resources.
    #[command(visible_alias = "l")]
    List(VList),
    /// Sets a property of a volume.
    #[command(visible_alias = "sp")]
    SetProperty {
        node_name: String,
        resource_name: String,
        volume_number: u32,
        #[command(flatten)]
        prop: SetPropArgs,
    },
    /// Prints the properties of a volume.
    #[command(visible_alias = "lp")]
    ListProperties {
        #[arg(short = 'p', long)]
        pastable: bool,
        node_name: String,
        resource_name: String,
        volume_number: u32,
    },
}

/// `resource create`: one auto-place request, or one request creating the resource on every
/// node given.
pub fn create_request(a: &RCreate) -> Result<Request, CliError> {
    if let Some(ap) = &a.auto_place {
        let (place_count, additional) = parse_place_count(ap)?;
        let mut f = SelectFilter::from_args(&a.filter, &a.storage_pool, &a.providers);
        f.place_count = place_count;
        f.additional_place_count = additional;
        f.diskless_type = if a.drbd_diskless {
            Some("DRBD_DISKLESS".into())
        } else if a.nvme_initiator {
            Some("NVME_INITIATOR".into())
        } else if a.diskless {
            Some("DISKLESS".into())
        } else {
            None
        };
        return Ok(autoplace_request(
            a.resource_definition_name(),
            &f,
            &a.filter.layer_list,
        ));
    }
    if a.nodes().is_empty() {
        return Err(CliError::usage(
            "resource create: too few arguments: Node name missing (or use --auto-place).",
        ));
    }
    let pool = a
        .storage_pool
        .as_ref()
        .and_then(|p| p.first())
        .filter(|p| !p.is_empty());
    let mut flags = Vec::new();
    for (on, flag) in [
        (a.diskless, "DISKLESS"),
        (a.drbd_diskless, "DRBD_DISKLESS"),
        (a.nvme_initiator, "NVME_INITIATOR"),
        (a.ebs_initiator, "EBS_INITIATOR"),
        (a.inactive, "INACTIVE"),
    ] {
        if on {
            flags.push(flag.to_string());
        }
    }
    let layer_list = a
        .filter
        .layer_list
        .as_ref()
        .map(|l| l.0.clone())
        .unwrap_or_default();
    let body: Vec<request::ResourceCreate> = a
        .nodes()
        .iter()
        .map(|node| request::ResourceCreate {
            resource: request::Resource {
                node_name: node.clone(),
                props: pool
                    .iter()
                    .map(|p| ("StorPoolName".to_string(), p.to_string()))
                    .collect(),
                flags: flags.clone(),
            },
            drbd_node_id: a.node_id,
            layer_list: layer_list.clone(),
        })
        .collect();
    Ok(calls::resource_create(a.resource_definition_name(), &body))
}

pub fn requests(cmd: &ResourceCmd) -> Result<Option<Vec<Request>>, CliError> {
    Ok(Some(match cmd {
        ResourceCmd::Create(a) => vec![create_request(a)?],
        ResourceCmd::MakeAvailable {
            diskful,
            layer_list,
            node_name,
            resource_name,
        } => vec![calls::make_available(
            resource_name,
            node_name,
            &ResourceMakeAvailable {
                layer_list: layer_list.as_ref().map(|l| l.0.clone()).unwrap_or_default(),
                diskful: Some(*diskful),
            },
        )],
        ResourceCmd::ToggleDisk {
            storage_pool,
            diskless,
            migrate_from,
            node_name,
            name,
            ..
        } => {
            let operation = if *diskless {
                "INTO_DRBD_DISKLESS"
            } else {
                "INTO_DRBD_DISKFUL"
            };
            vec![calls::toggle_disk(
                name,
                node_name,
                &ToggleDiskRequest {
                    operation: Some(operation.to_string()),
                    storage_pool: storage_pool.clone(),
                    migrate_from: migrate_from.clone(),
                },
            )]
        }
        ResourceCmd::Delete {
            node_name, name, ..
        } => node_name
            .iter()
            .map(|n| calls::resource_delete(name, n))
            .collect(),
        ResourceCmd::SetProperty {
            node_name,
            name,
            prop,
        } => vec![calls::resource_modify(
            name,
            node_name,
            &ResourceModify {
                props: prop.props_modify(),
                ..ResourceModify::default()
            },
        )],
        _ => return Ok(None),
    }))
}

pub fn volume_requests(cmd: &VolumeCmd) -> Option<Vec<Request>> {
    match cmd {
        VolumeCmd::SetProperty {
            node_name,
            resource_name,
            volume_number,
            prop,
        } => Some(vec![calls::volume_modify(
            resource_name,
            node_name,
            *volume_number,
            &VolumeModify {
                props: prop.props_modify(),
            },
        )]),
        _ => None,
    }
}

/// The path of the resource list query.
#[cfg(test)]
pub fn list_path(
    nodes: &[String],
    resources: &[String],
    pools: &[String],
    props: &[String],
) -> String {
    calls::resources(nodes, resources, pools, props).path
}

pub async fn run(ctx: &mut Ctx, cmd: ResourceCmd) -> Result<i32, CliError> {
    if let Some(reqs) = requests(&cmd)? {
        return ctx.send(reqs).await;
    }
    match cmd {
        ResourceCmd::List(a) => {
            let raw = ctx
                .fetch(calls::resources(&a.nodes, &a.resources, &[], &a.props))
                .await?;
            let style = ctx.style(a.list.pastable);
            ctx.show_list(&raw, || {
                let rscs: Vec<ResourceWithVolumes> = parse(&raw, "resource list")?;
                Ok(render_resources(&rscs, &a, style))
            })
        }
        ResourceCmd::ListVolumes(a) => list_volumes(ctx, a).await,
        ResourceCmd::ListProperties {
            pastable,
            node_name,
            resource_name,
        } => {
            let raw = ctx
                .fetch(calls::resources(
                    std::slice::from_ref(&node_name),
                    std::slice::from_ref(&resource_name),
                    &[],
                    &[],
                ))
                .await?;
            let rscs: Vec<ResourceWithVolumes> = parse(&raw, "resource list")?;
            Ok(ctx.show_props(rscs.first().map(|r| &r.resource.props), pastable))
        }
        _ => unreachable!("write commands are handled by requests()"),
    }
}

pub async fn run_volume(ctx: &mut Ctx, cmd: VolumeCmd) -> Result<i32, CliError> {
    if let Some(reqs) = volume_requests(&cmd) {
        return ctx.send(reqs).await;
    }
    match cmd {
        VolumeCmd::List(a) => list_volumes(ctx, a).await,
        VolumeCmd::ListProperties {
            pastable,
            node_name,
            resource_name,
            volume_number,
        } => {
            let raw = ctx
                .fetch(calls::resources(
                    std::slice::from_ref(&node_name),
                    std::slice::from_ref(&resource_name),
                    &[],
                    &[],
                ))
                .await?;
            let rscs: Vec<ResourceWithVolumes> = parse(&raw, "resource list")?;
            let props = rscs
                .first()
                .and_then(|r| {
                    r.volumes
                        .iter()
                        .find(|v| v.volume_number as u32 == volume_number)
                })
                .map(|v| &v.props);
            Ok(ctx.show_props(props, pastable))
        }
        VolumeCmd::SetProperty { .. } => unreachable!("handled by volume_requests()"),
    }
}

async fn list_volumes(ctx: &mut Ctx, a: VList) -> Result<i32, CliError> {
    let raw = ctx
        .fetch(calls::resources(
            &a.nodes,
            &a.resources,
            &a.storage_pools,
            &[],
        ))
        .await?;
    let style = ctx.style(a.pastable);
    ctx.show_list(&raw, || {
        let rscs: Vec<ResourceWithVolumes> = parse(&raw, "resource list")?;
        Ok(render_volumes(&rscs, &a, style))
    })
}

/// The layers of a resource, top-most first: `DRBD,STORAGE`.
pub fn layer_names(layer: &ResourceLayer) -> String {
    fn walk(l: &ResourceLayer, out: &mut Vec<String>) {
        if !out.contains(&l.layer_type) {
            out.push(l.layer_type.clone());
        }
        for c in &l.children {
            walk(c, out);
        }
    }
    let mut out = Vec::new();
    walk(layer, &mut out);
    out.join(",")
}

/// The DRBD layer of a layer tree, wherever it sits.
pub fn drbd_layer(layer: &ResourceLayer) -> Option<&strata_api::types::DrbdResource> {
    if let Some(d) = &layer.drbd {
        return Some(d);
    }
    layer.children.iter().find_map(drbd_layer)
}

/// The State of a volume and its colour (None: the default, green in the column colour).
pub fn volume_state(v: &Volume, rsc_flags: &[String]) -> (String, Option<&'static str>) {
    let has = |f: &str| rsc_flags.iter().any(|x| x == f);
    let prefix = if v.flags.iter().any(|f| f == "RESIZE") {
        "Resizing, "
    } else {
        ""
    };
    let expects_disk_state = v
        .layer_data_list
        .first()
        .is_some_and(|l| l.layer_type == "DRBD");
    if !expects_disk_state {
        return (format!("{prefix}Created"), None);
    }
    // A replica receiving a resync shows how far it got.
    let receiving = v.state.as_ref().and_then(|s| {
        s.replication_states.values().find(|r| {
            matches!(
                r.replication_state.as_deref(),
                Some("SyncTarget" | "PausedSyncT")
            )
        })
    });
    if let Some(r) = receiving {
        let name = r.replication_state.as_deref().unwrap_or_default();
        let text = match r.done_percentage {
            Some(p) => format!("{prefix}{name}({p:.2}%)"),
            None => format!("{prefix}{name}"),
        };
        return (text, Some(color::YELLOW));
    }
    let disk_state = v
        .state
        .as_ref()
        .and_then(|s| s.disk_state.as_deref())
        .filter(|s| !s.is_empty());
    match disk_state {
        None => (format!("{prefix}Unknown"), Some(color::YELLOW)),
        Some("DUnknown") => (format!("{prefix}Unknown"), Some(color::YELLOW)),
        Some("Diskless") => {
            if !has("DISKLESS") {
                (format!("{prefix}Diskless"), Some(color::RED))
            } else if has("TIE_BREAKER") {
                ("TieBreaker".to_string(), None)
            } else {
                (format!("{prefix}Diskless"), None)
            }
        }
        Some(
            s @ ("Inconsistent" | "Failed" | "To: Creating" | "To: Attachable" | "To: Attaching"),
        ) => (format!("{prefix}{s}"), Some(color::RED)),
        Some(s @ ("UpToDate" | "Created" | "Attached")) => (format!("{prefix}{s}"), None),
        Some(s) => (format!("{prefix}{s}"), Some(color::YELLOW)),
    }
}

/// The Repl cell: the replication state towards the peers, with the sync progress.
pub fn replication_cell(v: &Volume) -> (String, Option<&'static str>) {
    let Some(states) = v.state.as_ref().map(|s| &s.replication_states) else {
        return (String::new(), None);
    };
    if states.is_empty() {
        return (String::new(), None);
    }
    let worst = states
        .values()
        .find(|s| s.replication_state.as_deref() != Some("Established"))
        .or_else(|| states.values().next());
    let Some(st) = worst else {
        return (String::new(), None);
    };
    let name = st.replication_state.clone().unwrap_or_default();
    let pct = st
        .done_percentage
        .map(|p| format!("{p:.2}%"))
        .unwrap_or_else(|| "?".to_string());
    match name.as_str() {
        "SyncTarget" | "PausedSyncS" | "PausedSyncT" => {
            (format!("{name}({pct})"), Some(color::YELLOW))
        }
        "VerifyT" => (format!("{name}({pct})"), Some(color::GRAY)),
        "Established" => (name, Some(color::GREEN)),
        _ => (name, None),
    }
}

pub fn created_on(ms: Option<i64>) -> String {
    use chrono::TimeZone;
    ms.and_then(|ms| chrono::Local.timestamp_millis_opt(ms).single())
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

pub fn render_resources(rscs: &[ResourceWithVolumes], a: &RList, style: Style) -> String {
    let mut t = Table::new(style);
    t.column("ResourceName")
        .column("Node")
        .column("Layers")
        .column_with("Usage", Some(color::DARKGREEN), Just::Left)
        .column_with("Conns", Some(color::DARKGREEN), Just::Left)
        .column_with("State", Some(color::DARKGREEN), Just::Right)
        .column("CreatedOn");
    let extra = show_prop_columns(&a.show_props);
    for (_, h) in &extra {
        t.column(h);
    }
    for rv in rscs {
        let r = &rv.resource;
        let has = |f: &str| r.flags.iter().any(|x| x == f);
        let mut state = "Unknown".to_string();
        let mut state_color = Some(color::YELLOW);
        let mut usage = t.cell("", None);
        if has("DELETE") || has("DRBD_DELETE") {
            state = "DELETING".into();
            state_color = Some(color::RED);
        } else if has("INACTIVE") {
            state = "INACTIVE".into();
        } else if let Some(st) = &r.state {
            match st.in_use {
                Some(true) => usage = t.cell("InUse", Some(color::GREEN)),
                Some(false) => usage = t.cell("Unused", None),
                None => {}
            }
            for v in &rv.volumes {
                let (s, c) = volume_state(v, &r.flags);
                state = s;
                state_color = c;
                if has("EVACUATE") {
                    state.push_str(", Evacuating");
                }
                if state_color.is_some() {
                    break;
                }
            }
        }
        let mut conns = t.cell("", None);
        let mut conns_failed = false;
        if state != "Unknown" {
            let mut failed: Vec<(String, Vec<String>)> = Vec::new();
            if let Some(d) = r.layer_object.as_ref().and_then(drbd_layer) {
                for (peer, c) in &d.connections {
                    if !c.connected {
                        let msg = c.message.clone().unwrap_or_default();
                        match failed.iter_mut().find(|(m, _)| *m == msg) {
                            Some((_, peers)) => peers.push(peer.clone()),
                            None => failed.push((msg, vec![peer.clone()])),
                        }
                    }
                }
            }
            if failed.is_empty() {
                conns = t.cell("Ok", None);
            } else {
                conns_failed = true;
                let text: Vec<String> = failed
                    .iter()
                    .map(|(m, p)| format!("{m}({})", p.join(",")))
                    .collect();
                conns = t.cell(text.join(","), Some(color::RED));
            }
        }
        if a.faulty && state_color.is_none() && (conns.text == "Ok" || conns.text.is_empty()) {
            continue;
        }
        let state_cell = t.cell(
            state,
            if conns_failed {
                Some(color::RED)
            } else {
                state_color
            },
        );
        let mut row: Vec<Cell> = vec![
            r.name.as_str().into(),
            r.node_name.as_str().into(),
            r.layer_object
                .as_ref()
                .map(layer_names)
                .unwrap_or_default()
                .into(),
            usage,
            conns,
            state_cell,
            created_on(r.create_timestamp).into(),
        ];
        for (k, _) in &extra {
            row.push(prop_cell(&r.props, k).into());
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

pub fn render_volumes(rscs: &[ResourceWithVolumes], a: &VList, style: Style) -> String {
    let mut t = Table::new(style);
    t.column("Resource")
        .column("Node")
        .column("StoragePool")
        .column_with("VolNr", None, Just::Right)
        .column_with("MinorNr", None, Just::Right)
        .column("DeviceName")
        .column_with("Allocated", None, Just::Right)
        .column("InUse")
        .column_with("State", Some(color::DARKGREEN), Just::Right)
        .column("Repl");
    let extra = show_prop_columns(&a.show_props);
    for (_, h) in &extra {
        t.column(h);
    }
    let mut in_use: BTreeMap<&str, usize> = BTreeMap::new();
    for rv in rscs {
        if rv.resource.state.as_ref().and_then(|s| s.in_use) == Some(true) {
            *in_use.entry(rv.resource.name.as_str()).or_default() += 1;
        }
    }
    let mut reports = Vec::new();
    for rv in rscs {
        let r = &rv.resource;
        let has = |f: &str| r.flags.iter().any(|x| x == f);
        if has("INACTIVE") && !has("EVICTED") {
            continue;
        }
        let usage = match r.state.as_ref().and_then(|s| s.in_use) {
            Some(true) => {
                let c = if in_use.get(r.name.as_str()).copied().unwrap_or(0) > 1 {
                    color::YELLOW
                } else {
                    color::GREEN
                };
                t.cell("InUse", Some(c))
            }
            Some(false) => t.cell("Unused", None),
            None => t.cell("", None),
        };
        let conn_failed = r
            .layer_object
            .as_ref()
            .and_then(drbd_layer)
            .is_some_and(|d| d.connections.values().any(|c| !c.connected));
        for v in &rv.volumes {
            let (text, mut col) = if has("INACTIVE") {
                ("INACTIVE".to_string(), Some(color::YELLOW))
            } else {
                volume_state(v, &r.flags)
            };
            if conn_failed {
                col = Some(color::RED);
            }
            let state = if v.reports.iter().any(|x| x.is_error()) {
                t.cell("Error", Some(color::RED))
            } else {
                t.cell(text, col)
            };
            reports.extend(v.reports.iter().cloned());
            let minor = v
                .layer_data_list
                .iter()
                .find(|l| l.layer_type == "DRBD")
                .and_then(|l| l.data.as_ref())
                .and_then(|d| d.drbd())
                .and_then(|d| d.drbd_volume_definition.as_ref())
                .and_then(|d| d.minor_number)
                .map(|m| m.to_string())
                .unwrap_or_default();
            let allocated = v
                .allocated_size_kib
                .filter(|k| *k > 0)
                .map(|k| HumanKib(k as u64).to_string())
                .unwrap_or_default();
            let (repl, repl_color) = replication_cell(v);
            let mut row: Vec<Cell> = vec![
                r.name.as_str().into(),
                r.node_name.as_str().into(),
                v.storage_pool_name.clone().unwrap_or_default().into(),
                v.volume_number.to_string().into(),
                minor.into(),
                v.device_path.clone().unwrap_or_default().into(),
                allocated.into(),
                usage.clone(),
                state,
                t.cell(repl, repl_color),
            ];
            for (k, _) in &extra {
                row.push(prop_cell(&v.props, k).into());
            }
            t.row(row);
        }
    }
    let mut s = t.render();
    for r in &reports {
        s.push_str(&output::format_reply(r, style.color));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse_line, Command};

    fn r(args: &[&str]) -> ResourceCmd {
        match parse_line(args).unwrap().command {
            Some(Command::Resource(c)) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn create_on_named_nodes() {
        let reqs = requests(&r(&[
            "linstor",
            "resource",
            "create",
            "--storage-pool",
            "thinpool",
            "vulcan",
            "kronos",
            "LocalData",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            reqs,
            vec![Request::post(
                "/v1/resource-definitions/LocalData/resources",
                json!([
                    {"resource": {"node_name": "vulcan", "props": {"StorPoolName": "thinpool"}}},
                    {"resource": {"node_name": "kronos", "props": {"StorPoolName": "thinpool"}}}
                ])
            )]
        );
    }

    #[test]
    fn create_with_flags() {
        let reqs = requests(&r(&[
            "linstor",
            "r",
            "c",
            "--drbd-diskless",
            "--node-id",
            "3",
            "-l",
            "drbd,storage",
            "n1",
            "res",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            reqs[0].body,
            Some(
                json!([{"resource": {"node_name": "n1", "flags": ["DRBD_DISKLESS"]}, "drbd_node_id": 3,
                         "layer_list": ["drbd", "storage"]}])
            )
        );
        let e = requests(&r(&["linstor", "r", "c", "res"])).unwrap_err();
        assert_eq!(e.code, crate::error::ARGPARSE_ERROR);
    }

    #[test]
    fn create_auto_place() {
        let reqs = requests(&r(&[
            "linstor",
            "resource",
            "create",
            "backups",
            "--auto-place",
            "2",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            reqs,
            vec![Request::post(
                "/v1/resource-definitions/backups/autoplace",
                json!({"diskless_on_remaining": null, "select_filter": {"place_count": 2}})
            )]
        );
        let reqs = requests(&r(&[
            "linstor",
            "r",
            "c",
            "--auto-place",
            "+1",
            "-s",
            "a,b",
            "--replicas-on-same",
            "rack",
            "--diskless-on-remaining",
            "--do-not-place-with",
            "db1",
            "db2",
            "--providers",
            "LVM_THIN",
            "--layer-list",
            "drbd,storage",
            "res",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            reqs[0].body,
            Some(json!({
                "diskless_on_remaining": true,
                "select_filter": {
                    "additional_place_count": 1,
                    "diskless_on_remaining": true,
                    "storage_pool_list": ["a", "b"],
                    "replicas_on_same": ["Aux/rack"],
                    "not_place_with_rsc": ["db1", "db2"],
                    "provider_list": ["LVM_THIN"],
                    "layer_stack": ["drbd", "storage"]
                },
                "layer_list": ["drbd", "storage"]
            }))
        );
        assert!(requests(&r(&["linstor", "r", "c", "--auto-place", "many", "res"])).is_err());
    }

    #[test]
    fn other_writes() {
        let reqs = requests(&r(&["linstor", "r", "d", "a", "b", "res"]))
            .unwrap()
            .unwrap();
        assert_eq!(
            reqs,
            vec![
                Request::delete("/v1/resource-definitions/res/resources/a"),
                Request::delete("/v1/resource-definitions/res/resources/b")
            ]
        );
        let reqs = requests(&r(&["linstor", "r", "mkavail", "--diskful", "n1", "res"]))
            .unwrap()
            .unwrap();
        assert_eq!(
            reqs[0],
            Request::post(
                "/v1/resource-definitions/res/resources/n1/make-available",
                json!({"diskful": true})
            )
        );
        let reqs = requests(&r(&[
            "linstor",
            "r",
            "sp",
            "n1",
            "res",
            "DrbdOptions/Disk/on-io-error",
            "detach",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(reqs[0].path, "/v1/resource-definitions/res/resources/n1");
        let v = match parse_line(&["linstor", "v", "sp", "n1", "res", "0", "--aux", "k", "v"])
            .unwrap()
            .command
        {
            Some(Command::Volume(v)) => v,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            volume_requests(&v).unwrap(),
            vec![Request::put(
                "/v1/resource-definitions/res/resources/n1/volumes/0",
                json!({"override_props": {"Aux/k": "v"}})
            )]
        );
    }

    fn sample() -> Vec<ResourceWithVolumes> {
        serde_json::from_value(json!([
            {"name": "res", "node_name": "n2", "flags": [], "props": {},
             "layer_object": {"type": "DRBD", "children": [{"type": "STORAGE", "children": []}],
                              "drbd": {"connections": {"n1": {"connected": false, "message": "Connecting"}}}},
             "state": {"in_use": false},
             "volumes": [{"volume_number": 0, "storage_pool_name": "pool", "provider_kind": "LVM",
                          "device_path": "/dev/drbd1000", "allocated_size_kib": 102400,
                          "layer_data_list": [{"type": "DRBD", "data": {"drbd_volume_definition": {"minor_number": 1000}}},
                                              {"type": "STORAGE"}],
                          "state": {"disk_state": "UpToDate"}}]},
            {"name": "local", "node_name": "n1", "flags": [], "props": {},
             "layer_object": {"type": "STORAGE", "children": []},
             "state": {"in_use": true},
             "volumes": [{"volume_number": 0, "storage_pool_name": "pool", "provider_kind": "LVM",
                          "device_path": "/dev/vg/local_00000", "allocated_size_kib": 153600,
                          "layer_data_list": [{"type": "STORAGE"}], "state": {}}]},
            {"name": "broken", "node_name": "n1", "flags": [], "props": {},
             "layer_object": {"type": "STORAGE", "children": []},
             "state": {"in_use": false},
             "volumes": [{"volume_number": 0, "storage_pool_name": "pool", "provider_kind": "LVM",
                          "layer_data_list": [{"type": "STORAGE"}],
                          "reports": [{"ret_code": -4611686018427387903i64, "message": "lvcreate failed"}]}]}
        ]))
        .unwrap()
    }

    #[test]
    fn volume_list_table() {
        let a = match r(&["linstor", "resource", "list-volumes"]) {
            ResourceCmd::ListVolumes(a) => a,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            list_path(&a.nodes, &a.resources, &a.storage_pools, &[]),
            "/v1/view/resources"
        );
        let out = render_volumes(&sample(), &a, Style::PLAIN);
        let expected = "\
+--------------------------------------------------------------------------------------------------------------+
| Resource | Node | StoragePool | VolNr | MinorNr | DeviceName          | Allocated | InUse  |    State | Repl |
|==============================================================================================================|
| res      | n2   | pool        |     0 |    1000 | /dev/drbd1000       |   100 MiB | Unused | UpToDate |      |
| local    | n1   | pool        |     0 |         | /dev/vg/local_00000 |   150 MiB | InUse  |  Created |      |
| broken   | n1   | pool        |     0 |         |                     |           | Unused |    Error |      |
+--------------------------------------------------------------------------------------------------------------+
ERROR:
    lvcreate failed
";
        assert_eq!(out, expected);
    }

    #[test]
    fn resource_list_table() {
        let a = match r(&["linstor", "r", "l"]) {
            ResourceCmd::List(a) => a,
            other => panic!("{other:?}"),
        };
        let out = render_resources(&sample(), &a, Style::PLAIN);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[1], "| ResourceName | Node | Layers       | Usage  | Conns          |    State | CreatedOn |");
        assert_eq!(lines[3], "| broken       | n1   | STORAGE      | Unused | Ok             |  Created |           |");
        assert_eq!(lines[4], "| local        | n1   | STORAGE      | InUse  | Ok             |  Created |           |");
        assert_eq!(lines[5], "| res          | n2   | DRBD,STORAGE | Unused | Connecting(n1) | UpToDate |           |");
        let faulty = match r(&["linstor", "r", "l", "--faulty"]) {
            ResourceCmd::List(a) => a,
            other => panic!("{other:?}"),
        };
        let out = render_resources(&sample(), &faulty, Style::PLAIN);
        assert_eq!(out.lines().count(), 5, "{out}");
        assert!(out.contains("Connecting(n1)"));
    }

    #[test]
    fn volume_states() {
        let rs = sample();
        let drbd = &rs[0].volumes[0];
        assert_eq!(volume_state(drbd, &[]), ("UpToDate".to_string(), None));
        let mut v = drbd.clone();
        v.state.as_mut().unwrap().disk_state = Some("Diskless".into());
        assert_eq!(volume_state(&v, &[]).1, Some(color::RED));
        assert_eq!(
            volume_state(&v, &["DISKLESS".into(), "TIE_BREAKER".into()]).0,
            "TieBreaker"
        );
        v.state.as_mut().unwrap().disk_state = Some("Inconsistent".into());
        assert_eq!(
            volume_state(&v, &[]),
            ("Inconsistent".to_string(), Some(color::RED))
        );
        // Receiving a resync: its progress.
        v.state.as_mut().unwrap().replication_states.insert(
            "n2".into(),
            strata_api::types::ReplicationState {
                replication_state: Some("SyncTarget".into()),
                done_percentage: Some(45.123),
            },
        );
        assert_eq!(
            volume_state(&v, &[]),
            ("SyncTarget(45.12%)".to_string(), Some(color::YELLOW))
        );
        v.state = None;
        assert_eq!(
            volume_state(&v, &[]),
            ("Unknown".to_string(), Some(color::YELLOW))
        );
        v.flags = vec!["RESIZE".into()];
        assert_eq!(volume_state(&v, &[]).0, "Resizing, Unknown");
        assert_eq!(
            volume_state(&rs[1].volumes[0], &[]),
            ("Created".to_string(), None)
        );
    }
}
