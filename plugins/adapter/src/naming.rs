//! Names of hypervisor disks and the resource definitions behind them.
//!
//! Proxmox names a VM's disks `vm-<vmid>-disk-<n>`, a template's `base-<vmid>-disk-<n>`, saved
//! RAM `vm-<vmid>-state-<snapshot>`, and a linked clone `base-<b>-disk-<n>/vm-<vmid>-disk-<m>`
//! (the base's name first, so that Proxmox itself refuses to free a base with clones). The
//! resource definition is the last part; the whole volume name is kept in a property of it.

use strata_model::ResourceName;

/// A disk name as Proxmox writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PveDisk {
    /// The whole volume name (`base-1-disk-0/vm-2-disk-0` for a linked clone).
    pub volname: String,
    /// The resource definition: the last part.
    pub name: String,
    /// The VM (or container) owning the disk.
    pub vmid: u32,
    /// `base-...`: a template's disk.
    pub is_base: bool,
    /// For a linked clone: the base volume's name and VM id.
    pub base: Option<(String, u32)>,
}

fn owner(part: &str) -> Option<(bool, u32)> {
    let (kind, rest) = part.split_once('-')?;
    let is_base = match kind {
        "vm" => false,
        "base" => true,
        _ => return None,
    };
    let (id, tail) = rest.split_once('-')?;
    if tail.is_empty() || id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((is_base, id.parse().ok()?))
}

/// Whether `name` can be a resource definition's name (LINSTOR's rules).
pub fn valid_resource_name(name: &str) -> bool {
    name.parse::<ResourceName>().is_ok()
}

/// A disk LINBIT's Proxmox plugin made: `pm-<8 hex digits>_<vmid>`, the volume name and the
/// resource definition's name alike.
fn linbit_disk(volname: &str) -> Option<PveDisk> {
    let rest = volname.strip_prefix("pm-")?;
    let (hex, vmid) = rest.split_once('_')?;
    if hex.len() != 8 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    if vmid.is_empty() || !vmid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(PveDisk {
        volname: volname.to_string(),
        name: volname.to_string(),
        vmid: vmid.parse().ok()?,
        is_base: false,
        base: None,
    })
}

/// Parses a Proxmox volume name of this storage (also the `pm-xxxxxxxx_<vmid>` disks of
/// LINBIT's plugin, which are used as they are).
pub fn parse_pve(volname: &str) -> Result<PveDisk, String> {
    if let Some(d) = linbit_disk(volname) {
        return Ok(d);
    }
    let bad = || {
        format!(
            "'{volname}' is not a disk name of this storage (vm-<vmid>-disk-<n>, base-<vmid>-disk-<n>, vm-<vmid>-state-<name>, or base-<vmid>-disk-<n>/vm-<vmid>-disk-<m>)"
        )
    };
    let (base, name) = match volname.split_once('/') {
        Some((b, n)) => (Some(b), n),
        None => (None, volname),
    };
    let (is_base, vmid) = owner(name).ok_or_else(bad)?;
    if !valid_resource_name(name) {
        return Err(format!(
            "'{name}' cannot be a resource name: it must start with a letter, hold only letters, digits, '_' and '-', and be at most 48 characters"
        ));
    }
    let base = match base {
        Some(b) => {
            let (b_is_base, b_vmid) = owner(b).ok_or_else(bad)?;
            if !b_is_base || is_base {
                return Err(bad());
            }
            Some((b.to_string(), b_vmid))
        }
        None => None,
    };
    Ok(PveDisk {
        volname: volname.to_string(),
        name: name.to_string(),
        vmid,
        is_base,
        base,
    })
}

/// The first `vm-<vmid>-disk-<n>` not among `taken` (resource definition names, compared
/// without regard to case, as LINSTOR compares them).
pub fn free_disk_name<'a>(vmid: u32, taken: impl IntoIterator<Item = &'a str>) -> String {
    let taken: std::collections::HashSet<String> =
        taken.into_iter().map(str::to_ascii_lowercase).collect();
    (0..)
        .map(|n| format!("vm-{vmid}-disk-{n}"))
        .find(|n| !taken.contains(n))
        .expect("some number is free")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxmox_names() {
        let d = parse_pve("vm-100-disk-0").unwrap();
        assert_eq!(
            (d.name.as_str(), d.vmid, d.is_base, d.base),
            ("vm-100-disk-0", 100, false, None)
        );
        let b = parse_pve("base-7-disk-1").unwrap();
        assert!(b.is_base);
        let c = parse_pve("base-7-disk-1/vm-8-disk-0").unwrap();
        assert_eq!(c.name, "vm-8-disk-0");
        assert_eq!(c.base, Some(("base-7-disk-1".to_string(), 7)));
        assert_eq!(parse_pve("vm-9-state-snap1").unwrap().vmid, 9);
        let l = parse_pve("pm-12cf1f63_101").unwrap();
        assert_eq!((l.name.as_str(), l.vmid), ("pm-12cf1f63_101", 101));
        assert!(parse_pve("pm-12cf1f6_101").is_err());
        assert!(parse_pve("pm-12cf1f6x_101").is_err());
        for bad in [
            "",
            "vm-x-disk-0",
            "vm--disk-0",
            "vm-1",
            "ct-1-disk-0",
            "vm-1-disk-0/vm-2-disk-0",
            "base-1-disk-0/base-2-disk-0",
            "vm-1-disk.0",
            "vm-1-disk-0-with-a-name-that-is-far-too-long-to-be-a-name",
        ] {
            assert!(parse_pve(bad).is_err(), "{bad}");
        }
        assert_eq!(
            free_disk_name(5, ["vm-5-disk-0", "VM-5-DISK-1", "vm-6-disk-2"]),
            "vm-5-disk-2"
        );
        assert_eq!(free_disk_name(5, []), "vm-5-disk-0");
    }
}
