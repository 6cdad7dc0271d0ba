//! Settings: `/etc/linstor/docker-volume.toml` (or the file named), the environment
//! (`LS_CONTROLLERS`, `LS_AUTH_TOKEN`) and the command line, each overriding the one before.
//! The controller's HTTPS and token settings are the `linstor` client's: `cafile`,
//! `certfile`, `keyfile`, `auth_token` (or `auth_token_file`, else python-linstor's
//! `/var/lib/linstor.d/auth.json`) and `allow_insecure_auth`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::opts::{self, VolumeOpts};

pub const DEFAULT_CONFIG: &str = "/etc/linstor/docker-volume.toml";
pub const DEFAULT_SOCKET: &str = "/run/docker/plugins/linstor.sock";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/linstor-docker-volume";

/// The file, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Controllers, comma separated (`host[:port]` or URLs).
    pub controllers: Option<String>,
    /// This node's name in the cluster (default: the host name).
    pub node: Option<String>,
    pub socket: Option<PathBuf>,
    /// Where the plugin keeps its state and mounts volumes (`<state_dir>/mnt/<volume>`).
    pub state_dir: Option<PathBuf>,
    /// Seconds a call to the controller may take.
    pub timeout_secs: Option<u64>,
    /// PEM CA certificate(s) of the controller's HTTPS certificate.
    pub cafile: Option<PathBuf>,
    /// PEM client certificate and key, for a controller that requires one.
    pub certfile: Option<PathBuf>,
    pub keyfile: Option<PathBuf>,
    /// Token for a controller with token authentication.
    pub auth_token: Option<String>,
    /// File whose first line is the token.
    pub auth_token_file: Option<PathBuf>,
    /// Send the token over plain HTTP too.
    pub allow_insecure_auth: Option<bool>,
    /// Defaults of the volume options, by option name.
    #[serde(default)]
    pub defaults: BTreeMap<String, toml::Value>,
}

pub use strata_adapter::settings::AUTH_JSON;

fn token(file: &FileConfig, over: &Overrides) -> anyhow::Result<Option<String>> {
    if let Some(t) = over.auth_token.clone().or_else(|| file.auth_token.clone()) {
        return Ok(Some(t));
    }
    if let Some(path) = &file.auth_token_file {
        return strata_adapter::settings::token_from_file(path).map_err(anyhow::Error::msg);
    }
    Ok(strata_adapter::settings::token_from_auth_json())
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub controllers: Vec<String>,
    pub node: String,
    pub socket: PathBuf,
    pub state_dir: PathBuf,
    pub timeout: std::time::Duration,
    pub defaults: VolumeOpts,
    pub security: strata_client::Security,
}

pub fn load(path: &Path, named: bool) -> anyhow::Result<FileConfig> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !named => Ok(FileConfig::default()),
        Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
    }
}

/// What the command line and environment say, over the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub controllers: Option<String>,
    pub node: Option<String>,
    pub socket: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    /// `LS_AUTH_TOKEN`.
    pub auth_token: Option<String>,
}

pub fn resolve(file: &FileConfig, over: &Overrides) -> anyhow::Result<Settings> {
    let controllers = over
        .controllers
        .clone()
        .or_else(|| file.controllers.clone())
        .unwrap_or_else(|| "127.0.0.1:3370".into());
    let controllers = strata_adapter::settings::controller_list(&controllers);
    if controllers.is_empty() {
        anyhow::bail!(
            "no controller named: set LS_CONTROLLERS or 'controllers' in the configuration file"
        );
    }
    let defaults: BTreeMap<String, String> = file
        .defaults
        .iter()
        .map(|(k, v)| {
            let text = match v {
                toml::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), text)
        })
        .collect();
    let defaults = opts::apply(&VolumeOpts::default(), &defaults)
        .map_err(|e| anyhow::anyhow!("[defaults] in the configuration file: {e}"))?;
    Ok(Settings {
        controllers,
        node: over
            .node
            .clone()
            .or_else(|| file.node.clone())
            .unwrap_or_else(strata_adapter::settings::host_name),
        socket: over
            .socket
            .clone()
            .or_else(|| file.socket.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET)),
        state_dir: over
            .state_dir
            .clone()
            .or_else(|| file.state_dir.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR)),
        timeout: std::time::Duration::from_secs(file.timeout_secs.unwrap_or(60)),
        defaults,
        security: strata_client::Security {
            token: token(file, over)?,
            ca_file: file.cafile.clone(),
            cert_file: file.certfile.clone(),
            key_file: file.keyfile.clone(),
            allow_insecure_auth: file.allow_insecure_auth.unwrap_or(false),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_packaged_settings_file_gives_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docker-volume.toml");
        std::fs::write(
            &path,
            include_str!("../../../packaging/etc/docker-volume.toml"),
        )
        .unwrap();
        let file = load(&path, true).unwrap();
        assert!(file.controllers.is_none() && file.defaults.is_empty());
        let s = resolve(&file, &Overrides::default()).unwrap();
        assert_eq!(s.socket, PathBuf::from(DEFAULT_SOCKET));
    }

    #[test]
    fn controller_security_as_the_cli_has_it() {
        let file: FileConfig = toml::from_str(
            "controllers = \"https://ctrl\"\ncafile = \"/etc/linstor/ca.pem\"\nauth_token = \"t1\"\n",
        )
        .unwrap();
        let s = resolve(&file, &Overrides::default()).unwrap();
        assert_eq!(s.security.token.as_deref(), Some("t1"));
        assert_eq!(
            s.security.ca_file,
            Some(PathBuf::from("/etc/linstor/ca.pem"))
        );
        let over = Overrides {
            auth_token: Some("t2".into()),
            ..Default::default()
        };
        assert_eq!(
            resolve(&file, &over).unwrap().security.token.as_deref(),
            Some("t2")
        );
    }

    #[test]
    fn file_environment_and_flags() {
        let file: FileConfig = toml::from_str(
            "controllers = \"10.0.0.1,10.0.0.2:3370\"\nnode = \"alpha\"\n[defaults]\nsize = \"1G\"\nreplicas = 2\nfs = \"xfs\"\n",
        )
        .unwrap();
        let s = resolve(&file, &Overrides::default()).unwrap();
        assert_eq!(s.controllers, ["10.0.0.1", "10.0.0.2:3370"]);
        assert_eq!(s.node, "alpha");
        assert_eq!(s.defaults.size_kib, 1 << 20);
        assert_eq!(s.defaults.replicas, Some(2));
        assert_eq!(s.defaults.fs, "xfs");
        assert_eq!(s.socket, PathBuf::from(DEFAULT_SOCKET));
        let s = resolve(
            &file,
            &Overrides {
                controllers: Some("127.0.0.1:4000".into()),
                node: Some("bravo".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(s.controllers, ["127.0.0.1:4000"]);
        assert_eq!(s.node, "bravo");
        let bad: FileConfig = toml::from_str("[defaults]\nsize = \"huge\"\n").unwrap();
        assert!(resolve(&bad, &Overrides::default())
            .unwrap_err()
            .to_string()
            .contains("invalid size"));
        assert!(toml::from_str::<FileConfig>("controlers = \"x\"\n").is_err());
    }
}
