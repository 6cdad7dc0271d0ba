//! The CLI: `linstor resource list` of this project against the same call through
//! python-linstor, same controller, same run.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use strata_client::Method;
use strata_tests::{bin, ok_replies, TestCluster};

use crate::stats::{ms, percentiles, print, Row};

fn python() -> String {
    std::env::var("STRATA_PYTHON").unwrap_or_else(|_| {
        let venv = std::path::Path::new("target/python-linstor-venv/bin/python");
        if venv.exists() {
            venv.display().to_string()
        } else {
            "python3".into()
        }
    })
}

fn time(cmd: &mut Command) -> Duration {
    let t = Instant::now();
    let out = cmd.output().expect("run");
    let d = t.elapsed();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    d
}

pub fn run(quick: bool) -> anyhow::Result<()> {
    let rounds = if quick { 5 } else { 20 };
    let py = python();
    let c = TestCluster::start(1);
    c.register_all();
    let client = c.client();
    c.create_group("rg1", 1);
    for i in 0..20 {
        ok_replies(c.block(client.write(
            Method::POST,
            "/v1/resource-groups/rg1/spawn",
            Some(&json!({"resource_definition_name": format!("r{i:02}"), "volume_sizes": [4096]})),
        )));
    }
    let script = format!(
        "import linstor\nwith linstor.Linstor('linstor://{}') as l:\n    r = l.resource_list()\n    assert len(r[0].resources) == 20, r\n",
        c.controller_addr()
    );
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for _ in 0..rounds {
        ours.push(time(Command::new(bin("linstor")).args([
            "--controllers",
            &c.controller_addr(),
            "resource",
            "list",
        ])));
        theirs.push(time(Command::new(&py).arg("-c").arg(&script)));
    }
    let (o, _) = percentiles(ours);
    let (p, _) = percentiles(theirs);
    let speedup = p.as_secs_f64() / o.as_secs_f64();
    print(
        &format!("CLI: resource list of 20 resources (median of {rounds})"),
        &[
            Row::new("linstor resource list (this project)", ms(o), "", None),
            Row::new("python-linstor resource_list()", ms(p), "", None),
            Row::new(
                "speed-up",
                format!("{speedup:.1}x"),
                ">= 10x",
                Some(speedup >= 10.0),
            ),
        ],
    );
    Ok(())
}
