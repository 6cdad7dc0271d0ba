//! Rendering a [`Resource`] into a DRBD 9 `.res` file.
//!
//! Where things go (checked against `drbdadm` 9.22):
//!
//! - `Resource` options go into `options { }`, `Net` into `net { }`, `Handlers` into
//!   `handlers { }`.
//! - `Disk` and `PeerDevice` options both go into the resource's `disk { }` section. drbd.conf
//!   has no resource-level `peer-device-options` section (drbdadm answers a parse error); the
//!   peer-device options (`resync-rate`, `c-plan-ahead`, `c-delay-target`, `c-fill-target`,
//!   `c-max-rate`, `c-min-rate`, `bitmap`) are accepted in any `disk` section, and drbdadm hands
//!   them to `drbdsetup peer-device-options` for every peer (seen in `drbdadm -d up`).
//! - Every host gets an `on` section. The local node's volumes name its backing devices; a
//!   remote diskful node's volumes name [`REMOTE_DISK_PLACEHOLDER`] (DRBD 9 never opens a remote
//!   disk path, but `disk none` would tell drbdadm the peer is diskless, and it would then set
//!   `--bitmap=no` for it); a diskless node's volumes say `disk none`.
//! - Without per-connection overrides the connections are one `connection-mesh`. With
//!   overrides every pair of hosts gets its own `connection` block: drbdadm does not merge an
//!   explicit `connection` with a mesh covering the same pair, it creates the peer twice.
//!   A connection's net options go into its `net { }`; its peer-device options go into a
//!   `volume N { disk { } }` per volume inside the connection, the most specific place
//!   drbdadm knows. A plain `disk { }` in the connection would do for options the resource
//!   does not set, but drbdadm refuses it ("ambiguous inheritance") for an option the
//!   resource's `disk { }` sets too, which is exactly what an override is for.
//!
//! Every name and value is written inside double quotes, except numbers the grammar wants bare
//! (node ids, minors, volume numbers) and addresses. drbd.conf has no escapes we could rely on,
//! so anything that could end a quoted string or a statement (quotes, backslashes, braces,
//! semicolons, line breaks and other control characters) is refused with a [`RenderError`]
//! instead of being written.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::Path;

use crate::config::{Connection, Host, Local, Resource, Volume, SECTIONS};

/// The disk path written for a remote node's diskful volumes.
pub const REMOTE_DISK_PLACEHOLDER: &str = "/dev/strata/remote-disk-not-used-here";

/// Highest DRBD node id (DRBD 9 allows 32 nodes).
pub const MAX_NODE_ID: u32 = 31;
/// Highest peer slot count drbdmeta accepts.
pub const MAX_PEER_SLOTS: u32 = 31;
/// Highest DRBD minor number (20 bits).
pub const MAX_MINOR: u32 = (1 << 20) - 1;

/// Why a resource cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// A name or value contains something that would break the file's syntax.
    #[error("{what} {value:?} cannot be written into a DRBD configuration: {why}")]
    Unsafe {
        what: String,
        value: String,
        why: &'static str,
    },
    #[error("the local node {0:?} is not one of the resource's hosts")]
    LocalNodeMissing(String),
    #[error("option section {0:?} is unknown (known: Resource, Net, Disk, PeerDevice, Handlers)")]
    UnknownSection(String),
    #[error("option {key:?} is set twice for the DRBD '{section}' section (Disk and PeerDevice share it)")]
    DuplicateOption { section: &'static str, key: String },
    /// The resource contradicts itself (duplicate hosts, node ids, volumes, unknown references,
    /// out-of-range numbers, bad addresses).
    #[error("resource {resource:?}: {why}")]
    Invalid { resource: String, why: String },
}

/// The `.res` file name of a resource.
pub fn file_name(resource: &str) -> String {
    format!("{resource}.res")
}

/// The line to put into a file under `/etc/drbd.d/` so that drbdadm reads every resource file
/// in `dir`, e.g. `include "/var/lib/strata/drbd.d/*.res";`.
///
/// # Panics
///
/// If `dir` holds a character a quoted drbd.conf string cannot carry (a double quote,
/// backslash or control character): the directory is the satellite's own constant, so that
/// is a programming error.
pub fn include_file(dir: &Path) -> String {
    let dir = dir.to_string_lossy();
    let dir = dir.trim_end_matches('/');
    if let Err(why) = check_value(dir) {
        panic!("include directory {dir:?} cannot be written into drbd.conf: {why}");
    }
    format!("include \"{dir}/*.res\";\n")
}

/// Checks `res` for `local` and puts hosts, volumes and options in order.
fn prepare<'a>(res: &'a Resource, local: &Local) -> Result<Prepared<'a>, RenderError> {
    check_resource(res, local)?;
    let (hosts, names) = sorted_hosts(res, local)?;
    let volumes = sorted_volumes(res, local)?;
    let sections = option_sections(res)?;
    let overrides = connection_overrides(res, &names)?;
    Ok(Prepared {
        hosts,
        volumes,
        sections,
        overrides,
    })
}

/// The resource's own name and settings, and the local node's name.
fn check_resource(res: &Resource, local: &Local) -> Result<(), RenderError> {
    name("resource name", &res.name)?;
    name("local node name", &local.node)?;
    if res.hosts.is_empty() {
        return Err(invalid(res, "it has no hosts".into()));
    }
    if res.peer_slots == 0 || res.peer_slots > MAX_PEER_SLOTS {
        return Err(invalid(
            res,
            format!(
                "peer slots {} are outside 1..={MAX_PEER_SLOTS}",
                res.peer_slots
            ),
        ));
    }
    Ok(())
}

/// The hosts by node id (so that reordering them upstream does not change the file), each
/// checked, and the set of their names, which must hold the local node.
fn sorted_hosts<'a>(
    res: &'a Resource,
    local: &Local,
) -> Result<(Vec<&'a Host>, BTreeSet<&'a str>), RenderError> {
    let invalid = |why: String| invalid(res, why);
    let mut hosts: Vec<&Host> = res.hosts.iter().collect();
    hosts.sort_by_key(|h| h.node_id);
    let mut names = BTreeSet::new();
    let mut ids = BTreeSet::new();
    for h in &hosts {
        name("host name", &h.name)?;
        if !names.insert(h.name.as_str()) {
            return Err(invalid(format!("host {:?} is listed twice", h.name)));
        }
        if h.node_id > MAX_NODE_ID {
            return Err(invalid(format!(
                "node id {} of {:?} is above {MAX_NODE_ID}",
                h.node_id, h.name
            )));
        }
        if !ids.insert(h.node_id) {
            return Err(invalid(format!("node id {} is used twice", h.node_id)));
        }
        address(h).map_err(invalid)?;
    }
    if !names.contains(local.node.as_str()) {
        return Err(RenderError::LocalNodeMissing(local.node.clone()));
    }
    Ok((hosts, names))
}

