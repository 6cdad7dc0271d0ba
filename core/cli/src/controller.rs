//! `controller` (`c`): version, controller properties, maximum volume sizes, and token
//! authentication (`auth`, in `auth.rs`).

use clap::Subcommand;
#[cfg(test)]
use reqwest::Method;
use serde::Serialize;
#[cfg(test)]
use serde_json::json;
use strata_api::types::{
    AutoSelectFilter, ControllerVersion, MaxVolumeSizes, StoragePoolDefinition,
};
use strata_client::calls;
use strata_model::size::HumanKib;

use crate::common::{Request, SetPropArgs, AUX};
use crate::context::{out, parse, Ctx};
use crate::drbd_opts::{AllSections, DrbdOptionArgs};
use crate::error::{self, CliError};
use crate::output::{self, Style};
use crate::table::{Just, Table};

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum ControllerCmd {
    /// Prints the controller version.
    #[command(visible_alias = "v")]
    Version,
    /// Prints the controller properties.
    #[command(visible_alias = "lp")]
    ListProperties {
        #[arg(short = 'p', long)]
        pastable: bool,
    },
    /// Sets a controller property.
    #[command(visible_alias = "sp")]
    SetProperty {
        #[command(flatten)]
        prop: SetPropArgs,
    },
    /// Shows the largest volume storage pools could hold for a replica count.
    #[command(visible_alias = "qmvs")]
    QueryMaxVolumeSize {
        #[arg(short = 'p', long)]
        pastable: bool,
        /// Storage pool to query.
        #[arg(short = 's', long = "storage-pool")]
        storage_pool: Option<String>,
        /// Avoid nodes that have these resources.
        #[arg(long = "do-not-place-with", num_args = 1.., value_name = "RESOURCE_NAME")]
        do_not_place_with: Option<Vec<String>>,
        /// Avoid nodes that have resources matching this regex.
        #[arg(long = "do-not-place-with-regex", value_name = "RESOURCE_REGEX")]
        do_not_place_with_regex: Option<String>,
        /// Same values of these auxiliary node properties.
        #[arg(long = "replicas-on-same", num_args = 1.., value_name = "AUX_NODE_PROPERTY")]
        replicas_on_same: Vec<String>,
        /// Different values of these auxiliary node properties.
        #[arg(long = "replicas-on-different", num_args = 1.., value_name = "AUX_NODE_PROPERTY")]
        replicas_on_different: Vec<String>,
        /// The least number of replicas.
        replica_count: i64,
    },
    /// Shows the controller in use.
    Which,
    /// Sets DRBD options every resource inherits; --unset-<option> removes one.
    #[command(name = "drbd-options", visible_alias = "opt")]
    DrbdOptions(DrbdOptionArgs<AllSections>),
    /// Token authentication of the REST API.
    #[command(subcommand)]
    Auth(crate::auth::AuthCmd),
}

pub fn requests(cmd: &ControllerCmd) -> Result<Option<Vec<Request>>, CliError> {
    Ok(Some(match cmd {
        ControllerCmd::SetProperty { prop } => {
            vec![calls::controller_props_modify(&prop.props_modify())]
        }
        ControllerCmd::DrbdOptions(opts) => {
            vec![calls::controller_props_modify(&opts.props_modify()?)]
        }
        _ => return Ok(None),
    }))
}

/// The max-volume-size query, as python-linstor sends it (`OPTIONS`); empty options are left
/// out.
pub fn qmvs_request(
    replica_count: i64,
    storage_pool: &Option<String>,
    not_with: &Option<Vec<String>>,
    regex: &Option<String>,
    same: &[String],
    different: &[String],
) -> Request {
    let aux = |keys: &[String]| -> Option<Vec<String>> {
        (!keys.is_empty()).then(|| keys.iter().map(|s| format!("{AUX}{s}")).collect())
    };
    calls::max_volume_size(&AutoSelectFilter {
        place_count: Some(replica_count),
        storage_pool: storage_pool.clone().filter(|s| !s.is_empty()),
        not_place_with_rsc: not_with.clone().filter(|n| !n.is_empty()),
        not_place_with_rsc_regex: regex.clone().filter(|r| !r.is_empty()),
        replicas_on_same: aux(same),
        replicas_on_different: aux(different),
        ..AutoSelectFilter::default()
    })
}

