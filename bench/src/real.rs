//! The real volume path: a 1-replica FILE_THIN volume created and deleted through the API, from
//! the call until the block device is usable (and gone), against the same steps done by hand
//! (sparse file plus loop device) in the same run.

use std::os::unix::fs::FileTypeExt;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use strata_client::Method;
use strata_tests::{ok_replies, TestCluster};

use crate::stats::{ms, percentiles, print, Row};

pub(crate) fn is_block(dev: &str) -> bool {
    std::fs::metadata(dev)
        .map(|m| m.file_type().is_block_device())
        .unwrap_or(false)
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Spawns a 64 MiB volume `name` from `rg1` through the API and answers its block device.
pub(crate) fn spawn_until_device(
    c: &TestCluster,
    client: &strata_client::Client,
    name: &str,
) -> anyhow::Result<String> {
    ok_replies(c.block(client.write(
        Method::POST,
        "/v1/resource-groups/rg1/spawn",
        Some(&json!({"resource_definition_name": name, "volume_sizes": [65536]})),
    )));
    let rs = c.block(client.resources(&[], &[name.to_string()], &[], &[]))?;
    let dev = rs[0].volumes[0].device_path.clone().expect("device");
    assert!(is_block(&dev));
    Ok(dev)
}

/// Deletes definition `name` through the API.
pub(crate) fn delete(c: &TestCluster, client: &strata_client::Client, name: &str) {
    ok_replies(c.block(client.write::<()>(
        Method::DELETE,
        &format!("/v1/resource-definitions/{name}"),
        None,
    )));
}

pub fn run(quick: bool) -> anyhow::Result<()> {
    let rounds = if quick { 10 } else { 40 };
    let c = TestCluster::start(1);
    c.register_all();
    let client = c.client();
    c.create_group("rg1", 1);
    let pool = c.satellites[0].pool_dir.clone();

    let mut ours_create = Vec::new();
    let mut ours_delete = Vec::new();
    let mut hand_create = Vec::new();
    let mut hand_delete = Vec::new();
    for i in 0..rounds {
        // Through the API: one call to create, one to delete.
        let name = format!("vol{i}");
        let t = Instant::now();
        spawn_until_device(&c, &client, &name)?;
        ours_create.push(t.elapsed());
        let t = Instant::now();
        delete(&c, &client, &name);
        ours_delete.push(t.elapsed());
        assert!(!pool.join(format!("{name}_00000.img")).exists());

        // By hand: a sparse file and a loop device.
        let file = pool.join(format!("hand{i}.img"));
        let t = Instant::now();
        run_ok(Command::new("truncate").arg("-s").arg("64M").arg(&file));
        let dev = run_ok(
            Command::new("losetup")
                .arg("--find")
                .arg("--show")
                .arg(&file),
        );
        assert!(is_block(&dev));
        hand_create.push(t.elapsed());
        let t = Instant::now();
        run_ok(Command::new("losetup").arg("--detach").arg(&dev));
        std::fs::remove_file(&file)?;
        hand_delete.push(t.elapsed());
    }
    let (oc, _) = percentiles(ours_create.clone());
    let (od, _) = percentiles(ours_delete.clone());
    let (hc, _) = percentiles(hand_create.clone());
    let (hd, _) = percentiles(hand_delete.clone());
    let both = |a: &[Duration], b: &[Duration]| -> Vec<Duration> {
        a.iter().zip(b).map(|(x, y)| *x + *y).collect()
    };
    let (o, _) = percentiles(both(&ours_create, &ours_delete));
    let (h, _) = percentiles(both(&hand_create, &hand_delete));
    let ratio = o.as_secs_f64() / h.as_secs_f64();
    print(
        &format!("real path (1-replica FILE_THIN, 64 MiB, median of {rounds})"),
        &[
            Row::new(
                "create: API call until the device is usable",
                ms(oc),
                "",
                None,
            ),
            Row::new("create: truncate + losetup by hand", ms(hc), "", None),
            Row::new(
                "delete: API call until device and file are gone",
                ms(od),
                "",
                None,
            ),
            Row::new("delete: losetup -d + rm by hand", ms(hd), "", None),
            Row::new(
                "create + delete, ours / by hand",
                format!("{ratio:.2}x ({} / {})", ms(o), ms(h)),
                "< 1.5x",
                Some(ratio < 1.5),
            ),
        ],
    );
    Ok(())
}
