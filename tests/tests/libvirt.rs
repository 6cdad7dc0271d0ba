//! The controller VM under libvirt: Debian's libvirtd (`qemu:///system`, a TCG domain) runs the
//! appliance image from a volume of our cluster on a loop device, and `strata-vmorder` starts
//! it through libvirt's C library (the `virt` crate); the appliance's controller comes up on
//! that disk.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use strata_tests::appliance::{self, Guest};
use strata_tests::{output_text, run_ok, Proc, TestCluster};

const URI: &str = "qemu:///system";

fn virsh(args: &[&str]) -> std::process::Output {
    Command::new("virsh")
        .arg("-c")
        .arg(URI)
        .args(args)
        .output()
        .expect("virsh runs")
}

/// libvirtd (and virtlogd) for the test: the host's if one answers, else started here and
/// ended with the test.
struct Libvirtd {
    ours: Vec<Proc>,
}

impl Libvirtd {
    fn ensure(dir: &Path) -> Libvirtd {
        if virsh(&["version"]).status.success() {
            return Libvirtd { ours: vec![] };
        }
        let mut ours = vec![Proc::spawn(
            &mut Command::new("virtlogd"),
            &dir.join("virtlogd.log"),
        )];
        ours.push(Proc::spawn(
            &mut Command::new("libvirtd"),
            &dir.join("libvirtd.log"),
        ));
        let start = Instant::now();
        while !virsh(&["version"]).status.success() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "libvirtd did not answer:\n{}",
                ours[1].log_text()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
        Libvirtd { ours }
    }
}

impl Drop for Libvirtd {
    fn drop(&mut self) {
        for p in self.ours.iter_mut().rev() {
            p.kill9();
        }
    }
}

/// Waits until libvirt runs domain `name`, which the daemon (its log in the failure) starts.
fn wait_running(name: &str, limit: Duration, daemon: &Proc) {
    let start = Instant::now();
    loop {
        let st = virsh(&["domstate", name]);
        if String::from_utf8_lossy(&st.stdout).trim() == "running" {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "strata-vmorder did not start {name} within {limit:?}:\n{}",
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The domain, destroyed and undefined when the test ends however it ends.
struct Domain(String);

impl Drop for Domain {
    fn drop(&mut self) {
        let _ = virsh(&["destroy", &self.0]);
        let _ = virsh(&["undefine", &self.0]);
    }
}

#[test]
fn strata_vmorder_starts_the_controller_vm_through_libvirt() {
    strata_tests::needs_cluster!(
        strata_tests::needs::tool("libvirtd", "libvirt-daemon-system"),
        strata_tests::needs::tool("virsh", "libvirt-clients"),
        strata_tests::needs::tool("qemu-system-x86_64", "qemu-system-x86"),
        appliance::needs(),
    );
    let image = appliance::build(false).join("strata-controller-vm.qcow2");
    let dir = tempfile::Builder::new()
        .prefix("strata-libvirt-")
        .tempdir()
        .unwrap();
    // qemu runs as libvirt's own user: it makes its console socket in here.
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let _libvirtd = Libvirtd::ensure(dir.path());

    // The VM's two disks are volumes of a cluster on this host (FILE_THIN on loop devices):
    // the image written onto the first, the second blank for the controller's database.
    let c = TestCluster::start(1);
    c.register_all();
    c.create_group("rg1", 1);
    c.spawn("rg1", "ctrlvm_root", 2 << 20);
    c.spawn("rg1", "ctrlvm_db", 256 << 10);
    let root = c.device_of("ctrlvm_root").expect("a device");
    let db = c.device_of("ctrlvm_db").expect("a device");
    assert!(root.starts_with("/dev/loop"), "{root}");
    run_ok(
        Command::new("qemu-img")
            .args(["convert", "-n", "--target-is-zero", "-O", "raw"])
            .arg(&image)
            .arg(&root),
    );

    let name = format!("strata-ctrlvm-{}", std::process::id());
    let console = dir.path().join("console.sock");
    let xml = format!(
        "<domain type='qemu'>\n  <name>{name}</name>\n  <memory unit='MiB'>1024</memory>\n  <vcpu>1</vcpu>\n\
         <os><type arch='x86_64' machine='pc'>hvm</type></os>\n  <devices>\n\
         <disk type='block' device='disk'><driver name='qemu' type='raw'/><source dev='{root}'/><target dev='vda' bus='virtio'/></disk>\n\
         <disk type='block' device='disk'><driver name='qemu' type='raw'/><source dev='{db}'/><target dev='vdb' bus='virtio'/></disk>\n\
         <serial type='unix'><source mode='bind' path='{}'/><target port='0'/></serial>\n\
         </devices>\n</domain>\n",
        console.display()
    );
    let xml_file = dir.path().join("domain.xml");
    std::fs::write(&xml_file, xml).unwrap();
    let defined = virsh(&["define", xml_file.to_str().unwrap()]);
    assert!(defined.status.success(), "{}", output_text(&defined));
    let _domain = Domain(name.clone());

    let state = dir.path().join("state");
    let cfg = dir.path().join("vmorder.toml");
    std::fs::write(
        &cfg,
        format!(
            "controllers = \"127.0.0.1:{}\"\nnode = \"{}\"\ncheck_interval = 1\nstate_dir = \"{}\"\n\
             [hypervisor]\nkind = \"libvirt\"\nuri = \"{URI}\"\n\
             [controller_vm]\nname = \"{name}\"\nresources = [\"ctrlvm_root\", \"ctrlvm_db\"]\ndrbd = false\n",
            c.port,
            c.satellites[0].name,
            state.display()
        ),
    )
    .unwrap();
    let log = dir.path().join("vmorder.log");
    let mut daemon = Proc::spawn(
        Command::new(strata_tests::bin("strata-vmorder"))
            .arg("--config")
            .arg(&cfg)
            .arg("run"),
        &log,
    );

    // The daemon starts the domain through libvirt.
    let start = Instant::now();
    wait_running(&name, Duration::from_secs(60), &daemon);
    eprintln!(
        "libvirt runs the domain {:?} after the daemon's start",
        start.elapsed()
    );
    let status = Command::new(strata_tests::bin("strata-vmorder"))
        .arg("--config")
        .arg(&cfg)
        .arg("status")
        .output()
        .unwrap();
    let text = output_text(&status);
    assert!(
        text.contains(&format!("controller VM {name}: active")),
        "{text}"
    );

    // The appliance boots from the cluster's volume to its controller, its database on the
    // second volume.
    let mut vm = Guest::on_console("libvirt-appliance", &console);
    vm.wait_shell(Duration::from_secs(300));
    let (st, out) = vm.run_for(
        "i=0; until systemctl is-active --quiet linstor-controller; do i=$((i+1)); [ $i -ge 120 ] && break; sleep 1; done; \
         systemctl is-active linstor-controller var-lib-linstor.mount && linstor resource-group list",
        Duration::from_secs(200),
    );
    assert_eq!(st, 0, "{out}\n{}", vm.console());
    assert!(out.contains("DfltRscGrp"), "{out}");
    let label = Command::new("blkid")
        .args(["-o", "value", "-s", "LABEL", &db])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&label.stdout).trim(), "linstor-db");

    // A domain that stops is started again while the daemon holds its volumes.
    let destroyed = virsh(&["destroy", &name]);
    assert!(destroyed.status.success(), "{}", output_text(&destroyed));
    wait_running(&name, Duration::from_secs(30), &daemon);
    daemon.kill9();
}
