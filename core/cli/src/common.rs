//! What several object families share: the request a command sends, property arguments, the
//! auto-place filter arguments and the filter they make, and the checks of layer lists,
//! providers, sizes and place counts.

use std::collections::BTreeMap;

use clap::Args;
#[cfg(test)]
use serde_json::{json, Value};
use strata_api::types::{request, AutoSelectFilter, PropsModify};
use strata_client::calls;
use strata_model::size::{parse_size_kib, DefaultUnit};

use crate::error::CliError;

/// One REST call a command makes: everything needed to send it, nothing that needs a server to
/// compute. The calls of [`strata_client::calls`] make them.
pub use strata_client::Call as Request;

pub const AUX: &str = "Aux/";

/// `[--aux] KEY [VALUE]`: an empty value deletes the property.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct SetPropArgs {
    /// Property is an auxiliary user property (stored under Aux/).
    #[arg(long)]
    pub aux: bool,
    /// The property key.
    pub key: String,
    /// The new value; if empty, the property is removed.
    #[arg(default_value = "")]
    pub value: String,
}

impl SetPropArgs {
    pub fn full_key(&self) -> String {
        if self.aux {
            format!("{AUX}{}", self.key)
        } else {
            self.key.clone()
        }
    }

    /// The properties part of a modify body: `override_props` or `delete_props`.
    pub fn props_modify(&self) -> PropsModify {
        let mut m = PropsModify::default();
        if self.value.is_empty() {
            m.delete_props.push(self.full_key());
        } else {
            m.override_props.insert(self.full_key(), self.value.clone());
        }
        m
    }

    /// [`SetPropArgs::props_modify`] as JSON, as the tests compare it.
    #[cfg(test)]
    pub fn modify_body(&self) -> Value {
        serde_json::to_value(self.props_modify()).expect("serialises")
    }
}

/// Options shared by the list commands.
#[derive(Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOpts {
    /// Generate pastable output (ASCII, no colours).
    #[arg(short = 'p', long)]
    pub pastable: bool,
    /// Sort the rows by these columns.
    #[arg(short = 'g', long = "groupby", num_args = 1..)]
    pub groupby: Vec<String>,
}

/// The columns `--show-props` adds: (property key, column header).
pub fn show_prop_columns(specs: &[String]) -> Vec<(String, String)> {
    specs
        .iter()
        .map(|s| match s.split_once('=') {
            Some((k, h)) => (k.to_string(), h.to_string()),
            None => (s.clone(), s.clone()),
        })
        .collect()
}

/// A comma separated layer list, as `-l/--layer-list` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LayerList(pub Vec<String>);

pub const LAYERS: &[&str] = &[
    "drbd",
    "luks",
    "storage",
    "nvme",
    "writecache",
    "cache",
    "bcache",
];

pub fn parse_layer_list(s: &str) -> Result<LayerList, String> {
    if s.is_empty() {
        return Ok(LayerList(Vec::new()));
    }
    let mut out = Vec::new();
    for layer in s.split(',') {
        if !LAYERS.contains(&layer.to_ascii_lowercase().as_str()) {
            return Err(format!(
                "Layer name \"{layer}\" not valid; possible layers are: {}",
                LAYERS.join(",")
            ));
        }
        out.push(layer.to_string());
    }
    Ok(LayerList(out))
}

/// A comma separated provider list, as `--providers` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProviderList(pub Vec<String>);

pub const PROVIDERS: &[&str] = &[
    "LVM",
    "LVM_THIN",
    "ZFS",
    "ZFS_THIN",
    "DISKLESS",
    "FILE",
    "FILE_THIN",
    "SPDK",
    "REMOTE_SPDK",
    "STORAGE_SPACES",
    "STORAGE_SPACES_THIN",
    "EBS_TARGET",
    "EBS_INIT",
];

pub fn parse_provider_list(s: &str) -> Result<ProviderList, String> {
    if s.is_empty() {
        return Ok(ProviderList(Vec::new()));
    }
    let mut out = Vec::new();
    for p in s.split(',') {
        if !PROVIDERS.contains(&p.to_ascii_uppercase().as_str()) {
            return Err(format!(
                "Provider \"{p}\" not valid; possible providers are: {}",
                PROVIDERS.join(",")
            ));
        }
        out.push(p.to_string());
    }
    Ok(ProviderList(out))
}

