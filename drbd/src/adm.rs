//! The DRBD commands a satellite runs, through [`CommandRunner`].
//!
//! Most go through `drbdadm`, which reads the configuration (`-c FILE` when
//! [`AdmConfig::config_file`] is set, else `/etc/drbd.conf`) and turns each request into
//! `drbdsetup`/`drbdmeta` calls; with [`AdmConfig::dry_run`] it only prints them (`drbdadm -d`).
//! What drbdadm 9.22 runs underneath, as its dry run shows:
//!
//! | function | drbdadm | underneath |
//! |---|---|---|
//! | [`create_md`] | `create-md --force --max-peers=N r/v` | `drbdmeta MINOR v09 DISK internal create-md N --force` |
//! | [`up`] | `up r` | `new-resource`, `new-minor`, `new-peer`, `new-path`, `peer-device-options`, `drbdmeta apply-al`, `attach`, `connect` |
//! | [`adjust`] | `adjust r` | the difference between kernel and file (all of `up` when the kernel knows nothing) |
//! | [`adjust84_by_plan`] | `-d adjust r`, then its plan without what 8.4 cannot do | (8.4: no peer, or a diskless volume) |
//! | [`down`] | `down r` | `drbdsetup down r` |
//! | [`wipe_md`] | `-- --force wipe-md r/v` | `drbdmeta MINOR v09 DISK internal wipe-md --force` |
//! | [`skip_initial_sync`] | `new-current-uuid --clear-bitmap r/v` | `drbdsetup new-current-uuid MINOR --clear-bitmap` |
//! | [`primary_force`] | `primary --force r` | `drbdsetup primary r --force` |
//! | [`secondary`] | `secondary r` | `drbdsetup secondary r` |
//! | [`suspend_io`] / [`resume_io`] | `suspend-io r` / `resume-io r` | `drbdsetup suspend-io MINOR` / `resume-io MINOR` |
//! | [`resize`] | `resize r/v` | `drbdsetup resize MINOR`, `drbdsetup check-resize MINOR` |
//!
//! Two queries bypass drbdadm: [`has_metadata`] asks `drbdmeta` directly (it reads the backing
//! device, needs no configuration and no kernel module), and [`status`] reads
//! `drbdsetup events2 --now --full` into an [`events::State`]. Queries run for real even in dry
//! run mode: they change nothing.
//!
//! Without the DRBD kernel module whatever reaches the kernel fails with "Failed to modprobe
//! drbd" on stderr (exit status 20 from drbdsetup, 1 from `drbdadm up`/`adjust`); that becomes
//! [`AdmError::NoKernelModule`]. `drbdadm down` then succeeds: nothing is up.

use std::path::PathBuf;
use std::time::Duration;

use strata_exec::{Cmd, CommandRunner, ExecError};

use crate::events::{self, ResourceState};

/// Time an ordinary DRBD command may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// Time for commands that write metadata (`create-md` zeroes the whole bitmap).
pub const MD_TIMEOUT: Duration = Duration::from_secs(600);

/// How drbdadm is run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmConfig {
    /// `drbdadm -c FILE`; `None` reads `/etc/drbd.conf`.
    pub config_file: Option<PathBuf>,
    /// `drbdadm -d`: print what would run instead of running it.
    pub dry_run: bool,
    /// Time each command may take ([`MD_TIMEOUT`] applies to metadata writes if longer).
    pub timeout: Duration,
    /// The node name the `.res` files use for this host, when it differs from the host
    /// name (drbdadm takes it from `__DRBD_NODE__`).
    pub node_name: Option<String>,
    /// The loaded module is DRBD 8.4: drbdadm hands over to its 8.4 tools, metadata is v08
    /// (one peer, no `--max-peers`).
    pub drbd84: bool,
}

impl Default for AdmConfig {
    fn default() -> AdmConfig {
        AdmConfig {
            config_file: None,
            dry_run: false,
            timeout: DEFAULT_TIMEOUT,
            node_name: None,
            drbd84: false,
        }
    }
}

impl AdmConfig {
    /// The system configuration, really run.
    pub fn system() -> AdmConfig {
        AdmConfig::default()
    }

