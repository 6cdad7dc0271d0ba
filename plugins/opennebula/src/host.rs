//! Commands on OpenNebula's hosts, reached the way its drivers reach them: `$SSH` (ssh by
//! default) running bash with the script on stdin.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

/// `$SSH` split into the program and its options.
fn ssh() -> Vec<String> {
    let s = std::env::var("SSH").unwrap_or_default();
    let words = shell_words::split(&s).unwrap_or_default();
    if words.is_empty() {
        vec!["ssh".into()]
    } else {
        words
    }
}

/// A program's error output as one line (what oned stores as the error).
pub fn one_line(stderr: &[u8]) -> String {
    String::from_utf8_lossy(stderr).trim().replace('\n', "; ")
}

/// A word safe inside a shell script.
pub fn quote(s: &str) -> String {
    shell_words::quote(s).into_owned()
}

/// Runs `script` on `host`; its stdout, or an error with its stderr.
pub fn run(host: &str, script: &str) -> Result<String, String> {
    let ssh = ssh();
    let mut child = Command::new(&ssh[0])
        .args(&ssh[1..])
        .args([host, "bash", "-s"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", ssh[0]))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(format!("set -e\n{script}\n").as_bytes())
            .map_err(|e| format!("{host}: cannot send the script: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{host}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("on {host}: {}", one_line(&out.stderr)))
    }
}

/// Streams what `source` writes to stdout into `command` on `host` (its stdin), and
/// returns the first bytes seen (to tell what kind of data it was).
pub fn pipe(
    source: &mut Command,
    host: &str,
    command: &str,
    head: usize,
) -> Result<Vec<u8>, String> {
    let ssh = ssh();
    let mut src = source
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the download: {e}"))?;
    let mut dst = Command::new(&ssh[0])
        .args(&ssh[1..])
        .args([host, command])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", ssh[0]))?;
    let mut seen = Vec::new();
    let copied = (|| -> Result<(), String> {
        let mut from = src.stdout.take().ok_or("no download stream")?;
        let mut to = dst.stdin.take().ok_or("no stream to the host")?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = from
                .read(&mut buf)
                .map_err(|e| format!("reading the download: {e}"))?;
            if n == 0 {
                return Ok(());
            }
            if seen.len() < head {
                let take = (head - seen.len()).min(n);
                seen.extend_from_slice(&buf[..take]);
            }
            to.write_all(&buf[..n])
                .map_err(|e| format!("writing to {host}: {e}"))?;
        }
    })();
    let src_out = src.wait_with_output().map_err(|e| e.to_string())?;
    let dst_out = dst.wait_with_output().map_err(|e| e.to_string())?;
    copied?;
    if !src_out.status.success() {
        return Err(format!(
            "the download failed: {}",
            one_line(&src_out.stderr)
        ));
    }
    if !dst_out.status.success() {
        return Err(format!(
            "writing on {host} failed: {}",
            one_line(&dst_out.stderr)
        ));
    }
    Ok(seen)
}

/// The script that points `path` (a VM directory's `disk.N`) at the volume's device: the
/// stable `/dev/drbd/by-res/<res>/0` where drbd-utils' udev rules made it, else `device`.
pub fn link_script(path: &str, resource: &str, device: &str) -> String {
    let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or(".");
    let stable = format!("/dev/drbd/by-res/{resource}/0");
    format!(
        "mkdir -p {dir}\ndev={device}\nif [ -e {stable} ]; then dev={stable}; fi\nln -sfn \"$dev\" {path}\n",
        dir = quote(dir),
        device = quote(device),
        stable = quote(&stable),
        path = quote(path),
    )
}

/// The script that removes the link `path` (and nothing that is not a link).
pub fn unlink_script(path: &str) -> String {
    let p = quote(path);
    format!("if [ -L {p} ]; then rm -f {p}; fi\n")
}
