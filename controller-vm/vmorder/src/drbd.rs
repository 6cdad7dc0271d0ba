//! This host's DRBD, as the ordering needs it: the state of some resources, followed through
//! one `drbdsetup events2`, and their promotion and demotion through drbdadm.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use strata_drbd::adm::{self, AdmConfig};
use strata_drbd::events::{ResourceState, State};
use strata_exec::{CommandRunner, ExecError, LineSource, StreamRunner};

/// How DRBD is run here.
#[derive(Clone)]
pub struct Drbd {
    runner: Arc<dyn CommandRunner>,
    streams: Arc<dyn StreamRunner>,
    adm: AdmConfig,
    /// A DRBD module was loaded when this was made.
    loaded: bool,
}

impl Drbd {
    /// The host's DRBD through the real tools; 8.4 or 9 as the loaded module says.
    /// `config_file`: drbdadm's configuration when it is not `/etc/drbd.conf` (as the
    /// satellite's `--drbd-config`).
    pub fn system(config_file: Option<std::path::PathBuf>) -> Drbd {
        let runner: Arc<dyn CommandRunner> = Arc::new(strata_exec::RealRunner);
        let cap = strata_drbd::version::detect(runner.as_ref(), Path::new("/proc/drbd"));
        let adm = AdmConfig {
            config_file,
            drbd84: cap.kernel.is_some_and(|v| v.major == 8),
            ..AdmConfig::system()
        };
        Drbd {
            runner,
            streams: Arc::new(strata_exec::RealRunner),
            adm,
            loaded: cap.kernel.is_some(),
        }
    }

    /// DRBD through other runners (tests).
    pub fn with(
        runner: Arc<dyn CommandRunner>,
        streams: Arc<dyn StreamRunner>,
        adm: AdmConfig,
    ) -> Drbd {
        Drbd {
            runner,
            streams,
            adm,
            loaded: true,
        }
    }

    /// The same, as on a host where no DRBD module is loaded (tests).
    #[cfg(test)]
    pub fn without_module(mut self) -> Drbd {
        self.loaded = false;
        self
    }

    /// Whether a DRBD module is loaded on this host (`/proc/drbd`): without one no volume is
    /// in DRBD here.
    pub fn is_loaded(&self) -> bool {
        self.loaded
    }

    /// Whether the module is DRBD 8.4 (no auto-promote: guests' volumes are promoted here).
    pub fn is_84(&self) -> bool {
        self.adm.drbd84
    }

    /// `drbdadm primary` (with `--force` when asked).
    pub fn promote(&self, res: &str, force: bool) -> Result<(), String> {
        let r = if force {
            adm::primary_force(self.runner.as_ref(), &self.adm, res)
        } else {
            adm::primary(self.runner.as_ref(), &self.adm, res)
        };
        r.map(|_| ()).map_err(|e| e.to_string())
    }

