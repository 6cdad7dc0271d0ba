//! The OCI images (`packaging/oci/build-images.sh`: root file systems from Debian packages,
//! imported into docker) run the stack as containers in a real dockerd: the controller
//! serves the API from a bind-mounted database and keeps it across a container restart; the
//! client image runs commands and its interactive mode on a terminal; the satellite image
//! joins, makes a FILE_THIN pool and a volume on the host's loop devices. DRBD and LVM volumes
//! do not run here (no DRBD module, no device-mapper in this kernel), nor `--privileged` (the
//! host lacks CAP_SYS_RESOURCE): the satellite runs with the capabilities and devices listed
//! in docs/containers.md instead.

use std::process::Command;
use std::time::{Duration, Instant};

use strata_tests::docker::Docker;
use strata_tests::{free_port, output_text};

const TAG: &str = "oci-test";

/// Builds the images' root file systems and imports them into `docker`.
fn import_images(docker: &Docker) {
    let root = strata_tests::workspace();
    let out = Command::new(root.join("packaging/oci/build-images.sh"))
        .args(["--debug", "--no-import"])
        .current_dir(&root)
        .output()
        .expect("build-images.sh runs");
    assert!(
        out.status.success(),
        "build-images.sh failed:\n{}",
        output_text(&out)
    );
    for image in ["linstor-controller", "linstor-satellite", "linstor-client"] {
        let changes = std::fs::read_to_string(root.join(format!("target/oci/{image}.changes")))
            .expect("the image's changes");
        let mut args = vec!["import".to_string()];
        for line in changes.lines().filter(|l| !l.is_empty()) {
            args.push("--change".into());
            args.push(line.to_string());
        }
        args.push(
            root.join(format!("target/oci/{image}.tar"))
                .display()
                .to_string(),
        );
        args.push(format!("strata/{image}:{TAG}"));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        docker.ok(&args);
    }
}

