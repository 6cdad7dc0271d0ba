//! `storage-pool` (`sp`) and `storage-pool-definition` (`spd`).

use clap::{Args, Parser, Subcommand};
#[cfg(test)]
use serde_json::json;
use strata_api::types::{request, StoragePool, StoragePoolDefinition};
use strata_client::calls;
use strata_model::size::HumanKib;

use crate::common::{prop_cell, show_prop_columns, ListOpts, Request, SetPropArgs};
use crate::context::{parse, Ctx};
use crate::error::CliError;
use crate::output::{self, color, Style};
use crate::table::{Cell, Just, Table};

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum SpCmd {
    /// Creates a storage pool on a node: `create <driver> <node> <name> <driver pool>`.
    #[command(visible_alias = "c", subcommand)]
    Create(SpCreate),
    /// Lists the storage pools of the cluster.
    #[command(visible_alias = "l")]
    List(SpList),
    /// Removes a storage pool from nodes.
    #[command(visible_alias = "d")]
    Delete {
        /// Accepted for compatibility; nothing is asked anyway.
        #[arg(short = 'q', long)]
        quiet: bool,
        /// Nodes where the storage pool exists.
        #[arg(required = true)]
        node_name: Vec<String>,
        /// The storage pool.
        name: String,
    },
    /// Sets a property of a storage pool on a node.
    #[command(visible_alias = "sp")]
    SetProperty {
        node_name: String,
        name: String,
        #[command(flatten)]
        prop: SetPropArgs,
    },
    /// Prints the properties of a storage pool on a node.
    #[command(visible_alias = "lp")]
    ListProperties {
        #[arg(short = 'p', long)]
        pastable: bool,
        node_name: String,
        storage_pool_name: String,
    },
}

/// The storage drivers `storage-pool create` knows, as subcommands.
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum SpCreate {
    /// An LVM volume group.
    Lvm(PoolArgs),
    /// An LVM thin pool (VG/LV).
    Lvmthin(PoolArgs),
    /// A ZFS zpool.
    Zfs(PoolArgs),
    /// A thin-provisioned ZFS zpool.
    Zfsthin(PoolArgs),
    /// A pool without storage, for diskless resources.
    Diskless(DisklessPoolArgs),
    /// A directory holding image files.
    File(PoolArgs),
    /// A directory holding sparse image files.
    Filethin(PoolArgs),
    /// An SPDK logical volume store.
    Spdk(PoolArgs),
    /// A remote SPDK logical volume store.
    Remotespdk(PoolArgs),
    /// A Storage Spaces pool.
    Storagespaces(PoolArgs),
    /// A thin Storage Spaces pool.
    Storagespacesthin(PoolArgs),
    /// The old argument order: `<node> <name> <driver> <driver pool>`.
    #[command(external_subcommand)]
    Legacy(Vec<String>),
}

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct PoolArgs {
    /// Node for the new storage pool.
    pub node_name: String,
    /// Name of the new storage pool.
    pub name: String,
    /// Identifier of backing storage shared by several nodes.
    #[arg(long = "shared-space")]
    pub shared_space: Option<String>,
    /// Skip LINSTOR's locking for shared storage pools.
    #[arg(long = "external-locking")]
    pub external_locking: bool,
    /// The pool on the node: volume group, VG/thin pool, zpool or directory.
    pub driver_pool_name: String,
}

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct DisklessPoolArgs {
    pub node_name: String,
    pub name: String,
}

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct SpList {
    #[command(flatten)]
    pub list: ListOpts,
    /// Filter by storage pools.
    #[arg(short = 's', long = "storage-pools", num_args = 1..)]
    pub storage_pools: Vec<String>,
    /// Filter by nodes.
    #[arg(short = 'n', long = "nodes", num_args = 1..)]
    pub nodes: Vec<String>,
    /// Filter by properties.
    #[arg(long = "props", num_args = 1..)]
    pub props: Vec<String>,
    /// Show these properties as columns (KEY or KEY=HEADER).
    #[arg(long = "show-props", num_args = 1..)]
    pub show_props: Vec<String>,
}

