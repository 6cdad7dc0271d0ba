//! Properties: string maps on every object, the catalogue of keys LINSTOR knows, and the
//! override / delete / delete-namespace modification every `PUT` takes.

mod catalog;
mod drbd;
mod drbd_catalog;
mod drbd_def;

pub use drbd::{check_drbd_value, drbd_option, drbd_options, parse_drbd_number};
pub use drbd_def::{DrbdOptionDef, DrbdScale, DrbdSection, DrbdValue};

use std::collections::{BTreeMap, HashMap};
use std::sync::{LazyLock, Mutex};

use regex::Regex;

pub type Props = BTreeMap<String, String>;

/// Namespace for user data; anything below it is accepted unchecked.
pub const AUX_NAMESPACE: &str = "Aux";
/// DRBD options: `DrbdOptions/<Section>/<name>` for the DRBD sections (checked against the DRBD
/// option catalogue), the proxy sections, and LINSTOR's own keys of the main catalogue.
pub const DRBD_OPTIONS_NAMESPACE: &str = "DrbdOptions";
/// Sections below [`DRBD_OPTIONS_NAMESPACE`] that belong to DRBD Proxy; their options are not
/// catalogued and pass with any non-empty value.
const DRBD_PROXY_SECTIONS: [&str; 2] = ["Proxy", "ProxyCompression"];
/// Keys the system keeps for itself.
pub const INTERNAL_NAMESPACE: &str = "Internal";

/// Bit set of the kinds of objects a property can be set on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Targets(pub u16);

impl Targets {
    pub const CTRL: Targets = Targets(1);
    pub const NODE: Targets = Targets(1 << 1);
    pub const SPD: Targets = Targets(1 << 2);
    pub const SP: Targets = Targets(1 << 3);
    pub const RD: Targets = Targets(1 << 4);
    pub const RSC: Targets = Targets(1 << 5);
    pub const VD: Targets = Targets(1 << 6);
    pub const VLM: Targets = Targets(1 << 7);

    fn contains(self, other: Targets) -> bool {
        self.0 & other.0 == other.0
    }
}

#[derive(Debug, Clone, Copy)]
pub enum PropKind {
    Regex(&'static str),
    Symbol(&'static [&'static str]),
    Range(i64, i64),
    RangeFloat(f64, f64),
    Long,
    BoolTrueFalse,
    String,
}

#[derive(Debug)]
pub struct PropDef {
    pub key: &'static str,
    pub kind: PropKind,
    pub targets: Targets,
}

/// The kind of object whose properties are being changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropsOwner {
    Controller,
    Node,
    StorPoolDefinition,
    StorPool,
    ResourceDefinition,
    ResourceGroup,
    VolumeDefinition,
    VolumeGroup,
    Resource,
    Volume,
    ResourceConnection,
}

impl PropsOwner {
    fn targets(self) -> Targets {
        match self {
            PropsOwner::Controller => Targets::CTRL,
            PropsOwner::Node => Targets::NODE,
            PropsOwner::StorPoolDefinition => Targets::SPD,
            PropsOwner::StorPool => Targets::SP,
            // Resource groups carry what they hand down to resource definitions.
            PropsOwner::ResourceDefinition | PropsOwner::ResourceGroup => Targets::RD,
            PropsOwner::VolumeDefinition | PropsOwner::VolumeGroup => Targets::VD,
            PropsOwner::Resource => Targets::RSC,
            PropsOwner::Volume => Targets::VLM,
            // No catalogued key belongs on a connection: only its DRBD options and `Aux/`.
            PropsOwner::ResourceConnection => Targets(1 << 8),
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            PropsOwner::Controller => "the controller",
            PropsOwner::Node => "a node",
            PropsOwner::StorPoolDefinition => "a storage pool definition",
            PropsOwner::StorPool => "a storage pool",
            PropsOwner::ResourceDefinition => "a resource definition",
            PropsOwner::ResourceGroup => "a resource group",
            PropsOwner::VolumeDefinition => "a volume definition",
            PropsOwner::VolumeGroup => "a volume group",
            PropsOwner::Resource => "a resource",
            PropsOwner::Volume => "a volume",
            PropsOwner::ResourceConnection => "a resource connection",
        }
    }
}