    /// `drbdadm secondary`.
    pub fn demote(&self, res: &str) -> Result<(), String> {
        adm::secondary(self.runner.as_ref(), &self.adm, res)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Follows every resource's state: `drbdsetup events2`, restarted when it ends.
    pub fn watch(&self) -> Watch {
        Watch {
            drbd: self.clone(),
            source: None,
            state: State::new(),
        }
    }
}

/// The state of this host's DRBD resources, kept current from `drbdsetup events2`.
pub struct Watch {
    drbd: Drbd,
    source: Option<Box<dyn LineSource>>,
    state: State,
}

impl Watch {
    /// Waits up to `timeout` for DRBD's state to change; answers whether it did (or the
    /// initial state arrived). A failing `drbdsetup` is started again on the next call.
    pub fn next(&mut self, timeout: Duration) -> Result<bool, String> {
        let deadline = Instant::now() + timeout;
        let mut changed = false;
        loop {
            if self.source.is_none() {
                let cmd = adm::events2_command(&self.drbd.adm);
                match self.drbd.streams.stream(&cmd) {
                    Ok(s) => {
                        self.state.clear();
                        self.source = Some(s);
                    }
                    Err(e) => {
                        std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
                        return Err(format!("cannot follow DRBD's events: {e}"));
                    }
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let source = self.source.as_mut().expect("started above");
            // Once a change arrived, take what follows at once, then answer.
            let wait = if changed { Duration::ZERO } else { left };
            match source.next_line(wait) {
                Ok(Some(line)) => {
                    self.state.apply_line(&line);
                    if self.state.initial_state_done() {
                        changed = true;
                    }
                }
                Ok(None) => return Ok(changed),
                Err(e) => {
                    self.source = None;
                    if changed {
                        // What arrived counts; the next call starts drbdsetup again.
                        return Ok(true);
                    }
                    let why = match &e {
                        ExecError::Ended { status, stderr, .. } => {
                            format!("drbdsetup events2 ended ({status}): {}", stderr.trim())
                        }
                        other => other.to_string(),
                    };
                    std::thread::sleep(left.min(Duration::from_secs(1)));
                    return Err(why);
                }
            }
        }
    }

    /// Whether the first whole picture arrived.
    pub fn ready(&self) -> bool {
        self.state.initial_state_done()
    }

    /// Each of `names` with its state here (`None`: DRBD does not know it here).
    pub fn resources(&self, names: &[String]) -> Vec<(String, Option<ResourceState>)> {
        names
            .iter()
            .map(|n| (n.clone(), self.state.resource(n).cloned()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_exec::{ScriptedLines, ScriptedRunner};

    #[test]
    fn the_watch_folds_events_and_restarts_drbdsetup() {
        let runner = Arc::new(ScriptedRunner::new());
        runner
            .expect_stream(
                &["drbdsetup", "events2", "--full", "all"],
                ScriptedLines::new([
                    "exists resource name:ctrl role:Secondary suspended:no",
                    "exists device name:ctrl volume:0 minor:1000 disk:UpToDate client:no",
                    "exists -",
                    "change resource name:ctrl role:Primary",
                ])
                .ends(10, "killed"),
            )
            .expect_stream(
                &["drbdsetup", "events2", "--full", "all"],
                ScriptedLines::new(Vec::<String>::new()).ends(20, "no module"),
            )
            .expect_stream(
                &["drbdsetup", "events2", "--full", "all"],
                ScriptedLines::new(["exists -"]).idle(),
            );
        let drbd = Drbd::with(runner.clone(), runner.clone(), AdmConfig::system());
        let mut w = drbd.watch();
        assert!(w.next(Duration::from_millis(200)).unwrap());
        assert!(w.ready());
        let r = w.resources(&["ctrl".to_string(), "other".to_string()]);
        assert_eq!(
            r[0].1.as_ref().unwrap().role,
            Some(strata_drbd::events::Role::Primary)
        );
        assert!(r[1].1.is_none());
        // drbdsetup ended after its news, and the next one fails at once: the watch says so,
        // then starts it again with a clean state.
        let err = w.next(Duration::from_millis(50)).unwrap_err();
        assert!(err.contains("events2 ended (20): no module"), "{err}");
        assert!(w.next(Duration::from_millis(200)).unwrap());
        assert!(w.resources(&["ctrl".to_string()])[0].1.is_none());
        assert!(!w.next(Duration::from_millis(50)).unwrap());
    }

    #[test]
    fn promotion_runs_drbdadm() {
        let runner = Arc::new(ScriptedRunner::new());
        runner
            .expect(
                &["drbdadm", "primary", "ctrl"],
                strata_exec::Output::failed(
                    11,
                    "ctrl: State change failed: (-1) Multiple primaries not allowed by config\n",
                ),
            )
            .expect(
                &["drbdadm", "primary", "--force", "ctrl"],
                strata_exec::Output::ok(""),
            )
            .expect(
                &["drbdadm", "secondary", "ctrl"],
                strata_exec::Output::ok(""),
            );
        let drbd = Drbd::with(runner.clone(), runner.clone(), AdmConfig::system());
        let e = drbd.promote("ctrl", false).unwrap_err();
        assert!(e.contains("Multiple primaries"), "{e}");
        drbd.promote("ctrl", true).unwrap();
        drbd.demote("ctrl").unwrap();
        assert!(runner.remaining().is_empty());
    }
}
