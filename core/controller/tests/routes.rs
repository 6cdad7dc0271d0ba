//! The served routes against the contract (`strata_api::paths::ROUTES`) and the LINSTOR REST
//! API specification (`core/api/linstor-rest-routes.txt`, extracted from its openapi file):
//! every route the contract names is served, and nothing else of the specification is; every
//! served route is in the specification, except the few named extensions; and the routes of
//! the specification not served are the ones listed in `docs/REST-COVERAGE.md`.
//!
//! `STRATA_WRITE_DOCS=1 cargo test -p strata-controller --test routes` rewrites that list.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use strata_api::paths;
use strata_controller::config::{resolve, FileConfig, Overrides};
use strata_controller::core::Core;
use strata_store::{Persistence, SqliteStore};

/// One object read by name: LINSTOR's specification reads objects only as filtered lists.
const ONE_BY_NAME: &str = "one object by name, where the specification has only the list";

/// Served although the specification does not name them, and why.
const EXTENSIONS: &[(&str, &str, &str)] = &[
    (
        "GET",
        "/health",
        "liveness probe for service managers and load balancers",
    ),
    (
        "GET",
        "/metrics",
        "Prometheus metrics (LINSTOR serves them too; its specification leaves them out)",
    ),
    (
        "GET",
        "/v1/events/resources",
        "server-sent events of resources' state (in use, disk and replication states, resync progress)",
    ),
    ("GET", "/v1/nodes/{}", ONE_BY_NAME),
    ("GET", "/v1/nodes/{}/net-interfaces/{}", ONE_BY_NAME),
    ("GET", "/v1/nodes/{}/storage-pools/{}", ONE_BY_NAME),
    ("GET", "/v1/resource-definitions/{}", ONE_BY_NAME),
    (
        "GET",
        "/v1/resource-definitions/{}/resources/{}",
        ONE_BY_NAME,
    ),
    (
        "GET",
        "/v1/resource-definitions/{}/resources/{}/volumes/{}",
        ONE_BY_NAME,
    ),
    (
        "GET",
        "/v1/resource-definitions/{}/volume-definitions/{}",
        ONE_BY_NAME,
    ),
    ("GET", "/v1/resource-groups/{}", ONE_BY_NAME),
    (
        "GET",
        "/v1/resource-groups/{}/volume-groups/{}",
        ONE_BY_NAME,
    ),
    (
        "POST",
        "/v1/nodes/{}/join-token",
        "a new one-time join token for a node whose satellite must join again (its state was lost, or its certificate revoked)",
    ),
    (
        "POST",
        "/v1/query-max-volume-size",
        "the OPTIONS query of the specification, for HTTP clients that send no body with OPTIONS",
    ),
];

/// A path with every placeholder written `{}`.
fn shape(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        out.push_str("{}");
        rest = &rest[open + rest[open..].find('}').unwrap() + 1..];
    }
    out + rest
}

fn spec() -> (String, BTreeSet<(String, String)>) {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../api/linstor-rest-routes.txt");
    let text = std::fs::read_to_string(&file).unwrap();
    let title = text
        .lines()
        .next()
        .unwrap()
        .trim_start_matches("# Methods and paths of the ")
        .to_string();
    let routes = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (m, p) = l.split_once(' ').unwrap();
            (m.to_string(), shape(p))
        })
        .collect();
    (title, routes)
}

/// Whether a route of ours (placeholders `{}`) takes the path of a specification route, whose
/// placeholders may be literal there (`toggle-disk/diskful` is our `toggle-disk/{how}`).
fn covers(ours: &(String, String), theirs: &(String, String)) -> bool {
    let (a, b): (Vec<&str>, Vec<&str>) =
        (ours.1.split('/').collect(), theirs.1.split('/').collect());
    ours.0 == theirs.0 && a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| x == y || *x == "{}")
}

fn contract() -> BTreeSet<(String, String)> {
    paths::ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), shape(p)))
        .collect()
}

