//! Satellite settings: command line, environment, and the TOML file
//! (`/etc/linstor/linstor_satellite.toml` unless another is named).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub const DEFAULT_CONFIG: &str = "/etc/linstor/linstor_satellite.toml";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/linstor-satellite";
pub const DEFAULT_PORT: u16 = 3366;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub netcom: NetcomSection,
    #[serde(default)]
    pub satellite: SatelliteSection,
    #[serde(default)]
    pub metrics: MetricsSection,
}

/// `[metrics]`: Prometheus metrics in plain HTTP on a port of their own (off unless a port
/// is given), on the agent's address.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    pub port: Option<u16>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetcomSection {
    pub port: Option<u16>,
    pub bind_address: Option<IpAddr>,
    /// `ssl` (the default: mutual TLS with the cluster's controller) or `plain` (no
    /// encryption, no authentication: for tests and migrations only).
    #[serde(rename = "type")]
    pub com_type: Option<String>,
    /// The one-time token to join the cluster with (else the one in `<state dir>/tls/join-token`).
    pub join_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SatelliteSection {
    pub state_dir: Option<PathBuf>,
}

/// Reads the file; a missing default file is no error, a missing named file is.
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
    pub state_dir: PathBuf,
    /// Mutual TLS (the default); `false` with `[netcom] type = "plain"`.
    pub tls: bool,
    pub join_token: Option<String>,
    /// Where `/metrics` is served, if anywhere.
    pub metrics: Option<SocketAddr>,
}

/// Flags win over the environment (clap reads both), which win over the file.
pub fn resolve(
    file: &FileConfig,
    port: Option<u16>,
    listen_addr: Option<IpAddr>,
    state_dir: Option<PathBuf>,
) -> anyhow::Result<Settings> {
    let tls = match file.netcom.com_type.as_deref() {
        None => true,
        Some(t) if t.eq_ignore_ascii_case("ssl") || t.eq_ignore_ascii_case("tls") => true,
        Some(t) if t.eq_ignore_ascii_case("plain") => false,
        Some(t) => {
            anyhow::bail!("[netcom] type = '{t}' is unknown; use 'ssl' (the default) or 'plain'")
        }
    };
    let port = port.or(file.netcom.port).unwrap_or(DEFAULT_PORT);
    let addr = listen_addr
        .or(file.netcom.bind_address)
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    Ok(Settings {
        listen: SocketAddr::new(addr, port),
        state_dir: state_dir
            .or_else(|| file.satellite.state_dir.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR)),
        tls,
        join_token: file.netcom.join_token.clone(),
        metrics: file.metrics.port.map(|p| SocketAddr::new(addr, p)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_packaged_settings_file_gives_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("linstor_satellite.toml");
        std::fs::write(
            &path,
            include_str!("../../../packaging/etc/linstor_satellite.toml"),
        )
        .unwrap();
        let file = load(&path, true).unwrap();
        let s = resolve(&file, None, None, None).unwrap();
        assert_eq!(s.listen.port(), 3366);
        assert_eq!(s.state_dir, PathBuf::from("/var/lib/linstor-satellite"));
    }

    #[test]
    fn precedence() {
        let file: FileConfig = toml::from_str(
            "[netcom]\nport = 3400\nbind_address = \"127.0.0.1\"\n[satellite]\nstate_dir = \"/srv/s\"\n",
        )
        .unwrap();
        let s = resolve(&file, None, None, None).unwrap();
        assert_eq!(s.listen, "127.0.0.1:3400".parse().unwrap());
        assert_eq!(s.state_dir, PathBuf::from("/srv/s"));
        let s = resolve(&file, Some(4000), None, Some("/x".into())).unwrap();
        assert_eq!(s.listen.port(), 4000);
        assert_eq!(s.state_dir, PathBuf::from("/x"));
        let d = resolve(&FileConfig::default(), None, None, None).unwrap();
        assert_eq!(d.listen, "0.0.0.0:3366".parse().unwrap());
        assert!(d.tls, "TLS unless plain is asked for");
    }

    #[test]
    fn bad_files_are_refused() {
        assert!(toml::from_str::<FileConfig>("[netcom]\nprot = 1\n").is_err());
        let ssl: FileConfig = toml::from_str("[netcom]\ntype = \"ssl\"\n").unwrap();
        assert!(resolve(&ssl, None, None, None).unwrap().tls);
        let plain: FileConfig = toml::from_str("[netcom]\ntype = \"PLAIN\"\n").unwrap();
        assert!(!resolve(&plain, None, None, None).unwrap().tls);
        let other: FileConfig = toml::from_str("[netcom]\ntype = \"tcp\"\n").unwrap();
        assert!(resolve(&other, None, None, None).is_err());
        assert!(load(Path::new("/nonexistent/x.toml"), true).is_err());
        assert!(load(Path::new("/nonexistent/x.toml"), false).is_ok());
    }
}
