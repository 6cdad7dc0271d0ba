//! What the client reads besides its command line, as the upstream client does: the
//! `[global]` section of `linstor-client.conf` (`~/.config/linstor/`, else `/etc/linstor/`),
//! whose `key = value` lines stand for `--key value` options, and the token for the REST API
//! (`--auth-token`, `--auth-token-file`, `LS_AUTH_TOKEN`, the configuration's `auth-token`,
//! then python-linstor's `/var/lib/linstor.d/auth.json`, `{"token": "..."}`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const FILE_NAME: &str = "linstor-client.conf";
/// Where python-linstor (and the Proxmox plugin) read a token.
pub const AUTH_JSON: &str = "/var/lib/linstor.d/auth.json";
/// The environment variable with the token.
pub const TOKEN_ENV: &str = "LS_AUTH_TOKEN";

/// The user's configuration file.
pub fn user_file() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| Path::new(&h).join(".config/linstor").join(FILE_NAME))
}

/// The file read: the user's, else the system's.
pub fn file() -> Option<PathBuf> {
    user_file()
        .filter(|p| p.exists())
        .or_else(|| Some(Path::new("/etc/linstor").join(FILE_NAME)).filter(|p| p.exists()))
}

/// The entries of `section` of an INI text (`key = value` or `key: value`; `#` and `;`
/// start comments); keys are lower-cased.
pub fn section(text: &str, section: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.trim().eq_ignore_ascii_case(section);
            continue;
        }
        if !inside {
            continue;
        }
        let (k, v) = match line.split_once(['=', ':']) {
            Some((k, v)) => (k.trim(), v.trim()),
            None => (line, ""),
        };
        out.insert(k.to_ascii_lowercase(), v.to_string());
    }
    out
}

/// The `[global]` entries of the configuration file, if there is one.
pub fn global() -> BTreeMap<String, String> {
    file()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .map(|t| section(&t, "global"))
        .unwrap_or_default()
}

/// The token of python-linstor's `auth.json`.
pub fn auth_json_token(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("token")?.as_str().map(str::to_string)
}

/// A token kept in a file: its first line.
pub fn token_file(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the token file {}: {e}", path.display()))?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.is_empty() {
        return Err(format!("the token file {} is empty", path.display()));
    }
    Ok(token)
}

/// Sets `key` in the `[global]` section of `text` (added where missing).
pub fn with_global(text: &str, key: &str, value: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let (mut inside, mut done, mut seen_global) = (false, false, false);
    for line in text.lines() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            if inside && !done {
                out.push(format!("{key} = {value}"));
                done = true;
            }
            inside = name.trim().eq_ignore_ascii_case("global");
            seen_global |= inside;
        } else if inside {
            let k = t.split_once(['=', ':']).map_or(t, |(k, _)| k).trim();
            if k.eq_ignore_ascii_case(key) {
                if !done {
                    out.push(format!("{key} = {value}"));
                    done = true;
                }
                continue;
            }
        }
        out.push(line.to_string());
    }
    if !done {
        if !seen_global {
            out.push("[global]".into());
        }
        out.push(format!("{key} = {value}"));
    }
    out.join("\n") + "\n"
}

/// Keeps a token in the user's configuration file (mode 0600), as upstream's
/// `controller auth init` does; answers the file.
pub fn save_token(token: &str) -> Result<PathBuf, String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = user_file().ok_or("HOME is not set")?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let text = with_global(&old, "auth-token", token);
    let tmp = path.with_extension("conf.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|_| f.sync_all())
        .and_then(|_| std::fs::rename(&tmp, &path))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_section() {
        let text = "# c\n[global]\ncontrollers = a,b\nauth-token: s3cret\nallow-insecure-auth\n[other]\ncontrollers = x\n";
        let g = section(text, "global");
        assert_eq!(g["controllers"], "a,b");
        assert_eq!(g["auth-token"], "s3cret");
        assert_eq!(g["allow-insecure-auth"], "");
        assert_eq!(section(text, "other")["controllers"], "x");
    }

    #[test]
    fn saving_a_token_keeps_the_rest() {
        assert_eq!(
            with_global("", "auth-token", "t"),
            "[global]\nauth-token = t\n"
        );
        assert_eq!(
            with_global(
                "[global]\ncontrollers = a\nauth-token = old\n[x]\ny = 1\n",
                "auth-token",
                "t"
            ),
            "[global]\ncontrollers = a\nauth-token = t\n[x]\ny = 1\n"
        );
        assert_eq!(
            with_global("[x]\ny = 1\n[global]\ncontrollers = a\n", "auth-token", "t"),
            "[x]\ny = 1\n[global]\ncontrollers = a\nauth-token = t\n"
        );
    }

    #[test]
    fn token_files() {
        let dir = std::env::temp_dir().join(format!("strata-cli-conf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let json = dir.join("auth.json");
        std::fs::write(&json, r#"{"token": "abc"}"#).unwrap();
        assert_eq!(auth_json_token(&json).as_deref(), Some("abc"));
        let plain = dir.join("token");
        std::fs::write(&plain, "xyz\n").unwrap();
        assert_eq!(token_file(&plain).unwrap(), "xyz");
        std::fs::write(&plain, "\n").unwrap();
        assert!(token_file(&plain).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
