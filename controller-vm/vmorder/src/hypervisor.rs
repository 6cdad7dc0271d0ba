//! Starting a VM and asking whether it runs: libvirt through its C library (the `virt`
//! crate), Proxmox VE through `qm`, or the administrator's own commands.

use std::sync::Arc;
use std::time::Duration;

use strata_exec::{Cmd, CommandRunner, ExecError};

use crate::config::{self, Kind};

/// What the ordering needs of a hypervisor.
pub trait Hypervisor: Send + Sync {
    /// Whether VM `name` runs on this host.
    fn is_running(&self, name: &str) -> Result<bool, String>;
    /// Starts VM `name` on this host.
    fn start(&self, name: &str) -> Result<(), String>;
    /// Whether the hypervisor would start VM `name` by itself at boot (`None`: not known).
    fn autostart(&self, name: &str) -> Result<Option<bool>, String>;
}

/// The hypervisor the settings name.
pub fn from_config(h: &config::Hypervisor) -> Box<dyn Hypervisor> {
    let runner: Arc<dyn CommandRunner> = Arc::new(strata_exec::RealRunner);
    match h.kind {
        Kind::Libvirt => Box::new(Libvirt { uri: h.uri.clone() }),
        Kind::Proxmox => Box::new(Qm { runner }),
        Kind::Command => Box::new(Commands {
            runner,
            start: h.start.clone(),
            running: h.running.clone(),
        }),
    }
}

/// libvirt, one connection per call (the daemon calls seldom; libvirtd may restart between).
pub struct Libvirt {
    pub uri: String,
}

impl Libvirt {
    fn domain(&self, name: &str) -> Result<(virt::connect::Connect, virt::domain::Domain), String> {
        let conn = virt::connect::Connect::open(Some(&self.uri))
            .map_err(|e| format!("cannot connect to libvirt at {}: {e}", self.uri))?;
        match conn.lookup_domain_by_name(name) {
            Ok(d) => Ok((conn, d)),
            Err(e) => Err(format!(
                "libvirt at {} has no domain {name} ({e}): define it first (virsh define)",
                self.uri
            )),
        }
    }
}

impl Hypervisor for Libvirt {
    fn is_running(&self, name: &str) -> Result<bool, String> {
        let (_conn, d) = self.domain(name)?;
        d.is_active().map_err(|e| format!("libvirt: {name}: {e}"))
    }

    fn start(&self, name: &str) -> Result<(), String> {
        let (_conn, d) = self.domain(name)?;
        if d.is_active().map_err(|e| format!("libvirt: {name}: {e}"))? {
            return Ok(());
        }
        d.create()
            .map(|_| ())
            .map_err(|e| format!("libvirt could not start {name}: {e}"))
    }

    fn autostart(&self, name: &str) -> Result<Option<bool>, String> {
        let (_conn, d) = self.domain(name)?;
        d.autostart()
            .map(Some)
            .map_err(|e| format!("libvirt: {name}: {e}"))
    }
}

/// Proxmox VE's `qm`.
pub struct Qm {
    pub runner: Arc<dyn CommandRunner>,
}

const QM_TIMEOUT: Duration = Duration::from_secs(300);

impl Hypervisor for Qm {
    fn is_running(&self, name: &str) -> Result<bool, String> {
        let out = self
            .runner
            .run(&Cmd::new("qm").args(["status", name]).timeout(QM_TIMEOUT))
            .map_err(|e| e.to_string())?;
        // "status: running" / "status: stopped"
        Ok(out
            .stdout
            .lines()
            .any(|l| l.trim().strip_prefix("status:").map(str::trim) == Some("running")))
    }

    fn start(&self, name: &str) -> Result<(), String> {
        if self.is_running(name)? {
            return Ok(());
        }
        self.runner
            .run(&Cmd::new("qm").args(["start", name]).timeout(QM_TIMEOUT))
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn autostart(&self, name: &str) -> Result<Option<bool>, String> {
        let out = self
            .runner
            .run(&Cmd::new("qm").args(["config", name]).timeout(QM_TIMEOUT))
            .map_err(|e| e.to_string())?;
        Ok(Some(out.stdout.lines().any(|l| {
            l.trim().strip_prefix("onboot:").map(str::trim) == Some("1")
        })))
    }
}

/// The administrator's commands.
pub struct Commands {
    pub runner: Arc<dyn CommandRunner>,
    pub start: Vec<String>,
    pub running: Vec<String>,
}

fn command(argv: &[String], name: &str) -> Cmd {
    let mut args = argv.iter().map(|a| a.replace("{name}", name));
    let mut cmd = Cmd::new(args.next().unwrap_or_default()).timeout(QM_TIMEOUT);
    for a in args {
        cmd = cmd.arg(a);
    }
    cmd
}

impl Hypervisor for Commands {
    fn is_running(&self, name: &str) -> Result<bool, String> {
        match self.runner.run(&command(&self.running, name)) {
            Ok(_) => Ok(true),
            Err(ExecError::Failed { status: 1, .. }) => Ok(false),
            Err(e) => Err(e.to_string()),
        }
    }

    fn start(&self, name: &str) -> Result<(), String> {
        self.runner
            .run(&command(&self.start, name))
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn autostart(&self, _name: &str) -> Result<Option<bool>, String> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_exec::{Output, ScriptedRunner};

    #[test]
    fn qm_reads_status_and_onboot() {
        let r = Arc::new(ScriptedRunner::new());
        r.expect(&["qm", "status", "100"], Output::ok("status: running\n"))
            .expect(&["qm", "status", "101"], Output::ok("status: stopped\n"))
            .expect(&["qm", "start", "101"], Output::ok(""))
            .expect(
                &["qm", "config", "101"],
                Output::ok("boot: order=scsi0\nonboot: 1\nscsi0: strata:vm-101-disk-0\n"),
            );
        let qm = Qm { runner: r.clone() };
        assert!(qm.is_running("100").unwrap());
        qm.start("101").unwrap();
        assert_eq!(qm.autostart("101").unwrap(), Some(true));
        assert!(r.remaining().is_empty());
    }

    #[test]
    fn commands_fill_in_the_name_and_read_the_status() {
        let r = Arc::new(ScriptedRunner::new());
        r.expect(&["vm", "running", "ctl"], Output::failed(1, ""))
            .expect(&["vm", "start", "ctl"], Output::ok(""))
            .expect(&["vm", "running", "ctl"], Output::ok(""))
            .expect(&["vm", "running", "ctl"], Output::failed(2, "broken\n"));
        let h = Commands {
            runner: r.clone(),
            start: vec!["vm".into(), "start".into(), "{name}".into()],
            running: vec!["vm".into(), "running".into(), "{name}".into()],
        };
        assert!(!h.is_running("ctl").unwrap());
        h.start("ctl").unwrap();
        assert!(h.is_running("ctl").unwrap());
        assert!(h.is_running("ctl").unwrap_err().contains("broken"));
    }
}
