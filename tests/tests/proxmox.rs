//! The Proxmox VE storage plugin driven by the real Proxmox storage layer (pve-storage
//! 9.1.7's `PVE::Storage` and the real `pvesm`, in `tests/harness/pve/`), against a real
//! controller and a satellite on FILE_THIN named after this host, as a Proxmox node is.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use strata_tests::{bin, needs, LoopFs, TestCluster};

fn harness() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("harness/pve")
}

fn plugin() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins/proxmox/perl/PVE/Storage/Custom/StrataPlugin.pm")
}

/// The node name Proxmox gives this host (`PVE::INotify::nodename`: the short host name).
fn node_name() -> String {
    let out = Command::new("uname").arg("-n").output().expect("uname");
    let name = String::from_utf8_lossy(&out.stdout).trim().to_string();
    name.split('.').next().unwrap_or("localhost").to_string()
}

struct Pve {
    dir: PathBuf,
    helper: PathBuf,
}

impl Pve {
    /// A harness state directory with the plugin installed and `cfg` as storage.cfg.
    fn new(dir: &Path, cfg: &str) -> Pve {
        std::fs::create_dir_all(dir).unwrap();
        let pve = Pve {
            dir: dir.to_path_buf(),
            helper: bin("strata-pve"),
        };
        let out = pve.run(&["-p", plugin().to_str().unwrap(), "-C", cfg, "config"]);
        let load = &out[0];
        assert_eq!(load["op"], "load", "{out:?}");
        assert!(
            load.to_string().contains("strata"),
            "the plugin did not load: {load}"
        );
        pve
    }

