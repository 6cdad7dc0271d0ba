//! A resource of `/v1/view/resources` written straight as JSON.
//!
//! [`convert::resource_with_volumes`](crate::convert::resource_with_volumes) builds the typed
//! view, which is what clients read and what this module must write; a listing of 100,000
//! resources spent most of its second building, cloning and dropping those values and
//! escaping their field names. Here the fixed parts (keys, brackets, constants) are copied as
//! bytes and only the values are formatted. The tests hold both to the same bytes, in every
//! state a resource can be shown in.

use strata_model::drbd_state::{ConnectionState, DiskState};
use strata_model::objects as m;
use strata_model::observed::{DrbdObserved, DrbdVolumeObserved, ResourceState as ObservedRsc};
use strata_model::{LayerKind, ProviderKind, StorPoolName};

use crate::convert::DrbdSeen;

/// The bytes a JSON string cannot hold as they are.
const fn escaped_bytes() -> [bool; 256] {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = true;
        b += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
}

static ESCAPED: [bool; 256] = escaped_bytes();

/// Appends `s` as a JSON string, escaped as serde_json escapes it.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    // Names, paths and ids need no escapes: one copy.
    if !bytes.iter().any(|&b| ESCAPED[b as usize]) {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => {
                out.extend_from_slice(&bytes[start..i]);
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 0xf) as usize]);
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escape);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

fn write_int(out: &mut Vec<u8>, n: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn write_bool(out: &mut Vec<u8>, b: bool) {
    out.extend_from_slice(if b { b"true" } else { b"false" });
}

/// `,"key":` followed by the value, when there is one (an absent optional field is left out).
fn opt_str(out: &mut Vec<u8>, key: &[u8], v: Option<&str>) {
    if let Some(v) = v {
        out.extend_from_slice(key);
        write_str(out, v);
    }
}

fn opt_int(out: &mut Vec<u8>, key: &[u8], v: Option<i64>) {
    if let Some(v) = v {
        out.extend_from_slice(key);
        write_int(out, v);
    }
}

fn write_props(out: &mut Vec<u8>, props: &strata_model::props::Props) {
    out.push(b'{');
    for (i, (k, v)) in props.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, k);
        out.push(b':');
        write_str(out, v);
    }
    out.push(b'}');
}

fn write_strs<'a>(out: &mut Vec<u8>, items: impl Iterator<Item = &'a str>) {
    out.push(b'[');
    for (i, s) in items.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, s);
    }
    out.push(b']');
}

/// Values serde writes better than this module (floats, error reports): rare in a listing.
fn write_serde<T: serde::Serialize>(out: &mut Vec<u8>, v: &T) {
    serde_json::to_writer(out, v).expect("a view value always serialises");
}

/// One volume's sizes and states, shared by its volume, storage and DRBD objects.
struct VolumeFacts<'a> {
    number: i64,
    /// What the node reported of the volume, when it did: its paths, sizes, state and error.
    reported: bool,
    device: Option<&'a str>,
    backing: Option<&'a str>,
    allocated: Option<i64>,
    usable: Option<i64>,
    storage_state: Option<&'a str>,
    disk_state: Option<&'a str>,
    drbd: Option<&'a DrbdVolumeObserved>,
    error: Option<&'a str>,
}

