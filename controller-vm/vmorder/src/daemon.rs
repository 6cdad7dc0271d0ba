//! `strata-vmorder run`: the controller VM's election on this host, in a thread of its own that
//! follows DRBD's events, and the queueing of every guest's start with systemd.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures_util::StreamExt;

use crate::config::Config;
use crate::decide::{self, Action, ControllerView, GuestPlan};
use crate::drbd::{Drbd, Watch};
use crate::hypervisor::Hypervisor;
use crate::state::{self, Shared};
use crate::systemd::{self, GuestUnit, Queued, Systemd};

/// What the election tells the rest once DRBD's first picture arrived: each guest's plan.
type Plans = Vec<(String, GuestPlan)>;

/// The controller VM's election: runs until the process ends; sends the guests' plans once.
pub struct Election {
    pub cfg: Config,
    pub drbd: Drbd,
    pub hv: Arc<dyn Hypervisor>,
    pub status: Shared,
}

/// What the election remembers between its looks.
struct Progress {
    /// When it began.
    started: Instant,
    /// The last try to start the VM (a failed one is tried again, not faster than
    /// `check_interval`).
    last_start_try: Option<Instant>,
    /// A peer of the controller VM's resources was seen connected since it began.
    seen_connected: bool,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            started: Instant::now(),
            last_start_try: None,
            seen_connected: false,
        }
    }
}

impl Election {
    /// Runs forever (a thread of its own); `plans` receives the guests' plans once DRBD's
    /// state is known.
    pub fn run(self, plans: tokio::sync::oneshot::Sender<Plans>) {
        let mut watch = self.drbd.watch();
        let mut plans = Some(plans);
        let mut progress = Progress::new();
        let mut last_err = String::new();
        // A controller VM without DRBD on a host without DRBD: nothing to follow, only the
        // hypervisor to look at every check_interval.
        let follow = self.cfg.controller_vm.drbd || self.drbd.is_loaded();
        loop {
            let drbd_ok = if follow {
                match watch.next(self.cfg.check_interval) {
                    Ok(_) => true,
                    Err(e) => {
                        if e != last_err {
                            tracing::warn!("{e}");
                            last_err = e.clone();
                        }
                        if self.cfg.controller_vm.drbd {
                            self.status.controller("waiting", &e);
                            continue;
                        }
                        // A controller VM without DRBD needs nothing of DRBD's state; its
                        // guests then count as not here (the controller makes their volumes
                        // available).
                        false
                    }
                }
            } else {
                if plans.is_none() {
                    std::thread::sleep(self.cfg.check_interval);
                }
                false
            };
            if drbd_ok && !watch.ready() {
                continue;
            }
            if let Some(tx) = plans.take() {
                let p = self
                    .cfg
                    .guests
                    .iter()
                    .map(|g| {
                        (
                            g.name.clone(),
                            decide::guest_plan(&watch.resources(&g.resources)),
                        )
                    })
                    .collect();
                let _ = tx.send(p);
            }
            self.step(&watch, &mut progress);
        }
    }

    /// One look at DRBD and the hypervisor, and what follows from it.
    fn step(&self, watch: &Watch, progress: &mut Progress) {
        let vm = &self.cfg.controller_vm;
        let running = match self.hv.is_running(&vm.name) {
            Ok(r) => r,
            Err(e) => {
                self.status
                    .controller("waiting", &format!("cannot ask the hypervisor: {e}"));
                return;
            }
        };
        let resources = watch.resources(&vm.resources);
        progress.seen_connected |= decide::any_connected(&resources);
        let view = ControllerView {
            resources: &resources,
            running_here: running,
            drbd: vm.drbd,
            waited: progress.started.elapsed(),
            promote_alone_after: vm.promote_alone_after.map(Duration::from_secs),
            seen_connected: progress.seen_connected,
        };
        match decide::controller_action(&view) {
            Action::Running => self
                .status
                .controller("active", "the controller VM runs on this host"),
            Action::Start => {
                // A start that failed is tried again, but not faster than check_interval.
                if progress
                    .last_start_try
                    .is_some_and(|t| t.elapsed() < self.cfg.check_interval)
                {
                    return;
                }
                progress.last_start_try = Some(Instant::now());
                self.status.controller(
                    "starting",
                    "this host holds the controller VM's volumes: starting the VM",
                );
                match self.hv.start(&vm.name) {
                    Ok(()) => self
                        .status
                        .controller("active", "the controller VM was started on this host"),
                    Err(e) => self
                        .status
                        .controller("starting", &format!("the start failed, trying again: {e}")),
                }
            }
            Action::Promote { force } => self.promote(&resources, force),
            Action::Standby { holder } => self.status.controller(
                "standby",
                &format!("{holder} holds the controller VM: standing by to take over"),
            ),
            Action::Wait { why } => self.status.controller("waiting", &why),
        }
    }

