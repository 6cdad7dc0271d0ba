//! `resource-definition` (`rd`) and `volume-definition` (`vd`).

use clap::{Args, Subcommand};
#[cfg(test)]
use serde_json::json;
use strata_api::types::{
    request, ResourceDefinition, ResourceDefinitionCloneRequest, ResourceDefinitionLayer,
    ResourceDefinitionModify, VolumeDefinitionModify,
};
use strata_client::calls;
use strata_model::size::{DefaultUnit, HumanKib};

use crate::common::{
    autoplace_request, parse_layer_list, parse_place_count, parse_provider_list, prop_cell, ranged,
    show_prop_columns, size_kib, FilterArgs, LayerList, ListOpts, ProviderList, Request,
    SelectFilter, SetPropArgs,
};
use crate::context::{parse, Ctx};
use crate::drbd_opts::{AllSections, DrbdOptionArgs, VolumeSections};
use crate::error::CliError;
use crate::output::{color, Style};
use crate::table::{Cell, Table};

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum RdCmd {
    /// Defines a resource.
    #[command(visible_alias = "c")]
    Create(RdCreate),
    /// Places a resource definition on nodes the auto-placer picks.
    #[command(visible_alias = "ap")]
    AutoPlace(RdAutoPlace),
    /// Changes a resource definition.
    #[command(visible_alias = "m")]
    Modify {
        /// DRBD peer slots for new resources.
        #[arg(long = "peer-slots", value_parser = ranged(1, 31))]
        peer_slots: Option<i64>,
        /// Move the resource definition to this resource group.
        #[arg(long = "resource-group")]
        resource_group: Option<String>,
        name: String,
    },
    /// Lists the resource definitions.
    #[command(visible_alias = "l")]
    List(RdList),
    /// Removes resource definitions with all their resources.
    #[command(visible_alias = "d")]
    Delete {
        /// Deprecated, kept for compatibility.
        #[arg(long = "async")]
        async_: bool,
        #[arg(required = true)]
        name: Vec<String>,
    },
    /// Sets a property of a resource definition.
    #[command(visible_alias = "sp")]
    SetProperty {
        name: String,
        #[command(flatten)]
        prop: SetPropArgs,
    },
    /// Waits until every replica of a resource definition is in sync.
    WaitSync(crate::sync::WaitSyncArgs),
    /// Creates a new resource definition with the data of another one at this moment (from
    /// a snapshot of it: needs storage pools that take snapshots).
    Clone {
        /// Give the clone this external name (its name is then made from it).
        #[arg(long = "external-name")]
        external_name: Option<String>,
        /// Put the clone into this resource group.
        #[arg(long = "resource-group")]
        resource_group: Option<String>,
        /// Accepted for compatibility: ZFS clones are always used on ZFS pools.
        #[arg(long = "use-zfs-clone")]
        use_zfs_clone: bool,
        /// Accepted for compatibility: the answer comes when the clone is complete.
        #[arg(long = "no-wait")]
        no_wait: bool,
        source_resource: String,
        clone_name: String,
    },
    /// Prints the properties of a resource definition.
    #[command(visible_alias = "lp")]
    ListProperties {
        #[arg(short = 'p', long)]
        pastable: bool,
        resource_name: String,
    },
    /// Sets DRBD options of a resource definition; --unset-<option> removes one.
    #[command(name = "drbd-options", visible_alias = "opt")]
    DrbdOptions {
        resource_name: String,
        #[command(flatten)]
        opts: DrbdOptionArgs<AllSections>,
    },
}

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct RdCreate {
    /// DRBD TCP port.
    #[arg(short = 'p', long = "port", value_parser = ranged(1, 65535))]
    pub port: Option<i64>,
    /// A name of any characters; the resource name is derived from it.
    #[arg(short = 'e', long = "external-name")]
    pub external_name: Option<String>,
    /// Comma separated layer list, top-most layer first.
    #[arg(short = 'l', long = "layer-list", value_parser = parse_layer_list)]
    pub layer_list: Option<LayerList>,
    /// DRBD peer slots for new resources.
    #[arg(long = "peer-slots", value_parser = ranged(1, 31))]
    pub peer_slots: Option<i64>,
    /// Attach the resource definition to this resource group.
    #[arg(long = "resource-group")]
    pub resource_group: Option<String>,
    /// Name of the new resource definition (ignored with --external-name).
    pub name: Option<String>,
}

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct RdAutoPlace {
    /// Storage pool name(s) to use.
    #[arg(short = 's', long = "storage-pool", num_args = 0..)]
    pub storage_pool: Option<Vec<String>>,
    /// Number of replicas: N, +N for additional ones, or max.
    #[arg(long = "place-count", value_name = "REPLICA_COUNT")]
    pub place_count: Option<String>,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Comma separated provider kinds the storage pools must have.
    #[arg(short = 'p', long = "providers", value_parser = parse_provider_list)]
    pub providers: Option<ProviderList>,
    /// Mark additional resources as NVMe initiators.
    #[arg(long = "nvme-initiator")]
    pub nvme_initiator: bool,
    /// Mark additional resources as DRBD diskless.
    #[arg(long = "drbd-diskless")]
    pub drbd_diskless: bool,
    pub resource_definition_name: String,
}

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct RdList {
    #[command(flatten)]
    pub list: ListOpts,
    /// Filter by resource definitions.
    #[arg(short = 'r', long = "resource-definitions", num_args = 1..)]
    pub resource_definitions: Vec<String>,
    /// Show the external names.
    #[arg(short = 'e', long = "external-name")]
    pub external_name: bool,
    /// Filter by properties.
    #[arg(long = "props", num_args = 1..)]
    pub props: Vec<String>,
    /// Show these properties as columns (KEY or KEY=HEADER).
    #[arg(short = 's', long = "show-props", num_args = 1..)]
    pub show_props: Vec<String>,
}

