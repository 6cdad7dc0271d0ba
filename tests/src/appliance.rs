//! Disk images of `controller-vm/image/build.sh` (the controller appliance, and the
//! hypervisor host image of `--host`) booted under QEMU (software emulation) through their
//! own bootloader and systemd. Each guest's serial console is a Unix socket the test types
//! into (the images log root in on it); a guest is powered off (qemu killed) when dropped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::{free_port, output_text, run_ok, Proc};

/// What building and booting an image needs besides root and loop devices: debootstrap and
/// extlinux for the build, QEMU of the VM tier, and vfat tools for the configuration disks.
pub fn needs() -> crate::needs::Need {
    crate::vm::image()?;
    for (tool, package) in [
        ("debootstrap", "debootstrap"),
        ("extlinux", "extlinux"),
        ("mkfs.vfat", "dosfstools"),
        ("mcopy", "mtools"),
    ] {
        crate::needs::tool(tool, package)?;
    }
    Ok(())
}

/// Builds the image (`--host` for the hypervisor host's) of the debug packages; answers the
/// directory holding it.
pub fn build(host: bool) -> PathBuf {
    let root = crate::workspace();
    let mut cmd = Command::new(root.join("controller-vm/image/build.sh"));
    cmd.arg("--debug");
    if host {
        cmd.arg("--host");
    }
    let out = cmd.current_dir(&root).output().expect("build.sh runs");
    assert!(
        out.status.success(),
        "the image build failed:\n{}",
        output_text(&out)
    );
    root.join("target/controller-vm")
}

/// A fresh copy-on-write copy of an image: what a new VM from it starts with.
pub fn fresh_root(dir: &Path, image: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    run_ok(
        Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
            .arg(image)
            .arg(&path),
    );
    path
}

/// A vfat disk labelled STRATACFG holding `files` (name, content): the images' first-boot
/// settings (`appliance.conf`, settings files for /etc/linstor, anything else to copy by hand).
pub fn config_disk(dir: &Path, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let disk = dir.join(name);
    let _ = std::fs::remove_file(&disk);
    run_ok(
        Command::new("mkfs.vfat")
            .args(["-n", "STRATACFG", "-C"])
            .arg(&disk)
            .arg("1440"),
    );
    let staging = dir.join(format!("{name}.files"));
    std::fs::create_dir_all(&staging).unwrap();
    let mut cmd = Command::new("mcopy");
    cmd.arg("-i").arg(&disk);
    for (file, text) in files {
        let path = staging.join(file);
        std::fs::write(&path, text).unwrap();
        cmd.arg(path);
    }
    cmd.arg("::/");
    run_ok(&mut cmd);
    disk
}

/// How one guest boots.
#[derive(Debug, Clone, Default)]
pub struct Spec {
    /// Disks in order (`/dev/vda`, `vdb`, ...): path, format (`qcow2`, `raw`), read-only.
    pub disks: Vec<(PathBuf, &'static str, bool)>,
    /// `-netdev` values, each given a virtio NIC (ids `n0`, `n1`, ... are set here; a value
    /// starts with the backend, e.g. `user,hostfwd=...` or `socket,listen=127.0.0.1:P`).
    pub nets: Vec<String>,
    /// The last byte of each NIC's MAC address (guests on one link need their own).
    pub mac: u8,
    /// Memory in MiB (default 1024).
    pub mem: Option<u32>,
}

/// A guest running under QEMU.
pub struct Guest {
    pub name: String,
    /// The QEMU process, when this test started it.
    proc: Option<Proc>,
    console: PathBuf,
    seen: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    input: Option<std::os::unix::net::UnixStream>,
}

impl Guest {
    pub fn boot(dir: &Path, name: &str, spec: &Spec) -> Guest {
        let lab = crate::vm::image_dir();
        let qemu = lab.join("qemu/usr/bin/qemu-system-x86_64");
        let console = dir.join(format!("console-{name}.sock"));
        let _ = std::fs::remove_file(&console);
        let mut cmd = Command::new(qemu);
        cmd.env(
            "QEMU_MODULE_DIR",
            lab.join("qemu/usr/lib/x86_64-linux-gnu/qemu"),
        )
        .args(["-accel", "tcg", "-smp", "1", "-display", "none", "-m"])
        .arg(spec.mem.unwrap_or(1024).to_string())
        .args(["-L", "/usr/share/seabios", "-L", "/usr/share/qemu"])
        .arg("-serial")
        .arg(format!("unix:{},server=on,wait=off", console.display()));
        for (path, format, readonly) in &spec.disks {
            let ro = if *readonly { ",readonly=on" } else { "" };
            cmd.arg("-drive").arg(format!(
                "file={},if=virtio,format={format}{ro}",
                path.display()
            ));
        }
        for (i, net) in spec.nets.iter().enumerate() {
            let (backend, rest) = net.split_once(',').unwrap_or((net.as_str(), ""));
            let sep = if rest.is_empty() { "" } else { "," };
            cmd.arg("-netdev")
                .arg(format!("{backend},id=n{i}{sep}{rest}"))
                .arg("-device")
                .arg(format!(
                    "virtio-net-pci,netdev=n{i},mac=52:54:00:99:{i:02x}:{:02x},romfile=",
                    spec.mac
                ));
        }
        let proc = Proc::spawn(&mut cmd, &dir.join(format!("qemu-{name}.log")));
        let mut g = Guest {
            name: name.to_string(),
            proc: Some(proc),
            console,
            seen: Default::default(),
            input: None,
        };
        g.attach();
        g
    }

