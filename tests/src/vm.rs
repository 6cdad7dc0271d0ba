//! Virtual machines for what the host kernel cannot do (device-mapper, DRBD): guests booted
//! with `tests/vmlab/boot.sh` from the image `tests/vmlab/build-image.sh` builds out of
//! Debian packages (a Debian kernel and a busybox initramfs with lvm2, thin-provisioning-tools
//! and drbd-utils). A test drives each guest over its serial console: [`Vm::run`] writes a
//! command and reads up to a numbered end marker that carries the exit status.
//!
//! The image is not built here: `scripts/test-all.sh` builds it (cached) before the tests,
//! and a missing image fails the test with what to run. Guests are stopped by PID when their
//! [`Vm`] drops.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a guest may take from qemu's start to its ready marker (software emulation
/// boots in 8-14 s when the machine is idle; a loaded CI machine is slower).
pub const BOOT_LIMIT: Duration = Duration::from_secs(180);

/// The directory of the built image.
pub fn image_dir() -> PathBuf {
    std::env::var_os("STRATA_VMLAB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/strata-vmlab"))
}

/// `tests/vmlab` of the source tree.
pub fn vmlab_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("vmlab")
}

/// The VM image has been built (its kernel, initramfs and settings).
pub fn image() -> strata_exec::needs::Need {
    let dir = image_dir();
    let files: Vec<PathBuf> = ["env.sh", "vmlinuz", "initramfs.cpio.gz"]
        .iter()
        .map(|f| dir.join(f))
        .collect();
    strata_exec::needs::files(
        &files,
        &format!(
            "the VM image: run tests/vmlab/build-image.sh {}; scripts/test-all.sh does",
            dir.display()
        ),
    )
}

/// Panics with what to do when the image has not been built.
pub fn require_image() {
    if let Err(why) = image() {
        panic!("the VM image is missing, {why}");
    }
}

/// How to boot one guest.
#[derive(Debug, Clone, Default)]
pub struct VmSpec {
    /// Host name of the guest (DRBD's `on NAME` must match it).
    pub name: String,
    /// Address of the data NIC, e.g. `10.99.0.1/24`.
    pub addr: Option<String>,
    /// The data link: listen on this loopback port (the first guest of a pair)...
    pub listen: Option<u16>,
    /// ... or connect to the guest listening there.
    pub connect: Option<u16>,
    /// Host port forwarded to the guest's port 3366 (its satellite).
    pub forward: Option<u16>,
    /// Host port forwarded to the guest's port 3370 (a controller's REST API).
    pub forward_rest: Option<u16>,
    /// Memory in MiB (default 1024).
    pub mem: Option<u32>,
    /// A raw disk image (`/dev/vda` in the guest), created sparse with `disk_size` if missing.
    pub disk: Option<PathBuf>,
    pub disk_size: Option<String>,
    /// gzip'ed newc cpio archives laid over the image (files, `etc/vmlab.d/` start hooks).
    pub extras: Vec<PathBuf>,
}

/// A running guest.
pub struct Vm {
    pub name: String,
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    /// Everything the console printed, for failure messages.
    log: Arc<Mutex<String>>,
    next: u64,
}