fn describe_targets(t: Targets) -> String {
    let names = [
        (Targets::CTRL, "controller"),
        (Targets::NODE, "node"),
        (Targets::SPD, "storage-pool-definition"),
        (Targets::SP, "storage-pool"),
        (Targets::RD, "resource-definition, resource-group"),
        (Targets::RSC, "resource"),
        (Targets::VD, "volume-definition, volume-group"),
        (Targets::VLM, "volume"),
    ];
    names
        .iter()
        .filter(|(bit, _)| t.contains(*bit))
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A property that cannot be set, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidProp {
    pub message: String,
    pub correction: String,
}

fn lookup(key: &str) -> Option<&'static PropDef> {
    static INDEX: LazyLock<HashMap<&'static str, &'static PropDef>> =
        LazyLock::new(|| catalog::CATALOG.iter().map(|d| (d.key, d)).collect());
    INDEX.get(key).copied()
}

fn regex_matches(pattern: &'static str, value: &str) -> bool {
    static CACHE: LazyLock<Mutex<HashMap<&'static str, Regex>>> =
        LazyLock::new(|| Mutex::new(HashMap::new()));
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let re = cache.entry(pattern).or_insert_with(|| {
        Regex::new(&format!("^(?:{pattern})$")).unwrap_or_else(|_| Regex::new("^.*$").unwrap())
    });
    re.is_match(value)
}

/// Checks that a key is well formed: `/`-separated non-empty segments of printable characters.
pub fn check_key(key: &str) -> Result<(), InvalidProp> {
    let bad = key.is_empty()
        || key.starts_with('/')
        || key.ends_with('/')
        || key.contains("//")
        || key.chars().any(|c| c.is_control() || c.is_whitespace());
    if bad {
        return Err(InvalidProp {
            message: format!("'{key}' is not a valid property key"),
            correction: "A key is a path of non-empty segments separated by '/', without spaces, e.g. 'Aux/site'".into(),
        });
    }
    Ok(())
}

/// Validates one property a user wants to set on an object of kind `owner`.
pub fn validate(owner: PropsOwner, key: &str, value: &str) -> Result<(), InvalidProp> {
    check_key(key)?;
    let namespace = key.split('/').next().unwrap_or("");
    if namespace == AUX_NAMESPACE {
        if key.len() <= AUX_NAMESPACE.len() + 1 {
            return Err(InvalidProp {
                message: format!("'{key}' names no property"),
                correction: "Give a name below the namespace, e.g. 'Aux/site'".into(),
            });
        }
        return Ok(());
    }
    if namespace == INTERNAL_NAMESPACE {
        return Err(InvalidProp {
            message: format!("'{key}' is an internal property and cannot be set by users"),
            correction: "Set your own data under the 'Aux/' namespace".into(),
        });
    }
    if namespace == DRBD_OPTIONS_NAMESPACE && lookup(key).is_none() {
        return validate_drbd_key(key, value);
    }
    let Some(def) = lookup(key) else {
        return Err(InvalidProp {
            message: format!("'{key}' is not a known property"),
            correction: format!(
                "Check the spelling (keys are case-sensitive) or keep your own data under 'Aux/', e.g. 'Aux/{key}'"
            ),
        });
    };
    if !def.targets.contains(owner.targets()) {
        return Err(InvalidProp {
            message: format!("'{key}' cannot be set on {}", owner.describe()),
            correction: format!("'{key}' can be set on: {}", describe_targets(def.targets)),
        });
    }
    check_value(def, value)
}

