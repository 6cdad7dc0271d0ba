//! Loop devices through `losetup`: listing (parsed as a pure function), attaching, detaching,
//! and refreshing the size after a file grew.

use std::collections::BTreeMap;

use strata_exec::{Cmd, CommandRunner};

use crate::StorageError;

/// Parses `losetup --list --noheadings --raw --output NAME,BACK-FILE` into back file -> device.
/// A back file that was deleted while attached shows as `<path> (deleted)` and is skipped.
pub fn parse_list(out: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for line in out.lines() {
        let line = line.trim_end();
        let Some((dev, file)) = line.split_once(' ') else {
            continue;
        };
        // `--raw` escapes spaces and other odd bytes as \xHH.
        let file = unescape_raw(file.trim());
        if file.is_empty() || file.ends_with(" (deleted)") {
            continue;
        }
        map.insert(file, dev.to_string());
    }
    map
}

fn unescape_raw(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() && bytes[i + 1] == b'x' {
            if let Ok(b) = u8::from_str_radix(&s[i + 2..i + 4], 16) {
                out.push(b);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads back file -> device from sysfs (`/sys/block/loopN/loop/backing_file`), which costs
/// no process; `None` when sysfs does not show loop devices. With `only`, just those device
/// names are looked at instead of every loop device the kernel has.
pub fn list_sysfs(
    sys_block: &std::path::Path,
    only: Option<&[String]>,
) -> Option<BTreeMap<String, String>> {
    let names: Vec<String> = match only {
        Some(names) => {
            if !sys_block.is_dir() {
                return None;
            }
            names.to_vec()
        }
        None => std::fs::read_dir(sys_block)
            .ok()?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
    };
    let mut map = BTreeMap::new();
    for name in names.into_iter().filter(|n| n.starts_with("loop")) {
        let Ok(file) = std::fs::read_to_string(sys_block.join(&name).join("loop/backing_file"))
        else {
            continue;
        };
        let file = file.trim_end_matches('\n');
        if file.is_empty() || file.ends_with(" (deleted)") {
            continue;
        }
        map.insert(file.to_string(), format!("/dev/{name}"));
    }
    Some(map)
}

/// The loop devices that have a size, from `/proc/partitions` (the kernel leaves devices
/// without capacity out of it, and a free loop device has none). A machine keeps many free
/// loop devices around; this spares a look at each of them.
pub fn parse_partitions(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split_whitespace().nth(3))
        .filter(|n| n.starts_with("loop"))
        .map(str::to_string)
        .collect()
}

/// Back file -> device of every attached loop device, from sysfs below `sys_block` when it
/// shows loop devices, else from `losetup`. `quick` looks only at devices with a size (see
/// [`parse_partitions`]), which misses a device attached to an empty file.
pub fn list(
    runner: &dyn CommandRunner,
    sys_block: &std::path::Path,
    quick: bool,
) -> Result<BTreeMap<String, String>, StorageError> {
    let sized = quick
        .then(|| std::fs::read_to_string("/proc/partitions").ok())
        .flatten()
        .map(|t| parse_partitions(&t));
    if let Some(map) = list_sysfs(sys_block, sized.as_deref()) {
        return Ok(map);
    }
    list_losetup(runner)
}

pub fn list_losetup(runner: &dyn CommandRunner) -> Result<BTreeMap<String, String>, StorageError> {
    let out = runner.run(
        &Cmd::new("losetup")
            .arg("--list")
            .arg("--noheadings")
            .arg("--raw")
            .arg("--output")
            .arg("NAME,BACK-FILE"),
    )?;
    Ok(parse_list(&out.stdout))
}

pub fn attach(runner: &dyn CommandRunner, file: &str) -> Result<String, StorageError> {
    let out = runner.run(&Cmd::new("losetup").arg("--find").arg("--show").arg(file))?;
    let dev = out.stdout.trim().to_string();
    if !dev.starts_with("/dev/") {
        return Err(StorageError::Parse {
            tool: "losetup --find --show".into(),
            reason: format!("expected a device path, got '{dev}'"),
        });
    }
    Ok(dev)
}

pub fn detach(runner: &dyn CommandRunner, dev: &str) -> Result<(), StorageError> {
    runner.run(&Cmd::new("losetup").arg("--detach").arg(dev))?;
    Ok(())
}

/// Makes the loop device pick up the new size of its file.
pub fn refresh_size(runner: &dyn CommandRunner, dev: &str) -> Result<(), StorageError> {
    runner.run(&Cmd::new("losetup").arg("--set-capacity").arg(dev))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from `losetup --list --noheadings --raw --output NAME,BACK-FILE` (util-linux
    // 2.38.1): a file in a directory with a space, and one deleted while attached.
    const CAPTURED: &str = "/dev/loop1 /tmp/b.img\\x20(deleted)\n\
/dev/loop0 /tmp/sp\\x20ace/a.img\n\
/dev/loop2 /var/lib/pool/res_a_00000.img\n";

    #[test]
    fn reads_sysfs() {
        let dir = tempfile::tempdir().unwrap();
        let mk = |n: &str, file: &str| {
            let d = dir.path().join(n).join("loop");
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("backing_file"), format!("{file}\n")).unwrap();
        };
        mk("loop0", "/var/lib/pool/a_00000.img");
        mk("loop3", "/tmp/gone.img (deleted)");
        std::fs::create_dir_all(dir.path().join("loop5")).unwrap(); // not attached
        std::fs::create_dir_all(dir.path().join("sda")).unwrap();
        mk("loop7", "/var/lib/pool/b_00000.img");
        let m = list_sysfs(dir.path(), None).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m["/var/lib/pool/a_00000.img"], "/dev/loop0");
        assert_eq!(m["/var/lib/pool/b_00000.img"], "/dev/loop7");
        // Restricted to the named devices, the others are not looked at.
        let only = vec!["loop7".to_string(), "loop5".to_string(), "sda".to_string()];
        let m = list_sysfs(dir.path(), Some(&only)).unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(m["/var/lib/pool/b_00000.img"], "/dev/loop7");
        assert!(list_sysfs(&dir.path().join("nope"), None).is_none());
        assert!(list_sysfs(&dir.path().join("nope"), Some(&only)).is_none());
    }

    #[test]
    fn sized_loop_devices_from_proc_partitions() {
        // Shape of /proc/partitions on Linux 6.x.
        let text = "major minor  #blocks  name\n\n 254        0  268435456 vda\n   7        0      65536 loop0\n   7        3       8192 loop3\n 259        0  1000 nvme0n1\n";
        assert_eq!(parse_partitions(text), vec!["loop0", "loop3"]);
        assert!(parse_partitions("").is_empty());
    }

    #[test]
    fn parses_list() {
        let m = parse_list(CAPTURED);
        assert_eq!(m.len(), 2);
        assert_eq!(m["/var/lib/pool/res_a_00000.img"], "/dev/loop2");
        assert_eq!(m["/tmp/sp ace/a.img"], "/dev/loop0");
        assert!(parse_list("").is_empty());
    }
}