    /// Promotes the resources in order; gives back what it took when one is refused (another
    /// host was faster), so that no host holds a part.
    fn promote(
        &self,
        resources: &[(String, Option<strata_drbd::events::ResourceState>)],
        force: bool,
    ) {
        let mut taken: Vec<String> = Vec::new();
        for (name, s) in resources {
            let primary = s
                .as_ref()
                .is_some_and(|s| s.role == Some(strata_drbd::events::Role::Primary));
            if primary {
                continue;
            }
            self.status.controller(
                "promoting",
                &format!(
                    "promoting {name}{}",
                    if force {
                        " alone (promote_alone_after passed)"
                    } else {
                        ""
                    }
                ),
            );
            if let Err(e) = self.drbd.promote(name, force) {
                for t in taken.iter().rev() {
                    if let Err(e) = self.drbd.demote(t) {
                        tracing::warn!("could not give {t} back: {e}");
                    }
                }
                self.status.controller(
                    "standby",
                    &format!("DRBD refused to promote {name} here (another host holds it or no quorum): {e}"),
                );
                return;
            }
            taken.push(name.clone());
        }
    }
}

/// The daemon: the election, the guests' units, readiness for systemd.
pub async fn run(cfg: Config, hv: Arc<dyn Hypervisor>, drbd: Drbd) -> anyhow::Result<()> {
    let status = Shared::new(
        &cfg.state_dir,
        state::Status {
            node: cfg.node.clone(),
            pid: std::process::id(),
            controller_vm: state::ControllerStatus {
                name: cfg.controller_vm.name.clone(),
                role: "waiting".into(),
                detail: "starting up: reading DRBD's state".into(),
                since: state::now(),
            },
            guests: cfg
                .guests
                .iter()
                .map(|g| state::GuestStatus {
                    name: g.name.clone(),
                    unit: systemd::guest_unit(&g.name),
                    plan: String::new(),
                    result: "planning".into(),
                })
                .collect(),
            history: vec![],
        },
    );
    warn_about_autostart(&cfg, hv.as_ref());
    let (tx, rx) = tokio::sync::oneshot::channel();
    let election = Election {
        cfg: cfg.clone(),
        drbd,
        hv,
        status: status.clone(),
    };
    let thread = std::thread::Builder::new()
        .name("election".into())
        .spawn(move || election.run(tx))
        .context("cannot start the election thread")?;
    let plans = rx
        .await
        .map_err(|_| anyhow::anyhow!("the election ended before DRBD's state was read"))?;

    for (guest, plan) in &plans {
        status.update(|st| {
            if let Some(g) = st.guests.iter_mut().find(|g| &g.name == guest) {
                g.plan = plan.as_str().into();
            }
        });
    }
    let units = guest_units(&cfg, &plans)?;
    // A failure here (no D-Bus, systemd refusing) is the guests' alone: the controller VM's
    // election goes on whatever becomes of them.
    let results = match queue_guests(&units, &status).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("the guests' starts could not be queued: {e}");
            for u in &units {
                status.guest(&u.guest, &format!("failed: {e}"));
            }
            None
        }
    };
    let _ = strata_net::service::notify_ready("the controller VM's election runs; guests queued");
    if let Some((mut stream, mut jobs)) = results {
        while !jobs.is_empty() {
            let Some((job, unit, result)) = stream.next().await else {
                break;
            };
            if let Some(guest) = jobs.remove(&job) {
                let text = if result == "done" {
                    "started".to_string()
                } else {
                    format!("failed: job {result} (journalctl -u {unit})")
                };
                status.guest(&guest, &text);
            }
        }
    }
    // The election goes on as long as the daemon runs.
    tokio::task::spawn_blocking(move || thread.join())
        .await
        .ok();
    anyhow::bail!("the election thread ended")
}

/// Queues every guest's unit with systemd; answers the job stream and which job is whose.
async fn queue_guests(
    units: &[GuestUnit],
    status: &Shared,
) -> Result<Option<(systemd::JobResults, systemd::Jobs)>, String> {
    if units.is_empty() {
        return Ok(None);
    }
    let sd = Systemd::connect().await?;
    let stream = sd.job_results().await?;
    let mut jobs = systemd::Jobs::new();
    for u in units {
        match sd.start_guest(u).await {
            Ok(Queued::Job(job)) => {
                tracing::info!(guest = %u.guest, unit = %u.unit, after_controller = u.after_controller, "queued the guest's start");
                status.guest(&u.guest, "queued");
                jobs.insert(job, u.guest.clone());
            }
            Ok(Queued::AlreadyActive) => status.guest(&u.guest, "already-active"),
            Err(e) => {
                tracing::error!(guest = %u.guest, "{e}");
                status.guest(&u.guest, &format!("failed: {e}"));
            }
        }
    }
    Ok(Some((stream, jobs)))
}