/// A `DrbdOptions/...` key the main catalogue does not know.
fn validate_drbd_key(key: &str, value: &str) -> Result<(), InvalidProp> {
    let Some(rest) = key
        .strip_prefix(DRBD_OPTIONS_NAMESPACE)
        .and_then(|r| r.strip_prefix('/'))
    else {
        return Err(InvalidProp {
            message: format!("'{key}' names no property"),
            correction: "Give a DRBD option below the namespace, e.g. 'DrbdOptions/Net/protocol'"
                .into(),
        });
    };
    let (section, name) = rest.split_once('/').unwrap_or((rest, ""));
    if let Some(section) = DrbdSection::from_name(section) {
        return drbd::validate_drbd_option(section, name, value);
    }
    // With one segment it is one of LINSTOR's own keys directly below the namespace that the
    // main catalogue does not list (e.g. auto-block-size), left to the layers that read it.
    if rest.contains('/') && !DRBD_PROXY_SECTIONS.contains(&section) {
        return Err(InvalidProp {
            message: format!(
                "'{key}' is not a known DRBD option: '{section}' is not a section of DRBD options"
            ),
            correction: drbd::suggest_section(section, name),
        });
    }
    if value.is_empty() {
        return Err(InvalidProp {
            message: format!("'{key}' needs a value"),
            correction: "Delete the option instead of setting it to an empty value".into(),
        });
    }
    Ok(())
}

fn check_value(def: &PropDef, value: &str) -> Result<(), InvalidProp> {
    let key = def.key;
    let fail = |expected: String| InvalidProp {
        message: format!("'{value}' is not a valid value for '{key}'"),
        correction: format!("'{key}' takes {expected}"),
    };
    match def.kind {
        PropKind::Regex(re) => {
            if !regex_matches(re, value) {
                return Err(fail(format!("a value matching the pattern {re}")));
            }
        }
        PropKind::Symbol(values) => {
            if !values.iter().any(|v| v.eq_ignore_ascii_case(value)) {
                return Err(fail(format!("one of: {}", values.join(", "))));
            }
        }
        PropKind::Range(min, max) => match value.trim().parse::<i64>() {
            Ok(v) if v >= min && v <= max => {}
            _ => return Err(fail(format!("a whole number from {min} to {max}"))),
        },
        PropKind::RangeFloat(min, max) => match value.trim().parse::<f64>() {
            Ok(v) if v.is_finite() && v >= min && v <= max => {}
            _ => return Err(fail(format!("a number from {min} to {max}"))),
        },
        PropKind::Long => {
            if value.trim().parse::<i64>().is_err() {
                return Err(fail("a whole number".into()));
            }
        }
        PropKind::BoolTrueFalse => {
            if !(value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false")) {
                return Err(fail("true or false".into()));
            }
        }
        PropKind::String => {}
    }
    Ok(())
}

/// A requested change of an object's properties, as every modify call of the API carries it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PropsChange {
    pub set: Props,
    pub delete: Vec<String>,
    pub delete_namespaces: Vec<String>,
}

impl PropsChange {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.delete.is_empty() && self.delete_namespaces.is_empty()
    }

    /// Validates the change for `owner` and applies it to a copy of `props`. Nothing is
    /// applied when any part is invalid.
    pub fn apply(&self, owner: PropsOwner, props: &Props) -> Result<Props, InvalidProp> {
        for (k, v) in &self.set {
            validate(owner, k, v)?;
        }
        for k in self.delete.iter().chain(&self.delete_namespaces) {
            check_key(k)?;
        }
        let mut out = props.clone();
        for ns in &self.delete_namespaces {
            let prefix = format!("{ns}/");
            out.retain(|k, _| !k.starts_with(&prefix));
        }
        for k in &self.delete {
            out.remove(k);
        }
        for (k, v) in &self.set {
            out.insert(k.clone(), v.clone());
        }
        Ok(out)
    }
}