    /// `drbdadm` with this configuration's general options.
    pub fn drbdadm(&self) -> Cmd {
        let mut c = Cmd::new("drbdadm").timeout(self.timeout);
        if let Some(n) = &self.node_name {
            c = c.env("__DRBD_NODE__", n.clone());
        }
        if self.dry_run {
            c = c.arg("-d");
        }
        if let Some(f) = &self.config_file {
            c = c.arg("-c").arg(f.display().to_string());
        }
        c
    }

    /// [`AdmConfig::drbdadm`] for commands that write metadata across a whole device (they
    /// get at least [`MD_TIMEOUT`]).
    pub fn drbdadm_md(&self) -> Cmd {
        self.drbdadm().timeout(self.timeout.max(MD_TIMEOUT))
    }
}

/// A DRBD command failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmError {
    #[error("'{cmd}' needs the DRBD kernel module, which is not loaded (modprobe drbd): {}", stderr.trim())]
    NoKernelModule { cmd: String, stderr: String },
    #[error(
        "'{cmd}' failed with exit status {status}: {}",
        summary(stderr, stdout)
    )]
    Failed {
        cmd: String,
        status: i32,
        stdout: String,
        stderr: String,
    },
    /// It could not be run at all (not installed, not startable, timed out).
    #[error("{0}")]
    NotRun(ExecError),
}

fn summary(stderr: &str, stdout: &str) -> String {
    let s = if stderr.trim().is_empty() {
        stdout
    } else {
        stderr
    };
    if s.trim().is_empty() {
        "no output".into()
    } else {
        s.trim().to_string()
    }
}

impl AdmError {
    /// The command as run.
    pub fn cmd(&self) -> String {
        match self {
            AdmError::NoKernelModule { cmd, .. } | AdmError::Failed { cmd, .. } => cmd.clone(),
            AdmError::NotRun(e) => match e {
                ExecError::NotFound { cmd, .. }
                | ExecError::Spawn { cmd, .. }
                | ExecError::Timeout { cmd, .. }
                | ExecError::Failed { cmd, .. }
                | ExecError::Ended { cmd, .. } => cmd.clone(),
            },
        }
    }

    pub fn stderr(&self) -> &str {
        match self {
            AdmError::NoKernelModule { stderr, .. } | AdmError::Failed { stderr, .. } => stderr,
            AdmError::NotRun(e) => e.stderr(),
        }
    }
}

/// Whether a failure says the kernel module is missing.
fn no_module(stderr: &str) -> bool {
    stderr.contains("Failed to modprobe drbd")
        || stderr.contains("Could not connect to 'drbd' generic netlink family")
}

impl From<ExecError> for AdmError {
    fn from(e: ExecError) -> AdmError {
        match e {
            ExecError::Failed {
                cmd,
                stderr,
                status,
                stdout,
            } => {
                if no_module(&stderr) {
                    AdmError::NoKernelModule { cmd, stderr }
                } else {
                    AdmError::Failed {
                        cmd,
                        status,
                        stdout,
                        stderr,
                    }
                }
            }
            other => AdmError::NotRun(other),
        }
    }
}

/// What a command printed (in dry run mode: the commands drbdadm would run).
pub type Printed = String;

fn run(runner: &dyn CommandRunner, cmd: Cmd) -> Result<Printed, AdmError> {
    Ok(runner.run(&cmd)?.stdout)
}

fn target(res: &str, vol: u32) -> String {
    format!("{res}/{vol}")
}

/// Writes fresh metadata for volume `vol` of `res` with room for `peer_slots` peers
/// (`--force`: no question, whatever is there). Uses DRBD's default activity log.
pub fn create_md(
    runner: &dyn CommandRunner,
    cfg: &AdmConfig,
    res: &str,
    vol: u32,
    peer_slots: u32,
) -> Result<Printed, AdmError> {
    create_md_striped(runner, cfg, res, vol, peer_slots, 1, 32)
}

/// [`create_md`] with an activity log of `al_stripes` stripes of `al_stripe_size_kib` KiB
/// (options left out when they are DRBD's defaults, 1 and 32).
pub fn create_md_striped(
    runner: &dyn CommandRunner,
    cfg: &AdmConfig,
    res: &str,
    vol: u32,
    peer_slots: u32,
    al_stripes: u32,
    al_stripe_size_kib: u32,
) -> Result<Printed, AdmError> {
    let mut c = cfg.drbdadm_md().arg("create-md").arg("--force");
    // v08 metadata has room for one peer, and drbdadm-84 refuses the option.
    if !cfg.drbd84 {
        c = c.arg(format!("--max-peers={peer_slots}"));
    }
    if (al_stripes, al_stripe_size_kib) != (1, 32) {
        c = c
            .arg(format!("--al-stripes={al_stripes}"))
            .arg(format!("--al-stripe-size-kB={al_stripe_size_kib}"));
    }
    run(runner, c.arg(target(res, vol)))
}