/// Appends resource `r` of definition `rd` joined with its node's report, exactly as
/// `serde_json` writes [`convert::resource_with_volumes`](crate::convert::resource_with_volumes)
/// for the same arguments.
pub fn write_resource(
    out: &mut Vec<u8>,
    r: &m::Resource,
    rd: &m::ResourceDefinition,
    observed: Option<&ObservedRsc>,
    seen: DrbdSeen<'_>,
    pool_kind: &dyn Fn(&StorPoolName) -> Option<ProviderKind>,
) {
    let drbd = rd.layer_stack.contains(&LayerKind::Drbd);
    let (watched, drbd_obs) = seen.standing_for(rd);
    let diskless = r.is_diskless();
    let facts: Vec<VolumeFacts<'_>> = r
        .volumes
        .values()
        .map(|v| {
            let obs = observed.and_then(|o| o.volumes.iter().find(|x| x.volume_number == v.number));
            let storage_state = obs.map(|o| o.disk_state.as_str()).filter(|s| !s.is_empty());
            let dv = drbd_obs.and_then(|d| d.volumes.get(&v.number));
            VolumeFacts {
                number: i64::from(v.number as i32),
                reported: obs.is_some(),
                device: obs.and_then(|o| o.device_path.as_deref()),
                backing: obs.and_then(|o| o.backing_path.as_deref()),
                allocated: obs.and_then(|o| o.allocated_kib).map(|k| k as i64),
                usable: obs.and_then(|o| o.usable_kib).map(|k| k as i64),
                storage_state,
                disk_state: if watched {
                    dv.and_then(|d| d.disk_state.as_ref())
                        .map(DiskState::as_str)
                } else {
                    storage_state
                },
                drbd: dv,
                error: obs.and_then(|o| o.error.as_deref()),
            }
        })
        .collect();

    out.extend_from_slice(b"{\"name\":");
    write_str(out, r.name.as_str());
    out.extend_from_slice(b",\"node_name\":");
    write_str(out, r.node.as_str());
    out.extend_from_slice(b",\"props\":");
    write_props(out, &r.props);
    out.extend_from_slice(b",\"flags\":");
    write_strs(out, r.flags.names());
    out.extend_from_slice(b",\"layer_object\":");
    if drbd {
        out.extend_from_slice(b"{\"children\":[");
        write_storage_layer(out, &facts, diskless);
        out.extend_from_slice(b"],\"resource_name_suffix\":\"\",\"type\":\"DRBD\",\"drbd\":");
        write_drbd_resource(out, r, rd, &facts, drbd_obs);
        out.push(b'}');
    } else {
        write_storage_layer(out, &facts, diskless);
    }
    let in_use = if watched {
        drbd_obs
            .map(DrbdObserved::in_use)
            .or_else(|| observed.map(|_| None))
    } else {
        observed.map(|o| o.in_use)
    };
    if let Some(in_use) = in_use {
        out.extend_from_slice(b",\"state\":{");
        if let Some(u) = in_use {
            out.extend_from_slice(b"\"in_use\":");
            write_bool(out, u);
        }
        out.push(b'}');
    }
    out.extend_from_slice(b",\"uuid\":");
    write_str(out, &r.uuid);
    out.extend_from_slice(b",\"create_timestamp\":");
    write_int(out, r.create_timestamp);
    out.extend_from_slice(b",\"volumes\":[");
    for (i, (v, f)) in r.volumes.values().zip(&facts).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_volume(out, v, f, rd, drbd, diskless, pool_kind);
    }
    out.extend_from_slice(b"]}");
}

/// The STORAGE layer object of a resource.
fn write_storage_layer(out: &mut Vec<u8>, facts: &[VolumeFacts<'_>], diskless: bool) {
    out.extend_from_slice(
        b"{\"children\":[],\"resource_name_suffix\":\"\",\"type\":\"STORAGE\",\"storage\":{\"storage_volumes\":[",
    );
    for (i, f) in facts.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_storage_volume(out, f, diskless);
    }
    out.extend_from_slice(b"]}}");
}

fn write_storage_volume(out: &mut Vec<u8>, f: &VolumeFacts<'_>, diskless: bool) {
    out.extend_from_slice(b"{\"volume_number\":");
    write_int(out, f.number);
    opt_str(
        out,
        b",\"device_path\":",
        if diskless { None } else { f.device },
    );
    opt_int(out, b",\"allocated_size_kib\":", f.allocated);
    opt_int(out, b",\"usable_size_kib\":", f.usable);
    opt_str(out, b",\"disk_state\":", f.storage_state);
    out.push(b'}');
}

