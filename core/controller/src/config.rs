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
    #[serde(default)]
    pub https: HttpsSection,
    #[serde(default)]
    pub limits: LimitsSection,
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

/// The REST API over HTTPS, as LINSTOR's `[https]`, with PEM files where LINSTOR has Java
/// keystores.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpsSection {
    pub enabled: Option<bool>,
    pub port: Option<u16>,
    pub listen_addr: Option<IpAddr>,
    /// PEM: the server's certificate chain.
    pub certificate: Option<PathBuf>,
    /// PEM: its private key.
    pub private_key: Option<PathBuf>,
    /// PEM: the CAs whose client certificates are accepted; with it, clients must show one
    /// (LINSTOR's truststore).
    pub client_ca: Option<PathBuf>,
    /// LINSTOR's Java keystores: refused, with how to convert them.
    pub keystore: Option<String>,
    pub keystore_password: Option<String>,
    pub truststore: Option<String>,
    pub truststore_password: Option<String>,
}

/// Bounds of the REST API's servers (not in LINSTOR's file).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    pub max_connections: Option<usize>,
    pub header_timeout_secs: Option<u64>,
    pub handshake_timeout_secs: Option<u64>,
    pub max_body_mib: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DbSection {
    /// `sqlite:/path/to/file` or a plain path (the embedded default), or a PostgreSQL
    /// database: `postgresql://…` or LINSTOR's `jdbc:postgresql://…`. LINSTOR's H2 URL
    /// means the embedded database in the same directory (with a warning); other URLs are
    /// refused with what to write instead.
    pub connection_url: Option<String>,
    /// The database user and password, as LINSTOR's file gives them beside a JDBC URL.
    pub user: Option<String>,
    pub password: Option<String>,
    /// etcd over TLS, as LINSTOR names the files: the members' CA, and this client's
    /// certificate and PKCS#8 key for etcd's `--client-cert-auth`.
    pub ca_certificate: Option<PathBuf>,
    pub client_certificate: Option<PathBuf>,
    pub client_key_pkcs8_pem: Option<PathBuf>,
    /// `[db.etcd]`, as LINSTOR's.
    #[serde(default)]
    pub etcd: EtcdSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EtcdSection {
    /// Every key under it (default `/strata/`); several clusters may share one etcd.
    pub prefix: Option<String>,
    /// etcd's `--max-txn-ops` (default 128): bigger commits go through a journal.
    pub ops_per_transaction: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControllerSection {
    pub data_dir: Option<PathBuf>,
    /// Seconds between reports asked of each satellite.
    pub poll_interval_secs: Option<u64>,
    /// Seconds a change waits for a satellite's answer before answering with a warning.
    pub satellite_timeout_secs: Option<u64>,
    /// Seconds a node certificate is valid (default a year); renewed, without a break, when a
    /// third of it is left.
    pub node_cert_validity_secs: Option<u64>,
    /// Seconds a join token the controller made is accepted (default a week).
    pub join_token_ttl_secs: Option<u64>,
    /// With etcd: this controller's name among those that may lead (default the host name).
    pub name: Option<String>,
    /// With etcd: the URL other controllers forward REST calls to while this one leads
    /// (default `http://<listen address or host name>:<port>`).
    pub advertise_url: Option<String>,
    /// With etcd: seconds the leader's lease lasts without renewal (default 3, at least 2);
    /// a standby takes over that long after the leader stopped.
    pub leader_lease_secs: Option<u64>,
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
    /// The REST API over HTTPS, when configured.
    pub https: Option<HttpsSettings>,
    /// Bounds of the REST API's servers.
    pub limits: strata_net::Limits,
    pub database: Database,
    /// Where the controller keeps its files: the cluster's CA and identity, error reports
    /// (the embedded database's directory when the database is a file).
    pub data_dir: PathBuf,
    pub poll_interval: Duration,
    pub satellite_timeout: Duration,
    /// How long a node certificate is valid (renewed when a third is left).
    pub node_cert_validity: Duration,
    /// How long a join token the controller made is accepted.
    pub join_token_ttl: Duration,
    /// With etcd: who this controller is among those that may lead.
    pub leadership: Leadership,
}

/// How this controller contends for leadership (with etcd).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leadership {
    pub name: String,
    pub advertise_url: String,
    pub lease: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpsSettings {
    pub listen: SocketAddr,
    pub certificate: PathBuf,
    pub private_key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

pub const DEFAULT_HTTPS_PORT: u16 = 3371;

/// `[https]`: on when enabled (the default) and given a certificate.
fn https(h: &HttpsSection) -> anyhow::Result<Option<HttpsSettings>> {
    if h.keystore.is_some() || h.truststore.is_some() {
        anyhow::bail!(
            "[https] keystore/truststore are Java keystores; give PEM files instead: \
             certificate = \"/etc/linstor/https/cert.pem\", private_key = \"/etc/linstor/https/key.pem\" \
             and, to require client certificates, client_ca = \"/etc/linstor/https/client-ca.pem\". \
             Convert a keystore with: keytool -importkeystore -srckeystore keystore.jks -destkeystore ks.p12 \
             -deststoretype PKCS12; openssl pkcs12 -in ks.p12 -nokeys -out cert.pem; \
             openssl pkcs12 -in ks.p12 -nocerts -nodes -out key.pem"
        );
    }
    if h.enabled == Some(false) {
        return Ok(None);
    }
    let (certificate, private_key) = match (&h.certificate, &h.private_key) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        (None, None) if h.enabled.is_none() => return Ok(None),
        _ => anyhow::bail!(
            "[https] needs both certificate and private_key (PEM files), or enabled = false"
        ),
    };
    Ok(Some(HttpsSettings {
        listen: SocketAddr::new(
            h.listen_addr.unwrap_or(IpAddr::from([0, 0, 0, 0])),
            h.port.unwrap_or(DEFAULT_HTTPS_PORT),
        ),
        certificate,
        private_key,
        client_ca: h.client_ca.clone(),
    }))
}

fn limits(l: &LimitsSection) -> strata_net::Limits {
    let d = strata_net::Limits::default();
    strata_net::Limits {
        max_connections: l.max_connections.unwrap_or(d.max_connections).max(1),
        header_timeout: l
            .header_timeout_secs
            .map_or(d.header_timeout, |s| Duration::from_secs(s.max(1))),
        handshake_timeout: l
            .handshake_timeout_secs
            .map_or(d.handshake_timeout, |s| Duration::from_secs(s.max(1))),
        max_body: l.max_body_mib.map_or(d.max_body, |m| m.max(1) << 20),
        drain: d.drain,
    }
}

#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub port: Option<u16>,
    pub listen_addr: Option<IpAddr>,
    pub data_dir: Option<PathBuf>,
    pub db: Option<String>,
}

/// Where the cluster's state is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// The embedded default: a file.
    Sqlite(PathBuf),
    /// A PostgreSQL database (a libpq URL).
    Postgres(String),
    /// An etcd cluster.
    Etcd(strata_store::EtcdConfig),
}