/// Brings `res` up: minors, peers, paths, attach, connect.
pub fn up(runner: &dyn CommandRunner, cfg: &AdmConfig, res: &str) -> Result<Printed, AdmError> {
    run(runner, cfg.drbdadm().arg("up").arg(res))
}

/// Makes the kernel's view of `res` match the configuration file (also brings it up).
pub fn adjust(runner: &dyn CommandRunner, cfg: &AdmConfig, res: &str) -> Result<Printed, AdmError> {
    run(runner, cfg.drbdadm().arg("adjust").arg(res))
}

/// Where drbd-utils keep the tools for DRBD 8.4 kernels (drbdadm-84, drbdsetup-84, ...).
pub const TOOLS_84: &str = "/usr/lib/drbd";

/// The drbdsetup commands that configure an 8.4 resource's network; a resource without a peer
/// has none to configure.
const NET_COMMANDS_84: &[&str] = &["connect", "net-options"];

/// [`adjust`] for the DRBD 8.4 resources drbdadm-84 cannot adjust itself:
/// - without a peer (`network: false`; not yet, or no longer), it refuses with "cannot
///   configure network without knowing my peer";
/// - with a diskless volume (`disk none`), it tries to attach a disk named "none".
///
/// So this asks it what adjust would do (`drbdadm -d adjust`) and runs that plan, leaving out
/// the network commands when there is no peer and the metadata and attach commands of disks
/// named "none". A connection left from a peer that went is taken down as the plan says.
/// Answers the commands it ran (in a dry run: would run).
pub fn adjust84_by_plan(
    runner: &dyn CommandRunner,
    cfg: &AdmConfig,
    res: &str,
    network: bool,
) -> Result<Printed, AdmError> {
    let dry = AdmConfig {
        dry_run: true,
        ..cfg.clone()
    };
    let planned = run(runner, dry.drbdadm().arg("adjust").arg(res))?;
    let bad_plan = |why: String| AdmError::Failed {
        cmd: format!("drbdadm -d adjust {res}"),
        status: 0,
        stdout: planned.clone(),
        stderr: why,
    };
    let mut ran = String::new();
    for line in planned.lines() {
        // drbdadm quotes words as a shell would (`--shared-secret=a\ b`).
        let argv = shell_words::split(line).map_err(|e| bad_plan(format!("{e}: {line}")))?;
        let Some((program, args)) = argv.split_first() else {
            continue;
        };
        let base = program.rsplit('/').next().unwrap_or(program);
        let sub = args.first().map(String::as_str).unwrap_or_default();
        let skip = match base {
            "drbdsetup-84" | "drbdsetup" => {
                (!network && NET_COMMANDS_84.contains(&sub))
                    || (sub == "attach" && args.get(2).is_some_and(|d| d == "none"))
            }
            // drbdmeta MINOR v08 DISK META-DISK COMMAND
            "drbdmeta" | "drbdmeta-84" => args.get(2).is_some_and(|d| d == "none"),
            _ => return Err(bad_plan(format!("unexpected command in its plan: {line}"))),
        };
        if skip {
            continue;
        }
        if !cfg.dry_run {
            let timeout = if base.starts_with("drbdmeta") {
                cfg.timeout.max(MD_TIMEOUT)
            } else {
                cfg.timeout
            };
            // The 8.4 tools live beside drbdadm-84, outside PATH; drbdadm names them bare
            // when drbdadm 9 handed over to drbdadm-84.
            let program = if program.contains('/') || !base.ends_with("-84") {
                program.clone()
            } else {
                format!("{TOOLS_84}/{base}")
            };
            run(
                runner,
                Cmd::new(program)
                    .args(args.iter().cloned())
                    .timeout(timeout),
            )?;
        }
        ran.push_str(line);
        ran.push('\n');
    }
    Ok(ran)
}

/// Takes `res` down (disconnect, detach, remove).
pub fn down(runner: &dyn CommandRunner, cfg: &AdmConfig, res: &str) -> Result<Printed, AdmError> {
    run(runner, cfg.drbdadm().arg("down").arg(res))
}