fn write_drbd_volume(out: &mut Vec<u8>, f: &VolumeFacts<'_>, rd: &m::ResourceDefinition) {
    out.extend_from_slice(
        b"{\"drbd_volume_definition\":{\"resource_name_suffix\":\"\",\"volume_number\":",
    );
    write_int(out, f.number);
    let minor = rd
        .volume_definitions
        .get(&(f.number as u32))
        .and_then(|vd| vd.minor);
    opt_int(
        out,
        b",\"minor_number\":",
        minor.map(|m| i64::from(m as i32)),
    );
    out.push(b'}');
    opt_str(out, b",\"device_path\":", f.device);
    opt_str(out, b",\"backing_device\":", f.backing);
    out.extend_from_slice(b",\"meta_disk\":\"internal\"");
    opt_int(out, b",\"allocated_size_kib\":", f.allocated);
    opt_int(out, b",\"usable_size_kib\":", f.usable);
    opt_str(out, b",\"disk_state\":", f.disk_state);
    out.push(b'}');
}

fn write_drbd_resource(
    out: &mut Vec<u8>,
    r: &m::Resource,
    rd: &m::ResourceDefinition,
    facts: &[VolumeFacts<'_>],
    drbd_obs: Option<&DrbdObserved>,
) {
    out.extend_from_slice(b"{\"drbd_resource_definition\":{\"resource_name_suffix\":\"\"");
    opt_int(
        out,
        b",\"peer_slots\":",
        rd.drbd_peer_slots.map(|p| i64::from(p as i32)),
    );
    out.extend_from_slice(b",\"al_stripes\":1,\"al_stripe_size_kib\":32");
    opt_int(out, b",\"port\":", rd.drbd_port.map(i64::from));
    opt_str(out, b",\"transport_type\":", rd.drbd_transport.as_deref());
    opt_str(out, b",\"secret\":", rd.drbd_secret.as_deref());
    out.extend_from_slice(b",\"down\":false}");
    opt_int(
        out,
        b",\"node_id\":",
        r.node_id.map(|n| i64::from(n as i32)),
    );
    if let Some(port) = r.tcp_port {
        out.extend_from_slice(b",\"tcp_ports\":[");
        write_int(out, i64::from(port));
        out.push(b']');
    }
    opt_int(
        out,
        b",\"peer_slots\":",
        r.peer_slots
            .or(rd.drbd_peer_slots)
            .map(|p| i64::from(p as i32)),
    );
    out.extend_from_slice(b",\"al_stripes\":1,\"al_size\":32,\"flags\":[],\"drbd_volumes\":[");
    for (i, f) in facts.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_drbd_volume(out, f, rd);
    }
    out.extend_from_slice(b"],\"connections\":{");
    if let Some(d) = drbd_obs {
        for (i, (peer, state)) in d.connections.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_str(out, peer);
            out.extend_from_slice(b":{\"connected\":");
            write_bool(out, *state == ConnectionState::Connected);
            out.extend_from_slice(b",\"message\":");
            write_str(out, state.as_str());
            out.push(b'}');
        }
    }
    out.push(b'}');
    if let Some(d) = drbd_obs {
        opt_int(
            out,
            b",\"promotion_score\":",
            d.promotion_score.map(|p| p.min(i32::MAX as u64) as i64),
        );
        if let Some(m) = d.may_promote {
            out.extend_from_slice(b",\"may_promote\":");
            write_bool(out, m);
        }
    }
    out.push(b'}');
}