impl Database {
    /// The URL `strata_store::open` takes.
    pub fn url(&self) -> String {
        match self {
            Database::Sqlite(p) => format!("sqlite:{}", p.display()),
            Database::Postgres(u) => u.clone(),
            Database::Etcd(e) => e.url(),
        }
    }

    /// The URL without a password, for messages and logs.
    pub fn shown(&self) -> String {
        match self {
            Database::Sqlite(p) => p.display().to_string(),
            Database::Postgres(u) => {
                let mut shown = u.clone();
                if let Some((scheme, rest)) = u.split_once("://") {
                    if let Some((auth, host)) = rest.split_once('@') {
                        let user = auth.split(':').next().unwrap_or("");
                        shown = format!("{scheme}://{user}@{host}");
                    }
                }
                shown
                    .split("password=")
                    .next()
                    .unwrap_or(&shown)
                    .trim_end_matches(['&', '?'])
                    .to_string()
            }
            Database::Etcd(e) => format!("{} (prefix {})", e.url(), e.prefix),
        }
    }
}

/// The database a URL names; `user` and `password` (LINSTOR's file gives them apart) are
/// added to a PostgreSQL URL that does not carry them.
pub fn database(url: &str, user: Option<&str>, password: Option<&str>) -> anyhow::Result<Database> {
    if let Some(mut pg) = strata_store::libpq_url(url) {
        let mut params = Vec::new();
        if let Some(u) = user.filter(|_| !pg.contains("user=") && !pg.contains('@')) {
            params.push(format!("user={u}"));
        }
        if let Some(p) = password.filter(|_| !pg.contains("password=")) {
            params.push(format!("password={p}"));
        }
        if !params.is_empty() {
            pg.push(if pg.contains('?') { '&' } else { '?' });
            pg.push_str(&params.join("&"));
        }
        return Ok(Database::Postgres(pg));
    }
    if let Some(cfg) = strata_store::EtcdConfig::from_url(url) {
        return Ok(Database::Etcd(cfg));
    }
    // LINSTOR's embedded H2 database, as its guides configure it: this controller's
    // embedded database takes its place, in the same directory.
    if let Some(h2) = url.strip_prefix("jdbc:h2:") {
        let file = h2.split(';').next().unwrap_or(h2);
        let dir = std::path::Path::new(file)
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new(DEFAULT_DATA_DIR));
        let db = dir.join(DB_FILE);
        tracing::warn!(
            "[db] connection_url '{url}' names LINSTOR's H2 database; this controller keeps its state in its embedded SQLite database {} instead (an H2 database is not read: move its cluster with LINSTOR's own export)",
            db.display()
        );
        return Ok(Database::Sqlite(db));
    }
    match strata_store::sqlite_path(url) {
        Some(p) => Ok(Database::Sqlite(p)),
        None => anyhow::bail!(
            "database URL '{url}' is not supported: use 'sqlite:/var/lib/linstor/{DB_FILE}' (the embedded default, or leave connection_url out) a PostgreSQL database, 'postgresql://user:password@host:5432/linstor' ('jdbc:postgresql://…' as LINSTOR writes it), or an etcd cluster, 'etcd://host:2379,host:2379'"
        ),
    }
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
    let mut database = match o.db.as_deref().or(file.db.connection_url.as_deref()) {
        Some(url) => database(url, file.db.user.as_deref(), file.db.password.as_deref())?,
        None => Database::Sqlite(data_dir.join(DB_FILE)),
    };
    if let Database::Etcd(cfg) = &mut database {
        etcd_settings(cfg, &file.db)?;
    }
    // The embedded database's directory keeps the controller's files, as it always has.
    let data_dir = match &database {
        Database::Sqlite(p) => p
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or(data_dir),
        Database::Postgres(_) | Database::Etcd(_) => data_dir,
    };
    Ok(Settings {
        listen: SocketAddr::new(addr, port),
        https: https(&file.https)?,
        limits: limits(&file.limits),
        database,
        data_dir,
        poll_interval: Duration::from_secs(file.controller.poll_interval_secs.unwrap_or(5).max(1)),
        satellite_timeout: Duration::from_secs(
            file.controller.satellite_timeout_secs.unwrap_or(60).max(1),
        ),
        node_cert_validity: Duration::from_secs(
            file.controller
                .node_cert_validity_secs
                .unwrap_or(365 * 86400)
                .max(30),
        ),
        join_token_ttl: Duration::from_secs(
            file.controller
                .join_token_ttl_secs
                .unwrap_or(7 * 86400)
                .max(60),
        ),
        leadership: leadership(&file.controller, SocketAddr::new(addr, port))?,
    })
}

