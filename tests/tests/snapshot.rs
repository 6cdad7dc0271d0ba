//! Snapshots on FILE_THIN pools: reflink copies on a file system that makes them (a
//! loop-mounted xfs), and a clean failure on one that does not (a loop-mounted ext4).

use std::process::Command;
use std::time::Duration;

use strata_tests::{write_and_read, LoopFs, TestCluster};

/// The loop device of `rsc`'s first volume, as the controller reports it.
fn device(c: &TestCluster, rsc: &str) -> String {
    let dev = c
        .device_of(rsc)
        .unwrap_or_else(|| panic!("{rsc} has no device"));
    assert!(dev.starts_with("/dev/loop"), "{rsc} is on {dev}");
    dev
}

fn read(dev: &str, len: usize) -> Vec<u8> {
    use std::io::Read;
    let mut buf = vec![0u8; len];
    std::fs::File::open(dev)
        .and_then(|mut f| f.read_exact(&mut buf))
        .unwrap();
    buf
}

#[test]
fn file_thin_snapshots_restore_what_was_written() {
    strata_tests::needs_cluster!(
        strata_tests::needs::tool("mkfs.xfs", "xfsprogs"),
        strata_tests::python_linstor()
    );
    let fsdir = tempfile::tempdir().unwrap();
    let xfs = LoopFs::new(fsdir.path(), "xfs", &["mkfs.xfs", "-q", "-m", "reflink=1"]);
    let ext4 = LoopFs::new(fsdir.path(), "ext4", &["mkfs.ext4", "-q", "-F"]);
    let c = TestCluster::start(1);
    c.register_all();
    for (pool, fs) in [("sp_xfs", &xfs), ("sp_ext4", &ext4)] {
        let dir = fs.mnt.join("pool");
        c.linstor_ok(&[
            "storage-pool",
            "create",
            "filethin",
            "node1",
            pool,
            &dir.display().to_string(),
        ]);
    }
    let thick_dir = c.dir.path().join("thick-pool");
    c.linstor_ok(&[
        "storage-pool",
        "create",
        "file",
        "node1",
        "sp_thick",
        &thick_dir.display().to_string(),
    ]);
    for (rsc, pool) in [("r1", "sp_xfs"), ("r3", "sp_ext4"), ("thick", "sp_thick")] {
        c.linstor_ok(&["resource-definition", "create", rsc]);
        c.linstor_ok(&["volume-definition", "create", rsc, "16M"]);
        c.linstor_ok(&["resource", "create", "node1", rsc, "-s", pool]);
    }

    // Taken, then overwritten; restored into a new definition it reads what was there.
    let dev = device(&c, "r1");
    assert_eq!(
        write_and_read(&dev, b"before the snapshot"),
        b"before the snapshot"
    );
    c.linstor_ok(&["snapshot", "create", "r1", "s1"]);
    let list = c.linstor_ok(&["snapshot", "list"]);
    assert!(list.contains("s1") && list.contains("Successful"), "{list}");
    write_and_read(&dev, b"after  the snapshot");
    c.restore_snapshot("r1", "s1", "r2");
    let restored = device(&c, "r2");
    assert_ne!(restored, dev);
    assert_eq!(read(&restored, 19), b"before the snapshot");
    assert_eq!(read(&dev, 19), b"after  the snapshot");
    // Restoring into a definition that has resources now is refused.
    let e = c
        .linstor_fails(&[
            "snapshot",
            "resource",
            "restore",
            "--from-resource",
            "r1",
            "--from-snapshot",
            "s1",
            "--to-resource",
            "r2",
        ])
        .1;
    assert!(e.contains("already exists"), "{e}");

    // The real python-linstor client lists, takes and deletes snapshots.
    python_linstor_snapshots(&c);

    // The CLI's create-multiple: both snapshots hold what their volume held.
    let dev2 = device(&c, "r2");
    write_and_read(&dev2, b"r2 at the moment m2");
    c.linstor_ok(&["snapshot", "create-multiple", "m2", "r1", "r2"]);
    write_and_read(&dev2, b"r2 later, changed  ");
    c.linstor_ok(&["snapshot", "rollback", "r2", "m2"]);
    assert_eq!(read(&device(&c, "r2"), 19), b"r2 at the moment m2");
    let list = c.linstor_ok(&["snapshot", "list"]);
    assert_eq!(list.matches("m2").count(), 2, "{list}");
    // A resource named twice, an unknown resource, or one without snapshots in the set: nothing
    // is taken.
    for (args, want) in [
        (
            &["snapshot", "create-multiple", "m3", "r1", "r1"][..],
            "named twice",
        ),
        (
            &["snapshot", "create-multiple", "m3", "r1", "nosuch"],
            "nosuch",
        ),
        (
            &["snapshot", "create-multiple", "m3", "r1", "thick"],
            "FILE_THIN",
        ),
    ] {
        let e = c.linstor_fails(args).1;
        assert!(e.contains(want), "{e}");
    }
    assert!(!c.linstor_ok(&["snapshot", "list"]).contains("m3"));
    // Deleting on a node without a copy is refused; on its node the copy goes.
    let e = c
        .linstor_fails(&["snapshot", "delete", "r2", "m2", "-n", "node9"])
        .1;
    assert!(e.contains("no copy on node 'node9'"), "{e}");
    c.linstor_ok(&["snapshot", "delete", "r2", "m2", "-n", "node1"]);
    c.linstor_ok(&["snapshot", "delete", "r1", "m2"]);
    let m2 = xfs.mnt.join("pool/.strata/snapshots/r2_00000/m2.img");
    assert!(c.wait_until(Duration::from_secs(10), || !m2.exists()));

    // Clone: a new definition with the data of the moment, independent from then on.
    let r2_dev = device(&c, "r2");
    write_and_read(&r2_dev, b"r2 when it is cloned");
    let text = c.linstor_ok(&["resource-definition", "clone", "r2", "r2c"]);
    assert!(text.contains("r2c"), "{text}");
    let clone_dev = device(&c, "r2c");
    assert_eq!(read(&clone_dev, 20), b"r2 when it is cloned");
    write_and_read(&clone_dev, b"the clone, changed  ");
    assert_eq!(read(&r2_dev, 20), b"r2 when it is cloned");
    assert!(!c.linstor_ok(&["snapshot", "list"]).contains("CF_r2c"));
    for (args, want) in [
        (
            &["resource-definition", "clone", "r2", "r2c"][..],
            "already exists",
        ),
        (&["resource-definition", "clone", "nosuch", "x1"], "nosuch"),
    ] {
        let e = c.linstor_fails(args).1;
        assert!(e.contains(want), "{e}");
    }
    let rds = c.linstor_ok(&["resource-definition", "list"]);
    assert!(!rds.contains("x1"), "{rds}");
    // From a pool without snapshots (thick FILE) the node copies the volume.
    let thick_dev = device(&c, "thick");
    write_and_read(&thick_dev, b"thick data to clone ");
    c.linstor_ok(&["resource-definition", "clone", "thick", "thickc"]);
    let copy = device(&c, "thickc");
    assert_ne!(copy, thick_dev);
    assert_eq!(read(&copy, 20), b"thick data to clone ");
    assert!(
        !thick_dir.join("thickc_00000.clone.img").exists(),
        "no temporary copy is left"
    );

    // A pool on a file system without reflink: refused by the node, nothing left behind.
    let e = c.linstor_fails(&["snapshot", "create", "r3", "s1"]).1;
    assert!(e.contains("reflink"), "{e}");
    assert!(!c.linstor_ok(&["snapshot", "list"]).contains("r3"));
    // A thick FILE pool: refused by the controller, naming the kinds that can.
    let e = c.linstor_fails(&["snapshot", "create", "thick", "s1"]).1;
    assert!(e.contains("LVM_THIN, FILE_THIN, ZFS or ZFS_THIN"), "{e}");

    // Rollback: refused while the volume is in use, then the volume reads the snapshot's
    // content again.
    let holder = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_EXCL)
            .open(&dev)
            .expect("exclusive open")
    };
    let e = c.linstor_fails(&["snapshot", "rollback", "r1", "s1"]).1;
    assert!(e.contains("in use"), "{e}");
    assert_eq!(read(&device(&c, "r1"), 19), b"after  the snapshot");
    drop(holder);
    c.linstor_ok(&["snapshot", "rollback", "r1", "s1"]);
    assert_eq!(read(&device(&c, "r1"), 19), b"before the snapshot");
    let e = c.linstor_fails(&["snapshot", "rollback", "r1", "nope"]).1;
    assert!(e.contains("not found"), "{e}");

    // The snapshot outlives its resource and keeps the definition until deleted.
    c.linstor_ok(&["resource", "delete", "node1", "r1"]);
    let e = c.linstor_fails(&["resource-definition", "delete", "r1"]).1;
    assert!(e.contains("snapshots") && e.contains("s1"), "{e}");
    let snaps = xfs.mnt.join("pool/.strata/snapshots/r1_00000");
    assert!(snaps.join("s1.img").exists());
    c.linstor_ok(&["snapshot", "delete", "r1", "s1"]);
    assert!(c.wait_until(Duration::from_secs(10), || !snaps.join("s1.img").exists()));
    assert!(!c.linstor_ok(&["snapshot", "list"]).contains("s1"));
    c.linstor_ok(&["resource-definition", "delete", "r1"]);
    drop(c);
}

