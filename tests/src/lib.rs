//! The one harness for cluster tests: [`TestCluster`] starts a controller and N satellites as
//! real processes on 127.0.0.1, each satellite with a FILE_THIN pool directory whose volumes
//! are real loop devices. Everything a test cluster creates lives in its own temporary
//! directory and is torn down (processes by PID, loop devices of its pools) when it drops.
//!
//! The binaries come from the workspace's target directory (`cargo build --bins` first), or
//! from `STRATA_BIN_DIR`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use strata_client::Client;

pub mod appliance;
pub mod docker;
pub mod etcd;
pub mod opennebula;
pub mod pg;
pub mod sim;
pub mod vm;
pub mod workload;

pub use strata_api::types;
pub use strata_api::ApiCallRc;

/// The file in a cluster's directory naming the controller's database, when it is not the
/// embedded one (see [`TestCluster::spawn_controller`]).
pub const CONTROLLER_DB: &str = "controller-db";

/// The workspace's root directory (the source tree).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

/// Directory holding `linstor-controller`, `linstor-satellite` and `linstor`.
pub fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("STRATA_BIN_DIR") {
        return PathBuf::from(dir);
    }
    // target/<profile>/deps/<test binary> or target/<profile>/<binary> -> target/<profile>
    let exe = std::env::current_exe().expect("executable path");
    let dir = exe.parent().expect("executable directory");
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().expect("target directory").to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.is_file(),
        "{} not found: build the binaries first (cargo build --bins) or set STRATA_BIN_DIR",
        p.display()
    );
    p
}

/// A free TCP port on 127.0.0.1 (bound once and released), never one handed out before in
/// this test process: the kernel may give a released port to the next caller, and tests run
/// in parallel threads.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        if GIVEN.lock().unwrap_or_else(|e| e.into_inner()).insert(port) {
            return port;
        }
    }
}

pub use strata_exec;
pub use strata_exec::needs;

/// Skips the calling test (fails it where `STRATA_TESTS_REQUIRE_ALL` is set, as in CI) unless
/// this machine can run a cluster of real processes: root and loop devices for the pools,
/// and whatever else is named.
#[macro_export]
macro_rules! needs_cluster {
    ($($more:expr),* $(,)?) => {
        $crate::strata_exec::needs!(
            $crate::needs::root(),
            $crate::needs::loop_devices()
            $(, $more)*
        )
    };
}

/// The Python the python-linstor tests run: `STRATA_PYTHON`, else python3.
pub fn python() -> String {
    std::env::var("STRATA_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// python-linstor is importable by [`python`].
pub fn python_linstor() -> needs::Need {
    python_modules(&["linstor"])
}

/// The Python modules named are importable by [`python`] (scripts/test-all.sh installs
/// them into its virtual environment).
pub fn python_modules(modules: &[&str]) -> needs::Need {
    let python = python();
    let importable = std::process::Command::new(&python)
        .args(["-c", &format!("import {}", modules.join(", "))])
        .output()
        .is_ok_and(|o| o.status.success());
    if importable {
        Ok(())
    } else {
        Err(format!(
            "needs the Python modules {modules:?} importable by {python}; set STRATA_PYTHON to a \
             python that has them (scripts/test-all.sh installs them into \
             target/python-linstor-venv)"
        ))
    }
}

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "cluster tests need root (loop devices): begin the test with needs_cluster!()"
    );
}

/// Waits until `port` accepts connections; gives up early if `proc` exits.
/// Waits until the controller on `port` serves its API: it listens, and answers otherwise
/// than a standby that has no leader yet (503).
fn wait_tcp(proc: &mut Proc, port: u16, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if !wait_tcp_at(
            proc,
            "127.0.0.1",
            port,
            limit.saturating_sub(start.elapsed()),
        ) {
            return false;
        }
        if http_status(port, "/v1/controller/version").is_some_and(|s| s != 503) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// The HTTP status of a GET of `path` on 127.0.0.1:`port`.
pub fn http_status(port: u16, path: &str) -> Option<u16> {
    http_head(port, path)?.get(9..12)?.parse().ok()
}

/// The status line and headers (lower case) of the answer to a GET of `path` on
/// 127.0.0.1:`port`.
pub fn http_head(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got).to_lowercase();
    let head = text.split("\r\n\r\n").next().unwrap_or("").to_string();
    head.starts_with("http/").then_some(head)
}

/// Whether the controller on `port` serves the API itself: it answers, and not as a
/// standby forwarding to the leader.
pub fn controller_leads(port: u16) -> bool {
    http_head(port, "/v1/controller/version")
        .is_some_and(|h| h.get(9..12) == Some("200") && !h.contains("x-linstor-forwarded-by"))
}