/// `[db.etcd]` and the TLS files of `[db]` applied to `cfg`.
fn etcd_settings(cfg: &mut strata_store::EtcdConfig, db: &DbSection) -> anyhow::Result<()> {
    if let Some(p) = &db.etcd.prefix {
        cfg.prefix = p.clone();
    }
    if let Some(n) = db.etcd.ops_per_transaction {
        cfg.ops_per_txn = n;
    }
    if db.user.is_some() || db.password.is_some() {
        anyhow::bail!("[db] user/password: etcd's own authentication is not supported; secure etcd with client certificates ([db] ca_certificate, client_certificate, client_key_pkcs8_pem)");
    }
    cfg.ca_certificate = db.ca_certificate.clone();
    cfg.client_certificate = db.client_certificate.clone();
    cfg.client_key = db.client_key_pkcs8_pem.clone();
    if cfg.client_certificate.is_some() && cfg.ca_certificate.is_none() {
        anyhow::bail!(
            "[db] client_certificate is for etcd over TLS: give its CA too (ca_certificate)"
        );
    }
    Ok(())
}

/// The host name, for names and URLs.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

fn leadership(c: &ControllerSection, listen: SocketAddr) -> anyhow::Result<Leadership> {
    let advertise_url = match &c.advertise_url {
        Some(u) if u.starts_with("http://") || u.starts_with("https://") => {
            u.trim_end_matches('/').to_string()
        }
        Some(u) => anyhow::bail!(
            "[controller] advertise_url '{u}' must be an http:// or https:// URL, as http://ctrl-1.example:3370"
        ),
        None if listen.ip().is_unspecified() => format!("http://{}:{}", host_name(), listen.port()),
        None => format!("http://{listen}"),
    };
    let lease = c.leader_lease_secs.unwrap_or(3);
    if lease < 2 {
        anyhow::bail!("[controller] leader_lease_secs = {lease}: etcd keeps a lease at least 2 seconds; give 2 or more");
    }
    Ok(Leadership {
        name: c.name.clone().unwrap_or_else(host_name),
        advertise_url,
        lease: Duration::from_secs(lease),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_packaged_settings_file_gives_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("linstor.toml");
        std::fs::write(&path, include_str!("../../../packaging/etc/linstor.toml")).unwrap();
        let file = load(&path, true).unwrap();
        let s = resolve(&file, &Overrides::default()).unwrap();
        assert_eq!(s.listen.port(), 3370);
        assert!(s.https.is_none());
        assert_eq!(s.data_dir, PathBuf::from("/var/lib/linstor"));
    }

    #[test]
    fn linstor_style_file() {
        let f: FileConfig = toml::from_str(
            "[http]\n  enabled = true\n  port = 3371\n  listen_addr = \"127.0.0.1\"\n[db]\n  connection_url = \"sqlite:/srv/db.sqlite\"\n",
        )
        .unwrap();
        let s = resolve(&f, &Overrides::default()).unwrap();
        assert_eq!(s.listen, "127.0.0.1:3371".parse().unwrap());
        assert_eq!(
            s.database,
            Database::Sqlite(PathBuf::from("/srv/db.sqlite"))
        );
        assert_eq!(s.data_dir, PathBuf::from("/srv"));
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
    fn https_with_pem_files() {
        let f: FileConfig = toml::from_str(
            "[https]\n  certificate = \"/c.pem\"\n  private_key = \"/k.pem\"\n[http]\n  listen_addr = \"127.0.0.1\"\n[limits]\n  max_connections = 10\n  header_timeout_secs = 3\n",
        )
        .unwrap();
        let s = resolve(&f, &Overrides::default()).unwrap();
        let h = s.https.unwrap();
        assert_eq!(h.listen, "0.0.0.0:3371".parse().unwrap());
        assert_eq!(h.certificate, PathBuf::from("/c.pem"));
        assert_eq!(s.limits.max_connections, 10);
        assert_eq!(s.limits.header_timeout, Duration::from_secs(3));
        assert_eq!(s.limits.max_body, strata_net::Limits::default().max_body);
        let off: FileConfig =
            toml::from_str("[https]\nenabled = false\ncertificate = \"/c.pem\"\n").unwrap();
        assert!(resolve(&off, &Overrides::default())
            .unwrap()
            .https
            .is_none());
        let half: FileConfig = toml::from_str("[https]\nenabled = true\n").unwrap();
        assert!(resolve(&half, &Overrides::default()).is_err());
        let java: FileConfig = toml::from_str(
            "[https]\nkeystore = \"/etc/linstor/keystore.jks\"\nkeystore_password = \"x\"\n",
        )
        .unwrap();
        let err = resolve(&java, &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("PEM") && err.contains("openssl"), "{err}");
    }

    #[test]
    fn defaults_and_refusals() {
        let s = resolve(&FileConfig::default(), &Overrides::default()).unwrap();
        assert_eq!(s.listen.port(), 3370);
        assert!(s.https.is_none());
        assert_eq!(
            s.database,
            Database::Sqlite(PathBuf::from("/var/lib/linstor/linstor.sqlite"))
        );
        // LINSTOR's default H2 setting, as its guides write it: the embedded database in
        // that directory (with a warning).
        let f: FileConfig =
            toml::from_str("[db]\nconnection_url = \"jdbc:h2:/srv/linstor/linstordb\"\n").unwrap();
        let s = resolve(&f, &Overrides::default()).unwrap();
        assert_eq!(
            s.database,
            Database::Sqlite(PathBuf::from("/srv/linstor/linstor.sqlite"))
        );
        assert_eq!(s.data_dir, PathBuf::from("/srv/linstor"));
        let f: FileConfig =
            toml::from_str("[db]\nconnection_url = \"ftp://db.example/linstor\"\n").unwrap();
        let err = resolve(&f, &Overrides::default()).unwrap_err().to_string();
        assert!(
            err.contains("sqlite:") && err.contains("postgresql://"),
            "{err}"
        );
        // LINSTOR's PostgreSQL settings: a JDBC URL with user and password apart.
        let f: FileConfig = toml::from_str(
            "[db]\nuser = \"linstor\"\npassword = \"s3cret\"\nconnection_url = \"jdbc:postgresql://db.example:5432/linstor\"\n",
        )
        .unwrap();
        let s = resolve(
            &f,
            &Overrides {
                data_dir: Some(PathBuf::from("/srv/ctl")),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            s.database,
            Database::Postgres(
                "postgresql://db.example:5432/linstor?user=linstor&password=s3cret".into()
            )
        );
        assert_eq!(s.data_dir, PathBuf::from("/srv/ctl"));
        assert_eq!(
            s.database.shown(),
            "postgresql://db.example:5432/linstor?user=linstor"
        );
        assert_eq!(
            Database::Postgres("postgresql://u:pw@h/db".into()).shown(),
            "postgresql://u@h/db"
        );
        assert!(toml::from_str::<FileConfig>("[http]\nprot = 1\n").is_err());
    }

    #[test]
    fn etcd_as_linstor_writes_it() {
        let f: FileConfig = toml::from_str(
            "[db]\nconnection_url = \"etcd://e1:2379,e2\"\nca_certificate = \"/etc/linstor/etcd-ca.pem\"\nclient_certificate = \"/etc/linstor/c.pem\"\nclient_key_pkcs8_pem = \"/etc/linstor/c.key\"\n[db.etcd]\nprefix = \"/cluster-2/\"\nops_per_transaction = 1024\n[controller]\nname = \"ctl-1\"\nleader_lease_secs = 2\n",
        )
        .unwrap();
        let s = resolve(&f, &Overrides::default()).unwrap();
        let Database::Etcd(cfg) = &s.database else {
            panic!("{:?}", s.database)
        };
        assert_eq!(cfg.endpoints, ["e1:2379", "e2:2379"]);
        assert_eq!(
            (cfg.prefix.as_str(), cfg.ops_per_txn),
            ("/cluster-2/", 1024)
        );
        assert_eq!(
            cfg.client_key.as_deref(),
            Some(Path::new("/etc/linstor/c.key"))
        );
        assert_eq!(
            s.database.shown(),
            "etcd://e1:2379,e2:2379 (prefix /cluster-2/)"
        );
        assert_eq!(s.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert_eq!(s.leadership.name, "ctl-1");
        assert_eq!(s.leadership.lease, Duration::from_secs(2));
        // All addresses: advertised under the host name.
        assert_eq!(
            s.leadership.advertise_url,
            format!("http://{}:3370", host_name())
        );
        for (bad, says) in [
            (
                "[db]\nconnection_url = \"etcd://e1\"\nuser = \"u\"\n",
                "client certificates",
            ),
            (
                "[db]\nconnection_url = \"etcd://e1\"\nclient_certificate = \"/c\"\n",
                "CA",
            ),
            (
                "[controller]\nleader_lease_secs = 1\n",
                "at least 2 seconds",
            ),
            ("[controller]\nadvertise_url = \"ctl-1:3370\"\n", "http://"),
        ] {
            let f: FileConfig = toml::from_str(bad).unwrap();
            let err = resolve(&f, &Overrides::default()).unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
