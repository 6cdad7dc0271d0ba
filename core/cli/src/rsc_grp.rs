//! `resource-group` (`rg`) and `volume-group` (`vg`).

use clap::{Args, Subcommand};
#[cfg(test)]
use serde_json::json;
use strata_api::types::{
    request, AutoSelectFilter, MaxVolumeSizes, PropsModify, ResourceGroup, ResourceGroupAdjust,
    ResourceGroupModify, ResourceGroupSpawn, StoragePoolDefinition, VolumeGroup, VolumeGroupModify,
};
use strata_client::calls;
use strata_model::size::DefaultUnit;

use crate::common::{
    parse_place_count, parse_provider_list, prop_cell, py_list, py_str, ranged, show_prop_columns,
    size_kib, FilterArgs, ListOpts, ProviderList, Request, SelectFilter, SetPropArgs,
};
use crate::context::{out, parse, Ctx};
use crate::controller::render_max_sizes;
use crate::drbd_opts::{AllSections, DrbdOptionArgs};
use crate::error::{self, CliError};
use crate::output::Style;
use crate::table::{Cell, Table};

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum RgCmd {
    /// Creates a resource group.
    #[command(visible_alias = "c")]
    Create(RgCreate),
    /// Changes a resource group.
    #[command(visible_alias = "m")]
    Modify(RgCreate),
    /// Lists the resource groups.
    #[command(visible_alias = "l")]
    List(RgList),
    /// Removes a resource group.
    #[command(visible_alias = "d")]
    Delete { name: String },
    /// Sets a property of a resource group.
    #[command(visible_alias = "sp")]
    SetProperty {
        name: String,
        #[command(flatten)]
        prop: SetPropArgs,
    },
    /// Prints the properties of a resource group.
    #[command(visible_alias = "lp")]
    ListProperties {
        #[arg(short = 'p', long)]
        pastable: bool,
        name: String,
    },
    /// Sets DRBD options the group's resources inherit; --unset-<option> removes one.
    #[command(name = "drbd-options", visible_alias = "opt")]
    DrbdOptions {
        resource_group_name: String,
        #[command(flatten)]
        opts: DrbdOptionArgs<AllSections>,
    },
    /// Spawns a new resource with the settings of the resource group.
    #[command(name = "spawn-resources", visible_alias = "spawn")]
    Spawn(RgSpawn),
    /// Brings the resources of a group (of every group without a name) to its place count:
    /// adds missing replicas, deletes surplus ones that are safe to delete.
    Adjust {
        /// Deprecated, kept for compatibility.
        #[arg(long)]
        overprovision: bool,
        resource_group_name: Option<String>,
    },
    /// Shows the largest volume the resource group's placement could hold.
    #[command(visible_alias = "qmvs")]
    QueryMaxVolumeSize {
        #[arg(short = 'p', long)]
        pastable: bool,
        resource_group_name: String,
    },
}

