//! A real cluster on this machine: controller and satellites as processes, FILE_THIN pools,
//! volumes that are real loop devices.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use strata_client::Method;
use strata_tests::types::ResourceWithVolumes;
use strata_tests::{err_replies, mkfs_and_mount, ok_replies, run_ok, write_and_read, TestCluster};

const MIB: u64 = 1024;

fn post(
    c: &TestCluster,
    path: &str,
    body: serde_json::Value,
) -> Result<Vec<strata_tests::ApiCallRc>, strata_client::ClientError> {
    let client = c.client();
    c.block(client.write(Method::POST, path, Some(&body)))
}

fn delete(
    c: &TestCluster,
    path: &str,
) -> Result<Vec<strata_tests::ApiCallRc>, strata_client::ClientError> {
    let client = c.client();
    c.block(client.write::<()>(Method::DELETE, path, None))
}

fn resources(c: &TestCluster, rsc: &str) -> Vec<ResourceWithVolumes> {
    let client = c.client();
    c.block(client.resources(&[], &[rsc.to_string()], &[], &[]))
        .expect("resource list")
}

#[test]
fn spawned_volume_is_a_usable_block_device() {
    strata_tests::needs_cluster!();
    let c = TestCluster::start(2);
    c.register_all();
    c.create_group("my_ssd_group", 1);
    c.spawn("my_ssd_group", "my_ssd_res", 64 * MIB);

    let rs = resources(&c, "my_ssd_res");
    assert_eq!(rs.len(), 1, "one replica");
    let v = &rs[0].volumes[0];
    let dev = v.device_path.clone().expect("device path reported");
    assert!(dev.starts_with("/dev/loop"), "{dev}");
    assert_eq!(v.usable_size_kib, Some(64 * MIB as i64));
    assert_eq!(v.provider_kind, "FILE_THIN");
    assert_eq!(
        v.state.as_ref().unwrap().disk_state.as_deref(),
        Some("UpToDate")
    );

    // The device is backed by the pool's sparse image file.
    let node = rs[0].resource.node_name.clone();
    let sat = c.satellites.iter().find(|s| s.name == node).unwrap();
    let image = sat.pool_dir.join("my_ssd_res_00000.img");
    let meta = std::fs::metadata(&image).expect("image file");
    assert_eq!(meta.len(), 64 * 1024 * 1024);
    assert!(c
        .loop_devices()
        .iter()
        .any(|(d, f)| d == &dev && f.ends_with("my_ssd_res_00000.img")));

    // A file system on it holds data.
    let mnt = c.dir.path().join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let run = |cmd: &mut Command| {
        let out = cmd.output().expect("run");
        assert!(
            out.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(Command::new("mkfs.ext4").args(["-q", "-F", &dev]));
    run(Command::new("mount").arg(&dev).arg(&mnt));
    std::fs::write(mnt.join("hello.txt"), b"written through the volume").unwrap();
    run(Command::new("umount").arg(&mnt));
    run(Command::new("mount").arg(&dev).arg(&mnt));
    assert_eq!(
        std::fs::read(mnt.join("hello.txt")).unwrap(),
        b"written through the volume"
    );
    run(Command::new("umount").arg(&mnt));

    // Deleting the definition removes device and file.
    let replies = ok_replies(delete(&c, "/v1/resource-definitions/my_ssd_res"));
    assert!(
        replies.iter().any(|r| r
            .message
            .contains("Resource definition 'my_ssd_res' deleted")),
        "{replies:#?}"
    );
    assert!(!image.exists());
    assert!(c.loop_devices().is_empty());
    let client = c.client();
    assert!(c
        .block(client.resource_dfns(&[], &[], false))
        .unwrap()
        .is_empty());
}

#[test]
fn acknowledged_state_survives_kill9_and_nodes_reconverge() {
    strata_tests::needs_cluster!();
    let mut c = TestCluster::start(2);
    c.register_all();
    c.create_group("rg1", 1);
    for i in 0..5 {
        c.spawn("rg1", &format!("res{i}"), 8 * MIB);
    }
    let client = c.client();
    let before: Vec<String> = c
        .block(client.resource_dfns(&[], &[], true))
        .unwrap()
        .into_iter()
        .map(|d| d.name)
        .collect();
    let devices_before: Vec<Option<String>> =
        (0..5).map(|i| c.device_of(&format!("res{i}"))).collect();
    assert!(devices_before.iter().all(Option::is_some));

    c.kill_controller();
    c.start_controller();
    let client = c.client();
    let after: Vec<String> = c
        .block(client.resource_dfns(&[], &[], true))
        .unwrap()
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(before, after);
    // The links come back and the nodes report the same devices.
    assert!(c.wait_until(Duration::from_secs(20), || {
        (0..5).all(|i| c.device_of(&format!("res{i}")).is_some())
    }));
    let devices_after: Vec<Option<String>> =
        (0..5).map(|i| c.device_of(&format!("res{i}"))).collect();
    assert_eq!(devices_before, devices_after);
    let nodes = c.block(client.nodes(&[], &[])).unwrap();
    assert!(nodes
        .iter()
        .all(|n| n.connection_status.as_deref() == Some("ONLINE")));
}

#[test]
fn satellite_restart_reattaches_its_volumes_without_the_controller() {
    strata_tests::needs_cluster!();
    let mut c = TestCluster::start(1);
    c.register_all();
    c.create_group("rg1", 1);
    c.spawn("rg1", "keep", 16 * MIB);
    let dev = c.device_of("keep").expect("device");
    assert_eq!(
        write_and_read(&dev, b"survives reboots"),
        b"survives reboots"
    );

    // A machine restart: no controller, satellite gone, loop devices gone.
    c.kill_controller();
    c.stop_satellite(0);
    for (d, _) in c.loop_devices() {
        let out = Command::new("losetup")
            .arg("--detach")
            .arg(&d)
            .output()
            .unwrap();
        assert!(out.status.success());
    }
    assert!(c.loop_devices().is_empty());
    c.start_satellite(0);
    assert!(c.wait_until(Duration::from_secs(10), || !c.loop_devices().is_empty()));
    let (dev2, file) = c.loop_devices().remove(0);
    assert!(file.ends_with("keep_00000.img"));
    let mut buf = vec![0u8; 16];
    use std::io::Read;
    std::fs::File::open(&dev2)
        .unwrap()
        .read_exact(&mut buf)
        .unwrap();
    assert_eq!(&buf, b"survives reboots");
    // Then the controller comes back and sees the new device.
    c.start_controller();
    assert!(
        c.wait_until(Duration::from_secs(20), || c.device_of("keep").as_deref()
            == Some(dev2.as_str()))
    );
}

#[test]
fn offline_node_never_blocks_and_catches_up() {
    strata_tests::needs_cluster!();
    let mut c = TestCluster::start(2);
    c.register_all();
    c.stop_satellite(1);
    let client = c.client();
    assert!(c.wait_until(Duration::from_secs(15), || {
        c.block(client.nodes(&["node2".into()], &[]))
            .map(|n| n[0].connection_status.as_deref() == Some("OFFLINE"))
            .unwrap_or(false)
    }));
    ok_replies(post(
        &c,
        "/v1/resource-definitions",
        json!({"resource_definition": {"name": "late"}}),
    ));
    ok_replies(post(
        &c,
        "/v1/resource-definitions/late/volume-definitions",
        json!({"volume_definition": {"size_kib": 8 * MIB}}),
    ));
    let started = Instant::now();
    let replies = ok_replies(post(
        &c,
        "/v1/resource-definitions/late/resources",
        json!([{"resource": {"node_name": "node2", "props": {"StorPoolName": "pool_file"}}}]),
    ));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "must not wait for the offline node"
    );
    let warn = replies
        .iter()
        .find(|r| r.is_warning())
        .expect("offline warning");
    assert_eq!(warn.code(), 1002, "WARN_NOT_CONNECTED: {warn:?}");
    // Work for the online node is unaffected.
    ok_replies(post(
        &c,
        "/v1/resource-definitions/late/resources",
        json!([{"resource": {"node_name": "node1", "flags": ["DISKLESS"]}}]),
    ));
    assert!(c.device_of("late").is_none());
    c.start_satellite(1);
    assert!(c.wait_until(Duration::from_secs(20), || {
        resources(&c, "late")
            .iter()
            .any(|r| r.resource.node_name == "node2" && r.volumes[0].device_path.is_some())
    }));
    // A deletion while it is offline is finished when it returns.
    c.stop_satellite(1);
    assert!(c.wait_until(Duration::from_secs(15), || {
        c.block(client.nodes(&["node2".into()], &[]))
            .map(|n| n[0].connection_status.as_deref() == Some("OFFLINE"))
            .unwrap_or(false)
    }));
    let replies = ok_replies(delete(&c, "/v1/resource-definitions/late"));
    assert!(replies
        .iter()
        .any(|r| r.message.contains("marked for deletion")));
    assert!(replies.iter().any(|r| r.is_warning()));
    let rd = c
        .block(client.resource_dfns(&["late".into()], &[], false))
        .unwrap();
    assert_eq!(rd[0].flags, vec!["DELETE".to_string()]);
    c.start_satellite(1);
    assert!(c.wait_until(Duration::from_secs(20), || {
        c.block(client.resource_dfns(&[], &[], false))
            .unwrap()
            .is_empty()
    }));
    assert!(c.loop_devices().is_empty());
}

#[test]
fn unusable_pools_are_refused_before_anything_is_recorded() {
    strata_tests::needs_cluster!();
    let c = TestCluster::start(1);
    c.register_all();
    // A directory below a regular file cannot be created.
    let file = c.dir.path().join("plainfile");
    std::fs::write(&file, b"x").unwrap();
    let bad_dir = file.join("pool");
    let (status, replies) = err_replies(post(
        &c,
        "/v1/nodes/node1/storage-pools",
        json!({"storage_pool_name": "badpool", "provider_kind": "FILE",
               "props": {"StorDriver/StorPoolName": bad_dir.display().to_string()}}),
    ));
    assert_eq!(status, 400);
    assert_eq!(replies[0].code(), 990, "{replies:?}");
    assert!(
        replies[0]
            .cause
            .as_deref()
            .unwrap_or("")
            .contains("Not a directory"),
        "{replies:?}"
    );
    // LVM cannot work without device-mapper; the reason is given.
    let (status, replies) = err_replies(post(
        &c,
        "/v1/nodes/node1/storage-pools",
        json!({"storage_pool_name": "lvmpool", "provider_kind": "LVM",
               "props": {"StorDriver/StorPoolName": "vg_none"}}),
    ));
    assert_eq!(status, 400);
    assert!(replies[0]
        .message
        .contains("does not support the LVM provider"));
    let client = c.client();
    let pools: Vec<String> = c
        .block(client.storage_pools(&[], &[]))
        .unwrap()
        .into_iter()
        .map(|p| p.storage_pool_name)
        .collect();
    assert_eq!(pools, vec!["DfltDisklessStorPool", "pool_file"]);
}

#[test]
fn a_pool_too_small_is_refused_before_anything_is_created() {
    strata_tests::needs_cluster!();
    let c = TestCluster::start(1);
    c.register_all();
    // A 24 MiB file system as a preallocating FILE pool.
    let img = c.dir.path().join("small.fs");
    let mnt = c.dir.path().join("small");
    std::fs::create_dir_all(&mnt).unwrap();
    assert!(Command::new("truncate")
        .args(["-s", "24M"])
        .arg(&img)
        .status()
        .unwrap()
        .success());
    assert!(Command::new("mkfs.ext4")
        .args(["-q", "-F"])
        .arg(&img)
        .status()
        .unwrap()
        .success());
    assert!(Command::new("mount")
        .args(["-o", "loop"])
        .arg(&img)
        .arg(&mnt)
        .status()
        .unwrap()
        .success());
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(mnt.clone());
    ok_replies(post(
        &c,
        "/v1/nodes/node1/storage-pools",
        json!({"storage_pool_name": "small", "provider_kind": "FILE",
               "props": {"StorDriver/StorPoolName": mnt.join("pool").display().to_string()}}),
    ));
    ok_replies(post(
        &c,
        "/v1/resource-definitions",
        json!({"resource_definition": {"name": "big"}}),
    ));
    ok_replies(post(
        &c,
        "/v1/resource-definitions/big/volume-definitions",
        json!({"volume_definition": {"size_kib": 64 * MIB}}),
    ));
    let (status, replies) = err_replies(post(
        &c,
        "/v1/resource-definitions/big/resources",
        json!([{"resource": {"node_name": "node1", "props": {"StorPoolName": "small"}}}]),
    ));
    assert_eq!(status, 400);
    assert_eq!(
        replies[0].code(),
        980,
        "FAIL_NOT_ENOUGH_FREE_SPACE: {replies:?}"
    );
    assert!(resources(&c, "big").is_empty());
    assert_eq!(
        std::fs::read_dir(mnt.join("pool"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".img")
            })
            .count(),
        0
    );
}