impl Vm {
    /// Boots a guest and waits for its ready marker.
    pub fn boot(spec: &VmSpec) -> Vm {
        require_image();
        let mut cmd = Command::new(vmlab_dir().join("boot.sh"));
        cmd.arg("--batch")
            .arg("--name")
            .arg(&spec.name)
            .arg("--dir")
            .arg(image_dir());
        if let Some(a) = &spec.addr {
            cmd.arg("--addr").arg(a);
        }
        if let Some(p) = spec.listen {
            cmd.arg("--listen").arg(p.to_string());
        }
        if let Some(p) = spec.connect {
            cmd.arg("--connect").arg(p.to_string());
        }
        if let Some(p) = spec.forward {
            cmd.arg("--fwd").arg(p.to_string());
        }
        if let Some(p) = spec.forward_rest {
            cmd.arg("--fwd-rest").arg(p.to_string());
        }
        if let Some(m) = spec.mem {
            cmd.arg("--mem").arg(m.to_string());
        }
        if let Some(d) = &spec.disk {
            let size = spec.disk_size.as_deref().unwrap_or("1G");
            cmd.arg("--disk").arg(format!("{}:{size}", d.display()));
        }
        for e in &spec.extras {
            cmd.arg("--extra").arg(e);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tests/vmlab/boot.sh starts");
        let stdin = child.stdin.take().expect("console input");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, lines) = channel();
        let out = child.stdout.take().expect("console output");
        let err = child.stderr.take().expect("qemu errors");
        for (stream, tx, log) in [
            (
                Box::new(out) as Box<dyn std::io::Read + Send>,
                tx.clone(),
                log.clone(),
            ),
            (Box::new(err), tx, log.clone()),
        ] {
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    let line = line.trim_end_matches('\r').to_string();
                    if let Ok(mut l) = log.lock() {
                        l.push_str(&line);
                        l.push('\n');
                    }
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let mut vm = Vm {
            name: spec.name.clone(),
            child,
            stdin,
            lines,
            log,
            next: 0,
        };
        vm.wait_for(|l| l == "VMLAB-READY", BOOT_LIMIT)
            .unwrap_or_else(|why| panic!("guest {} did not boot: {why}", vm.name));
        // The console shell greets first; one empty command takes the greeting away.
        vm.sh("true");
        vm
    }

    /// What the console printed so far.
    pub fn console(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    fn wait_for(&mut self, want: impl Fn(&str) -> bool, limit: Duration) -> Result<(), String> {
        let end = Instant::now() + limit;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if want(&l) => return Ok(()),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "nothing after {limit:?}; console:\n{}",
                        self.console()
                    ))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(format!("qemu ended; console:\n{}", self.console()))
                }
            }
        }
    }

    /// Runs `command` in the guest's shell (stdout and stderr together) and answers its exit
    /// status and output, waiting at most `limit`.
    pub fn run_for(&mut self, command: &str, limit: Duration) -> (i32, String) {
        self.next += 1;
        let marker = format!("@@END-{}-{} ", self.name, self.next);
        // The marker is split in the command so that an echoing console cannot fake it.
        let line = format!(
            "{{ {command}\n}} </dev/null 2>&1; echo \"@@END-{}-\"'{} '\"$?\"\n",
            self.name, self.next
        );
        self.stdin
            .write_all(line.as_bytes())
            .and_then(|_| self.stdin.flush())
            .unwrap_or_else(|e| panic!("console of {} closed: {e}", self.name));
        let end = Instant::now() + limit;
        let mut out = String::new();
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    if let Some(pos) = l.find(&marker) {
                        out.push_str(&l[..pos]);
                        let status = l[pos + marker.len()..].trim().parse().unwrap_or(-1);
                        return (status, out);
                    }
                    out.push_str(&l);
                    out.push('\n');
                }
                Err(_) => panic!(
                    "{}: `{command}` did not finish within {limit:?}; output so far:\n{out}\nconsole:\n{}",
                    self.name,
                    self.console()
                ),
            }
        }
    }

    /// [`Vm::run_for`] with a minute's limit.
    pub fn run(&mut self, command: &str) -> (i32, String) {
        self.run_for(command, Duration::from_secs(60))
    }

    /// Runs `command`, which must succeed; answers its output.
    pub fn sh(&mut self, command: &str) -> String {
        let (status, out) = self.run(command);
        assert_eq!(
            status, 0,
            "{}: `{command}` failed with {status}:\n{out}",
            self.name
        );
        out
    }
}