/// Parses the driver subcommands again after the old argument order was put right.
#[derive(Parser, Debug)]
#[command(name = "create", no_binary_name = true)]
struct CreateLine {
    #[command(subcommand)]
    driver: SpCreate,
}

/// Driver keywords and their provider kinds.
pub const DRIVERS: &[(&str, &str)] = &[
    ("lvm", "LVM"),
    ("lvmthin", "LVM_THIN"),
    ("zfs", "ZFS"),
    ("zfsthin", "ZFS_THIN"),
    ("diskless", "DISKLESS"),
    ("file", "FILE"),
    ("filethin", "FILE_THIN"),
    ("spdk", "SPDK"),
    ("remotespdk", "REMOTE_SPDK"),
    ("storagespaces", "STORAGE_SPACES"),
    ("storagespacesthin", "STORAGE_SPACES_THIN"),
];

/// The driver keyword a word stands for (`lvm_thin`, `LvmThin`, `lvm-thin` all mean `lvmthin`).
pub fn driver_keyword(word: &str) -> Option<&'static str> {
    let w: String = word
        .chars()
        .filter(|c| *c != '_' && *c != '-')
        .collect::<String>()
        .to_ascii_lowercase();
    DRIVERS.iter().find(|(k, _)| *k == w).map(|(k, _)| *k)
}

/// Puts `<node> <name> <driver> [<driver pool>] [options]` into the current order and parses it.
pub fn legacy_create(words: &[String]) -> Result<SpCreate, CliError> {
    let mut positionals = Vec::new();
    let mut options = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        if w.starts_with('-') && w.len() > 1 {
            options.push(w.clone());
            if w == "--shared-space" && i + 1 < words.len() {
                options.push(words[i + 1].clone());
                i += 1;
            }
        } else {
            positionals.push(w.clone());
        }
        i += 1;
    }
    let known: Vec<&str> = DRIVERS.iter().map(|(k, _)| *k).collect();
    let driver = positionals
        .get(2)
        .and_then(|w| driver_keyword(w))
        .ok_or_else(|| {
            CliError::usage(format!(
                "Unknown storage pool driver '{}'. Use: linstor storage-pool create <driver> <node> <name> <driver pool>, \
                 where <driver> is one of: {}",
                words.first().map(String::as_str).unwrap_or(""),
                known.join(", ")
            ))
        })?;
    let mut line = vec![
        driver.to_string(),
        positionals[0].clone(),
        positionals[1].clone(),
    ];
    line.extend(positionals[3..].iter().cloned());
    line.extend(options);
    CreateLine::try_parse_from(&line)
        .map(|c| c.driver)
        .map_err(|e| CliError::usage(e.render().to_string().trim_end().to_string()))
}

/// The body python-linstor sends for `storage_pool_create`.
pub fn create_request(create: &SpCreate) -> Result<Request, CliError> {
    let (kind, node, name, shared, locking, pool) = match create {
        SpCreate::Legacy(words) => return create_request(&legacy_create(words)?),
        SpCreate::Diskless(a) => ("DISKLESS", &a.node_name, &a.name, None, false, None),
        SpCreate::Lvm(a)
        | SpCreate::Lvmthin(a)
        | SpCreate::Zfs(a)
        | SpCreate::Zfsthin(a)
        | SpCreate::File(a)
        | SpCreate::Filethin(a)
        | SpCreate::Spdk(a)
        | SpCreate::Remotespdk(a)
        | SpCreate::Storagespaces(a)
        | SpCreate::Storagespacesthin(a) => (
            provider_kind(create),
            &a.node_name,
            &a.name,
            a.shared_space.as_ref(),
            a.external_locking,
            Some(&a.driver_pool_name),
        ),
    };
    Ok(calls::storage_pool_create(
        node,
        &request::StoragePool {
            storage_pool_name: name.clone(),
            provider_kind: kind.to_string(),
            props: pool
                .iter()
                .map(|p| ("StorDriver/StorPoolName".to_string(), p.to_string()))
                .collect(),
            free_space_mgr_name: shared.cloned(),
            external_locking: locking,
        },
    ))
}

