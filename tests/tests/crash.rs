//! Crash safety: nothing acknowledged is lost, nothing is half-applied, I/O never stops, and a
//! damaged satellite record is never guessed at.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use strata_client::Method;
use strata_tests::{mkfs_and_mount, ok_replies, workload, TestCluster};

const MIB: u64 = 1024;

#[test]
fn kill9_during_concurrent_mutations_loses_nothing_acknowledged() {
    strata_tests::needs_cluster!();
    let c = Arc::new(Mutex::new(TestCluster::start(2)));
    let (client, runtime_c) = {
        let g = c.lock().unwrap();
        g.register_all();
        g.create_group("rg1", 1);
        (g.client(), g.port)
    };
    let _ = runtime_c;
    // 8 clients x 63 mutations, each client on its own names.
    let plans = workload::plans(8, 21);
    assert_eq!(plans.iter().map(Vec::len).sum::<usize>(), 504);

    let done = Arc::new(AtomicBool::new(false));
    let killer = {
        let c = c.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            let mut kills = 0;
            let mut seed: u64 = 0x9e3779b97f4a7c15;
            while !done.load(Ordering::SeqCst) && kills < 6 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                std::thread::sleep(Duration::from_millis(200 + seed % 600));
                let mut g = c.lock().unwrap();
                g.kill_controller();
                g.start_controller();
                kills += 1;
            }
            kills
        })
    };
    let results = workload::run(&client, plans, Arc::new(AtomicUsize::new(0)));
    done.store(true, Ordering::SeqCst);
    let kills = killer.join().unwrap();
    assert!(kills >= 2, "the controller was killed {kills} times");

    let mut g = c.lock().unwrap();
    g.kill_controller();
    g.start_controller();
    let client = g.client();

    // What every acknowledged mutation implies.
    let want = workload::expected(&results);
    assert!(
        want.acked > 300,
        "only {} mutations were acknowledged",
        want.acked
    );
    let rscs = workload::check(&g, &client, &want);
    // Satellites converge, and no backing volume is orphaned or missing.
    assert!(
        g.wait_until(Duration::from_secs(60), || {
            g.block(client.resources(&[], &[], &[], &[]))
                .unwrap()
                .iter()
                .all(|r| r.volumes.iter().all(|v| v.device_path.is_some()))
        }),
        "satellites did not converge"
    );
    for s in &g.satellites {
        let files: BTreeSet<String> = std::fs::read_dir(&s.pool_dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|f| f.ends_with(".img"))
            .collect();
        let expected: BTreeSet<String> = rscs
            .iter()
            .filter(|r| r.resource.node_name == s.name)
            .map(|r| format!("{}_00000.img", r.resource.name))
            .collect();
        assert_eq!(
            files, expected,
            "pool of {} holds other volumes than the database says",
            s.name
        );
    }
    assert_eq!(g.loop_devices().len(), rscs.len());
}