#[test]
fn a_mounted_volume_is_never_pulled_away() {
    strata_tests::needs_cluster!();
    let c = TestCluster::start(1);
    c.register_all();
    c.create_group("rg1", 1);
    c.spawn("rg1", "busy", 16 * MIB);
    let dev = c.device_of("busy").expect("device");
    let mnt = c.dir.path().join("busy-mnt");
    mkfs_and_mount(&dev, &mnt);
    std::fs::write(mnt.join("data"), b"in use").unwrap();

    // The node reports the volume as in use.
    let rs = resources(&c, "busy");
    assert!(
        c.wait_until(Duration::from_secs(15), || {
            resources(&c, "busy")[0]
                .resource
                .state
                .as_ref()
                .and_then(|s| s.in_use)
                == Some(true)
        }),
        "{rs:?}"
    );

    let (status, replies) = err_replies(delete(&c, "/v1/resource-definitions/busy"));
    assert_eq!(status, 500);
    let err = replies.iter().find(|r| r.is_error()).unwrap();
    assert!(
        err.cause.as_deref().unwrap_or("").contains("in use"),
        "{err:?}"
    );
    // Still there, still mounted, data intact.
    assert_eq!(std::fs::read(mnt.join("data")).unwrap(), b"in use");
    assert!(c.loop_devices().iter().any(|(d, _)| d == &dev));

    // Once released, the pending deletion finishes on its own.
    assert!(Command::new("umount").arg(&mnt).status().unwrap().success());
    let client = c.client();
    assert!(c.wait_until(Duration::from_secs(30), || {
        c.block(client.resource_dfns(&[], &[], false))
            .unwrap()
            .is_empty()
    }));
    assert!(c.loop_devices().is_empty());
}

