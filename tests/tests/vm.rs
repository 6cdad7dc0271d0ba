//! The virtual-machine tier: guests from `tests/vmlab`, driven over their serial console, with
//! our satellite running inside them and the controller on the host. Needs the image that
//! `tests/vmlab/build-image.sh` builds (scripts/test-all.sh does).
//!
//! Scenarios run one at a time (at most two guests at once: the machine has two cores).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use strata_tests::opennebula::{needs_ruby, One};
use strata_tests::vm::{satellite_overlay, GuestRunner, GuestSsh, Vm, VmSpec};
use strata_tests::{free_port, output_text, TestCluster};

fn one_at_a_time() -> MutexGuard<'static, ()> {
    static SLOT: Mutex<()> = Mutex::new(());
    SLOT.lock().unwrap_or_else(|p| p.into_inner())
}

/// The DRBD device of `rsc`, as the controller reports it.
fn drbd_device(c: &TestCluster, rsc: &str) -> String {
    let dev = c
        .device_of(rsc)
        .unwrap_or_else(|| panic!("{rsc} has no device yet"));
    assert!(dev.starts_with("/dev/drbd"), "{rsc} is on {dev}, not DRBD");
    dev
}

/// The numbers of a one-line `--noheadings --units k --nosuffix` LVM report.
fn lvm_numbers(out: &str) -> Vec<f64> {
    out.split_whitespace()
        .map(|f| {
            f.parse()
                .unwrap_or_else(|_| panic!("not a number: {f} in {out}"))
        })
        .collect()
}

/// A guest with a data disk and our satellite, registered as a node of `c`.
fn guest_node(c: &TestCluster, name: &str, spec: VmSpec) -> Vm {
    let port = free_port();
    // The data link's address (without its prefix length) is the node's DRBD address.
    let data = spec
        .addr
        .as_deref()
        .map(|a| a.split('/').next().unwrap_or(a).to_string());
    let mut vm = Vm::boot(&VmSpec {
        name: name.into(),
        forward: Some(port),
        disk: Some(c.dir.path().join(format!("{name}.img"))),
        disk_size: Some("2G".into()),
        extras: vec![satellite_overlay(c.dir.path())],
        ..spec
    });
    vm.wait_satellite();
    c.register_guest(name, port, data.as_deref());
    vm
}

#[test]
fn guest_console_runs_commands_with_their_status() {
    strata_tests::needs_cluster!(strata_tests::vm::image());
    let _one = one_at_a_time();
    let mut vm = Vm::boot(&VmSpec {
        name: "vmtest1".into(),
        ..Default::default()
    });
    assert_eq!(vm.sh("hostname").trim(), "vmtest1");
    let (status, out) = vm.run("echo to-stderr >&2; exit_code() { return 3; }; exit_code");
    assert_eq!(status, 3, "{out}");
    assert!(out.contains("to-stderr"), "{out}");
    // The guest kernel has what the host lacks.
    assert!(vm.sh("cat /proc/misc").contains("device-mapper"));
    assert!(vm.sh("cat /proc/drbd").starts_with("version: 8.4"));
}