fn provider_kind(c: &SpCreate) -> &'static str {
    match c {
        SpCreate::Lvm(_) => "LVM",
        SpCreate::Lvmthin(_) => "LVM_THIN",
        SpCreate::Zfs(_) => "ZFS",
        SpCreate::Zfsthin(_) => "ZFS_THIN",
        SpCreate::Diskless(_) => "DISKLESS",
        SpCreate::File(_) => "FILE",
        SpCreate::Filethin(_) => "FILE_THIN",
        SpCreate::Spdk(_) => "SPDK",
        SpCreate::Remotespdk(_) => "REMOTE_SPDK",
        SpCreate::Storagespaces(_) => "STORAGE_SPACES",
        SpCreate::Storagespacesthin(_) => "STORAGE_SPACES_THIN",
        SpCreate::Legacy(_) => "",
    }
}

pub fn requests(cmd: &SpCmd) -> Result<Option<Vec<Request>>, CliError> {
    Ok(Some(match cmd {
        SpCmd::Create(c) => vec![create_request(c)?],
        SpCmd::Delete {
            node_name, name, ..
        } => node_name
            .iter()
            .map(|n| calls::storage_pool_delete(n, name))
            .collect(),
        SpCmd::SetProperty {
            node_name,
            name,
            prop,
        } => vec![calls::storage_pool_modify(
            node_name,
            name,
            &prop.props_modify(),
        )],
        _ => return Ok(None),
    }))
}

/// The path of the storage pool list query.
#[cfg(test)]
pub fn list_path(nodes: &[String], pools: &[String], props: &[String]) -> String {
    calls::storage_pools(nodes, pools, props).path
}

pub async fn run(ctx: &mut Ctx, cmd: SpCmd) -> Result<i32, CliError> {
    if let Some(reqs) = requests(&cmd)? {
        return ctx.send(reqs).await;
    }
    match cmd {
        SpCmd::List(a) => {
            let raw = ctx
                .fetch(calls::storage_pools(&a.nodes, &a.storage_pools, &a.props))
                .await?;
            let style = ctx.style(a.list.pastable);
            ctx.show_list(&raw, || {
                let pools: Vec<StoragePool> = parse(&raw, "storage pool list")?;
                Ok(render_pools(&pools, &a, style))
            })
        }
        SpCmd::ListProperties {
            pastable,
            node_name,
            storage_pool_name,
        } => {
            let raw = ctx
                .fetch(calls::storage_pools(
                    std::slice::from_ref(&node_name),
                    std::slice::from_ref(&storage_pool_name),
                    &[],
                ))
                .await?;
            let pools: Vec<StoragePool> = parse(&raw, "storage pool list")?;
            Ok(ctx.show_props(pools.first().map(|p| &p.props), pastable))
        }
        _ => unreachable!("write commands are handled by requests()"),
    }
}

/// The pool a storage pool uses on its node, as the PoolName column shows it.
pub fn driver_pool(sp: &StoragePool) -> String {
    let get = |k: &str| {
        sp.props
            .get(&format!("StorDriver/{k}"))
            .cloned()
            .unwrap_or_default()
    };
    if let Some(p) = sp.props.get("StorDriver/StorPoolName") {
        return p.clone();
    }
    match sp.provider_kind.as_str() {
        "LVM" | "SPDK" => get("LvmVg"),
        "LVM_THIN" => format!("{}/{}", get("LvmVg"), get("ThinPool")),
        "ZFS" => get("ZPool"),
        "ZFS_THIN" => get("ZPoolThin"),
        "FILE" | "FILE_THIN" => get("FileDir"),
        _ => String::new(),
    }
}