fn device_bytes(dev: &str) -> u64 {
    let out = Command::new("blockdev")
        .args(["--getsize64", dev])
        .output()
        .expect("blockdev");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// `volume-definition set-size`: growing reaches the block device and its file system (also
/// on a node that was offline when asked: it grows when it returns); shrinking happens only
/// when asked for explicitly, keeps the data before the new end, and waits while the volume
/// is in use.
#[test]
fn resize_grows_devices_and_shrinks_only_when_asked() {
    strata_tests::needs_cluster!();
    let mut c = TestCluster::start(1);
    c.register_all();
    c.linstor_ok(&["resource-definition", "create", "rsz"]);
    c.linstor_ok(&["volume-definition", "create", "rsz", "32M"]);
    c.linstor_ok(&["resource", "create", "node1", "rsz", "-s", "pool_file"]);
    let dev = c.device_of("rsz").expect("device");
    assert_eq!(device_bytes(&dev), 32 << 20);
    let mnt = c.dir.path().join("mnt-rsz");
    mkfs_and_mount(&dev, &mnt);
    std::fs::write(mnt.join("kept.txt"), b"kept across resizes").unwrap();

    // Grown while mounted: the device grows, and the file system can take the space (offline
    // here: this machine refuses the online-resize ioctl).
    c.linstor_ok(&["volume-definition", "set-size", "rsz", "0", "64M"]);
    assert_eq!(device_bytes(&dev), 64 << 20);
    run_ok(Command::new("umount").arg(&mnt));
    run_ok(Command::new("e2fsck").args(["-f", "-y", &dev]));
    run_ok(Command::new("resize2fs").arg(&dev));
    run_ok(Command::new("mount").arg(&dev).arg(&mnt));
    assert_eq!(
        std::fs::read(mnt.join("kept.txt")).unwrap(),
        b"kept across resizes"
    );
    let df = Command::new("df")
        .args(["-k", "--output=size"])
        .arg(&mnt)
        .output()
        .unwrap();
    let size_kib: u64 = String::from_utf8_lossy(&df.stdout)
        .lines()
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(size_kib > 50 * 1024, "the file system grew: {size_kib} KiB");

    // Mounted (in use): a shrink is refused before anything changes.
    let (_, text) = c.linstor_fails(&["volume-definition", "set-size", "rsz", "0", "16M"]);
    assert!(text.contains("--allow-shrink"), "{text}");
    let (_, text) = c.linstor_fails(&[
        "volume-definition",
        "set-size",
        "rsz",
        "0",
        "16M",
        "--allow-shrink",
    ]);
    assert!(text.contains("in use"), "{text}");
    assert_eq!(device_bytes(&dev), 64 << 20);
    run_ok(Command::new("umount").arg(&mnt));

    // Offline while asked: the node grows the volume when it returns.
    c.stop_satellite(0);
    let text = c.linstor_ok(&["volume-definition", "set-size", "rsz", "0", "96M"]);
    assert!(
        text.contains("node1"),
        "the answer names the offline node: {text}"
    );
    c.start_satellite(0);
    assert!(
        c.wait_until(Duration::from_secs(20), || c
            .device_of("rsz")
            .is_some_and(|d| device_bytes(&d) == 96 << 20)),
        "grown after the reconnect"
    );

    // Unused, asked explicitly: it shrinks, and the start of the volume is untouched.
    let dev = c.device_of("rsz").unwrap();
    write_and_read(&dev, b"the first bytes stay");
    // The node reports the volume unused only after it looked again.
    assert!(c.wait_until(Duration::from_secs(20), || {
        c.linstor(&[
            "volume-definition",
            "set-size",
            "rsz",
            "0",
            "24M",
            "--allow-shrink",
        ])
        .status
        .success()
    }));
    assert!(c.wait_until(Duration::from_secs(10), || device_bytes(&dev) == 24 << 20));
    let mut head = vec![0u8; 20];
    {
        use std::io::Read;
        std::fs::File::open(&dev)
            .unwrap()
            .read_exact(&mut head)
            .unwrap();
    }
    assert_eq!(&head, b"the first bytes stay");
    let listed = c.linstor_ok(&["volume-definition", "list", "-r", "rsz"]);
    assert!(listed.contains("24 MiB"), "{listed}");
}

/// The configuration a satellite applied, as its record keeps it (resources in name order,
/// generation left out): what deltas built must be what a whole configuration says.
fn applied_config(c: &TestCluster, i: usize) -> serde_json::Value {
    let path = c.satellites[i].state_dir.join("satellite-state.json");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("satellite record")).unwrap();
    let mut cfg = record["applied"].clone();
    cfg.as_object_mut().unwrap().remove("generation");
    if let Some(rs) = cfg["resources"].as_array_mut() {
        rs.sort_by_key(|r| r["name"].as_str().unwrap_or_default().to_string());
    }
    cfg
}