    /// A guest some hypervisor runs (libvirt), through its serial console's socket.
    pub fn on_console(name: &str, console: &Path) -> Guest {
        let mut g = Guest {
            name: name.to_string(),
            proc: None,
            console: console.to_path_buf(),
            seen: Default::default(),
            input: None,
        };
        g.attach();
        g
    }

    /// Connects to the serial console and keeps everything it prints.
    fn attach(&mut self) {
        let start = Instant::now();
        let stream = loop {
            match std::os::unix::net::UnixStream::connect(&self.console) {
                Ok(s) => break s,
                Err(e) => {
                    assert!(start.elapsed() < Duration::from_secs(30), "no console: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        };
        let mut reader = stream.try_clone().unwrap();
        let seen = self.seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = std::io::Read::read(&mut reader, &mut buf) {
                if n == 0 {
                    break;
                }
                seen.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        self.input = Some(stream);
    }

    /// Everything the console printed so far.
    pub fn console(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().unwrap()).into_owned()
    }

    /// What QEMU printed.
    pub fn qemu_log(&self) -> String {
        self.proc.as_ref().map(Proc::log_text).unwrap_or_default()
    }

    /// Waits (up to `limit`) for the autologin shell's prompt.
    pub fn wait_shell(&self, limit: Duration) {
        let start = Instant::now();
        while !self.console().contains(":~# ") {
            assert!(
                start.elapsed() < limit,
                "{}: no shell on the console:\n{}\nqemu:\n{}",
                self.name,
                self.console(),
                self.qemu_log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Runs `command` in the console's shell, waiting at most `limit`; answers its exit
    /// status and what it printed (with the kernel's own console lines, should any come).
    pub fn run_for(&mut self, command: &str, limit: Duration) -> (i32, String) {
        // What is typed before the shell's first prompt is lost.
        self.wait_shell(Duration::from_secs(300));
        let mark = format!("END{}", free_port());
        let line = format!("{command}; echo {mark}-$?\r");
        std::io::Write::write_all(self.input.as_mut().unwrap(), line.as_bytes()).unwrap();
        let start = Instant::now();
        loop {
            let text = self.console();
            // The echo of the command line holds the mark followed by "-$?", the answer the
            // mark followed by the status.
            let echoed = text
                .rfind(&format!("{mark}-$?"))
                .map(|b| b + mark.len() + 3);
            if let Some(begin) = echoed {
                if let Some(end) = text[begin..].find(&format!("{mark}-")) {
                    let after = &text[begin + end + mark.len() + 1..];
                    let digits: String = after.chars().take_while(|c| c.is_ascii_digit()).collect();
                    // The status is whole once a character follows it.
                    if digits.len() < after.len() {
                        let status = digits.parse().unwrap_or(-1);
                        return (status, text[begin..begin + end].to_string());
                    }
                }
            }
            assert!(
                start.elapsed() < limit,
                "{}: `{command}` did not finish within {limit:?}; console:\n{text}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs `command` (a minute at most), which must succeed; answers what it printed.
    pub fn sh(&mut self, command: &str) -> String {
        let (status, out) = self.run_for(command, Duration::from_secs(60));
        assert_eq!(
            status, 0,
            "{}: `{command}` failed with {status}:\n{out}",
            self.name
        );
        out
    }

    /// Waits until the controller in the guest answers on the host's `port`.
    pub fn wait_api(&self, port: u16) {
        let start = Instant::now();
        while crate::http_status(port, "/v1/controller/version") != Some(200) {
            assert!(
                start.elapsed() < Duration::from_secs(300),
                "the guest's controller did not answer; console:\n{}\nqemu:\n{}",
                self.console(),
                self.qemu_log()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
        eprintln!(
            "{}: the controller answered after {:?}",
            self.name,
            start.elapsed()
        );
    }

    /// Powers the guest off at once, as a power cut would.
    pub fn power_off(&mut self) {
        if let Some(p) = self.proc.as_mut() {
            p.kill9();
        }
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        self.power_off();
    }
}
