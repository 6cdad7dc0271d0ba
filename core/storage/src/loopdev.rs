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

pub fn list(runner: &dyn CommandRunner) -> Result<BTreeMap<String, String>, StorageError> {
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
    fn parses_list() {
        let m = parse_list(CAPTURED);
        assert_eq!(m.len(), 2);
        assert_eq!(m["/var/lib/pool/res_a_00000.img"], "/dev/loop2");
        assert_eq!(m["/tmp/sp ace/a.img"], "/dev/loop0");
        assert!(parse_list("").is_empty());
    }
}