/// "Ok", "Warning" or "Error" from the pool's reports.
pub fn reports_state(reports: &[strata_api::ApiCallRc]) -> (&'static str, &'static str) {
    if reports.iter().any(|r| r.is_error()) {
        ("Error", color::RED)
    } else if reports.iter().any(|r| r.is_warning()) {
        ("Warning", color::YELLOW)
    } else {
        ("Ok", color::GREEN)
    }
}

fn py_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

pub fn render_pools(pools: &[StoragePool], a: &SpList, style: Style) -> String {
    let mut t = Table::new(style);
    t.column("StoragePool")
        .column("Node")
        .column("Driver")
        .column("PoolName")
        .column_with("FreeCapacity", None, Just::Right)
        .column_with("TotalCapacity", None, Just::Right)
        .column("CanSnapshots")
        .column("State")
        .column("SharedName");
    let extra = show_prop_columns(&a.show_props);
    for (_, h) in &extra {
        t.column(h);
    }
    let mut reports: Vec<&strata_api::ApiCallRc> = Vec::new();
    for sp in pools {
        let diskless = matches!(sp.provider_kind.as_str(), "DISKLESS" | "EBS_INIT");
        let (free, total) =
            if !diskless && sp.free_capacity.is_some() && sp.provider_kind != "EBS_TARGET" {
                let h = |v: Option<i64>| {
                    v.map(|k| HumanKib(k.max(0) as u64).to_string())
                        .unwrap_or_default()
                };
                (h(sp.free_capacity), h(sp.total_capacity))
            } else {
                (String::new(), String::new())
            };
        for r in &sp.reports {
            if !reports.contains(&r) {
                reports.push(r);
            }
        }
        let snapshots = sp.supports_snapshots
            || sp
                .static_traits
                .get("SupportsSnapshots")
                .is_some_and(|v| v == "true");
        let shared = sp
            .free_space_mgr_name
            .clone()
            .filter(|s| !s.contains(':'))
            .unwrap_or_default();
        let (state, col) = reports_state(&sp.reports);
        let mut row: Vec<Cell> = vec![
            sp.storage_pool_name.as_str().into(),
            sp.node_name.clone().unwrap_or_default().into(),
            sp.provider_kind.as_str().into(),
            driver_pool(sp).into(),
            free.into(),
            total.into(),
            py_bool(snapshots).into(),
            t.cell(state, Some(col)),
            shared.into(),
        ];
        for (k, _) in &extra {
            row.push(prop_cell(&sp.props, k).into());
        }
        t.row(row);
    }
    if a.list.groupby.is_empty() {
        t.sort_by_first();
    } else {
        t.sort_by(&a.list.groupby);
    }
    let mut s = t.render();
    for r in reports {
        s.push_str(&output::format_reply(r, style.color));
    }
    s
}

// --- storage-pool-definition ---

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum SpdCmd {
    /// Creates a storage pool definition.
    #[command(visible_alias = "c")]
    Create { name: String },
    /// Lists the storage pool definitions.
    #[command(visible_alias = "l")]
    List {
        #[arg(short = 'p', long)]
        pastable: bool,
    },
    /// Removes storage pool definitions.
    #[command(visible_alias = "d")]
    Delete {
        #[arg(short = 'q', long)]
        quiet: bool,
        #[arg(required = true)]
        name: Vec<String>,
    },
    /// Sets a property of a storage pool definition.
    #[command(visible_alias = "sp")]
    SetProperty {
        name: String,
        #[command(flatten)]
        prop: SetPropArgs,
    },
    /// Prints the properties of a storage pool definition.
    #[command(visible_alias = "lp")]
    ListProperties {
        #[arg(short = 'p', long)]
        pastable: bool,
        storage_pool_name: String,
    },
}

