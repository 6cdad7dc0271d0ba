//! Flags of the cluster's objects (`DELETE`, `DISKLESS`, ...), named as LINSTOR shows them.
//!
//! A [`Flags`] set is stored and shown as a list of the flag names, sorted by name: the same
//! list a set of the names as strings gives. So [`Flag`] orders, compares and hashes by its
//! name, not by the order of its variants, and one not known here is kept as [`Flag::Other`]
//! with its name.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::fmt;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};

macro_rules! flags {
    ($($(#[$meta:meta])* $variant:ident = $text:literal,)*) => {
        /// One flag of an object.
        #[derive(Debug, Clone)]
        pub enum Flag {
            $($(#[$meta])* $variant,)*
            /// A flag not known here, by its name.
            Other(String),
        }

        impl Flag {
            /// The flag named `s` (names are upper case; no other spelling is the same flag).
            pub fn parse(s: &str) -> Flag {
                match s {
                    $($text => Flag::$variant,)*
                    other => Flag::Other(other.to_string()),
                }
            }

            /// The flag's name.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Flag::$variant => $text,)*
                    Flag::Other(s) => s,
                }
            }
        }
    };
}

flags! {
    /// Being deleted.
    Delete = "DELETE",
    /// A resource without a disk.
    Diskless = "DISKLESS",
    /// A resource that is a DRBD client (no local disk).
    DrbdDiskless = "DRBD_DISKLESS",
    /// A diskless resource placed by the controller to keep DRBD's quorum.
    TieBreaker = "TIE_BREAKER",
    /// A deactivated resource.
    Inactive = "INACTIVE",
    /// An evicted node: nothing new is placed on it.
    Evicted = "EVICTED",
    /// The size of a volume is gross: it includes what the layers above storage take.
    GrossSize = "GROSS_SIZE",
}

impl PartialEq for Flag {
    fn eq(&self, other: &Flag) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Flag {}

impl PartialOrd for Flag {
    fn partial_cmp(&self, other: &Flag) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// By name, as the names sort as strings.
impl Ord for Flag {
    fn cmp(&self, other: &Flag) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for Flag {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for Flag {
    fn from(s: &str) -> Flag {
        Flag::parse(s)
    }
}

impl Serialize for Flag {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Flag, D::Error> {
        let s = String::deserialize(d)?;
        Ok(Flag::parse(&s))
    }
}

/// The flags of an object; serialised as the list of their names, sorted by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Flags(BTreeSet<Flag>);

impl Flags {
    pub fn new() -> Flags {
        Flags::default()
    }

    pub fn has(&self, flag: Flag) -> bool {
        self.0.contains(&flag)
    }

    /// Sets `flag`; whether it was not set before.
    pub fn insert(&mut self, flag: Flag) -> bool {
        self.0.insert(flag)
    }

    /// Clears `flag`; whether it was set.
    pub fn remove(&mut self, flag: Flag) -> bool {
        self.0.remove(&flag)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The flags, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &Flag> {
        self.0.iter()
    }

    /// The names of the flags, sorted: the list the set is shown and stored as.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(Flag::as_str)
    }
}

impl FromIterator<Flag> for Flags {
    fn from_iter<I: IntoIterator<Item = Flag>>(iter: I) -> Flags {
        Flags(iter.into_iter().collect())
    }
}

impl<const N: usize> From<[Flag; N]> for Flags {
    fn from(flags: [Flag; N]) -> Flags {
        flags.into_iter().collect()
    }
}

impl<'a> IntoIterator for &'a Flags {
    type Item = &'a Flag;
    type IntoIter = std::collections::btree_set::Iter<'a, Flag>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: [&str; 11] = [
        "TIE_BREAKER",
        "DELETE",
        "RESIZE",
        "DRBD_DISKLESS",
        "DISKLESS",
        "GROSS_SIZE",
        "EVICTED",
        "INACTIVE",
        "",
        "delete",
        "A_NEW_ONE",
    ];

    /// The same JSON as a set of the names as strings, in both directions.
    #[test]
    fn stored_as_a_set_of_strings_is() {
        let strings: BTreeSet<String> = NAMES.iter().map(|s| s.to_string()).collect();
        let flags: Flags = NAMES.iter().copied().map(Flag::parse).collect();
        let want = serde_json::to_string(&strings).unwrap();
        assert_eq!(serde_json::to_string(&flags).unwrap(), want);
        let back: Flags = serde_json::from_str(&want).unwrap();
        assert_eq!(back, flags);
        assert_eq!(serde_json::to_string(&back).unwrap(), want);
        assert!(flags.names().eq(strings.iter().map(String::as_str)));
        assert_eq!(serde_json::to_string(&Flags::new()).unwrap(), "[]");
        // Duplicates collapse as in a set of strings.
        let dup: Flags = serde_json::from_str(r#"["DELETE","DELETE","RESIZE"]"#).unwrap();
        assert_eq!(dup.len(), 2);
    }

    #[test]
    fn known_names_are_their_variants() {
        for name in NAMES {
            assert_eq!(Flag::parse(name).as_str(), name);
        }
        assert!(matches!(Flag::parse("DELETE"), Flag::Delete));
        assert!(matches!(Flag::parse("delete"), Flag::Other(_)));
        assert_eq!(Flag::Other("DELETE".into()), Flag::Delete);
        let mut f = Flags::from([Flag::DrbdDiskless, Flag::TieBreaker]);
        assert!(f.has(Flag::TieBreaker));
        assert!(!f.has(Flag::Diskless));
        assert!(f.remove(Flag::TieBreaker));
        assert!(!f.remove(Flag::TieBreaker));
        assert!(f.insert(Flag::Delete));
        assert!(!f.insert(Flag::Other("DELETE".into())));
        assert_eq!(f.names().collect::<Vec<_>>(), ["DELETE", "DRBD_DISKLESS"]);
    }
}
