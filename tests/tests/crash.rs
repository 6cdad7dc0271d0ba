//! Crash safety: nothing acknowledged is lost, nothing is half-applied, I/O never stops, and a
//! damaged satellite record is never guessed at.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use strata_client::{Client, ClientError, Method};
use strata_tests::{mkfs_and_mount, ok_replies, TestCluster};

const MIB: u64 = 1024;

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Spawn(String),
    CreateWithPort(String, u16),
    SetProp(String, u32),
    Delete(String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    Acked,
    Refused,
    Unknown,
}

/// Sends one mutation; retries while the controller is down (nothing was sent then).
async fn send(client: &Client, op: &Op) -> Outcome {
    let (method, path, body) = match op {
        Op::Spawn(n) => (
            Method::POST,
            "/v1/resource-groups/rg1/spawn".to_string(),
            Some(json!({"resource_definition_name": n, "volume_sizes": [4 * MIB]})),
        ),
        Op::CreateWithPort(n, p) => (
            Method::POST,
            "/v1/resource-definitions".to_string(),
            Some(json!({"drbd_port": p, "resource_definition": {"name": n}})),
        ),
        Op::SetProp(n, v) => (
            Method::PUT,
            format!("/v1/resource-definitions/{n}"),
            Some(json!({"override_props": {"Aux/counter": v.to_string()}})),
        ),
        Op::Delete(n) => (
            Method::DELETE,
            format!("/v1/resource-definitions/{n}"),
            None,
        ),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match client.write(method.clone(), &path, body.as_ref()).await {
            Ok(r) if r.iter().all(|x| !x.is_error()) => return Outcome::Acked,
            Ok(_) => return Outcome::Refused,
            Err(ClientError::Api { status, .. }) if status < 500 => return Outcome::Refused,
            // A controller that does not lead yet (on etcd) did nothing: retry.
            Err(ClientError::Api { status: 503, .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(ClientError::Unreachable { reason, .. })
                if reason.contains("refused") && Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(_) => return Outcome::Unknown,
        }
    }
}

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
    let plans: Vec<Vec<Op>> = (0..8)
        .map(|w| {
            let mut ops = Vec::new();
            for i in 0..21u32 {
                let name = format!("w{w}r{i}");
                ops.push(Op::Spawn(name.clone()));
                ops.push(Op::SetProp(name.clone(), i));
                if i % 3 == 2 {
                    ops.push(Op::Delete(format!("w{w}r{}", i - 1)));
                } else {
                    ops.push(Op::CreateWithPort(
                        format!("w{w}p{i}"),
                        7000 + ((w * 37 + i as usize * 11) % 60) as u16,
                    ));
                }
            }
            ops
        })
        .collect();
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
    let results: Vec<Vec<(Op, Outcome)>> = {
        let g = c.lock().unwrap();
        let rt_client = client.clone();
        let fut = async move {
            let mut tasks = Vec::new();
            for ops in plans {
                let cl = rt_client.clone();
                tasks.push(tokio::spawn(async move {
                    let mut out = Vec::new();
                    for op in ops {
                        let o = send(&cl, &op).await;
                        out.push((op, o));
                    }
                    out
                }));
            }
            let mut all = Vec::new();
            for t in tasks {
                all.push(t.await.unwrap());
            }
            all
        };
        drop(g);
        // The harness runtime is shared; block on it without holding the cluster lock.
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(fut)
    };
    done.store(true, Ordering::SeqCst);
    let kills = killer.join().unwrap();
    assert!(kills >= 2, "the controller was killed {kills} times");

    let mut g = c.lock().unwrap();
    g.kill_controller();
    g.start_controller();
    let client = g.client();

    // What every acknowledged mutation implies.
    let mut must_exist: BTreeMap<String, Option<u32>> = BTreeMap::new();
    let mut must_not_exist: BTreeSet<String> = BTreeSet::new();
    let mut acked = 0;
    for ops in &results {
        for (op, outcome) in ops {
            if *outcome != Outcome::Acked {
                if let (Op::Delete(n), Outcome::Unknown) = (op, outcome) {
                    must_exist.remove(n);
                }
                continue;
            }
            acked += 1;
            match op {
                Op::Spawn(n) | Op::CreateWithPort(n, _) => {
                    must_exist.insert(n.clone(), None);
                }
                Op::SetProp(n, v) => {
                    must_exist.insert(n.clone(), Some(*v));
                }
                Op::Delete(n) => {
                    must_exist.remove(n);
                    must_not_exist.insert(n.clone());
                }
            }
        }
    }
    assert!(acked > 300, "only {acked} mutations were acknowledged");

    // Deletions in flight finish; every satellite converges.
    assert!(
        g.wait_until(Duration::from_secs(60), || {
            let rds = g.block(client.resource_dfns(&[], &[], false)).unwrap();
            rds.iter().all(|d| d.flags.is_empty())
        }),
        "deletions did not finish"
    );
    let rds = g.block(client.resource_dfns(&[], &[], true)).unwrap();
    let names: BTreeSet<String> = rds.iter().map(|d| d.name.clone()).collect();
    for (n, prop) in &must_exist {
        assert!(names.contains(n), "acknowledged {n} is missing");
        if let Some(v) = prop {
            let d = rds.iter().find(|d| &d.name == n).unwrap();
            let have: u32 = d
                .props
                .get("Aux/counter")
                .map(|s| s.parse().unwrap())
                .unwrap_or(0);
            assert!(have >= *v, "{n}: acknowledged counter {v}, found {have}");
        }
    }
    for n in &must_not_exist {
        assert!(!names.contains(n), "acknowledged deletion of {n} undone");
    }
    // Nothing half-applied: every spawned definition has its volume and its one replica.
    let rscs = g.block(client.resources(&[], &[], &[], &[])).unwrap();
    for d in rds.iter().filter(|d| d.name.contains('r')) {
        let vds = d.volume_definitions.as_ref().unwrap();
        assert_eq!(vds.len(), 1, "{} lost its volume definition", d.name);
        assert_eq!(vds[0].size_kib, Some(4 * MIB as i64));
        assert_eq!(
            rscs.iter().filter(|r| r.resource.name == d.name).count(),
            1,
            "{} replica",
            d.name
        );
    }
    // No port used twice.
    let mut ports = BTreeSet::new();
    for d in &rds {
        if let Some(p) = d
            .layer_data
            .iter()
            .find_map(|l| l.data.as_ref().and_then(|x| x.port))
        {
            assert!(ports.insert(p), "port {p} used twice");
        }
    }
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
