//! The OpenNebula datastore and transfer driver run the way oned runs it: through
//! OpenNebula 7.4's own driver processes (`one_datastore`, `one_tm`) and shell libraries in
//! `tests/harness/opennebula/`, against a real controller and two satellites standing for the
//! hosts `node1` and `node2` (every "host" is this machine; the harness's ssh runs locally with
//! a VM directory of each host's own).

use std::path::{Path, PathBuf};
use std::process::Command;

use strata_tests::opennebula::{driver, needs_ruby, split, One};
use strata_tests::{bin, LoopFs, TestCluster};

fn md5(path: &Path, bytes: u64) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "head -c {bytes} {} | md5sum",
            shell_words_quote(path)
        ))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

fn shell_words_quote(p: &Path) -> String {
    format!("'{}'", p.display())
}

/// The device volume 0 of `rsc` has on `node`, from the controller.
fn device(c: &TestCluster, rsc: &str, node: &str) -> Option<String> {
    let out = c.linstor_ok(&["-m", "resource", "list", "-r", rsc]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v[0].as_array()?.iter().find(|r| r["node_name"] == node)?["volumes"][0]["device_path"]
        .as_str()
        .map(str::to_string)
}

/// A controller and the satellites `node1` and `node2` (FILE_THIN pools on an xfs, for
/// reflink snapshots), the resource group `OneRscGrp` placing on node1 (without DRBD on this
/// host a volume is usable where it lies) and `OneBoth` placing a copy on each node; the
/// harness with BRIDGE_LIST=node1.
fn two_hosts() -> (TestCluster, LoopFs, One) {
    let mut c = TestCluster::start(0);
    let xfs = LoopFs::xfs(c.dir.path(), "xfs");
    c.add_satellites_on(&xfs, &["node1", "node2"]);
    c.register_all();
    c.create_group_on("OneRscGrp", 1, &["node1"]);
    c.linstor_ok(&[
        "resource-group",
        "create",
        "OneBoth",
        "--place-count",
        "2",
        "--storage-pool",
        "pool_file",
        "--layer-list",
        "storage",
    ]);
    c.linstor_ok(&["volume-group", "create", "OneBoth"]);
    let one = One::new(c.dir.path(), c.port, "node1");
    (c, xfs, one)
}

#[test]
fn opennebula_drivers_run_an_image_and_its_vm_disks() {
    strata_tests::needs_cluster!(needs_ruby(), needs::tool("mkfs.xfs", "xfsprogs"));
    let (c, _xfs, one) = two_hosts();

    // An image file where the datastore allows imports from (SAFE_DIRS=/var/tmp).
    // Removed when the test ends, failed or not.
    let img_file = tempfile::Builder::new()
        .prefix("strata-one-test-")
        .suffix(".img")
        .tempfile_in("/var/tmp")
        .unwrap();
    let img = img_file.path().to_path_buf();
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "head -c 6291456 /dev/urandom > {}",
            shell_words_quote(&img)
        ))
        .status()
        .unwrap();
    assert!(status.success());
    let want = md5(&img, 6 << 20);
    let img_s = img.display().to_string();

    // stat, then cp: the image becomes a volume holding the file's data.
    let (code, out, err) = one.ds("stat", &["--image-id", "7", "--path", &img_s]);
    assert_eq!((code, out.trim()), (0, "6"), "{err}");
    let (code, out, err) = one.ds(
        "cp",
        &[
            "--image-id",
            "7",
            "--size",
            "8",
            "--path",
            &img_s,
            "--image-name",
            "web image",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.trim(), "OpenNebula-Image-7 raw");
    let dev = device(&c, "OpenNebula-Image-7", "node1").expect("a device on node1");
    assert_eq!(md5(Path::new(&dev), 6 << 20), want);
    let rd = c.linstor_ok(&[
        "-m",
        "resource-definition",
        "list",
        "-r",
        "OpenNebula-Image-7",
    ]);
    assert!(rd.contains("\"Aux/one/image-id\": \"7\""), "{rd}");
    assert!(rd.contains("\"Aux/one/image-name\": \"web image\""), "{rd}");

    // A file outside SAFE_DIRS is refused and leaves nothing.
    let (code, _, err) = one.ds(
        "cp",
        &["--image-id", "8", "--size", "8", "--path", "/etc/hostname"],
    );
    assert_eq!(code, 1);
    assert!(err.contains("restricted"), "{err}");
    // OpenNebula's own directories are restricted whatever the datastore says.
    let own = one.dir.join("one/var/secret.img");
    std::fs::write(&own, [0u8; 4096]).unwrap();
    let (code, _, err) = one.ds(
        "cp",
        &[
            "--image-id",
            "8",
            "--size",
            "8",
            "--path",
            &own.display().to_string(),
            "--ds-attr",
            "RESTRICTED_DIRS=/nonexistent",
        ],
    );
    assert_eq!(code, 1);
    assert!(err.contains("restricted"), "{err}");
    // A disk larger than the pools can hold: a clear error, nothing left behind.
    let (code, _, err) = one.ds("mkfs", &["--image-id", "9", "--size", "4096000"]);
    assert_eq!(code, 1);
    assert!(err.contains("free space"), "{err}");
    // Bad XML (as the action script would pass it on): one line that says so.
    let mut child = Command::new(bin("strata-one"))
        .arg(driver().join("datastore/strata/rm"))
        .arg("7")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        // base64 of "<DS_DRIVER_ACTION_DATA><IMAGE>"
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(b"PERTX0RSSVZFUl9BQ1RJT05fREFUQT48SU1BR0U+")
            .unwrap();
    }
    let (code, _, err) = split(child.wait_with_output().unwrap());
    assert_eq!(code, 1);
    assert!(err.contains("not well-formed XML"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let rds = c.linstor_ok(&["resource-definition", "list"]);
    assert!(
        !rds.contains("OpenNebula-Image-8") && !rds.contains("OpenNebula-Image-9"),
        "{rds}"
    );

    // monitor: the group's pools, in MiB.
    let (code, out, err) = one.ds("monitor", &[]);
    assert_eq!(code, 0, "{err}");
    let total: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("TOTAL_MB="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(total > 300 && total <= 512, "{out}");
    assert!(
        out.contains("USED_MB=") && out.contains("FREE_MB="),
        "{out}"
    );

    // A datablock with a file system.
    let (code, out, err) = one.ds(
        "mkfs",
        &["--image-id", "10", "--size", "32", "--fs", "ext4"],
    );
    assert_eq!((code, out.trim()), (0, "OpenNebula-Image-10"), "{err}");
    let dev10 = device(&c, "OpenNebula-Image-10", "node1").unwrap();
    let blkid = Command::new("blkid")
        .args(["-o", "value", "-s", "TYPE", &dev10])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&blkid.stdout).trim(), "ext4");

    // VM 5 with the image as a non-persistent disk 0, on node1.
    let vm = one.xml(
        "vm",
        "vm5.xml",
        &[
            "--vm-id",
            "5",
            "--vm-name",
            "web",
            "--image-id",
            "7",
            "--size",
            "8",
            "--source",
            "OpenNebula-Image-7",
            "--store",
        ],
    );
    let disk0 = format!("node1:{}/disk.0", one.vm_dir(5));
    let (code, out, err) = one.tm(
        &vm,
        &format!("CLONE strata fe:OpenNebula-Image-7 {disk0} 5 1"),
    );
    assert_eq!(code, 0, "{out}{err}");
    let clone = "OpenNebula-Image-7-vm5-disk0";
    let link = one.host_dir("node1", 5).join("disk.0");
    let target = std::fs::read_link(&link).expect("disk.0 is a link");
    assert_eq!(
        Some(target.display().to_string()),
        device(&c, clone, "node1")
    );
    assert_eq!(md5(&link, 6 << 20), want);
    let rd = c.linstor_ok(&["-m", "resource-definition", "list", "-r", clone]);
    assert!(
        rd.contains("\"Aux/one/vm-id\": \"5\"") && rd.contains("\"Aux/one/vm-name\": \"web\""),
        "{rd}"
    );
    // The clone is the VM's own: writing to it leaves the image as it was.
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "head -c 1048576 /dev/zero | dd of={} bs=1M oflag=direct conv=notrunc status=none",
            shell_words_quote(&link)
        ))
        .status()
        .unwrap();
    assert!(status.success());
    assert_ne!(md5(&link, 6 << 20), want);
    assert_eq!(md5(Path::new(&dev), 6 << 20), want);

    // Snapshot, change, revert: the disk has the snapshot's data again.
    let snapped = md5(&link, 6 << 20);
    let (code, _, err) = one.tm(&vm, &format!("SNAP_CREATE strata {disk0} 0 5 1"));
    assert_eq!(code, 0, "{err}");
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "head -c 1048576 /dev/urandom | dd of={} bs=1M oflag=direct conv=notrunc status=none",
            shell_words_quote(&link)
        ))
        .status()
        .unwrap();
    assert!(status.success());
    assert_ne!(md5(&link, 6 << 20), snapped);
    let (code, _, err) = one.tm(&vm, &format!("SNAP_REVERT strata {disk0} 0 5 1"));
    assert_eq!(code, 0, "{err}");
    let dev_now = device(&c, clone, "node1").unwrap();
    assert_eq!(md5(Path::new(&dev_now), 6 << 20), snapped);
    let (code, _, err) = one.tm(&vm, &format!("SNAP_DELETE strata {disk0} 0 5 1"));
    assert_eq!(code, 0, "{err}");

    // Grow the disk.
    let (code, _, err) = one.tm(&vm, &format!("RESIZE strata {disk0} 64 5 1"));
    assert_eq!(code, 0, "{err}");
    let vd = c.linstor_ok(&["-m", "volume-definition", "list", "-r", clone]);
    assert!(vd.contains("\"size_kib\": 65536"), "{vd}");

    // Save the disk as a new image (mkfs save_as, then CPDS).
    let (code, out, err) = one.ds(
        "mkfs",
        &["--image-id", "11", "--size", "64", "--format", "save_as"],
    );
    assert_eq!((code, out.trim()), (0, "OpenNebula-Image-11"), "{err}");
    let (code, _, err) = one.tm(
        &vm,
        &format!("CPDS strata {disk0} OpenNebula-Image-11 -1 5 1"),
    );
    assert_eq!(code, 0, "{err}");
    let dev11 = device(&c, "OpenNebula-Image-11", "node1").unwrap();
    assert_eq!(md5(Path::new(&dev11), 6 << 20), snapped);

    // A persistent disk (the image itself), linked and let go of (MVDS).
    let disk1 = format!("node1:{}/disk.1", one.vm_dir(5));
    let (code, _, err) = one.tm(
        &vm,
        &format!("LN strata fe:OpenNebula-Image-10 {disk1} 5 1"),
    );
    assert_eq!(code, 0, "{err}");
    assert!(one.host_dir("node1", 5).join("disk.1").exists());
    let (code, _, err) = one.tm(&vm, &format!("MVDS strata {disk1} OpenNebula-Image-10 5 1"));
    assert_eq!(code, 0, "{err}");
    assert!(std::fs::symlink_metadata(one.host_dir("node1", 5).join("disk.1")).is_err());
    assert!(c
        .linstor_ok(&["resource-definition", "list"])
        .contains("OpenNebula-Image-10"));

    // An unknown image: a clear error, nothing made.
    let (code, _, err) = one.tm(
        &vm,
        &format!(
            "CLONE strata fe:OpenNebula-Image-99 node1:{}/disk.2 5 1",
            one.vm_dir(5)
        ),
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("OpenNebula-Image-99") && err.contains("does not exist"),
        "{err}"
    );

    // A clone OpenNebula's LINSTOR add-on made (its name, none of our properties) is the
    // VM's own too: deleting the VM's disk deletes it.
    c.linstor_ok(&[
        "resource-definition",
        "clone",
        "OpenNebula-Image-7",
        "OpenNebula-Image-7-vm7-disk0",
    ]);
    let vm7 = one.xml(
        "vm",
        "vm7.xml",
        &[
            "--vm-id",
            "7",
            "--image-id",
            "7",
            "--size",
            "8",
            "--source",
            "OpenNebula-Image-7",
            "--store",
        ],
    );
    let (code, _, err) = one.tm(
        &vm7,
        &format!("DELETE strata node1:{}/disk.0 7 1", one.vm_dir(7)),
    );
    assert_eq!(code, 0, "{err}");
    let gone = c.wait_until(std::time::Duration::from_secs(30), || {
        !c.linstor_ok(&["resource-definition", "list"])
            .contains("OpenNebula-Image-7-vm7-disk0")
    });
    assert!(gone, "{}", c.linstor_ok(&["resource-definition", "list"]));

    // The VM goes: its own disk is deleted, the link removed; the images stay.
    let (code, _, err) = one.tm(&vm, &format!("DELETE strata {disk0} 5 1"));
    assert_eq!(code, 0, "{err}");
    assert!(std::fs::symlink_metadata(&link).is_err());
    let gone = c.wait_until(std::time::Duration::from_secs(30), || {
        !c.linstor_ok(&["resource-definition", "list"])
            .contains(clone)
    });
    assert!(gone);

    // Migration of a VM with a persistent disk from node1 to node2. Without DRBD here, the
    // group of datastore 2 keeps a copy on each node (independent copies: this checks the
    // driver's hand-over of the disk links; the VM tier checks the data with DRBD).
    let ds2 = [
        "--ds-id",
        "2",
        "--ds-attr",
        "LINSTOR_RESOURCE_GROUP=OneBoth",
    ];
    let mut cp_args = vec!["--image-id", "20", "--size", "8", "--path", &img_s];
    cp_args.extend_from_slice(&ds2);
    let (code, out, err) = one.ds("cp", &cp_args);
    assert_eq!((code, out.trim()), (0, "OpenNebula-Image-20 raw"), "{err}");
    let mut vm6_args = vec![
        "--vm-id",
        "6",
        "--image-id",
        "20",
        "--size",
        "8",
        "--source",
        "OpenNebula-Image-20",
        "--persistent",
        "--store",
    ];
    vm6_args.extend_from_slice(&ds2);
    let vm6 = one.xml("vm", "vm6.xml", &vm6_args);
    let d6 = format!("{}/disk.0", one.vm_dir(6));
    let (code, _, err) = one.tm(
        &vm6,
        &format!("LN strata fe:OpenNebula-Image-20 node1:{d6} 6 2"),
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = one.tm(
        &vm6,
        &format!("PREMIGRATE strata node1 node2 {} 6 0", one.vm_dir(6)),
    );
    assert_eq!(code, 0, "{err}");
    let on2 = std::fs::read_link(one.host_dir("node2", 6).join("disk.0")).expect("a link on node2");
    assert_eq!(
        Some(on2.display().to_string()),
        device(&c, "OpenNebula-Image-20", "node2")
    );
    assert!(one.host_dir("node1", 6).join("disk.0").exists());
    let (code, _, err) = one.tm(
        &vm6,
        &format!("POSTMIGRATE strata node1 node2 {} 6 0", one.vm_dir(6)),
    );
    assert_eq!(code, 0, "{err}");
    assert!(std::fs::symlink_metadata(one.host_dir("node1", 6).join("disk.0")).is_err());
    assert!(one.host_dir("node2", 6).join("disk.0").exists());
    // Both copies were placed by the group: none of them is the driver's to remove.
    let rl = c.linstor_ok(&["resource", "list", "-r", "OpenNebula-Image-20"]);
    assert!(rl.contains("node1") && rl.contains("node2"), "{rl}");
    let (code, _, err) = one.tm(
        &vm6,
        &format!("MVDS strata node2:{d6} OpenNebula-Image-20 6 2"),
    );
    assert_eq!(code, 0, "{err}");
    let mut rm_args = vec!["--image-id", "20", "--source", "OpenNebula-Image-20"];
    rm_args.extend_from_slice(&ds2);
    let (code, _, err) = one.ds("rm", &rm_args);
    assert_eq!(code, 0, "{err}");

    // Image clone (datastore side), then the images are removed.
    let (code, out, err) = one.ds(
        "clone",
        &[
            "--image-id",
            "12",
            "--size",
            "8",
            "--path",
            "OpenNebula-Image-7",
            "--cloning-id",
            "7",
        ],
    );
    assert_eq!((code, out.trim()), (0, "OpenNebula-Image-12 raw"), "{err}");
    for id in ["7", "10", "11", "12"] {
        let src = format!("OpenNebula-Image-{id}");
        let (code, _, err) = one.ds("rm", &["--image-id", id, "--source", &src]);
        assert_eq!(code, 0, "{err}");
    }
    let empty = c.wait_until(std::time::Duration::from_secs(30), || {
        !c.linstor_ok(&["resource-definition", "list"])
            .contains("OpenNebula-Image")
    });
    assert!(empty, "{}", c.linstor_ok(&["resource-definition", "list"]));
}