/// Removes the metadata of volume `vol` (the resource must be down).
pub fn wipe_md(
    runner: &dyn CommandRunner,
    cfg: &AdmConfig,
    res: &str,
    vol: u32,
) -> Result<Printed, AdmError> {
    // drbdmeta's `--force` goes after `--`: drbdadm 9 also takes it after the command, but
    // drbdadm-84 refuses it there ("unrecognized option").
    run(
        runner,
        cfg.drbdadm_md()
            .arg("--")
            .arg("--force")
            .arg("wipe-md")
            .arg(target(res, vol)),
    )
}

/// Declares a fresh volume in sync everywhere without a resync (all backing devices are new
/// and equally empty): a new current UUID with a cleared bitmap. Run on one node, with every
/// peer connected.
pub fn skip_initial_sync(
    runner: &dyn CommandRunner,
    cfg: &AdmConfig,
    res: &str,
    vol: u32,
) -> Result<Printed, AdmError> {
    run(
        runner,
        cfg.drbdadm()
            .arg("new-current-uuid")
            .arg("--clear-bitmap")
            .arg(target(res, vol)),
    )
}

/// Makes this node primary even though its data is not known to be up to date (the first
/// primary of a new resource, which then syncs to its peers).
pub fn primary_force(
    runner: &dyn CommandRunner,
    cfg: &AdmConfig,
    res: &str,
) -> Result<Printed, AdmError> {
    run(runner, cfg.drbdadm().arg("primary").arg("--force").arg(res))
}

/// Makes this node primary.
pub fn primary(
    runner: &dyn CommandRunner,
    cfg: &AdmConfig,
    res: &str,
) -> Result<Printed, AdmError> {
    run(runner, cfg.drbdadm().arg("primary").arg(res))
}

pub fn secondary(
    runner: &dyn CommandRunner,
    cfg: &AdmConfig,
    res: &str,
) -> Result<Printed, AdmError> {
    run(runner, cfg.drbdadm().arg("secondary").arg(res))
}

/// Suspends the I/O of `res` on this node (writes wait) until [`resume_io`]: a snapshot of
/// its backing volumes taken meanwhile is of the same moment on every node.
pub fn suspend_io(
    runner: &dyn CommandRunner,
    cfg: &AdmConfig,
    res: &str,
) -> Result<Printed, AdmError> {
    run(runner, cfg.drbdadm().arg("suspend-io").arg(res))
}

/// Lets the I/O of `res` run again after [`suspend_io`].
pub fn resume_io(
    runner: &dyn CommandRunner,
    cfg: &AdmConfig,
    res: &str,
) -> Result<Printed, AdmError> {
    run(runner, cfg.drbdadm().arg("resume-io").arg(res))
}

/// Makes volume `vol` use the size its backing devices now have (after they grew, on every
/// diskful node). The new part is resynced.
pub fn resize(
    runner: &dyn CommandRunner,
    cfg: &AdmConfig,
    res: &str,
    vol: u32,
) -> Result<Printed, AdmError> {
    run(runner, cfg.drbdadm_md().arg("resize").arg(target(res, vol)))
}

/// [`resize`] without resyncing the new part (`--assume-clean`): for backing devices whose
/// new space reads the same everywhere (zeroes of thin or fresh storage).
pub fn resize_assume_clean(
    runner: &dyn CommandRunner,
    cfg: &AdmConfig,
    res: &str,
    vol: u32,
) -> Result<Printed, AdmError> {
    run(
        runner,
        cfg.drbdadm_md()
            .arg("resize")
            .arg("--assume-clean")
            .arg(target(res, vol)),
    )
}

/// Parses a configuration file and every resource in it (`drbdadm sh-nop`), whatever host this
/// is: a check before [`adjust`] that needs no kernel module.
pub fn check_config(runner: &dyn CommandRunner, cfg: &AdmConfig) -> Result<(), AdmError> {
    let mut c = cfg.clone();
    c.dry_run = false;
    run(runner, c.drbdadm().arg("sh-nop")).map(|_| ())
}

/// Metadata formats [`metadata_format`] recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MdFormat {
    /// DRBD 9.
    V09,
    /// DRBD 8.4; DRBD 9's `create-md` converts it.
    V08,
}

impl MdFormat {
    fn as_str(self) -> &'static str {
        match self {
            MdFormat::V09 => "v09",
            MdFormat::V08 => "v08",
        }
    }
}