/// A whole number within bounds, for ports, peer slots and the like.
pub fn ranged(
    lo: i64,
    hi: i64,
) -> impl Fn(&str) -> Result<i64, String> + Clone + Send + Sync + 'static {
    move |s: &str| {
        let v: i64 = s
            .trim()
            .parse()
            .map_err(|_| format!("'{s}' is not a whole number"))?;
        if v < lo || v > hi {
            return Err(format!("{v} not in range: [{lo}, {hi}]"));
        }
        Ok(v)
    }
}

/// A size for the REST API, in KiB; a number without unit is taken in `default`.
pub fn size_kib(text: &str, default: DefaultUnit) -> Result<i64, CliError> {
    parse_size_kib(text, default)
        .map(|k| k as i64)
        .map_err(|e| CliError::usage(format!("Invalid size: {}", e.0)))
}

/// `--auto-place` / `--place-count` values: a number, `+N` for additional replicas, or
/// `max`/`all` for every node. Returns (place_count, additional_place_count).
pub fn parse_place_count(text: &str) -> Result<(Option<i64>, Option<i64>), CliError> {
    let bad = || {
        CliError::usage(format!(
            "Invalid replica count '{text}': use a number, +N for additional replicas, or max"
        ))
    };
    if let Some(rest) = text.strip_prefix('+') {
        let n: i64 = rest.parse().map_err(|_| bad())?;
        return Ok((None, Some(n)));
    }
    if text == "max" || text == "all" {
        return Ok((Some(-1), Some(0)));
    }
    let n: i64 = text.parse().map_err(|_| bad())?;
    if n < 0 {
        return Err(bad());
    }
    Ok((Some(n), None))
}

/// `None` stays `None`; a list whose first entry is empty means "clear" (an empty list);
/// otherwise every entry gets the prefix.
pub fn argparse_list(list: &Option<Vec<String>>, prefix: &str) -> Option<Vec<String>> {
    list.as_ref().map(|l| {
        if l.first().is_some_and(|f| !f.is_empty()) {
            l.iter().map(|x| format!("{prefix}{x}")).collect()
        } else {
            Vec::new()
        }
    })
}

/// `--diskless-on-remaining [false]`: given without value it means true.
pub fn parse_diskless_on_remaining(v: &Option<String>) -> Option<bool> {
    v.as_ref().map(|s| !s.eq_ignore_ascii_case("false"))
}

/// The auto-place filter options common to resource groups, spawning and auto-placing.
#[derive(Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterArgs {
    /// Diskless storage pool name(s) to use; an empty string removes the setting.
    #[arg(long = "diskless-storage-pool", num_args = 0..)]
    pub diskless_storage_pool: Option<Vec<String>>,
    /// Try to avoid nodes that already have a given resource deployed.
    #[arg(long = "do-not-place-with", num_args = 0.., value_name = "RESOURCE_NAME")]
    pub do_not_place_with: Option<Vec<String>>,
    /// Try to avoid nodes that already have a resource deployed whose name matches this regex.
    #[arg(long = "do-not-place-with-regex", num_args = 0..=1, value_name = "RESOURCE_REGEX")]
    pub do_not_place_with_regex: Option<Option<String>>,
    /// Place replicas on nodes with the same value of these auxiliary node properties.
    #[arg(long = "replicas-on-same", num_args = 0.., value_name = "AUX_PROPERTY")]
    pub replicas_on_same: Option<Vec<String>>,
    /// Place replicas on nodes with different values of these auxiliary node properties.
    #[arg(long = "replicas-on-different", num_args = 0.., value_name = "AUX_PROPERTY")]
    pub replicas_on_different: Option<Vec<String>>,
    /// Add a diskless resource on all other nodes; "false" unsets it.
    #[arg(long = "diskless-on-remaining", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub diskless_on_remaining: Option<String>,
    /// Comma separated layer list, top-most layer first (drbd,luks,storage,nvme,writecache,cache,bcache).
    #[arg(short = 'l', long = "layer-list", value_parser = parse_layer_list)]
    pub layer_list: Option<LayerList>,
}

