//! `/etc/linstor/vmorder.toml`: which VM is the controller's, on which DRBD resources, through
//! which hypervisor it is started, where the controller answers once it runs, and which other
//! guests this host starts in order.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Where the settings are read from unless `--config` says otherwise.
pub const DEFAULT_PATH: &str = "/etc/linstor/vmorder.toml";
/// Where the daemon keeps what it decided, for `strata-vmorder status`.
pub const DEFAULT_STATE_DIR: &str = "/run/strata-vmorder";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// Which hypervisor starts a VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// libvirt (through the C library): the VM is a defined domain, named by `name`.
    Libvirt,
    /// Proxmox VE's `qm`: the VM is named by its VMID.
    Proxmox,
    /// Commands of the administrator's: `start` starts the VM, `running` answers by its exit
    /// status whether it runs (0: it does, 1: it does not). `{name}` in an argument is the
    /// VM's name.
    Command,
}

/// How this host's hypervisor is reached.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hypervisor {
    pub kind: Kind,
    /// libvirt's connection URI.
    #[serde(default = "default_uri")]
    pub uri: String,
    /// `kind = "command"`: the command that starts a VM.
    #[serde(default)]
    pub start: Vec<String>,
    /// `kind = "command"`: the command whose exit status says whether a VM runs.
    #[serde(default)]
    pub running: Vec<String>,
}

fn default_uri() -> String {
    "qemu:///system".into()
}

/// The controller's VM.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControllerVm {
    /// The VM's name for the hypervisor (libvirt domain name, Proxmox VMID).
    pub name: String,
    /// The cluster resources holding its disks, in the order every host promotes them.
    pub resources: Vec<String>,
    /// Whether those resources are replicated by DRBD (the default). Without DRBD the VM can
    /// only run on this host: no lock, no failover.
    #[serde(default = "yes")]
    pub drbd: bool,
    /// Seconds after which this host promotes the VM's resources although no peer ever
    /// connected (its disks only Consistent). Unset (the default): never; the VM then waits
    /// for a peer, as DRBD's own `wfc-timeout` would. Only for clusters whose DRBD has no
    /// quorum to stop two hosts from starting the VM each.
    #[serde(default)]
    pub promote_alone_after: Option<u64>,
}

fn yes() -> bool {
    true
}

/// An ordinary guest this host starts at boot.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Guest {
    pub name: String,
    /// The cluster resources holding its disks.
    pub resources: Vec<String>,
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// This host's node name in the cluster (the host name when unset).
    #[serde(default)]
    node: Option<String>,
    /// Where the controller answers (`host[:port]` or URLs, tried in order).
    controllers: String,
    #[serde(default)]
    ca_file: Option<String>,
    #[serde(default)]
    cert_file: Option<String>,
    #[serde(default)]
    key_file: Option<String>,
    #[serde(default)]
    token_file: Option<String>,
    /// Seconds a guest waits for its volumes to be usable here (UpToDate) before its start
    /// fails.
    #[serde(default = "default_guest_wait")]
    guest_wait: u64,
    /// Seconds between looks at whether the controller VM still runs here.
    #[serde(default = "default_check_interval")]
    check_interval: u64,
    #[serde(default)]
    state_dir: Option<PathBuf>,
    /// drbdadm's configuration file, when the satellite runs with `--drbd-config`.
    #[serde(default)]
    drbd_config: Option<PathBuf>,
    hypervisor: Hypervisor,
    controller_vm: ControllerVm,
    #[serde(default)]
    guest: Vec<Guest>,
}

fn default_guest_wait() -> u64 {
    600
}

fn default_check_interval() -> u64 {
    5
}

/// The settings, checked.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file they came from (handed to the guests' units).
    pub path: PathBuf,
    pub node: String,
    pub controllers: strata_adapter::settings::ControllerSettings,
    pub guest_wait: Duration,
    pub check_interval: Duration,
    pub state_dir: PathBuf,
    pub drbd_config: Option<PathBuf>,
    pub hypervisor: Hypervisor,
    pub controller_vm: ControllerVm,
    pub guests: Vec<Guest>,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(path, &text).map_err(|message| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        })
    }

    pub fn parse(path: &Path, text: &str) -> Result<Config, String> {
        let f: File = toml::from_str(text).map_err(|e| e.to_string())?;
        let conn = strata_adapter::settings::Connection {
            controllers: Some(&f.controllers),
            ca_file: f.ca_file.as_deref(),
            cert_file: f.cert_file.as_deref(),
            key_file: f.key_file.as_deref(),
            token_file: f.token_file.as_deref(),
            allow_insecure_auth: false,
        };
        let controllers = strata_adapter::settings::ControllerSettings::from_connection(&conn)?;
        if controllers.controllers.is_empty() {
            return Err("`controllers` names no controller: give the address the controller VM serves the REST API on, e.g. controllers = \"10.0.0.5:3370\"".into());
        }
        check_hypervisor(&f.hypervisor)?;
        let vm = &f.controller_vm;
        check_name("controller_vm.name", &vm.name)?;
        if vm.resources.is_empty() {
            return Err("controller_vm.resources is empty: name the resources holding the controller VM's disks".into());
        }
        let mut names = BTreeSet::new();
        names.insert(vm.name.to_ascii_lowercase());
        let mut ctrl_resources = BTreeSet::new();
        for r in &vm.resources {
            check_name("controller_vm.resources", r)?;
            if !ctrl_resources.insert(r.to_ascii_lowercase()) {
                return Err(format!(
                    "controller_vm.resources names {r} twice: list each resource once"
                ));
            }
        }
        for g in &f.guest {
            check_name("guest.name", &g.name)?;
            if !names.insert(g.name.to_ascii_lowercase()) {
                return Err(format!(
                    "the guest {} is listed twice (or is the controller VM): list each VM once",
                    g.name
                ));
            }
            for r in &g.resources {
                check_name("guest.resources", r)?;
                if ctrl_resources.contains(&r.to_ascii_lowercase()) {
                    return Err(format!(
                        "the guest {} names the controller VM's resource {r}: a guest never shares the controller VM's disks",
                        g.name
                    ));
                }
            }
        }
        if f.check_interval == 0 {
            return Err("check_interval must be at least 1 second".into());
        }
        Ok(Config {
            path: path.to_path_buf(),
            node: f
                .node
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(strata_adapter::settings::host_name),
            controllers,
            guest_wait: Duration::from_secs(f.guest_wait),
            check_interval: Duration::from_secs(f.check_interval),
            state_dir: f
                .state_dir
                .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR)),
            drbd_config: f.drbd_config,
            hypervisor: f.hypervisor,
            controller_vm: f.controller_vm,
            guests: f.guest,
        })
    }

    pub fn guest(&self, name: &str) -> Option<&Guest> {
        self.guests.iter().find(|g| g.name == name)
    }
}