/// Whether the controller serves `method` on the path `shape` (placeholders filled with `x`):
/// anything but the answer to an unknown path and 405 means a handler took the request.
/// The token auth routes turn authentication on along the way: the token they answer is
/// kept in `token` and sent with every later request.
async fn served(
    http: &reqwest::Client,
    base: &str,
    method: &str,
    shape: &str,
    token: &mut Option<String>,
) -> bool {
    let path = shape.replace("{}", "x");
    let mut req = http
        .request(method.parse().unwrap(), format!("{base}{path}"))
        .header("content-type", "application/json")
        .body("{}");
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default();
    if let Ok(rcs) = serde_json::from_str::<Vec<strata_api::ApiCallRc>>(&body) {
        if let Some(t) = rcs.iter().find_map(|rc| rc.obj_refs.get("token")) {
            *token = Some(t.clone());
        }
    }
    assert_ne!(status, 401, "{method} {path}: {body}");
    status != 405 && (status != 404 || !body.contains("No API call"))
}

fn coverage_doc(title: &str, unserved: &BTreeSet<(String, String)>) -> String {
    let mut out = String::from(
        "# REST API coverage\n\n\
         Routes of the LINSTOR REST API v1 specification that the controller does not serve;\n\
         a request to one is answered with HTTP 404 (unknown path) or 405 (method), as JSON.\n\
         `core/controller/tests/routes.rs` checks this list against the routes served and the\n\
         specification (`core/api/linstor-rest-routes.txt`, written by `scripts/spec-routes.py`\n\
         from the openapi file). Rewrite it with\n\
         `STRATA_WRITE_DOCS=1 cargo test -p strata-controller --test routes`.\n\n",
    );
    out.push_str(&format!("Specification: {title}\n\n"));
    out.push_str("## Served although not in the specification\n\n");
    for (m, p, why) in EXTENSIONS {
        out.push_str(&format!("- `{m} {p}`: {why}\n"));
    }
    out.push_str(&format!("\n## Not served ({})\n\n", unserved.len()));
    for (m, p) in unserved {
        out.push_str(&format!("- `{m} {p}`\n"));
    }
    out
}

#[test]
fn served_routes_follow_the_contract_and_the_specification() {
    let (title, spec) = spec();
    let contract = contract();
    let extensions: BTreeSet<(String, String)> = EXTENSIONS
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();

    // Every route of the contract is in the specification, or a named extension.
    let outside: Vec<_> = contract
        .iter()
        .filter(|r| !spec.iter().any(|s| covers(r, s)) && !extensions.contains(*r))
        .collect();
    assert!(
        outside.is_empty(),
        "served but not in the specification: {outside:?}"
    );
    let stale: Vec<_> = extensions.difference(&contract).collect();
    assert!(stale.is_empty(), "extensions no longer served: {stale:?}");

    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let unserved: BTreeSet<(String, String)> = runtime.block_on(async {
        let mut settings = resolve(&FileConfig::default(), &Overrides::default()).unwrap();
        let db = dir.path().join("linstor.sqlite");
        settings.database = strata_controller::config::Database::Sqlite(db.clone());
        settings.data_dir = dir.path().to_path_buf();
        let store = SqliteStore::open(&db).unwrap();
        let core: Arc<Core> = Core::new(
            Box::new(store) as Box<dyn Persistence>,
            "routes-test".into(),
            settings,
        )
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, strata_controller::rest::router(core))
                .await
                .unwrap()
        });
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(20))
            .build()
            .unwrap();
        let mut token = None;
        for (m, p) in &contract {
            assert!(
                served(&http, &base, m, p, &mut token).await,
                "{m} {p} is in the contract but not served"
            );
        }
        let mut unserved = BTreeSet::new();
        let not_ours = spec
            .iter()
            .filter(|s| !contract.iter().any(|r| covers(r, s)));
        for (m, p) in not_ours {
            assert!(
                !served(&http, &base, m, p, &mut token).await,
                "{m} {p} is served but missing from strata_api::paths::ROUTES"
            );
            unserved.insert((m.clone(), p.clone()));
        }
        unserved
    });

    let doc = coverage_doc(&title, &unserved);
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/REST-COVERAGE.md");
    if std::env::var_os("STRATA_WRITE_DOCS").is_some() {
        std::fs::write(&file, &doc).unwrap();
    }
    let written = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(
        written == doc,
        "docs/REST-COVERAGE.md is not the list of unserved routes; rewrite it with \
         STRATA_WRITE_DOCS=1 cargo test -p strata-controller --test routes"
    );
}
