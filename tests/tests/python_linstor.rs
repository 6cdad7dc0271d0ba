//! The real python-linstor client (from PyPI) against a real cluster.
//!
//! The interpreter is `STRATA_PYTHON` (the CI script installs python-linstor into a virtual
//! environment and points this at it), else `python3`.

use std::process::Command;

use strata_tests::TestCluster;

#[test]
fn python_linstor_drives_the_cluster() {
    strata_tests::needs_cluster!(strata_tests::python_linstor());
    let c = TestCluster::start(2);
    let python = strata_tests::python();
    let nodes: Vec<serde_json::Value> = c
        .satellites
        .iter()
        .map(|s| {
            serde_json::json!({
                "name": s.name,
                "port": s.port,
                "pool_dir": s.pool_dir.display().to_string(),
                "token_file": s.state_dir.join("tls/join-token").display().to_string(),
            })
        })
        .collect();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("compat/python_linstor_compat.py");
    let out = Command::new(&python)
        .arg(&script)
        .env(
            "STRATA_CONTROLLER",
            format!("linstor://{}", c.controller_addr()),
        )
        .env("STRATA_NODES", serde_json::Value::Array(nodes).to_string())
        .output()
        .expect("run compatibility script");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "python-linstor compatibility failed:\n{text}\ncontroller log:\n{}",
        c.controller.log_text()
    );
    assert!(text.contains("Ran 11 tests"), "{text}");
    assert!(c.loop_devices().is_empty(), "volumes left attached");
}
