//! Validated object names.
//!
//! LINSTOR compares names case-insensitively but shows them as they were first written, so each
//! name keeps its display form and compares by its upper-case form. A value of one of these
//! types is always valid: validation happens once, when the name enters the system.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a name was refused; the text is meant for a person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct InvalidName {
    pub reason: String,
}

fn invalid(reason: impl Into<String>) -> InvalidName {
    InvalidName {
        reason: reason.into(),
    }
}

/// The generic LINSTOR identifier rule: length bounds, at least one ASCII letter, the first
/// character a letter or one of `first_extra`, every other character alphanumeric or one of
/// `inner_extra`.
fn check_identifier(
    what: &str,
    name: &str,
    min: usize,
    max: usize,
    first_extra: &[u8],
    inner_extra: &[u8],
) -> Result<(), InvalidName> {
    let bytes = name.as_bytes();
    if bytes.len() < min {
        return Err(invalid(format!(
            "{what} '{name}' is too short: {} characters, at least {min} are required",
            bytes.len()
        )));
    }
    if bytes.len() > max {
        return Err(invalid(format!(
            "{what} '{name}' is too long: {} characters, at most {max} are allowed",
            bytes.len()
        )));
    }
    if !bytes.iter().any(|b| b.is_ascii_alphabetic()) {
        return Err(invalid(format!(
            "{what} '{name}' must contain at least one letter (a-z, A-Z)"
        )));
    }
    let first = bytes[0];
    if !(first.is_ascii_alphabetic() || first_extra.contains(&first)) {
        return Err(invalid(format!(
            "{what} '{name}' cannot begin with '{}': the first character must be a letter{}",
            printable(first),
            describe_extra(first_extra)
        )));
    }
    for &b in &bytes[1..] {
        if !(b.is_ascii_alphanumeric() || inner_extra.contains(&b)) {
            return Err(invalid(format!(
                "{what} '{name}' cannot contain '{}': only letters, digits{} are allowed",
                printable(b),
                describe_extra(inner_extra)
            )));
        }
    }
    Ok(())
}

fn printable(b: u8) -> String {
    if b.is_ascii_graphic() {
        (b as char).to_string()
    } else if b == b' ' {
        "space".to_string()
    } else {
        format!("\\x{b:02x}")
    }
}

fn describe_extra(extra: &[u8]) -> String {
    if extra.is_empty() {
        return String::new();
    }
    let list: Vec<String> = extra.iter().map(|b| format!("'{}'", *b as char)).collect();
    format!(" or {}", list.join(", "))
}

/// RFC 1123 host name rule, which LINSTOR applies to node names.
fn check_hostname(name: &str) -> Result<(), InvalidName> {
    if name.starts_with('.') || name.starts_with('-') {
        return Err(invalid(format!(
            "node name '{name}' cannot begin with '{}'",
            &name[..1]
        )));
    }
    if name.ends_with('-') {
        return Err(invalid(format!("node name '{name}' cannot end with '-'")));
    }
    let len = name.len();
    if len < 2 {
        return Err(invalid(format!(
            "node name '{name}' is too short: {len} characters, at least 2 are required"
        )));
    }
    if len > 255 {
        return Err(invalid(format!(
            "node name is too long: {len} characters, at most 255 are allowed"
        )));
    }
    for label in name.split('.') {
        if label.len() > 63 {
            return Err(invalid(format!(
                "node name '{name}': the part '{label}' is longer than 63 characters"
            )));
        }
        if let Some(bad) = label
            .bytes()
            .find(|b| !(b.is_ascii_alphanumeric() || *b == b'-'))
        {
            return Err(invalid(format!(
                "node name '{name}' cannot contain '{}': only letters, digits, '-' and '.' are allowed",
                printable(bad)
            )));
        }
    }
    Ok(())
}

/// Words that DRBD reserves and that therefore cannot name a resource.
const RESERVED_RESOURCE_WORDS: &[&str] = &["all", "proxy"];

