//! Fixtures and helpers for the tests that run the real drbd-utils.

use std::path::{Path, PathBuf};

use crate::config::{Host, Options, Resource, Volume};

pub fn host(name: &str, node_id: u32, address: &str, port: u16, diskless: bool) -> Host {
    Host {
        name: name.into(),
        node_id,
        address: address.into(),
        port,
        diskless,
    }
}

/// Three nodes: alpha and beta diskful, gamma diskless; two volumes; options in every
/// section but Handlers.
pub fn two_volume_resource() -> Resource {
    let mut options = Options::default();
    options
        .set("Resource", "quorum", "majority")
        .set("Resource", "auto-promote", "yes")
        .set("Net", "protocol", "C")
        .set("Net", "max-buffers", "8000")
        .set("Disk", "on-io-error", "detach")
        .set("Disk", "al-extents", "6007")
        .set("PeerDevice", "resync-rate", "100M")
        .set("PeerDevice", "c-max-rate", "200M");
    Resource {
        name: "r0".into(),
        secret: Some("s3cr3t+/=".into()),
        options,
        volumes: vec![
            Volume {
                number: 0,
                minor: 1000,
            },
            Volume {
                number: 1,
                minor: 1001,
            },
        ],
        hosts: vec![
            host("alpha", 0, "10.0.0.1", 7000, false),
            host("beta", 1, "fd00::2", 7000, false),
            host("gamma", 2, "10.0.0.3", 7000, true),
        ],
        ..Default::default()
    }
}

/// The programs the real-tool tests need. Those tests declare their needs first
/// (`strata_exec::needs!`), so that they are skipped where drbd-utils are missing; this is
/// the loud fallback for a test that forgot to.
pub fn require_tool(program: &str) -> PathBuf {
    strata_exec::find_program(program).unwrap_or_else(|| {
        panic!("{program} not found: install drbd-utils (scripts/test-all.sh does)")
    })
}

pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test attaches loop devices and needs root; run it as root, as CI does"
    );
}

/// This machine's node name as drbdadm sees it (`uname -n`).
pub fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("hostname")
        .trim()
        .to_string()
}

/// A drbd.conf in a temporary directory: the global section (no usage survey) and an include
/// of the resource files written next to it.
pub struct ConfDir {
    pub dir: tempfile::TempDir,
}

impl ConfDir {
    pub fn new() -> ConfDir {
        let dir = tempfile::tempdir().unwrap();
        let conf = format!(
            "global {{ usage-count no; }}\n{}",
            crate::res::include_file(dir.path())
        );
        std::fs::write(dir.path().join("drbd.conf"), conf).unwrap();
        ConfDir { dir }
    }

    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("drbd.conf")
    }

    pub fn write(&self, resource: &str, text: &str) {
        std::fs::write(self.dir.path().join(crate::res::file_name(resource)), text).unwrap();
    }
}

/// Collapses runs of blanks so that assertions do not depend on drbdadm's column layout.
pub fn squeeze(s: &str) -> String {
    s.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What a tool printed.
#[derive(Debug)]
pub struct Ran {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs drbdadm with `-c conf`, pretending to be `node` through `__DRBD_NODE__`.
///
/// Tests only: the override needs an environment variable, and `strata_exec` runners clear
/// the environment on purpose, so this one place spawns drbdadm itself (cleared environment
/// too, plus that one variable).
pub fn drbdadm_as(node: &str, conf: &Path, args: &[&str]) -> Ran {
    adm_as(&require_tool("drbdadm"), node, conf, args)
}

/// Where drbd-utils keep the drbdadm for DRBD 8.4 kernels; drbdadm hands over to it when
/// the loaded module is 8.4, so on a host without the module tests call it directly.
pub const DRBDADM_84: &str = "/usr/lib/drbd/drbdadm-84";

/// The need of the tests that run the DRBD 8.4 drbdadm.
pub fn drbdadm_84() -> strata_exec::needs::Need {
    strata_exec::needs::files(&[DRBDADM_84.into()], "install drbd-utils")
}

/// [`drbdadm_as`] with the DRBD 8.4 drbdadm.
pub fn drbdadm84_as(node: &str, conf: &Path, args: &[&str]) -> Ran {
    require_tool("drbdadm");
    assert!(
        Path::new(DRBDADM_84).exists(),
        "{DRBDADM_84} is missing: drbd-utils are incomplete"
    );
    adm_as(Path::new(DRBDADM_84), node, conf, args)
}

fn adm_as(program: &Path, node: &str, conf: &Path, args: &[&str]) -> Ran {
    let out = std::process::Command::new(program)
        .arg("-c")
        .arg(conf)
        .args(args)
        .env_clear()
        .env("LC_ALL", "C")
        .env("PATH", strata_exec::SAFE_PATH)
        .env("__DRBD_NODE__", node)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("drbdadm runs");
    Ran {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A runner that sends `drbdadm` commands to the DRBD 8.4 drbdadm as node `node` (what the
/// drbdadm of a host with the 8.4 module does), so that the argv our [`crate::adm`] functions
/// build is checked by the real 8.4 tool. Other programs are refused.
pub struct As84 {
    pub node: String,
}

impl strata_exec::CommandRunner for As84 {
    fn run_any(
        &self,
        cmd: &strata_exec::Cmd,
    ) -> Result<strata_exec::Output, strata_exec::ExecError> {
        let argv = cmd.argv();
        assert_eq!(argv[0], "drbdadm", "As84 runs drbdadm only: {argv:?}");
        assert!(Path::new(DRBDADM_84).exists(), "{DRBDADM_84} is missing");
        let out = std::process::Command::new(DRBDADM_84)
            .args(&argv[1..])
            .env_clear()
            .env("LC_ALL", "C")
            .env("PATH", strata_exec::SAFE_PATH)
            .env("__DRBD_NODE__", &self.node)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("drbdadm-84 runs");
        Ok(strata_exec::Output {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    fn available(&self, program: &str) -> bool {
        program == "drbdadm"
    }
}

/// A sparse file of `kib` KiB on a loop device, detached again on drop.
pub struct Loop {
    pub dev: String,
    _dir: tempfile::TempDir,
}

impl Loop {
    pub fn new(kib: u64) -> Loop {
        use strata_exec::{Cmd, CommandRunner, RealRunner};
        require_root();
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("backing.img");
        let f = std::fs::File::create(&img).unwrap();
        f.set_len(kib * 1024).unwrap();
        drop(f);
        let out = RealRunner
            .run(
                &Cmd::new("losetup")
                    .arg("--find")
                    .arg("--show")
                    .arg(img.display().to_string()),
            )
            .expect("losetup attaches");
        Loop {
            dev: out.stdout.trim().to_string(),
            _dir: dir,
        }
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        use strata_exec::{Cmd, CommandRunner, RealRunner};
        let _ = RealRunner.run(&Cmd::new("losetup").arg("--detach").arg(&self.dev));
    }
}

/// drbdmeta records the last backing device of a minor in `/var/lib/drbd/drbd-minor-N.lkbd`
/// (to find metadata again after a resize); tests remove the record of the minors they used.
pub struct ForgetMinor(pub u32);

impl Drop for ForgetMinor {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(format!("/var/lib/drbd/drbd-minor-{}.lkbd", self.0));
    }
}
