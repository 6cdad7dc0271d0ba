//! The controller-VM appliance (`controller-vm/image/build.sh`): built offline from Debian
//! packages, it boots under QEMU (software emulation) from its disk image through its own
//! bootloader to a controller that answers the REST API; its database lives on a second
//! disk, formatted at first use, and survives a power cut and a boot from a fresh copy of
//! the image (as an update would be); a configuration disk (label STRATACFG) sets the
//! network statically and the controller's settings.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use strata_tests::{free_port, output_text, run_ok, Proc};

fn build_image() -> PathBuf {
    let root = strata_tests::workspace();
    let out = Command::new(root.join("controller-vm/image/build.sh"))
        .arg("--debug")
        .current_dir(&root)
        .output()
        .expect("build.sh runs");
    assert!(
        out.status.success(),
        "the appliance build failed:\n{}",
        output_text(&out)
    );
    root.join("target/controller-vm")
}

/// The appliance running under QEMU; killed (as a power cut) when dropped. Its serial
/// console is a Unix socket the test talks to (the appliance logs root in on it).
struct Appliance {
    proc: Proc,
    console: PathBuf,
    seen: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    input: Option<std::os::unix::net::UnixStream>,
}

impl Appliance {
    /// Boots `root` (a disk image) with `db` as second disk and `cfg` as third, the host's
    /// `port` forwarded to the guest's `guest_port`.
    fn boot(
        dir: &Path,
        root: &Path,
        db: &Path,
        cfg: Option<&Path>,
        port: u16,
        guest_port: u16,
    ) -> Appliance {
        let lab = strata_tests::vm::image_dir();
        let qemu = lab.join("qemu/usr/bin/qemu-system-x86_64");
        let console = dir.join(format!("console-{port}.sock"));
        let mut cmd = Command::new(qemu);
        cmd.env(
            "QEMU_MODULE_DIR",
            lab.join("qemu/usr/lib/x86_64-linux-gnu/qemu"),
        )
        .args([
            "-accel", "tcg", "-m", "1024", "-smp", "1", "-display", "none",
        ])
        .args(["-L", "/usr/share/seabios", "-L", "/usr/share/qemu"])
        .arg("-serial")
        .arg(format!("unix:{},server=on,wait=off", console.display()))
        .arg("-drive")
        .arg(format!("file={},if=virtio,format=qcow2", root.display()))
        .arg("-drive")
        .arg(format!("file={},if=virtio,format=raw", db.display()));
        if let Some(cfg) = cfg {
            cmd.arg("-drive").arg(format!(
                "file={},if=virtio,format=raw,readonly=on",
                cfg.display()
            ));
        }
        cmd.arg("-netdev")
            .arg(format!(
                "user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:{guest_port}"
            ))
            .args(["-device", "virtio-net-pci,netdev=n0,romfile="]);
        let proc = Proc::spawn(&mut cmd, &dir.join(format!("qemu-{port}.log")));
        let mut vm = Appliance {
            proc,
            console,
            seen: Default::default(),
            input: None,
        };
        vm.attach();
        vm
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

    fn console(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().unwrap()).into_owned()
    }

