//! The Debian packages (`scripts/build-debs.sh`, what `make deb` runs), installed with apt into
//! a fresh Debian root made by debootstrap, as an administrator installs them: every file
//! where it belongs, the settings as conffiles, the units verified and enabled by systemctl,
//! and the README's quick start run from the installed programs (a controller, two
//! satellites, a volume formatted, mounted and written to). Then removal keeps the settings
//! and purge takes them away.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use strata_tests::output_text;

/// The Debian release of the root: the one this machine's packages come from.
const SUITE: &str = "bookworm";

/// The mirror debootstrap and apt use: `STRATA_DEBIAN_MIRROR`, else Debian's.
fn mirror() -> String {
    std::env::var("STRATA_DEBIAN_MIRROR").unwrap_or_else(|_| "http://deb.debian.org/debian".into())
}

fn is_mounted(path: &Path) -> bool {
    let path = path.to_string_lossy();
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some(&*path))
}

/// A Debian root with /proc, /sys and /dev mounted in it; unmounted when dropped, and its
/// directory removed only once nothing is mounted there any more (the host's /dev is).
struct Root {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
    mounts: Vec<PathBuf>,
    /// The quick start's settings, to stop it when the test ends early.
    quickstart: Option<String>,
}

impl Root {
    fn create() -> Root {
        let dir = tempfile::Builder::new()
            .prefix("strata-debroot-")
            .tempdir_in("/var/tmp")
            .expect("a directory for the root");
        let path = dir.path().join("root");
        let out = Command::new("debootstrap")
            .args(["--variant=minbase", SUITE])
            .arg(&path)
            .arg(mirror())
            .output()
            .expect("debootstrap runs");
        assert!(
            out.status.success(),
            "debootstrap failed:\n{}",
            output_text(&out)
        );
        let mut root = Root {
            dir: Some(dir),
            path,
            mounts: Vec::new(),
            quickstart: None,
        };
        root.mount(&["-t", "proc", "proc"], "proc");
        root.mount(&["-t", "sysfs", "sysfs"], "sys");
        // Not recursive: the device nodes (loop devices appear here as they are made),
        // without the host's /dev/pts and /dev/shm.
        root.mount(&["--bind", "/dev"], "dev");
        std::fs::copy("/etc/resolv.conf", root.path.join("etc/resolv.conf")).expect("resolv.conf");
        root
    }

    fn mount(&mut self, args: &[&str], at: &str) {
        let target = self.path.join(at);
        strata_tests::run_ok(Command::new("mount").args(args).arg(&target));
        self.mounts.push(target);
    }

    /// Runs `script` with sh inside the root.
    fn sh(&self, script: &str) -> Output {
        Command::new("chroot")
            .arg(&self.path)
            .args(["/bin/sh", "-c", script])
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("HOME", "/root")
            .env("LANG", "C.UTF-8")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .expect("chroot runs")
    }

    /// Runs `script` inside the root; answers what it printed, failing the test if it fails.
    fn sh_ok(&self, script: &str) -> String {
        let out = self.sh(script);
        let text = output_text(&out);
        assert!(
            out.status.success(),
            "`{script}` failed in the root:\n{text}"
        );
        text
    }

    fn file(&self, path: &str) -> PathBuf {
        self.path.join(path.trim_start_matches('/'))
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        if let Some(env) = self.quickstart.take() {
            let _ = self.sh(&format!("{env} bash /root/quickstart.sh stop"));
        }
        for m in self.mounts.iter().rev() {
            if Command::new("umount")
                .arg(m)
                .status()
                .map(|s| !s.success())
                .unwrap_or(true)
            {
                let _ = Command::new("umount").arg("-l").arg(m).status();
            }
        }
        if self.mounts.iter().any(|m| is_mounted(m)) {
            // Removing the directory would remove what is mounted in it: leave it.
            if let Some(dir) = self.dir.take() {
                eprintln!("left {} in place: still mounted", dir.keep().display());
            }
        }
    }
}