/// Matches the `props` filter of list calls: `key` (present) or `key=value`.
pub fn matches_filter(props: &Props, filters: &[String]) -> bool {
    filters.iter().all(|f| match f.split_once('=') {
        Some((k, v)) => props.get(k).is_some_and(|have| have == v),
        None => props.contains_key(f.as_str()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aux_is_free_form() {
        assert!(validate(PropsOwner::Node, "Aux/site", "a").is_ok());
        assert!(validate(PropsOwner::ResourceDefinition, "Aux/pm/vmid", "100").is_ok());
        assert!(validate(PropsOwner::Node, "Aux/", "a").is_err());
    }

    #[test]
    fn catalogue_values_are_checked() {
        assert!(validate(PropsOwner::Resource, "StorPoolName", "pool1").is_ok());
        let err = validate(PropsOwner::Resource, "StorPoolName", "p").unwrap_err();
        assert!(err.message.contains("not a valid value"), "{err:?}");
        assert!(validate(PropsOwner::Controller, "PeerSlotsNewResource", "7").is_ok());
        assert!(validate(PropsOwner::Controller, "PeerSlotsNewResource", "40").is_err());
        assert!(validate(PropsOwner::VolumeDefinition, "FileSystem/Type", "xfs").is_ok());
        assert!(validate(PropsOwner::VolumeDefinition, "FileSystem/Type", "ntfs").is_err());
        assert!(validate(PropsOwner::StorPool, "StorDriver/FileDir", "/var/lib/x").is_ok());
        assert!(validate(
            PropsOwner::StorPoolDefinition,
            "MaxOversubscriptionRatio",
            "2.5"
        )
        .is_ok());
        assert!(validate(
            PropsOwner::StorPoolDefinition,
            "MaxOversubscriptionRatio",
            "x"
        )
        .is_err());
    }

    #[test]
    fn unknown_and_misplaced_keys_are_refused() {
        let err = validate(PropsOwner::Node, "NoSuchKey", "1").unwrap_err();
        assert!(err.correction.contains("Aux/NoSuchKey"));
        let err = validate(PropsOwner::Node, "OverrideVlmId", "x").unwrap_err();
        assert!(err.message.contains("cannot be set on a node"), "{err:?}");
        assert!(validate(PropsOwner::Node, "Internal/x", "1").is_err());
        assert!(validate(PropsOwner::Node, "bad key", "1").is_err());
        assert!(validate(PropsOwner::Node, "a//b", "1").is_err());
    }

    #[test]
    fn drbd_options_of_the_catalogue_pass() {
        let rd = PropsOwner::ResourceDefinition;
        for (k, v) in [
            ("DrbdOptions/Net/allow-two-primaries", "yes"),
            ("DrbdOptions/Net/protocol", "C"),
            // drbdsetup reads the protocol in either case.
            ("DrbdOptions/Net/protocol", "c"),
            ("DrbdOptions/Net/max-buffers", "8K"),
            ("DrbdOptions/Net/transport", "tcp"),
            ("DrbdOptions/Net/verify-alg", "crc32c"),
            ("DrbdOptions/Resource/quorum", "majority"),
            ("DrbdOptions/Resource/quorum", "2"),
            ("DrbdOptions/Resource/on-no-quorum", "suspend-io"),
            ("DrbdOptions/Resource/auto-promote", "no"),
            ("DrbdOptions/Disk/on-io-error", "detach"),
            ("DrbdOptions/Disk/read-balancing", "1M-striping"),
            ("DrbdOptions/Disk/resync-after", "other/0"),
            ("DrbdOptions/PeerDevice/c-max-rate", "4194304"),
            ("DrbdOptions/PeerDevice/c-fill-target", "1M"),
            (
                "DrbdOptions/Handlers/fence-peer",
                "/usr/lib/drbd/crm-fence-peer.9.sh",
            ),
            (
                "DrbdOptions/Handlers/disconnected",
                "/usr/local/bin/notify --peer lost",
            ),
        ] {
            let r = validate(rd, k, v);
            assert!(r.is_ok(), "{k}={v}: {r:?}");
        }
        assert!(validate(PropsOwner::Controller, "DrbdOptions/Net/protocol", "A").is_ok());
    }

    #[test]
    fn drbd_numbers_take_unit_suffixes_like_drbdsetup() {
        let rd = PropsOwner::ResourceDefinition;
        // c-max-rate counts KiB/s: 100M is 102400, 4G the most, 5G too much.
        assert!(validate(rd, "DrbdOptions/PeerDevice/c-max-rate", "100M").is_ok());
        assert!(validate(rd, "DrbdOptions/PeerDevice/c-max-rate", "4G").is_ok());
        let err = validate(rd, "DrbdOptions/PeerDevice/c-max-rate", "5G").unwrap_err();
        assert!(err.message.contains("5242880 KiB/s"), "{err:?}");
        assert!(
            err.correction
                .contains("from 0 to 4194304, in KiB/s; a suffix K, M or G"),
            "{err:?}"
        );
        // peer-ack-window counts sectors: 1M is 2048 of them, the least allowed.
        assert!(validate(rd, "DrbdOptions/Resource/peer-ack-window", "1M").is_ok());
        assert!(validate(rd, "DrbdOptions/Resource/peer-ack-window", "1024").is_err());
        for bad in ["100MB", "100T", "1.5M", "-1", "ten", ""] {
            assert!(
                validate(rd, "DrbdOptions/PeerDevice/c-max-rate", bad).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn drbd_option_values_are_checked_by_type() {
        let rd = PropsOwner::ResourceDefinition;
        // Booleans are yes or no, as drbd.conf spells them.
        for bad in ["true", "false", "YES", "1"] {
            let err = validate(rd, "DrbdOptions/Net/allow-two-primaries", bad).unwrap_err();
            assert_eq!(
                err.correction,
                "'DrbdOptions/Net/allow-two-primaries' takes yes or no"
            );
        }
        // Ranges.
        assert!(validate(rd, "DrbdOptions/Net/max-buffers", "131072").is_ok());
        assert!(validate(rd, "DrbdOptions/Net/max-buffers", "131073").is_err());
        let err = validate(rd, "DrbdOptions/Net/max-buffers", "1").unwrap_err();
        assert!(err.correction.contains("from 32 to 131072"), "{err:?}");
        // Enumerations are case-sensitive, except the protocol.
        let err = validate(rd, "DrbdOptions/Disk/on-io-error", "Detach").unwrap_err();
        assert_eq!(
            err.correction,
            "'DrbdOptions/Disk/on-io-error' takes one of pass_on, call-local-io-error, detach"
        );
        assert!(validate(rd, "DrbdOptions/Net/protocol", "D").is_err());
        // A number or a symbol.
        for bad in ["0", "33", "Majority", "most"] {
            let err = validate(rd, "DrbdOptions/Resource/quorum", bad).unwrap_err();
            assert!(
                err.correction
                    .contains("one of off, majority, all, or a whole number from 1 to 32"),
                "{err:?}"
            );
        }
        // Texts must be there and fit in a drbd.conf string.
        assert!(validate(rd, "DrbdOptions/Handlers/split-brain", "")
            .unwrap_err()
            .message
            .contains("needs a value"));
        let err = validate(rd, "DrbdOptions/Handlers/pri-lost", "halt; reboot").unwrap_err();
        assert!(err.message.contains("semicolon"), "{err:?}");
        assert!(validate(rd, "DrbdOptions/Net/shared-secret", "a\"b").is_err());
    }

    #[test]
    fn unknown_drbd_options_are_refused_with_a_suggestion() {
        let rd = PropsOwner::ResourceDefinition;
        let err = validate(rd, "DrbdOptions/Net/protocoll", "C").unwrap_err();
        assert_eq!(
            err.message,
            "'DrbdOptions/Net/protocoll' is not a known DRBD option"
        );
        assert!(
            err.correction
                .starts_with("Did you mean 'DrbdOptions/Net/protocol'?"),
            "{err:?}"
        );
        let err = validate(rd, "DrbdOptions/PeerDevice/c-max-rte", "1M").unwrap_err();
        assert!(
            err.correction
                .contains("'DrbdOptions/PeerDevice/c-max-rate'"),
            "{err:?}"
        );
        // drbd.conf writes peer-device options in its disk section; the property does not.
        let err = validate(rd, "DrbdOptions/Disk/c-max-rate", "100M").unwrap_err();
        assert_eq!(
            err.correction,
            "'c-max-rate' is not a Disk option; use 'DrbdOptions/PeerDevice/c-max-rate'"
        );
        let err = validate(rd, "DrbdOptions/Resource/zzzzzz", "1").unwrap_err();
        assert!(
            err.correction
                .contains("`linstor controller drbd-options --help`"),
            "{err:?}"
        );
        // Sections are spelled as LINSTOR spells them.
        let err = validate(rd, "DrbdOptions/net/protocol", "C").unwrap_err();
        assert!(
            err.correction
                .starts_with("Did you mean 'DrbdOptions/Net/protocol'?"),
            "{err:?}"
        );
        assert!(validate(rd, "DrbdOptions/Options/quorum", "off").is_err());
        assert!(validate(rd, "DrbdOptions/Net", "C").is_err());
        assert!(validate(rd, "DrbdOptions/Net/protocol/x", "C").is_err());
        // Dropped from the catalogue: not settings a property could hold.
        assert!(validate(rd, "DrbdOptions/Net/_name", "x").is_err());
        assert!(validate(rd, "DrbdOptions/Disk/set-defaults", "yes").is_err());
    }

    #[test]
    fn other_drbd_keys_behave_as_before() {
        let rd = PropsOwner::ResourceDefinition;
        // A DRBD option LINSTOR itself catalogues is checked by the main catalogue.
        assert!(validate(rd, "DrbdOptions/auto-quorum", "nope").is_err());
        assert!(validate(rd, "DrbdOptions/auto-quorum", "io-error").is_ok());
        // DRBD Proxy options and LINSTOR keys the catalogue does not list pass with a value.
        assert!(validate(rd, "DrbdOptions/Proxy/memlimit", "100M").is_ok());
        assert!(validate(rd, "DrbdOptions/ProxyCompression/level", "9").is_ok());
        assert!(validate(rd, "DrbdOptions/Proxy/memlimit", "").is_err());
        assert!(validate(rd, "DrbdOptions/auto-block-size", "4096").is_ok());
        assert!(validate(rd, "DrbdOptions", "x").is_err());
    }

    #[test]
    fn change_applies_all_or_nothing() {
        let mut props = Props::new();
        props.insert("Aux/a".into(), "1".into());
        props.insert("Aux/ns/x".into(), "1".into());
        props.insert("Aux/ns/y".into(), "1".into());
        let change = PropsChange {
            set: [("Aux/b".to_string(), "2".to_string())].into(),
            delete: vec!["Aux/a".into()],
            delete_namespaces: vec!["Aux/ns".into()],
        };
        let out = change.apply(PropsOwner::Node, &props).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out["Aux/b"], "2");

        let bad = PropsChange {
            set: [
                ("Aux/c".to_string(), "3".to_string()),
                ("Bogus".to_string(), "3".to_string()),
            ]
            .into(),
            ..Default::default()
        };
        assert!(bad.apply(PropsOwner::Node, &props).is_err());
    }

    #[test]
    fn filters() {
        let props: Props = [("Aux/site".to_string(), "a".to_string())].into();
        assert!(matches_filter(&props, &["Aux/site=a".into()]));
        assert!(matches_filter(&props, &["Aux/site".into()]));
        assert!(!matches_filter(&props, &["Aux/site=b".into()]));
        assert!(matches_filter(&props, &[]));
    }
}