/// The options of `resource-group create` and `modify`.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct RgCreate {
    /// Description of the resource group.
    #[arg(short = 'd', long)]
    pub description: Option<String>,
    /// DRBD peer slots for new resources.
    #[arg(long = "peer-slots", value_parser = ranged(1, 31))]
    pub peer_slots: Option<i64>,
    /// Storage pool name(s) to use; an empty string removes the setting.
    #[arg(short = 's', long = "storage-pool", num_args = 0..)]
    pub storage_pool: Option<Vec<String>>,
    /// Number of replicas to place; 0 removes the setting.
    #[arg(long = "place-count", value_name = "REPLICA_COUNT")]
    pub place_count: Option<String>,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Comma separated provider kinds the storage pools must have.
    #[arg(short = 'p', long = "providers", value_parser = parse_provider_list)]
    pub providers: Option<ProviderList>,
    /// Name of the resource group.
    pub name: String,
}

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct RgSpawn {
    /// Allow fewer volume sizes than the group has volume groups.
    #[arg(short = 'p', long)]
    pub partial: bool,
    /// Only create the definitions; do not place resources.
    #[arg(short = 'd', long = "definition-only", alias = "definitions-only")]
    pub definition_only: bool,
    /// A name of any characters for the new resource definition.
    #[arg(long = "external-name")]
    pub external_name: Option<String>,
    /// DRBD peer slots for new resources.
    #[arg(long = "peer-slots", value_parser = ranged(1, 31))]
    pub peer_slots: Option<i64>,
    /// Storage pool name(s) to use.
    #[arg(short = 's', long = "storage-pool", num_args = 0..)]
    pub storage_pool: Option<Vec<String>>,
    /// Number of replicas to place.
    #[arg(long = "place-count", value_name = "REPLICA_COUNT")]
    pub place_count: Option<String>,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Comma separated provider kinds the storage pools must have.
    #[arg(long = "providers", alias = "prov", value_parser = parse_provider_list)]
    pub providers: Option<ProviderList>,
    /// The resource group to spawn from.
    pub resource_group_name: String,
    /// Name of the new resource definition.
    pub resource_definition_name: String,
    /// Sizes of the volumes; a number without unit is GiB.
    pub volume_sizes: Vec<String>,
}

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct RgList {
    #[command(flatten)]
    pub list: ListOpts,
    /// Filter by resource groups.
    #[arg(short = 'r', long = "resource-groups", num_args = 1..)]
    pub resource_groups: Vec<String>,
    /// Filter by properties.
    #[arg(long = "props", num_args = 1..)]
    pub props: Vec<String>,
    /// Show these properties as columns (KEY or KEY=HEADER).
    #[arg(short = 's', long = "show-props", num_args = 1..)]
    pub show_props: Vec<String>,
}

fn place_count(pc: &Option<String>) -> Result<Option<i64>, CliError> {
    match pc {
        None => Ok(None),
        Some(s) => match s.trim().parse::<i64>() {
            Ok(n) if n >= 0 => Ok(Some(n)),
            _ => Err(CliError::usage(format!(
                "Invalid place count '{s}': use a whole number (0 removes it)"
            ))),
        },
    }
}

fn group_filter(a: &RgCreate) -> Result<SelectFilter, CliError> {
    let mut f = SelectFilter::from_args(&a.filter, &a.storage_pool, &a.providers);
    f.place_count = place_count(&a.place_count)?;
    Ok(f)
}

pub fn create_request(a: &RgCreate) -> Result<Request, CliError> {
    Ok(calls::resource_group_create(&request::ResourceGroup {
        name: a.name.clone(),
        description: a.description.clone().filter(|d| !d.is_empty()),
        select_filter: group_filter(a)?.to_filter(),
        peer_slots: a.peer_slots,
    }))
}

pub fn modify_request(a: &RgCreate) -> Result<Request, CliError> {
    Ok(calls::resource_group_modify(
        &a.name,
        &ResourceGroupModify {
            description: a.description.clone(),
            select_filter: Some(group_filter(a)?.to_filter()),
            peer_slots: a.peer_slots,
            ..ResourceGroupModify::default()
        },
    ))
}

/// With an external name, the definition's own name is sent empty.
pub fn spawn_request(a: &RgSpawn) -> Result<Request, CliError> {
    let sizes = a
        .volume_sizes
        .iter()
        .map(|s| size_kib(s, DefaultUnit::GiB))
        .collect::<Result<Vec<i64>, CliError>>()?;
    let mut f = SelectFilter::from_args(&a.filter, &a.storage_pool, &a.providers);
    if let Some(pc) = &a.place_count {
        let (p, _) = parse_place_count(pc)?;
        f.place_count = p;
    }
    let external = a.external_name.clone().filter(|e| !e.is_empty());
    let name = if external.is_some() {
        String::new()
    } else {
        a.resource_definition_name.clone()
    };
    Ok(calls::resource_group_spawn(
        &a.resource_group_name,
        &ResourceGroupSpawn {
            resource_definition_name: Some(name),
            resource_definition_external_name: external,
            volume_sizes: sizes,
            select_filter: f.to_filter(),
            partial: Some(a.partial),
            definitions_only: Some(a.definition_only),
            peer_slots: a.peer_slots,
            ..ResourceGroupSpawn::default()
        },
    ))
}

