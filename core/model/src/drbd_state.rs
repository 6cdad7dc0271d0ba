//! DRBD's state names: the role of a resource, the disk state of a device, the state of a
//! connection and the replication state of a peer device, as `drbdsetup events2` and
//! `drbdsetup status` name them.
//!
//! Each is an enum of the names DRBD 9 (and 8.4) use, with `Other` for a name not known here
//! (newer DRBD versions add some). A value is written and read as its DRBD name: `parse` then
//! `as_str` gives back the same text for every input, so whatever holds these states
//! serialises exactly the text it would hold as a string.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! state_names {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant,)*
            /// A name not known here, kept as DRBD wrote it.
            Other(String),
        }

        impl $name {
            /// The state DRBD names `s`; `Other` for a name not known here.
            pub fn parse(s: &str) -> $name {
                match s {
                    $($text => $name::$variant,)*
                    other => $name::Other(other.to_string()),
                }
            }

            /// The name DRBD gives the state.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)*
                    $name::Other(s) => s,
                }
            }
        }

        /// No name: the empty text, which is what a state read from nowhere holds.
        impl Default for $name {
            fn default() -> $name {
                $name::Other(String::new())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<$name, D::Error> {
                let s = String::deserialize(d)?;
                Ok($name::parse(&s))
            }
        }
    };
}

state_names! {
    /// Role of a resource (`role:`), local or of a peer.
    Role {
        Primary = "Primary",
        Secondary = "Secondary",
        Unknown = "Unknown",
    }
}

state_names! {
    /// Disk state of a device (`disk:`) or of a peer's (`peer-disk:`).
    DiskState {
        Diskless = "Diskless",
        Attaching = "Attaching",
        Detaching = "Detaching",
        Failed = "Failed",
        Negotiating = "Negotiating",
        Inconsistent = "Inconsistent",
        Outdated = "Outdated",
        DUnknown = "DUnknown",
        Consistent = "Consistent",
        UpToDate = "UpToDate",
    }
}

state_names! {
    /// State of a connection to a peer (`connection:`).
    ConnectionState {
        StandAlone = "StandAlone",
        Disconnecting = "Disconnecting",
        Unconnected = "Unconnected",
        Timeout = "Timeout",
        BrokenPipe = "BrokenPipe",
        NetworkFailure = "NetworkFailure",
        ProtocolError = "ProtocolError",
        TearDown = "TearDown",
        Connecting = "Connecting",
        Connected = "Connected",
    }
}

state_names! {
    /// Replication state of a peer device (`replication:`).
    ReplicationState {
        Off = "Off",
        Established = "Established",
        StartingSyncS = "StartingSyncS",
        StartingSyncT = "StartingSyncT",
        WFBitMapS = "WFBitMapS",
        WFBitMapT = "WFBitMapT",
        WFSyncUUID = "WFSyncUUID",
        SyncSource = "SyncSource",
        SyncTarget = "SyncTarget",
        VerifyS = "VerifyS",
        VerifyT = "VerifyT",
        PausedSyncS = "PausedSyncS",
        PausedSyncT = "PausedSyncT",
        Ahead = "Ahead",
        Behind = "Behind",
    }
}

impl ReplicationState {
    /// A resync or verify is running or paused: the states in which `done` means something.
    pub fn has_progress(&self) -> bool {
        matches!(
            self,
            ReplicationState::SyncSource
                | ReplicationState::SyncTarget
                | ReplicationState::PausedSyncS
                | ReplicationState::PausedSyncT
                | ReplicationState::VerifyS
                | ReplicationState::VerifyT
        )
    }

    /// This side receives a resync (running or paused), or is about to: its data is being
    /// brought up to date from the peer.
    pub fn is_receiving(&self) -> bool {
        matches!(
            self,
            ReplicationState::SyncTarget
                | ReplicationState::PausedSyncT
                | ReplicationState::WFBitMapT
        )
    }

    /// A resync is under way, starting, or paused.
    pub fn is_resync(&self) -> bool {
        matches!(
            self,
            ReplicationState::StartingSyncS
                | ReplicationState::StartingSyncT
                | ReplicationState::WFBitMapS
                | ReplicationState::WFBitMapT
                | ReplicationState::WFSyncUUID
                | ReplicationState::SyncSource
                | ReplicationState::SyncTarget
                | ReplicationState::PausedSyncS
                | ReplicationState::PausedSyncT
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_reads_back_as_itself() {
        for text in [
            "UpToDate",
            "Diskless",
            "Failed",
            "",
            "SomethingNew",
            "uptodate",
        ] {
            assert_eq!(DiskState::parse(text).as_str(), text);
            let json = serde_json::to_string(&DiskState::parse(text)).unwrap();
            assert_eq!(json, serde_json::to_string(text).unwrap());
            assert_eq!(
                serde_json::from_str::<DiskState>(&json).unwrap(),
                DiskState::parse(text)
            );
        }
        assert_eq!(DiskState::parse("UpToDate"), DiskState::UpToDate);
        assert_eq!(
            ReplicationState::parse("SyncTarget"),
            ReplicationState::SyncTarget
        );
        assert_eq!(Role::parse("Primary").to_string(), "Primary");
        assert_eq!(
            ConnectionState::parse("Connected"),
            ConnectionState::Connected
        );
        assert_eq!(DiskState::default().as_str(), "");
    }

    #[test]
    fn resync_states() {
        for s in [
            "SyncSource",
            "SyncTarget",
            "PausedSyncT",
            "WFBitMapS",
            "StartingSyncT",
        ] {
            assert!(ReplicationState::parse(s).is_resync(), "{s}");
        }
        for s in ["Established", "Off", "VerifyS", "Ahead", ""] {
            assert!(!ReplicationState::parse(s).is_resync(), "{s}");
        }
    }
}
