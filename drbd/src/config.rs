//! The data a satellite receives for one DRBD resource, and what only the local node knows.
//!
//! These are plain data, checked only when the `res` module renders them into a `.res` file:
//! this module depends on nothing else of the crate.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Peer slots reserved in the metadata when nothing else is asked (LINSTOR's default).
pub const DEFAULT_PEER_SLOTS: u32 = 7;
/// Activity log stripes of DRBD's default layout.
pub const DEFAULT_AL_STRIPES: u32 = 1;
/// Activity log stripe size of DRBD's default layout, in KiB.
pub const DEFAULT_AL_STRIPE_SIZE_KIB: u32 = 32;

/// One DRBD resource as every node of it sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Resource {
    /// DRBD resource name.
    pub name: String,
    /// `max-peers` used at `create-md`: how many peers the bitmap has room for.
    pub peer_slots: u32,
    pub al_stripes: u32,
    pub al_stripe_size_kib: u32,
    /// Shared secret of the connections; set means `cram-hmac-alg sha1`.
    pub secret: Option<String>,
    /// DRBD transport (`tcp`, `rdma`, ...); `None` is DRBD's default, tcp.
    pub transport: Option<String>,
    pub options: Options,
    pub volumes: Vec<Volume>,
    /// Every node of the resource, the local one included.
    pub hosts: Vec<Host>,
    /// Per-connection overrides of net and peer-device options.
    pub connections: Vec<Connection>,
}

impl Default for Resource {
    fn default() -> Resource {
        Resource {
            name: String::new(),
            peer_slots: DEFAULT_PEER_SLOTS,
            al_stripes: DEFAULT_AL_STRIPES,
            al_stripe_size_kib: DEFAULT_AL_STRIPE_SIZE_KIB,
            secret: None,
            transport: None,
            options: Options::default(),
            volumes: Vec::new(),
            hosts: Vec::new(),
            connections: Vec::new(),
        }
    }
}

impl Resource {
    /// The host entry named `node`.
    pub fn host(&self, node: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == node)
    }

    /// The volume numbered `number`.
    pub fn volume(&self, number: u32) -> Option<&Volume> {
        self.volumes.iter().find(|v| v.number == number)
    }
}

/// A volume of the resource; the same minor on every node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Volume {
    pub number: u32,
    pub minor: u32,
}

impl Volume {
    /// The device path DRBD creates for this volume.
    pub fn device_path(&self) -> String {
        format!("/dev/drbd{}", self.minor)
    }
}

/// A node of the resource.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Host {
    /// Node name; DRBD matches it against `uname -n`.
    pub name: String,
    pub node_id: u32,
    /// IPv4 or IPv6 literal, without brackets.
    pub address: String,
    pub port: u16,
    /// The node has no backing disks (a DRBD client).
    pub diskless: bool,
}

/// Options for the connection between two hosts, overriding the resource's: `net` options
/// (LINSTOR's `DrbdOptions/Net/...`) and `peer_device` options for every volume of the pair
/// (`DrbdOptions/PeerDevice/...`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Connection {
    pub hosts: [String; 2],
    pub net: BTreeMap<String, String>,
    pub peer_device: BTreeMap<String, String>,
}

/// The option sections, as LINSTOR names them in `DrbdOptions/<Section>/<key>`.
pub const SECTIONS: [&str; 5] = ["Resource", "Net", "Disk", "PeerDevice", "Handlers"];

/// Options by LINSTOR property section: keys of `DrbdOptions/<Section>/<key>` grouped by
/// section ("Resource", "Net", "Disk", "PeerDevice", "Handlers"), e.g.
/// `options.sections["Resource"]["quorum"] = "majority"`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Options {
    pub sections: BTreeMap<String, BTreeMap<String, String>>,
}

impl Options {
    /// Sets one option.
    pub fn set(
        &mut self,
        section: impl Into<String>,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> &mut Self {
        self.sections
            .entry(section.into())
            .or_default()
            .insert(key.into(), value.into());
        self
    }

    /// One option's value.
    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.sections
            .get(section)
            .and_then(|s| s.get(key))
            .map(String::as_str)
    }

    /// The options among LINSTOR properties: every `DrbdOptions/<Section>/<key>` whose section
    /// is one of [`SECTIONS`]. Other properties (also other `DrbdOptions/...` keys, such as
    /// `DrbdOptions/auto-quorum` or the proxy sections) are not DRBD configuration options and
    /// are left out. Later entries win over earlier ones, so pass the most general object's
    /// properties first (controller, group, definition, resource).
    pub fn from_properties<'a, I>(props: I) -> Options
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut o = Options::default();
        for (k, v) in props {
            let mut parts = k.splitn(3, '/');
            let (Some("DrbdOptions"), Some(section), Some(key)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if SECTIONS.contains(&section) && !key.is_empty() && !key.contains('/') {
                o.set(section, key, v);
            }
        }
        o
    }

    /// Whether no option is set.
    pub fn is_empty(&self) -> bool {
        self.sections.values().all(BTreeMap::is_empty)
    }
}

/// What only the local satellite knows.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Local {
    /// This node's name (as in [`Host::name`]).
    pub node: String,
    /// The backing device of each local volume by volume number; absent means diskless.
    pub disks: BTreeMap<u32, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_serde() {
        let r: Resource = serde_json::from_str(r#"{"name":"r0"}"#).unwrap();
        assert_eq!(r.peer_slots, DEFAULT_PEER_SLOTS);
        assert_eq!(r.al_stripes, 1);
        assert_eq!(r.al_stripe_size_kib, 32);
        let mut r = r;
        r.options.set("Resource", "quorum", "majority");
        r.volumes.push(Volume {
            number: 0,
            minor: 1000,
        });
        r.connections.push(Connection {
            hosts: ["a".into(), "b".into()],
            net: [("protocol".to_string(), "A".to_string())].into(),
            peer_device: [("c-max-rate".to_string(), "300M".to_string())].into(),
        });
        let back: Resource = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
        assert_eq!(r.volume(0).unwrap().device_path(), "/dev/drbd1000");
    }

    #[test]
    fn options_from_properties() {
        let o = Options::from_properties([
            ("DrbdOptions/Resource/quorum", "off"),
            ("DrbdOptions/Net/protocol", "C"),
            ("DrbdOptions/Resource/quorum", "majority"),
            ("DrbdOptions/auto-quorum", "io-error"),
            ("DrbdOptions/Proxy/memlimit", "100M"),
            ("DrbdOptions/PeerDevice/c-max-rate", "100M"),
            ("StorPoolName", "pool"),
        ]);
        assert_eq!(o.get("Resource", "quorum"), Some("majority"));
        assert_eq!(o.get("Net", "protocol"), Some("C"));
        assert_eq!(o.get("PeerDevice", "c-max-rate"), Some("100M"));
        assert_eq!(o.sections.len(), 3);
        assert!(!o.is_empty());
        assert!(Options::default().is_empty());
    }
}