macro_rules! name_type {
    ($(#[$doc:meta])* $ty:ident, $check:expr) => {
        $(#[$doc])*
        /// Cheap to clone: the display and case-folded forms are shared.
        #[derive(Clone)]
        pub struct $ty {
            display: std::sync::Arc<str>,
            key: std::sync::Arc<str>,
        }

        impl $ty {
            pub fn new(name: &str) -> Result<Self, InvalidName> {
                let check: fn(&str) -> Result<(), InvalidName> = $check;
                check(name)?;
                let display: std::sync::Arc<str> = std::sync::Arc::from(name);
                let upper = name.to_ascii_uppercase();
                let key = if upper == name {
                    display.clone()
                } else {
                    std::sync::Arc::from(upper)
                };
                Ok(Self { display, key })
            }

            /// The name as the user first wrote it.
            pub fn as_str(&self) -> &str {
                &self.display
            }

            /// The case-folded form used for identity.
            pub fn key(&self) -> &str {
                &self.key
            }
        }

        impl PartialEq for $ty {
            fn eq(&self, other: &Self) -> bool {
                self.key == other.key
            }
        }
        impl Eq for $ty {}
        impl Hash for $ty {
            fn hash<H: Hasher>(&self, state: &mut H) {
                self.key.hash(state)
            }
        }
        impl PartialOrd for $ty {
            fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
                Some(self.cmp(other))
            }
        }
        impl Ord for $ty {
            fn cmp(&self, other: &Self) -> Ordering {
                self.key.cmp(&other.key)
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.display)
            }
        }
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:?}", self.display)
            }
        }
        /// Maps keyed by names can be searched by the case-folded form, without building a
        /// name (equality, order and hash are all those of that form).
        impl std::borrow::Borrow<str> for $ty {
            fn borrow(&self) -> &str {
                &self.key
            }
        }
        impl std::str::FromStr for $ty {
            type Err = InvalidName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.display)
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::new(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

name_type!(
    /// Name of a node; LINSTOR applies the RFC 1123 host name rules.
    NodeName,
    check_hostname
);
name_type!(
    /// Name of a resource definition (and of its resources).
    ResourceName,
    |n| {
        if RESERVED_RESOURCE_WORDS
            .iter()
            .any(|w| w.eq_ignore_ascii_case(n))
        {
            return Err(invalid(format!(
                "resource name '{n}' is a keyword reserved by DRBD; choose another name"
            )));
        }
        check_identifier("resource name", n, 2, 48, b"_", b"_-")
    }
);
name_type!(
    /// Name of a storage pool (definition).
    StorPoolName,
    |n| check_identifier("storage pool name", n, 3, 48, b"_", b"_-")
);
name_type!(
    /// Name of a resource group.
    ResourceGroupName,
    |n| check_identifier("resource group name", n, 2, 48, b"_", b"_-")
);
name_type!(
    /// Name of a snapshot.
    SnapshotName,
    |n| check_identifier("snapshot name", n, 2, 48, b"_", b"_-")
);
name_type!(
    /// Name of a network interface of a node.
    NetIfName,
    |n| check_identifier("network interface name", n, 3, 32, b"_", b"_-")
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_names_follow_linstor_rules() {
        assert!(ResourceName::new("my_ssd_res").is_ok());
        assert!(ResourceName::new("_x1").is_ok());
        assert!(ResourceName::new("LocalData").is_ok());
        assert!(ResourceName::new("a").is_err()); // too short
        assert!(ResourceName::new(&"a".repeat(49)).is_err());
        assert!(ResourceName::new(&"a".repeat(48)).is_ok());
        assert!(ResourceName::new("1abc").is_err()); // first char
        assert!(ResourceName::new("-abc").is_err());
        assert!(ResourceName::new("ab c").is_err());
        assert!(ResourceName::new("ab.c").is_err());
        assert!(ResourceName::new("12_34").is_err()); // would start with a digit
        assert!(ResourceName::new("__").is_err()); // no letter
        let reserved = ResourceName::new("all").unwrap_err();
        assert!(reserved.reason.contains("reserved"));
        assert!(ResourceName::new("Proxy").is_err());
    }

    #[test]
    fn other_names() {
        assert!(StorPoolName::new("ab").is_err()); // pools need 3
        assert!(StorPoolName::new("pool_file").is_ok());
        assert!(StorPoolName::new("DfltDisklessStorPool").is_ok());
        assert!(NodeName::new("node-1.example.com").is_ok());
        assert!(NodeName::new("drbd-arm").is_ok());
        assert!(NodeName::new("-node").is_err());
        assert!(NodeName::new("node-").is_err());
        assert!(NodeName::new("a").is_err());
        assert!(NodeName::new("no_underscore").is_err());
        assert!(NodeName::new(&format!("{}.com", "a".repeat(64))).is_err());
        assert!(NetIfName::new("default").is_ok());
        assert!(NetIfName::new("ab").is_err());
        assert!(ResourceGroupName::new("my_ssd_group").is_ok());
        assert!(SnapshotName::new("snap1").is_ok());
    }

    #[test]
    fn identity_ignores_case_but_display_keeps_it() {
        let a = ResourceName::new("MyRes").unwrap();
        let b = ResourceName::new("myres").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "MyRes");
        let mut set = std::collections::BTreeSet::new();
        set.insert(a);
        assert!(set.contains(&b));
        let json = serde_json::to_string(&b).unwrap();
        assert_eq!(json, "\"myres\"");
        let bad: Result<ResourceName, _> = serde_json::from_str("\"1x\"");
        assert!(bad.is_err());
    }
}
