//! `resource-definition wait-sync`: waits until every replica of a resource definition holds
//! up-to-date data and no resync runs.

use std::time::{Duration, Instant};

use clap::Args;
use strata_api::types::{ResourceWithVolumes, Volume};
use strata_client::calls;
use strata_model::drbd_state::ReplicationState;
use strata_model::observed::is_resync_state;

use crate::context::{out, parse, Ctx};
use crate::error::{self, CliError};

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct WaitSyncArgs {
    /// Give up after this many seconds (default: wait as long as it takes).
    #[arg(long = "wait-timeout")]
    pub wait_timeout: Option<u64>,
    pub resource_definition: String,
}

/// How often the controller is asked.
const POLL: Duration = Duration::from_millis(500);

fn is_drbd(r: &ResourceWithVolumes) -> bool {
    r.resource
        .layer_object
        .as_ref()
        .and_then(crate::resource::drbd_layer)
        .is_some()
}

/// What keeps volume `v` of a resource with `flags` from being in sync; `None` when it is.
fn volume_lag(v: &Volume, flags: &[String]) -> Option<String> {
    let Some(state) = &v.state else {
        return Some("Unknown".into());
    };
    if let Some((peer, st)) = state
        .replication_states
        .iter()
        .find(|(_, s)| s.replication_state.as_deref().is_some_and(is_resync_state))
    {
        let name = st.replication_state.clone().unwrap_or_default();
        return Some(match st.done_percentage {
            Some(p) => format!("{name}({p:.2}%) with {peer}"),
            None => format!("{name} with {peer}"),
        });
    }
    match state.disk_state.as_deref() {
        Some("UpToDate") => None,
        Some("Diskless") if flags.iter().any(|f| f == "DISKLESS") => None,
        Some(s) => Some(s.to_string()),
        None => Some("Unknown".into()),
    }
}

/// Per node, what is not in sync yet; empty when everything is.
pub fn lagging(rscs: &[ResourceWithVolumes]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for r in rscs {
        let flags = &r.resource.flags;
        if flags.iter().any(|f| f == "DELETE" || f == "DRBD_DELETE") || !is_drbd(r) {
            continue;
        }
        for v in &r.volumes {
            if let Some(why) = volume_lag(v, flags) {
                out.push((
                    r.resource.node_name.clone(),
                    format!("volume {}: {why}", v.volume_number),
                ));
            }
        }
    }
    out
}

/// How far the resyncs of `rscs` are: (bytes in sync, bytes to be in sync) over the volumes
/// receiving one or waiting for one.
pub fn progress(rscs: &[ResourceWithVolumes]) -> (u64, u64) {
    let (mut done, mut total) = (0.0, 0.0);
    for r in rscs {
        for v in &r.volumes {
            let Some(state) = &v.state else { continue };
            let bytes = v
                .usable_size_kib
                .or(v.allocated_size_kib)
                .unwrap_or(0)
                .max(0) as f64
                * 1024.0;
            let receiving = state.replication_states.values().find(|s| {
                s.replication_state
                    .as_deref()
                    .is_some_and(|r| ReplicationState::parse(r).is_receiving())
            });
            match (receiving, state.disk_state.as_deref()) {
                (Some(s), _) => {
                    total += bytes;
                    done += bytes * s.done_percentage.unwrap_or(0.0) / 100.0;
                }
                (None, Some("Inconsistent" | "Outdated")) => total += bytes,
                _ => {}
            }
        }
    }
    (done as u64, total as u64)
}

/// What the wait shows: lines of text, or a progress bar on a terminal.
enum Display {
    Lines(String),
    Bar(indicatif::ProgressBar),
}

impl Display {
    fn new() -> Display {
        if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} [{bar:30}] {percent:>3}% {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {wide_msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            Display::Bar(bar)
        } else {
            Display::Lines(String::new())
        }
    }

    fn show(&mut self, rd: &str, lag: &str, (done, total): (u64, u64)) {
        match self {
            Display::Lines(shown) => {
                if lag != shown {
                    out(&format!("Waiting for '{rd}': {lag}\n"));
                    *shown = lag.to_string();
                }
            }
            Display::Bar(bar) => {
                bar.set_length(total.max(1));
                bar.set_position(done.min(total));
                bar.set_message(lag.to_string());
            }
        }
    }