    /// The harness with `args`, in this state directory, with our helper.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(harness().join("run-pve.sh"));
        cmd.args(args)
            .env("PVE_HARNESS_DIR", &self.dir)
            .env("STRATA_PVE_HELPER", &self.helper)
            .env("STRATA_PVE_STATE_DIR", self.dir.join("strata-pve"));
        cmd
    }

    /// Runs the harness with `args`; answers its JSON lines.
    fn run(&self, args: &[&str]) -> Vec<Value> {
        let out = self.command(args).output().expect("run-pve.sh runs");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let lines: Vec<Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        assert!(
            !lines.is_empty(),
            "no output from the harness: {}\n{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        );
        lines
    }

    /// Runs operation lines; every one must pass. Answers each operation's line.
    fn ops(&self, ops: &str) -> Vec<Value> {
        let file = self.dir.join("ops");
        std::fs::write(&file, ops).unwrap();
        let lines = self.run(&["-o", file.to_str().unwrap()]);
        let failed: Vec<&Value> = lines
            .iter()
            .filter(|l| l.get("seq").is_some() && l["pass"] != true)
            .collect();
        assert!(
            failed.is_empty(),
            "operations failed:\n{}",
            failed
                .iter()
                .map(|l| l.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        );
        lines
            .into_iter()
            .filter(|l| l.get("seq").is_some())
            .collect()
    }

    /// The real `pvesm` with `args`: (exit code, stdout, stderr).
    fn pvesm(&self, args: &[&str]) -> (i64, String, String) {
        let mut a = vec!["pvesm"];
        a.extend_from_slice(args);
        let out = self.command(&a).output().expect("pvesm runs");
        (
            out.status.code().unwrap_or(-1) as i64,
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }
}

/// The Perl modules the Proxmox storage layer loads (the harness checks them itself).
fn needs_perl() -> needs::Need {
    let ok = Command::new(harness().join("run-pve.sh"))
        .arg("--check-deps")
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        Ok(())
    } else {
        Err("needs the Perl modules `tests/harness/pve/run-pve.sh --check-deps` names (scripts/test-all.sh installs them)".into())
    }
}

#[test]
fn proxmox_storage_layer_drives_the_plugin() {
    strata_tests::needs_cluster!(needs_perl(), needs::tool("mkfs.xfs", "xfsprogs"));
    let mut c = TestCluster::start(0);
    let node = node_name();
    let i = c.add_satellite(&node);
    // The pool on xfs: FILE_THIN snapshots are reflink copies.
    let xfs = LoopFs::xfs(c.dir.path(), "xfs");
    let pool = xfs.mnt.join("pool");
    std::fs::create_dir_all(&pool).unwrap();
    c.satellites[i].pool_dir = pool;
    c.register_all();
    c.create_group("pve_rg", 1);
    // A thick pool on the same small file system: a disk larger than it cannot be placed.
    let thick = xfs.mnt.join("thick");
    std::fs::create_dir_all(&thick).unwrap();
    let thick = thick.display().to_string();
    c.linstor_ok(&["storage-pool", "create", "file", &node, "thick", &thick]);
    c.linstor_ok(&[
        "resource-group",
        "create",
        "thick_rg",
        "--place-count",
        "1",
        "--storage-pool",
        "thick",
    ]);
    c.linstor_ok(&["volume-group", "create", "thick_rg"]);
    // s2 names a resource group that does not exist; s3 reuses its status for a minute.
    let cfg = format!(
        "strata: s1\\n strata-controllers 127.0.0.1:{p}\\n strata-group pve_rg\\n content images,rootdir\\n shared 1\\n\\nstrata: s2\\n strata-controllers 127.0.0.1:{p}\\n strata-group nosuch\\n content images\\n shared 1\\n\\nstrata: s3\\n strata-controllers 127.0.0.1:{p}\\n strata-group pve_rg\\n strata-statuscache 60\\n content images\\n shared 1\\n\\nstrata: s4\\n strata-controllers 127.0.0.1:{p}\\n strata-group thick_rg\\n content images\\n shared 1",
        p = c.port
    );
    let pve = Pve::new(&c.dir.path().join("pve"), &cfg);

    // VM 100 is known to the cluster, with a name: its disks carry it.
    pve.ops("g := guest 100 qemu\n");
    let conf_dir = pve.dir.join(format!("etc/pve/nodes/{node}/qemu-server"));
    std::fs::create_dir_all(&conf_dir).unwrap();
    std::fs::write(conf_dir.join("100.conf"), "memory: 512\nname: web1\n").unwrap();
    let out = pve.ops(
        r#"
st := status
v := alloc s1 100 raw - 64M --> alloc_image
named := alloc s1 100 raw vm-100-disk-5 32M ==> "s1:vm-100-disk-5"
!alloc s1 100 raw vm-100-disk-5 32M
!alloc s1 100 raw - 0
!alloc s4 100 raw - 4G
!alloc s1 100 raw vm-101-disk-0 32M
other := alloc s1 101 raw - 16M ==> "s1:vm-101-disk-0"
l100 := list s1 100
activate $v --> activate_volume
p := path $v
sz := size $v
resize $v 134217728
sz2 := size $v
snapshot $v snap1
si := snapshot_info $v
rollback $v snap1
fs := features $v snap1
sc := clone $v 400 snap1 ==> "s1:vm-400-disk-0"
scs := size s1:vm-400-disk-0
free s1:vm-400-disk-0
snapshot_delete $v snap1
feat := features $v
deactivate $v
free $named
free $other
!free s1:vm-100-disk-9
"#,
    );
    // The result of the `n`th operation `op` (from 0).
    let nth = |op: &str, n: usize| -> Value {
        out.iter()
            .filter(|l| l["op"] == op)
            .nth(n)
            .unwrap_or_else(|| panic!("no {op} #{n} in {out:?}"))["result"]
            .clone()
    };
    // status: the group's pool, in bytes, active.
    let st = nth("status", 0)["s1"].clone();
    assert_eq!(st["active"], 1, "{st}");
    assert_eq!(st["shared"], 1, "{st}");
    let total = st["total"].as_u64().unwrap();
    assert!(
        total > 400 << 20 && total <= 512 << 20,
        "the xfs pool's size: {st}"
    );
    assert_eq!(
        st["used"].as_u64().unwrap() + st["avail"].as_u64().unwrap(),
        total,
        "{st}"
    );
    assert_eq!(nth("alloc", 0), "s1:vm-100-disk-0");
    // Listing of VM 100: its two disks, sizes in bytes.
    let list = nth("list", 0)["s1"].as_array().expect("a list").clone();
    let ids: Vec<&str> = list.iter().map(|v| v["volid"].as_str().unwrap()).collect();
    assert_eq!(ids, ["s1:vm-100-disk-0", "s1:vm-100-disk-5"]);
    assert_eq!(list[0]["size"], 64 * 1024 * 1024);
    // The path is the block device on this node.
    let path = nth("path", 0)["path"].as_str().unwrap().to_string();
    assert!(path.starts_with("/dev/loop"), "{path}");
    // Sizes in bytes, grown online.
    assert_eq!(nth("size", 0)["size"], 64u64 << 20);
    assert_eq!(nth("size", 1)["size"], 128u64 << 20);
    // When the snapshot was taken, in seconds: within this test's run.
    let si = nth("snapshot_info", 0);
    let at = si["snap1"]["timestamp"].as_i64().unwrap_or_default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(now - at < 600 && at <= now, "{si}");
    assert_eq!(si["snap1"]["id"], 1, "{si}");
    // A clone of the snapshot: offered, made, as large as the disk when the snapshot was
    // taken.
    assert_eq!(nth("features", 0)["clone"], true, "{}", nth("features", 0));
    assert_eq!(nth("size", 2)["size"], 128u64 << 20);
    // Properties that let `linstor rd list` find a VM's disks.
    let rd = c.linstor_ok(&["-m", "resource-definition", "list", "-r", "vm-100-disk-0"]);
    assert!(
        rd.contains("Aux/pve/vmid") && rd.contains("\"100\""),
        "{rd}"
    );
    assert!(
        rd.contains("\"Aux/pve/vm-name\"") && rd.contains("\"web1\""),
        "{rd}"
    );
    // Errors say what is wrong.
    let bad = out
        .iter()
        .find(|l| l["op"] == "alloc" && l["args"][4] == "0")
        .unwrap();
    assert!(bad["error"].as_str().unwrap().contains("size 0"), "{bad}");
    let full = out
        .iter()
        .find(|l| l["op"] == "alloc" && l["args"][0] == "s4")
        .unwrap();
    let why = full["error"].as_str().unwrap_or_default();
    assert!(
        why.contains("replica(s) needed") && why.contains("free space"),
        "{full}"
    );
    let gone = out.last().unwrap();
    assert!(
        gone["error"].as_str().unwrap().contains("does not exist"),
        "{gone}"
    );
    // Nothing left behind but the one disk still allocated.
    let rds = c.linstor_ok(&["resource-definition", "list"]);
    assert!(rds.contains("vm-100-disk-0"), "{rds}");
    assert!(
        !rds.contains("vm-100-disk-5")
            && !rds.contains("vm-101-disk-0")
            && !rds.contains("vm-100-disk-0_"),
        "{rds}"
    );

    // The real pvesm.
    let (code, stdout, stderr) = pve.pvesm(&["list", "s1"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("s1:vm-100-disk-0"), "{stdout}");
    let (code, stdout, stderr) = pve.pvesm(&["alloc", "s1", "102", "", "16M"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("vm-102-disk-0"), "{stdout}");
    let (code, stdout, stderr) = pve.pvesm(&["free", "s1:vm-102-disk-0"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let (code, _, _) = pve.pvesm(&["status"]);
    assert_eq!(code, 0);

    // An unknown resource group: a clear error, nothing created.
    let out = pve.run(&["-e", "!alloc s2 100 raw - 16M"]);
    let refused = out.iter().find(|l| l["op"] == "alloc").unwrap();
    assert_eq!(refused["pass"], true, "{refused}");
    assert!(
        refused["error"].as_str().unwrap().contains("nosuch"),
        "{refused}"
    );
    assert!(!c
        .linstor_ok(&["resource-definition", "list"])
        .contains("vm-100-disk-1"));

    // A disk LINBIT's plugin made (pm-xxxxxxxx_<vmid>, no properties of ours): listed for its
    // VM, usable, freed.
    c.linstor_ok(&[
        "resource-group",
        "spawn-resources",
        "pve_rg",
        "pm-12cf1f63_500",
        "16M",
    ]);
    let out = pve.ops(
        r#"
l500 := list s1 500
activate s1:pm-12cf1f63_500
lp := path s1:pm-12cf1f63_500
free s1:pm-12cf1f63_500
"#,
    );
    assert_eq!(out[0]["result"]["s1"][0]["volid"], "s1:pm-12cf1f63_500");
    assert!(out[2]["result"]["path"]
        .as_str()
        .is_some_and(|p| p.starts_with("/dev/")));

    // The controller gone: a disk set up on this node keeps its path and can be activated
    // (a VM using it runs and starts); what needs the controller fails at once and says why.
    let before = pve.ops("activate s1:vm-100-disk-0\np := path s1:vm-100-disk-0\n")[1]["result"]
        ["path"]
        .clone();
    c.kill_controller();
    let out = pve.ops(
        r#"
p := path s1:vm-100-disk-0
activate s1:vm-100-disk-0
!alloc s1 100 raw - 16M
!path s1:vm-100-disk-5
st := status
"#,
    );
    assert_eq!(out[0]["result"]["path"], before);
    let refused = &out[2];
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("cannot be reached"),
        "{refused}"
    );
    assert!(refused["ms"].as_u64().unwrap() < 10_000, "{refused}");
    assert_eq!(out[4]["result"]["s1"]["active"], 0, "{}", out[4]);
    // s3 reuses the status it noted while the controller answered (strata-statuscache).
    assert_eq!(out[4]["result"]["s3"]["active"], 1, "{}", out[4]);
    assert!(pve.dir.join("strata-pve/status-s3.json").exists());
    c.start_controller();

    // Template, linked clone, reassignment to another VM, as qm template / qm clone /
    // qm disk move --target-vmid drive them. What the VM wrote is in the clone.
    let dev = pve.ops("activate s1:vm-100-disk-0\np := path s1:vm-100-disk-0\n")[1]["result"]
        ["path"]
        .as_str()
        .expect("a device path")
        .to_string();
    let data = b"written before the template was made".repeat(100);
    assert_eq!(strata_tests::write_and_read(&dev, &data), data);
    let out = pve.ops(
        r#"
base := create_base s1:vm-100-disk-0 ==> "s1:base-100-disk-0"
!create_base s1:base-100-disk-0
fb := features s1:base-100-disk-0
lc := clone s1:base-100-disk-0 200 ==> "s1:base-100-disk-0/vm-200-disk-0"
!clone s1:vm-100-disk-9 200
!free s1:base-100-disk-0
l200 := list s1 200
activate s1:base-100-disk-0/vm-200-disk-0
cp := path s1:base-100-disk-0/vm-200-disk-0
"#,
    );
    let nth = |op: &str| -> Value {
        out.iter()
            .find(|l| l["op"] == op)
            .unwrap_or_else(|| panic!("no {op} in {out:?}"))["result"]
            .clone()
    };
    // The GUI offers what works: clone and copy of a template's disk.
    let fb = nth("features").to_string();
    assert!(
        fb.contains("\"clone\":true") && fb.contains("\"copy\":true"),
        "{fb}"
    );
    assert!(
        fb.contains("\"snapshot\":false"),
        "no snapshots of a template's disk: {fb}"
    );
    // The clone holds what the VM had written.
    let clone_dev = nth("path")["path"].as_str().unwrap().to_string();
    let mut got = vec![0u8; data.len()];
    {
        use std::io::Read;
        std::fs::File::open(&clone_dev)
            .and_then(|mut f| f.read_exact(&mut got))
            .unwrap();
    }
    assert_eq!(
        got, data,
        "the linked clone does not hold the template's data"
    );
    // A new disk takes the free name the template left; a disk is given to another VM;
    // everything is freed, the base last.
    pve.ops(
        r#"
again := alloc s1 100 raw - 16M ==> "s1:vm-100-disk-0"
mv := rename s1:vm-100-disk-0 300 ==> "s1:vm-300-disk-0"
l300 := list s1 300 =~ vm-300-disk-0
free s1:vm-300-disk-0
free s1:base-100-disk-0/vm-200-disk-0
free s1:base-100-disk-0
"#,
    );
    let l200 = nth("list")["s1"].as_array().unwrap().clone();
    assert_eq!(l200[0]["volid"], "s1:base-100-disk-0/vm-200-disk-0");
    assert_eq!(l200[0]["parent"], "base-100-disk-0");
    // Proxmox refused to free the base while its clone existed.
    let refused = out
        .iter()
        .find(|l| l["op"] == "free" && l["args"][0] == "s1:base-100-disk-0" && l["ok"] == false)
        .expect("the base's first free is refused");
    assert!(
        refused["error"].as_str().unwrap().contains("base volume"),
        "{refused}"
    );
    let gone = c.wait_until(std::time::Duration::from_secs(10), || {
        let rds = c.linstor_ok(&["resource-definition", "list"]);
        !rds.contains("vm-") && !rds.contains("base-")
    });
    assert!(
        gone,
        "{}\n{}",
        c.linstor_ok(&["resource-definition", "list"]),
        c.linstor_ok(&["resource", "list"])
    );
}