pub fn create_request(a: &RdCreate) -> Result<Request, CliError> {
    let mut rd = request::ResourceDefinition::default();
    match (&a.external_name, &a.name) {
        (Some(ext), _) if !ext.is_empty() => rd.external_name = Some(ext.clone()),
        (_, Some(name)) => rd.name = Some(name.clone()),
        _ => {
            return Err(CliError::usage(
                "At least resource name or external name has to be specified.",
            ))
        }
    }
    if let Some(l) = &a.layer_list {
        rd.layer_data =
            l.0.iter()
                .map(|t| ResourceDefinitionLayer {
                    layer_type: t.clone(),
                    data: None,
                })
                .collect();
    }
    rd.resource_group_name = a.resource_group.clone();
    Ok(calls::resource_dfn_create(
        &request::ResourceDefinitionCreate {
            resource_definition: rd,
            drbd_port: a.port,
            drbd_peer_slots: a.peer_slots,
        },
    ))
}

/// A modify body that changes properties only.
fn rd_props(props: strata_api::types::PropsModify) -> ResourceDefinitionModify {
    ResourceDefinitionModify {
        props,
        ..ResourceDefinitionModify::default()
    }
}

pub fn rd_requests(cmd: &RdCmd) -> Result<Option<Vec<Request>>, CliError> {
    Ok(Some(match cmd {
        RdCmd::Create(a) => vec![create_request(a)?],
        RdCmd::Clone {
            external_name,
            resource_group,
            source_resource,
            clone_name,
            ..
        } => vec![calls::resource_dfn_clone(
            source_resource,
            &ResourceDefinitionCloneRequest {
                name: clone_name.clone(),
                external_name: external_name.clone(),
                resource_group: resource_group.clone(),
            },
        )],
        RdCmd::AutoPlace(a) => {
            let mut f = SelectFilter::from_args(&a.filter, &a.storage_pool, &a.providers);
            if let Some(pc) = &a.place_count {
                let (p, add) = parse_place_count(pc)?;
                f.place_count = p;
                f.additional_place_count = add;
            }
            f.diskless_type = if a.drbd_diskless {
                Some("DRBD_DISKLESS".into())
            } else if a.nvme_initiator {
                Some("NVME_INITIATOR".into())
            } else {
                None
            };
            vec![autoplace_request(
                &a.resource_definition_name,
                &f,
                &a.filter.layer_list,
            )]
        }
        RdCmd::Modify {
            peer_slots,
            resource_group,
            name,
        } => vec![calls::resource_dfn_modify(
            name,
            &ResourceDefinitionModify {
                drbd_peer_slots: *peer_slots,
                resource_group: resource_group.clone().filter(|r| !r.is_empty()),
                ..ResourceDefinitionModify::default()
            },
        )],
        RdCmd::Delete { name, .. } => name.iter().map(|n| calls::resource_dfn_delete(n)).collect(),
        RdCmd::SetProperty { name, prop } => vec![calls::resource_dfn_modify(
            name,
            &rd_props(prop.props_modify()),
        )],
        RdCmd::DrbdOptions {
            resource_name,
            opts,
        } => vec![calls::resource_dfn_modify(
            resource_name,
            &rd_props(opts.props_modify()?),
        )],
        _ => return Ok(None),
    }))
}

