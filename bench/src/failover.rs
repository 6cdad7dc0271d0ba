//! Controller fail-over on etcd: two controllers on a three-member etcd cluster of the run's
//! own; the leader is killed (`kill -9`) and the time until the standby serves the API itself
//! is measured, with the default lease (3 s) and a shorter one (2 s), and the hand-over when
//! the leader stops on purpose (it gives its lease up). The baseline, measured in the same
//! run: a single controller on the embedded database killed and started again by hand (as
//! a service manager would), until it serves again.

use std::time::{Duration, Instant};

use strata_tests::{controller_leads, etcd, TestCluster};

use crate::stats::{ms, percentiles, print, Row};

/// Waits until the controller on `port` leads; answers how long that took from `since`.
fn until_leads(port: u16, since: Instant) -> anyhow::Result<Duration> {
    while !controller_leads(port) {
        if since.elapsed() > Duration::from_secs(60) {
            anyhow::bail!("the controller on port {port} did not take over within 60 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(since.elapsed())
}

/// `rounds` fail-overs between two controllers with a lease of `lease_secs`; the kill -9
/// times and the planned stop times.
fn failovers(rounds: usize, lease_secs: u64) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let toml =
        |name: &str| format!("[controller]\nname = \"{name}\"\nleader_lease_secs = {lease_secs}\n");
    let mut c = TestCluster::start_on_etcd(1, 3, &toml("ctl-a"));
    c.register_all();
    c.create_group("rg1", 1);
    let (mut b, b_port, _) = c.spawn_another_controller("b", &toml("ctl-b"));
    let mut killed = Vec::new();
    let mut stopped = Vec::new();
    // Each round: the leader is killed, the standby takes over, the killed one comes back
    // as a standby; then the same from the other side, with a planned stop.
    for round in 0..rounds {
        let (leader_is_a, other) = if controller_leads(c.port) {
            (true, b_port)
        } else {
            (false, c.port)
        };
        let t = Instant::now();
        let plan = round % 2 == 1;
        match (leader_is_a, plan) {
            (true, false) => c.kill_controller(),
            (true, true) => c.controller.stop(),
            (false, false) => b.kill9(),
            (false, true) => b.stop(),
        }
        let took = until_leads(other, t)?;
        if plan {
            stopped.push(took);
        } else {
            killed.push(took);
        }
        if leader_is_a {
            c.controller = TestCluster::spawn_controller(c.dir.path(), c.port);
        } else {
            b = TestCluster::spawn_controller(&c.dir.path().join("b"), b_port);
        }
        // Back as a standby before the next round.
        let back = if leader_is_a { c.port } else { b_port };
        let since = Instant::now();
        while strata_tests::http_status(back, "/v1/controller/version") != Some(200) {
            if since.elapsed() > Duration::from_secs(30) {
                anyhow::bail!("the restarted controller does not answer");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    b.kill9();
    Ok((killed, stopped))
}

/// A single controller on the embedded database, killed and started again.
fn restarts(rounds: usize) -> anyhow::Result<Vec<Duration>> {
    let mut c = TestCluster::start(1);
    c.register_all();
    c.create_group("rg1", 1);
    let mut out = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        c.kill_controller();
        c.controller = TestCluster::spawn_controller(c.dir.path(), c.port);
        out.push(until_leads(c.port, t)?);
    }
    Ok(out)
}

pub fn run(quick: bool) -> anyhow::Result<()> {
    if let Err(why) = etcd::available() {
        println!("\nController fail-over: skipped ({why})");
        return Ok(());
    }
    // Kills and planned stops alternate.
    let rounds = if quick { 2 } else { 10 };
    let (killed, stopped) = failovers(rounds, 3)?;
    let (killed_short, _) = failovers(if quick { 1 } else { 4 }, 2)?;
    let baseline = restarts(rounds)?;
    let (k50, kmax) = percentiles(killed.clone());
    let (s50, _) = percentiles(stopped);
    let (short50, _) = percentiles(killed_short);
    let (b50, _) = percentiles(baseline);
    let ratio = k50.as_secs_f64() / b50.as_secs_f64().max(1e-6);
    print(
        &format!(
            "Controller fail-over on etcd (2 controllers, 3 etcd members, {} kills)",
            killed.len()
        ),
        &[
            Row::new(
                "leader killed -9 -> standby serves (lease 3 s, default), median",
                ms(k50),
                "< 5 s",
                Some(k50 < Duration::from_secs(5)),
            ),
            Row::new(
                "  the same, slowest",
                ms(kmax),
                "< 5 s",
                Some(kmax < Duration::from_secs(5)),
            ),
            Row::new(
                "leader killed -9 -> standby serves (lease 2 s), median",
                ms(short50),
                "configurable lower",
                Some(short50 < k50),
            ),
            Row::new(
                "leader stopped (gives its lease up) -> standby serves, median",
                ms(s50),
                "",
                None,
            ),
            Row::new(
                "baseline: one controller (embedded db) killed and restarted, median",
                ms(b50),
                "",
                None,
            ),
            Row::new(
                "fail-over / restart by hand (which needs someone to notice)",
                format!("{ratio:.1}x"),
                "",
                None,
            ),
            Row::new(
                "fail-over / lease time (etcd expires the lease: the floor)",
                format!("{:.2}x", k50.as_secs_f64() / 3.0),
                "",
                None,
            ),
        ],
    );
    Ok(())
}
