//! The controller-VM appliance (`controller-vm/image/build.sh`): built offline from Debian
//! packages, it boots under QEMU (software emulation) from its disk image through its own
//! bootloader to a controller that answers the REST API; its database lives on a second
//! disk, formatted at first use, and survives a power cut and a boot from a fresh copy of
//! the image (as an update would be); a configuration disk (label STRATACFG) sets the
//! network statically and the controller's settings.

use std::path::Path;
use std::process::Command;

use strata_tests::appliance::{self, fresh_root, Guest, Spec};
use strata_tests::free_port;

/// Boots `root` with `db` as second disk and `cfg` as third, the host's `port` forwarded to
/// the guest's `guest_port`.
fn boot(
    dir: &Path,
    root: &Path,
    db: &Path,
    cfg: Option<&Path>,
    port: u16,
    guest_port: u16,
) -> Guest {
    let mut disks = vec![
        (root.to_path_buf(), "qcow2", false),
        (db.to_path_buf(), "raw", false),
    ];
    if let Some(cfg) = cfg {
        disks.push((cfg.to_path_buf(), "raw", true));
    }
    Guest::boot(
        dir,
        &format!("appliance-{port}"),
        &Spec {
            disks,
            nets: vec![format!("user,hostfwd=tcp:127.0.0.1:{port}-:{guest_port}")],
            ..Default::default()
        },
    )
}

#[test]
fn the_appliance_boots_to_a_controller_that_keeps_its_database() {
    strata_tests::needs_cluster!(appliance::needs());
    let out = appliance::build(false);
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
    let vm = boot(
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
    let cfg = appliance::config_disk(
        dir.path(),
        "cfg.img",
        &[
            (
                "appliance.conf",
                "ADDRESS=10.0.2.15/24\nGATEWAY=10.0.2.2\nDNS=10.0.2.3\nHOSTNAME=ctrl-appliance\n",
            ),
            ("linstor.toml", "[http]\nport = 3380\n"),
        ],
    );
    let port = free_port();
    let vm = boot(
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
