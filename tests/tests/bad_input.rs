//! Bad input gets a clear error with the right status and code, and changes nothing.

use serde_json::{json, Value};
use strata_api::rc::{obj_mask, MASK_CRT};
use strata_client::{Client, ClientError, Method};
use strata_model::ObjKind;
use strata_tests::{ok_replies, ApiCallRc, TestCluster};

fn call(
    c: &TestCluster,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Result<Vec<ApiCallRc>, ClientError> {
    let client = c.client();
    c.block(client.write(method, path, body.as_ref()))
}

/// Asserts a request fails with `status` and LINSTOR code `code`, with a message.
fn refused(
    c: &TestCluster,
    method: Method,
    path: &str,
    body: Option<Value>,
    status: u16,
    code: u64,
) -> ApiCallRc {
    match call(c, method.clone(), path, body.clone()) {
        Err(ClientError::Api { status: s, replies }) => {
            assert_eq!(s, status, "{method} {path} {body:?}: {replies:#?}");
            let err = replies
                .iter()
                .find(|r| r.is_error())
                .unwrap_or_else(|| panic!("no error reply: {replies:#?}"));
            assert_eq!(err.code(), code, "{method} {path} {body:?}: {err:#?}");
            assert!(err.ret_code < 0, "error ret_codes are negative");
            assert!(!err.message.is_empty());
            err.clone()
        }
        other => panic!("{method} {path} {body:?} should have failed: {other:?}"),
    }
}

/// Everything a user can list, to compare before and after.
fn snapshot(c: &TestCluster) -> String {
    let client = c.client();
    let mut s = String::new();
    for path in [
        "/v1/nodes",
        "/v1/view/storage-pools",
        "/v1/storage-pool-definitions",
        "/v1/resource-definitions?with_volume_definitions=true",
        "/v1/view/resources",
        "/v1/resource-groups",
        "/v1/controller/properties",
        "/v1/view/snapshots",
    ] {
        let (_, body) = c.block(client.raw(Method::GET, path, None)).unwrap();
        let mut v: Value = serde_json::from_slice(&body).unwrap();
        // Capacity and connection state are observations, not state.
        strip_observed(&mut v);
        s.push_str(&v.to_string());
        s.push('\n');
    }
    s
}

fn strip_observed(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for k in [
                "free_capacity",
                "total_capacity",
                "connection_status",
                "allocated_size_kib",
            ] {
                m.remove(k);
            }
            m.values_mut().for_each(strip_observed);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_observed),
        _ => {}
    }
}

fn setup() -> TestCluster {
    let c = TestCluster::start(1);
    c.register_all();
    ok_replies(call(
        &c,
        Method::POST,
        "/v1/resource-groups",
        Some(json!({"name": "rg1", "select_filter": {"place_count": 1}})),
    ));
    ok_replies(call(
        &c,
        Method::POST,
        "/v1/resource-groups/rg1/volume-groups",
        Some(json!({})),
    ));
    ok_replies(call(
        &c,
        Method::POST,
        "/v1/resource-groups/rg1/spawn",
        Some(json!({"resource_definition_name": "used", "volume_sizes": [4096]})),
    ));
    c
}