/// The `drbdmeta` query for internal metadata of `format` on `dev`: `dstate` prints the
/// recorded disk state and exits 0 when valid metadata is there; without any it says
/// "No valid meta data found" and exits 1 (measured with drbdmeta 9.22 on loop devices: empty,
/// after `create-md`, after `wipe-md`, and with v08 metadata, which a v09 query does not see).
/// drbdmeta wants the minor to check that the device is not in use by the kernel.
fn dstate_cmd(cfg: &AdmConfig, dev: &str, minor: u32, format: MdFormat) -> Cmd {
    Cmd::new("drbdmeta")
        .timeout(cfg.timeout)
        .arg(minor.to_string())
        .arg(format.as_str())
        .arg(dev)
        .arg("internal")
        .arg("dstate")
}

fn probe(
    runner: &dyn CommandRunner,
    cfg: &AdmConfig,
    dev: &str,
    minor: u32,
    format: MdFormat,
) -> Result<bool, AdmError> {
    let cmd = dstate_cmd(cfg, dev, minor, format);
    let out = runner.run_any(&cmd)?;
    if out.status == 0 {
        return Ok(true);
    }
    if out.status == 1 && out.stderr.contains("No valid meta data found") {
        return Ok(false);
    }
    Err(AdmError::Failed {
        cmd: cmd.to_string(),
        status: out.status,
        stdout: out.stdout,
        stderr: out.stderr,
    })
}

/// Whether backing device `dev` carries internal metadata of the loaded DRBD (v09, or v08
/// for DRBD 8.4). `minor` is the DRBD minor
/// of its volume. Other failures (no such device; the minor attached in the kernel, when
/// drbdmeta answers "Device '…' is configured!") are errors: ask only about devices not in use.
pub fn has_metadata(
    runner: &dyn CommandRunner,
    cfg: &AdmConfig,
    dev: &str,
    minor: u32,
) -> Result<bool, AdmError> {
    let format = if cfg.drbd84 {
        MdFormat::V08
    } else {
        MdFormat::V09
    };
    probe(runner, cfg, dev, minor, format)
}

/// Which DRBD metadata `dev` carries, if any (v09 is asked first).
pub fn metadata_format(
    runner: &dyn CommandRunner,
    cfg: &AdmConfig,
    dev: &str,
    minor: u32,
) -> Result<Option<MdFormat>, AdmError> {
    for f in [MdFormat::V09, MdFormat::V08] {
        if probe(runner, cfg, dev, minor, f)? {
            return Ok(Some(f));
        }
    }
    Ok(None)
}

/// The command of the long-running event stream: every state change of every resource, with
/// full state and statistics on each line (`--full` implies `--statistics`). DRBD sends no
/// event when only statistics change, so resync progress (`done`) moves only with other
/// changes; [`status`] (a `--now` snapshot) refreshes it while a resync runs.
///
/// DRBD 8.4's drbdsetup has no `--full` (it answers "unrecognized option"); with
/// `--statistics` its lines carry `out-of-sync`, from which progress is derived (see
/// [`crate::events::PeerDeviceState::resync_total_kib`]).
pub fn events2_command(cfg: &AdmConfig) -> Cmd {
    Cmd::new("drbdsetup")
        .arg("events2")
        .arg(state_flag(cfg))
        .arg("all")
}

/// `--full` for DRBD 9, `--statistics` for 8.4 (measured with DRBD 8.4.11, drbd-utils 9.22).
fn state_flag(cfg: &AdmConfig) -> &'static str {
    if cfg.drbd84 {
        "--statistics"
    } else {
        "--full"
    }
}

