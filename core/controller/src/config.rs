//! Controller settings: command line, environment, and `/etc/linstor/linstor.toml` (or the
//! file named with `--config`), in LINSTOR's format where it has one.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub const DEFAULT_CONFIG: &str = "/etc/linstor/linstor.toml";
pub const DEFAULT_DATA_DIR: &str = "/var/lib/linstor";
pub const DEFAULT_PORT: u16 = 3370;
pub const DB_FILE: &str = "linstor.sqlite";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub http: HttpSection,
    #[serde(default)]
    pub db: DbSection,
    #[serde(default)]
    pub controller: ControllerSection,
    /// Accepted for compatibility; TLS is not served.
    #[serde(default)]
    pub https: Option<toml::Value>,
    #[serde(default)]
    pub logging: Option<toml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    pub enabled: Option<bool>,
    pub port: Option<u16>,
    pub listen_addr: Option<IpAddr>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DbSection {
    /// `sqlite:/path/to/file` or a plain path; LINSTOR's `jdbc:` URLs are refused with a hint.
    pub connection_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControllerSection {
    pub data_dir: Option<PathBuf>,
    /// Seconds between reports asked of each satellite.
    pub poll_interval_secs: Option<u64>,
    /// Seconds a change waits for a satellite's answer before answering with a warning.
    pub satellite_timeout_secs: Option<u64>,
}

pub fn load(path: &Path, named: bool) -> anyhow::Result<FileConfig> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !named => Ok(FileConfig::default()),
        Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub listen: SocketAddr,
    pub db_path: PathBuf,
    pub poll_interval: Duration,
    pub satellite_timeout: Duration,
}

#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub port: Option<u16>,
    pub listen_addr: Option<IpAddr>,
    pub data_dir: Option<PathBuf>,
    pub db: Option<String>,
}

fn db_path(url: &str) -> anyhow::Result<PathBuf> {
    if let Some(rest) = url.strip_prefix("sqlite:") {
        return Ok(PathBuf::from(rest.trim_start_matches("//")));
    }
    if url.starts_with("jdbc:") || url.contains("://") {
        anyhow::bail!(
            "database URL '{url}' is not supported; this controller embeds SQLite: use 'sqlite:/var/lib/linstor/{DB_FILE}' or leave connection_url out"
        );
    }
    Ok(PathBuf::from(url))
}

pub fn resolve(file: &FileConfig, o: &Overrides) -> anyhow::Result<Settings> {
    if file.http.enabled == Some(false) {
        anyhow::bail!("[http] enabled = false leaves no API to serve; remove it");
    }
    let port = o.port.or(file.http.port).unwrap_or(DEFAULT_PORT);
    let addr = o
        .listen_addr
        .or(file.http.listen_addr)
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let data_dir = o
        .data_dir
        .clone()
        .or_else(|| file.controller.data_dir.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    let db_path = match o.db.as_deref().or(file.db.connection_url.as_deref()) {
        Some(url) => db_path(url)?,
        None => data_dir.join(DB_FILE),
    };
    Ok(Settings {
        listen: SocketAddr::new(addr, port),
        db_path,
        poll_interval: Duration::from_secs(file.controller.poll_interval_secs.unwrap_or(5).max(1)),
        satellite_timeout: Duration::from_secs(
            file.controller.satellite_timeout_secs.unwrap_or(60).max(1),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linstor_style_file() {
        let f: FileConfig = toml::from_str(
            "[http]\n  enabled = true\n  port = 3371\n  listen_addr = \"127.0.0.1\"\n[db]\n  connection_url = \"sqlite:/srv/db.sqlite\"\n",
        )
        .unwrap();
        let s = resolve(&f, &Overrides::default()).unwrap();
        assert_eq!(s.listen, "127.0.0.1:3371".parse().unwrap());
        assert_eq!(s.db_path, PathBuf::from("/srv/db.sqlite"));
        let s = resolve(
            &f,
            &Overrides {
                port: Some(4000),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(s.listen.port(), 4000);
    }

    #[test]
    fn defaults_and_refusals() {
        let s = resolve(&FileConfig::default(), &Overrides::default()).unwrap();
        assert_eq!(s.listen.port(), 3370);
        assert_eq!(s.db_path, PathBuf::from("/var/lib/linstor/linstor.sqlite"));
        let f: FileConfig =
            toml::from_str("[db]\nconnection_url = \"jdbc:h2:/var/lib/linstor/linstordb\"\n")
                .unwrap();
        let err = resolve(&f, &Overrides::default()).unwrap_err().to_string();
        assert!(err.contains("embeds SQLite"), "{err}");
        assert!(toml::from_str::<FileConfig>("[http]\nprot = 1\n").is_err());
    }
}
