//! OpenNebula's driver plumbing for tests: `tests/harness/opennebula/` runs our datastore and
//! transfer driver (`plugins/opennebula/remotes`) through OpenNebula 7.4's own driver
//! processes, the way oned runs them. [`One`] is one harness directory with the datastore
//! attributes every action gets.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::{bin, needs};

/// `tests/harness/opennebula` of the source tree.
pub fn harness() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("harness/opennebula")
}

/// Our driver's action scripts, as they are installed (`remotes/{datastore,tm}/strata`).
pub fn driver() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/opennebula/remotes")
}

/// The harness runs OpenNebula's Ruby driver processes.
pub fn needs_ruby() -> needs::Need {
    needs::tool("ruby", "ruby")
}

/// One harness directory, and the datastore our actions run against.
pub struct One {
    /// Everything the harness writes (`ONE_HARNESS_DIR`).
    pub dir: PathBuf,
    /// The controller's port on 127.0.0.1.
    pub port: u16,
    /// The datastore's BRIDGE_LIST.
    pub bridge: String,
    /// Extra environment for the driver processes (passed through the harness).
    pub env: Vec<(String, String)>,
}

impl One {
    /// A harness directory below `dir` for the controller on `port`.
    pub fn new(dir: &Path, port: u16, bridge: &str) -> One {
        let dir = dir.join("one");
        std::fs::create_dir_all(&dir).expect("harness directory");
        One {
            dir,
            port,
            bridge: bridge.into(),
            env: Vec::new(),
        }
    }

    fn command(&self, tool: &str) -> Command {
        let mut cmd = Command::new(harness().join(tool));
        let bin_dir = bin("strata-one").parent().unwrap().to_path_buf();
        cmd.env("ONE_HARNESS_DIR", &self.dir)
            .env("ONE_HARNESS_PATH_PREPEND", bin_dir);
        if !self.env.is_empty() {
            let names: Vec<&str> = self.env.iter().map(|(k, _)| k.as_str()).collect();
            cmd.env("ONE_HARNESS_PASSENV", names.join(" "));
            for (k, v) in &self.env {
                cmd.env(k, v);
            }
        }
        cmd
    }

    /// The XML of `kind` (make-xml.sh), with our driver's datastore.
    pub fn xml(&self, kind: &str, file: &str, extra: &[&str]) -> PathBuf {
        let path = self.dir.join(file);
        let controllers = format!("LINSTOR_CONTROLLERS=linstor://127.0.0.1:{}", self.port);
        let bridge = format!("BRIDGE_LIST={}", self.bridge);
        let mut cmd = self.command("make-xml.sh");
        cmd.args([
            kind, "--preset", "linstor", "--ds-mad", "strata", "--tm-mad", "strata",
        ])
        .args(["--ds-attr", &controllers, "--ds-attr", &bridge])
        .args(extra)
        .arg("-o")
        .arg(&path);
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "make-xml {kind}: {out:?}");
        path
    }

    /// A datastore action; (exit status, stdout, stderr).
    pub fn ds(&self, action: &str, extra: &[&str]) -> (i32, String, String) {
        let mut args = vec!["--action", action];
        args.extend_from_slice(extra);
        let xml = self.xml("ds-action", &format!("{action}.xml"), &args);
        let out = self
            .command("one-ds.sh")
            .arg(action)
            .arg(driver())
            .arg(xml)
            .output()
            .unwrap();
        split(out)
    }

    /// Transfer lines (one-tm.sh) for VM `vm_xml`.
    pub fn tm(&self, vm_xml: &Path, line: &str) -> (i32, String, String) {
        let out = self
            .command("one-tm.sh")
            .arg("--driver-dir")
            .arg(driver())
            .arg("--vm-xml")
            .arg(vm_xml)
            .arg(line)
            .output()
            .unwrap();
        split(out)
    }

    /// A VM directory on a host, as the harness lays it out.
    pub fn vm_dir(&self, vm: u32) -> String {
        format!("{}/one/var//datastores/0/{vm}", self.dir.display())
    }

    /// Where the harness keeps `host`'s own copy of a VM directory.
    pub fn host_dir(&self, host: &str, vm: u32) -> PathBuf {
        self.dir.join(format!("hosts/{host}/datastores/0/{vm}"))
    }
}

/// (exit status, stdout, stderr) of a finished program.
pub fn split(out: Output) -> (i32, String, String) {
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
