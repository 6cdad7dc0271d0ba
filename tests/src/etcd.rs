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
    /// With TLS: clients must show a certificate of this CA.
    pub tls: Option<EtcdCerts>,
}

/// A CA, the members' certificate (for 127.0.0.1) and a client's, made with openssl.
#[derive(Debug, Clone)]
pub struct EtcdCerts {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl EtcdCerts {
    /// Makes them in `dir` (PKCS#8 keys).
    pub fn make(dir: &Path) -> EtcdCerts {
        std::fs::create_dir_all(dir).expect("certificate directory");
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "2",
                "-subj",
                "/CN=etcd test CA",
            ],
        );
        for (name, san) in [("server", "IP:127.0.0.1"), ("client", "DNS:controller")] {
            openssl(
                dir,
                &[
                    "req",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-nodes",
                    "-keyout",
                    &format!("{name}.key"),
                    "-out",
                    &format!("{name}.csr"),
                    "-subj",
                    &format!("/CN={name}"),
                ],
            );
            let ext = dir.join(format!("{name}.ext"));
            std::fs::write(
                &ext,
                format!("subjectAltName={san}\nextendedKeyUsage=serverAuth,clientAuth\n"),
            )
            .expect("extension file");
            openssl(
                dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &format!("{name}.csr"),
                    "-CA",
                    "ca.crt",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-days",
                    "2",
                    "-out",
                    &format!("{name}.crt"),
                    "-extfile",
                    &format!("{name}.ext"),
                ],
            );
        }
        EtcdCerts {
            ca: dir.join("ca.crt"),
            server_cert: dir.join("server.crt"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.crt"),
            client_key: dir.join("client.key"),
        }
    }

    /// The controller's `[db]` settings for them.
    pub fn controller_toml(&self) -> String {
        format!(
            "[db]\nca_certificate = \"{}\"\nclient_certificate = \"{}\"\nclient_key_pkcs8_pem = \"{}\"\n",
            self.ca.display(),
            self.client_cert.display(),
            self.client_key.display()
        )
    }
}

impl EtcdCluster {
    /// Starts `n` members in `<parent>/etcd-<i>` and waits until the cluster answers.
    pub fn start(parent: &Path, n: usize) -> EtcdCluster {
        Self::start_with(parent, n, None)
    }

    /// Like [`EtcdCluster::start`]; with `tls`, the members serve clients over HTTPS only
    /// and require a client certificate of its CA.
    pub fn start_with(parent: &Path, n: usize, tls: Option<EtcdCerts>) -> EtcdCluster {
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
        let mut c = EtcdCluster {
            members,
            initial,
            tls,
        };
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
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let mut cmd = Command::new("etcd");
        if let Some(t) = &self.tls {
            cmd.arg("--cert-file")
                .arg(&t.server_cert)
                .arg("--key-file")
                .arg(&t.server_key)
                .arg("--trusted-ca-file")
                .arg(&t.ca)
                .arg("--client-cert-auth");
        }
        let proc = Proc::spawn(
            cmd.args(["--name", &m.name])
                .arg("--data-dir")
                .arg(&m.data)
                .arg("--listen-client-urls")
                .arg(format!("{scheme}://127.0.0.1:{}", m.client_port))
                .arg("--advertise-client-urls")
                .arg(format!("{scheme}://127.0.0.1:{}", m.client_port))
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
        let mut b = reqwest::blocking::Client::builder().timeout(Duration::from_secs(2));
        let mut scheme = "http";
        if let Some(t) = &self.tls {
            let read = |p: &PathBuf| std::fs::read(p).expect("certificate file");
            let mut pem = read(&t.client_cert);
            pem.extend(read(&t.client_key));
            b = b
                .add_root_certificate(reqwest::Certificate::from_pem(&read(&t.ca)).expect("CA"))
                .identity(reqwest::Identity::from_pem(&pem).expect("client identity"));
            scheme = "https";
        }
        let http = b.build().expect("HTTP client");
        loop {
            let ok = self.members.iter().filter(|m| m.proc.is_some()).any(|m| {
                http.post(format!("{scheme}://127.0.0.1:{}/v3/kv/put", m.client_port))
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