/// The volumes by number, each number and minor once, and the local backing devices, each
/// for a volume of the resource.
fn sorted_volumes(res: &Resource, local: &Local) -> Result<Vec<Volume>, RenderError> {
    let invalid = |why: String| invalid(res, why);
    let mut volumes = res.volumes.clone();
    volumes.sort_by_key(|v| v.number);
    let mut minors = BTreeSet::new();
    for w in volumes.windows(2) {
        if w[0].number == w[1].number {
            return Err(invalid(format!("volume {} is listed twice", w[0].number)));
        }
    }
    for v in &volumes {
        if v.minor > MAX_MINOR {
            return Err(invalid(format!("minor {} is above {MAX_MINOR}", v.minor)));
        }
        if !minors.insert(v.minor) {
            return Err(invalid(format!("minor {} is used twice", v.minor)));
        }
    }
    for (vol, disk) in &local.disks {
        if res.volume(*vol).is_none() {
            return Err(invalid(format!(
                "a local disk is given for volume {vol}, which the resource does not have"
            )));
        }
        check("backing device", disk)?;
        if !disk.starts_with('/') {
            return Err(RenderError::Unsafe {
                what: "backing device".into(),
                value: disk.clone(),
                why: "it is not an absolute path",
            });
        }
    }
    Ok(volumes)
}

/// The resource's options by the `.res` section they go into.
struct Sections {
    resource_opts: BTreeMap<String, String>,
    net: Vec<(String, String)>,
    disk: Vec<(String, String)>,
    handlers: Vec<(String, String)>,
}

impl Sections {
    /// Writes the resource's `options`, `net`, `disk` and `handlers` sections, in that order.
    fn write(&self, out: &mut String) -> Result<(), RenderError> {
        section(out, 1, "options", self.resource_opts.iter())?;
        section(out, 1, "net", self.net.iter().map(|(k, v)| (k, v)))?;
        section(out, 1, "disk", self.disk.iter().map(|(k, v)| (k, v)))?;
        section(
            out,
            1,
            "handlers",
            self.handlers.iter().map(|(k, v)| (k, v)),
        )
    }
}

/// Sorts the option sections into the `.res` sections: the secret and transport join `net`
/// unless set there explicitly, `Disk` and `PeerDevice` share `disk`.
fn option_sections(res: &Resource) -> Result<Sections, RenderError> {
    for section in res.options.sections.keys() {
        if !SECTIONS.contains(&section.as_str()) {
            return Err(RenderError::UnknownSection(section.clone()));
        }
    }
    let opts = |s: &str| res.options.sections.get(s).cloned().unwrap_or_default();
    let resource_opts = opts("Resource");
    let mut net = Vec::new();
    let user_net = opts("Net");
    if let Some(secret) = &res.secret {
        if !user_net.contains_key("cram-hmac-alg") {
            net.push(("cram-hmac-alg".to_string(), "sha1".to_string()));
        }
        if !user_net.contains_key("shared-secret") {
            net.push(("shared-secret".to_string(), secret.clone()));
        }
    }
    if let Some(t) = &res.transport {
        if !user_net.contains_key("transport") {
            net.push(("transport".to_string(), t.clone()));
        }
    }
    net.extend(user_net);
    let mut disk: Vec<(String, String)> = opts("Disk").into_iter().collect();
    for (k, v) in opts("PeerDevice") {
        if disk.iter().any(|(dk, _)| *dk == k) {
            return Err(RenderError::DuplicateOption {
                section: "disk",
                key: k,
            });
        }
        disk.push((k, v));
    }
    let handlers: Vec<(String, String)> = opts("Handlers").into_iter().collect();
    Ok(Sections {
        resource_opts,
        net,
        disk,
        handlers,
    })
}

/// The connection overrides by unordered pair of host names (of `names`), each pair once.
fn connection_overrides<'a>(
    res: &'a Resource,
    names: &BTreeSet<&str>,
) -> Result<BTreeMap<(&'a str, &'a str), &'a Connection>, RenderError> {
    let invalid = |why: String| invalid(res, why);
    let mut overrides: BTreeMap<(&str, &str), &Connection> = BTreeMap::new();
    for c in &res.connections {
        let [a, b] = &c.hosts;
        for h in [a, b] {
            if !names.contains(h.as_str()) {
                return Err(invalid(format!(
                    "a connection names host {h:?}, which the resource does not have"
                )));
            }
        }
        if a == b {
            return Err(invalid(format!("a connection joins {a:?} with itself")));
        }
        let key = if a < b {
            (a.as_str(), b.as_str())
        } else {
            (b.as_str(), a.as_str())
        };
        if overrides.insert(key, c).is_some() {
            return Err(invalid(format!(
                "the connection {a:?} - {b:?} is listed twice"
            )));
        }
    }
    Ok(overrides)
}

/// A resource checked and put in order for writing.
struct Prepared<'a> {
    /// By node id.
    hosts: Vec<&'a Host>,
    /// By number.
    volumes: Vec<Volume>,
    sections: Sections,
    /// Connection overrides by unordered pair of host names.
    overrides: BTreeMap<(&'a str, &'a str), &'a Connection>,
}

fn invalid(res: &Resource, why: String) -> RenderError {
    RenderError::Invalid {
        resource: res.name.clone(),
        why,
    }
}

/// Renders `res` as the node `local.node` writes it, for DRBD 9.
pub fn render(res: &Resource, local: &Local) -> Result<String, RenderError> {
    let Prepared {
        hosts,
        volumes,
        sections,
        overrides,
    } = prepare(res, local)?;
    let invalid = |why: String| invalid(res, why);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Written by strata for node \"{}\"; changes here are overwritten.\n",
        local.node
    );
    let _ = writeln!(out, "resource \"{}\" {{", res.name);
    sections.write(&mut out)?;

    for h in &hosts {
        let is_local = h.name == local.node;
        let _ = writeln!(out, "\n    on \"{}\" {{", h.name);
        let _ = writeln!(out, "        node-id {};", h.node_id);
        let _ = writeln!(out, "        address {};", address(h).map_err(invalid)?);
        for v in &volumes {
            let _ = writeln!(out, "        volume {} {{", v.number);
            let _ = writeln!(out, "            device minor {};", v.minor);
            let disk = if is_local {
                local.disks.get(&v.number).map(String::as_str)
            } else if h.diskless {
                None
            } else {
                Some(REMOTE_DISK_PLACEHOLDER)
            };
            match disk {
                Some(d) => {
                    let _ = writeln!(out, "            disk \"{d}\";");
                    let _ = writeln!(out, "            meta-disk internal;");
                }
                None => {
                    let _ = writeln!(out, "            disk none;");
                }
            }
            let _ = writeln!(out, "        }}");
        }
        let _ = writeln!(out, "    }}");
    }

    connections(&mut out, &hosts, &volumes, &overrides)?;
    let _ = writeln!(out, "}}");
    Ok(out)
}