/// Writes `mib` MiB of random data at the start of `path`; answers their md5.
fn fill(path: &Path, mib: u32) -> String {
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "head -c {} /dev/urandom | dd of={} bs=1M oflag=direct conv=notrunc status=none",
            mib << 20,
            shell_words_quote(path)
        ))
        .status()
        .unwrap();
    assert!(status.success());
    md5(path, u64::from(mib) << 20)
}

/// The snapshots `linstor snapshot list` shows of `rsc`.
fn snapshots(c: &TestCluster, rsc: &str) -> Vec<String> {
    let out = c.linstor_ok(&["-m", "snapshot", "list", "-r", rsc]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mut names: Vec<String> = v[0]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// A VM's volatile disks (on the system datastore), its context CD, cold moves (to another
/// host, to the front-end and back), a failed live migration, the system datastore's monitor;
/// an image's snapshots (revert, delete, flatten) and its export to a marketplace.
#[test]
fn opennebula_volatile_disks_moves_image_snapshots_and_export() {
    strata_tests::needs_cluster!(
        needs_ruby(),
        needs::tool("mkfs.xfs", "xfsprogs"),
        needs::tool("xorriso", "xorriso")
    );
    let (c, _xfs, one) = two_hosts();
    // The system datastore 0 is ours; its volatile disks are placed by OneBoth (a copy on
    // each host, so that they can move without DRBD here), like the images of datastore 2.
    let sys = ["--ds-attr", "LINSTOR_RESOURCE_GROUP=OneBoth"];
    let mut args = vec!["--ds-id", "0", "--ds-type", "SYSTEM"];
    args.extend_from_slice(&sys);
    let (code, out, err) = one.ds("monitor", &args);
    assert_eq!(code, 0, "{err}");
    args.push("--store");
    one.xml("datastore", "ds0.xml", &args);
    let total: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("TOTAL_MB="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    // Both hosts' pools (on one file system here, counted once per pool).
    assert!(total > 600 && total <= 1024, "{out}");

    // VM 9 on node1: disk 0 a persistent image of datastore 2.
    let ds2 = [
        "--ds-id",
        "2",
        "--ds-attr",
        "LINSTOR_RESOURCE_GROUP=OneBoth",
    ];
    let mut args = vec!["--image-id", "21", "--size", "16"];
    args.extend_from_slice(&ds2);
    let (code, out, err) = one.ds("mkfs", &args);
    assert_eq!((code, out.trim()), (0, "OpenNebula-Image-21"), "{err}");
    let mut args = vec![
        "--vm-id",
        "9",
        "--vm-name",
        "batch",
        "--image-id",
        "21",
        "--size",
        "16",
        "--source",
        "OpenNebula-Image-21",
        "--persistent",
        "--system-tm-mad",
        "strata",
        // A disk of OpenNebula's ssh driver too (as the system datastore's driver ours
        // calls the others' migration actions).
        "--disk",
        "DISK_ID=0",
        "--disk",
        "DISK_ID=4,TM_MAD=ssh,TYPE=FILE,SOURCE=",
        "--store",
    ];
    args.extend_from_slice(&ds2);
    let vm = one.xml("vm", "vm9.xml", &args);
    let dir = one.vm_dir(9);
    let on1 = one.host_dir("node1", 9);
    let on2 = one.host_dir("node2", 9);
    let run = |line: String| {
        let (code, out, err) = one.tm(&vm, &line);
        assert_eq!(code, 0, "{line}: {out}{err}");
    };
    run(format!(
        "LN strata fe:OpenNebula-Image-21 node1:{dir}/disk.0 9 2"
    ));

    // A volatile disk and a swap disk: volumes of their own, named after the VM.
    run(format!("MKIMAGE strata 16 raw node1:{dir}/disk.1 9 0"));
    let vol = "one-vm-9-disk-1";
    assert_eq!(
        std::fs::read_link(on1.join("disk.1"))
            .ok()
            .map(|p| p.display().to_string()),
        device(&c, vol, "node1")
    );
    let rd = c.linstor_ok(&["-m", "resource-definition", "list", "-r", vol]);
    assert!(
        rd.contains("\"Aux/one/vm-id\": \"9\"") && rd.contains("\"Aux/one/vm-name\": \"batch\""),
        "{rd}"
    );
    run(format!("MKSWAP strata 8 node1:{dir}/disk.2 9 0"));
    let swap = device(&c, "one-vm-9-disk-2", "node1").expect("the swap disk's device");
    let blkid = Command::new("blkid")
        .args(["-o", "value", "-s", "TYPE", &swap])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&blkid.stdout).trim(), "swap");
    // The context CD: a file in the VM's directory, made by OpenNebula's own ssh driver.
    let ctx = one.dir.join("context.sh");
    std::fs::write(&ctx, "HOSTNAME='batch'\n").unwrap();
    run(format!(
        "CONTEXT strata {} node1:{dir}/disk.3 9 0",
        ctx.display()
    ));
    let iso = std::fs::read(on1.join("disk.3")).expect("the context CD");
    assert_eq!(
        iso.get(32769..32774),
        Some(&b"CD001"[..]),
        "an ISO 9660 image"
    );

    // With MONITOR_VM_DISKS the system datastore's monitor sends its VMs' disk sizes to
    // OpenNebula's monitor daemon (the harness decodes what reaches it).
    let mut args = vec![
        "--ds-id",
        "0",
        "--ds-type",
        "SYSTEM",
        "--monitor-vm-disks",
        "1",
    ];
    args.extend_from_slice(&sys);
    let (code, out, err) = one.ds("monitor", &args);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("TOTAL_MB="), "{out}");
    let sent = std::fs::read_to_string(one.dir.join("log/monitord.log")).unwrap_or_default();
    let vm9 = sent
        .lines()
        .find(|l| l.trim_start().starts_with("VM 9:"))
        .unwrap_or_else(|| panic!("no sizes of VM 9 sent: {sent}"));
    for disk in ["DISK_SIZE=[ID=1,SIZE=", "DISK_SIZE=[ID=2,SIZE="] {
        assert!(vm9.contains(disk), "{vm9}");
    }

    // A live migration to node2 that fails: node2 lets go of the disk again, node1 keeps it.
    // The ssh driver's premigrate (for disk 4) empties the VM directory on node2 first.
    std::fs::create_dir_all(&on2).unwrap();
    std::fs::write(on2.join("stale"), "from an earlier stay").unwrap();
    let (code, _, err) = one.tm(&vm, &format!("PREMIGRATE strata node1 node2 {dir} 9 0"));
    assert_eq!(code, 0, "{err}");
    assert!(std::fs::symlink_metadata(on2.join("disk.0")).is_ok());
    assert!(
        !on2.join("stale").exists(),
        "the ssh driver's premigrate did not run"
    );
    let (code, _, err) = one.tm(&vm, &format!("FAILMIGRATE strata node1 node2 {dir} 9 0"));
    assert_eq!(code, 0, "{err}");
    assert!(std::fs::symlink_metadata(on2.join("disk.0")).is_err());
    assert!(on1.join("disk.0").exists());

    // Cold moves of the volatile disk: to node2, to the front-end (undeploy: no host has it),
    // back to node1 (resume).
    run(format!(
        "MV strata node1:{dir}/disk.1 node2:{dir}/disk.1 9 0"
    ));
    assert!(std::fs::symlink_metadata(on1.join("disk.1")).is_err());
    assert_eq!(
        std::fs::read_link(on2.join("disk.1"))
            .ok()
            .map(|p| p.display().to_string()),
        device(&c, vol, "node2")
    );
    run(format!("MV strata node2:{dir}/disk.1 fe:{dir}/disk.1 9 0"));
    assert!(std::fs::symlink_metadata(on2.join("disk.1")).is_err());
    run(format!("MV strata fe:{dir}/disk.1 node1:{dir}/disk.1 9 0"));
    assert!(on1.join("disk.1").exists());

    // The VM ends: its volatile disks go, the image stays, the directory is removed.
    run(format!("DELETE strata node1:{dir}/disk.1 9 0"));
    run(format!("DELETE strata node1:{dir}/disk.2 9 0"));
    run(format!(
        "MVDS strata node1:{dir}/disk.0 OpenNebula-Image-21 9 2"
    ));
    run(format!("DELETE strata node1:{dir} 9 0"));
    assert!(!on1.exists(), "the VM directory is left on node1");
    let rds = c.linstor_ok(&["resource-definition", "list"]);
    assert!(!rds.contains("one-vm-9-disk"), "{rds}");
    assert!(rds.contains("OpenNebula-Image-21"), "{rds}");

    // An image's snapshots, taken through a VM's persistent disk.
    let (code, out, err) = one.ds("mkfs", &["--image-id", "22", "--size", "8"]);
    assert_eq!((code, out.trim()), (0, "OpenNebula-Image-22"), "{err}");
    let img = PathBuf::from(device(&c, "OpenNebula-Image-22", "node1").unwrap());
    let vm10 = one.xml(
        "vm",
        "vm10.xml",
        &[
            "--vm-id",
            "10",
            "--image-id",
            "22",
            "--size",
            "8",
            "--source",
            "OpenNebula-Image-22",
            "--persistent",
            "--store",
        ],
    );
    let disk = format!("node1:{}/disk.0", one.vm_dir(10));
    let run10 = |line: String| {
        let (code, out, err) = one.tm(&vm10, &line);
        assert_eq!(code, 0, "{line}: {out}{err}");
    };
    run10(format!("LN strata fe:OpenNebula-Image-22 {disk} 10 1"));
    let first = fill(&img, 2);
    run10(format!("SNAP_CREATE strata {disk} 0 10 1"));
    fill(&img, 2);
    run10(format!("SNAP_CREATE strata {disk} 1 10 1"));
    fill(&img, 2);
    run10(format!("MVDS strata {disk} OpenNebula-Image-22 10 1"));
    assert_eq!(
        snapshots(&c, "OpenNebula-Image-22"),
        ["one-snap-0", "one-snap-1"]
    );
    let snap_args = |target: &'static str| -> Vec<&'static str> {
        vec![
            "--image-id",
            "22",
            "--size",
            "8",
            "--source",
            "OpenNebula-Image-22",
            "--target-snapshot",
            target,
            "--snapshot",
            "0",
            "--snapshot",
            "1:0",
        ]
    };
    // Back to the older snapshot (the newer one stays), then the newer one goes.
    let (code, _, err) = one.ds("snap_revert", &snap_args("0"));
    assert_eq!(code, 0, "{err}");
    let img = PathBuf::from(device(&c, "OpenNebula-Image-22", "node1").unwrap());
    assert_eq!(md5(&img, 2 << 20), first);
    let (code, _, err) = one.ds("snap_delete", &snap_args("1"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(snapshots(&c, "OpenNebula-Image-22"), ["one-snap-0"]);
    // An unknown snapshot: a clear error for a revert; deleting what is gone is done.
    let (code, _, err) = one.ds("snap_revert", &snap_args("7"));
    assert_eq!(code, 1);
    assert!(err.contains("one-snap-7"), "{err}");
    let (code, _, err) = one.ds("snap_delete", &snap_args("7"));
    assert_eq!(code, 0, "{err}");
    // Flatten: the image keeps the snapshot's data and no snapshots.
    fill(&img, 2);
    let mut flat = snap_args("0");
    flat.truncate(flat.len() - 2);
    let (code, _, err) = one.ds("snap_flatten", &flat);
    assert_eq!(code, 0, "{err}");
    assert!(snapshots(&c, "OpenNebula-Image-22").is_empty());
    let img = PathBuf::from(device(&c, "OpenNebula-Image-22", "node1").unwrap());
    assert_eq!(md5(&img, 2 << 20), first);

    // Export to a marketplace: a raw copy on the bridge host, fetched over ssh, disposed of.
    let (code, out, err) = one.ds(
        "export",
        &[
            "--image-id",
            "22",
            "--size",
            "8",
            "--source",
            "OpenNebula-Image-22",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let file = "/var/tmp/OpenNebula-Image-22-export-22.raw";
    assert!(
        out.contains(&format!(
            "<IMPORT_SOURCE><![CDATA[ssh://node1:{file}]]></IMPORT_SOURCE>"
        )),
        "{out}"
    );
    let copy = Path::new(file);
    assert_eq!(std::fs::metadata(copy).map(|m| m.len()).ok(), Some(8 << 20));
    let sum = md5(copy, 8 << 20);
    assert!(
        out.contains(&format!("<MD5><![CDATA[{sum}]]></MD5>")),
        "{out}"
    );
    assert!(out.contains("<FORMAT><![CDATA[raw]]></FORMAT>"), "{out}");
    assert!(
        out.contains("<DISPOSE>YES</DISPOSE>") && out.contains(&format!("rm -f {file}")),
        "{out}"
    );
    assert_eq!(md5(copy, 2 << 20), first);
    let _ = std::fs::remove_file(copy);
    // An image without a volume cannot be exported.
    let (code, _, err) = one.ds(
        "export",
        &[
            "--image-id",
            "23",
            "--size",
            "8",
            "--source",
            "OpenNebula-Image-23",
        ],
    );
    assert_eq!(code, 1);
    assert!(err.contains("does not exist"), "{err}");
}
