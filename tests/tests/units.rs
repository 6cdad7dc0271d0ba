//! The systemd units the suite ships (`packaging/systemd/`, the plugins' `systemd/`): each
//! passes `systemd-analyze verify` (with its program pointed at the one this build made),
//! starts the program the build makes, and restarts as the roles need.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Every unit file of the tree (services and targets).
fn unit_files() -> Vec<PathBuf> {
    let root = strata_tests::workspace();
    let mut dirs = vec![root.join("packaging/systemd")];
    for plugin in std::fs::read_dir(root.join("plugins"))
        .expect("plugins")
        .flatten()
    {
        dirs.push(plugin.path().join("systemd"));
    }
    let mut out: Vec<PathBuf> = dirs
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "service" || e == "target")
        })
        .collect();
    out.sort();
    out
}

/// Every service unit of the tree.
fn units() -> Vec<PathBuf> {
    unit_files()
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "service"))
        .collect()
}

/// The value of `key=` in a unit's text.
fn setting<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{key}=")))
}

#[test]
fn units_verify_and_start_what_the_build_makes() {
    strata_exec::needs!(strata_tests::needs::tool("systemd-analyze", "systemd"));
    let units = units();
    let names: Vec<String> = units
        .iter()
        .map(|u| u.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for want in [
        "linstor-controller.service",
        "linstor-satellite.service",
        "linstor-docker-volume.service",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} missing: {names:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    for unit in &units {
        let text = std::fs::read_to_string(unit).unwrap();
        let exec = setting(&text, "ExecStart").unwrap_or_else(|| panic!("{unit:?}: no ExecStart"));
        let program = exec.split_whitespace().next().unwrap();
        let name = program
            .strip_prefix("/usr/bin/")
            .unwrap_or_else(|| panic!("{unit:?}: {program} is not installed in /usr/bin"));
        // The program the build makes, where the package puts it.
        let built = strata_tests::bin(name);
        let copy = dir.path().join(unit.file_name().unwrap());
        std::fs::write(&copy, text.replace(program, built.to_str().unwrap())).unwrap();
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&copy)
            .output()
            .expect("systemd-analyze runs");
        let said = strata_tests::output_text(&out);
        assert!(
            out.status.success() && said.trim().is_empty(),
            "{unit:?} does not verify:\n{said}"
        );
        if setting(&text, "Type") == Some("oneshot") {
            // A one-time step: started by what requires it, never restarted.
            let name = unit.file_name().unwrap().to_string_lossy().into_owned();
            let required = unit_files()
                .iter()
                .filter_map(|u| std::fs::read_to_string(u).ok())
                .any(|t| setting(&t, "Requires").is_some_and(|r| r.contains(name.as_str())));
            assert!(required, "{unit:?}: no unit requires it");
            continue;
        }
        assert!(
            matches!(setting(&text, "Restart"), Some("always" | "on-failure")),
            "{unit:?}: no restart on failure"
        );
        assert!(
            setting(&text, "WantedBy").is_some(),
            "{unit:?}: not enabled by anything"
        );
    }
    // The ordering daemon comes after the satellite (the controller VM's volumes are up from
    // its record) and before the hypervisors' own start of guests.
    let vmorder = std::fs::read_to_string(
        units
            .iter()
            .find(|u| u.ends_with("strata-vmorder.service"))
            .expect("strata-vmorder.service"),
    )
    .unwrap();
    assert!(setting(&vmorder, "After")
        .unwrap()
        .contains("linstor-satellite.service"));
    for guests in ["pve-guests.service", "libvirt-guests.service"] {
        assert!(setting(&vmorder, "Before").unwrap().contains(guests));
    }
    // The target the guests wait for is reached only after the controller answered.
    let target = std::fs::read_to_string(
        unit_files()
            .iter()
            .find(|u| u.ends_with("strata-controller-ready.target"))
            .expect("strata-controller-ready.target"),
    )
    .unwrap();
    assert_eq!(
        setting(&target, "Requires"),
        Some("strata-controller-health.service")
    );
    assert_eq!(
        setting(&target, "After"),
        Some("strata-controller-health.service")
    );
    // The controller comes back after losing its leadership (it exits to stop writing).
    let controller = std::fs::read_to_string(
        units
            .iter()
            .find(|u| u.ends_with("linstor-controller.service"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(setting(&controller, "Restart"), Some("always"));
    // The satellite is up before the guests whose disks it serves.
    let satellite = std::fs::read_to_string(
        units
            .iter()
            .find(|u| u.ends_with("linstor-satellite.service"))
            .unwrap(),
    )
    .unwrap();
    let before = setting(&satellite, "Before").unwrap_or("");
    for guests in ["pve-guests.service", "libvirt-guests.service"] {
        assert!(
            before.contains(guests),
            "satellite not before {guests}: {before}"
        );
    }
}

/// A socket standing for systemd's `$NOTIFY_SOCKET`.
fn notify_socket(dir: &Path) -> (PathBuf, std::os::unix::net::UnixDatagram) {
    let path = dir.join("notify");
    let sock = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    (path, sock)
}

fn ready_message(sock: &std::os::unix::net::UnixDatagram) -> String {
    let mut buf = [0u8; 512];
    let n = sock.recv(&mut buf).expect("a READY=1 message within 30 s");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn the_daemons_tell_systemd_when_they_are_ready() {
    strata_tests::needs_cluster!();
    for unit in ["linstor-controller.service", "linstor-satellite.service"] {
        let path = units().into_iter().find(|u| u.ends_with(unit)).unwrap();
        let text = std::fs::read_to_string(path).unwrap();
        assert_eq!(setting(&text, "Type"), Some("notify"), "{unit}");
        assert_eq!(setting(&text, "NotifyAccess"), Some("main"), "{unit}");
    }
    // A satellite with a volume in its record, restarted as systemd would start it: READY=1
    // comes once it has applied its record (the volume is back), not before.
    let mut c = strata_tests::TestCluster::start(1);
    c.register_all();
    c.create_group("rg1", 1);
    c.spawn("rg1", "ready1", 16 * 1024);
    c.stop_satellite(0);
    let dir = tempfile::tempdir().unwrap();
    let (socket, sock) = notify_socket(dir.path());
    let s = &c.satellites[0];
    let log = dir.path().join("satellite.log");
    let mut sat = strata_tests::Proc::spawn(
        Command::new(strata_tests::bin("linstor-satellite"))
            .arg("--port")
            .arg(s.port.to_string())
            .args(["--listen-addr", "127.0.0.1", "--state-dir"])
            .arg(&s.state_dir)
            .arg("--config")
            .arg(c.dir.path().join("linstor_satellite.toml"))
            .env("NOTIFY_SOCKET", &socket),
        &log,
    );
    let said = ready_message(&sock);
    assert!(said.starts_with("READY=1\n"), "{said}");
    assert!(
        said.contains(&format!("MAINPID={}", sat.pid().unwrap())),
        "{said}"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("converged from the local record") && text.contains("volumes=1"),
        "READY=1 before the record was applied:\n{text}"
    );
    sat.stop();

    // The controller: READY=1 once it serves.
    let port = strata_tests::free_port();
    let cdir = dir.path().join("controller");
    std::fs::create_dir_all(&cdir).unwrap();
    std::fs::write(cdir.join("linstor.toml"), "").unwrap();
    let (socket, sock) = {
        let d = cdir.join("n");
        std::fs::create_dir_all(&d).unwrap();
        notify_socket(&d)
    };
    let mut ctrl = strata_tests::Proc::spawn(
        Command::new(strata_tests::bin("linstor-controller"))
            .args(["--listen-addr", "127.0.0.1", "--port", &port.to_string()])
            .arg("--data-dir")
            .arg(cdir.join("data"))
            .arg("--config")
            .arg(cdir.join("linstor.toml"))
            .env("NOTIFY_SOCKET", &socket),
        &cdir.join("controller.log"),
    );
    let said = ready_message(&sock);
    assert!(said.starts_with("READY=1\nSTATUS=serving"), "{said}");
    assert_eq!(
        strata_tests::http_status(port, "/v1/controller/version"),
        Some(200),
        "READY=1 before the API answered"
    );
    ctrl.stop();
}