fn check_hypervisor(h: &Hypervisor) -> Result<(), String> {
    match h.kind {
        Kind::Command => {
            if h.start.is_empty() || h.running.is_empty() {
                return Err("hypervisor kind \"command\" needs both `start` and `running`, e.g. start = [\"/usr/local/bin/vm\", \"start\", \"{name}\"]".into());
            }
        }
        Kind::Libvirt | Kind::Proxmox => {
            if !h.start.is_empty() || !h.running.is_empty() {
                return Err(
                    "`start` and `running` are for hypervisor kind \"command\" only".into(),
                );
            }
        }
    }
    Ok(())
}

/// Names end up in unit names, command arguments and DRBD calls: no empty ones, no
/// whitespace or control characters, no leading dash.
fn check_name(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.starts_with('-')
        || name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '/')
    {
        return Err(format!(
            "{what}: {name:?} is not a usable name (no spaces, slashes or leading dash)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
controllers = "10.0.0.5:3370"
node = "alpha"
[hypervisor]
kind = "libvirt"
[controller_vm]
name = "linstor-controller"
resources = ["linstor_ctrl_vm"]
[[guest]]
name = "web1"
resources = ["vm-101-disk-0", "vm-101-disk-1"]
[[guest]]
name = "db1"
resources = ["vm-102-disk-0"]
"#;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(Path::new("vmorder.toml"), text)
    }

    #[test]
    fn a_whole_file_reads_with_defaults() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.node, "alpha");
        assert_eq!(c.controllers.controllers, vec!["10.0.0.5:3370"]);
        assert_eq!(c.hypervisor.kind, Kind::Libvirt);
        assert_eq!(c.hypervisor.uri, "qemu:///system");
        assert!(c.controller_vm.drbd);
        assert_eq!(c.controller_vm.promote_alone_after, None);
        assert_eq!(c.guests.len(), 2);
        assert_eq!(c.guest("db1").unwrap().resources, vec!["vm-102-disk-0"]);
        assert!(c.guest("nope").is_none());
        assert_eq!(c.guest_wait, Duration::from_secs(600));
        assert_eq!(c.check_interval, Duration::from_secs(5));
        assert_eq!(c.state_dir, PathBuf::from(DEFAULT_STATE_DIR));
    }

    #[test]
    fn the_packaged_default_file_reads() {
        let text = include_str!("../../../packaging/etc/vmorder.toml");
        let c = parse(text).unwrap();
        assert_eq!(c.controller_vm.name, "linstor-controller");
        assert!(c.guests.is_empty());
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let cases: &[(&str, &str)] = &[
            (r#"web1"#, "vm-101-disk-0\", \"linstor_ctrl_vm"),
            ("name = \"db1\"", "name = \"web1\""),
            ("name = \"db1\"", "name = \"Linstor-Controller\""),
            ("kind = \"libvirt\"", "kind = \"command\""),
            ("kind = \"libvirt\"", "kind = \"xen\""),
            ("resources = [\"linstor_ctrl_vm\"]", "resources = []"),
            ("controllers = \"10.0.0.5:3370\"", "controllers = \" , \""),
            ("name = \"web1\"", "name = \"web 1\""),
            ("name = \"web1\"", "name = \"-x\""),
            ("node = \"alpha\"", "nodes = \"alpha\""),
        ];
        for (from, to) in cases {
            assert!(GOOD.contains(from), "{from}");
            let text = GOOD.replacen(from, to, 1);
            let err = parse(&text).unwrap_err();
            assert!(!err.is_empty(), "{to}");
        }
        let err = parse(&GOOD.replacen("web1\"", "web1\"\nextra = 1", 1)).unwrap_err();
        assert!(err.contains("extra"), "{err}");
        let err = parse(&GOOD.replacen("name = \"db1\"", "name = \"web1\"", 1)).unwrap_err();
        assert!(err.contains("listed twice"), "{err}");
        let err = parse(&GOOD.replacen("kind = \"libvirt\"", "kind = \"command\"", 1)).unwrap_err();
        assert!(err.contains("`start` and `running`"), "{err}");
    }

    #[test]
    fn command_hypervisors_take_their_commands() {
        let text = GOOD.replacen(
            "kind = \"libvirt\"",
            "kind = \"command\"\nstart = [\"vm\", \"start\", \"{name}\"]\nrunning = [\"vm\", \"running\", \"{name}\"]",
            1,
        );
        let c = parse(&text).unwrap();
        assert_eq!(c.hypervisor.start, vec!["vm", "start", "{name}"]);
        let both = text.replacen("kind = \"command\"", "kind = \"proxmox\"", 1);
        assert!(parse(&both).unwrap_err().contains("command"));
    }
}