pub async fn run(ctx: &mut Ctx, cmd: ControllerCmd) -> Result<i32, CliError> {
    if let Some(reqs) = requests(&cmd)? {
        return ctx.send(reqs).await;
    }
    match cmd {
        ControllerCmd::Auth(c) => crate::auth::run(ctx, c).await,
        ControllerCmd::Version => {
            let raw = ctx.fetch(calls::controller_version()).await?;
            if ctx.settings.machine {
                ctx.machine(&output::py_json_compact(&raw));
            } else {
                let v: ControllerVersion = parse(&raw, "controller version")?;
                out(&format!(
                    "linstor controller {}; GIT-hash: {}\n",
                    v.version, v.git_hash
                ));
            }
            Ok(error::OK)
        }
        ControllerCmd::ListProperties { pastable } => {
            let raw = ctx.fetch(calls::controller_props()).await?;
            let props: std::collections::BTreeMap<String, String> =
                parse(&raw, "controller properties")?;
            Ok(ctx.show_props(Some(&props), pastable))
        }
        ControllerCmd::QueryMaxVolumeSize {
            pastable,
            storage_pool,
            do_not_place_with,
            do_not_place_with_regex,
            replicas_on_same,
            replicas_on_different,
            replica_count,
        } => {
            let req = qmvs_request(
                replica_count,
                &storage_pool,
                &do_not_place_with,
                &do_not_place_with_regex,
                &replicas_on_same,
                &replicas_on_different,
            );
            let raw = ctx.fetch(req).await?;
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
        ControllerCmd::Which => {
            let first = ctx
                .settings
                .controllers
                .first()
                .cloned()
                .unwrap_or_default();
            let url = strata_client::controller_url(&first)?;
            if ctx.settings.machine {
                #[derive(Serialize)]
                struct Which<'a> {
                    controller_uri: &'a str,
                }
                let text = serde_json::to_string(&Which {
                    controller_uri: &url,
                })
                .unwrap_or_default();
                ctx.machine(&text);
            } else {
                out(&format!("{url}\n"));
            }
            Ok(error::OK)
        }
        ControllerCmd::SetProperty { .. } | ControllerCmd::DrbdOptions(_) => {
            unreachable!("handled by requests()")
        }
    }
}

/// Node names joined, cut to 40 characters as upstream does.
pub fn limited(names: &[String]) -> String {
    let mut s = String::new();
    for (i, n) in names.iter().enumerate() {
        s.push_str(n);
        if i + 1 != names.len() {
            s.push_str(", ");
        }
        if s.chars().count() > 40 {
            s = s.chars().take(37).collect::<String>() + "...";
        }
    }
    s
}

/// Python's `str()` of a float: always with a fractional part.
fn py_float(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e16 {
        format!("{f:.1}")
    } else {
        format!("{f}")
    }
}