/// Writes the connections of a DRBD 9 resource: one mesh of all `hosts`, or, with
/// `overrides`, a `connection` block for every pair with the pair's options.
fn connections(
    out: &mut String,
    hosts: &[&Host],
    volumes: &[Volume],
    overrides: &BTreeMap<(&str, &str), &Connection>,
) -> Result<(), RenderError> {
    if overrides.is_empty() {
        let list: Vec<String> = hosts.iter().map(|h| format!("\"{}\"", h.name)).collect();
        let _ = writeln!(out, "\n    connection-mesh {{");
        let _ = writeln!(out, "        hosts {};", list.join(" "));
        let _ = writeln!(out, "    }}");
        return Ok(());
    }
    for (i, a) in hosts.iter().enumerate() {
        for b in &hosts[i + 1..] {
            let key = if a.name < b.name {
                (a.name.as_str(), b.name.as_str())
            } else {
                (b.name.as_str(), a.name.as_str())
            };
            let _ = writeln!(out, "\n    connection {{");
            let _ = writeln!(out, "        host \"{}\";", a.name);
            let _ = writeln!(out, "        host \"{}\";", b.name);
            if let Some(c) = overrides.get(&key) {
                section(out, 2, "net", c.net.iter())?;
                if !c.peer_device.is_empty() {
                    for v in volumes {
                        let _ = writeln!(out, "        volume {} {{", v.number);
                        section(out, 3, "disk", c.peer_device.iter())?;
                        let _ = writeln!(out, "        }}");
                    }
                }
            }
            let _ = writeln!(out, "    }}");
        }
    }
    Ok(())
}

/// Renders `res` as the node `local.node` writes it, for DRBD 8.4 (the in-tree module of
/// mainstream kernels). 8.4 replicates between two hosts and has no node ids, connection
/// sections or peer-device sections: hosts carry volumes and an address, a connection
/// override of the one pair is merged into the resource's `net` and `disk` sections (the
/// resync controller options are disk options in 8.4). Checked against drbdadm-84 of
/// drbd-utils 9.22.
pub fn render84(res: &Resource, local: &Local) -> Result<String, RenderError> {
    let p = prepare(res, local)?;
    let invalid = |why: String| invalid(res, why);
    if p.hosts.len() > 2 {
        return Err(invalid(format!(
            "DRBD 8.4 replicates between two hosts, and the resource has {}",
            p.hosts.len()
        )));
    }
    let mut sections = p.sections;
    for c in p.overrides.values() {
        for (k, v) in &c.net {
            sections.net.retain(|(nk, _)| nk != k);
            sections.net.push((k.clone(), v.clone()));
        }
        for (k, v) in &c.peer_device {
            sections.disk.retain(|(dk, _)| dk != k);
            sections.disk.push((k.clone(), v.clone()));
        }
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Written by strata for node \"{}\" (DRBD 8.4); changes here are overwritten.\n",
        local.node
    );
    let _ = writeln!(out, "resource \"{}\" {{", res.name);
    sections.write(&mut out)?;
    for h in &p.hosts {
        let is_local = h.name == local.node;
        let _ = writeln!(out, "\n    on \"{}\" {{", h.name);
        for v in &p.volumes {
            let _ = writeln!(out, "        volume {} {{", v.number);
            let _ = writeln!(out, "            device minor {};", v.minor);
            let disk = if is_local {
                local.disks.get(&v.number).map(String::as_str)
            } else if h.diskless {
                None
            } else {
                Some(REMOTE_DISK_PLACEHOLDER)
            };
            match disk {
                Some(d) => {
                    let _ = writeln!(out, "            disk \"{d}\";");
                }
                None => {
                    let _ = writeln!(out, "            disk none;");
                }
            }
            // 8.4's parser wants a meta-disk for every volume, diskless ones too.
            let _ = writeln!(out, "            meta-disk internal;");
            let _ = writeln!(out, "        }}");
        }
        let _ = writeln!(out, "        address {};", address(h).map_err(invalid)?);
        let _ = writeln!(out, "    }}");
    }
    let _ = writeln!(out, "}}");
    Ok(out)
}

/// Writes `name { key "value"; ... }` at `depth` (in steps of four spaces); nothing when empty.
fn section<'a, I>(out: &mut String, depth: usize, name: &str, opts: I) -> Result<(), RenderError>
where
    I: Iterator<Item = (&'a String, &'a String)>,
{
    let opts: Vec<_> = opts.collect();
    if opts.is_empty() {
        return Ok(());
    }
    let pad = "    ".repeat(depth);
    let _ = writeln!(out, "{pad}{name} {{");
    for (k, v) in opts {
        key(k)?;
        check(&format!("value of option {k:?}"), v)?;
        if v == "yes" || v == "no" {
            // A boolean: 8.4's drbdadm takes only the bare keywords (a quoted "yes" is a
            // string to it); 9's takes both.
            let _ = writeln!(out, "{pad}    {k} {v};");
        } else {
            let _ = writeln!(out, "{pad}    {k} \"{v}\";");
        }
    }
    let _ = writeln!(out, "{pad}}}");
    Ok(())
}

/// `ipv4 A.B.C.D:PORT` or `ipv6 [ADDR]:PORT`.
fn address(h: &Host) -> Result<String, String> {
    let ip: IpAddr = h.address.parse().map_err(|_| {
        format!(
            "address {:?} of {:?} is not an IPv4 or IPv6 address",
            h.address, h.name
        )
    })?;
    if h.port == 0 {
        return Err(format!("port of {:?} is 0", h.name));
    }
    Ok(match ip {
        IpAddr::V4(a) => format!("ipv4 {a}:{}", h.port),
        IpAddr::V6(a) => format!("ipv6 [{a}]:{}", h.port),
    })
}

/// Resource and host names: what DRBD and LINSTOR names are made of, nothing that a shell,
/// drbdadm's parser or drbdsetup's option parsing could read differently.
fn name(what: &str, value: &str) -> Result<(), RenderError> {
    let unsafe_ = |why| RenderError::Unsafe {
        what: what.into(),
        value: value.into(),
        why,
    };
    if value.is_empty() {
        return Err(unsafe_("it is empty"));
    }
    if value.len() > 255 {
        return Err(unsafe_("it is longer than 255 characters"));
    }
    if value.starts_with('-') {
        return Err(unsafe_("it starts with '-'"));
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-.+".contains(c))
    {
        return Err(unsafe_(
            "only letters, digits, '_', '-', '.' and '+' are allowed",
        ));
    }
    Ok(())
}

/// Option keys: DRBD's option names are lowercase words joined by '-'.
fn key(k: &str) -> Result<(), RenderError> {
    let ok = k.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && k.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(RenderError::Unsafe {
            what: "option name".into(),
            value: k.into(),
            why: "option names are lowercase letters, digits and '-', starting with a letter",
        })
    }
}

fn check_value(v: &str) -> Result<(), &'static str> {
    if v.is_empty() {
        return Err("it is empty");
    }
    if v.len() > 4096 {
        return Err("it is longer than 4096 bytes");
    }
    for c in v.chars() {
        match c {
            '"' => return Err("it contains a double quote"),
            '\\' => return Err("it contains a backslash"),
            '{' | '}' => return Err("it contains a brace"),
            ';' => return Err("it contains a semicolon"),
            '\n' | '\r' => return Err("it contains a line break"),
            c if c.is_control() => return Err("it contains a control character"),
            _ => {}
        }
    }
    Ok(())
}