    /// Runs `command` in the console's shell; answers what it printed before the end mark.
    fn sh(&mut self, command: &str) -> String {
        // The autologin shell's prompt first: what is typed before it is lost.
        let start = Instant::now();
        while !self.console().contains(":~# ") {
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "no shell on the console:\n{}",
                self.console()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
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
                    return text[begin..begin + end].to_string();
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "`{command}` did not finish; console:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the controller in the guest answers on the host's `port`.
    fn wait_api(&self, port: u16) {
        let start = Instant::now();
        while strata_tests::http_status(port, "/v1/controller/version") != Some(200) {
            assert!(
                start.elapsed() < Duration::from_secs(300),
                "the appliance's controller did not answer; console:\n{}\nqemu:\n{}",
                self.console(),
                self.proc.log_text()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
        eprintln!("appliance answered after {:?}", start.elapsed());
    }
}

impl Drop for Appliance {
    fn drop(&mut self) {
        self.proc.kill9();
    }
}

/// A fresh copy-on-write copy of the image: what a new VM from it starts with.
fn fresh_root(dir: &Path, image: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    run_ok(
        Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
            .arg(image)
            .arg(&path),
    );
    path
}

#[test]
fn the_appliance_boots_to_a_controller_that_keeps_its_database() {
    strata_tests::needs_cluster!(
        strata_tests::vm::image(),
        strata_tests::needs::tool("debootstrap", "debootstrap"),
        strata_tests::needs::tool("extlinux", "extlinux"),
        strata_tests::needs::tool("mkfs.vfat", "dosfstools"),
        strata_tests::needs::tool("mcopy", "mtools"),
    );
    let out = build_image();
    let image = out.join("strata-controller-vm.qcow2");
    let raw = std::fs::metadata(out.join("strata-controller-vm.raw")).unwrap();
    assert_eq!(raw.len(), 2048 << 20, "a 2 GiB disk");
    let size = std::fs::metadata(&image).unwrap().len();
    eprintln!("appliance image: {} MiB (qcow2)", size >> 20);
    assert!(
        size < 400 << 20,
        "the image is {} MiB, over 400 MiB",
        size >> 20
    );

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.img");
    std::fs::File::create(&db)
        .unwrap()
        .set_len(256 << 20)
        .unwrap();

    // First boot: DHCP, a blank database disk.
    let port = free_port();
    let vm = Appliance::boot(
        dir.path(),
        &fresh_root(dir.path(), &image, "root-1.qcow2"),
        &db,
        None,
        port,
        3370,
    );
    vm.wait_api(port);
    // systemd started the controller's unit and got its readiness (Type=notify): active,
    // not still activating.
    let mut vm = vm;
    let state = vm
        .sh("systemctl is-active linstor-controller strata-appliance-setup var-lib-linstor.mount");
    assert_eq!(
        state
            .split_whitespace()
            .filter(|w| !w.starts_with('\u{1b}'))
            .collect::<Vec<_>>(),
        ["active", "active", "active"],
        "{}",
        vm.console()
    );
    let client = reqwest::blocking::Client::new();
    let created = client
        .post(format!("http://127.0.0.1:{port}/v1/resource-groups"))
        .json(&serde_json::json!({"name": "rg-appliance"}))
        .send()
        .unwrap();
    assert!(created.status().is_success(), "{:?}", created.text());
    // A power cut.
    drop(vm);
    let label = Command::new("blkid")
        .args(["-o", "value", "-s", "LABEL"])
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&label.stdout).trim(), "linstor-db");

    // A fresh copy of the image (as a new version would be) on the same database disk, with a
    // configuration disk: a static address and the controller on port 3380.
    let cfg = dir.path().join("cfg.img");
    run_ok(
        Command::new("mkfs.vfat")
            .args(["-n", "STRATACFG", "-C"])
            .arg(&cfg)
            .arg("1440"),
    );
    let conf = dir.path().join("appliance.conf");
    std::fs::write(
        &conf,
        "ADDRESS=10.0.2.15/24\nGATEWAY=10.0.2.2\nDNS=10.0.2.3\nHOSTNAME=ctrl-appliance\n",
    )
    .unwrap();
    let toml = dir.path().join("linstor.toml");
    std::fs::write(&toml, "[http]\nport = 3380\n").unwrap();
    run_ok(
        Command::new("mcopy")
            .arg("-i")
            .arg(&cfg)
            .arg(&conf)
            .arg(&toml)
            .arg("::/"),
    );
    let port = free_port();
    let vm = Appliance::boot(
        dir.path(),
        &fresh_root(dir.path(), &image, "root-2.qcow2"),
        &db,
        Some(&cfg),
        port,
        3380,
    );
    vm.wait_api(port);
    let groups: serde_json::Value = client
        .get(format!("http://127.0.0.1:{port}/v1/resource-groups"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(
        groups
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"] == "rg-appliance"),
        "the database did not survive: {groups}"
    );
}