/// The `select_filter` object as python-linstor fills it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SelectFilter {
    pub place_count: Option<i64>,
    pub additional_place_count: Option<i64>,
    pub diskless_type: Option<String>,
    pub diskless_on_remaining: Option<bool>,
    pub storage_pool: Option<Vec<String>>,
    pub diskless_storage_pool: Option<Vec<String>>,
    pub do_not_place_with: Option<Vec<String>>,
    pub do_not_place_with_regex: Option<String>,
    pub replicas_on_same: Option<Vec<String>>,
    pub replicas_on_different: Option<Vec<String>>,
    pub layer_stack: Option<Vec<String>>,
    pub provider_list: Option<Vec<String>>,
}

impl SelectFilter {
    /// Fills the filter from the shared options plus the command's own storage pool and
    /// provider options.
    pub fn from_args(
        f: &FilterArgs,
        storage_pool: &Option<Vec<String>>,
        providers: &Option<ProviderList>,
    ) -> SelectFilter {
        SelectFilter {
            diskless_on_remaining: parse_diskless_on_remaining(&f.diskless_on_remaining),
            storage_pool: storage_pool.clone(),
            diskless_storage_pool: argparse_list(&f.diskless_storage_pool, ""),
            do_not_place_with: argparse_list(&f.do_not_place_with, ""),
            do_not_place_with_regex: f.do_not_place_with_regex.clone().flatten(),
            replicas_on_same: argparse_list(&f.replicas_on_same, AUX),
            replicas_on_different: argparse_list(&f.replicas_on_different, AUX),
            layer_stack: f.layer_list.as_ref().map(|l| l.0.clone()),
            provider_list: providers.as_ref().map(|p| p.0.clone()),
            ..SelectFilter::default()
        }
    }

    /// The `select_filter` of a request: a storage pool list whose first entry is empty
    /// clears the setting, an additional place count of 0 is left out.
    pub fn to_filter(&self) -> AutoSelectFilter {
        let storage_pool_list = self.storage_pool.as_ref().map(|sp| {
            if sp.first().is_some_and(|f| !f.is_empty()) {
                sp.clone()
            } else {
                Vec::new()
            }
        });
        AutoSelectFilter {
            place_count: self.place_count,
            additional_place_count: self.additional_place_count.filter(|a| *a != 0),
            diskless_type: self.diskless_type.clone(),
            diskless_on_remaining: self.diskless_on_remaining,
            storage_pool_list,
            storage_pool_diskless_list: self.diskless_storage_pool.clone(),
            not_place_with_rsc: self.do_not_place_with.clone(),
            not_place_with_rsc_regex: self.do_not_place_with_regex.clone(),
            replicas_on_same: self.replicas_on_same.clone(),
            replicas_on_different: self.replicas_on_different.clone(),
            layer_stack: self.layer_stack.clone(),
            provider_list: self.provider_list.clone(),
            ..AutoSelectFilter::default()
        }
    }

    /// [`SelectFilter::to_filter`] as JSON, as the tests compare it.
    #[cfg(test)]
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self.to_filter()).expect("serialises")
    }
}

/// An auto-place request as python-linstor builds it.
pub fn autoplace_request(
    rsc: &str,
    filter: &SelectFilter,
    layer_list: &Option<LayerList>,
) -> Request {
    let req = request::AutoPlaceRequest {
        diskless_on_remaining: Some(filter.diskless_on_remaining),
        select_filter: filter.to_filter(),
        layer_list: layer_list.as_ref().map(|l| l.0.clone()).unwrap_or_default(),
    };
    calls::autoplace(rsc, &req)
}

/// The value of a property, or an empty cell.
pub fn prop_cell(props: &BTreeMap<String, String>, key: &str) -> String {
    props.get(key).cloned().unwrap_or_default()
}

/// Python's `repr()` of a list of strings: `['a', 'b']`.
pub fn py_list(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|s| py_str(s)).collect();
    format!("[{}]", inner.join(", "))
}