impl Vm {
    /// Powers the guest off at once (qemu ends, as when a machine loses power).
    pub fn power_off(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The HA overlay `build-image.sh` makes: corosync, pacemaker, the resource agents.
pub fn ha_overlay_path() -> PathBuf {
    image_dir().join("ha.cpio.gz")
}

/// The image and its HA overlay are built.
pub fn ha_overlay() -> strata_exec::needs::Need {
    image()?;
    if ha_overlay_path().is_file() {
        Ok(())
    } else {
        Err(
            "the VM image's HA overlay: run tests/vmlab/build-image.sh (scripts/test-all.sh does)"
                .into(),
        )
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        // boot.sh execs qemu: the child's PID is qemu's.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A gzip'ed newc cpio archive of `files` (path in the guest, content, mode), to lay over the
/// image with [`VmSpec::extras`]. Directories are created as needed.
pub fn overlay(dir: &Path, name: &str, files: &[(&str, &[u8], u32)]) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let root = dir.join(format!("{name}.root"));
    let _ = std::fs::remove_dir_all(&root);
    for (path, content, mode) in files {
        let p = root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().expect("a parent directory")).expect("overlay dir");
        std::fs::write(&p, content).expect("overlay file");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode)).expect("overlay mode");
    }
    let archive = dir.join(format!("{name}.cpio.gz"));
    let status = Command::new("sh")
        .arg("-c")
        .arg("cd \"$1\" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 | gzip -1 > \"$2\"")
        .arg("sh")
        .arg(&root)
        .arg(&archive)
        .status()
        .expect("cpio runs");
    assert!(status.success(), "cannot build {}", archive.display());
    archive
}

/// Where a guest's satellite keeps its state, and its log.
pub const GUEST_STATE_DIR: &str = "/var/lib/linstor-satellite";
/// The join token the guests' satellites are started with (test images only; the start
/// script below names it too).
pub const GUEST_JOIN_TOKEN: &str = "strata-test-guest-join-token";
pub const GUEST_SATELLITE_LOG: &str = "/var/log/linstor-satellite.log";

/// The start script of the guest's satellite: in the background, its own session, output in
/// the log; the PID in /run/linstor-satellite.pid.
const SATELLITE_START: &str = "#!/bin/sh
# Starts linstor-satellite in the background (port 3366 on every address).
mkdir -p /var/lib/linstor-satellite /var/log
RUST_LOG=${RUST_LOG:-info} setsid linstor-satellite --state-dir /var/lib/linstor-satellite \\
    --join-token strata-test-guest-join-token \\
    </dev/null >>/var/log/linstor-satellite.log 2>&1 &
echo $! >/run/linstor-satellite.pid
";

/// `name` from the build, stripped (debug builds are tens of MB; a guest keeps its
/// initramfs in memory).
pub fn stripped(dir: &Path, name: &str) -> Vec<u8> {
    let out_path = dir.join(format!("{name}.stripped"));
    let out = Command::new("strip")
        .arg("-o")
        .arg(&out_path)
        .arg(crate::bin(name))
        .output()
        .expect("strip runs (binutils)");
    assert!(
        out.status.success(),
        "strip failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(&out_path).expect("stripped binary")
}

/// An archive that puts our satellite into a guest and starts it at boot
/// (`/usr/local/bin/linstor-satellite`, `/usr/local/bin/strata-satellite-start`, the hook
/// `/etc/vmlab.d/50-satellite`), with the Docker volume plugin beside it
/// (`/usr/local/bin/linstor-docker-volume`, not started) and the Proxmox plugin's
/// `strata-pve` (`/usr/local/bin/strata-pve`).
pub fn satellite_overlay(dir: &Path) -> PathBuf {
    let binary = stripped(dir, "linstor-satellite");
    let plugin = stripped(dir, "linstor-docker-volume");
    let pve = stripped(dir, "strata-pve");
    overlay(
        dir,
        "satellite",
        &[
            ("usr/local/bin/linstor-satellite", &binary, 0o755),
            ("usr/local/bin/linstor-docker-volume", &plugin, 0o755),
            ("usr/local/bin/strata-pve", &pve, 0o755),
            (
                "usr/local/bin/strata-satellite-start",
                SATELLITE_START.as_bytes(),
                0o755,
            ),
            (
                "etc/vmlab.d/50-satellite",
                b"#!/bin/sh\nexec /usr/local/bin/strata-satellite-start\n",
                0o755,
            ),
        ],
    )
}

impl Vm {
    /// Waits until the guest's satellite listens on port 3366 (0x0D26 in /proc/net/tcp).
    pub fn wait_satellite(&mut self) {
        let (status, out) = self.run_for(
            "i=0; until grep -q ':0D26 00000000:0000 0A' /proc/net/tcp; do \
               i=$((i+1)); [ $i -lt 600 ] || exit 1; sleep 0.1; done",
            Duration::from_secs(90),
        );
        if status != 0 {
            let log = self.sh(&format!("cat {GUEST_SATELLITE_LOG}"));
            panic!("{}: the satellite does not listen: {out}\n{log}", self.name);
        }
    }

    /// Stops the guest's satellite (SIGTERM, then waits for it to end).
    pub fn stop_satellite(&mut self) {
        self.sh(
            "pid=$(cat /run/linstor-satellite.pid); kill $pid; i=0; \
             while kill -0 $pid 2>/dev/null; do i=$((i+1)); [ $i -lt 300 ] || exit 1; sleep 0.1; done",
        );
    }

    /// Starts the guest's satellite again and waits until it listens.
    pub fn start_satellite(&mut self) {
        self.sh("/usr/local/bin/strata-satellite-start");
        self.wait_satellite();
    }

    /// The satellite's log in the guest.
    pub fn satellite_log(&mut self) -> String {
        self.sh(&format!("cat {GUEST_SATELLITE_LOG}"))
    }
}

/// A [`strata_exec::CommandRunner`] that runs commands in a guest over its console, so that
/// our own code (a storage provider, say) drives the guest's real tools. Commands run one at
/// a time, with `LC_ALL=C` and the guest's PATH; stdout and stderr come back apart.
pub struct GuestRunner {
    vm: Mutex<Vm>,
}

/// `word` quoted for the guest's shell.
fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', "'\\''"))
}