/// The guests' units, from their plans.
pub fn guest_units(cfg: &Config, plans: &Plans) -> anyhow::Result<Vec<GuestUnit>> {
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    let exe = exe.display().to_string();
    Ok(plans
        .iter()
        .map(|(name, plan)| GuestUnit {
            guest: name.clone(),
            unit: systemd::guest_unit(name),
            argv: vec![
                exe.clone(),
                "--config".into(),
                cfg.path.display().to_string(),
                "start-guest".into(),
                name.clone(),
            ],
            after_controller: *plan == GuestPlan::AfterController,
        })
        .collect())
}

fn warn_about_autostart(cfg: &Config, hv: &dyn Hypervisor) {
    let names = std::iter::once(&cfg.controller_vm.name).chain(cfg.guests.iter().map(|g| &g.name));
    for name in names {
        if let Ok(Some(true)) = hv.autostart(name) {
            tracing::warn!(
                vm = %name,
                "the hypervisor starts {name} by itself at boot, outside of this ordering: turn that off (virsh autostart --disable {name}, or qm set {name} --onboot 0)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use strata_drbd::adm::AdmConfig;
    use strata_exec::{Output, ScriptedLines, ScriptedRunner};

    /// A hypervisor that records starts.
    #[derive(Default)]
    struct FakeHv {
        running: Mutex<bool>,
        starts: Mutex<u32>,
        fail: Mutex<bool>,
    }

    impl Hypervisor for FakeHv {
        fn is_running(&self, _: &str) -> Result<bool, String> {
            Ok(*self.running.lock().unwrap())
        }
        fn start(&self, _: &str) -> Result<(), String> {
            *self.starts.lock().unwrap() += 1;
            if *self.fail.lock().unwrap() {
                return Err("no memory".into());
            }
            *self.running.lock().unwrap() = true;
            Ok(())
        }
        fn autostart(&self, _: &str) -> Result<Option<bool>, String> {
            Ok(None)
        }
    }

    const SETTINGS: &str = r#"
controllers = "127.0.0.1:3370"
node = "alpha"
check_interval = 1
[hypervisor]
kind = "libvirt"
[controller_vm]
name = "ctl"
resources = ["ctl_a", "ctl_b"]
"#;

    fn election(dir: &std::path::Path, runner: Arc<ScriptedRunner>, hv: Arc<FakeHv>) -> Election {
        let mut cfg = Config::parse(std::path::Path::new("t.toml"), SETTINGS).unwrap();
        cfg.state_dir = dir.to_path_buf();
        let status = Shared::new(dir, state::Status::default());
        status.update(|s| s.controller_vm.name = "ctl".into());
        Election {
            cfg,
            drbd: Drbd::with(runner.clone(), runner, AdmConfig::system()),
            hv,
            status,
        }
    }

    fn resource(name: &str, role: &str, peer_role: &str) -> [String; 4] {
        [
            format!("exists resource name:{name} role:{role} suspended:no"),
            format!("exists device name:{name} volume:0 minor:1000 disk:UpToDate client:no"),
            format!("exists connection name:{name} peer-node-id:1 conn-name:beta connection:Connected role:{peer_role}"),
            format!("exists peer-device name:{name} peer-node-id:1 conn-name:beta volume:0 replication:Established peer-disk:UpToDate"),
        ]
    }

    fn events(lines: Vec<String>) -> ScriptedLines {
        ScriptedLines::new(lines).idle()
    }

    /// DRBD's first picture of `ctl_a` and `ctl_b`, both in the same roles.
    fn both(role: &str, peer_role: &str) -> Vec<String> {
        let mut lines: Vec<String> = resource("ctl_a", role, peer_role).into();
        lines.extend(resource("ctl_b", role, peer_role));
        lines.push("exists -".into());
        lines
    }

    /// `first`, then `later` held back until the answered flag is set.
    fn gated(
        first: Vec<String>,
        later: &[&str],
    ) -> (ScriptedLines, Arc<std::sync::atomic::AtomicBool>) {
        let open = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut script = ScriptedLines::new(first).gate(open.clone());
        for l in later {
            script = script.line(*l);
        }
        (script.idle(), open)
    }

    /// An election on `first` with `later` held back, both resources' promotions scripted to
    /// succeed, DRBD's first picture read.
    struct Setup {
        runner: Arc<ScriptedRunner>,
        hv: Arc<FakeHv>,
        e: Election,
        w: Watch,
        open: Arc<std::sync::atomic::AtomicBool>,
    }

    fn promoting(dir: &std::path::Path, first: Vec<String>, later: &[&str]) -> Setup {
        let runner = Arc::new(ScriptedRunner::new());
        let (script, open) = gated(first, later);
        runner
            .expect_stream(&["drbdsetup", "events2", "--full", "all"], script)
            .expect(&["drbdadm", "primary", "ctl_a"], Output::ok(""))
            .expect(&["drbdadm", "primary", "ctl_b"], Output::ok(""));
        let hv = Arc::new(FakeHv::default());
        let e = election(dir, runner.clone(), hv.clone());
        let mut w = e.drbd.watch();
        assert!(w.next(Duration::from_millis(100)).unwrap());
        Setup {
            runner,
            hv,
            e,
            w,
            open,
        }
    }

    #[test]
    fn the_first_host_promotes_in_order_and_starts_the_vm() {
        let dir = tempfile::tempdir().unwrap();
        let Setup {
            runner,
            hv,
            e,
            mut w,
            open,
        } = promoting(
            dir.path(),
            both("Secondary", "Secondary"),
            &[
                "change resource name:ctl_a role:Primary",
                "change resource name:ctl_b role:Primary",
            ],
        );
        let mut progress = Progress::new();
        e.step(&w, &mut progress);
        assert!(runner.remaining().is_empty(), "{:?}", runner.remaining());
        assert_eq!(
            *hv.starts.lock().unwrap(),
            0,
            "no start before DRBD shows Primary"
        );
        // DRBD reports the promotions: the next look starts the VM, the one after sees it run.
        open.store(true, std::sync::atomic::Ordering::SeqCst);
        while !w.next(Duration::from_millis(100)).unwrap() {}
        e.step(&w, &mut progress);
        assert_eq!(*hv.starts.lock().unwrap(), 1);
        e.step(&w, &mut progress);
        assert_eq!(*hv.starts.lock().unwrap(), 1);
        assert_eq!(
            state::read(dir.path()).unwrap().controller_vm.role,
            "active"
        );
    }

    #[test]
    fn a_host_that_loses_the_race_gives_back_what_it_took() {
        let dir = tempfile::tempdir().unwrap();
        let runner = Arc::new(ScriptedRunner::new());
        let lines = both("Secondary", "Secondary");
        runner
            .expect_stream(&["drbdsetup", "events2", "--full", "all"], events(lines))
            .expect(&["drbdadm", "primary", "ctl_a"], Output::ok(""))
            .expect(
                &["drbdadm", "primary", "ctl_b"],
                Output::failed(
                    11,
                    "ctl_b: State change failed: (-1) Multiple primaries not allowed by config\n",
                ),
            )
            .expect(&["drbdadm", "secondary", "ctl_a"], Output::ok(""));
        let hv = Arc::new(FakeHv::default());
        let e = election(dir.path(), runner.clone(), hv.clone());
        let mut w = e.drbd.watch();
        w.next(Duration::from_millis(100)).unwrap();
        e.step(&w, &mut Progress::new());
        assert!(runner.remaining().is_empty(), "{:?}", runner.remaining());
        let st = state::read(dir.path()).unwrap();
        assert_eq!(st.controller_vm.role, "standby");
        assert!(
            st.controller_vm.detail.contains("Multiple primaries"),
            "{}",
            st.controller_vm.detail
        );
        assert_eq!(*hv.starts.lock().unwrap(), 0);
    }

    #[test]
    fn a_standby_waits_then_takes_over_when_the_holder_goes() {
        let dir = tempfile::tempdir().unwrap();
        let Setup {
            runner,
            hv: _,
            e,
            mut w,
            open,
        } = promoting(
            dir.path(),
            both("Secondary", "Primary"),
            &[
                "change connection name:ctl_a peer-node-id:1 conn-name:beta connection:Connecting role:Unknown",
                "change connection name:ctl_b peer-node-id:1 conn-name:beta connection:Connecting role:Unknown",
            ],
        );
        // The progress is kept across looks: the standby saw beta connected.
        let mut progress = Progress::new();
        e.step(&w, &mut progress);
        let st = state::read(dir.path()).unwrap();
        assert_eq!(st.controller_vm.role, "standby");
        assert!(
            st.controller_vm.detail.contains("beta"),
            "{}",
            st.controller_vm.detail
        );
        assert_eq!(
            runner.remaining().len(),
            2,
            "nothing promoted while beta holds it"
        );
        // beta dies: its connections drop.
        open.store(true, std::sync::atomic::Ordering::SeqCst);
        while !w.next(Duration::from_millis(100)).unwrap() {}
        e.step(&w, &mut progress);
        assert!(runner.remaining().is_empty(), "{:?}", runner.remaining());
    }

    #[test]
    fn a_vm_whose_start_fails_is_tried_again_but_not_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let runner = Arc::new(ScriptedRunner::new());
        let lines = both("Primary", "Secondary");
        runner.expect_stream(&["drbdsetup", "events2", "--full", "all"], events(lines));
        let hv = Arc::new(FakeHv::default());
        *hv.fail.lock().unwrap() = true;
        let e = election(dir.path(), runner.clone(), hv.clone());
        let mut w = e.drbd.watch();
        w.next(Duration::from_millis(100)).unwrap();
        let mut progress = Progress::new();
        e.step(&w, &mut progress);
        e.step(&w, &mut progress);
        assert_eq!(*hv.starts.lock().unwrap(), 1);
        let st = state::read(dir.path()).unwrap();
        assert!(
            st.controller_vm.detail.contains("no memory"),
            "{}",
            st.controller_vm.detail
        );
        std::thread::sleep(Duration::from_millis(1100));
        *hv.fail.lock().unwrap() = false;
        e.step(&w, &mut progress);
        assert_eq!(*hv.starts.lock().unwrap(), 2);
        e.step(&w, &mut progress);
        let st = state::read(dir.path()).unwrap();
        assert_eq!(st.controller_vm.role, "active");
        assert_eq!(*hv.starts.lock().unwrap(), 2);
    }

    #[test]
    fn a_controller_vm_without_drbd_starts_on_a_host_without_drbd() {
        let dir = tempfile::tempdir().unwrap();
        let runner = Arc::new(ScriptedRunner::new());
        for _ in 0..3 {
            runner.expect_stream(
                &["drbdsetup", "events2", "--full", "all"],
                ScriptedLines::new(Vec::<String>::new())
                    .ends(20, "Failed to modprobe drbd (No such file or directory)"),
            );
        }
        let hv = Arc::new(FakeHv::default());
        let mut e = election(dir.path(), runner.clone(), hv.clone());
        e.cfg.controller_vm.drbd = false;
        e.cfg.guests = vec![crate::config::Guest {
            name: "web1".into(),
            resources: vec!["w".into()],
        }];
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || e.run(tx));
        let plans = rx.blocking_recv().expect("plans despite no DRBD");
        assert_eq!(
            plans,
            vec![("web1".to_string(), GuestPlan::AfterController)]
        );
        let start = Instant::now();
        while *hv.starts.lock().unwrap() == 0 {
            assert!(start.elapsed() < Duration::from_secs(10), "never started");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn without_drbd_anywhere_nothing_follows_drbd_and_the_vm_starts() {
        let dir = tempfile::tempdir().unwrap();
        // No drbdsetup is scripted: running one would be answered as unexpected.
        let runner = Arc::new(ScriptedRunner::new());
        let hv = Arc::new(FakeHv::default());
        let mut e = election(dir.path(), runner.clone(), hv.clone());
        e.drbd = e.drbd.without_module();
        e.cfg.controller_vm.drbd = false;
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || e.run(tx));
        assert!(rx.blocking_recv().expect("plans").is_empty());
        let start = Instant::now();
        while *hv.starts.lock().unwrap() == 0 {
            assert!(start.elapsed() < Duration::from_secs(10), "never started");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(runner.calls().is_empty(), "{:?}", runner.calls());
    }

    #[test]
    fn guest_units_carry_the_order() {
        let text = format!("{SETTINGS}\n[[guest]]\nname = \"web1\"\nresources = [\"w\"]\n[[guest]]\nname = \"db\"\nresources = [\"d\"]\n");
        let cfg = Config::parse(std::path::Path::new("/etc/linstor/vmorder.toml"), &text).unwrap();
        let units = guest_units(
            &cfg,
            &vec![
                ("web1".into(), GuestPlan::AtOnce),
                ("db".into(), GuestPlan::AfterController),
            ],
        )
        .unwrap();
        assert_eq!(units[0].unit, "strata-guest-web1.service");
        assert!(!units[0].after_controller);
        assert!(units[1].after_controller);
        assert_eq!(
            &units[1].argv[1..],
            ["--config", "/etc/linstor/vmorder.toml", "start-guest", "db"]
        );
    }
}
