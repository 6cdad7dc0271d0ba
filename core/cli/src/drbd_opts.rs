//! The arguments of `drbd-options` and `drbd-peer-options`: one `--<option> VALUE` and one
//! `--unset-<option>` per DRBD option of the model's catalogue, built at run time (the
//! catalogue is generated from drbd-utils), and the property change they ask for.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::marker::PhantomData;
use std::sync::LazyLock;

use clap::builder::PossibleValuesParser;
use clap::{Arg, ArgAction, ArgMatches, Args, Command, FromArgMatches};
#[cfg(test)]
use serde_json::{json, Map, Value};
use strata_api::types::PropsModify;
use strata_model::props::{check_drbd_value, drbd_options, DrbdOptionDef, DrbdSection, DrbdValue};

use crate::error::CliError;

/// Which sections of DRBD options a command sets.
pub trait DrbdScope {
    const SECTIONS: &'static [DrbdSection];
}

/// Everything: the controller, resource groups and resource definitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllSections;

impl DrbdScope for AllSections {
    const SECTIONS: &'static [DrbdSection] = &DrbdSection::ALL;
}

/// Volume definitions: the options of a volume's disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VolumeSections;

impl DrbdScope for VolumeSections {
    const SECTIONS: &'static [DrbdSection] = &[DrbdSection::Disk];
}

/// Connections (of a resource or of two nodes): net and peer-device options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerSections;

impl DrbdScope for PeerSections {
    const SECTIONS: &'static [DrbdSection] = &[DrbdSection::Net, DrbdSection::PeerDevice];
}

/// The flags of one option. Built once: clap wants `'static` names.
struct Flag {
    def: &'static DrbdOptionDef,
    /// The property key, also the id of the value argument.
    key: String,
    unset_id: String,
    unset_long: String,
    /// The names the upstream client gives some options: `--drbd-timeout` (its global
    /// `--timeout` took the plain one) and `--handler-<name>`.
    alias: Option<String>,
    unset_alias: Option<String>,
}

static FLAGS: LazyLock<Vec<Flag>> = LazyLock::new(|| {
    drbd_options()
        .map(|def| {
            let alias = match (def.section, def.name) {
                (DrbdSection::Net, "timeout") => Some("drbd-timeout".to_string()),
                (DrbdSection::Handlers, name) => Some(format!("handler-{name}")),
                _ => None,
            };
            Flag {
                def,
                key: def.key(),
                unset_id: format!("unset {}", def.key()),
                unset_long: format!("unset-{}", def.name),
                unset_alias: alias.as_ref().map(|a| format!("unset-{a}")),
                alias,
            }
        })
        .collect()
});

/// The flags of a scope. An option name two sections share gets the flag of the first.
fn flags_of<S: DrbdScope>() -> impl Iterator<Item = &'static Flag> {
    let mut names = HashSet::new();
    FLAGS
        .iter()
        .filter(|f| S::SECTIONS.contains(&f.def.section))
        .filter(move |f| names.insert(f.def.name))
}

fn heading(section: DrbdSection) -> &'static str {
    match section {
        DrbdSection::Resource => "Resource options",
        DrbdSection::Disk => "Disk options",
        DrbdSection::Net => "Net options",
        DrbdSection::PeerDevice => "Peer device options",
        DrbdSection::Handlers => "Handlers (commands drbdadm runs)",
    }
}

fn value_arg(f: &'static Flag) -> Arg {
    let def = f.def;
    let mut arg = Arg::new(f.key.as_str())
        .long(def.name)
        .action(ArgAction::Set)
        .help_heading(heading(def.section))
        .conflicts_with(f.unset_id.as_str());
    if let Some(a) = &f.alias {
        arg = arg.alias(a.as_str());
    }
    let default = def
        .default_text()
        .map(|d| format!(" (DRBD's default: {d})"))
        .unwrap_or_default();
    match def.value {
        DrbdValue::Boolean { .. } => arg
            .value_name("VALUE")
            .value_parser(PossibleValuesParser::new(["yes", "no"]))
            .help(format!("yes or no{default}")),
        DrbdValue::Enum {
            values,
            ignore_case,
        } => arg
            .value_name("VALUE")
            .value_parser(PossibleValuesParser::new(values))
            .ignore_case(ignore_case),
        DrbdValue::Numeric { .. } => arg
            .value_name("NUMBER")
            .value_parser(checked(def))
            .help(format!("{}{default}", capitalised(&def.describe_values()))),
        DrbdValue::NumericOrSymbol { .. } => arg
            .value_name("VALUE")
            .value_parser(checked(def))
            .help(format!("{}{default}", capitalised(&def.describe_values()))),
        DrbdValue::String if def.section == DrbdSection::Handlers => arg
            .value_name("COMMAND")
            .value_parser(checked(def))
            .help("The command drbdadm runs"),
        DrbdValue::String => arg.value_name("TEXT").value_parser(checked(def)),
    }
}

fn unset_arg(f: &'static Flag) -> Arg {
    let mut arg = Arg::new(f.unset_id.as_str())
        .long(f.unset_long.as_str())
        .action(ArgAction::SetTrue)
        .hide(true);
    if let Some(a) = &f.unset_alias {
        arg = arg.alias(a.as_str());
    }
    arg
}

