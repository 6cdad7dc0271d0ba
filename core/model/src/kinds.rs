//! Small enumerations shared by every layer: node types, storage providers, device layers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! upper_enum {
    ($(#[$doc:meta])* $ty:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $ty { $($variant),+ }

        impl $ty {
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $text),+ }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = String;
            /// Case-insensitive, and `-` is read as `_` (`lvm-thin`, `LVM_THIN`, `lvmthin` all
            /// name the same kind where the spelling allows).
            fn from_str(s: &str) -> Result<Self, String> {
                let norm: String = s.trim().chars().map(|c| if c == '-' { '_' } else { c.to_ascii_uppercase() }).collect();
                $(if norm == $text || norm == $text.replace('_', "") { return Ok($ty::$variant); })+
                let known: Vec<&str> = vec![$($text),+];
                Err(format!("'{}' is not one of: {}", s, known.join(", ")))
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

upper_enum!(
    /// What a node is for.
    NodeType {
        Controller => "CONTROLLER",
        Satellite => "SATELLITE",
        Combined => "COMBINED",
        Auxiliary => "AUXILIARY",
    }
);

impl NodeType {
    /// Whether storage and resources can live on a node of this type.
    pub fn hosts_storage(self) -> bool {
        matches!(self, NodeType::Satellite | NodeType::Combined)
    }
}

upper_enum!(
    /// Storage back ends a pool can use.
    ProviderKind {
        Diskless => "DISKLESS",
        Lvm => "LVM",
        LvmThin => "LVM_THIN",
        Zfs => "ZFS",
        ZfsThin => "ZFS_THIN",
        File => "FILE",
        FileThin => "FILE_THIN",
        Spdk => "SPDK",
        EbsTarget => "EBS_TARGET",
        EbsInit => "EBS_INIT",
    }
);

impl ProviderKind {
    /// A volume this provider creates reads zeroes everywhere until written: thin volumes,
    /// sparse or allocated files, ZFS volumes. A thick logical volume holds whatever the disk
    /// held before.
    pub fn new_volumes_read_zeroes(self) -> bool {
        !matches!(self, ProviderKind::Lvm)
    }

    /// Thin pools hand out space on write, so they may promise more than they hold.
    pub fn is_thin(self) -> bool {
        matches!(
            self,
            ProviderKind::LvmThin | ProviderKind::ZfsThin | ProviderKind::FileThin
        )
    }

    /// Kinds this implementation can drive at all.
    pub fn is_implemented(self) -> bool {
        !matches!(
            self,
            ProviderKind::Spdk | ProviderKind::EbsTarget | ProviderKind::EbsInit
        )
    }

    /// The storage-driver property that names the backing pool for this kind, if any.
    pub fn pool_name_key(self) -> Option<&'static str> {
        match self {
            ProviderKind::Lvm | ProviderKind::LvmThin => Some("StorDriver/LvmVg"),
            ProviderKind::Zfs => Some("StorDriver/ZPool"),
            ProviderKind::ZfsThin => Some("StorDriver/ZPoolThin"),
            ProviderKind::File | ProviderKind::FileThin => Some("StorDriver/FileDir"),
            _ => None,
        }
    }
}

upper_enum!(
    /// Device layers a resource can be stacked from.
    LayerKind {
        Drbd => "DRBD",
        Luks => "LUKS",
        Storage => "STORAGE",
        Nvme => "NVME",
        Writecache => "WRITECACHE",
        Cache => "CACHE",
        Bcache => "BCACHE",
    }
);

upper_enum!(
    /// How the controller sees a satellite.
    ConnectionStatus {
        Offline => "OFFLINE",
        Connected => "CONNECTED",
        Online => "ONLINE",
        VersionMismatch => "VERSION_MISMATCH",
        FullSyncFailed => "FULL_SYNC_FAILED",
        AuthenticationError => "AUTHENTICATION_ERROR",
        Unknown => "UNKNOWN",
        HostnameMismatch => "HOSTNAME_MISMATCH",
        OtherController => "OTHER_CONTROLLER",
        Authenticated => "AUTHENTICATED",
        NoStltConn => "NO_STLT_CONN",
    }
);

upper_enum!(
    /// Transport security of the controller-satellite link.
    EncryptionType {
        Plain => "PLAIN",
        Ssl => "SSL",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_spellings() {
        assert_eq!(
            "SATELLITE".parse::<NodeType>().unwrap(),
            NodeType::Satellite
        );
        assert_eq!(
            "Satellite".parse::<NodeType>().unwrap(),
            NodeType::Satellite
        );
        assert_eq!("combined".parse::<NodeType>().unwrap(), NodeType::Combined);
        assert_eq!(
            "lvm-thin".parse::<ProviderKind>().unwrap(),
            ProviderKind::LvmThin
        );
        assert_eq!(
            "filethin".parse::<ProviderKind>().unwrap(),
            ProviderKind::FileThin
        );
        assert_eq!(
            "FILE_THIN".parse::<ProviderKind>().unwrap(),
            ProviderKind::FileThin
        );
        assert_eq!(
            "Plain".parse::<EncryptionType>().unwrap(),
            EncryptionType::Plain
        );
        let err = "floppy".parse::<ProviderKind>().unwrap_err();
        assert!(err.contains("LVM_THIN"), "{err}");
    }

    #[test]
    fn serde_round_trip() {
        let json = serde_json::to_string(&ProviderKind::FileThin).unwrap();
        assert_eq!(json, "\"FILE_THIN\"");
        let back: ProviderKind = serde_json::from_str(&json).unwrap();
        assert_eq!(back, ProviderKind::FileThin);
    }
}
