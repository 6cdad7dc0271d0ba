//! An etcd cluster for tests: Debian's `etcd-server`, N members on free loopback ports in a
//! test's directory, until dropped. `STRATA_TEST_DB=etcd` makes every [`crate::TestCluster`]
//! keep its state in a one-member cluster of these.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::{free_port, Proc};

/// etcd's server is installed.
pub fn available() -> strata_exec::needs::Need {
    crate::needs::tool("etcd", "etcd-server")
}

/// Whether the tests' clusters keep their state in etcd (`STRATA_TEST_DB`).
pub fn wanted() -> bool {
    std::env::var("STRATA_TEST_DB").is_ok_and(|v| v == "etcd")
}

pub struct Member {
    pub name: String,
    pub client_port: u16,
    pub peer_port: u16,
    pub data: PathBuf,
    pub log: PathBuf,
    proc: Option<Proc>,
}

pub struct EtcdCluster {
    pub members: Vec<Member>,
    initial: String,
}

impl EtcdCluster {
    /// Starts `n` members in `<parent>/etcd-<i>` and waits until the cluster answers.
    pub fn start(parent: &Path, n: usize) -> EtcdCluster {
        let members: Vec<Member> = (0..n)
            .map(|i| Member {
                name: format!("m{i}"),
                client_port: free_port(),
                peer_port: free_port(),
                data: parent.join(format!("etcd-{i}")),
                log: parent.join(format!("etcd-{i}.log")),
                proc: None,
            })
            .collect();
        let initial = members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        let mut c = EtcdCluster { members, initial };
        for i in 0..n {
            c.start_member(i);
        }
        c.wait_healthy(Duration::from_secs(30));
        c
    }

    /// (Re)starts member `i` on its data directory.
    pub fn start_member(&mut self, i: usize) {
        let m = &self.members[i];
        let state = if m.data.exists() { "existing" } else { "new" };
        let proc = Proc::spawn(
            Command::new("etcd")
                .args(["--name", &m.name])
                .arg("--data-dir")
                .arg(&m.data)
                .arg("--listen-client-urls")
                .arg(format!("http://127.0.0.1:{}", m.client_port))
                .arg("--advertise-client-urls")
                .arg(format!("http://127.0.0.1:{}", m.client_port))
                .arg("--listen-peer-urls")
                .arg(format!("http://127.0.0.1:{}", m.peer_port))
                .arg("--initial-advertise-peer-urls")
                .arg(format!("http://127.0.0.1:{}", m.peer_port))
                .arg("--initial-cluster")
                .arg(&self.initial)
                .args(["--initial-cluster-state", state])
                .args(["--initial-cluster-token", "strata-test"])
                .args(["--logger", "zap", "--log-level", "warn"]),
            &m.log,
        );
        self.members[i].proc = Some(proc);
    }

    /// Kills member `i` (SIGKILL).
    pub fn kill_member(&mut self, i: usize) {
        if let Some(mut p) = self.members[i].proc.take() {
            p.kill9();
        }
    }

    /// The controller's `--db` for this cluster.
    pub fn url(&self) -> String {
        format!(
            "etcd://{}",
            self.members
                .iter()
                .map(|m| format!("127.0.0.1:{}", m.client_port))
                .collect::<Vec<_>>()
                .join(",")
        )
    }

    /// Waits until a write through a member succeeds.
    pub fn wait_healthy(&self, limit: Duration) {
        let start = Instant::now();
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("HTTP client");
        loop {
            let ok = self.members.iter().filter(|m| m.proc.is_some()).any(|m| {
                http.post(format!("http://127.0.0.1:{}/v3/kv/put", m.client_port))
                    .body(r#"{"key":"aGVhbHRo","value":"MQ=="}"#)
                    .send()
                    .is_ok_and(|r| r.status().is_success())
            });
            if ok {
                return;
            }
            assert!(
                start.elapsed() < limit,
                "etcd did not become healthy:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn logs(&self) -> String {
        self.members
            .iter()
            .map(|m| {
                format!(
                    "--- {} ---\n{}",
                    m.name,
                    std::fs::read_to_string(&m.log).unwrap_or_default()
                )
            })
            .collect()
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for m in &mut self.members {
            if let Some(mut p) = m.proc.take() {
                p.stop();
            }
        }
    }
}