/// LVM and LVM_THIN pools on a real volume group: discovery, capacity, create, resize, delete,
/// ownership (a volume the administrator made is never touched) and a satellite restart.
#[test]
fn lvm_and_lvm_thin_pools_in_a_guest() {
    strata_tests::needs_cluster!(strata_tests::vm::image());
    let _one = one_at_a_time();
    let c = TestCluster::start(0);
    let mut vm = guest_node(&c, "lvmnode", VmSpec::default());
    // What an administrator prepares: a volume group, a thin pool in it, and a volume of
    // their own that must survive everything below.
    vm.sh(
        "pvcreate -q /dev/vda && vgcreate -q vg0 /dev/vda && lvcreate -q -L 1G -T vg0/thin \
         && lvcreate -q -L 64M -n foreign vg0 && echo precious >/dev/vg0/foreign",
    );

    // Pools that name what does not exist are refused, naming it.
    let out = c.linstor(&["storage-pool", "create", "lvm", "lvmnode", "bad", "novg"]);
    assert!(!out.status.success(), "{}", output_text(&out));
    assert!(output_text(&out).contains("novg"), "{}", output_text(&out));
    c.linstor_ok(&["storage-pool", "create", "lvm", "lvmnode", "sp_lvm", "vg0"]);
    c.linstor_ok(&[
        "storage-pool",
        "create",
        "lvmthin",
        "lvmnode",
        "sp_thin",
        "vg0/thin",
    ]);

    // Capacity as LVM reports it.
    let vg = lvm_numbers(&vm.sh("vgs --noheadings --units k --nosuffix -o vg_size,vg_free vg0"));
    let pools: serde_json::Value = c
        .block(c.client().get("/v1/nodes/lvmnode/storage-pools"))
        .expect("pools");
    let pool = |name: &str| {
        pools
            .as_array()
            .expect("a list")
            .iter()
            .find(|p| p["storage_pool_name"] == name)
            .unwrap_or_else(|| panic!("{name} not in {pools}"))
            .clone()
    };
    assert_eq!(pool("sp_lvm")["total_capacity"].as_f64(), Some(vg[0]));
    assert_eq!(pool("sp_lvm")["free_capacity"].as_f64(), Some(vg[1]));
    assert_eq!(
        pool("sp_thin")["total_capacity"].as_f64(),
        Some(1024.0 * 1024.0)
    );
    assert_eq!(pool("sp_lvm")["provider_kind"], "LVM");
    assert_eq!(pool("sp_thin")["provider_kind"], "LVM_THIN");

    // A volume in each pool (storage layer only: this is about the providers).
    for (rsc, pool) in [("thick1", "sp_lvm"), ("thin1", "sp_thin")] {
        c.linstor_ok(&["resource-definition", "create", rsc, "-l", "storage"]);
        c.linstor_ok(&["volume-definition", "create", rsc, "100M"]);
        c.linstor_ok(&["resource", "create", "lvmnode", rsc, "-s", pool]);
    }
    let lvs = vm.sh("lvs --noheadings --units k --nosuffix -o lv_name,lv_size,pool_lv,lv_tags vg0");
    let line = |lv: &str| {
        lvs.lines()
            .find(|l| l.split_whitespace().next() == Some(lv))
            .unwrap_or_else(|| panic!("{lv} not in\n{lvs}"))
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let thick = line("thick1_00000");
    assert_eq!(thick[1].parse::<f64>().ok(), Some(102400.0), "{lvs}");
    assert!(thick[2].contains("strata_owned"), "{lvs}");
    let thin = line("thin1_00000");
    assert_eq!(thin[1].parse::<f64>().ok(), Some(102400.0), "{lvs}");
    assert_eq!(thin[2], "thin", "{lvs}");
    assert!(thin[3].contains("strata_owned"), "{lvs}");
    let volumes = c.linstor_ok(&["resource", "list-volumes"]);
    assert!(volumes.contains("/dev/vg0/thick1_00000"), "{volumes}");
    assert!(volumes.contains("/dev/vg0/thin1_00000"), "{volumes}");
    vm.sh("echo thin-data | dd of=/dev/vg0/thin1_00000 conv=fsync 2>/dev/null");

    // Growing: the logical volumes grow, the data stays.
    c.linstor_ok(&["volume-definition", "set-size", "thin1", "0", "200M"]);
    c.linstor_ok(&["volume-definition", "set-size", "thick1", "0", "160M"]);
    let size = |vm: &mut Vm, lv: &str| {
        lvm_numbers(&vm.sh(&format!(
            "lvs --noheadings --units k --nosuffix -o lv_size vg0/{lv}"
        )))[0]
    };
    assert_eq!(size(&mut vm, "thin1_00000"), 204800.0);
    assert_eq!(size(&mut vm, "thick1_00000"), 163840.0);
    assert_eq!(vm.sh("head -c 9 /dev/vg0/thin1_00000"), "thin-data");

    // A satellite restart: the volumes stay and are active again even if deactivated
    // meanwhile (as after a reboot); a volume deleted while it was down goes when it returns.
    vm.stop_satellite();
    c.linstor_ok(&["resource", "delete", "lvmnode", "thick1"]);
    vm.sh("lvchange -q -an vg0/thin1_00000");
    vm.start_satellite();
    let mut ok = false;
    for _ in 0..300 {
        let lvs = vm.sh("lvs --noheadings -o lv_name,lv_active vg0");
        if !lvs.contains("thick1_00000")
            && lvs
                .lines()
                .any(|l| l.contains("thin1_00000") && l.contains("active"))
        {
            ok = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        ok,
        "after the restart:\n{}\n{}",
        vm.sh("lvs vg0"),
        vm.satellite_log()
    );
    assert_eq!(vm.sh("head -c 9 /dev/vg0/thin1_00000"), "thin-data");
    assert!(c.wait_until(Duration::from_secs(30), || {
        !c.linstor_ok(&["resource", "list"]).contains("thick1")
    }));

    // Deleting leaves no volume behind; the administrator's volume is untouched.
    c.linstor_ok(&["resource-definition", "delete", "thin1"]);
    c.linstor_ok(&["resource-definition", "delete", "thick1"]);
    let lvs = vm.sh("lvs --noheadings -o lv_name vg0");
    let names: Vec<&str> = lvs.split_whitespace().collect();
    assert_eq!(names, ["foreign", "thin"], "{lvs}");
    assert_eq!(vm.sh("head -c 8 /dev/vg0/foreign"), "precious");

    // Thin snapshots, by the provider itself driving the guest's lvm.
    vm.stop_satellite();
    thin_snapshots_of_the_provider(GuestRunner::new(vm));
}

/// LVM_THIN snapshots as the provider takes, lists, restores and removes them, on the real
/// thin pool `vg0/thin`; a thick pool refuses them.
fn thin_snapshots_of_the_provider(guest: GuestRunner) {
    use strata_storage::lvm::LvmPool;
    use strata_storage::Provider;
    let guest = Arc::new(guest);
    let thin = LvmPool::thin("vg0".into(), "thin".into(), guest.clone());
    let v = thin.ensure("snapsrc_00000", 65536, None).expect("volume");
    let dev = v.device.expect("an active volume");
    guest.sh(&format!("echo before | dd of={dev} conv=fsync 2>/dev/null"));
    let snap = thin
        .snapshot_create("snapsrc_00000", "s1")
        .expect("snapshot");
    assert_eq!(snap.path, "/dev/vg0/snapsrc_00000_s1");
    assert_eq!(snap.size_kib, 65536);
    guest.sh(&format!("echo after0 | dd of={dev} conv=fsync 2>/dev/null"));
    // Taking it again changes nothing; it is listed as a snapshot, not as a volume.
    assert_eq!(
        thin.snapshot_create("snapsrc_00000", "s1").expect("again"),
        snap
    );
    assert_eq!(
        thin.snapshots().expect("snapshots"),
        std::slice::from_ref(&snap)
    );
    let volumes: Vec<String> = thin
        .list()
        .expect("list")
        .into_iter()
        .map(|v| v.name)
        .collect();
    assert_eq!(volumes, ["snapsrc_00000"]);

    // Restored into a new volume: the content at the time of the snapshot.
    let r = thin
        .snapshot_restore("snapsrc_00000", "s1", "restored_00000")
        .expect("restore");
    let rdev = r.device.expect("an active restored volume");
    assert_eq!(guest.sh(&format!("head -c 6 {rdev}")), "before");
    assert_eq!(guest.sh(&format!("head -c 6 {dev}")), "after0");
    let e = thin
        .snapshot_restore("snapsrc_00000", "s1", "restored_00000")
        .unwrap_err();
    assert!(e.to_string().contains("exists already"), "{e}");

    // The snapshot outlives its volume, and goes when asked.
    thin.delete("snapsrc_00000", None)
        .expect("delete the volume");
    assert_eq!(thin.snapshots().expect("snapshots"), [snap]);
    thin.snapshot_delete("snapsrc_00000", "s1")
        .expect("delete the snapshot");
    thin.snapshot_delete("snapsrc_00000", "s1")
        .expect("gone already");
    assert!(thin.snapshots().expect("snapshots").is_empty());
    assert_eq!(guest.sh(&format!("head -c 6 {rdev}")), "before");
    thin.delete("restored_00000", None)
        .expect("delete the restored volume");

    let thick = LvmPool::thick("vg0".into(), guest.clone());
    let e = thick.snapshot_create("foreign", "s1").unwrap_err();
    assert!(e.to_string().contains("cannot take snapshots"), "{e}");
    let lvs = guest.sh("lvs --noheadings -o lv_name vg0");
    assert_eq!(
        lvs.split_whitespace().collect::<Vec<_>>(),
        ["foreign", "thin"],
        "{lvs}"
    );
}

/// Two guests linked by their own network, booted side by side, each with a volume group and a
/// thin pool `sp_thin`.
fn guest_pair(c: &TestCluster) -> (Vm, Vm) {
    let link = free_port();
    let (mut a, mut b) = std::thread::scope(|s| {
        let a = s.spawn(|| {
            guest_node(
                c,
                "alpha",
                VmSpec {
                    addr: Some("10.99.0.1/24".into()),
                    listen: Some(link),
                    ..Default::default()
                },
            )
        });
        // The second guest connects to the first one's link once qemu listens.
        std::thread::sleep(Duration::from_secs(2));
        let b = guest_node(
            c,
            "bravo",
            VmSpec {
                addr: Some("10.99.0.2/24".into()),
                connect: Some(link),
                ..Default::default()
            },
        );
        (a.join().expect("first guest"), b)
    });
    for vm in [&mut a, &mut b] {
        vm.sh("pvcreate -q /dev/vda && vgcreate -q vg0 /dev/vda && lvcreate -q -L 1G -T vg0/thin");
        let name = vm.name.clone();
        c.linstor_ok(&[
            "storage-pool",
            "create",
            "lvmthin",
            &name,
            "sp_thin",
            "vg0/thin",
        ]);
    }
    (a, b)
}

/// The `State` column of `resource list` for `rsc` on `node`.
fn state_of(c: &TestCluster, node: &str, rsc: &str) -> String {
    let list = c.linstor_ok(&["resource", "list", "-r", rsc]);
    let cells = |l: &str| -> Vec<String> { l.split('|').map(|f| f.trim().to_string()).collect() };
    let Some(header) = list.lines().find(|l| l.contains("ResourceName")) else {
        return String::new();
    };
    let col = cells(header).iter().position(|h| h == "State");
    list.lines()
        .map(cells)
        .find(|row| row.get(2).is_some_and(|n| n == node))
        .and_then(|row| col.and_then(|i| row.get(i).cloned()))
        .unwrap_or_default()
}

fn wait_state(c: &TestCluster, rsc: &str, nodes: &[&str], want: &str, limit: Duration) {
    let ok = c.wait_until(limit, || {
        nodes.iter().all(|n| state_of(c, n, rsc).contains(want))
    });
    assert!(
        ok,
        "{rsc} did not reach {want} on {nodes:?}:\n{}",
        c.linstor_ok(&["resource", "list", "-r", rsc])
    );
}

fn md5(vm: &mut Vm, dev: &str, mib: u32) -> String {
    vm.sh(&format!(
        "dd if={dev} bs=1M count={mib} 2>/dev/null | md5sum"
    ))
    .split_whitespace()
    .next()
    .unwrap_or_default()
    .to_string()
}

/// One call of the Proxmox plugin's `strata-pve` inside guest `vm` (whose node is `node`), as
/// the Perl module makes it there; the controller is the host's, seen from the guest at
/// 10.0.2.2.
fn pve_call(vm: &mut Vm, c: &TestCluster, op: &str, args: serde_json::Value) -> serde_json::Value {
    let req = serde_json::json!({
        "version": 1,
        "op": op,
        "storeid": "drbd84",
        "node": vm.name,
        "scfg": {"strata-controllers": format!("10.0.2.2:{}", c.port), "strata-group": "pverg"},
        "args": args,
    });
    let out = vm.sh(&format!(
        "echo '{req}' | STRATA_PVE_STATE_DIR=/tmp/strata-pve strata-pve"
    ));
    let answer: serde_json::Value = out
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l.trim()).ok())
        .unwrap_or_else(|| panic!("{}: no answer from strata-pve: {out}", vm.name));
    assert_eq!(answer["ok"], true, "{}: {op}: {answer}", vm.name);
    answer["result"].clone()
}

