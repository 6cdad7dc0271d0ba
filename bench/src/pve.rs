//! The Proxmox path: a disk allocated and activated through `strata-pve` (one process per
//! call, as the Perl module runs it) until its block device exists, against the bare
//! controller calls (spawn, then read the device) in the same run.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use strata_tests::{bin, TestCluster};

use crate::real::{delete, is_block, spawn_until_device};

use crate::stats::{ms, percentiles, print, Row};

/// One call of `strata-pve`; its result.
fn call(c: &TestCluster, state: &std::path::Path, op: &str, args: Value) -> Value {
    use std::io::Write;
    let req = json!({
        "version": 1,
        "op": op,
        "storeid": "s1",
        "node": c.satellites[0].name,
        "scfg": {"strata-controllers": c.controller_addr(), "strata-group": "rg1"},
        "args": args,
    });
    let mut child = Command::new(bin("strata-pve"))
        .env("STRATA_PVE_STATE_DIR", state)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("strata-pve runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(req.to_string().as_bytes())
        .expect("request written");
    let out = child.wait_with_output().expect("strata-pve answers");
    let answer: Value = serde_json::from_slice(&out.stdout).expect("a JSON answer");
    assert_eq!(answer["ok"], true, "{op}: {answer}");
    answer["result"].clone()
}

pub fn run(quick: bool) -> anyhow::Result<()> {
    let rounds = if quick { 5 } else { 20 };
    let c = TestCluster::start(1);
    c.register_all();
    c.create_group("rg1", 1);
    let client = c.client();
    let state = c.dir.path().join("strata-pve");

    let mut ours = Vec::new();
    let mut bare = Vec::new();
    for i in 0..rounds {
        let vmid = 100 + i;
        let t = Instant::now();
        let volname = call(
            &c,
            &state,
            "alloc_image",
            json!({"vmid": vmid, "name": null, "size_kib": 65536}),
        );
        let dev = call(&c, &state, "activate_volume", json!({"volname": volname}));
        assert!(is_block(dev.as_str().expect("a device")));
        ours.push(t.elapsed());
        call(&c, &state, "free_image", json!({"volname": volname}));

        let name = format!("bare{i}");
        let t = Instant::now();
        spawn_until_device(&c, &client, &name)?;
        bare.push(t.elapsed());
        delete(&c, &client, &name);
    }
    let (o, _) = percentiles(ours);
    let (b, _) = percentiles(bare);
    let ratio = o.as_secs_f64() / b.as_secs_f64().max(Duration::from_micros(1).as_secs_f64());
    print(
        &format!("Proxmox path (1-replica FILE_THIN, 64 MiB, median of {rounds})"),
        &[
            Row::new(
                "alloc_image + activate_volume through strata-pve until the device exists",
                ms(o),
                "",
                None,
            ),
            Row::new(
                "bare controller calls: spawn, read the device",
                ms(b),
                "",
                None,
            ),
            Row::new("strata-pve / bare", format!("{ratio:.2}x"), "", None),
        ],
    );
    Ok(())
}
