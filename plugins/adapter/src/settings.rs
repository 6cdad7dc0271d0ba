//! Where the controllers are and how to talk to them securely: the same settings the
//! `linstor` client takes (controller list tried in order, CA file, client certificate, bearer
//! token, or python-linstor's `/var/lib/linstor.d/auth.json`).

use std::time::Duration;

/// Where python-linstor (and the Proxmox plugin) keep a token.
pub const AUTH_JSON: &str = "/var/lib/linstor.d/auth.json";

#[derive(Debug, Clone, Default)]
pub struct ControllerSettings {
    /// Tried in order (`host[:port]` or URLs).
    pub controllers: Vec<String>,
    /// CA file, client certificate, token: as the `linstor` client takes them.
    pub security: strata_client::Security,
}

/// A controller list as written in a configuration: separated by commas or spaces.
pub fn controller_list(text: &str) -> Vec<String> {
    text.split([',', ' ', ';'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The token python-linstor would use: `{"token": ...}` in [`AUTH_JSON`].
pub fn token_from_auth_json() -> Option<String> {
    let text = std::fs::read_to_string(AUTH_JSON).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("token")?.as_str().map(str::to_string)
}

/// The first line of a token file.
pub fn token_from_file(path: &std::path::Path) -> Result<Option<String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the token file {}: {e}", path.display()))?;
    Ok(text
        .lines()
        .next()
        .map(|l| l.trim().to_string())
        .filter(|t| !t.is_empty()))
}

/// This host's name, as LINSTOR nodes are usually named.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// Where the controllers are when a configuration names none.
pub const DEFAULT_CONTROLLER: &str = "127.0.0.1:3370";

/// How a platform's configuration names the way to the controllers, each field as it gives
/// it (its own keys; empty values are unset).
#[derive(Debug, Default, Clone, Copy)]
pub struct Connection<'a> {
    pub controllers: Option<&'a str>,
    pub ca_file: Option<&'a str>,
    pub cert_file: Option<&'a str>,
    pub key_file: Option<&'a str>,
    /// A file whose first line is the token; without it, python-linstor's auth.json.
    pub token_file: Option<&'a str>,
    pub allow_insecure_auth: bool,
}

impl ControllerSettings {
    /// The settings `c` names: its controllers (this host's when none), its files, and the
    /// token of its token file or else of [`AUTH_JSON`].
    pub fn from_connection(c: &Connection<'_>) -> Result<ControllerSettings, String> {
        fn set(v: Option<&str>) -> Option<&str> {
            v.map(str::trim).filter(|v| !v.is_empty())
        }
        let token = match set(c.token_file) {
            Some(f) => token_from_file(std::path::Path::new(f))?,
            None => token_from_auth_json(),
        };
        let file = |v: Option<&str>| set(v).map(std::path::PathBuf::from);
        Ok(ControllerSettings {
            controllers: controller_list(set(c.controllers).unwrap_or(DEFAULT_CONTROLLER)),
            security: strata_client::Security {
                ca_file: file(c.ca_file),
                cert_file: file(c.cert_file),
                key_file: file(c.key_file),
                token,
                allow_insecure_auth: c.allow_insecure_auth,
            },
        })
    }

    /// A client that tries the controllers in order, each call bounded by `timeout`.
    pub fn client(&self, timeout: Duration) -> Result<strata_client::Client, String> {
        if self.controllers.is_empty() {
            return Err("no controller is configured".into());
        }
        strata_client::Client::with_security(&self.controllers, timeout, &self.security)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_token_files() {
        assert_eq!(
            controller_list(" a:3370, b ,https://c:3371;"),
            vec!["a:3370", "b", "https://c:3371"]
        );
        assert!(controller_list(" , ").is_empty());
        let dir = std::env::temp_dir().join(format!("strata-adapter-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("t");
        std::fs::write(&f, "secret\nsecond\n").unwrap();
        assert_eq!(token_from_file(&f).unwrap().as_deref(), Some("secret"));
        std::fs::write(&f, "\n").unwrap();
        assert_eq!(token_from_file(&f).unwrap(), None);
        assert!(token_from_file(&dir.join("none")).is_err());
        let t = f.display().to_string();
        std::fs::write(&f, "tok\n").unwrap();
        let c = ControllerSettings::from_connection(&Connection {
            controllers: Some("a, b:3371"),
            ca_file: Some("/ca.pem"),
            cert_file: Some(" "),
            token_file: Some(&t),
            allow_insecure_auth: true,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.controllers, vec!["a", "b:3371"]);
        assert_eq!(
            c.security.ca_file,
            Some(std::path::PathBuf::from("/ca.pem"))
        );
        assert_eq!(c.security.cert_file, None);
        assert_eq!(c.security.token.as_deref(), Some("tok"));
        assert!(c.security.allow_insecure_auth);
        let d = ControllerSettings::from_connection(&Connection::default()).unwrap();
        assert_eq!(d.controllers, vec![DEFAULT_CONTROLLER]);
        let missing = dir.join("none").display().to_string();
        assert!(ControllerSettings::from_connection(&Connection {
            token_file: Some(&missing),
            ..Default::default()
        })
        .is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