pub fn render_max_sizes(
    sizes: &MaxVolumeSizes,
    spds: &[StoragePoolDefinition],
    style: Style,
) -> String {
    let mut t = Table::new(style);
    t.column("StoragePool")
        .column_with("MaxVolumeSize", None, Just::Right)
        .column("Provisioning")
        .column("Nodes");
    for c in &sizes.candidates {
        let ratio = spds
            .iter()
            .find(|d| d.storage_pool_name == c.storage_pool)
            .and_then(|d| d.props.get("MaxOversubscriptionRatio"))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(sizes.default_max_oversubscription_ratio);
        let provisioning = if c.all_thin {
            format!("Thin, oversubscription ratio {}", py_float(ratio))
        } else {
            "Thick".to_string()
        };
        t.row(vec![
            c.storage_pool.as_str().into(),
            HumanKib(c.max_volume_size_kib.max(0) as u64)
                .to_string()
                .into(),
            provisioning.into(),
            limited(&c.node_names).into(),
        ]);
    }
    t.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse_line, Command};

    fn c(args: &[&str]) -> ControllerCmd {
        match parse_line(args).unwrap().command {
            Some(Command::Controller(c)) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn set_property() {
        assert_eq!(
            requests(&c(&[
                "linstor",
                "controller",
                "set-property",
                "DrbdOptions/Net/protocol",
                "C"
            ]))
            .unwrap()
            .unwrap(),
            vec![Request::post(
                "/v1/controller/properties",
                json!({"override_props": {"DrbdOptions/Net/protocol": "C"}})
            )]
        );
        assert_eq!(
            requests(&c(&["linstor", "c", "sp", "--aux", "x"]))
                .unwrap()
                .unwrap()[0]
                .body,
            Some(json!({"delete_props": ["Aux/x"]}))
        );
        assert_eq!(c(&["linstor", "c", "v"]), ControllerCmd::Version);
    }

    #[test]
    fn drbd_options() {
        let r = requests(&c(&[
            "linstor",
            "controller",
            "drbd-options",
            "--quorum",
            "majority",
            "--on-no-quorum",
            "io-error",
            "--fence-peer",
            "/usr/lib/drbd/crm-fence-peer.9.sh",
            "--unset-c-max-rate",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            r,
            vec![Request::post(
                "/v1/controller/properties",
                json!({
                    "override_props": {
                        "DrbdOptions/Resource/quorum": "majority",
                        "DrbdOptions/Resource/on-no-quorum": "io-error",
                        "DrbdOptions/Handlers/fence-peer": "/usr/lib/drbd/crm-fence-peer.9.sh"
                    },
                    "delete_props": ["DrbdOptions/PeerDevice/c-max-rate"]
                })
            )]
        );
        // The upstream client's names for handlers.
        let r = requests(&c(&["linstor", "c", "opt", "--unset-handler-split-brain"]))
            .unwrap()
            .unwrap();
        assert_eq!(
            r[0].body,
            Some(json!({"delete_props": ["DrbdOptions/Handlers/split-brain"]}))
        );
        let e = requests(&c(&["linstor", "c", "drbd-options"])).unwrap_err();
        assert_eq!(e.code, crate::error::ARGPARSE_ERROR);
        assert!(parse_line(&["linstor", "c", "drbd-options", "--no-such-option", "1"]).is_err());
        assert!(parse_line(&["linstor", "c", "drbd-options", "--quorum", "99"]).is_err());
    }

    #[test]
    fn qmvs() {
        let ControllerCmd::QueryMaxVolumeSize {
            storage_pool,
            do_not_place_with,
            do_not_place_with_regex,
            replicas_on_same,
            replicas_on_different,
            replica_count,
            ..
        } = c(&[
            "linstor",
            "c",
            "qmvs",
            "2",
            "--storage-pool",
            "p",
            "--replicas-on-same",
            "site",
        ])
        else {
            panic!()
        };
        let r = qmvs_request(
            replica_count,
            &storage_pool,
            &do_not_place_with,
            &do_not_place_with_regex,
            &replicas_on_same,
            &replicas_on_different,
        );
        assert_eq!(r.method, Method::OPTIONS);
        assert_eq!(
            r.body,
            Some(json!({"place_count": 2, "storage_pool": "p", "replicas_on_same": ["Aux/site"]}))
        );
    }

    #[test]
    fn max_size_table() {
        let sizes: MaxVolumeSizes = serde_json::from_value(json!({
            "candidates": [{"storage_pool": "thin", "max_volume_size_kib": 2097152, "all_thin": true,
                            "node_names": ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf"]},
                           {"storage_pool": "thick", "max_volume_size_kib": 1048576, "all_thin": false, "node_names": ["alpha"]}],
            "default_max_oversubscription_ratio": 20.0
        }))
        .unwrap();
        let out = render_max_sizes(&sizes, &[], Style::PLAIN);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[3],
            "| thin        |         2 GiB | Thin, oversubscription ratio 20.0 | alpha, bravo, charlie, delta, echo, f... |"
        );
        assert_eq!(
            lines[4],
            "| thick       |         1 GiB | Thick                             | alpha                                    |"
        );
    }
}
