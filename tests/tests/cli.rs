//! The `linstor` CLI against a real cluster: the lines of existing guides, as written.

use std::io::Write;
use std::process::{Command, Stdio};

use strata_tests::{bin, output_text, TestCluster};

fn json(c: &TestCluster, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["-m"];
    all.extend_from_slice(args);
    let o = c.linstor(&all);
    assert!(o.status.success(), "{}", output_text(&o));
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", output_text(&o)))
}

/// The rows of a `-m` list answer (the client wraps lists like upstream does, or not).
fn rows(v: &serde_json::Value) -> Vec<serde_json::Value> {
    match v {
        serde_json::Value::Array(a) if a.len() == 1 && a[0].is_array() => {
            a[0].as_array().unwrap().clone()
        }
        serde_json::Value::Array(a) => a.clone(),
        other => panic!("not a list: {other}"),
    }
}

#[test]
fn guide_lines_work_as_written() {
    strata_tests::needs_cluster!();
    let c = TestCluster::start(2);
    let p1 = c.satellites[0].port.to_string();
    let p2 = c.satellites[1].port.to_string();
    let pool1 = c.satellites[0].pool_dir.display().to_string();
    let pool2 = c.satellites[1].pool_dir.display().to_string();

    let out = c.linstor_ok(&[
        "node",
        "create",
        "node1",
        "127.0.0.1",
        "--node-type",
        "combined",
        "--satellite-port",
        &p1,
    ]);
    assert!(out.contains("SUCCESS"), "{out}");
    // The one step a secure set-up adds to the guide: the satellite gets the token the
    // controller printed (or the node is created with the satellite's: --join-token).
    c.hand_printed_token(0, &out);
    let out = c.linstor_ok(&["n", "c", "node2", "127.0.0.1", "--satellite-port", &p2]);
    c.hand_printed_token(1, &out);
    let nodes = c.linstor_ok(&["node", "list"]);
    for needle in [
        "node1",
        "node2",
        "COMBINED",
        "SATELLITE",
        "Online",
        &format!("127.0.0.1:{p1}"),
    ] {
        assert!(nodes.contains(needle), "missing {needle} in:\n{nodes}");
    }

    // New and old argument order of storage-pool create.
    c.linstor_ok(&[
        "storage-pool",
        "create",
        "filethin",
        "node1",
        "pool_file",
        &pool1,
    ]);
    c.linstor_ok(&[
        "storage-pool",
        "create",
        "node2",
        "pool_file",
        "filethin",
        &pool2,
    ]);
    let (code, out) = c.linstor_fails(&[
        "storage-pool",
        "create",
        "lvm",
        "node1",
        "pool_ssd",
        "vg_ssd",
    ]);
    assert_eq!(code, 10);
    assert!(
        out.contains("ERROR") && out.contains("device-mapper"),
        "{out}"
    );
    let (_, out) = c.linstor_fails(&["storage-pool", "create", "node1", "swpool", "lvm", "sw_ssd"]);
    assert!(out.contains("LVM"), "{out}");
    c.linstor_ok(&["storage-pool-definition", "create", "drbdpool"]);
    let sp = c.linstor_ok(&["sp", "l"]);
    assert!(sp.contains("FILE_THIN") && sp.contains(&pool1), "{sp}");
    assert!(c.linstor_ok(&["spd", "l"]).contains("drbdpool"));

    c.linstor_ok(&[
        "resource-group",
        "create",
        "my_ssd_group",
        "--storage-pool",
        "pool_file",
        "--place-count",
        "1",
    ]);
    c.linstor_ok(&["volume-group", "create", "my_ssd_group"]);
    let out = c.linstor_ok(&[
        "resource-group",
        "spawn-resources",
        "my_ssd_group",
        "my_ssd_res",
        "2G",
    ]);
    assert!(out.contains("is ready"), "{out}");
    let r = rows(&json(&c, &["resource", "list", "-r", "my_ssd_res"]));
    assert_eq!(r.len(), 1);
    let vols = c.linstor_ok(&["resource", "list-volumes"]);
    assert!(
        vols.contains("my_ssd_res") && vols.contains("/dev/loop") && vols.contains("Created"),
        "{vols}"
    );
    let v = rows(&json(&c, &["volume", "list", "-r", "my_ssd_res"]));
    assert_eq!(v[0]["volumes"][0]["usable_size_kib"], 2 * 1024 * 1024);

    // Two diskful copies would need DRBD; the upstream line is refused with the reason.
    c.linstor_ok(&[
        "resource-group",
        "create",
        "pair",
        "--storage-pool",
        "pool_file",
        "--place-count",
        "2",
    ]);
    c.linstor_ok(&["volume-group", "create", "pair"]);
    let (code, out) = c.linstor_fails(&[
        "resource-group",
        "spawn-resources",
        "pair",
        "pair_res",
        "1G",
    ]);
    assert_eq!(code, 10);
    assert!(out.contains("DRBD"), "{out}");
    // Several pools: only the list is set; one pool: both, as LINSTOR answers.
    c.linstor_ok(&[
        "resource-group",
        "modify",
        "pair",
        "--storage-pool",
        "pool_file",
        "pool_b",
        "pool_c",
    ]);
    let rg = rows(&json(&c, &["resource-group", "list", "-r", "pair"]));
    let f = &rg[0]["select_filter"];
    assert_eq!(
        f["storage_pool_list"],
        serde_json::json!(["pool_file", "pool_b", "pool_c"]),
        "{f}"
    );
    assert!(f.get("storage_pool").is_none_or(|p| p.is_null()), "{f}");
    c.linstor_ok(&[
        "resource-group",
        "modify",
        "pair",
        "--storage-pool",
        "pool_file",
    ]);
    let rg = rows(&json(&c, &["resource-group", "list", "-r", "pair"]));
    let f = &rg[0]["select_filter"];
    assert_eq!(f["storage_pool"], "pool_file", "{f}");
    assert_eq!(
        f["storage_pool_list"],
        serde_json::json!(["pool_file"]),
        "{f}"
    );

    c.linstor_ok(&[
        "resource-definition",
        "create",
        "--layer-list",
        "storage",
        "LocalData",
    ]);
    c.linstor_ok(&["volume-definition", "create", "LocalData", "150m"]);
    let vd = rows(&json(&c, &["volume-definition", "list", "-r", "LocalData"]));
    assert_eq!(
        vd[0]["volume_definitions"][0]["size_kib"],
        150 * 1024,
        "{vd:?}"
    );
    // The guide's local-volume example: the user chose a layer list without DRBD, so each
    // node gets its own, independent volume, with a warning that says so.
    let out = c.linstor_ok(&[
        "resource",
        "create",
        "--storage-pool",
        "pool_file",
        "node1",
        "node2",
        "LocalData",
    ]);
    assert!(out.contains("WARNING"), "{out}");
    assert!(out.contains("unreplicated"), "{out}");
    let placed = rows(&json(&c, &["resource", "list", "-r", "LocalData"]));
    let mut nodes: Vec<&str> = placed
        .iter()
        .map(|r| r["node_name"].as_str().unwrap())
        .collect();
    nodes.sort();
    assert_eq!(nodes, ["node1", "node2"], "{placed:?}");
    for (i, dir) in [&pool1, &pool2].into_iter().enumerate() {
        let file = std::path::Path::new(dir).join("LocalData_00000.img");
        assert!(file.exists(), "node{} has no {}", i + 1, file.display());
    }
    for r in &placed {
        let dev = r["volumes"][0]["device_path"].as_str().unwrap_or("");
        assert!(dev.starts_with("/dev/loop"), "{r}");
    }
    c.linstor_ok(&["resource", "delete", "node2", "LocalData"]);
    c.linstor_ok(&["resource-definition", "create", "backups"]);
    c.linstor_ok(&["volume-definition", "create", "backups", "1371956KiB"]);
    c.linstor_ok(&["resource", "create", "backups", "--auto-place", "1"]);
    let all = c.linstor_ok(&["r", "l"]);
    for name in ["my_ssd_res", "LocalData", "backups"] {
        assert!(all.contains(name), "{all}");
    }

    // Properties.
    c.linstor_ok(&["node", "set-property", "node1", "Aux/site", "a"]);
    assert!(c
        .linstor_ok(&["node", "list-properties", "node1"])
        .contains("Aux/site"));
    c.linstor_ok(&["controller", "set-property", "Aux/owner", "tests"]);
    assert!(c
        .linstor_ok(&["controller", "list-properties"])
        .contains("tests"));
    let (code, out) = c.linstor_fails(&["node", "set-property", "node1", "Bogus", "1"]);
    assert_eq!(code, 10);
    assert!(out.contains("Aux/"), "{out}");

    // Deletion.
    c.linstor_ok(&["resource", "delete", "node1", "LocalData"]);
    c.linstor_ok(&["resource-definition", "delete", "LocalData"]);
    let rds = rows(&json(&c, &["resource-definition", "list"]));
    assert!(rds.iter().all(|d| d["name"] != "LocalData"), "{rds:?}");
}

