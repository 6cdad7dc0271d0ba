//! The Docker volume plugin driven by a real dockerd (Debian's docker.io, started here with
//! its own data and exec roots, no networking), against a real controller and satellite on
//! FILE_THIN. dockerd finds plugins only in /run/docker/plugins, so the plugin listens on
//! /run/docker/plugins/linstor.sock, as installed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use strata_client::Method;
use strata_tests::docker::Docker;
use strata_tests::{bin, ok_replies, Proc, TestCluster};

const SOCKET: &str = "/run/docker/plugins/linstor.sock";
const IMAGE: &str = "strata-busybox";

/// Starts the plugin for `node` on `socket` and waits until it listens.
fn start_plugin(c: &TestCluster, node: &str, socket: &Path, state: &Path, config: &Path) -> Proc {
    let p = Proc::spawn(
        Command::new(bin("linstor-docker-volume"))
            .arg("--config")
            .arg(config)
            .arg("--controllers")
            .arg(c.controller_addr())
            .arg("--node")
            .arg(node)
            .arg("--state-dir")
            .arg(state)
            .arg("--socket")
            .arg(socket)
            .env_remove("LS_CONTROLLERS"),
        &c.dir.path().join(format!("plugin-{node}.log")),
    );
    let start = Instant::now();
    while std::os::unix::net::UnixStream::connect(socket).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the plugin did not start:\n{}",
            p.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    p
}

fn mounted(path: &Path) -> bool {
    let want = path.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(want.as_str()))
}