#[test]
fn changes_sent_as_deltas_add_up_to_the_whole_configuration() {
    strata_tests::needs_cluster!();
    let mut c = TestCluster::start(2);
    c.register_all();
    // Two nodes without DRBD: one diskful replica each, several definitions.
    for i in 0..4 {
        c.linstor_ok(&["resource-definition", "create", &format!("d{i}")]);
        c.linstor_ok(&["volume-definition", "create", &format!("d{i}"), "8M"]);
        c.linstor_ok(&[
            "resource",
            "create",
            "-s",
            "pool_file",
            if i % 2 == 0 { "node1" } else { "node2" },
            &format!("d{i}"),
        ]);
    }
    c.linstor_ok(&["resource-definition", "set-property", "d0", "Aux/x", "1"]);
    c.linstor_ok(&["volume-definition", "set-size", "d1", "0", "12M"]);
    c.linstor_ok(&["resource", "delete", "node1", "d2"]);
    c.linstor_ok(&["resource-definition", "delete", "d3"]);
    let touch_pools = |c: &TestCluster| {
        for n in ["node1", "node2"] {
            c.linstor_ok(&["storage-pool", "set-property", n, "pool_file", "Aux/y", "2"]);
        }
    };
    touch_pools(&c);
    let by_deltas: Vec<serde_json::Value> = (0..2).map(|i| applied_config(&c, i)).collect();
    assert_eq!(
        by_deltas[0]["resources"].as_array().unwrap().len(),
        1,
        "{}",
        by_deltas[0]
    );
    assert_eq!(
        by_deltas[1]["resources"].as_array().unwrap().len(),
        1,
        "{}",
        by_deltas[1]
    );
    // A restarted controller cannot know what the nodes hold and sends whole configurations.
    c.kill_controller();
    c.start_controller();
    // The same values again: nothing changes but every node gets a configuration, and the
    // answer waits for it.
    touch_pools(&c);
    let whole: Vec<serde_json::Value> = (0..2).map(|i| applied_config(&c, i)).collect();
    assert_eq!(by_deltas, whole);
}
