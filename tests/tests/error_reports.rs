//! Error reports: a satellite's failed step is written down once, with the node, the
//! resource and the failure's text, under an id the answer carries; `linstor error-reports`
//! lists, shows and deletes it.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use strata_client::{ClientError, Method};
use strata_tests::{run_ok, TestCluster};

/// Makes a directory immutable (nothing can be created in it, even by root) while it lives.
struct Immutable(PathBuf);

impl Immutable {
    fn new(dir: &Path) -> Immutable {
        run_ok(Command::new("chattr").arg("+i").arg(dir));
        Immutable(dir.to_path_buf())
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

#[test]
fn a_failed_step_gets_a_report_that_can_be_listed_shown_and_deleted() {
    strata_tests::needs_cluster!();
    let c = TestCluster::start(1);
    c.register_all();
    c.linstor_ok(&["resource-definition", "create", "doomed"]);
    c.linstor_ok(&["volume-definition", "create", "doomed", "16M"]);
    let pool = c.satellites[0].pool_dir.clone();
    let guard = Immutable::new(&pool);

    let client = c.client();
    let answer = c.block(client.write(
        Method::POST,
        "/v1/resource-definitions/doomed/resources",
        Some(
            &json!([{"resource": {"node_name": "node1", "props": {"StorPoolName": "pool_file"}}}]),
        ),
    ));
    let replies = match answer {
        Err(ClientError::Api { replies, .. }) => replies,
        Ok(replies) => replies,
        Err(e) => panic!("{e}"),
    };
    let failed = replies.iter().find(|r| r.is_error()).unwrap_or_else(|| {
        panic!("the volume cannot be made in an immutable directory: {replies:#?}")
    });
    assert_eq!(failed.error_report_ids.len(), 1, "{failed:#?}");
    let id = failed.error_report_ids[0].clone();

    // The report, by REST: node, module, the resource and the satellite's own words.
    let (status, body) = c
        .block(client.raw(Method::GET, &format!("/v1/error-reports/{id}"), None))
        .unwrap();
    assert_eq!(status.as_u16(), 200);
    let found: Value = serde_json::from_slice(&body).unwrap();
    let report = &found[0];
    assert_eq!(report["node_name"], "node1");
    assert_eq!(report["module"], "SATELLITE");
    assert_eq!(report["filename"], format!("ErrorReport-{id}.log"));
    let text = report["text"].as_str().unwrap();
    assert!(text.contains("resource 'doomed' on node 'node1'"), "{text}");
    assert!(
        text.contains(failed.cause.as_deref().unwrap_or("?")),
        "{text}\n{failed:#?}"
    );

    // Polls see the same failure again: still one report.
    drop(guard);
    let (_, body) = c
        .block(client.raw(Method::GET, "/v1/error-reports?node=node1", None))
        .unwrap();
    let listed: Value = serde_json::from_slice(&body).unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1, "{listed:#?}");
    assert!(listed[0].get("text").is_none(), "no text unless asked for");

    // A deletion that names nothing is refused and deletes nothing.
    let refused = c.block(client.write(Method::PATCH, "/v1/error-reports", Some(&json!({}))));
    match refused {
        Err(ClientError::Api { status, replies }) => {
            assert_eq!(status, 400, "{replies:#?}");
            assert!(
                replies[0].message.contains("no error reports"),
                "{replies:#?}"
            );
        }
        other => panic!("an empty deletion was not refused: {other:?}"),
    }
    let (status, _) = c
        .block(client.raw(Method::GET, &format!("/v1/error-reports/{id}"), None))
        .unwrap();
    assert_eq!(status.as_u16(), 200);

    // The command line: list, show, delete.
    let table = c.linstor_ok(&["error-reports", "list"]);
    assert!(table.contains(&id) && table.contains("node1"), "{table}");
    let shown = c.linstor_ok(&["err", "show", &id]);
    assert!(shown.contains("doomed"), "{shown}");
    let out = c.linstor_ok(&["err", "delete", &id]);
    assert!(out.contains(&id), "{out}");
    let (status, _) = c
        .block(client.raw(Method::GET, &format!("/v1/error-reports/{id}"), None))
        .unwrap();
    assert_eq!(status.as_u16(), 404);
    let (code, out) = c.linstor_fails(&["err", "show", &id]);
    assert_ne!(code, 0, "{out}");
}