/// A modify body that changes properties only (its empty filter leaves the group's as it is).
fn rg_props(props: PropsModify) -> ResourceGroupModify {
    ResourceGroupModify {
        props,
        select_filter: Some(AutoSelectFilter::default()),
        ..ResourceGroupModify::default()
    }
}

pub fn rg_requests(cmd: &RgCmd) -> Result<Option<Vec<Request>>, CliError> {
    Ok(Some(match cmd {
        RgCmd::Create(a) => vec![create_request(a)?],
        RgCmd::Modify(a) => vec![modify_request(a)?],
        RgCmd::Delete { name } => vec![calls::resource_group_delete(name)],
        RgCmd::SetProperty { name, prop } => {
            vec![calls::resource_group_modify(
                name,
                &rg_props(prop.props_modify()),
            )]
        }
        RgCmd::DrbdOptions {
            resource_group_name,
            opts,
        } => vec![calls::resource_group_modify(
            resource_group_name,
            &rg_props(opts.props_modify()?),
        )],
        RgCmd::Spawn(a) => vec![spawn_request(a)?],
        RgCmd::Adjust {
            resource_group_name,
            ..
        } => {
            let adjust = ResourceGroupAdjust::default();
            vec![match resource_group_name {
                Some(n) => calls::resource_group_adjust(n, &adjust),
                None => calls::resource_groups_adjust_all(&adjust),
            }]
        }
        _ => return Ok(None),
    }))
}

pub async fn run_rg(ctx: &mut Ctx, cmd: RgCmd) -> Result<i32, CliError> {
    if let Some(reqs) = rg_requests(&cmd)? {
        return ctx.send(reqs).await;
    }
    match cmd {
        RgCmd::List(a) => {
            let raw = ctx
                .fetch(calls::resource_groups(&a.resource_groups, &a.props))
                .await?;
            if ctx.settings.machine {
                return ctx.show_list(&raw, || Ok(String::new()));
            }
            let groups: Vec<ResourceGroup> = parse(&raw, "resource group list")?;
            let mut vlm_nrs = Vec::new();
            for g in &groups {
                let raw = ctx.fetch(calls::volume_groups(&g.name)).await?;
                let vgs: Vec<VolumeGroup> = parse(&raw, "volume group list")?;
                vlm_nrs.push(
                    vgs.iter()
                        .filter_map(|v| v.volume_number)
                        .map(|n| n.to_string())
                        .collect::<Vec<_>>()
                        .join(","),
                );
            }
            out(&render_groups(
                &groups,
                &vlm_nrs,
                &a,
                ctx.style(a.list.pastable),
            ));
            Ok(error::OK)
        }
        RgCmd::ListProperties { pastable, name } => {
            let raw = ctx
                .fetch(calls::resource_groups(std::slice::from_ref(&name), &[]))
                .await?;
            let groups: Vec<ResourceGroup> = parse(&raw, "resource group list")?;
            let found = groups.iter().find(|g| g.name.eq_ignore_ascii_case(&name));
            Ok(ctx.show_props(found.map(|g| &g.props), pastable))
        }
        RgCmd::QueryMaxVolumeSize {
            pastable,
            resource_group_name,
        } => {
            let raw = ctx
                .fetch(calls::resource_group_max_volume_size(&resource_group_name))
                .await?;
            if ctx.settings.machine {
                return ctx.show_list(&raw, || Ok(String::new()));
            }
            let sizes: MaxVolumeSizes = parse(&raw, "maximum volume sizes")?;
            let spds: Vec<StoragePoolDefinition> = parse(
                &ctx.fetch(calls::storage_pool_dfns()).await?,
                "storage pool definition list",
            )?;
            out(&render_max_sizes(&sizes, &spds, ctx.style(pastable)));
            Ok(error::OK)
        }
        _ => unreachable!("write commands are handled by rg_requests()"),
    }
}