#[test]
fn docker_volumes_through_the_plugin() {
    strata_tests::needs_cluster!(
        strata_tests::needs::tool("dockerd", "docker.io"),
        strata_tests::needs::files(&["/bin/busybox".into()], "install busybox-static")
    );
    let c = TestCluster::start(1);
    c.register_all();
    let dir = c.dir.path().to_path_buf();
    let state = dir.join("plugin-state");
    let config = dir.join("docker-volume.toml");
    std::fs::write(
        &config,
        "[defaults]\nstoragepool = \"pool_file\"\nreplicas = 1\nsize = \"48M\"\n",
    )
    .unwrap();
    assert!(
        !Path::new(SOCKET).exists() || std::os::unix::net::UnixStream::connect(SOCKET).is_err(),
        "{SOCKET} is served by another plugin; stop it first"
    );
    let mut plugin = start_plugin(&c, "node1", Path::new(SOCKET), &state, &config);
    let docker = Docker::start(&dir.join("docker"));
    docker.import_busybox(&dir, IMAGE);

    // Create, write from one container, read from another.
    docker.ok(&[
        "volume", "create", "-d", "linstor", "--opt", "size=64M", "v1",
    ]);
    let rd = c.linstor(&["resource-definition", "list", "-r", "v1"]);
    assert!(String::from_utf8_lossy(&rd.stdout).contains("v1"));
    let vd = c.linstor(&["volume-definition", "list", "-r", "v1"]);
    assert!(
        String::from_utf8_lossy(&vd.stdout).contains("64 MiB"),
        "{}",
        String::from_utf8_lossy(&vd.stdout)
    );
    let run = |args: &[&str]| {
        let mut a = vec!["run", "--rm", "--network", "none"];
        a.extend_from_slice(args);
        docker.ok(&a)
    };
    run(&["-v", "v1:/data", IMAGE, "sh", "-c", "echo hi > /data/f"]);
    assert_eq!(
        run(&["-v", "v1:/data", IMAGE, "cat", "/data/f"]).trim(),
        "hi"
    );
    // After the containers, nothing stays mounted.
    assert!(!mounted(&state.join("mnt/v1")));

    // ls / inspect show only the plugin's volumes.
    assert!(c
        .linstor(&["resource-definition", "create", "not_a_volume"])
        .status
        .success());
    let ls = docker.ok(&["volume", "ls", "--format", "{{.Driver}} {{.Name}}"]);
    assert!(ls.contains("linstor v1"), "{ls}");
    assert!(!ls.contains("not_a_volume"), "{ls}");
    let inspect = docker.ok(&["volume", "inspect", "v1"]);
    assert!(inspect.contains("\"Driver\": \"linstor\""), "{inspect}");
    assert!(inspect.contains("64 MiB"), "{inspect}");

    // Created on first use by --mount, with the configured defaults and the given size.
    let out = run(&[
        "--mount",
        "type=volume,volume-driver=linstor,src=auto.vol,dst=/data,volume-opt=size=32M",
        IMAGE,
        "df",
        "-k",
        "/data",
    ]);
    assert!(out.contains("/data"), "{out}");
    let ls = docker.ok(&["volume", "ls", "--format", "{{.Name}}"]);
    assert!(ls.lines().any(|l| l == "auto.vol"), "{ls}");

    // Bad input: clear errors, nothing created.
    for (name, opt, said) in [
        ("bad1", "size=lots", "invalid size 'lots'"),
        ("bad2", "colour=red", "unknown option 'colour'"),
        ("bad3", "storagepool=nosuch", "nosuch"),
    ] {
        let e = docker.fails(&["volume", "create", "-d", "linstor", "--opt", opt, name]);
        assert!(e.contains(said), "{name}: {e}");
    }
    let rds =
        String::from_utf8_lossy(&c.linstor(&["resource-definition", "list"]).stdout).to_string();
    for bad in ["bad1", "bad2", "bad3"] {
        assert!(!rds.contains(bad), "{bad} left behind:\n{rds}");
    }

    // Remove while a container uses it: refused; afterwards it goes with its data.
    docker.ok(&[
        "run",
        "-d",
        "--name",
        "holder",
        "--network",
        "none",
        "-v",
        "v1:/data",
        IMAGE,
        "sleep",
        "300",
    ]);
    let e = docker.fails(&["volume", "rm", "v1"]);
    assert!(e.contains("in use") || e.contains("mounted"), "{e}");
    assert!(mounted(&state.join("mnt/v1")));
    docker.ok(&["rm", "-f", "holder"]);
    assert!(!mounted(&state.join("mnt/v1")));
    docker.ok(&["volume", "rm", "v1"]);
    docker.ok(&["volume", "rm", "auto.vol"]);
    let rds =
        String::from_utf8_lossy(&c.linstor(&["resource-definition", "list"]).stdout).to_string();
    assert!(!rds.contains("| v1 ") && !rds.contains("auto.vol"), "{rds}");

    // Token authentication on (LINSTOR's initialize-token-auth): the plugin without a token
    // gets the controller's refusal; given the token in its settings, it works as before.
    let init = ok_replies(c.block(c.client().write(
        Method::POST,
        "/v1/controller/auth/initialize-token-auth",
        Some(&serde_json::json!({"description": "docker"})),
    )));
    let token = init
        .iter()
        .find_map(|r| r.obj_refs.get("token").cloned())
        .unwrap_or_else(|| panic!("no token in {init:?}"));
    let e = docker.fails(&["volume", "create", "-d", "linstor", "noauth"]);
    assert!(
        e.contains("401") || e.to_lowercase().contains("token"),
        "without a token: {e}"
    );
    plugin.stop();
    let with_token = dir.join("docker-volume-token.toml");
    std::fs::write(
        &with_token,
        format!(
            "auth_token = \"{token}\"\n# The controller of this test serves plain HTTP on loopback only.\nallow_insecure_auth = true\n[defaults]\nstoragepool = \"pool_file\"\nreplicas = 1\nsize = \"48M\"\n"
        ),
    )
    .unwrap();
    plugin = start_plugin(&c, "node1", Path::new(SOCKET), &state, &with_token);
    docker.ok(&["volume", "create", "-d", "linstor", "withauth"]);
    run(&[
        "-v",
        "withauth:/data",
        IMAGE,
        "sh",
        "-c",
        "echo tok > /data/f",
    ]);
    assert_eq!(
        run(&["-v", "withauth:/data", IMAGE, "cat", "/data/f"]).trim(),
        "tok"
    );
    docker.ok(&["volume", "rm", "withauth"]);
    let ls = docker.ok(&["volume", "ls", "--format", "{{.Name}}"]);
    assert!(
        !ls.lines().any(|l| l == "withauth" || l == "noauth"),
        "{ls}"
    );

    // The controller gone: a clear error, and dockerd does not hang.
    let mut c = c;
    c.kill_controller();
    let start = Instant::now();
    let e = docker.fails(&["volume", "create", "-d", "linstor", "v9"]);
    assert!(e.contains("cannot reach"), "{e}");
    assert!(start.elapsed() < Duration::from_secs(30));
    drop(docker);
    plugin.stop();
    assert!(!Path::new(SOCKET).exists(), "the plugin removes its socket");
    let _: PathBuf = state;
}