impl GuestRunner {
    pub fn new(vm: Vm) -> GuestRunner {
        GuestRunner { vm: Mutex::new(vm) }
    }

    /// Runs a shell command line in the guest, which must succeed; answers its output.
    pub fn sh(&self, command: &str) -> String {
        self.lock().sh(command)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vm> {
        self.vm.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl strata_exec::CommandRunner for GuestRunner {
    fn run_any(
        &self,
        cmd: &strata_exec::Cmd,
    ) -> Result<strata_exec::Output, strata_exec::ExecError> {
        let line: Vec<String> = cmd.argv().iter().map(|w| shell_quote(w)).collect();
        let split = "@@STDERR@@";
        let (status, out) = self.lock().run_for(
            &format!(
                "LC_ALL=C {} >/run/guest-runner.out 2>/run/guest-runner.err; st=$?; \
                 cat /run/guest-runner.out; echo {split}; cat /run/guest-runner.err; (exit $st)",
                line.join(" ")
            ),
            Duration::from_secs(300),
        );
        let (stdout, stderr) = out.split_once(&format!("{split}\n")).unwrap_or((&out, ""));
        Ok(strata_exec::Output {
            status,
            stdout: stdout.to_string(),
            stderr: stderr.to_string(),
        })
    }

    fn available(&self, program: &str) -> bool {
        self.lock()
            .run(&format!("command -v {}", shell_quote(program)))
            .0
            == 0
    }
}

impl Vm {
    /// Runs `command` with `sh -c` in the guest, `stdin` on its standard input (carried over
    /// the console in base64); answers its exit status, stdout and stderr apart. For what
    /// stands in for ssh to a guest ([`GuestSsh`]).
    pub fn exec(&mut self, command: &str, stdin: &[u8]) -> (i32, Vec<u8>, Vec<u8>) {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        self.sh(": >/run/exec.in.b64");
        let encoded = b64.encode(stdin);
        for chunk in encoded.as_bytes().chunks(1024) {
            let chunk = std::str::from_utf8(chunk).expect("base64 is ASCII");
            self.sh(&format!("printf %s '{chunk}' >>/run/exec.in.b64"));
        }
        let (status, out) = self.run_for(
            &format!(
                "base64 -d /run/exec.in.b64 >/run/exec.in && cd / && \
                 sh -c {} </run/exec.in >/run/exec.out 2>/run/exec.err",
                shell_quote(command)
            ),
            Duration::from_secs(300),
        );
        // Anything the shell itself said (it cannot start the command, say) is stderr.
        let mut fetch = |file: &str| -> Vec<u8> {
            let text = self.sh(&format!("base64 {file} | sed 's/^/B64:/'"));
            let joined: String = text
                .lines()
                .filter_map(|l| l.strip_prefix("B64:"))
                .map(str::trim)
                .collect();
            b64.decode(joined)
                .unwrap_or_else(|e| panic!("{file} from the guest: {e}"))
        };
        let stdout = fetch("/run/exec.out");
        let mut stderr = fetch("/run/exec.err");
        stderr.extend_from_slice(out.as_bytes());
        (status, stdout, stderr)
    }
}

/// Stands in for ssh to guests: programs under test run `guest-ssh` (a binary of this
/// crate) as their `ssh`, which hands the command and its stdin over a Unix socket to this
/// relay, which runs it in the named guest with [`Vm::exec`] and sends back what it printed
/// and its exit status. `bash` is run as `sh` (the guests have busybox only). Guests are
/// shared with the test (lock one to use its console); the relay ends when dropped.
pub struct GuestSsh {
    /// The socket (`STRATA_GUEST_SSH` of the programs that use it).
    pub socket: PathBuf,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What `guest-ssh` sends: this header line, then `stdin_len` bytes.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct GuestSshRequest {
    pub host: String,
    pub command: String,
    pub stdin_len: usize,
}

/// What the relay answers: this header line, then the stdout and stderr bytes.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct GuestSshReply {
    pub status: i32,
    pub stdout_len: usize,
    pub stderr_len: usize,
}

impl GuestSsh {
    /// A relay on a socket in `dir` for `guests` (reached by their names).
    pub fn serve(dir: &Path, guests: Vec<Arc<Mutex<Vm>>>) -> GuestSsh {
        use std::os::unix::net::UnixListener;
        let socket = dir.join("guest-ssh.sock");
        let _ = std::fs::remove_file(&socket);
        let listener = UnixListener::bind(&socket).expect("guest-ssh socket");
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopped.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                if let Err(e) = relay_one(conn, &guests) {
                    eprintln!("guest-ssh relay: {e}");
                }
            }
        });
        GuestSsh {
            socket,
            stop,
            thread: Some(thread),
        }
    }