#[test]
fn bad_requests_are_refused_and_change_nothing() {
    strata_tests::needs_cluster!();
    use Method as M;
    let c = setup();
    let before = snapshot(&c);
    let nif = |addr: &str| json!([{"name": "default", "address": addr, "satellite_port": 3366}]);

    // Names.
    for bad in ["be ta", "-node", "node-", "x", "under_score"] {
        let e = refused(
            &c,
            M::POST,
            "/v1/nodes",
            Some(json!({"name": bad, "type": "SATELLITE", "net_interfaces": nif("10.9.9.9")})),
            400,
            200,
        );
        assert!(e.cause.is_some() && e.correction.is_some(), "{e:?}");
    }
    for bad in [
        "a",
        "1abc",
        "all",
        "PROXY",
        "has space",
        "x.y",
        &"r".repeat(49),
        "__",
    ] {
        refused(
            &c,
            M::POST,
            "/v1/resource-definitions",
            Some(json!({"resource_definition": {"name": bad}})),
            400,
            202,
        );
    }
    refused(
        &c,
        M::POST,
        "/v1/resource-groups",
        Some(json!({"name": "9grp"})),
        400,
        237,
    );
    refused(
        &c,
        M::POST,
        "/v1/nodes/node1/storage-pools",
        Some(
            json!({"storage_pool_name": "ab", "provider_kind": "FILE_THIN", "props": {"StorDriver/StorPoolName": "/tmp/x"}}),
        ),
        400,
        208,
    );
    // Addresses, types, ports.
    refused(
        &c,
        M::POST,
        "/v1/nodes",
        Some(json!({"name": "gamma", "type": "SATELLITE", "net_interfaces": nif("300.1.1.1")})),
        400,
        210,
    );
    refused(
        &c,
        M::POST,
        "/v1/nodes",
        Some(json!({"name": "gamma", "type": "TOASTER", "net_interfaces": nif("10.9.9.9")})),
        400,
        201,
    );
    refused(
        &c,
        M::POST,
        "/v1/nodes",
        Some(json!({"name": "gamma", "type": "SATELLITE", "net_interfaces": []})),
        400,
        210,
    );
    refused(
        &c,
        M::POST,
        "/v1/nodes",
        Some(
            json!({"name": "gamma", "type": "SATELLITE", "net_interfaces": [{"name": "default", "address": "10.9.9.9", "satellite_port": 99999}]}),
        ),
        400,
        211,
    );
    // Sizes.
    ok_replies(call(
        &c,
        M::POST,
        "/v1/resource-definitions",
        Some(json!({"resource_definition": {"name": "sized"}})),
    ));
    let before_sized = snapshot(&c);
    for bad in [json!(0), json!(-5)] {
        refused(
            &c,
            M::POST,
            "/v1/resource-definitions/sized/volume-definitions",
            Some(json!({"volume_definition": {"size_kib": bad}})),
            400,
            206,
        );
    }
    refused(
        &c,
        M::POST,
        "/v1/resource-definitions/sized/volume-definitions",
        Some(json!({"volume_definition": {}})),
        400,
        206,
    );
    refused(
        &c,
        M::POST,
        "/v1/resource-definitions/sized/volume-definitions",
        Some(json!({"volume_definition": {"size_kib": "lots"}})),
        400,
        234,
    );
    refused(
        &c,
        M::POST,
        "/v1/resource-definitions/sized/volume-definitions",
        Some(json!({"volume_definition": {"size_kib": 99999999999999999999u128 as f64}})),
        400,
        234,
    );
    refused(
        &c,
        M::POST,
        "/v1/resource-definitions/sized/volume-definitions",
        Some(json!({"volume_definition": {"size_kib": 4096, "volume_number": 70000}})),
        400,
        205,
    );
    refused(
        &c,
        M::POST,
        "/v1/resource-groups/rg1/spawn",
        Some(json!({"resource_definition_name": "zero", "volume_sizes": [0]})),
        400,
        206,
    );
    refused(
        &c,
        M::POST,
        "/v1/resource-groups/rg1/spawn",
        Some(json!({"resource_definition_name": "two", "volume_sizes": [4096, 4096]})),
        400,
        228,
    );
    refused(
        &c,
        M::POST,
        "/v1/resource-groups",
        Some(json!({"name": "rg0", "select_filter": {"place_count": 0}})),
        400,
        219,
    );
    assert_eq!(snapshot(&c), before_sized);
    // Unknown objects: 404.
    // A create that names an unknown parent: the mask names the object being created, as
    // LINSTOR's do (FAIL_NOT_FOUND_RSC_DFN | MASK_CRT | MASK_VLM_DFN, ...).
    let created = |e: ApiCallRc, what: ObjKind| {
        let rc = e.ret_code as u64;
        assert_eq!(rc & MASK_CRT, MASK_CRT, "{e:#?}");
        assert_eq!(rc & 0x007C_0000, obj_mask(what), "{e:#?}");
    };
    created(
        refused(
            &c,
            M::POST,
            "/v1/resource-definitions/nosuch/volume-definitions",
            Some(json!({"volume_definition": {"size_kib": 4096}})),
            404,
            301,
        ),
        ObjKind::VlmDfn,
    );
    created(
        refused(
            &c,
            M::POST,
            "/v1/resource-definitions/used/resources",
            Some(json!([{"resource": {"node_name": "ghost"}}])),
            404,
            300,
        ),
        ObjKind::Rsc,
    );
    created(
        refused(
            &c,
            M::POST,
            "/v1/resource-definitions",
            Some(
                json!({"resource_definition": {"name": "orphan", "resource_group_name": "nogroup"}}),
            ),
            404,
            317,
        ),
        ObjKind::RscDfn,
    );
    created(
        refused(
            &c,
            M::POST,
            "/v1/nodes/ghost/storage-pools",
            Some(
                json!({"storage_pool_name": "pool9", "provider_kind": "FILE", "props": {"StorDriver/StorPoolName": "/tmp/p9"}}),
            ),
            404,
            300,
        ),
        ObjKind::StorPool,
    );
    created(
        refused(
            &c,
            M::POST,
            "/v1/nodes/ghost/net-interfaces",
            Some(json!({"name": "data", "address": "10.1.1.1"})),
            404,
            300,
        ),
        ObjKind::NetIf,
    );
    created(
        refused(
            &c,
            M::POST,
            "/v1/resource-groups/nogroup/volume-groups",
            Some(json!({})),
            404,
            317,
        ),
        ObjKind::VlmGrp,
    );
    created(
        refused(
            &c,
            M::POST,
            "/v1/resource-definitions/nosuch/autoplace",
            Some(json!({"select_filter": {"place_count": 1}})),
            404,
            301,
        ),
        ObjKind::Rsc,
    );
    created(
        refused(
            &c,
            M::POST,
            "/v1/resource-definitions/nosuch/snapshots",
            Some(json!({"name": "s1"})),
            404,
            301,
        ),
        ObjKind::Snapshot,
    );
    refused(
        &c,
        M::PUT,
        "/v1/nodes/ghost",
        Some(json!({"override_props": {"Aux/a": "b"}})),
        404,
        300,
    );
    // Duplicates (case-insensitive, as names are).
    refused(
        &c,
        M::POST,
        "/v1/nodes",
        Some(json!({"name": "NODE1", "type": "SATELLITE", "net_interfaces": nif("10.9.9.9")})),
        400,
        500,
    );
    refused(
        &c,
        M::POST,
        "/v1/resource-definitions",
        Some(json!({"resource_definition": {"name": "USED"}})),
        400,
        501,
    );
    refused(
        &c,
        M::POST,
        "/v1/resource-definitions/used/resources",
        Some(json!([{"resource": {"node_name": "node1", "props": {"StorPoolName": "pool_file"}}}])),
        400,
        502,
    );
    refused(
        &c,
        M::POST,
        "/v1/resource-groups",
        Some(json!({"name": "RG1"})),
        400,
        522,
    );
    refused(
        &c,
        M::POST,
        "/v1/nodes/node1/storage-pools",
        Some(
            json!({"storage_pool_name": "pool_file", "provider_kind": "FILE_THIN", "props": {"StorDriver/StorPoolName": "/tmp/x"}}),
        ),
        400,
        510,
    );
    // Properties.
    let e = refused(
        &c,
        M::PUT,
        "/v1/nodes/node1",
        Some(json!({"override_props": {"NotAKey": "1"}})),
        400,
        213,
    );
    assert!(e.correction.unwrap().contains("Aux/"));
    refused(
        &c,
        M::PUT,
        "/v1/resource-definitions/used",
        Some(json!({"override_props": {"PeerSlotsNewResource": "99"}})),
        400,
        213,
    );
    // In use.
    let e = refused(&c, M::DELETE, "/v1/nodes/node1", None, 400, 997);
    assert!(e.cause.unwrap().contains("used"));
    refused(
        &c,
        M::DELETE,
        "/v1/nodes/node1/storage-pools/pool_file",
        None,
        400,
        997,
    );
    refused(&c, M::DELETE, "/v1/resource-groups/rg1", None, 400, 997);
    refused(
        &c,
        M::DELETE,
        "/v1/resource-groups/DfltRscGrp",
        None,
        400,
        997,
    );
    // Bodies that are not JSON.
    let client = c.client();
    let (status, body) = c
        .block(client.raw(
            M::POST,
            "/v1/nodes",
            Some(&Value::String("not an object".into())),
        ))
        .unwrap();
    assert_eq!(status.as_u16(), 400);
    let rcs: Vec<ApiCallRc> = serde_json::from_slice(&body).unwrap();
    assert!(rcs[0].is_error());

    let mut after = snapshot(&c);
    // Only the definition 'sized' was added on purpose above.
    assert!(after.len() > before.len());
    ok_replies(call(&c, M::DELETE, "/v1/resource-definitions/sized", None));
    after = snapshot(&c);
    assert_eq!(after, before, "bad requests changed the state");
}