fn write_volume(
    out: &mut Vec<u8>,
    v: &m::Volume,
    f: &VolumeFacts<'_>,
    rd: &m::ResourceDefinition,
    drbd: bool,
    diskless: bool,
    pool_kind: &dyn Fn(&StorPoolName) -> Option<ProviderKind>,
) {
    let kind = pool_kind(&v.storage_pool).unwrap_or(ProviderKind::Diskless);
    out.extend_from_slice(b"{\"volume_number\":");
    write_int(out, f.number);
    out.extend_from_slice(b",\"storage_pool_name\":");
    write_str(out, v.storage_pool.as_str());
    out.extend_from_slice(b",\"provider_kind\":");
    write_str(out, kind.as_str());
    opt_str(out, b",\"device_path\":", f.device);
    opt_int(out, b",\"allocated_size_kib\":", f.allocated);
    opt_int(out, b",\"usable_size_kib\":", f.usable);
    out.extend_from_slice(b",\"props\":");
    write_props(out, &v.props);
    out.extend_from_slice(b",\"flags\":");
    write_strs(out, v.flags.names());
    if f.reported || f.drbd.is_some() {
        out.extend_from_slice(b",\"state\":{");
        let mut first = true;
        if let Some(s) = f.disk_state {
            out.extend_from_slice(b"\"disk_state\":");
            write_str(out, s);
            first = false;
        }
        if let Some(dv) = f.drbd.filter(|dv| !dv.peers.is_empty()) {
            if !first {
                out.push(b',');
            }
            out.extend_from_slice(b"\"replication_states\":{");
            for (i, (peer, p)) in dv.peers.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, peer);
                out.extend_from_slice(b":{\"replication_state\":");
                write_str(out, p.replication.as_str());
                if let Some(done) = p.done {
                    out.extend_from_slice(b",\"done_percentage\":");
                    write_serde(out, &done);
                }
                out.push(b'}');
            }
            out.push(b'}');
        }
        out.push(b'}');
    }
    out.extend_from_slice(b",\"layer_data_list\":[");
    if drbd {
        out.extend_from_slice(b"{\"type\":\"DRBD\",\"data\":");
        write_drbd_volume(out, f, rd);
        out.extend_from_slice(b"},");
    }
    out.extend_from_slice(b"{\"type\":\"STORAGE\",\"data\":");
    write_storage_volume(out, f, diskless);
    out.extend_from_slice(b"}],\"uuid\":");
    write_str(out, &v.uuid);
    out.extend_from_slice(b",\"reports\":");
    match f.error {
        None => out.extend_from_slice(b"[]"),
        Some(e) => write_serde(out, &[crate::convert::volume_error_report(e)]),
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::resource_with_volumes;
    use serde_json::json;
    use strata_model::flags::Flag;

    fn rd(layers: &[&str]) -> m::ResourceDefinition {
        serde_json::from_value(json!({
            "delete_generation": null, "drbd_peer_slots": null, "drbd_port": null,
            "drbd_secret": "CPTin4P6p9cwWazNY45a", "drbd_transport": null, "external_name": null,
            "flags": [], "layer_stack": layers, "name": "rsc00001", "props": {},
            "resource_group": "rg1", "uuid": "b64bae23-1626-45b8-b1ac-1c8710fc9879",
            "volume_definitions": {
                "0": {"delete_generation": null, "flags": [], "minor": 1000, "number": 0,
                      "props": {}, "size_kib": 1048576, "uuid": "2bc40b63"},
                "1": {"delete_generation": null, "flags": [], "minor": null, "number": 1,
                      "props": {}, "size_kib": 2048, "uuid": "2bc40b64"}}
        }))
        .expect("definition")
    }

    fn rsc() -> m::Resource {
        serde_json::from_value(json!({
            "create_timestamp": 1796617349448i64, "delete_generation": null, "flags": [],
            "name": "rsc00001", "node": "sim000", "node_id": 0, "peer_slots": 7,
            "props": {"StorPoolName": "pool1"}, "tcp_port": 7000,
            "uuid": "dd4fa9da-f851-41a0-b94c-0dd0de5080a2",
            "volumes": {
                "0": {"flags": [], "number": 0, "props": {}, "storage_pool": "pool1", "uuid": "70ba"},
                "1": {"flags": ["RESIZE"], "number": 1, "props": {"a": "b"},
                      "storage_pool": "pool2", "uuid": "70bb"}}
        }))
        .expect("resource")
    }

    fn observed() -> ObservedRsc {
        serde_json::from_value(json!({
            "name": "rsc00001", "in_use": false, "error": null,
            "volumes": [
                {"volume_number": 0, "device_path": "/dev/drbd1000", "backing_path": "/dev/vg/rsc00001_00000",
                 "allocated_kib": 0, "usable_kib": 1048840, "disk_state": "UpToDate", "error": null},
                {"volume_number": 1, "device_path": null, "backing_path": null,
                 "allocated_kib": null, "usable_kib": null, "disk_state": "", "error": "lvcreate: \"no space\"\n"}]
        }))
        .expect("observed")
    }

    fn drbd() -> DrbdObserved {
        serde_json::from_value(json!({
            "name": "rsc00001", "role": "Primary", "may_promote": false, "promotion_score": 10102,
            "connections": {"sim001": "Connected", "sim002": "Connecting"},
            "volumes": {"0": {"disk_state": "UpToDate",
                              "peers": {"sim001": {"replication": "SyncSource", "done": 42.5},
                                        "sim002": {"replication": "Off"}}},
                        "1": {"disk_state": "Inconsistent"}}
        }))
        .expect("drbd")
    }

    /// Writes with both the typed view and this module and requires the same bytes.
    fn same(
        r: &m::Resource,
        rd: &m::ResourceDefinition,
        obs: Option<&ObservedRsc>,
        seen: DrbdSeen<'_>,
    ) -> String {
        let kind = |p: &StorPoolName| (p.as_str() == "pool1").then_some(ProviderKind::LvmThin);
        let typed =
            serde_json::to_string(&resource_with_volumes(r, rd, obs, seen, &kind)).expect("typed");
        let mut fast = Vec::new();
        write_resource(&mut fast, r, rd, obs, seen, &kind);
        let fast = String::from_utf8(fast).expect("utf-8");
        assert_eq!(fast, typed);
        // And clients read it as the typed view.
        let back: crate::types::ResourceWithVolumes =
            serde_json::from_str(&fast).expect("reads back");
        assert_eq!(back.volumes.len(), r.volumes.len());
        fast
    }

    #[test]
    fn every_state_is_written_as_the_typed_view() {
        let (obs, d) = (observed(), drbd());
        let drbd_rd = rd(&["DRBD", "STORAGE"]);
        let storage_rd = rd(&["STORAGE"]);
        let r = rsc();
        for def in [&drbd_rd, &storage_rd] {
            for o in [Some(&obs), None] {
                for seen in [DrbdSeen::NotWatched, DrbdSeen::Missing, DrbdSeen::Seen(&d)] {
                    same(&r, def, o, seen);
                }
            }
        }
        let text = same(&r, &drbd_rd, Some(&obs), DrbdSeen::Seen(&d));
        for part in [
            r#""replication_states":{"sim001":{"replication_state":"SyncSource","done_percentage":42.5}"#,
            r#""connections":{"sim001":{"connected":true,"message":"Connected"}"#,
            r#""promotion_score":10102,"may_promote":false"#,
            r#""state":{"in_use":true}"#,
            r#""backing_device":"/dev/vg/rsc00001_00000""#,
        ] {
            assert!(text.contains(part), "{part} missing in {text}");
        }
        assert!(text.contains(r#"lvcreate: \"no space\"\n"#), "{text}");
    }

    #[test]
    fn odd_values_are_escaped_and_absent_ones_left_out() {
        let mut def = rd(&["DRBD", "STORAGE"]);
        def.drbd_peer_slots = Some(5);
        def.drbd_port = Some(7001);
        def.drbd_transport = Some("tcp".into());
        def.drbd_secret = None;
        let mut r = rsc();
        r.node_id = None;
        r.tcp_port = None;
        r.peer_slots = None;
        r.flags.insert(Flag::Diskless);
        r.flags.insert(Flag::DrbdDiskless);
        r.props.insert(
            "Aux/\"quoted\"".into(),
            "back\\slash\ttab\u{1}\u{1f}\u{7f} naïve ✓".into(),
        );
        for seen in [DrbdSeen::NotWatched, DrbdSeen::Seen(&drbd())] {
            same(&r, &def, Some(&observed()), seen);
        }
        let text = same(&r, &def, None, DrbdSeen::NotWatched);
        assert!(!text.contains("tcp_ports"), "{text}");
        assert!(text.contains(r#"\u0001\u001f"#), "{text}");
    }

    #[test]
    fn strings_are_escaped_as_serde_json_does() {
        let mut all: String = (0u8..=0x7f).map(char::from).collect();
        all.push_str("é€𝄞\u{2028}");
        for s in [all.as_str(), "", "plain", "\"", "\\", "a\u{0}b"] {
            let mut out = Vec::new();
            write_str(&mut out, s);
            assert_eq!(
                String::from_utf8(out).expect("utf-8"),
                serde_json::to_string(s).expect("json")
            );
        }
    }
}