/// A Proxmox disk on DRBD 8.4 between two guests, through the plugin's `strata-pve` in each:
/// allocated with two replicas, written on the first guest, handed over live (activated and
/// opened on the second while the first still has it open, as a live migration does; two
/// primaries allowed only for that while) and read on the second, handed back offline
/// (deactivated, then activated on the first), then freed.
#[test]
fn proxmox_disk_hands_over_between_two_guests() {
    strata_tests::needs_cluster!(strata_tests::vm::image());
    let _one = one_at_a_time();
    let c = TestCluster::start(0);
    let (mut a, mut b) = guest_pair(&c);
    c.linstor_ok(&[
        "resource-group",
        "create",
        "pverg",
        "--place-count",
        "2",
        "--storage-pool",
        "sp_thin",
    ]);
    c.linstor_ok(&["volume-group", "create", "pverg"]);
    let volname = pve_call(
        &mut a,
        &c,
        "alloc_image",
        serde_json::json!({"vmid": 100, "name": null, "size_kib": 65536}),
    );
    assert_eq!(volname, "vm-100-disk-0");
    wait_state(
        &c,
        "vm-100-disk-0",
        &["alpha", "bravo"],
        "UpToDate",
        Duration::from_secs(60),
    );
    let args = serde_json::json!({"volname": "vm-100-disk-0"});
    let dev = pve_call(&mut a, &c, "activate_volume", args.clone());
    let dev = dev.as_str().expect("a device").to_string();
    assert!(dev.starts_with("/dev/drbd"), "{dev}");
    // DRBD 8.4 has no auto-promote: the VM's side makes itself primary.
    a.sh("drbdadm primary vm-100-disk-0");
    a.sh(&format!(
        "dd if=/dev/urandom of={dev} bs=1M count=4 oflag=direct 2>/dev/null"
    ));
    let written = md5(&mut a, &dev, 4);
    let rd_props = || c.linstor_ok(&["resource-definition", "list-properties", "vm-100-disk-0"]);
    assert!(
        !rd_props().contains("allow-two-primaries"),
        "{}",
        rd_props()
    );
    // The source's guest runs: the controller sees the disk in use there.
    let list = || c.linstor_ok(&["resource", "list", "-r", "vm-100-disk-0"]);
    let seen = c.wait_until(Duration::from_secs(30), || {
        list()
            .lines()
            .any(|l| l.contains("alpha") && l.contains("InUse"))
    });
    assert!(seen, "{}", list());
    // A live migration: the target activates while the source still has the disk open, and
    // its guest opens it (primary) before the source lets go. DRBD 8.4 refuses a second
    // primary unless two are allowed, which the activation must have done.
    let dev_b = pve_call(&mut b, &c, "activate_volume", args.clone());
    assert_eq!(
        dev_b.as_str(),
        Some(dev.as_str()),
        "{}",
        c.linstor_ok(&["-m", "resource", "list", "-r", "vm-100-disk-0"])
    );
    assert_eq!(
        pve_call(&mut b, &c, "path", args.clone()),
        dev_b,
        "{}",
        c.linstor_ok(&["-m", "resource", "list", "-r", "vm-100-disk-0"])
    );
    let props = rd_props();
    assert!(
        props.contains("allow-two-primaries") && props.contains("alpha -> bravo"),
        "{props}"
    );
    b.sh("drbdadm primary vm-100-disk-0");
    assert_eq!(md5(&mut b, &dev, 4), written);
    // The migration is done: the source closes and deactivates, which ends the hand-over.
    a.sh("drbdadm secondary vm-100-disk-0");
    pve_call(&mut a, &c, "deactivate_volume", args.clone());
    let props = rd_props();
    assert!(!props.contains("allow-two-primaries"), "{props}");
    assert!(!props.contains("hand-over"), "{props}");
    let shown = b.sh("drbdsetup show vm-100-disk-0");
    assert!(!shown.contains("allow-two-primaries"), "{shown}");
    // Offline migration back: closed on bravo first, then activated on alpha (no hand-over).
    b.sh("drbdadm secondary vm-100-disk-0");
    pve_call(&mut b, &c, "deactivate_volume", args.clone());
    assert_eq!(pve_call(&mut a, &c, "activate_volume", args.clone()), dev_b);
    assert!(
        !rd_props().contains("allow-two-primaries"),
        "{}",
        rd_props()
    );
    a.sh("drbdadm primary vm-100-disk-0");
    assert_eq!(md5(&mut a, &dev, 4), written);
    a.sh("drbdadm secondary vm-100-disk-0");
    pve_call(&mut a, &c, "deactivate_volume", args.clone());
    pve_call(&mut b, &c, "free_image", args);
    let gone = c.wait_until(Duration::from_secs(60), || {
        !c.linstor_ok(&["resource-definition", "list"])
            .contains("vm-100-disk-0")
    });
    assert!(gone, "{}", c.linstor_ok(&["resource", "list"]));
}