/// Python's `repr()` of a string.
pub fn py_str(s: &str) -> String {
    if s.contains('\'') && !s.contains('"') {
        format!("\"{s}\"")
    } else {
        format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_prop_bodies() {
        let set = SetPropArgs {
            aux: true,
            key: "site".into(),
            value: "a".into(),
        };
        assert_eq!(
            set.modify_body(),
            json!({"override_props": {"Aux/site": "a"}})
        );
        let del = SetPropArgs {
            aux: false,
            key: "DrbdOptions/Net/protocol".into(),
            value: String::new(),
        };
        assert_eq!(
            del.modify_body(),
            json!({"delete_props": ["DrbdOptions/Net/protocol"]})
        );
    }

    #[test]
    fn layer_and_provider_lists() {
        assert_eq!(
            parse_layer_list("drbd,STORAGE").unwrap().0,
            vec!["drbd", "STORAGE"]
        );
        assert_eq!(parse_layer_list("").unwrap().0, Vec::<String>::new());
        assert!(parse_layer_list("drbd,foo")
            .unwrap_err()
            .contains("\"foo\" not valid"));
        assert_eq!(
            parse_provider_list("lvm_thin,ZFS").unwrap().0,
            vec!["lvm_thin", "ZFS"]
        );
        assert!(parse_provider_list("ext4").is_err());
    }

    #[test]
    fn place_counts() {
        assert_eq!(parse_place_count("2").unwrap(), (Some(2), None));
        assert_eq!(parse_place_count("+1").unwrap(), (None, Some(1)));
        assert_eq!(parse_place_count("max").unwrap(), (Some(-1), Some(0)));
        assert_eq!(
            parse_place_count("two").unwrap_err().code,
            crate::error::ARGPARSE_ERROR
        );
        assert!(parse_place_count("-3").is_err());
    }

    #[test]
    fn sizes_and_ranges() {
        assert_eq!(size_kib("2G", DefaultUnit::GiB).unwrap(), 2 * 1024 * 1024);
        assert_eq!(size_kib("10", DefaultUnit::GiB).unwrap(), 10 * 1024 * 1024);
        let e = size_kib("0", DefaultUnit::GiB).unwrap_err();
        assert_eq!(e.code, crate::error::ARGPARSE_ERROR);
        assert!(e.message.unwrap().contains("zero"));
        assert!(size_kib("-5G", DefaultUnit::GiB)
            .unwrap_err()
            .message
            .unwrap()
            .contains("negative"));
        assert!(size_kib("lots", DefaultUnit::GiB).is_err());
        let port = ranged(1, 65535);
        assert_eq!(port("3366").unwrap(), 3366);
        assert_eq!(port("0").unwrap_err(), "0 not in range: [1, 65535]");
        assert!(port("x").is_err());
    }

    #[test]
    fn filter_json() {
        let f = SelectFilter {
            place_count: Some(2),
            additional_place_count: Some(0),
            storage_pool: Some(vec!["pool_ssd".into()]),
            replicas_on_same: Some(vec!["Aux/rack".into()]),
            do_not_place_with_regex: Some("db.*".into()),
            diskless_on_remaining: Some(false),
            ..SelectFilter::default()
        };
        assert_eq!(
            f.to_json(),
            json!({
                "place_count": 2,
                "storage_pool_list": ["pool_ssd"],
                "replicas_on_same": ["Aux/rack"],
                "not_place_with_rsc_regex": "db.*",
                "diskless_on_remaining": false
            })
        );
        let cleared = SelectFilter {
            storage_pool: Some(vec![String::new()]),
            ..SelectFilter::default()
        };
        assert_eq!(cleared.to_json(), json!({"storage_pool_list": []}));
        assert_eq!(SelectFilter::default().to_json(), json!({}));
    }

    #[test]
    fn python_reprs() {
        assert_eq!(py_list(&["a".into(), "b".into()]), "['a', 'b']");
        assert_eq!(py_str("it's"), "\"it's\"");
        assert_eq!(
            show_prop_columns(&["Aux/a=Site".into(), "Aux/b".into()]),
            vec![
                ("Aux/a".to_string(), "Site".to_string()),
                ("Aux/b".to_string(), "Aux/b".to_string())
            ]
        );
    }
}