/// One call of the plugin protocol, sent as dockerd sends it: a POST without Content-Type and
/// with a trailing newline in the body.
fn call(socket: &Path, endpoint: &str, body: &str) -> serde_json::Value {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(socket).expect("plugin socket");
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let body = format!("{body}\n");
    let request = format!(
        "POST /{endpoint} HTTP/1.1\r\nHost: plugin\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let (head, json) = resp.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(head.starts_with("HTTP/1.1 200"), "{resp}");
    serde_json::from_str(json.trim()).unwrap_or_else(|e| panic!("{e}: {json}"))
}

/// The protocol as dockerd speaks it, with two nodes: a volume mounted on one node is refused
/// on the other; mount IDs are counted (also across a plugin restart).
#[test]
fn plugin_protocol_counts_mounts_and_keeps_a_volume_on_one_node() {
    strata_tests::needs_cluster!(
        strata_tests::needs::tool("dockerd", "docker.io"),
        strata_tests::needs::files(&["/bin/busybox".into()], "install busybox-static")
    );
    let c = TestCluster::start(2);
    c.register_all();
    let dir = c.dir.path().to_path_buf();
    let config = dir.join("none.toml");
    std::fs::write(&config, "").unwrap();
    let (sa, sb) = (dir.join("a.sock"), dir.join("b.sock"));
    let (state_a, state_b) = (dir.join("state-a"), dir.join("state-b"));
    let mut a = start_plugin(&c, "node1", &sa, &state_a, &config);
    let _b = start_plugin(&c, "node2", &sb, &state_b, &config);

    assert_eq!(
        call(&sa, "Plugin.Activate", "")["Implements"],
        serde_json::json!(["VolumeDriver"])
    );
    assert_eq!(
        call(&sa, "VolumeDriver.Capabilities", "{}")["Capabilities"]["Scope"],
        "global"
    );
    assert_eq!(
        call(&sa, "VolumeDriver.Get", r#"{"Name":"pv1"}"#)["Err"],
        "no such volume"
    );
    let r = call(
        &sa,
        "VolumeDriver.Create",
        r#"{"Name":"pv1","Opts":{"size":"16M","nodes":"node1","storagepool":"pool_file"}}"#,
    );
    assert_eq!(r["Err"], "", "{r}");
    let r = call(&sa, "VolumeDriver.Get", r#"{"Name":"pv1"}"#);
    assert_eq!(r["Volume"]["Name"], "pv1", "{r}");
    assert_eq!(r["Volume"]["Mountpoint"], "");

    let m1 = call(&sa, "VolumeDriver.Mount", r#"{"Name":"pv1","ID":"c1"}"#);
    let mp = PathBuf::from(m1["Mountpoint"].as_str().unwrap_or_default());
    assert!(mounted(&mp), "{m1}");
    std::fs::write(mp.join("f"), "data").unwrap();
    // On the other node: refused while it is mounted here.
    let r = call(&sb, "VolumeDriver.Mount", r#"{"Name":"pv1","ID":"c9"}"#);
    let e = r["Err"].as_str().unwrap_or_default();
    assert!(e.contains("in use on node 'node1'"), "{r}");
    // A second container here shares the mount; the first one leaving keeps it.
    let m2 = call(&sa, "VolumeDriver.Mount", r#"{"Name":"pv1","ID":"c2"}"#);
    assert_eq!(m2["Mountpoint"], m1["Mountpoint"]);
    assert_eq!(
        call(&sa, "VolumeDriver.Unmount", r#"{"Name":"pv1","ID":"c1"}"#)["Err"],
        ""
    );
    assert!(mounted(&mp));
    // A restarted plugin still knows who uses the volume.
    a.stop();
    let _a = start_plugin(&c, "node1", &sa, &state_a, &config);
    assert_eq!(
        call(&sa, "VolumeDriver.Path", r#"{"Name":"pv1"}"#)["Mountpoint"],
        m1["Mountpoint"]
    );
    let r = call(&sa, "VolumeDriver.Remove", r#"{"Name":"pv1"}"#);
    assert!(
        r["Err"].as_str().unwrap_or_default().contains("mounted"),
        "{r}"
    );
    assert_eq!(
        call(&sa, "VolumeDriver.Unmount", r#"{"Name":"pv1","ID":"c2"}"#)["Err"],
        ""
    );
    assert!(!mounted(&mp));
    // Mounted again, the data is there.
    let m3 = call(&sa, "VolumeDriver.Mount", r#"{"Name":"pv1","ID":"c3"}"#);
    assert_eq!(
        std::fs::read_to_string(mp.join("f")).unwrap(),
        "data",
        "{m3}"
    );
    assert_eq!(
        call(&sa, "VolumeDriver.Unmount", r#"{"Name":"pv1","ID":"c3"}"#)["Err"],
        ""
    );
    assert_eq!(
        call(&sa, "VolumeDriver.Remove", r#"{"Name":"pv1"}"#)["Err"],
        ""
    );
    assert_eq!(
        call(&sa, "VolumeDriver.List", "{}")["Volumes"],
        serde_json::json!([])
    );
    assert_eq!(
        call(&sa, "VolumeDriver.Get", r#"{"Name":"pv1"}"#)["Err"],
        "no such volume"
    );
    // A body that is not JSON gets an Err, not a hang or an HTTP error.
    let r = call(&sa, "VolumeDriver.Create", "{not json");
    assert!(
        r["Err"]
            .as_str()
            .unwrap_or_default()
            .contains("cannot read the request"),
        "{r}"
    );
}