#[test]
fn io_never_stops_while_satellite_and_controller_restart() {
    strata_tests::needs_cluster!(strata_tests::needs::tool("fio", "fio"));
    let mut c = TestCluster::start(1);
    c.register_all();
    c.create_group("rg1", 1);
    c.spawn("rg1", "busy", 128 * MIB);
    let client = c.client();
    let dev = c
        .block(client.resources(&[], &["busy".into()], &[], &[]))
        .unwrap()[0]
        .volumes[0]
        .device_path
        .clone()
        .unwrap();
    let mnt = c.dir.path().join("mnt");
    mkfs_and_mount(&dev, &mnt);
    // About 8 s of paced writes, verified afterwards.
    let fio = Command::new("fio")
        .args([
            "--name=crash",
            &format!("--filename={}", mnt.join("data").display()),
            "--size=16M",
            "--bs=4k",
            "--rw=randwrite",
            "--ioengine=psync",
            "--fsync=32",
            "--rate_iops=500",
            "--verify=crc32c",
            "--verify_fatal=1",
            "--do_verify=1",
            "--output-format=json",
            // fio saves its verify state in the working directory.
            "--verify_state_save=0",
        ])
        .current_dir(c.dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    c.satellites[0].proc.kill9();
    std::thread::sleep(Duration::from_millis(500));
    c.start_satellite(0);
    c.kill_controller();
    std::thread::sleep(Duration::from_millis(500));
    c.start_controller();
    c.stop_satellite(0);
    c.start_satellite(0);
    let out = fio.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "fio failed (verify?): {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let job = &v["jobs"][0];
    assert_eq!(job["error"], 0);
    let max_ns = job["write"]["clat_ns"]["max"].as_f64().unwrap();
    assert!(
        max_ns < 1e9,
        "a write waited {:.0} ms: I/O stalled",
        max_ns / 1e6
    );
    assert!(job["write"]["total_ios"].as_u64().unwrap() >= 4096);
    // The volume is still the same device, and the cluster sees it.
    assert!(c.wait_until(Duration::from_secs(20), || {
        c.block(client.resources(&[], &["busy".into()], &[], &[]))
            .map(|r| r[0].volumes[0].device_path.as_deref() == Some(dev.as_str()))
            .unwrap_or(false)
    }));
    assert!(Command::new("umount").arg(&mnt).status().unwrap().success());
}

#[test]
fn damaged_satellite_record_is_not_guessed_at() {
    strata_tests::needs_cluster!();
    let mut c = TestCluster::start(1);
    c.register_all();
    c.create_group("rg1", 1);
    let client = c.client();
    for n in ["keep1", "keep2"] {
        ok_replies(c.block(client.write(
            Method::POST,
            "/v1/resource-groups/rg1/spawn",
            Some(&json!({"resource_definition_name": n, "volume_sizes": [8 * MIB]})),
        )));
    }
    let dev = c
        .block(client.resources(&[], &["keep1".into()], &[], &[]))
        .unwrap()[0]
        .volumes[0]
        .device_path
        .clone()
        .unwrap();
    assert_eq!(
        strata_tests::write_and_read(&dev, b"precious bytes"),
        b"precious bytes"
    );

    // Power cut while the record was written: half of it is on disk. Then a reboot.
    c.kill_controller();
    c.satellites[0].proc.kill9();
    let record = c.satellites[0].state_dir.join("satellite-state.json");
    let full = std::fs::read(&record).unwrap();
    std::fs::write(&record, &full[..full.len() / 2]).unwrap();
    for (d, _) in c.loop_devices() {
        assert!(Command::new("losetup")
            .arg("--detach")
            .arg(&d)
            .status()
            .unwrap()
            .success());
    }
    c.start_satellite(0);
    std::thread::sleep(Duration::from_secs(1));
    // It reports the problem, keeps the damaged record, and touches nothing on its own.
    let report = c.satellite_get(0, "/v1/report");
    let errors = report["errors"].as_array().unwrap();
    assert!(
        errors
            .iter()
            .any(|e| e.as_str().unwrap().contains("damaged")),
        "{report}"
    );
    assert!(std::fs::read_dir(&c.satellites[0].state_dir)
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().contains("damaged")));
    let pool = &c.satellites[0].pool_dir;
    assert!(pool.join("keep1_00000.img").exists() && pool.join("keep2_00000.img").exists());
    assert!(
        c.loop_devices().is_empty(),
        "nothing is attached without knowing the configuration"
    );

    // The controller's configuration brings the volumes back from the files found, data intact.
    c.start_controller();
    assert!(c.wait_until(Duration::from_secs(20), || c.loop_devices().len() == 2));
    let (dev, _) = c
        .loop_devices()
        .into_iter()
        .find(|(_, f)| f.ends_with("keep1_00000.img"))
        .unwrap();
    let mut buf = [0u8; 14];
    use std::io::Read;
    std::fs::File::open(&dev)
        .unwrap()
        .read_exact(&mut buf)
        .unwrap();
    assert_eq!(&buf, b"precious bytes");
}