fn wait_tcp_at(proc: &mut Proc, addr: &str, port: u16, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if std::net::TcpStream::connect((addr, port)).is_ok() {
            return true;
        }
        if let Some(c) = proc.child.as_mut() {
            if let Ok(Some(_)) = c.try_wait() {
                return false;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A process the harness started; stopped by its own PID.
pub struct Proc {
    pub child: Option<Child>,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(cmd: &mut Command, log: &Path) -> Proc {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("log file");
        let err = out.try_clone().expect("log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        Proc {
            child: Some(child),
            log: log.to_path_buf(),
        }
    }

    pub fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
    }

    /// SIGKILL, as a crash.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait, as an orderly stop.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(c.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub struct Satellite {
    pub name: String,
    /// Address it listens on (and its node is registered with): loopback, or its network
    /// namespace's own address.
    pub addr: String,
    pub port: u16,
    /// Where it serves its Prometheus metrics (`--metrics-port`), on `addr`.
    pub metrics_port: u16,
    pub state_dir: PathBuf,
    pub pool_dir: PathBuf,
    pub proc: Proc,
    /// The network namespace it runs in, as on a host of its own (dropped after the process).
    pub netns: Option<NetNs>,
}

impl Satellite {
    /// The join token the satellite made at its first start (`<state dir>/tls/join-token`).
    pub fn join_token(&self) -> String {
        let file = self.state_dir.join("tls").join("join-token");
        std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
            .trim()
            .to_string()
    }
}

/// A network namespace linked to the host by a veth pair: whatever runs inside has an address
/// of its own (`10.231.<slot>.2`) that the host reaches through `10.231.<slot>.1`. Deleted
/// (with its link) when dropped.
pub struct NetNs {
    pub name: String,
    /// The address inside.
    pub addr: String,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl NetNs {
    /// Creates the namespace for slot `slot` (0-255) of this test process.
    pub fn create(slot: u8) -> NetNs {
        let pid = std::process::id();
        let name = format!("strata-{pid}-{slot}");
        let host_if = format!("stv{pid}x{slot}");
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        ip(&["netns", "add", &name]);
        ip(&[
            "link", "add", &host_if, "type", "veth", "peer", "name", "eth0", "netns", &name,
        ]);
        ip(&[
            "addr",
            "add",
            &format!("10.231.{slot}.1/24"),
            "dev",
            &host_if,
        ]);
        ip(&["link", "set", &host_if, "up"]);
        let addr = format!("10.231.{slot}.2");
        ip(&[
            "-n",
            &name,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            "eth0",
        ]);
        ip(&["-n", &name, "link", "set", "eth0", "up"]);
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        NetNs { name, addr }
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // The veth pair goes with the namespace.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// A namespace slot not used by another cluster of this test process.
fn next_netns_slot() -> u8 {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    ((std::process::id() as usize * 16 + n) % 250) as u8
}

impl Satellite {
    /// `drbdadm dump` of resource `rsc` as this satellite's node sees it: its own
    /// configuration through the real parser, which must accept it.
    pub fn drbdadm_dump(&self, rsc: &str) -> String {
        let out = Command::new("drbdadm")
            .env("__DRBD_NODE__", &self.name)
            .arg("-c")
            .arg(self.state_dir.join("drbd.conf"))
            .arg("dump")
            .arg(rsc)
            .output()
            .expect("drbd-utils are needed (scripts/test-all.sh installs them)");
        assert!(
            out.status.success(),
            "drbdadm refused the configuration of {}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Appends lines to the DRBD event stream a dry-run satellite follows, as the kernel
    /// would print them through `drbdsetup events2`.
    pub fn drbd_events(&self, lines: &[&str]) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.state_dir.join("events2"))
            .expect("events file");
        for l in lines {
            writeln!(f, "{l}").expect("event line");
        }
    }
}

pub struct TestCluster {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub controller: Proc,
    pub satellites: Vec<Satellite>,
    /// Satellites run DRBD as a dry run (`--drbd-dry-run`), each on its own loopback address
    /// so that DRBD addresses differ as on separate hosts.
    pub drbd_dry_run: bool,
    /// The PostgreSQL server the controller keeps its state in, when it does
    /// (`STRATA_TEST_DB=postgresql`, or [`TestCluster::start_on_postgres`]).
    pub pg: Option<pg::PgServer>,
    /// The etcd cluster the controller keeps its state in, when it does
    /// (`STRATA_TEST_DB=etcd`, or [`TestCluster::start_on_etcd`]).
    pub etcd: Option<etcd::EtcdCluster>,
}

/// Where a test cluster's controller keeps its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Db {
    Embedded,
    Postgres,
    /// An etcd cluster of this many members, over TLS with client certificates or not.
    Etcd(usize, bool),
}

impl Db {
    /// What `STRATA_TEST_DB` asks for.
    fn wanted() -> Db {
        if pg::wanted() {
            Db::Postgres
        } else if etcd::wanted() {
            Db::Etcd(1, false)
        } else {
            Db::Embedded
        }
    }
}

impl TestCluster {
    /// A controller and `n` satellites (nodes not yet registered).
    pub fn start(n: usize) -> TestCluster {
        Self::start_with(n, false)
    }

    /// Like [`TestCluster::start`], with satellites that run DRBD as a dry run: they render
    /// real `.res` files and run drbdadm with `-d`, on a machine without the DRBD module. Each
    /// runs in a network namespace of its own, with its own address.
    pub fn start_drbd_dry_run(n: usize) -> TestCluster {
        Self::start_with(n, true)
    }

    /// Like [`TestCluster::start`], with `controller_toml` as the controller's linstor.toml.
    pub fn start_configured(n: usize, controller_toml: &str) -> TestCluster {
        Self::start_full(n, false, controller_toml)
    }

    /// Like [`TestCluster::start`], with the controller's state in a PostgreSQL server of
    /// the cluster's own.
    pub fn start_on_postgres(n: usize) -> TestCluster {
        Self::start_db(n, false, "", Db::Postgres)
    }

    /// Like [`TestCluster::start`], with the controller's state in an etcd cluster of
    /// `members` members of the cluster's own.
    pub fn start_on_etcd(n: usize, members: usize, controller_toml: &str) -> TestCluster {
        Self::start_db(n, false, controller_toml, Db::Etcd(members, false))
    }

    /// Like [`TestCluster::start_on_etcd`] with one member that serves over TLS only and
    /// requires client certificates; the controller's `[db]` names its files.
    pub fn start_on_etcd_tls(n: usize) -> TestCluster {
        Self::start_db(n, false, "", Db::Etcd(1, true))
    }

    fn start_with(n: usize, drbd_dry_run: bool) -> TestCluster {
        Self::start_full(n, drbd_dry_run, "")
    }

    fn start_full(n: usize, drbd_dry_run: bool, controller_toml: &str) -> TestCluster {
        Self::start_db(n, drbd_dry_run, controller_toml, Db::wanted())
    }

    fn start_db(n: usize, drbd_dry_run: bool, controller_toml: &str, db: Db) -> TestCluster {
        require_root();
        let dir = tempfile::Builder::new()
            .prefix("strata-test-")
            .tempdir()
            .expect("temporary directory");
        let port = free_port();
        let certs = matches!(db, Db::Etcd(_, true))
            .then(|| etcd::EtcdCerts::make(&dir.path().join("etcd-certs")));
        let toml = match &certs {
            Some(c) => format!("{}{controller_toml}", c.controller_toml()),
            None => controller_toml.to_string(),
        };
        std::fs::write(dir.path().join("linstor.toml"), toml).expect("config file");
        std::fs::write(dir.path().join("linstor_satellite.toml"), "").expect("config file");
        let pg = (db == Db::Postgres).then(|| {
            let server = pg::PgServer::start(dir.path());
            let url = server.create_db("linstor");
            std::fs::write(dir.path().join(CONTROLLER_DB), url).expect("database file");
            server
        });
        let etcd = match db {
            Db::Etcd(members, _) => {
                let cluster = etcd::EtcdCluster::start_with(dir.path(), members, certs);
                std::fs::write(dir.path().join(CONTROLLER_DB), cluster.url())
                    .expect("database file");
                Some(cluster)
            }
            _ => None,
        };
        let controller = Self::spawn_controller(dir.path(), port);
        let mut c = TestCluster {
            dir,
            port,
            controller,
            satellites: Vec::new(),
            drbd_dry_run,
            pg,
            etcd,
        };
        assert!(
            wait_tcp(&mut c.controller, port, Duration::from_secs(15)),
            "controller did not start:\n{}",
            c.controller.log_text()
        );
        for i in 0..n {
            c.add_satellite(&format!("node{}", i + 1));
        }
        c
    }

    pub fn spawn_controller(dir: &Path, port: u16) -> Proc {
        let data = dir.join("controller");
        std::fs::create_dir_all(&data).expect("controller dir");
        let mut cmd = Command::new(bin("linstor-controller"));
        if let Ok(url) = std::fs::read_to_string(dir.join(CONTROLLER_DB)) {
            cmd.arg("--db").arg(url.trim());
        }
        Proc::spawn(
            cmd.arg("--port")
                .arg(port.to_string())
                .arg("--listen-addr")
                .arg("127.0.0.1")
                .arg("--data-dir")
                .arg(&data)
                .arg("--config")
                .arg(dir.join("linstor.toml"))
                .env(
                    "RUST_LOG",
                    std::env::var("STRATA_TEST_LOG").unwrap_or_else(|_| "info".into()),
                ),
            &dir.join("controller.log"),
        )
    }

    /// What `linstor` lists of the cluster's state, for comparing two databases.
    pub fn listing(&self) -> Vec<String> {
        [
            vec!["node", "list"],
            vec!["storage-pool", "list"],
            vec!["resource-group", "list"],
            vec!["resource-definition", "list"],
            vec!["volume-definition", "list"],
            vec!["snapshot", "list"],
        ]
        .iter()
        .map(|args| self.linstor_ok(args))
        .collect()
    }

    /// Waits (the satellites reconnect, their pools report) until [`TestCluster::listing`]
    /// is `want`.
    pub fn same_listing(&self, want: &[String], what: &str) {
        let ok = self.wait_until(Duration::from_secs(30), || self.listing() == want);
        assert!(ok, "{what}: {:?}\nwanted {want:?}", self.listing());
    }

    /// `linstor-controller ARGS` (export-db, import-db) on database `db`, with the
    /// controller's data directory and configuration; (success, output).
    pub fn controller_command(&self, db: &str, args: &[&str]) -> (bool, String) {
        let out = Command::new(bin("linstor-controller"))
            .arg("--data-dir")
            .arg(self.dir.path().join("controller"))
            .arg("--config")
            .arg(self.dir.path().join("linstor.toml"))
            .arg("--db")
            .arg(db)
            .args(args)
            .output()
            .expect("linstor-controller runs");
        (out.status.success(), output_text(&out))
    }

    /// Another controller on this cluster's database (with etcd: a standby), its
    /// configuration `controller_toml` and a directory of its own (`<dir>/<subdir>`):
    /// (process, port, directory). Waits until it answers.
    pub fn spawn_another_controller(
        &self,
        subdir: &str,
        controller_toml: &str,
    ) -> (Proc, u16, PathBuf) {
        let dir = self.dir.path().join(subdir);
        std::fs::create_dir_all(&dir).expect("controller directory");
        std::fs::write(dir.join("linstor.toml"), controller_toml).expect("config file");
        if let Ok(db) = std::fs::read(self.dir.path().join(CONTROLLER_DB)) {
            std::fs::write(dir.join(CONTROLLER_DB), db).expect("database file");
        }
        let port = free_port();
        let mut proc = Self::spawn_controller(&dir, port);
        let start = Instant::now();
        while http_status(port, "/v1/controller/version") != Some(200) {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "controller in {subdir} does not answer:\n{}",
                proc.log_text()
            );
            if let Some(Ok(Some(_))) = proc.child.as_mut().map(|c| c.try_wait()) {
                panic!("controller in {subdir} stopped:\n{}", proc.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        (proc, port, dir)
    }

    /// Starts satellites `names` (not registered), each with its pool directory on `fs`
    /// (`<mount>/<name>`): FILE_THIN pools that share a file system of the test's choosing.
    pub fn add_satellites_on(&mut self, fs: &LoopFs, names: &[&str]) {
        for name in names {
            let i = self.add_satellite(name);
            let pool = fs.mnt.join(name);
            std::fs::create_dir_all(&pool).expect("pool directory");
            self.satellites[i].pool_dir = pool;
        }
    }

    /// Starts one more satellite process (its node is not registered).
    pub fn add_satellite(&mut self, name: &str) -> usize {
        let port = free_port();
        let metrics_port = free_port();
        let state_dir = self.dir.path().join(format!("{name}-state"));
        let pool_dir = self.dir.path().join(format!("{name}-pool"));
        // DRBD clusters put each satellite in a network namespace of its own, as on hosts
        // of their own.
        let netns = self.drbd_dry_run.then(|| NetNs::create(next_netns_slot()));
        let addr = match &netns {
            Some(ns) => ns.addr.clone(),
            None => "127.0.0.1".to_string(),
        };
        std::fs::create_dir_all(&state_dir).expect("state dir");
        let mut proc = self.spawn_satellite(
            name,
            &addr,
            (port, metrics_port),
            &state_dir,
            netns.as_ref().map(|n| n.name.as_str()),
        );
        assert!(
            wait_tcp_at(&mut proc, &addr, port, Duration::from_secs(15)),
            "satellite {name} did not start:\n{}",
            proc.log_text()
        );
        self.satellites.push(Satellite {
            name: name.to_string(),
            addr,
            port,
            metrics_port,
            state_dir,
            pool_dir,
            proc,
            netns,
        });
        self.satellites.len() - 1
    }

    fn spawn_satellite(
        &self,
        name: &str,
        addr: &str,
        (port, metrics_port): (u16, u16),
        state_dir: &Path,
        netns: Option<&str>,
    ) -> Proc {
        let dir = self.dir.path();
        // `ip netns exec` execs the satellite: the process id stays the satellite's.
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(bin("linstor-satellite"));
                c
            }
            None => Command::new(bin("linstor-satellite")),
        };
        cmd.arg("--port")
            .arg(port.to_string())
            .arg("--metrics-port")
            .arg(metrics_port.to_string())
            .arg("--listen-addr")
            .arg(addr)
            .arg("--state-dir")
            .arg(state_dir)
            .arg("--config")
            .arg(dir.join("linstor_satellite.toml"))
            .env(
                "RUST_LOG",
                std::env::var("STRATA_TEST_LOG").unwrap_or_else(|_| "info".into()),
            );
        if self.drbd_dry_run {
            // DRBD's events come from a file the test writes (see `Satellite::drbd_events`).
            let events = state_dir.join("events2");
            if !events.exists() {
                std::fs::write(&events, "").expect("events file");
            }
            cmd.arg("--drbd-dry-run")
                .arg("--drbd-config")
                .arg(state_dir.join("drbd.conf"))
                .arg("--drbd-events-file")
                .arg(events);
        }
        Proc::spawn(&mut cmd, &dir.join(format!("{name}.log")))
    }

    pub fn controller_addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn client(&self) -> Client {
        Client::new(&[self.controller_addr()], Duration::from_secs(120)).expect("client")
    }

    pub fn kill_controller(&mut self) {
        self.controller.kill9();
    }

    pub fn start_controller(&mut self) {
        self.controller = Self::spawn_controller(self.dir.path(), self.port);
        assert!(
            wait_tcp(&mut self.controller, self.port, Duration::from_secs(15)),
            "controller did not restart:\n{}",
            self.controller.log_text()
        );
    }

    pub fn stop_satellite(&mut self, i: usize) {
        self.satellites[i].proc.stop();
    }

    pub fn start_satellite(&mut self, i: usize) {
        let s = &self.satellites[i];
        let mut proc = self.spawn_satellite(
            &s.name,
            &s.addr,
            (s.port, s.metrics_port),
            &s.state_dir,
            s.netns.as_ref().map(|n| n.name.as_str()),
        );
        assert!(
            wait_tcp_at(&mut proc, &s.addr, s.port, Duration::from_secs(15)),
            "satellite {} did not restart:\n{}",
            s.name,
            proc.log_text()
        );
        self.satellites[i].proc = proc;
    }

    /// Runs the `linstor` CLI against this cluster.
    pub fn linstor(&self, args: &[&str]) -> Output {
        Command::new(bin("linstor"))
            .arg("--controllers")
            .arg(self.controller_addr())
            .arg("--no-color")
            .args(args)
            .env_remove("LS_CONTROLLERS")
            .output()
            .expect("run linstor")
    }

    /// Runs a CLI line that must succeed; answers what it printed.
    pub fn linstor_ok(&self, args: &[&str]) -> String {
        let o = self.linstor(args);
        assert!(
            o.status.success(),
            "linstor {args:?} failed:\n{}",
            output_text(&o)
        );
        output_text(&o)
    }

    /// Runs a CLI line that must fail; answers its exit code and what it printed.
    pub fn linstor_fails(&self, args: &[&str]) -> (i32, String) {
        let o = self.linstor(args);
        assert!(
            !o.status.success(),
            "linstor {args:?} should fail:\n{}",
            output_text(&o)
        );
        (o.status.code().unwrap_or(-1), output_text(&o))
    }

    /// The DRBD node id of `rsc` on `node`.
    pub fn drbd_node_id(&self, rsc: &str, node: &str) -> u32 {
        let rs = self
            .block(
                self.client()
                    .resources(&[node.into()], &[rsc.into()], &[], &[]),
            )
            .unwrap();
        let drbd = rs[0].resource.layer_object.as_ref().unwrap().drbd.as_ref();
        drbd.unwrap().node_id.unwrap() as u32
    }

    /// The device of the first volume of `rsc` on its first node, as the controller reports it.
    pub fn device_of(&self, rsc: &str) -> Option<String> {
        let client = self.client();
        self.block(client.resources(&[], &[rsc.to_string()], &[], &[]))
            .expect("resource list")
            .first()
            .and_then(|r| r.volumes.first())
            .and_then(|v| v.device_path.clone())
    }

    /// Runs a tokio future to completion (tests are plain #[test] functions).
    pub fn block<F: std::future::Future>(&self, f: F) -> F::Output {
        runtime().block_on(f)
    }

    /// Registers every satellite as a node and gives it a FILE_THIN pool `pool_file`.
    pub fn register_all(&self) {
        let client = self.client();
        for s in &self.satellites {
            // Joined over TLS with the token the satellite made at its first start.
            let body = serde_json::json!({
                "name": s.name,
                "type": "SATELLITE",
                "net_interfaces": [{
                    "name": "default",
                    "address": s.addr,
                    "satellite_port": s.port,
                    "is_active": true
                }],
                "join_token": s.join_token(),
            });
            let rcs = self
                .block(client.write(strata_client::Method::POST, "/v1/nodes", Some(&body)))
                .expect("node create");
            assert!(rcs.iter().all(|r| !r.is_error()), "{rcs:?}");
            let sp = serde_json::json!({
                "storage_pool_name": "pool_file",
                "provider_kind": "FILE_THIN",
                "props": {"StorDriver/StorPoolName": s.pool_dir.display().to_string()}
            });
            let path = format!("/v1/nodes/{}/storage-pools", s.name);
            let rcs = self
                .block(client.write(strata_client::Method::POST, &path, Some(&sp)))
                .expect("storage pool create");
            assert!(rcs.iter().all(|r| !r.is_error()), "{rcs:?}");
        }
    }

    /// Asks satellite `i` directly for `path` (a GET of the agent API), as the controller
    /// would: over TLS, with a certificate of the controller's identity issued by the test
    /// controller's CA (the satellite must have joined).
    pub fn satellite_get(&self, i: usize, path: &str) -> serde_json::Value {
        let ca = strata_tls::ClusterCa::load_or_create(
            &self.dir.path().join("controller").join("pki"),
            "unused",
        )
        .expect("the controller's CA");
        let (chain, key) = ca
            .credentials(&strata_tls::Identity::Controller, Duration::from_secs(3600))
            .expect("a controller certificate");
        let creds = strata_tls::verify::Credentials { chain, key };
        let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(
                strata_tls::verify::controller_to_joining(&creds, seen).expect("TLS settings"),
            )
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        let s = &self.satellites[i];
        let url = format!("https://{}:{}{path}", s.addr, s.port);
        self.block(async {
            let r = http
                .get(&url)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{url}: {e:?}"));
            assert!(r.status().is_success(), "{url}: {}", r.status());
            r.json().await.unwrap_or_else(|e| panic!("{url}: {e}"))
        })
    }

    /// Gives satellite `i` the join token the controller printed in `output` (what
    /// `linstor node create` says when no token was given), as an administrator would, and
    /// waits until the controller reached it.
    pub fn hand_printed_token(&self, i: usize, output: &str) {
        const SAID: &str = "one-time token ";
        let at = output
            .find(SAID)
            .unwrap_or_else(|| panic!("no join token printed in:\n{output}"));
        let token: String = output[at + SAID.len()..]
            .chars()
            .take_while(|c| c.is_ascii_graphic())
            .collect();
        let s = &self.satellites[i];
        std::fs::write(s.state_dir.join("tls").join("join-token"), &token).expect("token file");
        let client = self.client();
        let online = self.wait_until(Duration::from_secs(20), || {
            let path = format!("/v1/nodes/{}", s.name);
            let v: Result<serde_json::Value, _> = self.block(client.get(&path));
            v.is_ok_and(|v| v["connection_status"] == "ONLINE")
        });
        assert!(
            online,
            "node {} did not join with the token {token}",
            s.name
        );
    }

    /// Registers node `name` whose satellite runs in a guest and is reached at 127.0.0.1:`port`
    /// (the port the guest's qemu forwards to its satellite). With `data`, the node gets a
    /// second interface `data` with that address, made its `PrefNic`: DRBD then replicates
    /// over the guests' own link, not the forwarded one.
    pub fn register_guest(&self, name: &str, port: u16, data: Option<&str>) {
        let mut nics = vec![serde_json::json!({
            "name": "default",
            "address": "127.0.0.1",
            "satellite_port": port,
            "is_active": true
        })];
        let mut props = serde_json::Map::new();
        if let Some(addr) = data {
            nics.push(serde_json::json!({"name": "data", "address": addr}));
            props.insert("PrefNic".into(), "data".into());
        }
        let body = serde_json::json!({
            "name": name,
            "type": "SATELLITE",
            "net_interfaces": nics,
            "props": props,
            "join_token": vm::GUEST_JOIN_TOKEN,
        });
        ok_replies(self.block(self.client().write(
            strata_client::Method::POST,
            "/v1/nodes",
            Some(&body),
        )));
    }

    /// Creates resource group `rg` placing `place` replicas in the FILE_THIN pool `pool_file`
    /// (see [`TestCluster::register_all`]), with one volume group.
    pub fn create_group(&self, rg: &str, place: u32) {
        self.create_group_on(rg, place, &[]);
    }

    /// [`TestCluster::create_group`] placing only on `nodes` (any node when empty).
    pub fn create_group_on(&self, rg: &str, place: u32, nodes: &[&str]) {
        let client = self.client();
        let mut filter =
            serde_json::json!({"place_count": place, "storage_pool_list": ["pool_file"]});
        if !nodes.is_empty() {
            filter["node_name_list"] = serde_json::json!(nodes);
        }
        ok_replies(self.block(client.write(
            strata_client::Method::POST,
            "/v1/resource-groups",
            Some(&serde_json::json!({"name": rg, "select_filter": filter})),
        )));
        ok_replies(self.block(client.write(
            strata_client::Method::POST,
            &format!("/v1/resource-groups/{rg}/volume-groups"),
            Some(&serde_json::json!({})),
        )));
    }

    /// Spawns resource definition `rsc` with one volume of `size_kib` from group `rg`.
    pub fn spawn(&self, rg: &str, rsc: &str, size_kib: u64) {
        ok_replies(self.block(self.client().write(
            strata_client::Method::POST,
            &format!("/v1/resource-groups/{rg}/spawn"),
            Some(&serde_json::json!({"resource_definition_name": rsc, "volume_sizes": [size_kib]})),
        )));
    }

    /// Polls `cond` until it holds or `limit` passes.
    pub fn wait_until(&self, limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if cond() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// Loop devices currently backed by files in this cluster's pools.
    pub fn loop_devices(&self) -> Vec<(String, String)> {
        loop_devices_under(self.dir.path())
    }

    /// Restores snapshot `snap` of `from` into the new definition `to` on every node of the
    /// snapshot (definition, volume definitions, resources), as the CLI does it.
    pub fn restore_snapshot(&self, from: &str, snap: &str, to: &str) {
        self.linstor_ok(&["resource-definition", "create", to]);
        let args = [
            "--from-resource",
            from,
            "--from-snapshot",
            snap,
            "--to-resource",
            to,
        ];
        for what in ["volume-definition", "resource"] {
            let mut cmd = vec!["snapshot", what, "restore"];
            cmd.extend(args);
            self.linstor_ok(&cmd);
        }
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        self.controller.kill9();
        for s in &mut self.satellites {
            s.proc.kill9();
        }
        // The database server after its client.
        self.pg.take();
        // For debugging: keep the logs when asked to.
        if let Ok(to) = std::env::var("STRATA_TEST_LOGS") {
            let to = PathBuf::from(to);
            let _ = std::fs::create_dir_all(&to);
            if let Ok(entries) = std::fs::read_dir(self.dir.path()) {
                for e in entries.flatten() {
                    if e.file_name().to_string_lossy().ends_with(".log") {
                        let _ = std::fs::copy(e.path(), to.join(e.file_name()));
                    }
                }
            }
        }
        // Detach what the test's pools left attached, and nothing else.
        for (dev, _) in self.loop_devices() {
            let _ = Command::new("umount").arg(&dev).output();
            let _ = Command::new("losetup").arg("--detach").arg(&dev).output();
        }
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
    })
}

/// What a command printed: stdout, then stderr.
pub fn output_text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Asserts that no reply is an error and returns them.
pub fn ok_replies(result: Result<Vec<ApiCallRc>, strata_client::ClientError>) -> Vec<ApiCallRc> {
    match result {
        Ok(r) => {
            assert!(
                r.iter().all(|x| !x.is_error()),
                "unexpected error replies: {r:#?}"
            );
            r
        }
        Err(e) => panic!("request failed: {e}: {:#?}", e.replies()),
    }
}

/// The error replies of a request that must fail.
pub fn err_replies(
    result: Result<Vec<ApiCallRc>, strata_client::ClientError>,
) -> (u16, Vec<ApiCallRc>) {
    match result {
        Ok(r) => panic!("request should have failed: {r:#?}"),
        Err(strata_client::ClientError::Api { status, replies }) => (status, replies),
        Err(e) => panic!("request failed without replies: {e}"),
    }
}

/// Writes `data` at offset 0 of a block device and reads it back through a fresh open.
/// Makes an ext4 file system on `dev` and mounts it on `mnt` (created if missing); panics
/// with the tool's error otherwise.
/// Runs `cmd`, which must succeed; its output.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn mkfs_and_mount(dev: &str, mnt: &Path) {
    std::fs::create_dir_all(mnt).expect("mount point");
    run_ok(Command::new("mkfs.ext4").args(["-q", "-F", dev]));
    run_ok(Command::new("mount").arg(dev).arg(mnt));
}

/// A file system on a loop device mounted at `<dir>/<name>`, unmounted on drop (after the
/// loop devices of pool files inside it): FILE_THIN snapshots need xfs's reflink copies.
pub struct LoopFs {
    pub mnt: PathBuf,
}

impl LoopFs {
    /// A 512 MiB image in `dir`, made with the command `mkfs` (its arguments before the
    /// image's path), and mounted.
    pub fn new(dir: &Path, name: &str, mkfs: &[&str]) -> LoopFs {
        LoopFs::sized(dir, name, mkfs, 512)
    }

    /// [`LoopFs::new`] of `mib` MiB (a sparse image: only what is written takes space).
    pub fn sized(dir: &Path, name: &str, mkfs: &[&str], mib: u64) -> LoopFs {
        let img = dir.join(format!("{name}.img"));
        let f = std::fs::File::create(&img).expect("image file");
        f.set_len(mib << 20).expect("image size");
        drop(f);
        run_ok(Command::new(mkfs[0]).args(&mkfs[1..]).arg(&img));
        let mnt = dir.join(name);
        std::fs::create_dir_all(&mnt).expect("mount point");
        run_ok(
            Command::new("mount")
                .args(["-o", "loop"])
                .arg(&img)
                .arg(&mnt),
        );
        LoopFs { mnt }
    }

    /// A reflink-capable xfs.
    pub fn xfs(dir: &Path, name: &str) -> LoopFs {
        LoopFs::new(dir, name, &["mkfs.xfs", "-q", "-m", "reflink=1"])
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        for (dev, _) in loop_devices_under(&self.mnt) {
            let _ = Command::new("losetup").arg("-d").arg(dev).output();
        }
        let _ = Command::new("umount").arg(&self.mnt).output();
    }
}

/// Loop devices backed by files below `root`: (device, file).
pub fn loop_devices_under(root: &Path) -> Vec<(String, String)> {
    let out = Command::new("losetup")
        .args([
            "--list",
            "--noheadings",
            "--raw",
            "--output",
            "NAME,BACK-FILE",
        ])
        .output()
        .expect("losetup");
    let root = root.display().to_string();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(_, f)| f.starts_with(&root))
        .map(|(d, f)| (d.to_string(), f.to_string()))
        .collect()
}

pub fn write_and_read(dev: &str, data: &[u8]) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(dev)
        .unwrap_or_else(|e| panic!("open {dev}: {e}"));
    f.write_all(data).expect("write");
    f.sync_all().expect("sync");
    drop(f);
    let mut buf = vec![0u8; data.len()];
    std::fs::File::open(dev)
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("read back");
    buf
}

/// Samples of a Prometheus scrape, as Prometheus' own Python client parses them.
#[derive(Debug, Clone)]
pub struct Scrape {
    pub samples: Vec<(String, BTreeMap<String, String>, Option<f64>)>,
}

use std::collections::BTreeMap;

impl Scrape {
    /// Scrapes `url` and parses the answer with `prometheus_client`'s parser (of the text
    /// format, or with `openmetrics`, asking for OpenMetrics and parsing it strictly); fails
    /// the test when the answer does not parse.
    pub fn get(url: &str, openmetrics: bool) -> Scrape {
        const SCRIPT: &str = r#"
import json, math, sys, urllib.request
url, openmetrics = sys.argv[1], sys.argv[2] == "1"
req = urllib.request.Request(url)
if openmetrics:
    req.add_header("Accept", "application/openmetrics-text; version=1.0.0")
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
else:
    from prometheus_client.parser import text_string_to_metric_families
with urllib.request.urlopen(req, timeout=20) as resp:
    ctype = resp.headers.get("Content-Type", "")
    text = resp.read().decode()
if openmetrics and not ctype.startswith("application/openmetrics-text"):
    sys.exit("asked for OpenMetrics, got " + ctype)
out = []
for family in text_string_to_metric_families(text):
    for s in family.samples:
        v = None if math.isnan(s.value) else s.value
        out.append([s.name, s.labels, v])
print(json.dumps(out))
"#;
        let out = Command::new(python())
            .args(["-c", SCRIPT, url, if openmetrics { "1" } else { "0" }])
            .output()
            .expect("python runs");
        assert!(
            out.status.success(),
            "the scrape of {url} does not parse:\n{}",
            output_text(&out)
        );
        let samples = serde_json::from_slice(&out.stdout).expect("the parser's JSON");
        Scrape { samples }
    }

    /// The value of the sample `name` whose labels include `labels`; the first one found.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.matching(name, labels).next().flatten()
    }

    /// The sum of the samples `name` whose labels include `labels`.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).flatten().sum()
    }

    fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = Option<f64>> + 'a {
        self.samples
            .iter()
            .filter(move |(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).is_some_and(|x| x == v))
            })
            .map(|(_, _, v)| *v)
    }

    /// Whether a sample `name` exists at all.
    pub fn has(&self, name: &str) -> bool {
        self.samples.iter().any(|(n, _, _)| n == name)
    }
}