/// The current state of `res` from `drbdsetup events2 --now --full RES`; `None` when the
/// kernel does not know the resource.
pub fn status(
    runner: &dyn CommandRunner,
    cfg: &AdmConfig,
    res: &str,
) -> Result<Option<ResourceState>, AdmError> {
    let cmd = Cmd::new("drbdsetup")
        .timeout(cfg.timeout)
        .arg("events2")
        .arg("--now")
        .arg(state_flag(cfg))
        .arg(res);
    let out = match runner.run(&cmd) {
        Ok(out) => out,
        // drbdsetup's messages for a resource the kernel does not know (from its strings; not
        // observable here without the module). An empty answer means the same.
        Err(ExecError::Failed { stderr, .. })
            if stderr.contains("No such resource") || stderr.contains("Unknown resource") =>
        {
            return Ok(None)
        }
        Err(e) => return Err(e.into()),
    };
    let mut state = events::State::new();
    for line in out.stdout.lines() {
        state.apply_line(line);
    }
    Ok(state.resource(res).cloned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_exec::{Output, ScriptedRunner};

    fn conf() -> AdmConfig {
        AdmConfig {
            config_file: Some("/tmp/t/drbd.conf".into()),
            ..Default::default()
        }
    }

    #[test]
    fn argv_sequences() {
        let r = ScriptedRunner::new();
        let c = conf();
        let mut dry = conf();
        dry.dry_run = true;
        let ok = || Output::ok("");
        let pre = ["drbdadm", "-c", "/tmp/t/drbd.conf"];
        let with = |rest: &[&'static str]| -> Vec<&'static str> {
            pre.iter().copied().chain(rest.iter().copied()).collect()
        };
        r.expect(
            &with(&["create-md", "--force", "--max-peers=7", "r0/0"]),
            ok(),
        )
        .expect(
            &with(&[
                "create-md",
                "--force",
                "--max-peers=3",
                "--al-stripes=2",
                "--al-stripe-size-kB=64",
                "r0/1",
            ]),
            ok(),
        )
        .expect(&with(&["up", "r0"]), ok())
        .expect(&with(&["adjust", "r0"]), ok())
        .expect(&with(&["new-current-uuid", "--clear-bitmap", "r0/0"]), ok())
        .expect(&with(&["primary", "--force", "r0"]), ok())
        .expect(&with(&["primary", "r0"]), ok())
        .expect(&with(&["secondary", "r0"]), ok())
        .expect(&with(&["resize", "r0/0"]), ok())
        .expect(&with(&["resize", "--assume-clean", "r0/1"]), ok())
        .expect(&with(&["down", "r0"]), ok())
        .expect(&with(&["--", "--force", "wipe-md", "r0/0"]), ok())
        .expect(
            &["drbdadm", "-d", "-c", "/tmp/t/drbd.conf", "up", "r0"],
            ok(),
        )
        .expect(&["drbdadm", "down", "r0"], ok())
        .expect(&with(&["sh-nop"]), ok());
        create_md(&r, &c, "r0", 0, 7).unwrap();
        create_md_striped(&r, &c, "r0", 1, 3, 2, 64).unwrap();
        up(&r, &c, "r0").unwrap();
        adjust(&r, &c, "r0").unwrap();
        skip_initial_sync(&r, &c, "r0", 0).unwrap();
        primary_force(&r, &c, "r0").unwrap();
        primary(&r, &c, "r0").unwrap();
        secondary(&r, &c, "r0").unwrap();
        resize(&r, &c, "r0", 0).unwrap();
        resize_assume_clean(&r, &c, "r0", 1).unwrap();
        down(&r, &c, "r0").unwrap();
        wipe_md(&r, &c, "r0", 0).unwrap();
        up(&r, &dry, "r0").unwrap();
        down(&r, &AdmConfig::system(), "r0").unwrap();
        check_config(&r, &dry).unwrap();
        assert!(r.remaining().is_empty(), "{:?}", r.remaining());
    }

    #[test]
    fn timeouts() {
        let c = AdmConfig::default();
        assert_eq!(c.drbdadm().timeout, DEFAULT_TIMEOUT);
        let captured = std::sync::Mutex::new(Vec::new());
        struct Spy<'a>(&'a std::sync::Mutex<Vec<Duration>>);
        impl CommandRunner for Spy<'_> {
            fn run_any(&self, cmd: &Cmd) -> Result<Output, ExecError> {
                self.0.lock().unwrap().push(cmd.timeout);
                Ok(Output::ok(""))
            }
            fn available(&self, _: &str) -> bool {
                true
            }
        }
        create_md(&Spy(&captured), &c, "r0", 0, 7).unwrap();
        up(&Spy(&captured), &c, "r0").unwrap();
        assert_eq!(*captured.lock().unwrap(), vec![MD_TIMEOUT, DEFAULT_TIMEOUT]);
    }

    #[test]
    fn errors_carry_command_and_stderr() {
        let r = ScriptedRunner::new();
        r.expect(
            &["drbdadm", "up", "r0"],
            Output::failed(
                20,
                "sh: 1: /sbin/modprobe: not found\nFailed to modprobe drbd (No such file or directory)\nCommand 'drbdsetup new-resource r0 0' terminated with exit code 20\n",
            ),
        )
        .expect(
            &["drbdadm", "adjust", "r0"],
            Output::failed(10, "/etc/drbd.conf: in resource r0, on alpha:\n\tIP 10.0.0.1 not found on this host.\n"),
        );
        let c = AdmConfig::system();
        let e = up(&r, &c, "r0").unwrap_err();
        assert!(matches!(e, AdmError::NoKernelModule { .. }), "{e:?}");
        assert_eq!(e.cmd(), "drbdadm up r0");
        assert!(e.to_string().contains("modprobe drbd"));
        let e = adjust(&r, &c, "r0").unwrap_err();
        match &e {
            AdmError::Failed {
                cmd,
                status,
                stderr,
                ..
            } => {
                assert_eq!(cmd, "drbdadm adjust r0");
                assert_eq!(*status, 10);
                assert!(stderr.contains("IP 10.0.0.1 not found"));
            }
            other => panic!("{other:?}"),
        }
        assert!(e.stderr().contains("not found on this host"));
        // Nothing scripted: the scripted runner answers status 127.
        let e = down(&r, &c, "r0").unwrap_err();
        assert_eq!(e.cmd(), "drbdadm down r0");
    }

    #[test]
    fn metadata_queries() {
        let r = ScriptedRunner::new();
        let c = AdmConfig::system();
        let q = |f: &'static str| ["drbdmeta", "1000", f, "/dev/loop3", "internal", "dstate"];
        r.expect(&q("v09"), Output::ok("Inconsistent\n"))
            .expect(&q("v09"), Output::failed(1, "No valid meta data found\n"))
            .expect(
                &q("v09"),
                Output::failed(20, "open(/dev/loop3) failed: No such file or directory\n"),
            )
            .expect(&q("v09"), Output::failed(1, "No valid meta data found\n"))
            .expect(&q("v08"), Output::ok("UpToDate\n"))
            .expect(&q("v09"), Output::failed(1, "No valid meta data found\n"))
            .expect(&q("v08"), Output::failed(1, "No valid meta data found\n"));
        assert!(has_metadata(&r, &c, "/dev/loop3", 1000).unwrap());
        assert!(!has_metadata(&r, &c, "/dev/loop3", 1000).unwrap());
        let e = has_metadata(&r, &c, "/dev/loop3", 1000).unwrap_err();
        assert!(e.stderr().contains("No such file"), "{e}");
        assert_eq!(
            metadata_format(&r, &c, "/dev/loop3", 1000).unwrap(),
            Some(MdFormat::V08)
        );
        assert_eq!(metadata_format(&r, &c, "/dev/loop3", 1000).unwrap(), None);
        assert!(r.remaining().is_empty());
    }

    #[test]
    fn status_reads_a_snapshot() {
        let r = ScriptedRunner::new();
        let c = AdmConfig::system();
        let argv = ["drbdsetup", "events2", "--now", "--full", "r0"];
        r.expect(
            &argv,
            Output::ok(
                "exists resource name:r0 role:Primary suspended:no may_promote:no promotion_score:10102 write-ordering:flush\n\
                 exists device name:r0 volume:0 minor:1000 disk:UpToDate client:no quorum:yes size:102400 read:0 written:0 al-writes:0 bm-writes:0 upper-pending:0 lower-pending:0 al-suspended:no blocked:no\n\
                 exists connection name:r0 peer-node-id:1 conn-name:beta connection:Connected role:Secondary congested:no ap-in-flight:0 rs-in-flight:0\n\
                 exists peer-device name:r0 peer-node-id:1 conn-name:beta volume:0 replication:SyncSource peer-disk:Inconsistent peer-client:no resync-suspended:no received:0 sent:40960 out-of-sync:61440 pending:0 unacked:0 done:40.00 eta:3\n\
                 exists -\n",
            ),
        )
        .expect(&argv, Output::failed(10, "r0: No such resource\n"))
        .expect(
            &argv,
            Output::failed(20, "Failed to modprobe drbd (No such file or directory)\n"),
        );
        let s = status(&r, &c, "r0").unwrap().unwrap();
        assert_eq!(s.role, Some(events::Role::Primary));
        assert_eq!(s.resync_done(0), Some(40.0));
        assert_eq!(status(&r, &c, "r0").unwrap(), None);
        assert!(matches!(
            status(&r, &c, "r0"),
            Err(AdmError::NoKernelModule { .. })
        ));
        assert_eq!(
            events2_command(&AdmConfig::default()).argv(),
            vec!["drbdsetup", "events2", "--full", "all"]
        );
        let v84 = AdmConfig {
            drbd84: true,
            ..Default::default()
        };
        assert_eq!(
            events2_command(&v84).argv(),
            vec!["drbdsetup", "events2", "--statistics", "all"]
        );
    }
}