/// Two free ports next to each other, for the quick start's satellites.
fn free_pair() -> u16 {
    loop {
        let p = strata_tests::free_port();
        if p < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
}

/// The packages `scripts/build-debs.sh --debug` builds, by package name.
fn build_packages() -> Vec<PathBuf> {
    let root = strata_tests::workspace();
    let out = Command::new(root.join("scripts/build-debs.sh"))
        .arg("--debug")
        .current_dir(&root)
        .output()
        .expect("build-debs.sh runs");
    assert!(
        out.status.success(),
        "build-debs.sh failed:\n{}",
        output_text(&out)
    );
    let mut debs: Vec<PathBuf> = std::fs::read_dir(root.join("target/debian"))
        .expect("target/debian")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    debs.sort();
    debs
}

const PACKAGES: [&str; 8] = [
    "strata-cinder",
    "strata-client",
    "strata-controller",
    "strata-docker-volume",
    "strata-opennebula",
    "strata-proxmox",
    "strata-satellite",
    "strata-vmorder",
];

#[test]
fn packages_install_into_a_fresh_debian_root_and_run_the_quick_start() {
    strata_tests::needs_cluster!(
        strata_tests::needs::tool("debootstrap", "debootstrap"),
        strata_tests::needs::tool("dpkg-deb", "dpkg"),
    );
    let debs = build_packages();
    let version = env!("CARGO_PKG_VERSION");
    for p in PACKAGES {
        let want = format!("{p}_{version}-1_amd64.deb");
        assert!(
            debs.iter()
                .any(|d| d.file_name().unwrap().to_string_lossy() == want),
            "{want} not built: {debs:?}"
        );
    }
    let root = Root::create();
    std::fs::create_dir_all(root.file("/tmp/debs")).unwrap();
    let mut wanted = Vec::new();
    for p in PACKAGES {
        let name = format!("{p}_{version}-1_amd64.deb");
        std::fs::copy(
            strata_tests::workspace().join("target/debian").join(&name),
            root.file("/tmp/debs").join(&name),
        )
        .unwrap();
        wanted.push(format!("/tmp/debs/{name}"));
    }
    // As on a host: apt resolves what the packages depend on (drbd-utils, python3) from the
    // mirror; systemd and e2fsprogs (the quick start formats its volume) come with them.
    root.sh_ok(&format!(
        "apt-get update -qq && apt-get install -y -qq --no-install-recommends systemd e2fsprogs {}",
        wanted.join(" ")
    ));

    let installed = root.sh_ok("dpkg-query -W -f '${Package} ${Version} ${Status}\\n' 'strata-*'");
    for p in PACKAGES {
        assert!(
            installed.contains(&format!("{p} {version}-1 install ok installed")),
            "{p} is not installed:\n{installed}"
        );
    }
    assert!(
        root.sh_ok("dpkg-query -W -f '${Depends}' strata-satellite")
            .contains("drbd-utils"),
        "the satellite depends on drbd-utils"
    );
    for (package, conffile) in [
        ("strata-controller", "/etc/linstor/linstor.toml"),
        ("strata-satellite", "/etc/linstor/linstor_satellite.toml"),
        ("strata-client", "/etc/linstor/linstor-client.conf"),
        ("strata-docker-volume", "/etc/linstor/docker-volume.toml"),
        ("strata-vmorder", "/etc/linstor/vmorder.toml"),
    ] {
        let listed = root.sh_ok(&format!("dpkg-query -W -f '${{Conffiles}}' {package}"));
        assert!(
            listed.contains(conffile),
            "{package}: {conffile} is not a conffile: {listed}"
        );
    }
    for file in [
        "/usr/bin/linstor",
        "/usr/bin/linstor-controller",
        "/usr/bin/linstor-satellite",
        "/usr/bin/linstor-docker-volume",
        "/usr/bin/strata-one",
        "/usr/lib/strata/strata-pve",
        "/usr/lib/strata/strata-cinder",
        "/usr/lib/systemd/system/linstor-controller.service",
        "/usr/lib/systemd/system/linstor-satellite.service",
        "/usr/lib/systemd/system/linstor-docker-volume.service",
        "/usr/share/man/man1/linstor.1.gz",
        "/usr/share/man/man1/linstor-resource-definition.1.gz",
        "/usr/share/man/man8/linstor-controller.8.gz",
        "/usr/share/man/man8/linstor-satellite.8.gz",
        "/usr/share/bash-completion/completions/linstor",
        "/usr/share/zsh/vendor-completions/_linstor",
        "/usr/share/fish/vendor_completions.d/linstor.fish",
        "/usr/share/perl5/PVE/Storage/Custom/StrataPlugin.pm",
        "/var/lib/one/remotes/datastore/strata/cp",
        "/var/lib/one/remotes/tm/strata/ln",
        "/usr/lib/python3/dist-packages/strata_cinder/driver.py",
        "/usr/share/doc/strata/ha.md",
        "/usr/bin/strata-vmorder",
        "/usr/lib/systemd/system/strata-vmorder.service",
        "/usr/lib/systemd/system/strata-controller-ready.target",
        "/usr/lib/systemd/system/strata-controller-health.service",
        "/usr/share/man/man8/strata-vmorder.8.gz",
        "/usr/share/doc/strata/controller-vm.md",
    ] {
        assert!(root.file(file).exists(), "{file} is not installed");
    }
    // The programs run in the root, with its libraries.
    assert!(root.sh_ok("linstor --version").contains(version));
    assert!(root.sh_ok("linstor-controller --version").contains(version));
    // The ordering daemon links libvirt: apt brought the library; its default settings parse.
    assert!(root.sh_ok("strata-vmorder --version").contains(version));
    let status = root.sh("strata-vmorder status");
    let said = output_text(&status);
    assert!(
        !status.status.success() && said.contains("is strata-vmorder running"),
        "status without a daemon: {said}"
    );
    // The completion is the command tree's; the helper of the Cinder driver imports.
    assert!(root
        .sh_ok("cat /usr/share/bash-completion/completions/linstor")
        .contains("resource-definition"));
    root.sh_ok("python3 -c 'import strata_cinder.helper'");

    // The units: verified by the root's systemd, and enabled as the guides say.
    let verified = root.sh_ok(
        "systemd-analyze verify /usr/lib/systemd/system/linstor-controller.service \
         /usr/lib/systemd/system/linstor-satellite.service \
         /usr/lib/systemd/system/linstor-docker-volume.service \
         /usr/lib/systemd/system/strata-vmorder.service \
         /usr/lib/systemd/system/strata-controller-ready.target \
         /usr/lib/systemd/system/strata-controller-health.service",
    );
    assert!(
        verified.trim().is_empty(),
        "the units do not verify:\n{verified}"
    );
    root.sh_ok("systemctl enable linstor-controller linstor-satellite");
    for unit in ["linstor-controller.service", "linstor-satellite.service"] {
        let link = root
            .file("/etc/systemd/system/multi-user.target.wants")
            .join(unit);
        assert!(link.is_symlink(), "{unit} is not enabled");
    }

    // The README's quick start, from the installed programs.
    std::fs::copy(
        strata_tests::workspace().join("scripts/quickstart.sh"),
        root.file("/root/quickstart.sh"),
    )
    .unwrap();
    let (ctrl, sat) = (strata_tests::free_port(), free_pair());
    let env = format!("QUICKSTART_BIN=/usr/bin QUICKSTART_PORT={ctrl} QUICKSTART_SAT_PORT={sat}");
    let mut root = root;
    root.quickstart = Some(env.clone());
    let said = root.sh_ok(&format!("{env} bash /root/quickstart.sh"));
    assert!(
        said.contains("written and read back"),
        "the quick start:\n{said}"
    );
    let listed = root.sh_ok(&format!(
        "linstor --controllers 127.0.0.1:{ctrl} resource list"
    ));
    assert!(listed.contains("my_ssd_res"), "{listed}");
    let mounted = root.file("/var/lib/strata-quickstart/mnt");
    assert!(
        is_mounted(&mounted),
        "the volume is not mounted at {mounted:?}"
    );
    assert!(!std::fs::read_to_string(mounted.join("hello.txt"))
        .unwrap()
        .trim()
        .is_empty());
    root.sh_ok(&format!("{env} bash /root/quickstart.sh stop"));
    root.quickstart = None;
    assert!(!is_mounted(&mounted));
    let loops = String::from_utf8_lossy(
        &Command::new("losetup")
            .args(["--list", "--noheadings", "--output", "BACK-FILE"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    assert!(
        !loops.contains(&*root.path.to_string_lossy()),
        "the quick start left loop devices attached:\n{loops}"
    );

    // Removal keeps the settings (an administrator's edits survive), purge removes them.
    std::fs::write(
        root.file("/etc/linstor/linstor.toml"),
        "[http]\nport = 3370\n",
    )
    .unwrap();
    root.sh_ok("apt-get remove -y -qq strata-controller");
    assert!(!root.file("/usr/bin/linstor-controller").exists());
    assert_eq!(
        std::fs::read_to_string(root.file("/etc/linstor/linstor.toml")).unwrap(),
        "[http]\nport = 3370\n"
    );
    root.sh_ok("apt-get purge -y -qq strata-controller");
    assert!(!root.file("/etc/linstor/linstor.toml").exists());
    assert!(root.file("/etc/linstor/linstor_satellite.toml").exists());
}
