//! A PostgreSQL server for tests: Debian's postgresql, initialised in a test's directory
//! and run (as the `postgres` user, as PostgreSQL requires) on a free loopback port until
//! dropped. `STRATA_TEST_DB=postgresql` makes every [`crate::TestCluster`] keep its state in
//! one of these.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::{free_port, Proc};

/// Where Debian installs the server's programs.
pub fn bin_dir() -> PathBuf {
    let base = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<PathBuf> = std::fs::read_dir(base)
        .map(|d| d.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    versions.sort();
    versions.pop().unwrap_or_else(|| base.join("15/bin"))
}

/// PostgreSQL's server is installed (and its user exists).
pub fn available() -> strata_exec::needs::Need {
    let user = Command::new("id")
        .args(["-u", "postgres"])
        .output()
        .is_ok_and(|o| o.status.success());
    crate::needs::tool("setpriv", "util-linux")?;
    if user && bin_dir().join("initdb").exists() {
        Ok(())
    } else {
        Err("PostgreSQL's server: install postgresql (scripts/test-all.sh does)".into())
    }
}

/// Whether the tests' clusters keep their state in PostgreSQL (`STRATA_TEST_DB`).
pub fn wanted() -> bool {
    std::env::var("STRATA_TEST_DB").is_ok_and(|v| v.starts_with("postgres"))
}

pub struct PgServer {
    pub port: u16,
    pub dir: PathBuf,
    proc: Proc,
}

fn postgres_ids() -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .expect("id runs");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("the postgres user's id")
    };
    (id("-u"), id("-g"))
}

/// `program` of the server run as the `postgres` user.
fn as_postgres(program: &str) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid=postgres",
        "--regid=postgres",
        "--init-groups",
        "--",
    ])
    .arg(bin_dir().join(program));
    cmd
}

impl PgServer {
    /// Initialises and starts a server in `<parent>/pg` (the directories above it are made
    /// passable for its user).
    pub fn start(parent: &Path) -> PgServer {
        use std::os::unix::fs::PermissionsExt;
        let dir = parent.join("pg");
        std::fs::create_dir_all(&dir).expect("pg dir");
        // The server's user must reach its directory: let it through the test's directory.
        let _ = std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o711));
        let (uid, gid) = postgres_ids();
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).expect("chown the pg dir");
        let data = dir.join("data");
        let out = as_postgres("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "strata", "-E", "UTF8", "--no-sync"])
            .output()
            .expect("initdb runs");
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let proc = Proc::spawn(
            as_postgres("postgres")
                .arg("-D")
                .arg(&data)
                .arg("-p")
                .arg(port.to_string())
                .arg("-k")
                .arg(&dir)
                .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]),
            &parent.join("postgres.log"),
        );
        let server = PgServer { port, dir, proc };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "PostgreSQL did not start:\n{}",
                server.proc.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // Accepting connections is not yet accepting sessions.
        while !server.psql("postgres", "SELECT 1").0 {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "PostgreSQL does not answer:\n{}",
                server.proc.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// Creates database `name`; answers its URL.
    pub fn create_db(&self, name: &str) -> String {
        let (ok, out) = self.psql("postgres", &format!("CREATE DATABASE {name}"));
        assert!(ok, "CREATE DATABASE {name}: {out}");
        self.url(name)
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgresql://strata@127.0.0.1:{}/{db}", self.port)
    }

    /// Runs `sql` in database `db` with psql; (success, output).
    pub fn psql(&self, db: &str, sql: &str) -> (bool, String) {
        let out = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "strata",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
            ])
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-d")
            .arg(db)
            .arg("-c")
            .arg(sql)
            .output()
            .expect("psql runs");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        // SIGTERM: the server stops once its clients (the test's controller) are gone.
        self.proc.stop();
    }
}