/// The SelectFilter cell, one `Name: value` line per setting, as python-linstor prints it.
pub fn select_filter_text(f: &AutoSelectFilter) -> String {
    let mut lines = Vec::new();
    if let Some(p) = f.place_count.filter(|p| *p != 0) {
        lines.push(format!("PlaceCount: {p}"));
    }
    let pools = match (&f.storage_pool_list, &f.storage_pool) {
        (Some(l), _) => l.clone(),
        (None, Some(p)) => vec![p.clone()],
        (None, None) => Vec::new(),
    };
    if f.storage_pool.is_some() || !pools.is_empty() {
        lines.push(format!("StoragePool(s): {}", pools.join(", ")));
    }
    if let Some(d) = f.diskless_on_remaining {
        lines.push(format!(
            "DisklessOnRemaining: {}",
            if d { "True" } else { "False" }
        ));
    }
    let list_field = |name: &str, v: &Option<Vec<String>>, lines: &mut Vec<String>| {
        if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
            lines.push(format!("{name}: {}", py_list(v)));
        }
    };
    list_field("NotPlaceWithRsc", &f.not_place_with_rsc, &mut lines);
    if let Some(r) = f
        .not_place_with_rsc_regex
        .as_ref()
        .filter(|r| !r.is_empty())
    {
        lines.push(format!("NotPlaceWithRscRegex: {r}"));
    }
    list_field("ReplicasOnSame", &f.replicas_on_same, &mut lines);
    list_field("ReplicasOnDifferent", &f.replicas_on_different, &mut lines);
    if let Some(m) = f
        .x_replicas_on_different_map
        .as_ref()
        .filter(|m| !m.is_empty())
    {
        let items: Vec<String> = m
            .iter()
            .map(|(k, v)| format!("{}: {v}", py_str(k)))
            .collect();
        lines.push(format!("XReplicasOnDifferent: {{{}}}", items.join(", ")));
    }
    list_field("LayerStack", &f.layer_stack, &mut lines);
    list_field("ProviderList", &f.provider_list, &mut lines);
    lines.join("\n")
}