/// Metadata queries and writes with the real drbd-utils on loop devices (needs root).
#[cfg(test)]
mod real_tools {
    use super::*;
    use crate::config::Local;
    use crate::res::render;
    use crate::testutil::{self, ConfDir, ForgetMinor, Loop};
    use strata_exec::RealRunner;

    #[test]
    fn metadata_lifecycle_on_a_loop_device() {
        strata_exec::needs!(
            needs::root(),
            needs::loop_devices(),
            needs::tool("drbdmeta", "drbd-utils")
        );
        let dev = Loop::new(64 * 1024);
        let minor = 1995;
        let _forget = ForgetMinor(minor);
        let run = RealRunner;
        let sys = AdmConfig::system();
        assert!(!has_metadata(&run, &sys, &dev.dev, minor).unwrap());
        assert_eq!(metadata_format(&run, &sys, &dev.dev, minor).unwrap(), None);

        // create-md through drbdadm, for real: a configuration in which this host (by its
        // `uname -n`) owns the loop device. No kernel module is needed for it.
        let me = testutil::local_hostname();
        let mut r = testutil::two_volume_resource();
        r.name = "strata-md".into();
        r.volumes.truncate(1);
        r.volumes[0].minor = minor;
        r.hosts[0].name = me.clone();
        let conf = ConfDir::new();
        conf.write(
            &r.name,
            &render(
                &r,
                &Local {
                    node: me,
                    disks: [(0, dev.dev.clone())].into(),
                },
            )
            .unwrap(),
        );
        let cfg = AdmConfig {
            config_file: Some(conf.conf()),
            ..Default::default()
        };
        create_md(&run, &cfg, &r.name, 0, 3).unwrap();
        assert!(has_metadata(&run, &sys, &dev.dev, minor).unwrap());
        assert_eq!(
            metadata_format(&run, &sys, &dev.dev, minor).unwrap(),
            Some(MdFormat::V09)
        );
        // Creating again over existing metadata does not ask (`--force`).
        create_md(&run, &cfg, &r.name, 0, 3).unwrap();

        wipe_md(&run, &cfg, &r.name, 0).unwrap();
        assert!(!has_metadata(&run, &sys, &dev.dev, minor).unwrap());

        // DRBD 8.4 metadata is not DRBD 9 metadata, but it is metadata.
        run.run(
            &Cmd::new("drbdmeta")
                .arg("--force")
                .arg(minor.to_string())
                .arg("v08")
                .arg(&dev.dev)
                .arg("internal")
                .arg("create-md"),
        )
        .unwrap();
        assert!(!has_metadata(&run, &sys, &dev.dev, minor).unwrap());
        assert_eq!(
            metadata_format(&run, &sys, &dev.dev, minor).unwrap(),
            Some(MdFormat::V08)
        );
    }

    #[test]
    fn asking_about_a_missing_device_is_an_error() {
        // drbdmeta takes a lock file under /var/lock: root only.
        strata_exec::needs!(needs::root(), needs::tool("drbdmeta", "drbd-utils"));
        let err = has_metadata(
            &RealRunner,
            &AdmConfig::system(),
            "/dev/strata-no-such-dev",
            1996,
        )
        .unwrap_err();
        match &err {
            AdmError::Failed { status, stderr, .. } => {
                assert_eq!(*status, 20);
                assert!(stderr.contains("No such file or directory"), "{stderr}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn status_without_the_module() {
        strata_exec::needs!(needs::tool("drbdsetup", "drbd-utils"));
        if std::path::Path::new(crate::version::PROC_DRBD).exists() {
            eprintln!("skipped: a DRBD module is loaded");
            return;
        }
        let err = status(&RealRunner, &AdmConfig::system(), "strata-none").unwrap_err();
        assert!(matches!(err, AdmError::NoKernelModule { .. }), "{err:?}");
    }
}