/// Values written inside double quotes.
fn check(what: &str, v: &str) -> Result<(), RenderError> {
    check_value(v).map_err(|why| RenderError::Unsafe {
        what: what.into(),
        value: v.into(),
        why,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Connection, Volume};
    use crate::testutil::{self, two_volume_resource};

    fn local_alpha() -> Local {
        Local {
            node: "alpha".into(),
            disks: [
                (0, "/dev/loop10".to_string()),
                (1, "/dev/loop11".to_string()),
            ]
            .into(),
        }
    }

    #[test]
    fn renders_the_expected_text() {
        let mut r = two_volume_resource();
        r.transport = Some("tcp".into());
        r.options.set(
            "Handlers",
            "split-brain",
            "/usr/lib/drbd/notify-split-brain.sh root",
        );
        let text = render(&r, &local_alpha()).unwrap();
        let expected = r#"# Written by strata for node "alpha"; changes here are overwritten.

resource "r0" {
    options {
        auto-promote yes;
        quorum "majority";
    }
    net {
        cram-hmac-alg "sha1";
        shared-secret "s3cr3t+/=";
        transport "tcp";
        max-buffers "8000";
        protocol "C";
    }
    disk {
        al-extents "6007";
        on-io-error "detach";
        c-max-rate "200M";
        resync-rate "100M";
    }
    handlers {
        split-brain "/usr/lib/drbd/notify-split-brain.sh root";
    }

    on "alpha" {
        node-id 0;
        address ipv4 10.0.0.1:7000;
        volume 0 {
            device minor 1000;
            disk "/dev/loop10";
            meta-disk internal;
        }
        volume 1 {
            device minor 1001;
            disk "/dev/loop11";
            meta-disk internal;
        }
    }

    on "beta" {
        node-id 1;
        address ipv6 [fd00::2]:7000;
        volume 0 {
            device minor 1000;
            disk "/dev/strata/remote-disk-not-used-here";
            meta-disk internal;
        }
        volume 1 {
            device minor 1001;
            disk "/dev/strata/remote-disk-not-used-here";
            meta-disk internal;
        }
    }

    on "gamma" {
        node-id 2;
        address ipv4 10.0.0.3:7000;
        volume 0 {
            device minor 1000;
            disk none;
        }
        volume 1 {
            device minor 1001;
            disk none;
        }
    }

    connection-mesh {
        hosts "alpha" "beta" "gamma";
    }
}
"#;
        assert_eq!(text, expected, "{text}");
    }

    #[test]
    fn output_does_not_depend_on_input_order() {
        let r = two_volume_resource();
        let mut shuffled = r.clone();
        shuffled.hosts.reverse();
        shuffled.volumes.reverse();
        assert_eq!(
            render(&r, &local_alpha()).unwrap(),
            render(&shuffled, &local_alpha()).unwrap()
        );
    }

    #[test]
    fn local_diskless_and_remote_view() {
        let r = two_volume_resource();
        // Seen from gamma (diskless: no local disks), alpha's disks are placeholders too.
        let text = render(
            &r,
            &Local {
                node: "gamma".into(),
                disks: Default::default(),
            },
        )
        .unwrap();
        assert!(!text.contains("/dev/loop10"));
        assert_eq!(text.matches(REMOTE_DISK_PLACEHOLDER).count(), 4);
        assert_eq!(text.matches("disk none;").count(), 2);
        assert!(text.starts_with("# Written by strata for node \"gamma\""));
    }

    #[test]
    fn overrides_give_explicit_connections_for_every_pair() {
        let mut r = two_volume_resource();
        r.connections.push(Connection {
            hosts: ["beta".into(), "alpha".into()],
            net: [("protocol".to_string(), "A".to_string())].into(),
            ..Default::default()
        });
        let text = render(&r, &local_alpha()).unwrap();
        assert!(!text.contains("connection-mesh"));
        assert_eq!(text.matches("    connection {").count(), 3);
        assert!(text.contains(
            "    connection {\n        host \"alpha\";\n        host \"beta\";\n        net {\n            protocol \"A\";\n        }\n    }\n"
        ));
        assert!(text.contains(
            "    connection {\n        host \"beta\";\n        host \"gamma\";\n    }\n"
        ));
    }

    #[test]
    fn peer_device_overrides_go_into_every_volume_of_their_connection() {
        let mut r = two_volume_resource();
        r.connections.push(Connection {
            hosts: ["gamma".into(), "alpha".into()],
            peer_device: [("c-max-rate".to_string(), "300M".to_string())].into(),
            ..Default::default()
        });
        let text = render(&r, &local_alpha()).unwrap();
        assert!(text.contains(
            "    connection {\n        host \"alpha\";\n        host \"gamma\";\n        volume 0 {\n            disk {\n                c-max-rate \"300M\";\n            }\n        }\n        volume 1 {\n            disk {\n                c-max-rate \"300M\";\n            }\n        }\n    }\n"
        ), "{text}");
        assert!(text.contains(
            "    connection {\n        host \"alpha\";\n        host \"beta\";\n    }\n"
        ));
        // Checked like every other option.
        r.connections[0]
            .peer_device
            .insert("c-min-rate".into(), "1M; }".into());
        assert!(matches!(
            render(&r, &local_alpha()),
            Err(RenderError::Unsafe { .. })
        ));
    }

    #[test]
    fn user_net_options_win_over_generated_ones() {
        let mut r = two_volume_resource();
        r.options.set("Net", "cram-hmac-alg", "sha256");
        r.options.set("Net", "transport", "rdma");
        r.transport = Some("tcp".into());
        let text = render(&r, &local_alpha()).unwrap();
        assert_eq!(text.matches("cram-hmac-alg").count(), 1);
        assert!(text.contains("cram-hmac-alg \"sha256\";"));
        assert!(text.contains("transport \"rdma\";"));
        assert!(!text.contains("transport \"tcp\";"));
        assert!(text.contains("shared-secret \"s3cr3t+/=\";"));
    }

    #[test]
    fn no_secret_no_options_no_sections() {
        let r = Resource {
            name: "bare".into(),
            volumes: vec![Volume {
                number: 0,
                minor: 1005,
            }],
            hosts: vec![testutil::host("alpha", 0, "127.0.0.1", 7005, false)],
            ..Default::default()
        };
        let text = render(&r, &local_alpha_one()).unwrap();
        for s in ["options {", "net {", "disk {", "handlers {"] {
            assert!(!text.contains(s), "{s} in {text}");
        }
        assert!(text.contains("hosts \"alpha\";"));
    }

    fn local_alpha_one() -> Local {
        Local {
            node: "alpha".into(),
            disks: [(0, "/dev/loop10".to_string())].into(),
        }
    }

    #[test]
    fn refuses_what_would_break_the_syntax() {
        let bad_values = [
            "a\"b", "a;b", "a{b", "a}b", "a\nb", "a\rb", "a\\b", "", "a\u{7}b",
        ];
        for v in bad_values {
            let mut r = two_volume_resource();
            r.options.set("Net", "protocol", v);
            assert!(
                matches!(render(&r, &local_alpha()), Err(RenderError::Unsafe { .. })),
                "{v:?}"
            );
            let mut r = two_volume_resource();
            r.secret = Some(v.into());
            assert!(render(&r, &local_alpha()).is_err(), "secret {v:?}");
            let mut l = local_alpha();
            l.disks.insert(0, format!("/dev/{v}"));
            if !v.is_empty() {
                assert!(render(&two_volume_resource(), &l).is_err(), "disk {v:?}");
            }
        }
        for k in ["Protocol", "pro tocol", "a;b", "_name", "", "-x", "a\"b"] {
            let mut r = two_volume_resource();
            r.options.set("Net", k, "C");
            assert!(
                matches!(render(&r, &local_alpha()), Err(RenderError::Unsafe { .. })),
                "{k:?}"
            );
        }
        for n in ["r 0", "r\"0", "r;0", "-r0", "", "r{0}", "r\n0"] {
            let mut r = two_volume_resource();
            r.name = n.into();
            assert!(
                matches!(render(&r, &local_alpha()), Err(RenderError::Unsafe { .. })),
                "{n:?}"
            );
            let mut r = two_volume_resource();
            r.hosts[1].name = n.into();
            assert!(render(&r, &local_alpha()).is_err(), "host {n:?}");
        }
        let mut l = local_alpha();
        l.disks.insert(0, "relative/path".into());
        assert!(render(&two_volume_resource(), &l).is_err());
    }

    #[test]
    fn refuses_contradictions() {
        type Case = (&'static str, Box<dyn Fn(&mut Resource, &mut Local)>);
        let cases: Vec<Case> = vec![
            (
                "dup host",
                Box::new(|r, _| r.hosts[1].name = "alpha".into()),
            ),
            ("dup id", Box::new(|r, _| r.hosts[1].node_id = 0)),
            ("id range", Box::new(|r, _| r.hosts[1].node_id = 32)),
            (
                "bad ip",
                Box::new(|r, _| r.hosts[1].address = "beta.example".into()),
            ),
            ("port 0", Box::new(|r, _| r.hosts[1].port = 0)),
            ("dup vol", Box::new(|r, _| r.volumes[1].number = 0)),
            ("dup minor", Box::new(|r, _| r.volumes[1].minor = 1000)),
            ("minor range", Box::new(|r, _| r.volumes[1].minor = 1 << 20)),
            ("no hosts", Box::new(|r, _| r.hosts.clear())),
            ("slots 0", Box::new(|r, _| r.peer_slots = 0)),
            ("slots 32", Box::new(|r, _| r.peer_slots = 32)),
            ("local missing", Box::new(|_, l| l.node = "delta".into())),
            (
                "disk for unknown volume",
                Box::new(|_, l| {
                    l.disks.insert(7, "/dev/loop7".into());
                }),
            ),
            (
                "unknown section",
                Box::new(|r, _| {
                    r.options.set("Proxy", "memlimit", "1M");
                }),
            ),
            (
                "disk+peerdevice dup",
                Box::new(|r, _| {
                    r.options.set("Disk", "resync-rate", "1M");
                }),
            ),
            (
                "conn unknown host",
                Box::new(|r, _| {
                    r.connections.push(Connection {
                        hosts: ["alpha".into(), "zeta".into()],
                        ..Default::default()
                    })
                }),
            ),
            (
                "conn self",
                Box::new(|r, _| {
                    r.connections.push(Connection {
                        hosts: ["alpha".into(), "alpha".into()],
                        ..Default::default()
                    })
                }),
            ),
            (
                "conn twice",
                Box::new(|r, _| {
                    for pair in [["alpha", "beta"], ["beta", "alpha"]] {
                        r.connections.push(Connection {
                            hosts: pair.map(String::from),
                            ..Default::default()
                        })
                    }
                }),
            ),
        ];
        for (what, f) in cases {
            let mut r = two_volume_resource();
            let mut l = local_alpha();
            f(&mut r, &mut l);
            let err = render(&r, &l).unwrap_err();
            assert!(!err.to_string().is_empty(), "{what}");
        }
    }

    #[test]
    fn include_line() {
        assert_eq!(
            include_file(Path::new("/var/lib/strata/drbd.d/")),
            "include \"/var/lib/strata/drbd.d/*.res\";\n"
        );
        assert_eq!(file_name("r0"), "r0.res");
    }
}

/// The rendered files checked by the real drbdadm 9.22 (no kernel module needed).
#[cfg(test)]
mod real_drbdadm {
    use super::*;
    use crate::adm::{self, AdmConfig};
    use crate::testutil::{self, drbdadm_as, squeeze, two_volume_resource, ConfDir};
    use strata_exec::RealRunner;

    /// drbdadm names the tools it runs by the directory it was started from (the runners start
    /// programs by absolute path: `/usr/sbin/drbdsetup ...`); tests compare bare names.
    fn bare(printed: &str) -> String {
        printed
            .lines()
            .map(|l| match l.split_once(' ') {
                Some((prog, rest)) => {
                    format!("{} {rest}\n", prog.rsplit('/').next().unwrap_or(prog))
                }
                None => format!("{}\n", l.rsplit('/').next().unwrap_or(l)),
            })
            .collect()
    }

    fn alpha_view() -> (Resource, Local) {
        let mut r = two_volume_resource();
        r.options.set(
            "Handlers",
            "split-brain",
            "/usr/lib/drbd/notify-split-brain.sh root",
        );
        let local = Local {
            node: "alpha".into(),
            disks: [
                (0, "/dev/loop10".to_string()),
                (1, "/dev/loop11".to_string()),
            ]
            .into(),
        };
        (r, local)
    }

    #[test]
    fn dump_shows_what_was_rendered() {
        strata_exec::needs!(needs::tool("drbdadm", "drbd-utils"));
        let (r, local) = alpha_view();
        let conf = ConfDir::new();
        conf.write("r0", &render(&r, &local).unwrap());
        let out = drbdadm_as("alpha", &conf.conf(), &["dump", "r0"]);
        assert_eq!(out.status, 0, "{out:?}");
        assert!(
            out.stderr.contains("PRETENDING that I am >>alpha<<"),
            "{out:?}"
        );
        let dump = squeeze(&out.stdout);
        for want in [
            "resource r0 {",
            "on alpha {\nnode-id 0;\nvolume 0 {\ndevice minor 1000;\ndisk /dev/loop10;\nmeta-disk internal;\n}\nvolume 1 {\ndevice minor 1001;\ndisk /dev/loop11;",
            "address ipv4 10.0.0.1:7000;",
            "on beta {\nnode-id 1;",
            &format!("disk {REMOTE_DISK_PLACEHOLDER};"),
            "address ipv6 [fd00::2]:7000;",
            "on gamma {\nnode-id 2;\nvolume 0 {\ndevice minor 1000;\ndisk none;\n}",
            "address ipv4 10.0.0.3:7000;",
            "connection-mesh {\nhosts alpha beta gamma;\n}",
            "options {\nauto-promote yes;\nquorum majority;\n}",
            "protocol C;",
            "max-buffers 8000;",
            "cram-hmac-alg sha1;",
            "shared-secret \"s3cr3t+/=\";",
            "on-io-error detach;",
            "al-extents 6007;",
            "resync-rate 100M;",
            "c-max-rate 200M;",
            "split-brain \"/usr/lib/drbd/notify-split-brain.sh root\";",
        ] {
            assert!(dump.contains(want), "missing {want:?} in\n{dump}");
        }
    }

    #[test]
    fn dry_run_up_as_another_node() {
        strata_exec::needs!(needs::tool("drbdadm", "drbd-utils"));
        let (r, local) = alpha_view();
        let conf = ConfDir::new();
        conf.write("r0", &render(&r, &local).unwrap());
        let out = drbdadm_as("alpha", &conf.conf(), &["-d", "up", "r0"]);
        assert_eq!(out.status, 0, "{out:?}");
        let printed = bare(&out.stdout);
        let lines: Vec<&str> = printed.lines().collect();
        for want in [
            "drbdsetup new-minor r0 1000 0",
            "drbdsetup new-minor r0 1001 1",
            "drbdsetup new-path r0 1 ipv4:10.0.0.1:7000 ipv6:\\[fd00::2\\]:7000",
            "drbdsetup new-path r0 2 ipv4:10.0.0.1:7000 ipv4:10.0.0.3:7000",
            // PeerDevice options from the disk section reach every peer device; the diskless
            // peer's also get no bitmap.
            "drbdsetup peer-device-options r0 1 0 --c-max-rate=200M --resync-rate=100M",
            "drbdsetup peer-device-options r0 2 1 --c-max-rate=200M --resync-rate=100M --bitmap=no",
            "drbdmeta 1000 v09 /dev/loop10 internal apply-al",
            "drbdsetup connect r0 1",
            "drbdsetup connect r0 2",
        ] {
            assert!(lines.contains(&want), "missing {want:?} in\n{printed}");
        }
        let find = |prefix: &str| {
            lines
                .iter()
                .find(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("no {prefix:?} in\n{printed}"))
                .split_whitespace()
                .collect::<Vec<_>>()
        };
        for (minor, dev) in [(1000, "/dev/loop10"), (1001, "/dev/loop11")] {
            let attach = find(&format!("drbdsetup attach {minor} {dev} {dev} internal"));
            assert!(
                attach.contains(&"--al-extents=6007") && attach.contains(&"--on-io-error=detach")
            );
        }
        let new_res = find("drbdsetup new-resource r0 0");
        assert!(new_res.contains(&"--quorum=majority") && new_res.contains(&"--auto-promote=yes"));
        let beta = find("drbdsetup new-peer r0 1 ");
        for o in [
            "--_name=beta",
            "--protocol=C",
            "--max-buffers=8000",
            "--cram-hmac-alg=sha1",
            "--shared-secret=s3cr3t+/=",
        ] {
            assert!(beta.contains(&o), "{o} in {beta:?}");
        }
        assert!(find("drbdsetup new-peer r0 2 ").contains(&"--_name=gamma"));
    }

    #[test]
    fn connection_overrides_reach_only_their_peer() {
        strata_exec::needs!(needs::tool("drbdadm", "drbd-utils"));
        let (mut r, local) = alpha_view();
        r.connections.push(crate::config::Connection {
            hosts: ["beta".into(), "alpha".into()],
            net: [("protocol".to_string(), "A".to_string())].into(),
            ..Default::default()
        });
        let conf = ConfDir::new();
        conf.write("r0", &render(&r, &local).unwrap());
        let out = drbdadm_as("alpha", &conf.conf(), &["-d", "up", "r0"]);
        assert_eq!(out.status, 0, "{out:?}");
        let printed = bare(&out.stdout);
        let peers: Vec<&str> = printed
            .lines()
            .filter(|l| l.starts_with("drbdsetup new-peer"))
            .collect();
        assert_eq!(peers.len(), 2, "each peer once: {peers:?}");
        assert!(
            peers[0].starts_with("drbdsetup new-peer r0 1 ") && peers[0].contains("--protocol=A")
        );
        assert!(
            peers[1].starts_with("drbdsetup new-peer r0 2 ") && peers[1].contains("--protocol=C")
        );
    }

    #[test]
    fn peer_device_overrides_reach_only_their_peer() {
        strata_exec::needs!(needs::tool("drbdadm", "drbd-utils"));
        let (mut r, local) = alpha_view();
        r.connections.push(crate::config::Connection {
            hosts: ["alpha".into(), "beta".into()],
            net: [("protocol".to_string(), "A".to_string())].into(),
            // c-max-rate is set for the whole resource too: the connection's value wins.
            peer_device: [
                ("c-max-rate".to_string(), "300M".to_string()),
                ("c-min-rate".to_string(), "10M".to_string()),
            ]
            .into(),
        });
        let conf = ConfDir::new();
        conf.write("r0", &render(&r, &local).unwrap());
        let out = drbdadm_as("alpha", &conf.conf(), &["-d", "up", "r0"]);
        assert_eq!(out.status, 0, "{out:?}");
        let printed = bare(&out.stdout);
        let options = |peer: u32, vol: u32| -> Vec<String> {
            let prefix = format!("drbdsetup peer-device-options r0 {peer} {vol} ");
            let line = printed
                .lines()
                .find(|l| l.starts_with(&prefix))
                .unwrap_or_else(|| panic!("no {prefix:?} in\n{printed}"));
            let mut opts: Vec<String> = line[prefix.len()..]
                .split_whitespace()
                .map(String::from)
                .collect();
            opts.sort();
            opts
        };
        for vol in [0, 1] {
            assert_eq!(
                options(1, vol),
                [
                    "--c-max-rate=300M",
                    "--c-min-rate=10M",
                    "--resync-rate=100M"
                ],
                "beta, volume {vol}"
            );
            assert_eq!(
                options(2, vol),
                ["--bitmap=no", "--c-max-rate=200M", "--resync-rate=100M"],
                "gamma, volume {vol}"
            );
        }
        let dump = squeeze(&drbdadm_as("alpha", &conf.conf(), &["dump", "r0"]).stdout);
        assert!(
            dump.contains("host alpha;\nhost beta;\nnet {\n_name beta;\nprotocol A;\n}\nvolume 0 {\ndisk {\nc-max-rate 300M;\nc-min-rate 10M;\n}\n}"),
            "{dump}"
        );
    }

    #[test]
    fn every_node_view_parses() {
        strata_exec::needs!(needs::tool("drbdadm", "drbd-utils"));
        let r = two_volume_resource();
        for (node, disks) in [
            ("alpha", vec![(0, "/dev/loop10"), (1, "/dev/loop11")]),
            (
                "beta",
                vec![(0, "/dev/vg/r0_00000"), (1, "/dev/vg/r0_00001")],
            ),
            ("gamma", vec![]),
        ] {
            let local = Local {
                node: node.into(),
                disks: disks.into_iter().map(|(v, d)| (v, d.to_string())).collect(),
            };
            let conf = ConfDir::new();
            conf.write("r0", &render(&r, &local).unwrap());
            let out = drbdadm_as(node, &conf.conf(), &["-d", "up", "r0"]);
            assert_eq!(out.status, 0, "{node}: {out:?}");
            let attaches = bare(&out.stdout)
                .lines()
                .filter(|l| l.starts_with("drbdsetup attach"))
                .count();
            assert_eq!(attaches, if node == "gamma" { 0 } else { 2 }, "{node}");
            // sh-nop parses everything whatever host this is.
            adm::check_config(
                &RealRunner,
                &AdmConfig {
                    config_file: Some(conf.conf()),
                    ..Default::default()
                },
            )
            .unwrap();
        }
    }

    #[test]
    fn a_broken_file_is_refused_by_the_parser() {
        let conf = ConfDir::new();
        conf.write(
            "bad",
            "resource \"bad\" {\n    on \"x\" { node-id \"0\"; }\n}\n",
        );
        let err = adm::check_config(
            &RealRunner,
            &AdmConfig {
                config_file: Some(conf.conf()),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(err.stderr().contains("Parse error"), "{err}");
    }

    /// A resource whose first host is this machine (drbdadm matches `uname -n`), for running
    /// drbdadm through the real, environment-clearing runner.
    fn this_host_view(disk: &str, address: &str) -> (ConfDir, AdmConfig) {
        let me = testutil::local_hostname();
        let mut r = two_volume_resource();
        r.name = "strata-test".into();
        r.volumes.truncate(1);
        r.volumes[0].minor = 1990;
        r.hosts[0].name = me.clone();
        r.hosts[0].address = address.into();
        let local = Local {
            node: me,
            disks: [(0, disk.to_string())].into(),
        };
        let conf = ConfDir::new();
        conf.write(&r.name, &render(&r, &local).unwrap());
        let cfg = AdmConfig {
            config_file: Some(conf.conf()),
            dry_run: true,
            ..Default::default()
        };
        (conf, cfg)
    }

    #[test]
    fn dry_runs_through_the_real_runner() {
        let (_conf, cfg) = this_host_view("/dev/loop12", "10.0.0.1");
        let res = "strata-test";
        let run = RealRunner;
        let b = |r: Result<String, adm::AdmError>| bare(&r.unwrap());
        let out = b(adm::create_md(&run, &cfg, res, 0, 7));
        assert_eq!(
            out,
            "drbdmeta 1990 v09 /dev/loop12 internal create-md 7 --force\n"
        );
        let out = b(adm::create_md_striped(&run, &cfg, res, 0, 3, 2, 64));
        assert_eq!(
            out,
            "drbdmeta 1990 v09 /dev/loop12 internal create-md 3 --force --al-stripes=2 --al-stripe-size-kB=64\n"
        );
        let up = b(adm::up(&run, &cfg, res));
        assert!(
            up.starts_with("drbdsetup new-resource strata-test 0"),
            "{up}"
        );
        assert!(up.contains("drbdsetup attach 1990 /dev/loop12 /dev/loop12 internal"));
        // Without a kernel that knows the resource, adjust is the whole of up (resetting
        // peer-device options to their defaults first).
        assert_eq!(
            b(adm::adjust(&run, &cfg, res)),
            up.replace(" --c-max-rate", " --set-defaults --c-max-rate")
        );
        assert_eq!(
            b(adm::down(&run, &cfg, res)),
            "drbdsetup down strata-test\n"
        );
        assert_eq!(
            b(adm::primary_force(&run, &cfg, res)),
            "drbdsetup primary strata-test --force\n"
        );
        assert_eq!(
            b(adm::secondary(&run, &cfg, res)),
            "drbdsetup secondary strata-test\n"
        );
        assert_eq!(
            b(adm::resize(&run, &cfg, res, 0)),
            "drbdsetup resize 1990\ndrbdsetup check-resize 1990\n"
        );
        assert_eq!(
            b(adm::resize_assume_clean(&run, &cfg, res, 0)),
            "drbdsetup resize 1990 --assume-clean\ndrbdsetup check-resize 1990\n"
        );
        assert_eq!(
            b(adm::wipe_md(&run, &cfg, res, 0)),
            "drbdmeta 1990 v09 /dev/loop12 internal wipe-md --force\n"
        );
        assert_eq!(
            b(adm::skip_initial_sync(&run, &cfg, res, 0)),
            "drbdsetup new-current-uuid 1990 --clear-bitmap\n"
        );
    }

    #[test]
    fn without_the_module_up_fails_with_a_clear_error() {
        if std::path::Path::new(crate::version::PROC_DRBD).exists() {
            // A host with DRBD loaded would really bring the resource up: not here.
            eprintln!("skipped: a DRBD module is loaded");
            return;
        }
        let (_conf, mut cfg) = this_host_view("/dev/loop12", "127.0.0.1");
        cfg.dry_run = false;
        let err = adm::up(&RealRunner, &cfg, "strata-test").unwrap_err();
        assert!(
            matches!(err, adm::AdmError::NoKernelModule { .. }),
            "{err:?}"
        );
        assert!(err.stderr().contains("Failed to modprobe drbd"), "{err}");
        // An address this host does not have is refused before anything else.
        let (_conf, mut cfg) = this_host_view("/dev/loop12", "192.0.2.1");
        cfg.dry_run = false;
        let err = adm::up(&RealRunner, &cfg, "strata-test").unwrap_err();
        assert!(
            err.stderr().contains("IP 192.0.2.1 not found on this host"),
            "{err}"
        );
    }
}

/// DRBD 8.4 files checked by the real drbdadm-84 of drbd-utils 9.22.
#[cfg(test)]
mod real_drbdadm84 {
    use super::*;
    use crate::config::{Connection, Options, Volume};
    use crate::testutil::{drbdadm84_as, host, squeeze, ConfDir};

    /// Two nodes, one volume, options 8.4 knows, and an override of the one connection.
    fn pair(beta_diskless: bool) -> Resource {
        let mut options = Options::default();
        options
            .set("Net", "protocol", "C")
            .set("Net", "max-buffers", "8000")
            .set("Net", "allow-two-primaries", "yes")
            .set("Disk", "on-io-error", "detach")
            .set("PeerDevice", "resync-rate", "100M");
        Resource {
            name: "r84".into(),
            peer_slots: 1,
            secret: Some("s3cr3t+/=".into()),
            options,
            volumes: vec![Volume {
                number: 0,
                minor: 1000,
            }],
            hosts: vec![
                host("alpha", 0, "10.99.0.1", 7000, false),
                host("beta", 1, "10.99.0.2", 7000, beta_diskless),
            ],
            connections: vec![Connection {
                hosts: ["alpha".into(), "beta".into()],
                net: [("max-buffers".to_string(), "10000".to_string())].into(),
                peer_device: [("c-max-rate".to_string(), "300M".to_string())].into(),
            }],
            ..Default::default()
        }
    }

    fn alpha() -> Local {
        Local {
            node: "alpha".into(),
            disks: [(0, "/dev/loop20".to_string())].into(),
        }
    }

    #[test]
    fn renders_two_hosts_without_node_ids_or_connection_sections() {
        strata_exec::needs!(
            needs::tool("drbdadm", "drbd-utils"),
            crate::testutil::drbdadm_84()
        );
        let text = render84(&pair(false), &alpha()).unwrap();
        assert!(!text.contains("node-id"), "{text}");
        assert!(!text.contains("connection"), "{text}");
        let conf = ConfDir::new();
        conf.write("r84", &text);
        let out = drbdadm84_as("alpha", &conf.conf(), &["dump", "r84"]);
        assert_eq!(out.status, 0, "{out:?}");
        let dump = squeeze(&out.stdout);
        for want in [
            "on alpha {\nvolume 0 {\ndevice minor 1000;\ndisk /dev/loop20;\nmeta-disk internal;\n}\naddress ipv4 10.99.0.1:7000;",
            &format!("on beta {{\nvolume 0 {{\ndevice minor 1000;\ndisk {REMOTE_DISK_PLACEHOLDER};"),
            "address ipv4 10.99.0.2:7000;",
            "protocol C;",
            // The connection's override wins over the resource's value.
            "max-buffers 10000;",
            "cram-hmac-alg sha1;",
            "on-io-error detach;",
            "resync-rate 100M;",
            "c-max-rate 300M;",
            "allow-two-primaries",
        ] {
            assert!(dump.contains(want), "missing {want:?} in\n{dump}");
        }
        assert!(!dump.contains("max-buffers 8000"), "{dump}");
    }

    /// The metadata commands as our adm functions build them, run by the real drbdadm-84
    /// (dry run): v08 metadata, and no option drbdadm-84 refuses.
    #[test]
    fn metadata_commands_suit_the_84_drbdadm() {
        strata_exec::needs!(
            needs::tool("drbdadm", "drbd-utils"),
            crate::testutil::drbdadm_84()
        );
        let conf = ConfDir::new();
        conf.write("r84", &render84(&pair(false), &alpha()).unwrap());
        let run = crate::testutil::As84 {
            node: "alpha".into(),
        };
        let cfg = crate::adm::AdmConfig {
            config_file: Some(conf.conf()),
            dry_run: true,
            drbd84: true,
            ..Default::default()
        };
        let last = |r: Result<String, crate::adm::AdmError>| {
            let out = r.unwrap_or_else(|e| panic!("{e}"));
            squeeze(out.lines().last().unwrap_or_default()).replace("/usr/lib/drbd/", "")
        };
        assert_eq!(
            last(crate::adm::create_md(&run, &cfg, "r84", 0, 1)),
            "drbdmeta 1000 v08 /dev/loop20 internal create-md --force"
        );
        assert_eq!(
            last(crate::adm::wipe_md(&run, &cfg, "r84", 0)),
            "drbdmeta 1000 v08 /dev/loop20 internal wipe-md --force"
        );
        assert_eq!(
            last(crate::adm::skip_initial_sync(&run, &cfg, "r84", 0)),
            "drbdsetup-84 new-current-uuid 1000 --clear-bitmap"
        );
        assert_eq!(
            last(crate::adm::down(&run, &cfg, "r84")),
            "drbdsetup-84 down r84"
        );
    }

    /// A resource alone on its node (its peer not there yet, or gone): drbdadm-84 cannot
    /// adjust it, so it runs adjust's plan without the network part.
    #[test]
    fn a_resource_without_peer_is_adjusted_without_its_network() {
        strata_exec::needs!(
            needs::tool("drbdadm", "drbd-utils"),
            crate::testutil::drbdadm_84()
        );
        let mut alone = pair(false);
        alone.hosts.truncate(1);
        alone.connections.clear();
        let conf = ConfDir::new();
        conf.write("r84", &render84(&alone, &alpha()).unwrap());
        let run = crate::testutil::As84 {
            node: "alpha".into(),
        };
        let cfg = crate::adm::AdmConfig {
            config_file: Some(conf.conf()),
            dry_run: true,
            drbd84: true,
            ..Default::default()
        };
        let plan = crate::adm::adjust84_by_plan(&run, &cfg, "r84", false)
            .unwrap_or_else(|e| panic!("{e}"));
        let steps: Vec<String> = plan
            .lines()
            .map(|l| {
                let w: Vec<&str> = l.split_whitespace().take(2).collect();
                w.join(" ").replace("/usr/lib/drbd/", "")
            })
            .collect();
        assert_eq!(
            steps,
            [
                "drbdsetup-84 new-resource",
                "drbdsetup-84 new-minor",
                "drbdmeta 1000",
                "drbdsetup-84 attach"
            ],
            "{plan}"
        );
        assert!(!plan.contains("connect"), "{plan}");
    }

    /// A diskless 8.4 node: drbdadm-84 would attach a disk named "none"; the plan runs
    /// without it and connects with the configured secret.
    #[test]
    fn a_diskless_node_is_adjusted_without_attaching() {
        strata_exec::needs!(
            needs::tool("drbdadm", "drbd-utils"),
            crate::testutil::drbdadm_84()
        );
        let conf = ConfDir::new();
        let beta = Local {
            node: "beta".into(),
            disks: Default::default(),
        };
        conf.write("r84", &render84(&pair(true), &beta).unwrap());
        let run = crate::testutil::As84 {
            node: "beta".into(),
        };
        let cfg = crate::adm::AdmConfig {
            config_file: Some(conf.conf()),
            dry_run: true,
            drbd84: true,
            ..Default::default()
        };
        let plan =
            crate::adm::adjust84_by_plan(&run, &cfg, "r84", true).unwrap_or_else(|e| panic!("{e}"));
        let steps: Vec<String> = plan
            .lines()
            .map(|l| {
                let w: Vec<&str> = l.split_whitespace().take(2).collect();
                w.join(" ").replace("/usr/lib/drbd/", "")
            })
            .collect();
        assert_eq!(
            steps,
            [
                "drbdsetup-84 new-resource",
                "drbdsetup-84 new-minor",
                "drbdsetup-84 connect"
            ],
            "{plan}"
        );
        assert!(plan.contains("--shared-secret=s3cr3t+/="), "{plan}");
    }

    #[test]
    fn dry_run_up_drives_the_84_tools() {
        strata_exec::needs!(
            needs::tool("drbdadm", "drbd-utils"),
            crate::testutil::drbdadm_84()
        );
        let conf = ConfDir::new();
        conf.write("r84", &render84(&pair(false), &alpha()).unwrap());
        let out = drbdadm84_as("alpha", &conf.conf(), &["-d", "up", "r84"]);
        assert_eq!(out.status, 0, "{out:?}");
        let lines: Vec<String> = out
            .stdout
            .lines()
            .map(|l| l.replace("/usr/lib/drbd/", ""))
            .collect();
        let find = |prefix: &str| {
            lines
                .iter()
                .find(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("no {prefix:?} in\n{}", out.stdout))
                .clone()
        };
        assert_eq!(
            find("drbdsetup-84 new-minor"),
            "drbdsetup-84 new-minor r84 1000 0"
        );
        let attach = find("drbdsetup-84 attach");
        assert!(
            attach.starts_with("drbdsetup-84 attach 1000 /dev/loop20 /dev/loop20 internal"),
            "{attach}"
        );
        for opt in [
            "--on-io-error=detach",
            "--resync-rate=100M",
            "--c-max-rate=300M",
        ] {
            assert!(attach.contains(opt), "{attach}");
        }
        let connect = find("drbdsetup-84 connect");
        assert!(
            connect.starts_with("drbdsetup-84 connect r84 ipv4:10.99.0.1:7000 ipv4:10.99.0.2:7000"),
            "{connect}"
        );
        for opt in [
            "--protocol=C",
            "--cram-hmac-alg=sha1",
            "--max-buffers=10000",
        ] {
            assert!(connect.contains(opt), "{connect}");
        }
        assert!(lines
            .iter()
            .any(|l| l.starts_with("drbdmeta 1000 v08 /dev/loop20 internal apply-al")));
    }

    #[test]
    fn a_third_host_is_refused() {
        let mut r = pair(false);
        r.hosts.push(host("gamma", 2, "10.99.0.3", 7000, true));
        let err = render84(&r, &alpha()).unwrap_err();
        assert!(err.to_string().contains("two hosts"), "{err}");
    }
}