/// A program run on a pseudo-terminal (as a person at a terminal runs it), driven by a small
/// Python script: it waits for each `expect` in the output, then types its `send`; all the
/// output goes to `out` as it comes. Answers the script's process (it ends when the program
/// does, or after `limit`).
pub fn spawn_on_pty(
    argv: &[String],
    env: &[(&str, String)],
    steps: &[(&str, &str)],
    out: &Path,
    limit: Duration,
) -> std::process::Child {
    const SCRIPT: &str = r#"
import fcntl, json, os, pty, select, struct, sys, termios, time
argv, env, steps, limit = json.loads(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3]), float(sys.argv[4])
pid, fd = pty.fork()
if pid == 0:
    os.environ.update(env)
    os.execvp(argv[0], argv)
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
deadline = time.time() + limit
seen = b""
mark = 0
step = 0
def pump(wait):
    global seen
    r, _, _ = select.select([fd], [], [], wait)
    if not r:
        return True
    try:
        data = os.read(fd, 65536)
    except OSError:
        return False
    if not data:
        return False
    seen += data
    sys.stdout.buffer.write(data)
    sys.stdout.flush()
    return True
alive = True
while alive and time.time() < deadline:
    if step < len(steps):
        expect, send = steps[step]
        i = seen.find(expect.encode(), mark)
        if i >= 0:
            mark = i + len(expect)
            os.write(fd, send.encode())
            step += 1
            continue
    alive = pump(0.05)
if time.time() >= deadline:
    os.kill(pid, 9)
_, status = os.waitpid(pid, 0)
sys.stdout.write("\n[exit %d, steps %d/%d]\n" % (os.waitstatus_to_exitcode(status), step, len(steps)))
"#;
    let env: BTreeMap<&str, &String> = env.iter().map(|(k, v)| (*k, v)).collect();
    Command::new(python())
        .arg("-c")
        .arg(SCRIPT)
        .arg(serde_json::to_string(argv).unwrap())
        .arg(serde_json::to_string(&env).unwrap())
        .arg(serde_json::to_string(steps).unwrap())
        .arg(limit.as_secs_f64().to_string())
        .stdout(std::fs::File::create(out).expect("pty output file"))
        .spawn()
        .expect("python runs")
}
