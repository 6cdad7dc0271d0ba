//! The XML documents oned hands to drivers, read with a real XML parser: the datastore
//! action data (`<DS_DRIVER_ACTION_DATA>` with `<IMAGE>` and `<DATASTORE>`), a datastore
//! (`onedatastore show -x`) and a VM (`onevm show -x`, or the migration actions' stdin).

use std::collections::BTreeMap;

use base64::Engine as _;
use roxmltree::{Document, Node};

/// The text of the first child element `name` of `n` ("" when there is none).
fn text(n: Node<'_, '_>, name: &str) -> String {
    child(n, name)
        .and_then(|c| c.text())
        .map(|t| t.trim().to_string())
        .unwrap_or_default()
}

fn child<'a, 'i>(n: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    n.children()
        .find(|c| c.is_element() && c.has_tag_name(name))
}

fn number<T: std::str::FromStr>(n: Node<'_, '_>, name: &str) -> Option<T> {
    text(n, name).parse().ok()
}

/// The element children of `n` with their texts (a TEMPLATE's attributes).
fn attributes(n: Option<Node<'_, '_>>) -> BTreeMap<String, String> {
    n.map(|t| {
        t.children()
            .filter(|c| c.is_element())
            .map(|c| {
                let value = c.text().map(|x| x.trim().to_string()).unwrap_or_default();
                (c.tag_name().name().to_string(), value)
            })
            .collect()
    })
    .unwrap_or_default()
}

/// Decodes what oned passes in base64 (one line; whitespace tolerated).
pub fn decode(b64: &str) -> Result<String, String> {
    let clean: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
    if clean.is_empty() {
        return Err("no action data on stdin (oned passes it there, base64-encoded)".into());
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(clean.as_bytes())
        .map_err(|e| format!("the action data is not base64: {e}"))?;
    String::from_utf8(bytes).map_err(|_| "the action data is not UTF-8 text".into())
}

fn parse(xml: &str) -> Result<Document<'_>, String> {
    Document::parse(xml).map_err(|e| format!("the action data is not well-formed XML: {e}"))
}

/// A datastore as oned describes it.
#[derive(Debug, Clone, Default)]
pub struct Datastore {
    pub id: u32,
    /// `TEMPLATE`: the attributes the administrator set (and those oned adds).
    pub template: BTreeMap<String, String>,
}

impl Datastore {
    fn from_node(n: Node<'_, '_>) -> Result<Datastore, String> {
        Ok(Datastore {
            id: number(n, "ID").ok_or("the DATASTORE has no ID")?,
            template: attributes(child(n, "TEMPLATE")),
        })
    }
}

/// An image as oned describes it to datastore actions.
#[derive(Debug, Clone, Default)]
pub struct Image {
    /// Absent only in the request of `stat`.
    pub id: Option<u32>,
    pub name: String,
    pub source: String,
    pub path: String,
    /// MiB.
    pub size_mb: u64,
    pub format: String,
    pub fs: String,
    /// The snapshot a snap_* action works on.
    pub target_snapshot: Option<u32>,
    /// The ids of the image's snapshots.
    pub snapshots: Vec<u32>,
}

impl Image {
    pub fn id(&self) -> Result<u32, String> {
        self.id.ok_or_else(|| "the IMAGE has no ID".to_string())
    }

    fn from_node(n: Node<'_, '_>) -> Result<Image, String> {
        let snapshots = child(n, "SNAPSHOTS")
            .map(|s| {
                s.children()
                    .filter(|c| c.has_tag_name("SNAPSHOT"))
                    .filter_map(|c| number(c, "ID"))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Image {
            id: number(n, "ID"),
            name: text(n, "NAME"),
            source: text(n, "SOURCE"),
            path: text(n, "PATH"),
            size_mb: number(n, "SIZE").unwrap_or(0),
            format: text(n, "FORMAT"),
            fs: text(n, "FS"),
            target_snapshot: number::<i64>(n, "TARGET_SNAPSHOT")
                .filter(|s| *s >= 0)
                .map(|s| s as u32),
            snapshots,
        })
    }
}

/// `<DS_DRIVER_ACTION_DATA>`: the image (absent for monitor) and the datastore.
#[derive(Debug, Clone)]
pub struct DsAction {
    pub image: Option<Image>,
    pub ds: Datastore,
    /// A system datastore's monitor is to report its VMs' disk sizes too.
    pub monitor_vm_disks: bool,
}

pub fn ds_action(xml: &str) -> Result<DsAction, String> {
    let doc = parse(xml)?;
    let root = doc.root_element();
    if !root.has_tag_name("DS_DRIVER_ACTION_DATA") {
        return Err(format!(
            "expected <DS_DRIVER_ACTION_DATA>, got <{}>",
            root.tag_name().name()
        ));
    }
    let ds = child(root, "DATASTORE").ok_or("the action data has no DATASTORE")?;
    Ok(DsAction {
        image: child(root, "IMAGE").map(Image::from_node).transpose()?,
        ds: Datastore::from_node(ds)?,
        monitor_vm_disks: text(root, "MONITOR_VM_DISKS").trim() == "1",
    })
}

/// `onedatastore show -x`.
pub fn datastore(xml: &str) -> Result<Datastore, String> {
    let doc = parse(xml)?;
    let root = doc.root_element();
    if !root.has_tag_name("DATASTORE") {
        return Err(format!(
            "expected <DATASTORE>, got <{}>",
            root.tag_name().name()
        ));
    }
    Datastore::from_node(root)
}

/// A disk of a VM.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Disk {
    pub id: u32,
    /// The image's SOURCE ("" for a volatile disk).
    pub source: String,
    /// A copy of the image per VM (non-persistent) rather than the image itself.
    pub clone: bool,
    pub tm_mad: String,
    pub image_id: Option<u32>,
    pub datastore_id: Option<u32>,
    /// MiB.
    pub size_mb: Option<u64>,
    /// `fs` or `swap` for a volatile disk.
    pub kind: String,
}