/// DRBD 8.4 (the in-tree module of mainstream kernels) replicating a thin volume between two
/// guests: spawned by a resource group, no initial sync, data written on one node read on the
/// other, a resync after a disconnect shown as progress, and nothing left after delete.
#[test]
fn drbd84_replicates_between_two_guests() {
    strata_tests::needs_cluster!(strata_tests::vm::image());
    let _one = one_at_a_time();
    let c = TestCluster::start(0);
    let (mut a, mut b) = guest_pair(&c);
    let nodes = c.linstor_ok(&["node", "list"]);
    assert!(
        nodes.contains("alpha") && nodes.contains("bravo"),
        "{nodes}"
    );

    c.linstor_ok(&[
        "resource-group",
        "create",
        "rg84",
        "--place-count",
        "2",
        "--storage-pool",
        "sp_thin",
    ]);
    c.linstor_ok(&["volume-group", "create", "rg84"]);
    c.linstor_ok(&["resource-group", "spawn-resources", "rg84", "r84", "64M"]);
    wait_state(
        &c,
        "r84",
        &["alpha", "bravo"],
        "UpToDate",
        Duration::from_secs(60),
    );
    // A new thin volume is all zeros on both sides: no initial sync ran.
    for vm in [&mut a, &mut b] {
        let proc = vm.sh("cat /proc/drbd");
        let received: u64 = proc
            .split_whitespace()
            .find_map(|f| f.strip_prefix("nr:"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no nr: in\n{proc}"));
        assert!(received < 1024, "{}: initial sync ran:\n{proc}", vm.name);
        assert!(proc.contains("ds:UpToDate/UpToDate"), "{proc}");
    }
    // What DRBD 8.4 cannot do is refused at once, with the reason (here: quorum).
    let out = c.linstor(&[
        "resource-definition",
        "drbd-options",
        "--quorum",
        "majority",
        "r84",
    ]);
    assert!(!out.status.success(), "{}", output_text(&out));
    assert!(
        output_text(&out).contains("which has no quorum"),
        "{}",
        output_text(&out)
    );
    let dev = drbd_device(&c, "r84");

    // Written on alpha, read on bravo after switching the primary (8.4 has no auto-promote).
    a.sh("drbdadm primary r84");
    a.sh(&format!(
        "dd if=/dev/urandom of={dev} bs=1M count=4 oflag=direct 2>/dev/null"
    ));
    let written = md5(&mut a, &dev, 4);
    a.sh("drbdadm secondary r84");
    b.sh("drbdadm primary r84");
    assert_eq!(md5(&mut b, &dev, 4), written);
    b.sh("drbdadm secondary r84");

    // bravo misses writes while disconnected, then catches up; the listing shows how far.
    b.sh("drbdadm disconnect r84");
    a.sh("drbdadm primary r84");
    a.sh(&format!(
        "dd if=/dev/urandom of={dev} bs=1M count=24 oflag=direct 2>/dev/null"
    ));
    let written = md5(&mut a, &dev, 24);
    b.sh("drbdadm connect r84");
    // Right after connecting, both still look UpToDate until the handshake: first wait
    // for bravo to fall behind, then for the resync to finish.
    let mut seen: Vec<String> = Vec::new();
    let mut watch = |want: &dyn Fn(&str, &str) -> bool| {
        c.wait_until(Duration::from_secs(120), || {
            let (sa, sb) = (state_of(&c, "alpha", "r84"), state_of(&c, "bravo", "r84"));
            if seen.last() != Some(&sb) {
                seen.push(sb.clone());
            }
            want(&sa, &sb)
        })
    };
    let behind = watch(&|_, b| b != "UpToDate");
    let synced = behind && watch(&|a, b| a == "UpToDate" && b == "UpToDate");
    assert!(
        synced,
        "states seen: {seen:?}\n{}",
        c.linstor_ok(&["resource", "list", "-r", "r84"])
    );
    assert!(
        seen.iter().any(|s| s.starts_with("SyncTarget(")),
        "no resync progress was shown: {seen:?}"
    );
    a.sh("drbdadm secondary r84");
    b.sh("drbdadm primary r84");
    assert_eq!(md5(&mut b, &dev, 24), written, "progress seen: {seen:?}");
    b.sh("drbdadm secondary r84");

    // Online resize under a mounted file system: both backing volumes grow, DRBD follows
    // once both did (whatever order the nodes got there in), then the file system.
    a.sh("drbdadm primary r84");
    a.sh(&format!(
        "modprobe ext4; mkfs.ext4 -q -F {dev} && mkdir -p /mnt/r84 && mount {dev} /mnt/r84"
    ));
    c.linstor_ok(&["volume-definition", "set-size", "r84", "0", "96M"]);
    let sys_size = format!("cat /sys/block/{}/size", dev.trim_start_matches("/dev/"));
    let want_sectors: u64 = 96 * 2048;
    let mut sizes = (0u64, 0u64);
    let grown = c.wait_until(Duration::from_secs(90), || {
        sizes = (
            a.sh(&sys_size).trim().parse().unwrap_or(0),
            b.sh(&sys_size).trim().parse().unwrap_or(0),
        );
        sizes.0 >= want_sectors && sizes.1 >= want_sectors
    });
    assert!(
        grown,
        "DRBD sizes (sectors) on alpha/bravo: {sizes:?}, {want_sectors} wanted\n{}",
        c.linstor_ok(&["volume", "list", "-r", "r84"])
    );
    a.sh(&format!("resize2fs {dev}"));
    let df = a.sh("df -k /mnt/r84");
    let fs_kib: u64 = df
        .lines()
        .last()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(fs_kib > 88 * 1024, "the file system did not grow: {df}");
    a.sh("umount /mnt/r84 && drbdadm secondary r84");
    // The volume list shows what DRBD gives, not the backing volume.
    let listed = c.wait_until(Duration::from_secs(30), || {
        let out = c.linstor(&["-m", "volume", "list", "-r", "r84"]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        // Every volume of both replicas at 96 MiB or more (LVM rounds up to its extents).
        let sizes: Vec<u64> = text
            .split("\"usable_size_kib\":")
            .skip(1)
            .filter_map(|t| {
                t.trim_start()
                    .split(|c: char| !c.is_ascii_digit())
                    .next()?
                    .parse()
                    .ok()
            })
            .collect();
        !sizes.is_empty() && sizes.iter().all(|s| *s >= 96 * 1024)
    });
    assert!(
        listed,
        "{}\n{}",
        c.linstor_ok(&["volume", "list", "-r", "r84"]),
        output_text(&c.linstor(&["-m", "volume", "list", "-r", "r84"]))
    );

    // A snapshot of both replicas (I/O suspended on both while the thin snapshots are
    // taken), then new writes; restored into a new resource, it reads the old data.
    a.sh("drbdadm primary r84");
    let before = md5(&mut a, &dev, 4);
    a.sh("drbdadm secondary r84");
    c.linstor_ok(&["snapshot", "create", "r84", "s1"]);
    let list = c.linstor_ok(&["snapshot", "list"]);
    let row = list
        .lines()
        .find(|l| l.contains(" s1 "))
        .unwrap_or_else(|| panic!("{list}"));
    assert!(
        row.contains("alpha, bravo") && row.contains("Successful"),
        "{list}"
    );
    for vm in [&mut a, &mut b] {
        let lvs = vm.sh("lvs --noheadings -o lv_name,lv_tags vg0");
        assert!(lvs.contains("r84_00000_s1"), "{lvs}");
        let proc = vm.sh("cat /proc/drbd");
        // I/O runs again ('r', not 's', first of the flags) and the peers are connected (the
        // tail of the resync after the disconnect above may still be finishing).
        let connected = ["cs:Connected", "cs:SyncSource", "cs:SyncTarget"]
            .iter()
            .any(|cs| proc.contains(cs));
        assert!(
            !proc.contains("s---") && proc.contains(" r-") && connected,
            "I/O resumed:\n{proc}"
        );
    }
    a.sh("drbdadm primary r84");
    a.sh(&format!(
        "dd if=/dev/urandom of={dev} bs=1M count=4 oflag=direct 2>/dev/null"
    ));
    assert_ne!(md5(&mut a, &dev, 4), before);
    a.sh("drbdadm secondary r84");
    c.restore_snapshot("r84", "s1", "r84r");
    wait_state(
        &c,
        "r84r",
        &["alpha", "bravo"],
        "UpToDate",
        Duration::from_secs(60),
    );
    let dev_r = drbd_device(&c, "r84r");
    b.sh("drbdadm primary r84r");
    assert_eq!(md5(&mut b, &dev_r, 4), before, "the restored copy on bravo");
    b.sh("drbdadm secondary r84r");
    // Rollback: refused while alpha uses the resource; then both nodes go down before
    // either rolls back, and they come back UpToDate with the old data and no resync.
    a.sh("drbdadm primary r84");
    assert!(c.wait_until(Duration::from_secs(30), || c
        .linstor_ok(&["resource", "list", "-r", "r84"])
        .contains("InUse")));
    let out = c.linstor(&["snapshot", "rollback", "r84", "s1"]);
    assert!(
        !out.status.success() && output_text(&out).contains("in use"),
        "{}",
        output_text(&out)
    );
    a.sh("drbdadm secondary r84");
    assert!(c.wait_until(Duration::from_secs(30), || !c
        .linstor_ok(&["resource", "list", "-r", "r84"])
        .contains("InUse")));
    c.linstor_ok(&["snapshot", "rollback", "r84", "s1"]);
    wait_state(
        &c,
        "r84",
        &["alpha", "bravo"],
        "UpToDate",
        Duration::from_secs(60),
    );
    for vm in [&mut a, &mut b] {
        vm.sh("drbdadm primary r84");
        assert_eq!(md5(vm, &dev, 4), before, "{} after the rollback", vm.name);
        vm.sh("drbdadm secondary r84");
        let proc = vm.sh("cat /proc/drbd");
        assert!(proc.contains("ds:UpToDate/UpToDate"), "{proc}");
    }
    a.sh("drbdadm primary r84");
    let written = md5(&mut a, &dev, 24);
    a.sh("drbdadm secondary r84");

    // The definition keeps its snapshots until they are deleted.
    let out = c.linstor(&["resource-definition", "delete", "r84"]);
    assert!(
        !out.status.success() && output_text(&out).contains("s1"),
        "{}",
        output_text(&out)
    );
    c.linstor_ok(&["snapshot", "delete", "r84", "s1"]);
    for vm in [&mut a, &mut b] {
        let lvs = vm.sh("lvs --noheadings -o lv_name vg0");
        assert!(!lvs.contains("r84_00000_s1"), "{lvs}");
    }
    assert!(!c.linstor_ok(&["snapshot", "list"]).contains("s1"));
    c.linstor_ok(&["resource-definition", "delete", "r84r"]);

    // One replica goes: the other keeps serving alone (8.4 adjusts a resource without a
    // peer only without its network part).
    c.linstor_ok(&["resource", "delete", "bravo", "r84"]);
    assert_eq!(
        b.sh("lvs --noheadings -o lv_name vg0")
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["thin"]
    );
    // The connection to the node that went is gone (no endless reconnecting).
    let proc = a.sh("cat /proc/drbd");
    assert!(proc.contains("cs:StandAlone"), "{proc}");
    a.sh("drbdadm primary r84");
    assert_eq!(md5(&mut a, &dev, 24), written);
    a.sh("drbdadm secondary r84");
    wait_state(&c, "r84", &["alpha"], "UpToDate", Duration::from_secs(30));
    let list = c.linstor_ok(&["resource", "list", "-r", "r84"]);
    assert!(!list.contains("bravo") && !list.contains("rror"), "{list}");

    // A resource created on one node comes up alone; a diskless client on the other node
    // then reads and writes through the network.
    c.linstor_ok(&["resource-definition", "create", "r84d"]);
    c.linstor_ok(&["volume-definition", "create", "r84d", "32M"]);
    c.linstor_ok(&["resource", "create", "alpha", "r84d", "-s", "sp_thin"]);
    wait_state(&c, "r84d", &["alpha"], "UpToDate", Duration::from_secs(60));
    c.linstor_ok(&["resource", "create", "bravo", "r84d", "--drbd-diskless"]);
    wait_state(&c, "r84d", &["bravo"], "Diskless", Duration::from_secs(60));
    let dev_d = drbd_device(&c, "r84d");
    assert!(c.wait_until(Duration::from_secs(60), || b
        .sh("cat /proc/drbd")
        .contains("cs:Connected")));
    b.sh("drbdadm primary r84d");
    b.sh(&format!(
        "dd if=/dev/urandom of={dev_d} bs=1M count=2 oflag=direct 2>/dev/null"
    ));
    let written_d = md5(&mut b, &dev_d, 2);
    b.sh("drbdadm secondary r84d");
    a.sh("drbdadm primary r84d");
    assert_eq!(md5(&mut a, &dev_d, 2), written_d);
    a.sh("drbdadm secondary r84d");

    // The Docker volume plugin on bravo mounts a volume whose only replica is on alpha: a
    // diskless attachment, made primary (8.4 has no auto-promote), formatted and mounted;
    // the last unmount detaches it again.
    b.sh(&format!(
        "(linstor-docker-volume --controllers 10.0.2.2:{} --node bravo \
           --socket tcp://127.0.0.1:9900 --state-dir /var/lib/dv \
           </dev/null >/var/log/dv.log 2>&1 &)",
        c.port
    ));
    b.sh(
        "i=0; until wget -q -O - --post-data '' http://127.0.0.1:9900/Plugin.Activate; do \
          i=$((i+1)); [ $i -lt 100 ] || exit 1; sleep 0.2; done",
    );
    let dv = |vm: &mut Vm, endpoint: &str, body: &str| -> serde_json::Value {
        let out = vm.sh(&format!(
            "wget -q -O - --post-data '{body}' http://127.0.0.1:9900/VolumeDriver.{endpoint}"
        ));
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
    };
    let r = dv(
        &mut b,
        "Create",
        r#"{"Name":"dv1","Opts":{"size":"32M","nodes":"alpha","storagepool":"sp_thin"}}"#,
    );
    assert_eq!(r["Err"], "", "{r}");
    wait_state(&c, "dv1", &["alpha"], "UpToDate", Duration::from_secs(60));
    let r = dv(&mut b, "Mount", r#"{"Name":"dv1","ID":"c1"}"#);
    assert_eq!(r["Err"], "", "{r}\n{}", b.sh("cat /var/log/dv.log"));
    let mp = r["Mountpoint"].as_str().unwrap_or_default().to_string();
    assert_eq!(mp, "/var/lib/dv/mnt/dv1");
    let list = c.linstor_ok(&["resource", "list", "-r", "dv1"]);
    assert!(
        list.contains("bravo") && list.contains("Diskless"),
        "{list}"
    );
    b.sh(&format!("echo via-plugin > {mp}/f && sync"));
    let r = dv(&mut b, "Unmount", r#"{"Name":"dv1","ID":"c1"}"#);
    assert_eq!(r["Err"], "", "{r}");
    assert!(!b.sh("cat /proc/mounts").contains("/var/lib/dv/mnt/dv1"));
    assert!(c.wait_until(Duration::from_secs(30), || !c
        .linstor_ok(&["resource", "list", "-r", "dv1"])
        .contains("bravo")));
    let dev_v = drbd_device(&c, "dv1");
    a.sh(&format!(
        "drbdadm primary dv1 && mkdir -p /mnt/dv && mount {dev_v} /mnt/dv"
    ));
    assert_eq!(a.sh("cat /mnt/dv/f").trim(), "via-plugin");
    a.sh("umount /mnt/dv && drbdadm secondary dv1");
    // The plugin refuses to remove a volume in use anywhere: wait until the controller has
    // heard from alpha's DRBD that it is Secondary again.
    assert!(c.wait_until(Duration::from_secs(30), || !c
        .linstor_ok(&["resource", "list", "-r", "dv1"])
        .contains("InUse")));
    assert_eq!(dv(&mut b, "Remove", r#"{"Name":"dv1"}"#)["Err"], "");
    assert!(!c
        .linstor_ok(&["resource-definition", "list"])
        .contains("dv1"));

    // Deleting takes DRBD down and leaves no logical volume behind.
    c.linstor_ok(&["resource-definition", "delete", "r84d"]);
    c.linstor_ok(&["resource-definition", "delete", "r84"]);
    for vm in [&mut a, &mut b] {
        let lvs = vm.sh("lvs --noheadings -o lv_name vg0");
        assert_eq!(
            lvs.split_whitespace().collect::<Vec<_>>(),
            ["thin"],
            "{lvs}"
        );
        let proc = vm.sh("cat /proc/drbd");
        assert!(!proc.contains(" cs:"), "{}: still up:\n{proc}", vm.name);
    }
}

fn guest(g: &Arc<Mutex<Vm>>) -> MutexGuard<'_, Vm> {
    g.lock().unwrap_or_else(|p| p.into_inner())
}

/// OpenNebula's transfer driver with two guests for hosts (its `ssh` reaches them over their
/// consoles): a VM disk cloned from a two-replica image, written by the VM on alpha, migrated
/// live to bravo (premigrate with the VM still running there, postmigrate once it left) and
/// read there.
#[test]
fn opennebula_disk_migrates_between_two_guests() {
    strata_tests::needs_cluster!(strata_tests::vm::image(), needs_ruby());
    let _one = one_at_a_time();
    let c = TestCluster::start(0);
    let (a, b) = guest_pair(&c);
    let (a, b) = (Arc::new(Mutex::new(a)), Arc::new(Mutex::new(b)));
    let relay = GuestSsh::serve(c.dir.path(), vec![a.clone(), b.clone()]);
    c.linstor_ok(&[
        "resource-group",
        "create",
        "onerg",
        "--place-count",
        "2",
        "--storage-pool",
        "sp_thin",
    ]);
    c.linstor_ok(&["volume-group", "create", "onerg"]);
    let mut one = One::new(c.dir.path(), c.port, "alpha");
    one.env = vec![
        ("SSH".into(), GuestSsh::program().display().to_string()),
        (
            "STRATA_GUEST_SSH".into(),
            relay.socket.display().to_string(),
        ),
    ];
    let ds = ["--ds-attr", "LINSTOR_RESOURCE_GROUP=onerg"];

    // The image: an empty 64 MB datablock, two replicas.
    let mut args = vec!["--image-id", "30", "--size", "64"];
    args.extend_from_slice(&ds);
    let (code, out, err) = one.ds("mkfs", &args);
    assert_eq!((code, out.trim()), (0, "OpenNebula-Image-30"), "{err}");
    wait_state(
        &c,
        "OpenNebula-Image-30",
        &["alpha", "bravo"],
        "UpToDate",
        Duration::from_secs(60),
    );

    // VM 40 on alpha: its disk 0 is a clone of the image, linked in its directory there.
    let mut args = vec![
        "--vm-id",
        "40",
        "--host",
        "alpha",
        "--image-id",
        "30",
        "--size",
        "64",
        "--source",
        "OpenNebula-Image-30",
        "--system-tm-mad",
        "strata",
        "--store",
    ];
    args.extend_from_slice(&ds);
    let vm = one.xml("vm", "vm40.xml", &args);
    let dir = one.vm_dir(40);
    let disk = format!("{dir}/disk.0");
    let (code, _, err) = one.tm(
        &vm,
        &format!("CLONE strata fe:OpenNebula-Image-30 alpha:{disk} 40 1"),
    );
    assert_eq!(code, 0, "{err}");
    let res = "OpenNebula-Image-30-vm40-disk0";
    wait_state(
        &c,
        res,
        &["alpha", "bravo"],
        "UpToDate",
        Duration::from_secs(90),
    );
    let dev = drbd_device(&c, res);
    let link = guest(&a).sh(&format!("readlink {disk}"));
    assert_eq!(link.trim(), dev, "the disk's link on alpha");
    // The VM runs on alpha and writes its disk (8.4: no auto-promote, the VM's side promotes).
    let written = {
        let mut a = guest(&a);
        a.sh(&format!("drbdadm primary {res}"));
        a.sh(&format!(
            "dd if=/dev/urandom of={disk} bs=1M count=4 oflag=direct 2>/dev/null"
        ));
        md5(&mut a, &disk, 4)
    };
    let list = || c.linstor_ok(&["resource", "list", "-r", res]);
    let in_use = c.wait_until(Duration::from_secs(30), || {
        list()
            .lines()
            .any(|l| l.contains("alpha") && l.contains("InUse"))
    });
    assert!(in_use, "{}", list());

    // Live migration to bravo: before the move the disk is made usable there and a second
    // primary allowed; bravo's side opens it while alpha's still has it.
    let migrate = |action: &str| one.tm(&vm, &format!("{action} strata alpha bravo {dir} 40 0"));
    let (code, _, err) = migrate("PREMIGRATE");
    assert_eq!(code, 0, "{err}");
    let rd_props = || c.linstor_ok(&["resource-definition", "list-properties", res]);
    let props = rd_props();
    assert!(
        props.contains("allow-two-primaries") && props.contains("alpha -> bravo"),
        "{props}"
    );
    {
        let mut b = guest(&b);
        assert_eq!(b.sh(&format!("readlink {disk}")).trim(), dev);
        b.sh(&format!("drbdadm primary {res}"));
        assert_eq!(
            md5(&mut b, &disk, 4),
            written,
            "bravo reads what alpha wrote"
        );
    }
    // The VM left alpha: after the move its link there goes, and the hand-over ends.
    guest(&a).sh(&format!("drbdadm secondary {res}"));
    let (code, _, err) = migrate("POSTMIGRATE");
    assert_eq!(code, 0, "{err}");
    let (gone, _) = guest(&a).run(&format!("[ -L {disk} ]"));
    assert_ne!(gone, 0, "the link on alpha is left");
    let props = rd_props();
    assert!(!props.contains("allow-two-primaries"), "{props}");
    assert!(!props.contains("hand-over"), "{props}");
    assert_eq!(guest(&b).sh(&format!("readlink {disk}")).trim(), dev);

    // The VM ends on bravo: its disk (the clone) goes, the image stays.
    guest(&b).sh(&format!("drbdadm secondary {res}"));
    let (code, _, err) = one.tm(&vm, &format!("DELETE strata bravo:{disk} 40 1"));
    assert_eq!(code, 0, "{err}");
    let rds = c.linstor_ok(&["resource-definition", "list"]);
    assert!(!rds.contains(res), "{rds}");
    assert!(rds.contains("OpenNebula-Image-30"), "{rds}");
    let (gone, _) = guest(&b).run(&format!("[ -L {disk} ]"));
    assert_ne!(gone, 0, "the link on bravo is left");
}

/// One call of the Cinder driver's `strata-cinder` (as the Python driver makes it on the
/// cinder-volume host, here the host of the guests); its result, or the failure's kind and
/// message.
fn cinder_call(
    c: &TestCluster,
    op: &str,
    args: serde_json::Value,
) -> Result<serde_json::Value, String> {
    use std::io::Write;
    let req = serde_json::json!({
        "version": 1,
        "op": op,
        "config": {"controllers": format!("127.0.0.1:{}", c.port), "timeout": 60},
        "args": args,
    });
    let mut child = std::process::Command::new(strata_tests::bin("strata-cinder"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("strata-cinder runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(req.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON answer");
    if answer["ok"] == true {
        Ok(answer["result"].clone())
    } else {
        Err(format!("{}: {}", answer["kind"], answer["error"]))
    }
}

/// The Cinder driver's attachments in DRBD 8.4 guests: a two-replica volume attached (and
/// written) on bravo where it has a replica, and a one-replica volume on alpha attached on
/// bravo as a diskless client, written there, read back on alpha after the detach.
#[test]
fn cinder_volumes_attach_on_a_compute_guest() {
    strata_tests::needs_cluster!(strata_tests::vm::image());
    let _one = one_at_a_time();
    let c = TestCluster::start(0);
    let (mut a, mut b) = guest_pair(&c);
    for (rg, place) in [("cinder2", "2"), ("cinder1", "1")] {
        c.linstor_ok(&[
            "resource-group",
            "create",
            rg,
            "--place-count",
            place,
            "--storage-pool",
            "sp_thin",
        ]);
        c.linstor_ok(&["volume-group", "create", rg]);
    }
    let two = "CV_7d1f6c2e-0b53-4c55-9a55-2f9d3f3c0a01";
    let one = "CV_7d1f6c2e-0b53-4c55-9a55-2f9d3f3c0a02";
    cinder_call(
        &c,
        "create",
        serde_json::json!({"name": two, "size_gib": 1, "group": "cinder2"}),
    )
    .unwrap();
    cinder_call(
        &c,
        "create",
        serde_json::json!({"name": one, "size_gib": 1, "group": "cinder1"}),
    )
    .unwrap();
    wait_state(
        &c,
        two,
        &["alpha", "bravo"],
        "UpToDate",
        Duration::from_secs(90),
    );
    // The one-replica volume's home is where the group placed it; the other guest is the
    // compute host that uses it.
    let home = if state_of(&c, "alpha", one).is_empty() {
        "bravo"
    } else {
        "alpha"
    };
    wait_state(&c, one, &[home], "UpToDate", Duration::from_secs(90));

    // The two-replica volume on bravo: its own replica, written and read there.
    let got = cinder_call(
        &c,
        "attach",
        serde_json::json!({"name": two, "host": "bravo", "instance_uuid": "inst-2"}),
    )
    .unwrap();
    let dev = got["device"].as_str().unwrap().to_string();
    assert!(dev.starts_with("/dev/drbd"), "{got}");
    b.sh(&format!("drbdadm primary {two}"));
    b.sh(&format!(
        "dd if=/dev/urandom of={dev} bs=1M count=4 oflag=direct 2>/dev/null"
    ));
    let written = md5(&mut b, &dev, 4);
    b.sh(&format!("drbdadm secondary {two}"));
    cinder_call(
        &c,
        "detach",
        serde_json::json!({"name": two, "host": "bravo"}),
    )
    .unwrap();
    a.sh(&format!("drbdadm primary {two}"));
    assert_eq!(
        md5(&mut a, &dev, 4),
        written,
        "alpha's replica has bravo's writes"
    );
    // A live migration from alpha (the instance still has the volume open there) to
    // bravo: both may be primary during the hand-over, which ends with bravo's detach.
    let list = || c.linstor_ok(&["resource", "list", "-r", two]);
    let in_use = c.wait_until(Duration::from_secs(30), || {
        list()
            .lines()
            .any(|l| l.contains("alpha") && l.contains("InUse"))
    });
    assert!(in_use, "{}", list());
    cinder_call(
        &c,
        "attach",
        serde_json::json!({"name": two, "host": "bravo", "instance_uuid": "inst-2"}),
    )
    .unwrap();
    let props = || c.linstor_ok(&["resource-definition", "list-properties", two]);
    assert!(
        props().contains("allow-two-primaries") && props().contains("alpha -> bravo"),
        "{}",
        props()
    );
    b.sh(&format!("drbdadm primary {two}"));
    assert_eq!(md5(&mut b, &dev, 4), written);
    b.sh(&format!("drbdadm secondary {two}"));
    cinder_call(
        &c,
        "detach",
        serde_json::json!({"name": two, "host": "bravo"}),
    )
    .unwrap();
    assert!(!props().contains("allow-two-primaries"), "{}", props());
    a.sh(&format!("drbdadm secondary {two}"));

    // The one-replica volume on the other guest: a diskless client, marked as the driver's,
    // with the instance recorded; after the detach only the home replica is left, with the
    // data.
    let (away, mut home_vm, mut away_vm) = if home == "alpha" {
        ("bravo", a, b)
    } else {
        ("alpha", b, a)
    };
    let got = cinder_call(
        &c,
        "attach",
        serde_json::json!({"name": one, "host": away, "instance_uuid": "inst-1"}),
    )
    .unwrap();
    let dev1 = got["device"].as_str().unwrap().to_string();
    let listed = c.linstor_ok(&["-m", "resource", "list", "-r", one]);
    assert!(
        listed.contains("\"Aux/cinder/instance-uuid\": \"inst-1\"")
            && listed.contains("\"Aux/strata/attached-by\": \"cinder\""),
        "{listed}"
    );
    let proc = away_vm.sh("cat /proc/drbd");
    assert!(proc.contains("ds:Diskless/UpToDate"), "{proc}");
    away_vm.sh(&format!("drbdadm primary {one}"));
    away_vm.sh(&format!(
        "dd if=/dev/urandom of={dev1} bs=1M count=4 oflag=direct 2>/dev/null"
    ));
    let written = md5(&mut away_vm, &dev1, 4);
    away_vm.sh(&format!("drbdadm secondary {one}"));
    let done = cinder_call(&c, "detach", serde_json::json!({"name": one, "host": away})).unwrap();
    assert_eq!(done["released"], true, "{done}");
    let gone = c.wait_until(Duration::from_secs(30), || {
        !c.linstor_ok(&["resource", "list", "-r", one])
            .contains(away)
    });
    assert!(gone, "{}", c.linstor_ok(&["resource", "list", "-r", one]));
    home_vm.sh(&format!("drbdadm primary {one}"));
    assert_eq!(
        md5(&mut home_vm, &dev1, 4),
        written,
        "the home replica has the writes"
    );
    home_vm.sh(&format!("drbdadm secondary {one}"));

    for name in [one, two] {
        cinder_call(&c, "delete", serde_json::json!({ "name": name })).unwrap();
    }
    let rds = c.linstor_ok(&["resource-definition", "list"]);
    assert!(!rds.contains("CV_"), "{rds}");
}

// ----- Pacemaker: the controller on a DRBD volume, moved by Pacemaker -----

/// corosync's configuration for the two guests (a two-node cluster without fencing: the
/// test has no fence device; long token for guests under emulation).
const COROSYNC_CONF: &str = "totem {
    version: 2
    cluster_name: strata
    transport: knet
    token: 10000
    crypto_cipher: none
    crypto_hash: none
}
nodelist {
    node {
        ring0_addr: 10.99.0.1
        name: alpha
        nodeid: 1
    }
    node {
        ring0_addr: 10.99.0.2
        name: bravo
        nodeid: 2
    }
}
quorum {
    provider: corosync_votequorum
    two_node: 1
}
logging {
    to_logfile: yes
    logfile: /var/log/cluster/corosync.log
    to_syslog: no
    to_stderr: no
    timestamp: on
}
";

/// The controller as an LSB service (the guests have no systemd: where the guide writes
/// `systemd:linstor-controller`, these write `lsb:linstor-controller`).
const CONTROLLER_INIT: &str = "#!/bin/sh
# linstor-controller: LSB init script for Pacemaker (start, stop, status).
PIDFILE=/run/linstor-controller.pid
running() { [ -f $PIDFILE ] && kill -0 \"$(cat $PIDFILE)\" 2>/dev/null; }
case \"$1\" in
start)
    running && exit 0
    RUST_LOG=info setsid /usr/local/bin/linstor-controller --data-dir /var/lib/linstor \\
        </dev/null >>/var/log/linstor-controller.log 2>&1 &
    echo $! >$PIDFILE
    exit 0 ;;
stop)
    running || exit 0
    pid=$(cat $PIDFILE); kill $pid
    i=0; while kill -0 $pid 2>/dev/null; do i=$((i+1)); [ $i -lt 300 ] || kill -9 $pid; sleep 0.1; done
    rm -f $PIDFILE; exit 0 ;;
status)
    running && exit 0; exit 3 ;;
*) exit 2 ;;
esac
";

/// The seed's Pacemaker resources, adapted: DRBD resource `linstor_db` promoted on one
/// node, its file system on /var/lib/linstor there, the controller after it.
fn pacemaker_resources(device: &str) -> String {
    format!(
        r#"<resources>
  <clone id="ms_drbd_linstor_db">
    <meta_attributes id="ms_drbd_linstor_db-meta">
      <nvpair id="ms-promotable" name="promotable" value="true"/>
      <nvpair id="ms-promoted-max" name="promoted-max" value="1"/>
      <nvpair id="ms-promoted-node-max" name="promoted-node-max" value="1"/>
      <nvpair id="ms-clone-max" name="clone-max" value="2"/>
      <nvpair id="ms-clone-node-max" name="clone-node-max" value="1"/>
      <nvpair id="ms-notify" name="notify" value="true"/>
    </meta_attributes>
    <primitive id="p_drbd_linstor_db" class="ocf" provider="linbit" type="drbd">
      <instance_attributes id="p_drbd_linstor_db-params">
        <nvpair id="p_drbd-res" name="drbd_resource" value="linstor_db"/>
      </instance_attributes>
      <operations>
        <op id="p_drbd-mon-m" name="monitor" interval="29s" role="Master"/>
        <op id="p_drbd-mon-s" name="monitor" interval="31s" role="Slave"/>
      </operations>
    </primitive>
  </clone>
  <group id="g_linstor">
    <primitive id="p_fs_linstor_db" class="ocf" provider="heartbeat" type="Filesystem">
      <instance_attributes id="p_fs-params">
        <nvpair id="p_fs-dev" name="device" value="{device}"/>
        <nvpair id="p_fs-dir" name="directory" value="/var/lib/linstor"/>
        <nvpair id="p_fs-type" name="fstype" value="ext4"/>
      </instance_attributes>
    </primitive>
    <primitive id="p_linstor-controller" class="lsb" type="linstor-controller"/>
  </group>
</resources>"#
    )
}

const PACEMAKER_CONSTRAINTS: &str = r#"<constraints>
  <rsc_order id="o_drbd_before_linstor" first="ms_drbd_linstor_db" first-action="promote" then="g_linstor" then-action="start" kind="Mandatory"/>
  <rsc_colocation id="c_linstor_with_drbd" rsc="g_linstor" with-rsc="ms_drbd_linstor_db" with-rsc-role="Master" score="INFINITY"/>
</constraints>"#;

/// What turns a guest into a controller host: the controller, its LSB script, corosync's
/// configuration.
fn controller_overlay(dir: &std::path::Path) -> std::path::PathBuf {
    let binary = strata_tests::vm::stripped(dir, "linstor-controller");
    strata_tests::vm::overlay(
        dir,
        "controller",
        &[
            ("usr/local/bin/linstor-controller", &binary, 0o755),
            (
                "etc/init.d/linstor-controller",
                CONTROLLER_INIT.as_bytes(),
                0o755,
            ),
            (
                "etc/corosync/corosync.conf",
                COROSYNC_CONF.as_bytes(),
                0o644,
            ),
            ("var/lib/linstor/.keep", b"", 0o644),
        ],
    )
}

/// Whether the controller behind host port `port` answers.
fn answers(port: u16) -> bool {
    strata_tests::http_status(port, "/v1/controller/version") == Some(200)
}

/// Waits until one of the controllers behind `ports` answers; answers its index.
fn wait_controller(ports: &[u16], limit: Duration, what: &str, logs: impl Fn() -> String) -> usize {
    let start = std::time::Instant::now();
    loop {
        if let Some(i) = ports.iter().position(|p| answers(*p)) {
            return i;
        }
        assert!(
            start.elapsed() < limit,
            "{what}: no controller answers:\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn pacemaker_moves_the_controller_between_two_guests() {
    strata_tests::needs_cluster!(strata_tests::vm::image(), strata_tests::vm::ha_overlay());
    let _one = one_at_a_time();
    let dir = tempfile::Builder::new()
        .prefix("strata-pacemaker-")
        .tempdir()
        .unwrap();
    let extras = vec![
        satellite_overlay(dir.path()),
        strata_tests::vm::ha_overlay_path(),
        controller_overlay(dir.path()),
    ];
    let link = free_port();
    let rest = [free_port(), free_port()];
    let spec = |name: &str, i: usize| VmSpec {
        name: name.into(),
        addr: Some(format!("10.99.0.{}/24", i + 1)),
        listen: (i == 0).then_some(link),
        connect: (i == 1).then_some(link),
        forward_rest: Some(rest[i]),
        disk: Some(dir.path().join(format!("{name}.img"))),
        disk_size: Some("2G".into()),
        mem: Some(1536),
        extras: extras.clone(),
        ..Default::default()
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| Vm::boot(&spec("alpha", 0)));
        std::thread::sleep(Duration::from_secs(2));
        let b = Vm::boot(&spec("bravo", 1));
        (a.join().expect("first guest"), b)
    });
    let guests = [Arc::new(Mutex::new(a)), Arc::new(Mutex::new(b))];
    for g in &guests {
        let mut vm = guest(g);
        vm.wait_satellite();
        vm.sh("pvcreate -q /dev/vda && vgcreate -q vg0 /dev/vda && lvcreate -q -L 1G -T vg0/thin");
    }
    let names = ["alpha", "bravo"];
    let controllers = format!("127.0.0.1:{},127.0.0.1:{}", rest[0], rest[1]);
    let linstor = |args: &[&str]| -> String {
        let out = std::process::Command::new(strata_tests::bin("linstor"))
            .args(["--controllers", &controllers, "--no-color"])
            .args(args)
            .env_remove("LS_CONTROLLERS")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "linstor {args:?}: {}",
            output_text(&out)
        );
        output_text(&out)
    };
    let logs = || {
        guests
            .iter()
            .map(|g| {
                let mut vm = guest(g);
                let name = vm.name.clone();
                let (_, out) = vm.run(
                    "tail -n 30 /var/log/linstor-controller.log; crm_mon -1 2>&1 | tail -n 30; \
                     tail -n 40 /var/log/pacemaker/pacemaker.log 2>/dev/null",
                );
                format!("--- {name} ---\n{out}")
            })
            .collect::<String>()
    };

    // The controller starts on alpha (as the seed's set-up begins) and makes the cluster,
    // the database's own DRBD resource included.
    guest(&guests[0]).sh("/etc/init.d/linstor-controller start");
    wait_controller(&rest[..1], Duration::from_secs(120), "first start", logs);
    let client = strata_client::Client::new(
        &[format!("127.0.0.1:{}", rest[0])],
        Duration::from_secs(120),
    )
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    for (i, name) in names.iter().enumerate() {
        let body = serde_json::json!({
            "name": name,
            "type": "SATELLITE",
            "net_interfaces": [{"name": "default", "address": format!("10.99.0.{}", i + 1),
                                "satellite_port": 3366, "is_active": true}],
            "join_token": strata_tests::vm::GUEST_JOIN_TOKEN,
        });
        strata_tests::ok_replies(rt.block_on(client.write(
            strata_client::Method::POST,
            "/v1/nodes",
            Some(&body),
        )));
        linstor(&[
            "storage-pool",
            "create",
            "lvmthin",
            name,
            "sp_thin",
            "vg0/thin",
        ]);
    }
    linstor(&["resource-definition", "create", "linstor_db"]);
    linstor(&["volume-definition", "create", "linstor_db", "64M"]);
    for name in names {
        linstor(&[
            "resource",
            "create",
            name,
            "linstor_db",
            "--storage-pool",
            "sp_thin",
        ]);
    }
    let up_to_date = |rsc: &str, nodes: &[&str]| {
        let start = std::time::Instant::now();
        loop {
            let list = linstor(&["resource", "list", "-r", rsc]);
            if nodes.iter().all(|n| {
                list.lines()
                    .any(|l| l.contains(&format!(" {n} ")) && l.contains("UpToDate"))
            }) {
                return list;
            }
            assert!(
                start.elapsed() < Duration::from_secs(180),
                "{rsc} is not UpToDate on {nodes:?}:\n{list}"
            );
            std::thread::sleep(Duration::from_secs(2));
        }
    };
    up_to_date("linstor_db", &names);
    let device = {
        let rscs = rt
            .block_on(client.resources(&[], &["linstor_db".into()], &[], &[]))
            .unwrap();
        rscs[0].volumes[0].device_path.clone().expect("a device")
    };
    assert!(device.starts_with("/dev/drbd"), "{device}");

    // The controller's database moves onto that volume (the seed's steps).
    guest(&guests[0]).sh(&format!(
        "/etc/init.d/linstor-controller stop && drbdadm primary linstor_db && \
         mkfs.ext4 -q {device} && mount {device} /mnt && cp -a /var/lib/linstor/. /mnt/ && \
         umount /mnt && drbdadm secondary linstor_db && rm -rf /var/lib/linstor/*"
    ));

    // Pacemaker takes over: corosync and pacemaker on both, then the seed's resources.
    for g in &guests {
        guest(g).sh(
            "corosync && (setsid pacemakerd </dev/null >/var/log/pacemaker/pacemakerd.out 2>&1 &)",
        );
    }
    {
        let start = std::time::Instant::now();
        loop {
            let (_, out) = guest(&guests[0]).run("crm_mon -1 2>&1");
            if out.contains("Online: [ alpha bravo ]") {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(300),
                "the Pacemaker cluster does not form:\n{out}\n{}",
                logs()
            );
            std::thread::sleep(Duration::from_secs(3));
        }
    }
    {
        let mut vm = guest(&guests[0]);
        vm.exec(
            "cat >/run/resources.xml",
            pacemaker_resources(&device).as_bytes(),
        );
        vm.exec(
            "cat >/run/constraints.xml",
            PACEMAKER_CONSTRAINTS.as_bytes(),
        );
        vm.sh(
            "crm_attribute --type crm_config --name stonith-enabled --update false && \
             cibadmin --replace -o resources --xml-file /run/resources.xml && \
             cibadmin --replace -o constraints --xml-file /run/constraints.xml",
        );
    }
    let leader = wait_controller(&rest, Duration::from_secs(300), "Pacemaker start", logs);
    let other = 1 - leader;
    eprintln!("Pacemaker started the controller on {}", names[leader]);

    // The satellites reconnect to it; the database volume is in use there and stays so.
    let online = |want: usize| {
        let start = std::time::Instant::now();
        loop {
            let nodes = linstor(&["node", "list"]);
            if nodes.matches("| Online").count() == want {
                return nodes;
            }
            assert!(
                start.elapsed() < Duration::from_secs(180),
                "not {want} nodes online:\n{nodes}"
            );
            std::thread::sleep(Duration::from_secs(2));
        }
    };
    online(2);
    // After a start, placement waits for the pools' first report.
    let pools_reported = |nodes: &[&str]| {
        let start = std::time::Instant::now();
        loop {
            let list = linstor(&["storage-pool", "list", "-s", "sp_thin"]);
            let reported = nodes.iter().all(|n| {
                list.lines()
                    .any(|l| l.contains(&format!("| {n} ")) && l.contains("GiB"))
            });
            if reported {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "the pools do not report:\n{list}"
            );
            std::thread::sleep(Duration::from_secs(2));
        }
    };
    pools_reported(&names);
    {
        let mut vm = guest(&guests[leader]);
        assert!(vm
            .sh("mount")
            .contains(&format!("{device} on /var/lib/linstor")));
        assert!(vm.sh("cat /proc/drbd").contains("ro:Primary/Secondary"));
    }
    let list = linstor(&["resource", "list", "-r", "linstor_db"]);
    assert!(list.contains("InUse"), "{list}");
    linstor(&[
        "resource-group",
        "create",
        "rg2",
        "--place-count",
        "2",
        "--storage-pool",
        "sp_thin",
    ]);
    linstor(&["volume-group", "create", "rg2"]);
    linstor(&["resource-group", "spawn-resources", "rg2", "data1", "32M"]);
    up_to_date("data1", &names);

    // The guest running the controller is powered off.
    let started = std::time::Instant::now();
    guest(&guests[leader]).power_off();
    let logs_other = || {
        let mut vm = guest(&guests[other]);
        vm.run(
            "tail -n 30 /var/log/linstor-controller.log; crm_mon -1 2>&1 | tail -n 30; \
             tail -n 60 /var/log/pacemaker/pacemaker.log 2>/dev/null",
        )
        .1
    };
    wait_controller(
        &rest[other..=other],
        Duration::from_secs(300),
        "fail-over",
        logs_other,
    );
    eprintln!(
        "Pacemaker moved the controller to {} in {} s",
        names[other],
        started.elapsed().as_secs()
    );
    // The satellites and the CLI continue on the survivor.
    let nodes = online(1);
    assert!(nodes.contains("OFFLINE"), "{nodes}");
    let rds = linstor(&["resource-definition", "list"]);
    assert!(rds.contains("linstor_db") && rds.contains("data1"), "{rds}");
    linstor(&[
        "resource-group",
        "create",
        "rg1",
        "--place-count",
        "1",
        "--storage-pool",
        "sp_thin",
    ]);
    linstor(&["volume-group", "create", "rg1"]);
    // The survivor's pool reports its capacity to the new controller first.
    pools_reported(&names[other..=other]);
    linstor(&["resource-group", "spawn-resources", "rg1", "data2", "16M"]);
    up_to_date("data2", &names[other..=other]);
    // Nothing demoted or removed the database volume under the controller.
    std::thread::sleep(Duration::from_secs(5));
    let mut vm = guest(&guests[other]);
    assert!(vm
        .sh("mount")
        .contains(&format!("{device} on /var/lib/linstor")));
    assert!(vm.sh("cat /proc/drbd").contains("ro:Primary/Unknown"));
    assert!(answers(rest[other]));
}