#[test]
fn reading_unknown_objects_is_404_and_deleting_them_warns() {
    strata_tests::needs_cluster!();
    use Method as M;
    let c = setup();
    let client = c.client();
    for path in [
        "/v1/nodes/ghost",
        "/v1/resource-definitions/ghost",
        "/v1/resource-groups/ghost",
        "/v1/storage-pool-definitions/ghost",
        "/v1/nodes/node1/storage-pools/ghost",
        "/v1/resource-definitions/used/resources/ghost",
        "/v1/resource-definitions/used/volume-definitions/7",
    ] {
        let (status, body) = c.block(client.raw(M::GET, path, None)).unwrap();
        assert_eq!(status.as_u16(), 404, "{path}");
        let rcs: Vec<ApiCallRc> = serde_json::from_slice(&body).unwrap();
        assert!(
            rcs[0].is_error() && rcs[0].message.contains("not found"),
            "{path}: {rcs:?}"
        );
    }
    for path in [
        "/v1/nodes/ghost",
        "/v1/resource-definitions/ghost",
        "/v1/resource-groups/ghost",
        "/v1/storage-pool-definitions/ghost",
        "/v1/nodes/node1/storage-pools/ghost",
        "/v1/resource-definitions/used/resources/ghost",
    ] {
        let rcs = ok_replies(call(&c, M::DELETE, path, None));
        assert!(rcs[0].is_warning(), "{path}: {rcs:?}");
        assert_eq!(rcs[0].code(), 3000, "WARN_NOT_FOUND for {path}");
    }
}