fn wait(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// What a satellite container needs where `--privileged` is refused: every capability but
/// the one this host lacks, no seccomp or AppArmor filter, and the block devices.
const SATELLITE_RIGHTS: [&str; 10] = [
    "--cap-add=ALL",
    "--cap-drop=SYS_RESOURCE",
    "--security-opt=seccomp=unconfined",
    "--security-opt=apparmor=unconfined",
    "--device-cgroup-rule=b 7:* rmw",
    "--device-cgroup-rule=c 10:237 rmw",
    "--device-cgroup-rule=c 10:236 rmw",
    "--device-cgroup-rule=b 147:* rmw",
    "-v",
    "/dev:/dev",
];

#[test]
fn images_run_the_controller_the_satellite_and_the_client() {
    strata_tests::needs_cluster!(
        strata_tests::needs::tool("dockerd", "docker.io"),
        strata_tests::needs::tool("debootstrap", "debootstrap"),
    );
    let dir = tempfile::tempdir().unwrap();
    let docker = Docker::start(&dir.path().join("docker"));
    import_images(&docker);
    let port = free_port();
    let controllers = format!("127.0.0.1:{port}");
    let db = dir.path().join("controller-db");
    std::fs::create_dir_all(&db).unwrap();

    // The controller, its database in a directory of the host.
    let start_controller = || {
        docker.ok(&[
            "run",
            "-d",
            "--name",
            "linstor-controller",
            "--network",
            "host",
            "-v",
            &format!("{}:/var/lib/linstor", db.display()),
            &format!("strata/linstor-controller:{TAG}"),
            "--port",
            &port.to_string(),
            "--listen-addr",
            "127.0.0.1",
        ]);
    };
    start_controller();
    let serves = || strata_tests::http_status(port, "/v1/controller/version") == Some(200);
    wait("the controller container", Duration::from_secs(60), serves);
    assert!(
        db.join("linstor.sqlite").exists(),
        "the database is not in the bind mount"
    );

    let client = |args: &[&str]| {
        let mut all = vec!["run", "--rm", "--network", "host", "-e"];
        let env = format!("LS_CONTROLLERS={controllers}");
        all.push(&env);
        let image = format!("strata/linstor-client:{TAG}");
        all.push(&image);
        all.extend_from_slice(args);
        docker.ok(&all)
    };
    client(&[
        "resource-group",
        "create",
        "rg-oci",
        "--storage-pool",
        "pool_file",
        "--place-count",
        "1",
    ]);
    client(&["volume-group", "create", "rg-oci"]);

    // A satellite container on the host's network and devices, its state on the host.
    let state = dir.path().join("satellite-state");
    let pool = dir.path().join("pool");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::create_dir_all(&pool).unwrap();
    let sport = free_port();
    let mut args: Vec<String> = [
        "run",
        "-d",
        "--name",
        "linstor-satellite",
        "--network",
        "host",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(SATELLITE_RIGHTS.iter().map(|s| s.to_string()));
    args.extend([
        "-v".into(),
        format!("{}:/var/lib/linstor-satellite", state.display()),
        "-v".into(),
        format!("{0}:{0}", pool.display()),
        format!("strata/linstor-satellite:{TAG}"),
        "--port".into(),
        sport.to_string(),
        "--listen-addr".into(),
        "127.0.0.1".into(),
    ]);
    docker.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let token_file = state.join("tls/join-token");
    wait(
        "the satellite's join token",
        Duration::from_secs(60),
        || token_file.exists(),
    );
    let token = std::fs::read_to_string(&token_file).unwrap();
    client(&[
        "node",
        "create",
        "sat1",
        "127.0.0.1",
        "--satellite-port",
        &sport.to_string(),
        "--join-token",
        token.trim(),
    ]);
    wait("the satellite online", Duration::from_secs(60), || {
        client(&["-m", "node", "list"]).contains("ONLINE")
    });
    client(&[
        "storage-pool",
        "create",
        "filethin",
        "sat1",
        "pool_file",
        &pool.display().to_string(),
    ]);
    client(&[
        "resource-group",
        "spawn-resources",
        "rg-oci",
        "vol-oci",
        "64M",
    ]);
    let attached = || {
        let out = Command::new("losetup")
            .args(["--list", "--noheadings", "--output", "BACK-FILE"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).contains(&*pool.display().to_string())
    };
    wait(
        "the volume's loop device on the host",
        Duration::from_secs(60),
        attached,
    );
    let listed = client(&["-m", "volume", "list", "-r", "vol-oci"]);
    assert!(listed.contains("/dev/loop"), "{listed}");

    // The controller container restarts, and removed and made again on the same directory:
    // the cluster is still there.
    docker.ok(&["restart", "linstor-controller"]);
    wait("the restarted controller", Duration::from_secs(60), serves);
    docker.ok(&["rm", "-f", "linstor-controller"]);
    start_controller();
    wait(
        "a new controller container",
        Duration::from_secs(60),
        serves,
    );
    assert!(client(&["resource-group", "list"]).contains("rg-oci"));
    wait("the satellite back", Duration::from_secs(60), || {
        client(&["-m", "node", "list"]).contains("ONLINE")
    });
    assert!(client(&["resource", "list"]).contains("vol-oci"));

    // The client's interactive mode on a terminal, as `docker run -it ... interactive`.
    let out = dir.path().join("interactive.txt");
    let argv: Vec<String> = [
        "docker",
        "run",
        "-it",
        "--rm",
        "--network",
        "host",
        "-e",
        &format!("LS_CONTROLLERS={controllers}"),
        &format!("strata/linstor-client:{TAG}"),
        "interactive",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let env = [
        ("DOCKER_HOST", docker.host.clone()),
        ("TERM", "xterm".to_string()),
    ];
    let steps = [
        ("LINSTOR ==> ", "resource-group list\r"),
        ("rg-oci", ""),
        ("LINSTOR ==> ", "exit\r"),
    ];
    let mut p = strata_tests::spawn_on_pty(&argv, &env, &steps, &out, Duration::from_secs(60));
    assert!(p.wait().unwrap().success());
    let session = std::fs::read_to_string(&out).unwrap();
    assert!(session.contains("[exit 0, steps 3/3]"), "{session}");

    // Gone again: the volume's loop device is detached by the satellite in its container.
    client(&["resource-definition", "delete", "vol-oci"]);
    wait("the loop device detached", Duration::from_secs(60), || {
        !attached()
    });
}
