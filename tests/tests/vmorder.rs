//! The whole-cluster restart, with real systemd units and D-Bus jobs: two guests booted from the
//! hypervisor host image (`controller-vm/image/build.sh --host`: Debian with systemd, the
//! kernel's DRBD 8.4, our satellite and `strata-vmorder`), linked by their own network, hold
//! the controller's volume and the volumes of ordinary "VMs". Both are powered off at once
//! and booted again; without any manual step the controller comes up on exactly one of them,
//! the ordinary VMs start after it — or at once where their volumes are already on the host —
//! and none starts on a volume that is not UpToDate. Then the host running the controller
//! dies and the other takes over; the time it takes is printed (docs/PERFORMANCE.md).
//!
//! A nested VM under software emulation inside a software-emulated guest is too slow, so the
//! "VMs" here are run by a hypervisor stand-in that strata-vmorder drives through its
//! `command` interface (`vm start NAME` / `vm running NAME`): a VM is a transient systemd unit
//! `vm-NAME`; the controller's VM mounts its volume as the controller's data directory and
//! runs the controller there, an ordinary VM holds its volume open. The libvirt path is
//! proven on the host (`tests/tests/libvirt.rs`).

use std::path::Path;
use std::time::{Duration, Instant};

use strata_tests::appliance::{self, fresh_root, Guest, Spec};
use strata_tests::free_port;

/// The hypervisor stand-in (`/usr/local/sbin/vm`). Each start is logged in
/// /var/log/vm-starts with the system's uptime and DRBD's role and disk states of the volume.
const VM_SCRIPT: &str = r#"#!/bin/sh
# Test stand-in of a hypervisor for strata-vmorder's "command" kind: a VM is a transient
# systemd unit vm-NAME on the volume of the resource of the same name.
set -eu
what="$1"
name="$2"
case "$what" in
running)
    if systemctl is-active --quiet "vm-$name"; then exit 0; else exit 1; fi
    ;;
start)
    dev="$(drbdadm sh-dev "$name")"
    echo "$(cut -d' ' -f1 /proc/uptime) $name role=$(drbdadm role "$name") disk=$(drbdadm dstate "$name")" >>/var/log/vm-starts
    if [ "$name" = ctl ]; then
        mkdir -p /var/lib/linstor
        mountpoint -q /var/lib/linstor || mount "$dev" /var/lib/linstor
        systemd-run --quiet --unit=vm-ctl /usr/bin/linstor-controller
    else
        systemd-run --quiet --unit="vm-$name" /bin/sh -c "exec sleep infinity 3<$dev"
    fi
    ;;
*)
    echo "usage: vm start|running NAME" >&2
    exit 2
    ;;
esac
"#;

const CONTROLLERS: &str = "10.99.0.1:3370,10.99.0.2:3370";

/// The settings of one host: the controller VM on resource `ctl`, and its own guests.
fn vmorder_toml(guests: &[&str]) -> String {
    let mut text = format!(
        "controllers = \"{CONTROLLERS}\"\ncheck_interval = 2\nguest_wait = 300\n\
         [hypervisor]\nkind = \"command\"\n\
         start = [\"/usr/local/sbin/vm\", \"start\", \"{{name}}\"]\n\
         running = [\"/usr/local/sbin/vm\", \"running\", \"{{name}}\"]\n\
         [controller_vm]\nname = \"ctl\"\nresources = [\"ctl\"]\n"
    );
    for g in guests {
        text += &format!("[[guest]]\nname = \"{g}\"\nresources = [\"{g}\"]\n");
    }
    text
}

struct Host {
    name: &'static str,
    root: std::path::PathBuf,
    cfg: std::path::PathBuf,
}

/// Boots both hosts at once: alpha listens on the link, beta connects to it.
fn boot_both(dir: &Path, hosts: &[Host; 2], link: u16) -> [Guest; 2] {
    let boot = |i: usize| {
        let h = &hosts[i];
        let net = if i == 0 {
            format!("socket,listen=127.0.0.1:{link}")
        } else {
            format!("socket,connect=127.0.0.1:{link}")
        };
        Guest::boot(
            dir,
            h.name,
            &Spec {
                disks: vec![
                    (h.root.clone(), "qcow2", false),
                    (h.cfg.clone(), "raw", true),
                ],
                nets: vec![net],
                mac: i as u8 + 1,
                mem: Some(1024),
            },
        )
    };
    let a = boot(0);
    // beta's link connects to alpha's listening socket.
    std::thread::sleep(Duration::from_millis(500));
    let b = boot(1);
    [a, b]
}

/// Runs a bounded shell poll in the guest: `cond` is retried each second until it succeeds.
fn wait_in(g: &mut Guest, cond: &str, limit: Duration, what: &str) {
    let secs = limit.as_secs();
    let (status, out) = g.run_for(
        &format!(
            "i=0; until {cond}; do i=$((i+1)); [ $i -ge {secs} ] && break; sleep 1; done; {cond}"
        ),
        limit + Duration::from_secs(60),
    );
    if status != 0 {
        let more = diagnostics(g);
        panic!(
            "{}: {what} did not happen within {limit:?}:\n{out}\n{more}",
            g.name
        );
    }
    eprintln!(
        "{}: {what} ({:?})",
        g.name,
        START.get_or_init(Instant::now).elapsed()
    );
}

