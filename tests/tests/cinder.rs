//! The Cinder volume driver (`plugins/openstack-cinder`) driven by Cinder's own
//! VolumeManager, from Debian's python3-cinder, against a real controller and two
//! satellites: one named after this machine (the cinder-volume host, whose pools hold the
//! volumes) and `compute1` (a compute host). The Python side is
//! `plugins/openstack-cinder/tests/test_volume_manager.py`.

use std::path::{Path, PathBuf};
use std::process::Command;

use strata_tests::{bin, needs, LoopFs, TestCluster};

/// The system Python that has Debian's Cinder (not a virtualenv's).
const PYTHON: &str = "/usr/bin/python3";

fn plugin() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/openstack-cinder")
}

fn needs_cinder() -> needs::Need {
    let ok = Command::new(PYTHON)
        .args(["-c", "import cinder.tests.unit.test, cinder.volume.manager"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{PYTHON} cannot import Cinder and its test base: install python3-cinder python3-fixtures python3-testtools python3-oslotest (scripts/test-all.sh does)"
        ))
    }
}

#[test]
fn cinder_volume_manager_runs_the_driver() {
    strata_tests::needs_cluster!(
        needs_cinder(),
        needs::tool("mkfs.xfs", "xfsprogs"),
        needs::tool("qemu-img", "qemu-utils")
    );
    // The cinder-volume host is this machine (Cinder's own image copies attach volumes on
    // the host named as Python's socket.gethostname() says); `compute1` stands for a
    // compute host.
    let here = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string();
    let mut c = TestCluster::start(0);
    // FILE_THIN on xfs: snapshots and clones are reflink copies. Room for a restored
    // backup, which writes every block of its 1 GiB volume.
    let xfs = LoopFs::sized(
        c.dir.path(),
        "xfs",
        &["mkfs.xfs", "-q", "-m", "reflink=1"],
        4096,
    );
    c.add_satellites_on(&xfs, &[here.as_str(), "compute1"]);
    c.register_all();
    c.create_group_on("CinderGrp", 1, &[&here]);
    c.create_group_on("CinderBoth", 2, &[]);
    c.linstor_ok(&[
        "resource-group",
        "modify",
        "CinderBoth",
        "--layer-list",
        "storage",
    ]);
    c.linstor_ok(&[
        "resource-group",
        "modify",
        "CinderGrp",
        "--layer-list",
        "storage",
    ]);
    let out = Command::new(PYTHON)
        .args(["-m", "unittest", "-v", "tests.test_volume_manager"])
        .current_dir(plugin())
        .env("PYTHONPATH", plugin())
        .env("STRATA_CINDER_HELPER", bin("strata-cinder"))
        .env("STRATA_CONTROLLER", format!("127.0.0.1:{}", c.port))
        .env("STRATA_LINSTOR", bin("linstor"))
        .env("STRATA_STORAGE_HOST", &here)
        .env("STRATA_COMPUTE_HOST", "compute1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    // Every test ran (none skipped) and the cluster is as it was.
    assert!(text.contains("Ran 10 tests"), "{text}");
    assert!(!text.contains("skipped"), "{text}");
    let rds = c.linstor_ok(&["resource-definition", "list"]);
    assert!(!rds.contains("CV_"), "{rds}");
}