pub fn spd_requests(cmd: &SpdCmd) -> Option<Vec<Request>> {
    Some(match cmd {
        SpdCmd::Create { name } => vec![calls::storage_pool_dfn_create(
            &request::StoragePoolDefinition {
                storage_pool_name: name.clone(),
            },
        )],
        SpdCmd::Delete { name, .. } => name
            .iter()
            .map(|n| calls::storage_pool_dfn_delete(n))
            .collect(),
        SpdCmd::SetProperty { name, prop } => {
            vec![calls::storage_pool_dfn_modify(name, &prop.props_modify())]
        }
        _ => return None,
    })
}

pub async fn run_spd(ctx: &mut Ctx, cmd: SpdCmd) -> Result<i32, CliError> {
    if let Some(reqs) = spd_requests(&cmd) {
        return ctx.send(reqs).await;
    }
    let raw = ctx.fetch(calls::storage_pool_dfns()).await?;
    match cmd {
        SpdCmd::List { pastable } => {
            let style = ctx.style(pastable);
            ctx.show_list(&raw, || {
                let dfns: Vec<StoragePoolDefinition> = parse(&raw, "storage pool definition list")?;
                let mut t = Table::new(style);
                t.column("StoragePool");
                for d in &dfns {
                    t.row(vec![d.storage_pool_name.as_str().into()]);
                }
                Ok(t.render())
            })
        }
        SpdCmd::ListProperties {
            pastable,
            storage_pool_name,
        } => {
            let dfns: Vec<StoragePoolDefinition> = parse(&raw, "storage pool definition list")?;
            let found = dfns
                .iter()
                .find(|d| d.storage_pool_name.eq_ignore_ascii_case(&storage_pool_name));
            Ok(ctx.show_props(found.map(|d| &d.props), pastable))
        }
        _ => unreachable!("write commands are handled by spd_requests()"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse_line, Command};

    fn sp(args: &[&str]) -> SpCmd {
        match parse_line(args).unwrap().command {
            Some(Command::StoragePool(c)) => c,
            other => panic!("not a storage-pool command: {other:?}"),
        }
    }

    fn create(args: &[&str]) -> Result<Request, CliError> {
        match sp(args) {
            SpCmd::Create(c) => create_request(&c),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn lvm_pool() {
        let r = create(&[
            "linstor",
            "storage-pool",
            "create",
            "lvm",
            "node1",
            "pool_ssd",
            "vg_ssd",
        ])
        .unwrap();
        assert_eq!(r.method, reqwest::Method::POST);
        assert_eq!(r.path, "/v1/nodes/node1/storage-pools");
        assert_eq!(
            r.body.unwrap(),
            json!({"storage_pool_name": "pool_ssd", "provider_kind": "LVM", "props": {"StorDriver/StorPoolName": "vg_ssd"}})
        );
    }

    #[test]
    fn filethin_pool() {
        let r = create(&[
            "linstor",
            "storage-pool",
            "create",
            "filethin",
            "alpha",
            "pool_file",
            "/var/lib/x/pool",
        ])
        .unwrap();
        assert_eq!(r.path, "/v1/nodes/alpha/storage-pools");
        assert_eq!(
            r.body.unwrap(),
            json!({"storage_pool_name": "pool_file", "provider_kind": "FILE_THIN", "props": {"StorDriver/StorPoolName": "/var/lib/x/pool"}})
        );
    }

    #[test]
    fn old_argument_order() {
        let old = create(&[
            "linstor",
            "storage-pool",
            "create",
            "drbd-arm",
            "swpool",
            "lvm",
            "sw_ssd",
        ])
        .unwrap();
        let new = create(&[
            "linstor",
            "storage-pool",
            "create",
            "lvm",
            "drbd-arm",
            "swpool",
            "sw_ssd",
        ])
        .unwrap();
        assert_eq!(old, new);
        assert_eq!(old.path, "/v1/nodes/drbd-arm/storage-pools");
        assert_eq!(
            old.body.unwrap(),
            json!({"storage_pool_name": "swpool", "provider_kind": "LVM", "props": {"StorDriver/StorPoolName": "sw_ssd"}})
        );
        // With options, other driver spellings, and the diskless driver without a pool.
        let r = create(&[
            "linstor",
            "sp",
            "c",
            "n1",
            "thin",
            "lvm_thin",
            "vg/tp",
            "--shared-space",
            "s1",
        ])
        .unwrap();
        assert_eq!(
            r.body.unwrap(),
            json!({"storage_pool_name": "thin", "provider_kind": "LVM_THIN", "free_space_mgr_name": "s1",
                   "props": {"StorDriver/StorPoolName": "vg/tp"}})
        );
        let r = create(&["linstor", "sp", "c", "n1", "dl", "diskless"]).unwrap();
        assert_eq!(
            r.body.unwrap(),
            json!({"storage_pool_name": "dl", "provider_kind": "DISKLESS"})
        );
    }

    #[test]
    fn unknown_driver_is_refused() {
        let e = create(&["linstor", "sp", "c", "lvmm", "n1", "pool", "vg"]).unwrap_err();
        assert_eq!(e.code, crate::error::ARGPARSE_ERROR);
        assert!(e
            .message
            .unwrap()
            .contains("Unknown storage pool driver 'lvmm'"));
        let e = create(&["linstor", "sp", "c", "n1", "pool", "lvm"]).unwrap_err();
        assert_eq!(e.code, crate::error::ARGPARSE_ERROR);
    }

    #[test]
    fn other_write_commands() {
        let r = requests(&sp(&["linstor", "sp", "d", "n1", "n2", "pool"]))
            .unwrap()
            .unwrap();
        assert_eq!(
            r,
            vec![
                Request::delete("/v1/nodes/n1/storage-pools/pool"),
                Request::delete("/v1/nodes/n2/storage-pools/pool")
            ]
        );
        let r = requests(&sp(&[
            "linstor",
            "sp",
            "sp",
            "n1",
            "pool",
            "MaxOversubscriptionRatio",
            "3",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            r[0],
            Request::put(
                "/v1/nodes/n1/storage-pools/pool",
                json!({"override_props": {"MaxOversubscriptionRatio": "3"}})
            )
        );
        let c = match parse_line(&["linstor", "storage-pool-definition", "create", "drbdpool"])
            .unwrap()
            .command
        {
            Some(Command::StoragePoolDfn(c)) => c,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            spd_requests(&c).unwrap(),
            vec![Request::post(
                "/v1/storage-pool-definitions",
                json!({"storage_pool_name": "drbdpool"})
            )]
        );
    }

    #[test]
    fn pool_table() {
        let SpCmd::List(a) = sp(&["linstor", "sp", "l"]) else {
            panic!()
        };
        assert_eq!(
            list_path(&a.nodes, &a.storage_pools, &a.props),
            "/v1/view/storage-pools"
        );
        let pools: Vec<StoragePool> = serde_json::from_value(json!([
            {"storage_pool_name": "pool_ssd", "node_name": "node1", "provider_kind": "LVM",
             "props": {"StorDriver/StorPoolName": "vg_ssd"}, "free_capacity": 1048576, "total_capacity": 1572864,
             "free_space_mgr_name": "node1;pool_ssd", "supports_snapshots": false},
            {"storage_pool_name": "DfltDisklessStorPool", "node_name": "node1", "provider_kind": "DISKLESS",
             "free_space_mgr_name": "node1:DfltDisklessStorPool", "supports_snapshots": false}
        ]))
        .unwrap();
        let out = render_pools(&pools, &a, Style::PLAIN);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[1],
            "| StoragePool          | Node  | Driver   | PoolName | FreeCapacity | TotalCapacity | CanSnapshots | State | SharedName     |"
        );
        assert_eq!(
            lines[3],
            "| DfltDisklessStorPool | node1 | DISKLESS |          |              |               | False        | Ok    |                |"
        );
        assert_eq!(
            lines[4],
            "| pool_ssd             | node1 | LVM      | vg_ssd   |        1 GiB |      1.50 GiB | False        | Ok    | node1;pool_ssd |"
        );
    }
}