/// The path of the resource definition list query.
#[cfg(test)]
pub fn list_path(names: &[String], props: &[String], with_vds: bool) -> String {
    calls::resource_dfns(names, props, with_vds).path
}

pub async fn run_rd(ctx: &mut Ctx, cmd: RdCmd) -> Result<i32, CliError> {
    if let Some(reqs) = rd_requests(&cmd)? {
        return ctx.send(reqs).await;
    }
    match cmd {
        RdCmd::List(a) => {
            let raw = ctx
                .fetch(calls::resource_dfns(
                    &a.resource_definitions,
                    &a.props,
                    false,
                ))
                .await?;
            let style = ctx.style(a.list.pastable);
            ctx.show_list(&raw, || {
                let rds: Vec<ResourceDefinition> = parse(&raw, "resource definition list")?;
                Ok(render_rds(&rds, &a, style))
            })
        }
        RdCmd::ListProperties {
            pastable,
            resource_name,
        } => {
            let raw = ctx
                .fetch(calls::resource_dfns(
                    std::slice::from_ref(&resource_name),
                    &[],
                    false,
                ))
                .await?;
            let rds: Vec<ResourceDefinition> = parse(&raw, "resource definition list")?;
            let found = rds
                .iter()
                .find(|r| r.name.eq_ignore_ascii_case(&resource_name));
            Ok(ctx.show_props(found.map(|r| &r.props), pastable))
        }
        RdCmd::WaitSync(a) => crate::sync::run(ctx, a).await,
        _ => unreachable!("write commands are handled by rd_requests()"),
    }
}