/// A value parser that checks the value as the controller will.
fn checked(
    def: &'static DrbdOptionDef,
) -> impl Fn(&str) -> Result<String, String> + Clone + Send + Sync + 'static {
    move |s: &str| {
        check_drbd_value(def, s)
            .map(|()| s.to_string())
            .map_err(|e| e.correction)
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The DRBD options given on the command line: those to set and those to remove.
pub struct DrbdOptionArgs<S> {
    /// Property key -> value.
    pub set: BTreeMap<String, String>,
    /// Property keys, in catalogue order.
    pub unset: Vec<String>,
    scope: PhantomData<S>,
}

impl<S> DrbdOptionArgs<S> {
    pub fn new(set: BTreeMap<String, String>, unset: Vec<String>) -> Self {
        DrbdOptionArgs {
            set,
            unset,
            scope: PhantomData,
        }
    }

    /// The properties part of a modify body: `override_props` and `delete_props`. Without
    /// any option there is nothing to send, which is a usage error.
    pub fn props_modify(&self) -> Result<PropsModify, CliError> {
        if self.set.is_empty() && self.unset.is_empty() {
            return Err(CliError::usage(
                "No DRBD option given: name at least one to set (e.g. --protocol C) or to remove \
                 (e.g. --unset-protocol); --help lists the options",
            ));
        }
        Ok(PropsModify {
            override_props: self.set.clone(),
            delete_props: self.unset.clone(),
            ..PropsModify::default()
        })
    }

    /// [`DrbdOptionArgs::props_modify`] as a JSON object, as the tests compare it.
    #[cfg(test)]
    pub fn modify_fields(&self) -> Result<Map<String, Value>, CliError> {
        let m = self.props_modify()?;
        match serde_json::to_value(m).expect("serialises") {
            Value::Object(o) => Ok(o),
            other => unreachable!("a modify body is an object, not {other}"),
        }
    }
}

// Written out rather than derived: a derive would ask the same of the scope marker.
impl<S> fmt::Debug for DrbdOptionArgs<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DrbdOptionArgs")
            .field("set", &self.set)
            .field("unset", &self.unset)
            .finish()
    }
}

impl<S> Clone for DrbdOptionArgs<S> {
    fn clone(&self) -> Self {
        DrbdOptionArgs::new(self.set.clone(), self.unset.clone())
    }
}

impl<S> PartialEq for DrbdOptionArgs<S> {
    fn eq(&self, other: &Self) -> bool {
        self.set == other.set && self.unset == other.unset
    }
}

impl<S> Eq for DrbdOptionArgs<S> {}

impl<S: DrbdScope> FromArgMatches for DrbdOptionArgs<S> {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let mut set = BTreeMap::new();
        let mut unset = Vec::new();
        for f in flags_of::<S>() {
            if let Some(v) = m.get_one::<String>(&f.key) {
                set.insert(f.key.clone(), v.clone());
            }
            if m.get_flag(&f.unset_id) {
                unset.push(f.key.clone());
            }
        }
        Ok(DrbdOptionArgs::new(set, unset))
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

impl<S: DrbdScope> Args for DrbdOptionArgs<S> {
    fn augment_args(cmd: Command) -> Command {
        cmd.args(flags_of::<S>().flat_map(|f| [value_arg(f), unset_arg(f)]))
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser, Debug)]
    struct T {
        #[command(flatten)]
        opts: DrbdOptionArgs<PeerSections>,
    }

    fn parse(args: &[&str]) -> Result<DrbdOptionArgs<PeerSections>, clap::Error> {
        use clap::Parser;
        T::try_parse_from(std::iter::once("t").chain(args.iter().copied())).map(|t| t.opts)
    }

    #[test]
    fn scopes_take_their_sections() {
        let names =
            |v: Vec<&'static Flag>| -> Vec<&'static str> { v.iter().map(|f| f.def.name).collect() };
        let all = names(flags_of::<AllSections>().collect());
        assert!(all.contains(&"quorum") && all.contains(&"fence-peer"));
        let vol = names(flags_of::<VolumeSections>().collect());
        assert!(vol.contains(&"on-io-error") && !vol.contains(&"protocol"));
        let peer = names(flags_of::<PeerSections>().collect());
        assert!(peer.contains(&"protocol") && peer.contains(&"c-max-rate"));
        assert!(!peer.contains(&"quorum") && !peer.contains(&"on-io-error"));
        assert_eq!(all.len(), all.iter().collect::<HashSet<_>>().len());
    }

    #[test]
    fn values_and_unsets() {
        let o = parse(&[
            "--protocol",
            "A",
            "--c-max-rate",
            "100M",
            "--unset-max-buffers",
        ])
        .unwrap();
        assert_eq!(
            o.modify_fields().unwrap(),
            json!({
                "override_props": {"DrbdOptions/Net/protocol": "A", "DrbdOptions/PeerDevice/c-max-rate": "100M"},
                "delete_props": ["DrbdOptions/Net/max-buffers"]
            })
            .as_object()
            .cloned()
            .unwrap()
        );
        // The upstream client's name for the net timeout.
        let o = parse(&["--drbd-timeout", "90", "--unset-drbd-timeout"]);
        assert!(o.is_err(), "setting and removing at once");
        let o = parse(&["--drbd-timeout", "90"]).unwrap();
        assert_eq!(o.set["DrbdOptions/Net/timeout"], "90");
    }

    #[test]
    fn values_are_checked() {
        assert!(parse(&["--allow-two-primaries", "true"]).is_err());
        assert!(parse(&["--protocol", "c"]).is_ok());
        assert!(parse(&["--protocol", "D"]).is_err());
        let e = parse(&["--c-max-rate", "5G"]).unwrap_err().to_string();
        assert!(e.contains("from 0 to 4194304"), "{e}");
        assert!(parse(&["--max-buffers", "8K"]).is_ok());
        assert!(
            parse(&["--quorum", "majority"]).is_err(),
            "not a peer option"
        );
    }

    #[test]
    fn nothing_given_is_a_usage_error() {
        let e = parse(&[]).unwrap().modify_fields().unwrap_err();
        assert_eq!(e.code, crate::error::ARGPARSE_ERROR);
        assert!(e.message.unwrap().contains("No DRBD option given"));
    }
}