/// python-linstor (from PyPI; `STRATA_PYTHON`, else python3) against the cluster, which has
/// snapshot `s1` of `r1` on node1.
fn python_linstor_snapshots(c: &TestCluster) {
    let python = strata_tests::python();
    let script = r#"
import sys, linstor
with linstor.Linstor("linstor://" + sys.argv[1]) as l:
    snaps = l.snapshot_dfn_list()[0].snapshots
    s1 = [s for s in snaps if s.snapshot_name == "s1"][0]
    assert s1.rsc_name == "r1", s1.rsc_name
    assert s1.nodes == ["node1"], s1.nodes
    assert "SUCCESSFUL" in s1.flags, s1.flags
    vd = s1.snapshot_volume_definitions[0]
    assert (vd.number, vd.size) == (0, 16384), (vd.number, vd.size)
    replies = l.snapshot_create(["node1"], "r1", "s2")
    assert all(not r.is_error() for r in replies), [str(r) for r in replies]
    names = sorted(s.snapshot_name for s in l.snapshot_dfn_list(filter_by_resources=["r1"])[0].snapshots)
    assert names == ["s1", "s2"], names
    replies = l.snapshot_delete("r1", "s2")
    assert all(not r.is_error() for r in replies), [str(r) for r in replies]
    names = [s.snapshot_name for s in l.snapshot_dfn_list()[0].snapshots]
    assert names == ["s1"], names
    def ok(replies):
        assert all(not r.is_error() for r in replies), [str(r) for r in replies]
    # One snapshot of two resources, of one moment.
    ok(l.snapshot_create_multi(["node1"], ["r1", "r2"], "m1"))
    pairs = sorted((s.rsc_name, s.snapshot_name) for s in l.snapshot_dfn_list()[0].snapshots)
    assert pairs == [("r1", "m1"), ("r1", "s1"), ("r2", "m1")], pairs
    # Restore into a new definition, and roll back, through python-linstor.
    ok(l.resource_dfn_create("r5"))
    ok(l.snapshot_volume_definition_restore("r1", "m1", "r5"))
    ok(l.snapshot_resource_restore(["node1"], "r1", "m1", "r5"))
    rscs = [r.name for r in l.resource_list(filter_by_resources=["r5"])[0].resources]
    assert rscs == ["r5"], rscs
    ok(l.snapshot_rollback("r2", "m1"))
    # Deleting the copies on the only node deletes the snapshot.
    ok(l.snapshot_delete("r2", "m1", node_names=["node1"]))
    ok(l.snapshot_delete("r1", "m1"))
    names = sorted(s.snapshot_name for s in l.snapshot_dfn_list()[0].snapshots)
    assert names == ["s1"], names
    # Clone through python-linstor: started, complete, and its snapshot gone again.
    started = l.resource_dfn_clone("r2", "r2p")
    assert started.clone_name == "r2p" and started.source_name == "r2", started
    assert started.location == "/v1/resource-definitions/r2/clone/r2p", started.location
    assert l.resource_dfn_clone_wait_complete("r2", "r2p", timeout=30) is True
    names = sorted(s.snapshot_name for s in l.snapshot_dfn_list()[0].snapshots)
    assert names == ["s1"], names
    try:
        l.resource_dfn_clone_status("r2", "r1")
        raise SystemExit("r1 is no clone of r2")
    except linstor.LinstorApiCallError:
        pass
print("ok")
"#;
    let out = Command::new(&python)
        .args(["-c", script, &c.controller_addr()])
        .output()
        .expect("python runs");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("ok"),
        "python-linstor ({python}): {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