    fn done(&self) {
        if let Display::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

pub async fn run(ctx: &mut Ctx, a: WaitSyncArgs) -> Result<i32, CliError> {
    let rd = &a.resource_definition;
    // An unknown definition is reported as the controller words it.
    ctx.fetch(calls::resource_dfn(rd)).await?;
    let started = Instant::now();
    let mut display = Display::new();
    loop {
        let raw = ctx
            .fetch(calls::resources(&[], std::slice::from_ref(rd), &[], &[]))
            .await?;
        let rscs: Vec<ResourceWithVolumes> = parse(&raw, "resource list")?;
        let lag = lagging(&rscs);
        if lag.is_empty() {
            display.done();
            out(&format!(
                "Resource definition '{rd}' is in sync on {} node(s).\n",
                rscs.len()
            ));
            return Ok(error::OK);
        }
        let now: Vec<String> = lag.iter().map(|(n, w)| format!("{n}: {w}")).collect();
        let shown = now.join("; ");
        display.show(rd, &shown, progress(&rscs));
        if a.wait_timeout
            .is_some_and(|t| started.elapsed() >= Duration::from_secs(t))
        {
            display.done();
            return Err(CliError::new(
                error::API_ERROR,
                format!(
                    "Error: resource definition '{rd}' is not in sync after {} seconds ({shown})",
                    a.wait_timeout.unwrap_or(0)
                ),
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rsc(node: &str, flags: &[&str], state: serde_json::Value) -> ResourceWithVolumes {
        serde_json::from_value(serde_json::json!({
            "name": "r0", "node_name": node, "flags": flags,
            "layer_object": {"type": "DRBD", "drbd": {}, "children": []},
            "volumes": [{"volume_number": 0, "provider_kind": "FILE_THIN", "state": state}]
        }))
        .unwrap()
    }

    #[test]
    fn in_sync_only_when_every_replica_is_up_to_date() {
        let up = serde_json::json!({"disk_state": "UpToDate",
            "replication_states": {"n2": {"replication_state": "Established"}}});
        let syncing = serde_json::json!({"disk_state": "Inconsistent",
            "replication_states": {"n1": {"replication_state": "SyncTarget", "done_percentage": 45.123}}});
        let client = serde_json::json!({"disk_state": "Diskless"});
        let all = vec![
            rsc("n1", &[], up.clone()),
            rsc("n2", &[], syncing),
            rsc("n3", &["DISKLESS", "DRBD_DISKLESS"], client.clone()),
        ];
        assert_eq!(
            lagging(&all),
            [(
                "n2".to_string(),
                "volume 0: SyncTarget(45.12%) with n1".to_string()
            )]
        );
        let done = vec![
            rsc("n1", &[], up.clone()),
            rsc("n3", &["DISKLESS"], client.clone()),
        ];
        assert!(lagging(&done).is_empty());
        // Diskless without being asked to be (a lost disk) is not in sync.
        assert_eq!(lagging(&[rsc("n4", &[], client)]).len(), 1);
        // No state known yet.
        assert_eq!(
            lagging(&[rsc("n5", &[], serde_json::Value::Null)])[0].1,
            "volume 0: Unknown"
        );
        // Replicas being deleted do not count.
        assert!(lagging(&[rsc("n6", &["DELETE"], serde_json::Value::Null)]).is_empty());
    }

    #[test]
    fn progress_counts_the_bytes_of_the_volumes_being_synced() {
        let sized = |node: &str, state: serde_json::Value| {
            let mut r = rsc(node, &[], state);
            r.volumes[0].usable_size_kib = Some(1024);
            r
        };
        let up = serde_json::json!({"disk_state": "UpToDate"});
        let syncing = serde_json::json!({"disk_state": "Inconsistent",
            "replication_states": {"n1": {"replication_state": "SyncTarget", "done_percentage": 25.0}}});
        let waiting = serde_json::json!({"disk_state": "Inconsistent"});
        assert_eq!(progress(&[sized("n1", up.clone())]), (0, 0));
        assert_eq!(
            progress(&[sized("n1", up), sized("n2", syncing), sized("n3", waiting)]),
            (256 * 1024, 2 * 1024 * 1024)
        );
    }
}