#[test]
fn concurrent_requests_never_share_a_name_or_port() {
    strata_tests::needs_cluster!();
    let c = TestCluster::start(0);
    let client: Client = c.client();
    let results: Vec<bool> = c.block(async {
        let mut handles = Vec::new();
        for _ in 0..8 {
            let cl = client.clone();
            handles.push(tokio::spawn(async move {
                cl.resource_dfn_create(
                    &serde_json::from_value(json!({"resource_definition": {"name": "contested"}}))
                        .unwrap(),
                )
                .await
                .is_ok()
            }));
        }
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.unwrap());
        }
        out
    });
    assert_eq!(results.iter().filter(|ok| **ok).count(), 1, "{results:?}");

    let results: Vec<bool> = c.block(async {
        let mut handles = Vec::new();
        for i in 0..8 {
            let cl = client.clone();
            handles.push(tokio::spawn(async move {
                cl.resource_dfn_create(&serde_json::from_value(json!({"drbd_port": 7777, "resource_definition": {"name": format!("port{i}")}})).unwrap())
                    .await
                    .is_ok()
            }));
        }
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.unwrap());
        }
        out
    });
    assert_eq!(results.iter().filter(|ok| **ok).count(), 1, "{results:?}");
    let rds = c.block(client.resource_dfns(&[], &[], false)).unwrap();
    assert_eq!(rds.len(), 2);
}

#[test]
fn bad_snapshot_requests_are_refused_and_change_nothing() {
    strata_tests::needs_cluster!();
    use Method as M;
    let c = setup();
    ok_replies(call(
        &c,
        M::POST,
        "/v1/resource-definitions",
        Some(json!({"resource_definition": {"name": "target"}})),
    ));
    let before = snapshot(&c);
    // The node cannot take it (FILE_THIN on a file system without reflink copies): the
    // snapshot is given up, and the answer says why.
    let e = refused(
        &c,
        M::POST,
        "/v1/resource-definitions/used/snapshots",
        Some(json!({"name": "s1"})),
        500,
        998,
    );
    assert!(
        e.cause.as_deref().unwrap_or("").contains("reflink"),
        "{e:#?}"
    );
    // Bad names, unknown definitions and nodes.
    refused(
        &c,
        M::POST,
        "/v1/resource-definitions/used/snapshots",
        Some(json!({"name": "bad name"})),
        400,
        218,
    );
    refused(
        &c,
        M::POST,
        "/v1/resource-definitions/nosuch/snapshots",
        Some(json!({"name": "s1"})),
        404,
        301,
    );
    refused(
        &c,
        M::POST,
        "/v1/resource-definitions/used/snapshots",
        Some(json!({"name": "s1", "nodes": ["node9"]})),
        404,
        302,
    );
    // Unknown snapshots: reading and restoring fail, deleting warns.
    refused(
        &c,
        M::GET,
        "/v1/resource-definitions/used/snapshots/nope",
        None,
        404,
        313,
    );
    for path in [
        "/v1/resource-definitions/used/snapshot-restore-volume-definition/nope",
        "/v1/resource-definitions/used/snapshot-restore-resource/nope",
    ] {
        refused(
            &c,
            M::POST,
            path,
            Some(json!({"to_resource": "target"})),
            404,
            313,
        );
    }
    let r = ok_replies(call(
        &c,
        M::DELETE,
        "/v1/resource-definitions/used/snapshots/nope",
        None,
    ));
    assert!(r[0].message.contains("not found"), "{r:#?}");
    // The CLI says the same.
    let out = c.linstor(&["snapshot", "create", "used", "s1"]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("could not be taken"), "{text}");
    let list = c.linstor(&["snapshot", "list"]);
    assert!(list.status.success());
    assert_eq!(snapshot(&c), before);
}