pub fn render_groups(
    groups: &[ResourceGroup],
    vlm_nrs: &[String],
    a: &RgList,
    style: Style,
) -> String {
    let mut t = Table::new(style);
    t.column("ResourceGroup")
        .column("SelectFilter")
        .column("VlmNrs")
        .column("Description");
    let extra = show_prop_columns(&a.show_props);
    for (_, h) in &extra {
        t.column(h);
    }
    for (i, g) in groups.iter().enumerate() {
        let mut row: Vec<Cell> = vec![
            g.name.as_str().into(),
            select_filter_text(&g.select_filter).into(),
            vlm_nrs.get(i).cloned().unwrap_or_default().into(),
            g.description.as_str().into(),
        ];
        for (k, _) in &extra {
            row.push(prop_cell(&g.props, k).into());
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

// --- volume-group ---

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum VgCmd {
    /// Adds a volume group to a resource group.
    #[command(visible_alias = "c")]
    Create {
        /// Name of the resource group.
        name: String,
        /// Volume number.
        #[arg(short = 'n', long = "vlmnr")]
        vlmnr: Option<u32>,
        /// Sizes of this volume are gross sizes.
        #[arg(long)]
        gross: bool,
    },
    /// Lists the volume groups of a resource group.
    #[command(visible_alias = "l")]
    List {
        #[command(flatten)]
        list: ListOpts,
        /// Show these properties as columns (KEY or KEY=HEADER).
        #[arg(short = 's', long = "show-props", num_args = 1..)]
        show_props: Vec<String>,
        /// Name of the resource group.
        name: String,
    },
    /// Removes a volume group.
    #[command(visible_alias = "d")]
    Delete { name: String, volume_nr: u32 },
    /// Sets a property of a volume group.
    #[command(visible_alias = "sp")]
    SetProperty {
        name: String,
        volume_nr: u32,
        #[command(flatten)]
        prop: SetPropArgs,
    },
    /// Prints the properties of a volume group.
    #[command(visible_alias = "lp")]
    ListProperties {
        #[arg(short = 'p', long)]
        pastable: bool,
        name: String,
        volume_nr: u32,
    },
}

pub fn vg_requests(cmd: &VgCmd) -> Option<Vec<Request>> {
    Some(match cmd {
        VgCmd::Create { name, vlmnr, gross } => vec![calls::volume_group_create(
            name,
            &request::VolumeGroup {
                volume_number: vlmnr.map(i64::from),
                flags: if *gross {
                    vec!["GROSS_SIZE".to_string()]
                } else {
                    Vec::new()
                },
            },
        )],
        VgCmd::Delete { name, volume_nr } => vec![calls::volume_group_delete(name, *volume_nr)],
        VgCmd::SetProperty {
            name,
            volume_nr,
            prop,
        } => vec![calls::volume_group_modify(
            name,
            *volume_nr,
            &VolumeGroupModify {
                props: prop.props_modify(),
                ..VolumeGroupModify::default()
            },
        )],
        _ => return None,
    })
}

pub async fn run_vg(ctx: &mut Ctx, cmd: VgCmd) -> Result<i32, CliError> {
    if let Some(reqs) = vg_requests(&cmd) {
        return ctx.send(reqs).await;
    }
    match cmd {
        VgCmd::List {
            list,
            show_props,
            name,
        } => {
            let raw = ctx.fetch(calls::volume_groups(&name)).await?;
            let style = ctx.style(list.pastable);
            ctx.show_list(&raw, || {
                let vgs: Vec<VolumeGroup> = parse(&raw, "volume group list")?;
                Ok(render_vgs(&vgs, &list, &show_props, style))
            })
        }
        VgCmd::ListProperties {
            pastable,
            name,
            volume_nr,
        } => {
            let raw = ctx.fetch(calls::volume_groups(&name)).await?;
            let vgs: Vec<VolumeGroup> = parse(&raw, "volume group list")?;
            let found = vgs
                .iter()
                .find(|v| v.volume_number == Some(volume_nr as i64));
            Ok(ctx.show_props(found.map(|v| &v.props), pastable))
        }
        _ => unreachable!("write commands are handled by vg_requests()"),
    }
}

pub fn render_vgs(
    vgs: &[VolumeGroup],
    list: &ListOpts,
    show_props: &[String],
    style: Style,
) -> String {
    let mut t = Table::new(style);
    t.column("VolumeNr").column("Flags");
    let extra = show_prop_columns(show_props);
    for (_, h) in &extra {
        t.column(h);
    }
    for v in vgs {
        let mut row: Vec<Cell> = vec![
            v.volume_number
                .map(|n| n.to_string())
                .unwrap_or_default()
                .into(),
            v.flags.join(", ").into(),
        ];
        for (k, _) in &extra {
            row.push(prop_cell(&v.props, k).into());
        }
        t.row(row);
    }
    if list.groupby.is_empty() {
        t.sort_by_first();
    } else {
        t.sort_by(&list.groupby);
    }
    t.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse_line, Command};

    fn rg(args: &[&str]) -> RgCmd {
        match parse_line(args).unwrap().command {
            Some(Command::ResourceGrp(c)) => c,
            other => panic!("{other:?}"),
        }
    }

    fn vg(args: &[&str]) -> VgCmd {
        match parse_line(args).unwrap().command {
            Some(Command::VolumeGrp(c)) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rg_create_guide_line() {
        let r = rg_requests(&rg(&[
            "linstor",
            "resource-group",
            "create",
            "my_ssd_group",
            "--storage-pool",
            "pool_ssd",
            "--place-count",
            "2",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            r,
            vec![Request::post(
                "/v1/resource-groups",
                json!({"name": "my_ssd_group", "select_filter": {"place_count": 2, "storage_pool_list": ["pool_ssd"]}})
            )]
        );
    }

    #[test]
    fn rg_create_all_filters() {
        let r = rg_requests(&rg(&[
            "linstor",
            "rg",
            "c",
            "-d",
            "fast disks",
            "--peer-slots",
            "3",
            "--replicas-on-same",
            "site",
            "--replicas-on-different",
            "rack",
            "--do-not-place-with",
            "db",
            "--do-not-place-with-regex",
            "web.*",
            "--layer-list",
            "drbd,storage",
            "--providers",
            "LVM,ZFS",
            "--diskless-on-remaining",
            "false",
            "--diskless-storage-pool",
            "dl",
            "-s",
            "a",
            "b",
            "--place-count",
            "3",
            "g1",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            r[0].body,
            Some(json!({
                "name": "g1",
                "description": "fast disks",
                "peer_slots": 3,
                "select_filter": {
                    "place_count": 3,
                    "storage_pool_list": ["a", "b"],
                    "storage_pool_diskless_list": ["dl"],
                    "replicas_on_same": ["Aux/site"],
                    "replicas_on_different": ["Aux/rack"],
                    "not_place_with_rsc": ["db"],
                    "not_place_with_rsc_regex": "web.*",
                    "layer_stack": ["drbd", "storage"],
                    "provider_list": ["LVM", "ZFS"],
                    "diskless_on_remaining": false
                }
            }))
        );
        let e = rg_requests(&rg(&["linstor", "rg", "c", "--place-count", "two", "g"])).unwrap_err();
        assert_eq!(e.code, crate::error::ARGPARSE_ERROR);
    }

    #[test]
    fn rg_drbd_options() {
        let r = rg_requests(&rg(&[
            "linstor",
            "resource-group",
            "drbd-options",
            "my_ssd_group",
            "--c-max-rate",
            "100M",
            "--quorum",
            "2",
            "--unset-verify-alg",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            r,
            vec![Request::put(
                "/v1/resource-groups/my_ssd_group",
                json!({
                    "override_props": {
                        "DrbdOptions/PeerDevice/c-max-rate": "100M",
                        "DrbdOptions/Resource/quorum": "2"
                    },
                    "delete_props": ["DrbdOptions/Net/verify-alg"],
                    "select_filter": {}
                })
            )]
        );
        let e = rg_requests(&rg(&["linstor", "rg", "opt", "g"])).unwrap_err();
        assert_eq!(e.code, crate::error::ARGPARSE_ERROR);
        assert!(
            parse_line(&["linstor", "rg", "opt", "g", "--c-max", "1G", "--bogus", "1"]).is_err()
        );
        assert!(parse_line(&["linstor", "rg", "opt", "g", "--c-max-rate", "5G"]).is_err());
    }

    #[test]
    fn rg_modify_delete_and_props() {
        let r = rg_requests(&rg(&[
            "linstor",
            "rg",
            "m",
            "g1",
            "--place-count",
            "0",
            "-s",
            "",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            r[0],
            Request::put(
                "/v1/resource-groups/g1",
                json!({"select_filter": {"place_count": 0, "storage_pool_list": []}})
            )
        );
        let r = rg_requests(&rg(&["linstor", "rg", "d", "g1"]))
            .unwrap()
            .unwrap();
        assert_eq!(r[0], Request::delete("/v1/resource-groups/g1"));
        let r = rg_requests(&rg(&[
            "linstor",
            "rg",
            "sp",
            "g1",
            "DrbdOptions/Net/protocol",
            "C",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            r[0].body,
            Some(json!({"select_filter": {}, "override_props": {"DrbdOptions/Net/protocol": "C"}}))
        );
    }

    #[test]
    fn spawn_guide_line() {
        let r = rg_requests(&rg(&[
            "linstor",
            "resource-group",
            "spawn-resources",
            "my_ssd_group",
            "my_ssd_res",
            "2G",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            r,
            vec![Request::post(
                "/v1/resource-groups/my_ssd_group/spawn",
                json!({"resource_definition_name": "my_ssd_res", "volume_sizes": [2097152],
                       "partial": false, "definitions_only": false, "select_filter": {}})
            )]
        );
        let r = rg_requests(&rg(&[
            "linstor",
            "rg",
            "spawn",
            "--partial",
            "--definitions-only",
            "--place-count",
            "3",
            "g",
            "r",
            "10",
            "512M",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            r[0].body,
            Some(
                json!({"resource_definition_name": "r", "volume_sizes": [10485760, 524288],
                        "partial": true, "definitions_only": true, "select_filter": {"place_count": 3}})
            )
        );
        for bad in ["0", "xyz", "1.5.2G"] {
            let e = rg_requests(&rg(&["linstor", "rg", "spawn", "g", "r", "1G", bad])).unwrap_err();
            assert_eq!(e.code, crate::error::ARGPARSE_ERROR, "{bad}");
            assert!(e.message.unwrap().starts_with("Invalid size"), "{bad}");
        }
        // A negative size is refused by the parser (exit code 2) before anything is sent.
        let e = parse_line(&["linstor", "rg", "spawn", "g", "r", "-2G"]).unwrap_err();
        assert_eq!(e.exit_code(), crate::error::ARGPARSE_ERROR);
        let e = rg_requests(&rg(&["linstor", "rg", "spawn", "g", "r", "--", "-2G"])).unwrap_err();
        assert!(e.message.unwrap().contains("negative"));
    }

    #[test]
    fn volume_groups() {
        let r = vg_requests(&vg(&["linstor", "volume-group", "create", "my_ssd_group"])).unwrap();
        assert_eq!(
            r,
            vec![Request::post(
                "/v1/resource-groups/my_ssd_group/volume-groups",
                json!({})
            )]
        );
        let r = vg_requests(&vg(&["linstor", "vg", "c", "-n", "1", "--gross", "g"])).unwrap();
        assert_eq!(
            r[0].body,
            Some(json!({"volume_number": 1, "flags": ["GROSS_SIZE"]}))
        );
        let r = vg_requests(&vg(&["linstor", "vg", "d", "g", "1"])).unwrap();
        assert_eq!(
            r[0],
            Request::delete("/v1/resource-groups/g/volume-groups/1")
        );
        let r = vg_requests(&vg(&["linstor", "vg", "sp", "g", "0", "k", "v"])).unwrap();
        assert_eq!(
            r[0],
            Request::put(
                "/v1/resource-groups/g/volume-groups/0",
                json!({"override_props": {"k": "v"}})
            )
        );
    }

    #[test]
    fn group_table() {
        let groups: Vec<ResourceGroup> = serde_json::from_value(json!([
            {"name": "my_ssd_group", "description": "", "select_filter": {"place_count": 2, "storage_pool_list": ["pool_ssd"],
              "replicas_on_same": ["Aux/site"], "diskless_on_remaining": false}},
            {"name": "DfltRscGrp", "description": "default", "select_filter": {"place_count": 2}}
        ]))
        .unwrap();
        let RgCmd::List(a) = rg(&["linstor", "rg", "l"]) else {
            panic!()
        };
        let out = render_groups(&groups, &["0".to_string(), String::new()], &a, Style::PLAIN);
        let expected = "\
+---------------------------------------------------------------------+
| ResourceGroup | SelectFilter                 | VlmNrs | Description |
|=====================================================================|
| DfltRscGrp    | PlaceCount: 2                |        | default     |
|---------------------------------------------------------------------|
| my_ssd_group  | PlaceCount: 2                | 0      |             |
|               | StoragePool(s): pool_ssd     |        |             |
|               | DisklessOnRemaining: False   |        |             |
|               | ReplicasOnSame: ['Aux/site'] |        |             |
+---------------------------------------------------------------------+
";
        assert_eq!(out, expected);
    }
}
