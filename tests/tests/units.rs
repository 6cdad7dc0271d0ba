//! The systemd units the suite ships (`packaging/systemd/`, the plugins' `systemd/`): each
//! passes `systemd-analyze verify` (with its program pointed at the one this build made),
//! starts the program the build makes, and restarts as the roles need.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Every unit file of the tree.
fn units() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf();
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
        .filter(|p| p.extension().is_some_and(|e| e == "service"))
        .collect();
    out.sort();
    out
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
        assert!(
            matches!(setting(&text, "Restart"), Some("always" | "on-failure")),
            "{unit:?}: no restart on failure"
        );
        assert!(
            setting(&text, "WantedBy").is_some(),
            "{unit:?}: not enabled by anything"
        );
    }
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
