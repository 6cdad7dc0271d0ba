//! The REST API's HTTPS, token authentication and bounds, against a real controller process
//! (no satellites are needed): idle and stalled connections do not keep a request from its
//! answer and are closed after the request-head time-out; with token authentication on, our
//! CLI, the typed client the plugins use and the real python-linstor are refused without a
//! token (401) and served with one; a read-only token may list but not change (403); a
//! revoked token is refused.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use strata_tests::{bin, free_port, needs};

/// A controller process with its own directory; killed when dropped.
struct Controller {
    child: Child,
    dir: tempfile::TempDir,
    http: u16,
    https: u16,
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.dir.path().join("controller.log"));
            eprintln!("controller log:\n{}", log.unwrap_or_default());
        }
    }
}

fn wait_for_port(port: u16, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the controller exited at start"
        );
        assert!(Instant::now() < deadline, "the controller did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A CA (`ca.pem`) and a certificate it signed for 127.0.0.1, made with openssl; answers
/// (CA, certificate, key).
fn certificate(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let p = |n: &str| dir.join(n);
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509", "-days", "2", "-subj", "/CN=test CA"];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
    run(&ca);
    let mut req = vec!["req", "-new", "-subj", "/CN=127.0.0.1"];
    req.extend(ec);
    req.extend(["-keyout", "key.pem", "-out", "req.pem"]);
    run(&req);
    std::fs::write(
        p("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "req.pem",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "cert.pem",
    ]);
    (p("ca.pem"), p("cert.pem"), p("key.pem"))
}

impl Controller {
    /// `http_addr` is where the plain port listens (on 0.0.0.0 it redirects to HTTPS).
    fn start(http_addr: &str, limits: &str) -> Controller {
        let dir = tempfile::tempdir().unwrap();
        let (_, cert, key) = certificate(dir.path());
        let (http, https) = (free_port(), free_port());
        let conf = dir.path().join("linstor.toml");
        std::fs::write(
            &conf,
            format!(
                "[http]\nport = {http}\nlisten_addr = \"{http_addr}\"\n\
                 [https]\nport = {https}\nlisten_addr = \"127.0.0.1\"\n\
                 certificate = \"{}\"\nprivate_key = \"{}\"\n\
                 [controller]\ndata_dir = \"{}\"\n{limits}",
                cert.display(),
                key.display(),
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let mut child = Command::new(bin("linstor-controller"))
            .arg("--config")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("controller.log")).unwrap())
            .spawn()
            .expect("start the controller");
        wait_for_port(http, &mut child);
        wait_for_port(https, &mut child);
        Controller {
            child,
            dir,
            http,
            https,
        }
    }

    /// The CA of the controller's certificate.
    fn cert(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Runs our `linstor` with `args` (the controller and CA file given).
    fn linstor(&self, env: &[(&str, &str)], args: &[&str]) -> Output {
        let mut cmd = Command::new(bin("linstor"));
        cmd.arg("--disable-config")
            .arg("--controllers")
            .arg(format!("127.0.0.1:{}", self.http))
            .arg("--cafile")
            .arg(self.cert())
            .args(args)
            .env_remove("LS_AUTH_TOKEN")
            .env_remove("LS_CONTROLLERS");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run linstor")
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The token in the machine-readable replies of `init` or `create`.
fn token_of(o: &Output) -> String {
    assert!(o.status.success(), "{}", text(o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON replies");
    let found = v
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|x| x.as_array().cloned().unwrap_or_else(|| vec![x.clone()]))
        .find_map(|rc| rc["obj_refs"]["token"].as_str().map(str::to_string));
    found.unwrap_or_else(|| panic!("no token in {v}"))
}

/// Sends `GET /v1/controller/version` on a fresh plain connection; answers how long it took.
fn version_request(port: u16) -> Duration {
    let started = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(b"GET /v1/controller/version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    started.elapsed()
}

/// Whether the server closed `s` (end of stream or reset), waiting at most `wait`.
fn closed(s: &mut TcpStream, wait: Duration) -> bool {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

#[test]
fn idle_and_stalled_connections_do_not_starve_a_request() {
    needs!(needs::tool("openssl", "openssl"));
    // 2,000 connections and their other ends: more than the default 1,024 descriptors.
    let (_, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    let want = hard.min(8192);
    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, want, hard).unwrap();
    let c = Controller::start(
        "127.0.0.1",
        "[limits]\nheader_timeout_secs = 2\nhandshake_timeout_secs = 2\n",
    );
    let baseline = (0..5).map(|_| version_request(c.http)).max().unwrap();

    // 1,000 plain connections that never send a byte, and 1,000 TLS connections stalled in
    // the middle of their ClientHello.
    let mut idle: Vec<TcpStream> = (0..1000)
        .map(|_| TcpStream::connect(("127.0.0.1", c.http)).unwrap())
        .collect();
    for _ in 0..1000 {
        let mut s = TcpStream::connect(("127.0.0.1", c.https)).unwrap();
        s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).unwrap();
        idle.push(s);
    }
    let loaded = version_request(c.http);
    eprintln!(
        "version: {:?} alone, {:?} beside 2,000 idle connections",
        baseline, loaded
    );
    assert!(
        loaded < Duration::from_secs(5),
        "a request took {loaded:?} beside idle connections (alone: {baseline:?})"
    );

    // After the time-outs (2 s) the server has closed them all.
    let deadline = Instant::now() + Duration::from_secs(15);
    for (i, s) in idle.iter_mut().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            closed(s, left.max(Duration::from_millis(10))),
            "connection {i} still open 15 s after it was opened"
        );
    }
    version_request(c.http);
}

const PYTHON_SCRIPT: &str = r#"
import json, sys
import linstor
url, cafile, token = sys.argv[1], sys.argv[2], sys.argv[3]
def names(tok):
    lin = linstor.Linstor(url, auth_token=tok)
    lin.cafile = cafile
    with lin:
        return [rg.name for rg in lin.resource_group_list_raise().resource_groups]
out = {"with": names(token)}
try:
    names("wrong-token")
    out["without"] = "served"
except Exception as e:
    out["without"] = str(e)
print(json.dumps(out))
"#;

#[test]
fn tokens_through_the_cli_the_client_and_python_linstor() {
    needs!(needs::tool("openssl", "openssl"));
    // The plain port on every address: it redirects to HTTPS.
    let c = Controller::start("0.0.0.0", "");

    // Open until initialised; init answers the first token.
    let o = c.linstor(&[], &["resource-group", "list"]);
    assert!(o.status.success(), "{}", text(&o));
    let admin = token_of(&c.linstor(
        &[],
        &[
            "-m",
            "controller",
            "auth",
            "init",
            "first",
            "--do-not-save-token",
        ],
    ));

    // Without a token: refused. With one (flag, environment, file): served.
    let o = c.linstor(&[], &["resource-group", "list"]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("Unauthorized"), "{}", text(&o));
    let o = c.linstor(
        &[],
        &["--auth-token", &admin, "resource-group", "create", "rg1"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = c.linstor(
        &[("LS_AUTH_TOKEN", admin.as_str())],
        &["resource-group", "list"],
    );
    assert!(
        o.status.success() && text(&o).contains("rg1"),
        "{}",
        text(&o)
    );
    let file = c.dir.path().join("token");
    std::fs::write(&file, format!("{admin}\n")).unwrap();
    let o = c.linstor(
        &[],
        &[
            "--auth-token-file",
            file.to_str().unwrap(),
            "resource-group",
            "list",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));

    // A read-only token lists, and is refused a change.
    let ro = token_of(&c.linstor(
        &[],
        &[
            "--auth-token",
            &admin,
            "-m",
            "controller",
            "auth",
            "create",
            "monitoring",
            "--role",
            "read-only",
        ],
    ));
    let o = c.linstor(&[], &["--auth-token", &ro, "resource-group", "list"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = c.linstor(
        &[],
        &["--auth-token", &ro, "resource-group", "create", "rg2"],
    );
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("only read"), "{}", text(&o));

    // The typed client the plugins use, with the settings they read.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = |token: Option<&str>| {
        strata_client::Client::with_security(
            &[format!("https://127.0.0.1:{}", c.https)],
            Duration::from_secs(20),
            &strata_client::Security {
                token: token.map(str::to_string),
                ca_file: Some(c.cert()),
                ..Default::default()
            },
        )
        .unwrap()
    };
    let rds = rt.block_on(client(Some(&ro)).resource_dfns(&[], &[], false));
    assert!(rds.is_ok(), "{rds:?}");
    match rt.block_on(client(None).resource_dfns(&[], &[], false)) {
        Err(strata_client::ClientError::Api { status: 401, .. }) => {}
        other => panic!("without a token: {other:?}"),
    }

    // The real python-linstor, over HTTPS with the CA file.
    if strata_tests::python_linstor().is_ok() {
        let out = Command::new(strata_tests::python())
            .args(["-c", PYTHON_SCRIPT])
            .arg(format!("linstor+ssl://127.0.0.1:{}", c.https))
            .arg(c.cert())
            .arg(&admin)
            .output()
            .expect("run python");
        assert!(out.status.success(), "{}", text(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(v["with"].as_array().unwrap().contains(&"rg1".into()), "{v}");
        assert_ne!(v["without"], "served", "{v}");
    } else {
        needs!(strata_tests::python_linstor());
    }

    // Revoked: refused.
    let list = c.linstor(
        &[],
        &["--auth-token", &admin, "-m", "controller", "auth", "list"],
    );
    let v: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let id = v["list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["description"] == "monitoring")
        .map(|t| t["id"].to_string())
        .unwrap();
    let o = c.linstor(
        &[],
        &["--auth-token", &admin, "controller", "auth", "delete", &id],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = c.linstor(&[], &["--auth-token", &ro, "resource-group", "list"]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("Unauthorized"), "{}", text(&o));
}

#[test]
fn metrics_leave_plain_http_when_asked() {
    needs!(needs::tool("openssl", "openssl"));
    let c = Controller::start("127.0.0.1", "");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let plain = format!("http://127.0.0.1:{}/metrics", c.http);
    let secure = format!("https://127.0.0.1:{}/metrics", c.https);
    let ca = reqwest::Certificate::from_pem(&std::fs::read(c.cert()).unwrap()).unwrap();
    let https = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let get = |client: &reqwest::Client, url: &str| {
        rt.block_on(async {
            let r = client.get(url).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        })
    };
    let (status, body) = get(&reqwest::Client::new(), &plain);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("linstor_info{"), "{body}");

    let o = c.linstor(
        &[],
        &[
            "controller",
            "set-property",
            "REST/disable-http-metrics",
            "true",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let (status, body) = get(&reqwest::Client::new(), &plain);
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("HTTPS only"), "{body}");
    let (status, body) = get(&https, &secure);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("linstor_scrape_requests_count"), "{body}");
    // The rest of the API still answers on plain HTTP.
    let o = c.linstor(&[], &["resource-group", "list"]);
    assert!(o.status.success(), "{}", text(&o));
}