#[test]
fn bad_input_and_unreachable_controllers_exit_non_zero() {
    strata_tests::needs_cluster!();
    let c = TestCluster::start(0);
    // Sizes are refused before anything is sent.
    c.linstor_ok(&["resource-definition", "create", "sized"]);
    for bad in ["0", "-5G", "garbage", "12X"] {
        let (code, out) = c.linstor_fails(&["volume-definition", "create", "sized", bad]);
        assert_ne!(code, 0);
        assert!(!out.is_empty());
    }
    let vd = rows(&json(&c, &["volume-definition", "list", "-r", "sized"]));
    assert!(
        vd[0]["volume_definitions"]
            .as_array()
            .map(|a| a.is_empty())
            .unwrap_or(true),
        "{vd:?}"
    );
    // Names.
    let (code, out) = c.linstor_fails(&["resource-definition", "create", "1bad"]);
    assert_eq!(code, 10);
    assert!(out.contains("ERROR"), "{out}");
    // Unknown objects.
    let (code, _) = c.linstor_fails(&["resource", "create", "ghostnode", "sized"]);
    assert_eq!(code, 10);
    // No controller.
    let o = Command::new(bin("linstor"))
        .args(["--controllers", "127.0.0.1:1", "node", "list"])
        .env_remove("LS_CONTROLLERS")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(20), "{}", output_text(&o));
    assert!(output_text(&o).contains("127.0.0.1:1"));
    // LS_CONTROLLERS selects the controller.
    let o = Command::new(bin("linstor"))
        .args(["node", "list"])
        .env("LS_CONTROLLERS", c.controller_addr())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", output_text(&o));
}