    /// The `guest-ssh` program (built with this crate's binaries).
    pub fn program() -> PathBuf {
        crate::bin("guest-ssh")
    }
}

fn relay_one(
    conn: std::os::unix::net::UnixStream,
    guests: &[Arc<Mutex<Vm>>],
) -> std::io::Result<()> {
    use std::io::Read;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut header = String::new();
    reader.read_line(&mut header)?;
    let req: GuestSshRequest = serde_json::from_str(&header).map_err(std::io::Error::other)?;
    let mut stdin = vec![0u8; req.stdin_len];
    reader.read_exact(&mut stdin)?;
    let guest = guests.iter().find(|g| {
        g.lock()
            .map(|vm| vm.name == req.host)
            .unwrap_or_else(|p| p.into_inner().name == req.host)
    });
    let (status, stdout, stderr) = match guest {
        None => (
            255,
            Vec::new(),
            format!("ssh: Could not resolve hostname {}", req.host).into_bytes(),
        ),
        Some(g) => {
            let command = req.command.trim();
            let command = match command.strip_prefix("bash") {
                Some(rest) if rest.is_empty() || rest.starts_with(' ') => format!("sh{rest}"),
                _ => command.to_string(),
            };
            let mut vm = g.lock().unwrap_or_else(|p| p.into_inner());
            vm.exec(&command, &stdin)
        }
    };
    let reply = GuestSshReply {
        status,
        stdout_len: stdout.len(),
        stderr_len: stderr.len(),
    };
    let mut w = conn;
    let mut line = serde_json::to_string(&reply).map_err(std::io::Error::other)?;
    line.push('\n');
    w.write_all(line.as_bytes())?;
    w.write_all(&stdout)?;
    w.write_all(&stderr)?;
    w.flush()
}

impl Drop for GuestSsh {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wakes the accepting thread.
        let _ = std::os::unix::net::UnixStream::connect(&self.socket);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}