/// When the test began, for the progress lines.
static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

fn diagnostics(g: &mut Guest) -> String {
    let (_, out) = g.run_for(
        "strata-vmorder status; systemctl --no-pager list-units 'strata-*' 'vm-*'; \
         cat /var/log/vm-starts; cat /proc/drbd; journalctl --no-pager -n 80 -u strata-vmorder \
         -u 'strata-guest-*' -u strata-controller-health -u linstor-satellite -u bootstrap-ctl -u vm-ctl",
        Duration::from_secs(60),
    );
    format!("--- {} ---\n{out}", g.name)
}

#[test]
fn a_whole_cluster_restart_brings_the_controller_up_once_and_the_guests_after_it() {
    strata_tests::needs_cluster!(appliance::needs());
    START.get_or_init(Instant::now);
    let image = appliance::build(true).join("strata-host-vm.qcow2");
    let dir = tempfile::Builder::new()
        .prefix("strata-vmorder-")
        .tempdir()
        .unwrap();
    let satellite = "[netcom]\ntype = \"plain\"\n";
    let host = |name: &'static str, i: u8, guests: &[&str]| Host {
        name,
        root: fresh_root(dir.path(), &image, &format!("{name}.qcow2")),
        cfg: appliance::config_disk(
            dir.path(),
            &format!("{name}-cfg.img"),
            &[
                (
                    "appliance.conf",
                    &format!("ADDRESS=10.99.0.{i}/24\nHOSTNAME={name}\n"),
                ),
                ("linstor_satellite.toml", satellite),
                ("vmorder.toml", &vmorder_toml(guests)),
                ("vm", VM_SCRIPT),
            ],
        ),
    };
    // web: alpha's, its volume on both; db: beta's, on both; app: beta's, its volume only on
    // alpha (beta reaches it through the controller, diskless).
    let hosts = [host("alpha", 1, &["web"]), host("beta", 2, &["db", "app"])];
    let link = free_port();
    let mut g = boot_both(dir.path(), &hosts, link);
    for h in g.iter_mut() {
        h.wait_shell(Duration::from_secs(400));
        wait_in(
            h,
            "systemctl is-active --quiet linstor-satellite",
            Duration::from_secs(120),
            "the satellite's start",
        );
        h.sh("mount -o ro /dev/disk/by-label/STRATACFG /mnt && install -m 0755 /mnt/vm /usr/local/sbin/vm && umount /mnt && mkdir -p /var/lib/strata-pool");
    }

    // The cluster is made by a controller on alpha's own disk, then its database moves onto
    // the DRBD volume `ctl` (the steps of the seed article).
    let a = &mut g[0];
    a.sh("systemd-run --quiet --unit=bootstrap-ctl /usr/bin/linstor-controller");
    wait_in(
        a,
        "linstor node list >/dev/null 2>&1",
        Duration::from_secs(120),
        "the first controller's start",
    );
    a.sh(
        "linstor node create alpha 10.99.0.1 && linstor node create beta 10.99.0.2 && \
         linstor storage-pool create filethin alpha pool /var/lib/strata-pool && \
         linstor storage-pool create filethin beta pool /var/lib/strata-pool",
    );
    for (rsc, nodes) in [
        ("ctl", &["alpha", "beta"][..]),
        ("web", &["alpha", "beta"]),
        ("db", &["alpha", "beta"]),
        ("app", &["alpha"]),
    ] {
        a.sh(&format!(
            "linstor resource-definition create {rsc} && linstor volume-definition create {rsc} 64M"
        ));
        for n in nodes {
            a.sh(&format!(
                "linstor resource create {n} {rsc} --storage-pool pool --layer-list drbd,storage"
            ));
        }
    }
    for rsc in ["ctl", "web", "db"] {
        wait_in(
            a,
            &format!("drbdadm dstate {rsc} | grep -qx UpToDate/UpToDate"),
            Duration::from_secs(180),
            &format!("{rsc} UpToDate on both"),
        );
    }
    wait_in(
        a,
        "drbdadm dstate app | grep -q ^UpToDate",
        Duration::from_secs(120),
        "app UpToDate",
    );
    a.sh(
        "systemctl stop bootstrap-ctl && drbdadm primary ctl && dev=$(drbdadm sh-dev ctl) && \
         mkfs.ext4 -q $dev && mount $dev /mnt && cp -a /var/lib/linstor/. /mnt/ && umount /mnt && \
         drbdadm secondary ctl && rm -rf /var/lib/linstor/*",
    );
    for h in g.iter_mut() {
        h.sh("systemctl enable --quiet strata-vmorder && sync");
    }

    // The power fails everywhere at once; both hosts boot again.
    for h in g.iter_mut() {
        h.power_off();
    }
    drop(g);
    let started = Instant::now();
    let mut g = boot_both(dir.path(), &hosts, link);
    for h in g.iter_mut() {
        h.wait_shell(Duration::from_secs(400));
    }
    // The controller VM runs on exactly one host, and answers.
    let limit = Duration::from_secs(300);
    let runs = loop {
        let runs: Vec<bool> = g
            .iter_mut()
            .map(|h| {
                h.run_for(
                    "systemctl is-active --quiet vm-ctl",
                    Duration::from_secs(60),
                )
                .0 == 0
            })
            .collect();
        if runs.iter().any(|r| *r) {
            break runs;
        }
        if started.elapsed() > limit {
            let d: String = g.iter_mut().map(diagnostics).collect();
            panic!("the controller VM did not start within {limit:?}:\n{d}");
        }
        std::thread::sleep(Duration::from_secs(3));
    };
    eprintln!(
        "controller VM up {:?} after the power came back",
        started.elapsed()
    );
    assert_eq!(runs.iter().filter(|r| **r).count(), 1, "{runs:?}");
    let active = runs.iter().position(|r| *r).unwrap();
    let standby = 1 - active;
    // The other host stands by, and says so.
    wait_in(
        &mut g[standby],
        "strata-vmorder status --json | grep -q '\"role\": \"standby\"'",
        Duration::from_secs(60),
        "standby",
    );
    let st = g[active].sh("strata-vmorder status");
    assert!(st.contains("controller VM ctl: active"), "{st}");

    // Every guest started: web and db at once (their volumes are on their hosts), app after
    // the controller answered; each on UpToDate data (app diskless over an UpToDate peer).
    for (i, guests) in [(0, &["web"][..]), (1, &["db", "app"])] {
        let h = &mut g[i];
        for guest in guests {
            wait_in(h, &format!("systemctl is-active --quiet strata-guest-{guest}.service && systemctl is-active --quiet vm-{guest}"), Duration::from_secs(300), &format!("{guest}'s start"));
        }
    }
    let app_requires =
        g[1].sh("systemctl show -p Requires -p After --value strata-guest-app.service");
    assert!(
        app_requires.contains("strata-controller-ready.target"),
        "{app_requires}"
    );
    for (i, guest) in [(0, "web"), (1, "db")] {
        let deps = g[i].sh(&format!(
            "systemctl show -p Requires --value strata-guest-{guest}.service"
        ));
        assert!(
            !deps.contains("strata-controller-ready"),
            "{guest} waited for the controller: {deps}"
        );
    }
    // app's start came after the target, which came after the controller's health.
    let times = g[1].sh(
        "systemctl show -p ActiveEnterTimestampMonotonic --value strata-controller-ready.target strata-controller-health.service; \
         systemctl show -p ExecMainStartTimestampMonotonic --value strata-guest-app.service",
    );
    let t: Vec<u64> = times
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(t.len(), 3, "{times}");
    assert!(
        t[0] > 0 && t[0] >= t[1] && t[2] >= t[0],
        "target {}, health {}, app {}",
        t[0],
        t[1],
        t[2]
    );
    let mut starts = String::new();
    for h in g.iter_mut() {
        starts += &h.sh("cat /var/log/vm-starts");
    }
    eprintln!("VM starts:\n{starts}");
    for line in starts.lines().filter(|l| l.contains("disk=")) {
        let disk = line.split("disk=").nth(1).unwrap().trim();
        let (here, peer) = disk.split_once('/').unwrap_or((disk, ""));
        assert!(
            here == "UpToDate" || (here == "Diskless" && peer == "UpToDate"),
            "a VM started on a volume that is not UpToDate: {line}"
        );
    }
    for name in ["ctl", "web", "db", "app"] {
        // "<uptime> <vm> role=... disk=...", the console's escapes before it.
        let n = starts
            .lines()
            .filter_map(|l| l.split(" role=").next()?.split_whitespace().last())
            .filter(|vm| *vm == name)
            .count();
        // Two boots: the first had no daemon enabled; every VM starts once per boot.
        assert_eq!(n, 1, "{name} started {n} times:\n{starts}");
    }

    // The host running the controller dies; the other takes over.
    g[active].power_off();
    let died = Instant::now();
    wait_in(
        &mut g[standby],
        "systemctl is-active --quiet vm-ctl",
        Duration::from_secs(180),
        "the take-over",
    );
    let took = died.elapsed();
    wait_in(
        &mut g[standby],
        &format!(
            "linstor --controllers 10.99.0.{}:3370 node list >/dev/null 2>&1",
            standby + 1
        ),
        Duration::from_secs(120),
        "the controller's answer after the take-over",
    );
    let answered = died.elapsed();
    eprintln!(
        "failover: the controller VM was started on the surviving host {:.1} s after the other lost power; the controller answered after {:.1} s",
        took.as_secs_f64(),
        answered.as_secs_f64()
    );
}