/// The layers of a resource definition, top-most first: `DRBD,STORAGE`.
pub fn rd_layers(rd: &ResourceDefinition) -> String {
    rd.layer_data
        .iter()
        .map(|l| l.layer_type.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

pub fn render_rds(rds: &[ResourceDefinition], a: &RdList, style: Style) -> String {
    let mut t = Table::new(style);
    t.column("ResourceName");
    if a.external_name {
        t.column("External");
    }
    t.column("ResourceGroup").column("Layers").column_with(
        "State",
        Some(color::DARKGREEN),
        crate::table::Just::Left,
    );
    let extra = show_prop_columns(&a.show_props);
    for (_, h) in &extra {
        t.column(h);
    }
    for rd in rds {
        let mut row: Vec<Cell> = vec![rd.name.as_str().into()];
        if a.external_name {
            row.push(rd.external_name.clone().unwrap_or_default().into());
        }
        row.push(rd.resource_group_name.clone().unwrap_or_default().into());
        row.push(rd_layers(rd).into());
        row.push(if rd.flags.iter().any(|f| f == "DELETE") {
            t.cell("DELETING", Some(color::RED))
        } else {
            t.cell("ok", Some(color::DARKGREEN))
        });
        for (k, _) in &extra {
            row.push(prop_cell(&rd.props, k).into());
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

// --- volume-definition ---

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum VdCmd {
    /// Adds a volume of the given size to a resource definition.
    #[command(visible_alias = "c")]
    Create(VdCreate),
    /// Lists the volume definitions.
    #[command(visible_alias = "l")]
    List(VdList),
    /// Removes a volume definition.
    #[command(visible_alias = "d")]
    Delete {
        #[arg(long = "async")]
        async_: bool,
        resource_name: String,
        volume_nr: u32,
    },
    /// Changes the size of a volume.
    #[command(visible_alias = "size")]
    SetSize {
        resource_name: String,
        volume_nr: u32,
        /// New size; a number without unit is GiB.
        size: String,
        /// The size is the gross size.
        #[arg(long)]
        gross: bool,
        /// Allow a smaller size: the end of the volume is cut off (shrink the file system
        /// on it first). Not for DRBD volumes.
        #[arg(long = "allow-shrink")]
        allow_shrink: bool,
    },
    /// Sets a property of a volume definition.
    #[command(visible_alias = "sp")]
    SetProperty {
        resource_name: String,
        volume_nr: u32,
        #[command(flatten)]
        prop: SetPropArgs,
    },
    /// Prints the properties of a volume definition.
    #[command(visible_alias = "lp")]
    ListProperties {
        #[arg(short = 'p', long)]
        pastable: bool,
        resource_definition: String,
        volume_nr: u32,
    },
    /// Sets DRBD disk options of a volume definition; --unset-<option> removes one.
    #[command(name = "drbd-options", visible_alias = "opt")]
    DrbdOptions {
        resource_name: String,
        volume_nr: u32,
        #[command(flatten)]
        opts: DrbdOptionArgs<VolumeSections>,
    },
}

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct VdCreate {
    /// Storage pool name to use.
    #[arg(short = 's', long = "storage-pool")]
    pub storage_pool: Option<String>,
    /// Volume number.
    #[arg(short = 'n', long = "vlmnr")]
    pub vlmnr: Option<u32>,
    /// DRBD minor number.
    #[arg(short = 'm', long = "minor")]
    pub minor: Option<u32>,
    /// Deprecated: use a LUKS layer instead.
    #[arg(long)]
    pub encrypt: bool,
    /// The size is the gross size.
    #[arg(long)]
    pub gross: bool,
    /// Passphrase for encrypted volumes.
    #[arg(long)]
    pub passphrase: Option<String>,
    /// Name of an existing resource definition.
    pub resource_name: String,
    /// Size of the volume; a number without unit is GiB (e.g. 150M, 2G, 1371956KiB).
    pub size: String,
}

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct VdList {
    #[command(flatten)]
    pub list: ListOpts,
    /// Filter by resource definitions.
    #[arg(short = 'r', long = "resource-definitions", num_args = 1..)]
    pub resource_definitions: Vec<String>,
    /// Show the external names.
    #[arg(short = 'e', long = "external-name")]
    pub external_name: bool,
    /// Show these properties as columns (KEY or KEY=HEADER).
    #[arg(short = 's', long = "show-props", num_args = 1..)]
    pub show_props: Vec<String>,
}

pub fn vd_create_request(a: &VdCreate) -> Result<Request, CliError> {
    let mut flags = Vec::new();
    if a.encrypt {
        flags.push("ENCRYPTED".to_string());
    }
    if a.gross {
        flags.push("GROSS_SIZE".to_string());
    }
    let vd = request::VolumeDefinition {
        volume_number: a.vlmnr.map(i64::from),
        size_kib: size_kib(&a.size, DefaultUnit::GiB)?,
        props: a
            .storage_pool
            .iter()
            .map(|sp| ("StorPoolName".to_string(), sp.clone()))
            .collect(),
        flags: Some(flags),
    };
    Ok(calls::volume_dfn_create(
        &a.resource_name,
        &request::VolumeDefinitionCreate {
            volume_definition: vd,
            drbd_minor_number: a.minor.map(i64::from),
            passphrase: a.passphrase.clone(),
        },
    ))
}

/// A modify body that changes properties only.
fn vd_props(props: strata_api::types::PropsModify) -> VolumeDefinitionModify {
    VolumeDefinitionModify {
        props,
        ..VolumeDefinitionModify::default()
    }
}

pub fn vd_requests(cmd: &VdCmd) -> Result<Option<Vec<Request>>, CliError> {
    Ok(Some(match cmd {
        VdCmd::Create(a) => vec![vd_create_request(a)?],
        VdCmd::Delete {
            resource_name,
            volume_nr,
            ..
        } => vec![calls::volume_dfn_delete(resource_name, *volume_nr)],
        VdCmd::SetSize {
            resource_name,
            volume_nr,
            size,
            gross,
            allow_shrink,
        } => vec![calls::volume_dfn_modify(
            resource_name,
            *volume_nr,
            &VolumeDefinitionModify {
                size_kib: Some(size_kib(size, DefaultUnit::GiB)?),
                flags: if *gross {
                    vec!["GROSS_SIZE".to_string()]
                } else {
                    Vec::new()
                },
                allow_shrink: allow_shrink.then_some(true),
                ..VolumeDefinitionModify::default()
            },
        )],
        VdCmd::SetProperty {
            resource_name,
            volume_nr,
            prop,
        } => vec![calls::volume_dfn_modify(
            resource_name,
            *volume_nr,
            &vd_props(prop.props_modify()),
        )],
        VdCmd::DrbdOptions {
            resource_name,
            volume_nr,
            opts,
        } => vec![calls::volume_dfn_modify(
            resource_name,
            *volume_nr,
            &vd_props(opts.props_modify()?),
        )],
        _ => return Ok(None),
    }))
}

pub async fn run_vd(ctx: &mut Ctx, cmd: VdCmd) -> Result<i32, CliError> {
    if let Some(reqs) = vd_requests(&cmd)? {
        return ctx.send(reqs).await;
    }
    match cmd {
        VdCmd::List(a) => {
            let raw = ctx
                .fetch(calls::resource_dfns(&a.resource_definitions, &[], true))
                .await?;
            let style = ctx.style(a.list.pastable);
            ctx.show_list(&raw, || {
                let rds: Vec<ResourceDefinition> = parse(&raw, "resource definition list")?;
                Ok(render_vds(&rds, &a, style))
            })
        }
        VdCmd::ListProperties {
            pastable,
            resource_definition,
            volume_nr,
        } => {
            let raw = ctx
                .fetch(calls::resource_dfns(
                    std::slice::from_ref(&resource_definition),
                    &[],
                    true,
                ))
                .await?;
            let rds: Vec<ResourceDefinition> = parse(&raw, "resource definition list")?;
            let found = rds
                .iter()
                .find(|r| r.name.eq_ignore_ascii_case(&resource_definition))
                .and_then(|r| r.volume_definitions.as_ref())
                .and_then(|vds| {
                    vds.iter()
                        .find(|v| v.volume_number == Some(volume_nr as i64))
                });
            Ok(ctx.show_props(found.map(|v| &v.props), pastable))
        }
        _ => unreachable!("write commands are handled by vd_requests()"),
    }
}

pub fn render_vds(rds: &[ResourceDefinition], a: &VdList, style: Style) -> String {
    let mut t = Table::new(style);
    t.column("ResourceName");
    if a.external_name {
        t.column("External");
    }
    t.column("VolumeNr")
        .column("VolumeMinor")
        .column("Size")
        .column("Gross")
        .column_with("State", Some(color::DARKGREEN), crate::table::Just::Left);
    let extra = show_prop_columns(&a.show_props);
    for (_, h) in &extra {
        t.column(h);
    }
    for rd in rds {
        for vd in rd.volume_definitions.iter().flatten() {
            let state = if vd.flags.iter().any(|f| f == "DELETE") {
                t.cell("DELETING", Some(color::RED))
            } else if vd.flags.iter().any(|f| f == "RESIZE") {
                t.cell("resizing", Some(color::DARKPINK))
            } else {
                t.cell("ok", Some(color::DARKGREEN))
            };
            let minor = vd
                .layer_data
                .iter()
                .find(|l| l.layer_type == "DRBD")
                .and_then(|l| l.data.as_ref())
                .and_then(|d| d.minor_number)
                .map(|m| m.to_string())
                .unwrap_or_default();
            let mut row: Vec<Cell> = vec![rd.name.as_str().into()];
            if a.external_name {
                row.push(rd.external_name.clone().unwrap_or_default().into());
            }
            row.push(
                vd.volume_number
                    .map(|n| n.to_string())
                    .unwrap_or_default()
                    .into(),
            );
            row.push(minor.into());
            row.push(
                HumanKib(vd.size_kib.unwrap_or(0).max(0) as u64)
                    .to_string()
                    .into(),
            );
            row.push(
                if vd.flags.iter().any(|f| f == "GROSS_SIZE") {
                    "+"
                } else {
                    ""
                }
                .into(),
            );
            row.push(state);
            for (k, _) in &extra {
                row.push(prop_cell(&vd.props, k).into());
            }
            t.row(row);
        }
    }
    if a.list.groupby.is_empty() {
        t.sort_by_first();
    } else {
        t.sort_by(&a.list.groupby);
    }
    t.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse_line, Command};

    fn rd(args: &[&str]) -> RdCmd {
        match parse_line(args).unwrap().command {
            Some(Command::ResourceDfn(c)) => c,
            other => panic!("{other:?}"),
        }
    }

    fn vd(args: &[&str]) -> VdCmd {
        match parse_line(args).unwrap().command {
            Some(Command::VolumeDfn(c)) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rd_create_with_layer_list() {
        let r = rd_requests(&rd(&[
            "linstor",
            "resource-definition",
            "create",
            "--layer-list",
            "storage",
            "LocalData",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            r,
            vec![Request::post(
                "/v1/resource-definitions",
                json!({"resource_definition": {"name": "LocalData", "layer_data": [{"type": "storage"}]}})
            )]
        );
    }

    #[test]
    fn rd_create_options() {
        let r = rd_requests(&rd(&[
            "linstor",
            "rd",
            "c",
            "-p",
            "7001",
            "--peer-slots",
            "4",
            "--resource-group",
            "rg1",
            "-l",
            "drbd,storage",
            "r1",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            r[0].body,
            Some(json!({
                "resource_definition": {"name": "r1", "resource_group_name": "rg1",
                                        "layer_data": [{"type": "drbd"}, {"type": "storage"}]},
                "drbd_port": 7001,
                "drbd_peer_slots": 4
            }))
        );
        let r = rd_requests(&rd(&["linstor", "rd", "c", "-e", "Ünïcode name"]))
            .unwrap()
            .unwrap();
        assert_eq!(
            r[0].body,
            Some(json!({"resource_definition": {"external_name": "Ünïcode name"}}))
        );
        let e = rd_requests(&rd(&["linstor", "rd", "c"])).unwrap_err();
        assert_eq!(e.code, crate::error::ARGPARSE_ERROR);
        assert!(parse_line(&["linstor", "rd", "c", "-l", "drbd,zfs", "r1"]).is_err());
        assert!(parse_line(&["linstor", "rd", "c", "--peer-slots", "32", "r1"]).is_err());
    }

    #[test]
    fn rd_other_writes() {
        let r = rd_requests(&rd(&["linstor", "rd", "d", "a", "b"]))
            .unwrap()
            .unwrap();
        assert_eq!(
            r,
            vec![
                Request::delete("/v1/resource-definitions/a"),
                Request::delete("/v1/resource-definitions/b")
            ]
        );
        let r = rd_requests(&rd(&["linstor", "rd", "m", "--resource-group", "rg2", "a"]))
            .unwrap()
            .unwrap();
        assert_eq!(
            r[0],
            Request::put(
                "/v1/resource-definitions/a",
                json!({"resource_group": "rg2"})
            )
        );
        let r = rd_requests(&rd(&[
            "linstor",
            "rd",
            "sp",
            "a",
            "DrbdOptions/Net/protocol",
            "C",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            r[0].body,
            Some(json!({"override_props": {"DrbdOptions/Net/protocol": "C"}}))
        );
        let r = rd_requests(&rd(&[
            "linstor",
            "rd",
            "ap",
            "--place-count",
            "3",
            "a",
            "-s",
            "p1",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            r[0],
            Request::post(
                "/v1/resource-definitions/a/autoplace",
                json!({"diskless_on_remaining": null, "select_filter": {"place_count": 3, "storage_pool_list": ["p1"]}})
            )
        );
    }

    #[test]
    fn vd_create_sizes() {
        let r = vd_requests(&vd(&[
            "linstor",
            "volume-definition",
            "create",
            "LocalData",
            "150m",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            r,
            vec![Request::post(
                "/v1/resource-definitions/LocalData/volume-definitions",
                json!({"volume_definition": {"size_kib": 153600, "flags": []}})
            )]
        );
        let size = |s: &str| {
            vd_requests(&vd(&["linstor", "vd", "c", "r", s]))
                .unwrap()
                .unwrap()[0]
                .body
                .clone()
                .unwrap()["volume_definition"]["size_kib"]
                .as_i64()
                .unwrap()
        };
        assert_eq!(size("2G"), 2_097_152);
        assert_eq!(size("250M"), 256_000);
        assert_eq!(size("1371956KiB"), 1_371_956);
        assert_eq!(size("40G"), 41_943_040);
        assert_eq!(size("10"), 10_485_760); // a plain number is GiB, as upstream
        for bad in ["0", "big", "12X", "1.2.3G"] {
            let e = vd_requests(&vd(&["linstor", "vd", "c", "r", bad])).unwrap_err();
            assert_eq!(e.code, crate::error::ARGPARSE_ERROR, "{bad}");
            assert!(e.message.unwrap().starts_with("Invalid size"), "{bad}");
        }
        let e = parse_line(&["linstor", "vd", "c", "r", "-1G"]).unwrap_err();
        assert_eq!(e.exit_code(), crate::error::ARGPARSE_ERROR);
        assert!(e.to_string().contains("'-1G' is negative"), "{e}");
    }

    #[test]
    fn rd_drbd_options() {
        let r = rd_requests(&rd(&[
            "linstor",
            "resource-definition",
            "drbd-options",
            "backups",
            "--allow-two-primaries",
            "yes",
            "--auto-promote",
            "no",
            "--unset-protocol",
            "--unset-on-io-error",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            r,
            vec![Request::put(
                "/v1/resource-definitions/backups",
                json!({
                    "override_props": {
                        "DrbdOptions/Net/allow-two-primaries": "yes",
                        "DrbdOptions/Resource/auto-promote": "no"
                    },
                    "delete_props": ["DrbdOptions/Disk/on-io-error", "DrbdOptions/Net/protocol"]
                })
            )]
        );
        let e = rd_requests(&rd(&["linstor", "rd", "opt", "backups"])).unwrap_err();
        assert_eq!(e.code, crate::error::ARGPARSE_ERROR);
        assert!(parse_line(&["linstor", "rd", "opt", "r", "--allow-two-primary", "yes"]).is_err());
        assert!(
            parse_line(&["linstor", "rd", "opt", "r", "--allow-two-primaries", "true"]).is_err()
        );
    }

    #[test]
    fn vd_drbd_options() {
        let r = vd_requests(&vd(&[
            "linstor",
            "volume-definition",
            "drbd-options",
            "backups",
            "1",
            "--on-io-error",
            "detach",
            "--al-extents",
            "6007",
            "--unset-disk-flushes",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            r,
            vec![Request::put(
                "/v1/resource-definitions/backups/volume-definitions/1",
                json!({
                    "override_props": {
                        "DrbdOptions/Disk/on-io-error": "detach",
                        "DrbdOptions/Disk/al-extents": "6007"
                    },
                    "delete_props": ["DrbdOptions/Disk/disk-flushes"]
                })
            )]
        );
        let e = vd_requests(&vd(&["linstor", "vd", "opt", "backups", "0"])).unwrap_err();
        assert_eq!(e.code, crate::error::ARGPARSE_ERROR);
        // Only disk options belong to a volume definition.
        assert!(parse_line(&["linstor", "vd", "opt", "r", "0", "--protocol", "C"]).is_err());
        assert!(parse_line(&["linstor", "vd", "opt", "r", "0", "--on-io-eror", "detach"]).is_err());
    }

    #[test]
    fn vd_create_options_and_writes() {
        let r = vd_requests(&vd(&[
            "linstor",
            "vd",
            "c",
            "-n",
            "1",
            "-m",
            "1001",
            "--storage-pool",
            "pool_ssd",
            "--gross",
            "r",
            "1G",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            r[0].body,
            Some(json!({
                "volume_definition": {"size_kib": 1048576, "flags": ["GROSS_SIZE"], "volume_number": 1,
                                      "props": {"StorPoolName": "pool_ssd"}},
                "drbd_minor_number": 1001
            }))
        );
        let r = vd_requests(&vd(&["linstor", "vd", "set-size", "r", "0", "20G"]))
            .unwrap()
            .unwrap();
        assert_eq!(
            r[0],
            Request::put(
                "/v1/resource-definitions/r/volume-definitions/0",
                json!({"size_kib": 20971520})
            )
        );
        assert!(vd_requests(&vd(&["linstor", "vd", "size", "r", "0", "0"])).is_err());
        let r = vd_requests(&vd(&["linstor", "vd", "d", "r", "1"]))
            .unwrap()
            .unwrap();
        assert_eq!(
            r[0],
            Request::delete("/v1/resource-definitions/r/volume-definitions/1")
        );
        let r = vd_requests(&vd(&["linstor", "vd", "sp", "r", "0", "--aux", "k", "v"]))
            .unwrap()
            .unwrap();
        assert_eq!(r[0].body, Some(json!({"override_props": {"Aux/k": "v"}})));
    }

    #[test]
    fn tables() {
        let rds: Vec<ResourceDefinition> = serde_json::from_value(json!([
            {"name": "r2", "resource_group_name": "DfltRscGrp", "layer_data": [{"type": "DRBD", "data": {"port": 7000}}, {"type": "STORAGE"}],
             "volume_definitions": [{"volume_number": 0, "size_kib": 153600, "flags": [],
                                     "layer_data": [{"type": "DRBD", "data": {"minor_number": 1000}}]}]},
            {"name": "r1", "resource_group_name": "DfltRscGrp", "flags": ["DELETE"], "layer_data": [{"type": "STORAGE"}],
             "volume_definitions": [{"volume_number": 0, "size_kib": 1048576, "flags": ["GROSS_SIZE"]}]}
        ]))
        .unwrap();
        let RdCmd::List(a) = rd(&["linstor", "rd", "l"]) else {
            panic!()
        };
        let expected = "\
+--------------------------------------------------------+
| ResourceName | ResourceGroup | Layers       | State    |
|========================================================|
| r1           | DfltRscGrp    | STORAGE      | DELETING |
| r2           | DfltRscGrp    | DRBD,STORAGE | ok       |
+--------------------------------------------------------+
";
        assert_eq!(render_rds(&rds, &a, Style::PLAIN), expected);
        let VdCmd::List(v) = vd(&["linstor", "vd", "l"]) else {
            panic!()
        };
        let out = render_vds(&rds, &v, Style::PLAIN);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[1],
            "| ResourceName | VolumeNr | VolumeMinor | Size    | Gross | State |"
        );
        assert_eq!(
            lines[3],
            "| r1           | 0        |             | 1 GiB   | +     | ok    |"
        );
        assert_eq!(
            lines[4],
            "| r2           | 0        | 1000        | 150 MiB |       | ok    |"
        );
        assert_eq!(
            list_path(&["a".into()], &[], true),
            "/v1/resource-definitions?resource_definitions=a&with_volume_definitions=true"
        );
    }
}
