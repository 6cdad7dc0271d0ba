//! The data path: 4 KiB random read and write IOPS with fio on a provisioned volume against
//! the raw loop device beneath it: a second loop device set up by hand on the volume's own
//! backing image, so both read and write the same blocks of the same file. Runs alternate
//! between the two devices and the medians are compared.

use std::process::Command;

use serde_json::json;
use strata_client::Method;
use strata_tests::{ok_replies, TestCluster};

use crate::stats::{median_f, print, Row};

fn fio(dev: &str, rw: &str, secs: u32) -> f64 {
    // Loop devices write through the backing file's page cache: start every run with no dirty
    // data left over from the previous one.
    let _ = Command::new("sync").status();
    let out = Command::new("fio")
        .args([
            "--name=bench",
            &format!("--filename={dev}"),
            &format!("--rw={rw}"),
            "--bs=4k",
            "--direct=1",
            "--ioengine=libaio",
            "--iodepth=16",
            "--time_based",
            &format!("--runtime={secs}"),
            "--output-format=json",
        ])
        .output()
        .expect("fio (install it: apt-get install fio)");
    assert!(
        out.status.success(),
        "fio: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("fio json");
    let job = &v["jobs"][0];
    let side = if rw.contains("read") { "read" } else { "write" };
    job[side]["iops"].as_f64().unwrap_or(0.0)
}

fn fill(dev: &str) {
    let ok = Command::new("fio")
        .args([
            "--name=fill",
            &format!("--filename={dev}"),
            "--rw=write",
            "--bs=1M",
            "--direct=1",
            "--ioengine=libaio",
            "--iodepth=4",
        ])
        .output()
        .expect("fio")
        .status
        .success();
    assert!(ok, "filling {dev} failed");
}

pub fn run(quick: bool) -> anyhow::Result<()> {
    if Command::new("fio").arg("--version").output().is_err() {
        anyhow::bail!("fio is not installed (apt-get install fio)");
    }
    let (rounds, secs) = if quick { (1, 2) } else { (11, 3) };
    let c = TestCluster::start(1);
    c.register_all();
    let client = c.client();
    c.create_group("rg1", 1);
    ok_replies(c.block(client.write(
        Method::POST,
        "/v1/resource-groups/rg1/spawn",
        Some(&json!({"resource_definition_name": "iovol", "volume_sizes": [524288]})),
    )));
    let ours = c.block(client.resources(&[], &["iovol".into()], &[], &[]))?[0].volumes[0]
        .device_path
        .clone()
        .expect("device");
    let image = c.satellites[0].pool_dir.join("iovol_00000.img");
    let out = Command::new("losetup")
        .arg("--find")
        .arg("--show")
        .arg(&image)
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let raw = String::from_utf8_lossy(&out.stdout).trim().to_string();
    // Allocate every block first, so neither side pays for thin allocation.
    fill(&ours);
    let mut rows = Vec::new();
    for rw in ["randread", "randwrite"] {
        let mut a = Vec::new();
        let mut b = Vec::new();
        // Warm-up runs on each until the page cache has settled, not counted.
        for _ in 0..if quick { 1 } else { 3 } {
            fio(&ours, rw, secs);
            fio(&raw, rw, secs);
        }
        for round in 0..rounds {
            // Alternate which device goes first, so that drift hits both alike.
            if round % 2 == 1 {
                b.push(fio(&raw, rw, secs));
                a.push(fio(&ours, rw, secs));
                continue;
            }
            a.push(fio(&ours, rw, secs));
            b.push(fio(&raw, rw, secs));
        }
        // Each round pairs the two devices back to back; the median of the per-round ratios
        // cancels the drift of the page cache over the run.
        let ratio = median_f(a.iter().zip(&b).map(|(x, y)| x / y).collect());
        let (ma, mb) = (median_f(a), median_f(b));
        rows.push(Row::new(
            &format!("4k {rw} IOPS, volume"),
            format!("{ma:.0}"),
            "",
            None,
        ));
        rows.push(Row::new(
            &format!("4k {rw} IOPS, raw loop device"),
            format!("{mb:.0}"),
            "",
            None,
        ));
        rows.push(Row::new(
            &format!("4k {rw} ratio (median of per-round ratios)"),
            format!("{ratio:.3}"),
            ">= 0.97",
            Some(ratio >= 0.97),
        ));
    }
    let _ = Command::new("losetup").arg("--detach").arg(&raw).status();
    print(
        &format!("data path (fio, iodepth 16, {secs} s x {rounds} runs each)"),
        &rows,
    );
    Ok(())
}