/// A VM as `onevm show -x` prints it.
#[derive(Debug, Clone, Default)]
pub struct Vm {
    pub name: String,
    pub disks: Vec<Disk>,
}

impl Vm {
    pub fn disk(&self, id: u32) -> Option<&Disk> {
        self.disks.iter().find(|d| d.id == id)
    }
}

pub fn vm(xml: &str) -> Result<Vm, String> {
    let doc = parse(xml)?;
    let root = doc.root_element();
    if !root.has_tag_name("VM") {
        return Err(format!("expected <VM>, got <{}>", root.tag_name().name()));
    }
    let disks = child(root, "TEMPLATE")
        .map(|t| {
            t.children()
                .filter(|c| c.has_tag_name("DISK"))
                .filter_map(|d| {
                    Some(Disk {
                        id: number(d, "DISK_ID")?,
                        source: text(d, "SOURCE"),
                        clone: text(d, "CLONE").eq_ignore_ascii_case("YES"),
                        tm_mad: text(d, "TM_MAD"),
                        image_id: number(d, "IMAGE_ID"),
                        datastore_id: number(d, "DATASTORE_ID"),
                        size_mb: number(d, "SIZE"),
                        kind: text(d, "TYPE").to_ascii_lowercase(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Vm {
        name: text(root, "NAME"),
        disks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACTION: &str = r#"<DS_DRIVER_ACTION_DATA><IMAGE><ID>7</ID><NAME>web &amp; db</NAME>
<SOURCE/><PATH>/tmp/x.img</PATH><FORMAT/><FS>ext4</FS><SIZE>64</SIZE>
<TARGET_SNAPSHOT>-1</TARGET_SNAPSHOT><SNAPSHOTS><SNAPSHOT><ID>0</ID></SNAPSHOT>
<SNAPSHOT><ID>2</ID></SNAPSHOT></SNAPSHOTS></IMAGE>
<DATASTORE><ID>1</ID><NAME>lin</NAME><TYPE>0</TYPE><TEMPLATE>
<LINSTOR_RESOURCE_GROUP>OneRscGrp</LINSTOR_RESOURCE_GROUP><BRIDGE_LIST>node1 node2</BRIDGE_LIST>
</TEMPLATE></DATASTORE></DS_DRIVER_ACTION_DATA>"#;

    #[test]
    fn reads_the_action_data() {
        let a = ds_action(ACTION).unwrap();
        let img = a.image.unwrap();
        assert_eq!(img.id(), Ok(7));
        assert_eq!(img.name, "web & db");
        assert_eq!(img.path, "/tmp/x.img");
        assert_eq!(img.size_mb, 64);
        assert_eq!(img.fs, "ext4");
        assert_eq!(img.source, "");
        assert_eq!(img.target_snapshot, None);
        assert_eq!(img.snapshots, [0, 2]);
        assert_eq!(a.ds.id, 1);
        assert_eq!(a.ds.template["LINSTOR_RESOURCE_GROUP"], "OneRscGrp");
        assert_eq!(a.ds.template["BRIDGE_LIST"], "node1 node2");
    }

    #[test]
    fn base64_round_trip_and_refusals() {
        let b64 = base64::engine::general_purpose::STANDARD.encode(ACTION);
        assert_eq!(decode(&format!("{b64}\n")).unwrap(), ACTION);
        assert!(decode("").unwrap_err().contains("stdin"));
        assert!(decode("@@@").unwrap_err().contains("not base64"));
        assert!(ds_action("<IMAGE>")
            .unwrap_err()
            .contains("not well-formed"));
        assert!(ds_action("<VM><ID>1</ID></VM>")
            .unwrap_err()
            .contains("DS_DRIVER_ACTION_DATA"));
        assert!(ds_action("<DS_DRIVER_ACTION_DATA/>")
            .unwrap_err()
            .contains("no DATASTORE"));
    }

    #[test]
    fn reads_a_vm_and_its_disks() {
        let v = vm(r#"<VM><ID>5</ID><NAME>web</NAME><TEMPLATE>
<DISK><CLONE>YES</CLONE><DISK_ID>0</DISK_ID><IMAGE_ID>7</IMAGE_ID><SIZE>1024</SIZE>
<SOURCE>OpenNebula-Image-7</SOURCE><TM_MAD>strata</TM_MAD><TYPE>BLOCK</TYPE></DISK>
<DISK><DISK_ID>1</DISK_ID><SIZE>64</SIZE><TYPE>fs</TYPE></DISK>
<CONTEXT><DISK_ID>2</DISK_ID></CONTEXT></TEMPLATE></VM>"#)
        .unwrap();
        assert_eq!(v.name, "web");
        assert_eq!(v.disks.len(), 2);
        let d0 = v.disk(0).unwrap();
        assert!(d0.clone);
        assert_eq!(d0.source, "OpenNebula-Image-7");
        assert_eq!(d0.image_id, Some(7));
        assert_eq!(d0.size_mb, Some(1024));
        assert_eq!(v.disk(1).unwrap().kind, "fs");
        assert!(v.disk(2).is_none());
    }
}
