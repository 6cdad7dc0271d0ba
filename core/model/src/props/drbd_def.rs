//! The shapes of the DRBD option catalogue: sections, value types and option definitions.
//!
//! The generated catalogue (`drbd_catalog.rs`) is written in these types, and the checks of
//! `drbd.rs` read the catalogue: keeping the types here lets both depend on this module
//! without depending on each other.

use std::fmt;

/// A section of DRBD options, as LINSTOR names it in `DrbdOptions/<Section>/<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DrbdSection {
    /// drbdsetup's resource-options (`options { }` in drbd.conf).
    Resource,
    /// drbdsetup's disk-options (`disk { }`).
    Disk,
    /// drbdsetup's net-options and new-peer (`net { }`).
    Net,
    /// drbdsetup's peer-device-options (written in `disk { }`).
    PeerDevice,
    /// Commands drbdadm runs on events (`handlers { }`).
    Handlers,
}

impl DrbdSection {
    pub const ALL: [DrbdSection; 5] = [
        DrbdSection::Resource,
        DrbdSection::Disk,
        DrbdSection::Net,
        DrbdSection::PeerDevice,
        DrbdSection::Handlers,
    ];

    /// The name in property keys.
    pub fn name(self) -> &'static str {
        match self {
            DrbdSection::Resource => "Resource",
            DrbdSection::Disk => "Disk",
            DrbdSection::Net => "Net",
            DrbdSection::PeerDevice => "PeerDevice",
            DrbdSection::Handlers => "Handlers",
        }
    }

    /// The section of a property key segment (case-sensitive, as keys are).
    pub fn from_name(name: &str) -> Option<DrbdSection> {
        DrbdSection::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl fmt::Display for DrbdSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The unit a plain number of a numeric option is counted in (drbdsetup's `unit_prefix`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrbdScale {
    /// The option's own unit (`1`).
    One,
    /// Kibi-units (`k`): a plain number counts KiB, KiB/s.
    Kibi,
    /// 512-byte sectors (`s`).
    Sector,
}

impl DrbdScale {
    /// The power of two a plain number is shifted by to count bytes (or base units).
    pub(super) fn shift(self) -> i32 {
        match self {
            DrbdScale::One => 0,
            DrbdScale::Kibi => 10,
            DrbdScale::Sector => 9,
        }
    }
}

/// What values an option takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrbdValue {
    /// `yes` or `no`.
    Boolean { default: bool },
    /// A whole number from `min` to `max`, counted in `scale`; a suffix K, M, G or s scales it.
    Numeric {
        min: u64,
        max: u64,
        default: u64,
        scale: DrbdScale,
        unit: Option<&'static str>,
    },
    /// One of `symbols`, or a whole number from `min` to `max`.
    NumericOrSymbol {
        min: u64,
        max: u64,
        default: &'static str,
        symbols: &'static [&'static str],
    },
    /// One of `values` (drbdsetup calls them handlers).
    Enum {
        values: &'static [&'static str],
        ignore_case: bool,
    },
    /// Any text drbd.conf can carry in double quotes.
    String,
}

/// One DRBD option a property can set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrbdOptionDef {
    pub section: DrbdSection,
    /// The option's name in drbd.conf and on drbdsetup's command line.
    pub name: &'static str,
    pub value: DrbdValue,
}

impl DrbdOptionDef {
    /// The property key: `DrbdOptions/<Section>/<name>`.
    pub fn key(&self) -> String {
        format!(
            "{}/{}/{}",
            super::DRBD_OPTIONS_NAMESPACE,
            self.section,
            self.name
        )
    }

    /// What values the option takes, in words (for corrections and help texts).
    pub fn describe_values(&self) -> String {
        match self.value {
            DrbdValue::Boolean { .. } => "yes or no".into(),
            DrbdValue::Numeric {
                min,
                max,
                scale,
                unit,
                ..
            } => {
                let mut text = format!("a whole number from {min} to {max}");
                let counted = unit_text(scale, unit);
                if !counted.is_empty() {
                    text.push_str(&format!(", in {counted}"));
                }
                // drbdsetup takes the suffixes for every number, but they only make sense
                // for amounts of data.
                if unit.is_some_and(|u| u.starts_with("bytes")) {
                    text.push_str(
                        "; a suffix K, M or G (powers of 1024) or s (512-byte sectors) gives it in another unit, e.g. 100M",
                    );
                }
                text
            }
            DrbdValue::NumericOrSymbol {
                min, max, symbols, ..
            } => format!(
                "one of {}, or a whole number from {min} to {max}",
                symbols.join(", ")
            ),
            DrbdValue::Enum { values, .. } => format!("one of {}", values.join(", ")),
            DrbdValue::String => "a non-empty text without double quotes, backslashes, braces, semicolons or control characters".into(),
        }
    }

    /// The default drbd uses when the option is not set, if it has a fixed one.
    pub fn default_text(&self) -> Option<String> {
        match self.value {
            DrbdValue::Boolean { default } => Some(if default { "yes" } else { "no" }.into()),
            DrbdValue::Numeric { default, .. } => Some(default.to_string()),
            DrbdValue::NumericOrSymbol { default, .. } => Some(default.into()),
            DrbdValue::Enum { .. } | DrbdValue::String => None,
        }
    }
}

/// The unit a plain number counts, in words: "KiB/s", "sectors of 512 bytes", "1/10 seconds".
pub(super) fn unit_text(scale: DrbdScale, unit: Option<&str>) -> String {
    match (scale, unit) {
        (DrbdScale::One, u) => u.unwrap_or_default().into(),
        (DrbdScale::Kibi, Some("bytes/second")) => "KiB/s".into(),
        (DrbdScale::Kibi, _) => "KiB".into(),
        (DrbdScale::Sector, _) => "sectors of 512 bytes".into(),
    }
}
