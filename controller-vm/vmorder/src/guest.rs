//! What the guests' units run: `start-guest NAME` (make its volumes usable here, wait until
//! they are UpToDate, start it) and `wait-health` (the controller answers).

use std::time::{Duration, Instant};

use strata_adapter::volume::Volumes;

use crate::config::Config;
use crate::decide;
use crate::drbd::Drbd;
use crate::hypervisor::Hypervisor;

/// How long one call to the controller may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Starts guest `name`: volumes not up here are made available through the controller (a
/// diskless attachment); the start waits, up to `guest_wait`, until every volume is UpToDate
/// here or served by an UpToDate peer; with DRBD 8.4 (no auto-promote) they are promoted.
pub async fn start(
    cfg: &Config,
    name: &str,
    hv: &dyn Hypervisor,
    drbd: &Drbd,
) -> Result<(), String> {
    let guest = cfg.guest(name).ok_or_else(|| {
        format!(
            "no guest {name} in {}: list it under [[guest]]",
            cfg.path.display()
        )
    })?;
    if hv.is_running(name)? {
        tracing::info!(guest = name, "already running");
        return Ok(());
    }
    let deadline = Instant::now() + cfg.guest_wait;
    let mut watch = drbd.watch();
    let first = if drbd.is_loaded() {
        wait_ready(&mut watch, &guest.resources)?
    } else {
        guest.resources.iter().map(|r| (r.clone(), None)).collect()
    };
    // Volumes without DRBD are usable once their device exists (make_available waits for it);
    // the others once DRBD says so.
    let (here, missing): (Vec<_>, Vec<_>) = first.into_iter().partition(|(_, s)| s.is_some());
    let mut in_drbd: Vec<String> = here.into_iter().map(|(r, _)| r).collect();
    if !missing.is_empty() {
        let client = cfg.controllers.client(CALL_TIMEOUT)?;
        let volumes = Volumes::new(client, "vmorder");
        for (r, _) in &missing {
            tracing::info!(guest = name, resource = %r, "making the volume available here");
            let device = volumes
                .make_available(r, &cfg.node, false)
                .await
                .map_err(|e| format!("cannot make {r} available on {}: {e}", cfg.node))?;
            tracing::info!(guest = name, resource = %r, device, "available");
            if device.starts_with("/dev/drbd") {
                in_drbd.push(r.clone());
            }
        }
    }
    let watch_resources = in_drbd.clone();
    let drbd84 = drbd.is_84();
    // DRBD's state is followed in a blocking thread: a `drbdsetup events2` child.
    let waited = tokio::task::spawn_blocking(move || -> Result<(), String> {
        loop {
            let states = watch.resources(&watch_resources);
            let problems: Vec<String> = states
                .iter()
                .filter_map(|(r, s)| decide::usable(r, s.as_ref()).err())
                .collect();
            if problems.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "not started: its volumes did not become usable here in time: {}",
                    problems.join("; ")
                ));
            }
            let _ = watch.next(Duration::from_secs(1));
        }
    })
    .await
    .map_err(|e| e.to_string())?;
    waited?;
    if drbd84 {
        for r in &in_drbd {
            drbd.promote(r, false)
                .map_err(|e| format!("cannot promote {r} for {name}: {e}"))?;
        }
    }
    hv.start(name)?;
    tracing::info!(guest = name, "started");
    Ok(())
}

/// Waits (up to a minute) for DRBD's first picture; answers `resources` in it.
fn wait_ready(
    watch: &mut crate::drbd::Watch,
    resources: &[String],
) -> Result<Vec<(String, Option<strata_drbd::events::ResourceState>)>, String> {
    let until = Instant::now() + Duration::from_secs(60);
    while !watch.ready() {
        if Instant::now() >= until {
            return Err("DRBD's state could not be read within 60 s (drbdsetup events2)".into());
        }
        if let Err(e) = watch.next(Duration::from_secs(1)) {
            tracing::warn!("{e}");
        }
    }
    Ok(watch.resources(resources))
}

/// Waits until one of the controllers answers `/health` with success.
pub async fn wait_health(cfg: &Config) -> Result<(), String> {
    let client = cfg.controllers.client(Duration::from_secs(5))?;
    let started = Instant::now();
    let mut told = Instant::now();
    loop {
        let why = match client
            .raw(reqwest::Method::GET, strata_api::paths::HEALTH, None)
            .await
        {
            Ok((status, _)) if status.is_success() => {
                tracing::info!(
                    waited_secs = started.elapsed().as_secs(),
                    "the controller answers"
                );
                return Ok(());
            }
            Ok((status, body)) => format!(
                "the controller answers {status}: {}",
                String::from_utf8_lossy(&body)
            ),
            Err(e) => e.to_string(),
        };
        if told.elapsed() >= Duration::from_secs(30) {
            tracing::info!(
                waited_secs = started.elapsed().as_secs(),
                "still waiting for the controller: {why}"
            );
            told = Instant::now();
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