#[test]
fn node_without_address_is_resolved_and_interactive_mode_works() {
    strata_tests::needs_cluster!();
    let c = TestCluster::start(0);
    // No address: the name is resolved. A name that resolves only to loopback would be
    // useless to other nodes, so it is refused with a hint, and nothing is recorded.
    let (code, out) = c.linstor_fails(&["node", "create", "--node-type", "Combined", "localhost"]);
    assert_eq!(code, 2);
    assert!(out.contains("loopback") && out.contains("address"), "{out}");
    assert!(rows(&json(&c, &["node", "list"])).is_empty());
    c.linstor_ok(&[
        "node",
        "create",
        "localhost",
        "127.0.0.1",
        "--node-type",
        "Combined",
        "--satellite-port",
        "1",
    ]);

    let mut child = Command::new(bin("linstor"))
        .args(["--controllers", &c.controller_addr(), "--no-color"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"node list\nresource-definition create 1bad\nnode list\nexit\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let out = output_text(&o);
    assert_eq!(
        out.matches("localhost").count(),
        2,
        "both lists ran despite the error between:\n{out}"
    );
    assert!(out.contains("ERROR"), "{out}");
}

#[test]
fn drbd_options_answer_as_linstor_does() {
    strata_tests::needs_cluster!();
    // The entry for the changed properties first, then the object's MODIFIED entry.
    const MODIFIED: u64 = 3;
    const MASK_MOD: u64 = 0x0200_0000;
    const INFO_PROP_SET: u64 = 10002;
    const INFO_PROP_REMOVED: u64 = 10005;
    let c = TestCluster::start(0);
    c.linstor_ok(&["resource-definition", "create", "r1"]);
    c.linstor_ok(&["volume-definition", "create", "r1", "10M"]);
    c.linstor_ok(&["resource-group", "create", "g1"]);
    let cases: [(&[&str], u64, u64); 5] = [
        (
            &[
                "resource-definition",
                "drbd-options",
                "--max-buffers",
                "8000",
                "r1",
            ],
            0x0038_0000,
            INFO_PROP_SET,
        ),
        (
            &[
                "volume-definition",
                "drbd-options",
                "--al-extents",
                "6007",
                "r1",
                "0",
            ],
            0x0030_0000,
            INFO_PROP_SET,
        ),
        (
            &[
                "resource-group",
                "drbd-options",
                "--max-buffers",
                "8000",
                "g1",
            ],
            0x0044_0000,
            INFO_PROP_SET,
        ),
        (
            &["controller", "drbd-options", "--max-buffers", "8000"],
            0x0010_0000,
            INFO_PROP_SET,
        ),
        (
            &["controller", "drbd-options", "--unset-max-buffers"],
            0x0010_0000,
            INFO_PROP_REMOVED,
        ),
    ];
    for (args, object, first_code) in cases {
        let replies = rows(&json(&c, args));
        assert!(replies.len() >= 2, "{args:?}: {replies:?}");
        let code = |r: &serde_json::Value| r["ret_code"].as_i64().unwrap() as u64;
        let first = code(&replies[replies.len() - 2]);
        assert_eq!(first & 0x7FFF, first_code & 0x7FFF, "{args:?}: {replies:?}");
        let last = code(&replies[replies.len() - 1]);
        assert_eq!(last, MODIFIED | MASK_MOD | object, "{args:?}: {replies:?}");
    }
}

/// Completions for every shell and the manual pages, as packages ship them.
#[test]
fn completions_and_manual_pages_are_generated() {
    let run = |args: &[&str]| {
        let out = std::process::Command::new(strata_tests::bin("linstor"))
            .args(args)
            .output()
            .unwrap();
        (out.status.code(), strata_tests::output_text(&out))
    };
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef linstor"),
        ("fish", "complete -c linstor"),
    ] {
        let (code, text) = run(&["--generate-completion", shell]);
        assert_eq!(code, Some(0), "{shell}: {text}");
        assert!(text.contains(marker), "{shell}: {text}");
        for word in ["resource-definition", "storage-pool", "controllers"] {
            assert!(text.contains(word), "{shell} completion lacks {word}");
        }
    }
    let (code, text) = run(&["--generate-completion", "tcsh"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("bash, zsh, fish"), "{text}");

    let dir = tempfile::tempdir().unwrap();
    let (code, text) = run(&["--generate-man", dir.path().to_str().unwrap()]);
    assert_eq!(code, Some(0), "{text}");
    let top = std::fs::read_to_string(dir.path().join("linstor.1")).unwrap();
    assert!(
        top.starts_with(".ie") || top.contains(".TH linstor"),
        "{top}"
    );
    assert!(top.contains("resource\\-definition"), "{top}");
    let node = std::fs::read_to_string(dir.path().join("linstor-node.1")).unwrap();
    assert!(
        node.contains(".TH linstor\\-node") || node.contains(".TH linstor-node"),
        "{node}"
    );
    let pages = std::fs::read_dir(dir.path()).unwrap().count();
    assert!(pages > 10, "only {pages} pages");
}

#[test]
fn formats_and_the_terminal_session() {
    strata_tests::needs_cluster!(strata_tests::python_modules(&["pty"]));
    let c = TestCluster::start(2);
    c.register_all();

    // --format json is -m; yaml is the same data as YAML; both after the command too.
    let m = c.linstor_ok(&["-m", "node", "list"]);
    let j = c.linstor_ok(&["node", "list", "--format", "json"]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&m).unwrap(),
        serde_json::from_str::<serde_json::Value>(&j).unwrap()
    );
    let y = c.linstor_ok(&["--format", "yaml", "node", "list"]);
    assert!(
        y.contains("name: node1") && y.contains("connection_status: ONLINE"),
        "{y}"
    );
    assert!(!y.trim_start().starts_with('['), "{y}");
    let t = c.linstor_ok(&["node", "list", "--format", "table"]);
    assert!(t.contains("node1") && t.contains("Online"), "{t}");
    let (code, said) = c.linstor_fails(&["node", "list", "--format", "xml"]);
    assert_ne!(code, 0);
    assert!(said.contains("xml") && said.contains("yaml"), "{said}");

    // Interactive mode on a terminal: Tab completes, the history recalls, `exit` leaves.
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("session.txt");
    let argv = vec![
        bin("linstor").display().to_string(),
        "--controllers".into(),
        c.controller_addr(),
    ];
    let env = [
        ("HOME", home.path().display().to_string()),
        ("TERM", "xterm".to_string()),
    ];
    let steps = [
        ("LINSTOR ==> ", "node li\t"),
        ("list", "\r"),
        ("LINSTOR ==> ", "\x1b[A"),
        ("node list", "\r"),
        ("LINSTOR ==> ", "exit\r"),
    ];
    let mut p = strata_tests::spawn_on_pty(
        &argv,
        &env,
        &steps,
        &out,
        std::time::Duration::from_secs(30),
    );
    assert!(p.wait().unwrap().success());
    let session = std::fs::read_to_string(&out).unwrap();
    assert!(session.contains("[exit 0, steps 5/5]"), "{session}");
    assert!(
        session.contains("node list"),
        "Tab did not complete: {session}"
    );
    assert_eq!(
        session.matches("node2").count(),
        2,
        "the recalled line did not list again: {session}"
    );
    let history =
        std::fs::read_to_string(home.path().join(".config/linstor/history")).unwrap_or_default();
    assert!(history.contains("node list"), "{history}");
}
