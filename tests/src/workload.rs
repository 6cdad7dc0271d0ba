//! Concurrent mutations from several clients while a controller is killed, and what every
//! acknowledged one implies afterwards: nothing acknowledged lost or doubled, nothing
//! half-applied. Shared by the crash test (one controller restarted) and the etcd fail-over
//! test (a standby takes over).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use strata_client::{Client, ClientError, Method};

use crate::TestCluster;

const MIB: u64 = 1024;

/// Size of every spawned volume (KiB).
pub const VOLUME_KIB: u64 = 4 * MIB;

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Spawn(String),
    CreateWithPort(String, u16),
    SetProp(String, u32),
    Delete(String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    Acked,
    Refused,
    Unknown,
}

/// `workers` lists of `3 * per_worker` mutations, each worker on names of its own: spawn,
/// set a property, then a deletion of the one before or a definition with a fixed port (in
/// group `rg1`, which must exist).
pub fn plans(workers: usize, per_worker: u32) -> Vec<Vec<Op>> {
    (0..workers)
        .map(|w| {
            let mut ops = Vec::new();
            for i in 0..per_worker {
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
        .collect()
}

/// Sends one mutation; retries while nothing can have been done: no controller could be
/// connected to, or a controller that does not lead (etcd) answered 503.
pub async fn send(client: &Client, op: &Op) -> Outcome {
    let (method, path, body) = match op {
        Op::Spawn(n) => (
            Method::POST,
            "/v1/resource-groups/rg1/spawn".to_string(),
            Some(json!({"resource_definition_name": n, "volume_sizes": [VOLUME_KIB]})),
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

/// Runs `plans` concurrently on a runtime of its own (one task per worker, each in order),
/// counting finished mutations in `finished`; answers every mutation with its outcome.
pub fn run(client: &Client, plans: Vec<Vec<Op>>, finished: Arc<AtomicUsize>) -> Vec<(Op, Outcome)> {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async move {
        let mut tasks = Vec::new();
        for ops in plans {
            let cl = client.clone();
            let finished = finished.clone();
            tasks.push(tokio::spawn(async move {
                let mut out = Vec::new();
                for op in ops {
                    let o = send(&cl, &op).await;
                    out.push((op, o));
                    finished.fetch_add(1, Ordering::SeqCst);
                }
                out
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.expect("a worker"));
        }
        all
    })
}

/// What the acknowledged mutations imply.
#[derive(Debug, Default)]
pub struct Expected {
    /// Definitions that must exist, with the least counter they must show.
    pub must_exist: BTreeMap<String, Option<u32>>,
    pub must_not_exist: BTreeSet<String>,
    pub acked: usize,
}

pub fn expected(results: &[(Op, Outcome)]) -> Expected {
    let mut e = Expected::default();
    for (op, outcome) in results {
        if *outcome != Outcome::Acked {
            // A deletion that may have been done (its answer was lost, or a retry of it
            // found nothing left to delete) leaves the definition's existence open.
            if let Op::Delete(n) = op {
                e.must_exist.remove(n);
            }
            continue;
        }
        e.acked += 1;
        match op {
            Op::Spawn(n) | Op::CreateWithPort(n, _) => {
                e.must_exist.insert(n.clone(), None);
            }
            Op::SetProp(n, v) => {
                e.must_exist.insert(n.clone(), Some(*v));
            }
            Op::Delete(n) => {
                e.must_exist.remove(n);
                e.must_not_exist.insert(n.clone());
            }
        }
    }
    e
}

/// Checks the state the controller behind `client` holds against `want`, once deletions in
/// flight have finished: acknowledged definitions and counters there, acknowledged
/// deletions not undone, every spawned definition whole (its volume, its one replica), no
/// port twice. Answers the resources, for further checks.
pub fn check(
    c: &TestCluster,
    client: &Client,
    want: &Expected,
) -> Vec<strata_api::types::ResourceWithVolumes> {
    assert!(
        c.wait_until(Duration::from_secs(60), || {
            let rds = c.block(client.resource_dfns(&[], &[], false)).unwrap();
            rds.iter().all(|d| d.flags.is_empty())
        }),
        "deletions did not finish"
    );
    let rds = c.block(client.resource_dfns(&[], &[], true)).unwrap();
    let names: BTreeSet<String> = rds.iter().map(|d| d.name.clone()).collect();
    for (n, prop) in &want.must_exist {
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
    for n in &want.must_not_exist {
        assert!(!names.contains(n), "acknowledged deletion of {n} undone");
    }
    let rscs = c.block(client.resources(&[], &[], &[], &[])).unwrap();
    for d in rds.iter().filter(|d| d.name.contains('r')) {
        let vds = d.volume_definitions.as_ref().unwrap();
        assert_eq!(vds.len(), 1, "{} lost its volume definition", d.name);
        assert_eq!(vds[0].size_kib, Some(VOLUME_KIB as i64));
        assert_eq!(
            rscs.iter().filter(|r| r.resource.name == d.name).count(),
            1,
            "{} replica",
            d.name
        );
    }
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
    rscs
}
