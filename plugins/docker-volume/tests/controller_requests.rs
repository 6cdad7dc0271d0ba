//! What the plugin sends the controller, byte for byte, and what it tells Docker when a step
//! fails: the driver against a fake controller that records every request and answers from a
//! script, with the commands answered by a scripted runner.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use strata_api::ApiCallRc;
use strata_docker_volume::config::Settings;
use strata_docker_volume::driver::Driver;
use strata_docker_volume::error::{Call, DeviceError, PluginError};
use strata_docker_volume::opts::VolumeOpts;
use strata_docker_volume::server;
use strata_exec::{Output, ScriptedRunner};

/// A controller that records requests as `METHOD /path?query body` and answers them from a
/// script by `METHOD /path`: a scripted answer is used once while others follow it, the last
/// one for good; anything unscripted is answered `200 []`.
#[derive(Default)]
struct Fake {
    answers: Mutex<HashMap<String, VecDeque<(u16, String)>>>,
    seen: Mutex<Vec<String>>,
}

impl Fake {
    fn answer(&self, call: &str, status: u16, body: &str) -> &Self {
        self.answers
            .lock()
            .unwrap()
            .entry(call.to_string())
            .or_default()
            .push_back((status, body.to_string()));
        self
    }

    /// Answers the listing of resource definitions with the plugin's volume v1, whose
    /// properties end in `fs_props` (see `volume_rd`).
    fn lists_v1(&self, fs_props: &str) -> &Self {
        self.answer(
            "GET /v1/resource-definitions",
            200,
            &volume_rd("v1", "v1", fs_props),
        )
    }

    /// Drops what was scripted for `call` and answers it so from now on.
    fn replace(&self, call: &str, status: u16, body: &str) -> &Self {
        self.answers.lock().unwrap().remove(call);
        self.answer(call, status, body)
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

async fn serve(State(f): State<Arc<Fake>>, method: Method, uri: Uri, body: Bytes) -> Response {
    let body = String::from_utf8_lossy(&body);
    let line = if body.is_empty() {
        format!("{method} {uri}")
    } else {
        format!("{method} {uri} {body}")
    };
    f.seen.lock().unwrap().push(line);
    let key = format!("{method} {}", uri.path());
    let (status, text) = match f.answers.lock().unwrap().get_mut(&key) {
        Some(q) if q.len() > 1 => q.pop_front().unwrap(),
        Some(q) => q.front().cloned().unwrap(),
        None => (200, "[]".to_string()),
    };
    (
        StatusCode::from_u16(status).unwrap(),
        [(header::CONTENT_TYPE, "application/json")],
        text,
    )
        .into_response()
}

struct Setup {
    fake: Arc<Fake>,
    runner: Arc<ScriptedRunner>,
    driver: Driver,
    dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let fake = Arc::new(Fake::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().fallback(serve).with_state(fake.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let dir = tempfile::tempdir().unwrap();
    let runner = Arc::new(ScriptedRunner::new());
    let driver = Driver::new(settings(&addr.to_string(), dir.path()), runner.clone()).unwrap();
    Setup {
        fake,
        runner,
        driver,
        dir,
    }
}

fn settings(controller: &str, dir: &Path) -> Settings {
    Settings {
        controllers: vec![controller.to_string()],
        node: "alpha".into(),
        socket: dir.join("plugin.sock"),
        state_dir: dir.join("state"),
        timeout: Duration::from_secs(10),
        defaults: VolumeOpts::default(),
        security: Default::default(),
    }
}

/// The error of creating volume `name` with options `o`, which must fail.
async fn create_fails(s: &Setup, name: &str, o: &[(&str, &str)]) -> PluginError {
    s.driver.create(name, &opts(o)).await.unwrap_err()
}

fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// One error reply of the controller, as a list.
fn refused(message: &str, cause: Option<&str>, correction: Option<&str>) -> String {
    let rc = ApiCallRc {
        ret_code: (strata_api::rc::MASK_ERROR | 0x0030_0000 | strata_api::rc::MASK_CRT | 5) as i64,
        message: message.into(),
        cause: cause.map(str::to_string),
        details: None,
        correction: correction.map(str::to_string),
        error_report_ids: Vec::new(),
        obj_refs: BTreeMap::new(),
        created_at: None,
    };
    serde_json::to_string(&vec![rc]).unwrap()
}

/// The reply of a created definition the controller named itself.
fn named(rd: &str) -> String {
    format!(
        r#"[{{"ret_code":{},"message":"New resource definition created.","obj_refs":{{"RscDfn":"{rd}"}}}}]"#,
        strata_api::rc::MASK_CRT | 0x0038_0000 | 1
    )
}

const RD_LIST: &str = "GET /v1/resource-definitions?with_volume_definitions=true";
/// The resources of volume v1.
const V1_RESOURCES: &str = "GET /v1/view/resources?resources=v1";
/// Volume v1 attached on node alpha, where it has no replica.
const V1_ATTACH: &str =
    r#"POST /v1/resource-definitions/v1/resources/alpha/make-available {"diskful":false}"#;
/// The mark on v1's resource on alpha that the plugin mounted it there, and its removal.
const V1_MARK: &str = r#"PUT /v1/resource-definitions/v1/resources/alpha {"override_props":{"Aux/strata/docker-mounted":"true"}}"#;
const V1_UNMARK: &str = r#"PUT /v1/resource-definitions/v1/resources/alpha {"delete_props":["Aux/strata/docker-mounted"]}"#;

/// A resource definition that is the plugin's volume `name`.
fn volume_rd(rd: &str, name: &str, fs_props: &str) -> String {
    format!(
        r#"[{{"name":"{rd}","props":{{"Aux/strata/docker-volume":"{name}"{fs_props}}},"volume_definitions":[{{"volume_number":0,"size_kib":65536}}]}}]"#
    )
}

fn assert_seen(fake: &Fake, want: &[&str]) {
    let seen = fake.take();
    assert_eq!(seen, want, "the requests sent:\n{}\n", seen.join("\n"));
}

#[tokio::test]
async fn create_with_autoplace_sends_every_filter_option() {
    let s = setup().await;
    s.fake.answer(
        "GET /v1/view/storage-pools",
        200,
        r#"[{"storage_pool_name":"pool_a","node_name":"alpha"},{"storage_pool_name":"dl_pool","node_name":"bravo"}]"#,
    );
    s.driver
        .create(
            "v1",
            &opts(&[
                ("size", "64M"),
                ("fs", "xfs"),
                ("fsopts", "-m 0"),
                ("mountopts", "noatime"),
                ("replicas", "2"),
                ("storagepool", "pool_a"),
                ("disklessstoragepool", "dl_pool"),
                ("resourcegroup", "rg_docker"),
                ("replicasonsame", "Aux/site"),
                ("replicasondifferent", "Aux/rack,Aux/row"),
                ("donotplacewithregex", "db.*"),
                ("disklessonremaining", "yes"),
            ]),
        )
        .await
        .unwrap();
    assert_seen(
        &s.fake,
        &[
            RD_LIST,
            "GET /v1/view/storage-pools",
            r#"POST /v1/resource-definitions {"resource_definition":{"name":"v1","props":{"Aux/strata/docker-fs":"xfs","Aux/strata/docker-fsopts":"-m 0","Aux/strata/docker-mountopts":"noatime","Aux/strata/docker-volume":"v1"},"resource_group_name":"rg_docker"}}"#,
            r#"POST /v1/resource-definitions/v1/volume-definitions {"volume_definition":{"size_kib":65536}}"#,
            r#"POST /v1/resource-definitions/v1/autoplace {"select_filter":{"diskless_on_remaining":true,"not_place_with_rsc_regex":"db.*","place_count":2,"replicas_on_different":["Aux/rack","Aux/row"],"replicas_on_same":["Aux/site"],"storage_pool":"pool_a","storage_pool_diskless_list":["dl_pool"]}}"#,
        ],
    );

    // The defaults alone: an empty filter, and no pool check.
    s.driver.create("v2", &opts(&[])).await.unwrap();
    assert_seen(
        &s.fake,
        &[
            RD_LIST,
            r#"POST /v1/resource-definitions {"resource_definition":{"name":"v2","props":{"Aux/strata/docker-fs":"ext4","Aux/strata/docker-volume":"v2"}}}"#,
            r#"POST /v1/resource-definitions/v2/volume-definitions {"volume_definition":{"size_kib":102400}}"#,
            r#"POST /v1/resource-definitions/v2/autoplace {"select_filter":{}}"#,
        ],
    );

    // A volume that exists already is left as it is.
    s.fake.lists_v1("");
    s.driver
        .create("v1", &opts(&[("size", "1G")]))
        .await
        .unwrap();
    assert_seen(&s.fake, &[RD_LIST]);
}

/// The diskless pool goes where LINSTOR and this controller take the pool of the diskless
/// resources `disklessonremaining` places; read as the controller reads the request, nothing
/// the plugin sends is dropped.
#[tokio::test]
async fn the_diskless_pool_reaches_the_filter_the_controller_reads() {
    let s = setup().await;
    s.fake.answer(
        "GET /v1/view/storage-pools",
        200,
        r#"[{"storage_pool_name":"dl_pool","node_name":"bravo"}]"#,
    );
    s.driver
        .create(
            "v1",
            &opts(&[
                ("disklessstoragepool", "dl_pool"),
                ("disklessonremaining", "yes"),
            ]),
        )
        .await
        .unwrap();
    let seen = s.fake.take();
    let body = seen
        .iter()
        .find_map(|l| l.strip_prefix("POST /v1/resource-definitions/v1/autoplace "))
        .expect("an autoplace request");
    let read: strata_api::types::AutoPlaceRequest = serde_json::from_str(body).unwrap();
    assert_eq!(
        read.select_filter.storage_pool_diskless_list,
        Some(vec!["dl_pool".to_string()])
    );
    assert_eq!(read.select_filter.diskless_on_remaining, Some(true));
    let sent: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(serde_json::to_value(&read).unwrap(), sent);
}

#[tokio::test]
async fn create_on_named_nodes_with_a_name_the_controller_picks() {
    let s = setup().await;
    s.fake
        .answer(
            "GET /v1/view/storage-pools",
            200,
            r#"[{"storage_pool_name":"pool_a","node_name":"alpha"},{"storage_pool_name":"pool_a","node_name":"bravo"}]"#,
        )
        .answer("POST /v1/resource-definitions", 200, &named("auto_vol"));
    s.driver
        .create(
            "auto.vol",
            &opts(&[("nodes", "alpha,bravo"), ("storagepool", "pool_a")]),
        )
        .await
        .unwrap();
    assert_seen(
        &s.fake,
        &[
            RD_LIST,
            "GET /v1/view/storage-pools",
            r#"POST /v1/resource-definitions {"resource_definition":{"external_name":"auto.vol","props":{"Aux/strata/docker-fs":"ext4","Aux/strata/docker-volume":"auto.vol"}}}"#,
            r#"POST /v1/resource-definitions/auto_vol/volume-definitions {"volume_definition":{"size_kib":102400}}"#,
            r#"POST /v1/resource-definitions/auto_vol/resources [{"resource":{"node_name":"alpha","props":{"StorPoolName":"pool_a"}}},{"resource":{"node_name":"bravo","props":{"StorPoolName":"pool_a"}}}]"#,
        ],
    );

    // Nodes without a pool: the resources carry no properties.
    s.driver
        .create("nodes_only", &opts(&[("nodes", "bravo")]))
        .await
        .unwrap();
    assert_seen(
        &s.fake,
        &[
            RD_LIST,
            r#"POST /v1/resource-definitions {"resource_definition":{"name":"nodes_only","props":{"Aux/strata/docker-fs":"ext4","Aux/strata/docker-volume":"nodes_only"}}}"#,
            r#"POST /v1/resource-definitions/nodes_only/volume-definitions {"volume_definition":{"size_kib":102400}}"#,
            r#"POST /v1/resource-definitions/nodes_only/resources [{"resource":{"node_name":"bravo"}}]"#,
        ],
    );
}

#[tokio::test]
async fn refused_creations_are_explained_and_leave_nothing_behind() {
    let s = setup().await;
    // Refused in the middle: the definition goes again.
    s.fake
        .answer("POST /v1/resource-definitions", 200, &named("odd_vol"))
        .answer(
            "POST /v1/resource-definitions/odd_vol/volume-definitions",
            500,
            &refused(
                "Not enough free space",
                Some("pool_a has 10 MiB"),
                Some("Use a smaller size"),
            ),
        );
    let e = create_fails(&s, "odd.vol", &[]).await;
    assert_eq!(
        e.to_string(),
        "cannot create volume 'odd.vol': size: Not enough free space (pool_a has 10 MiB); Use a smaller size"
    );
    assert!(
        matches!(
            &e,
            PluginError::Refused { call: Call::DefineSize { volume }, status: 500, replies }
                if volume == "odd.vol" && replies.len() == 1
        ),
        "{e:?}"
    );
    assert_seen(
        &s.fake,
        &[
            RD_LIST,
            r#"POST /v1/resource-definitions {"resource_definition":{"external_name":"odd.vol","props":{"Aux/strata/docker-fs":"ext4","Aux/strata/docker-volume":"odd.vol"}}}"#,
            r#"POST /v1/resource-definitions/odd_vol/volume-definitions {"volume_definition":{"size_kib":102400}}"#,
            "DELETE /v1/resource-definitions/odd_vol",
        ],
    );

    // Placement refused.
    s.fake.answer(
        "POST /v1/resource-definitions/v3/autoplace",
        500,
        &refused("Not enough nodes", None, None),
    );
    let e = create_fails(&s, "v3", &[]).await;
    assert_eq!(
        e.to_string(),
        "cannot create volume 'v3': placing the replicas: Not enough nodes"
    );
    assert_eq!(
        s.fake.take().last().map(String::as_str),
        Some("DELETE /v1/resource-definitions/v3")
    );

    // Refused at once.
    s.fake.replace(
        "POST /v1/resource-definitions",
        409,
        &refused("Resource group 'nosuch' not found", None, None),
    );
    let e = create_fails(&s, "v4", &[("resourcegroup", "nosuch")]).await;
    assert_eq!(
        e.to_string(),
        "cannot create volume 'v4': Resource group 'nosuch' not found"
    );
    assert_eq!(s.fake.take().len(), 2);

    // An external name without the name the controller gave it.
    s.fake.replace("POST /v1/resource-definitions", 200, "[]");
    let e = create_fails(&s, "odd.vol2", &[]).await;
    assert_eq!(
        e.to_string(),
        "cannot create volume 'odd.vol2': the controller did not name its resource definition"
    );
    s.fake.take();

    // Bad names and options go nowhere.
    let e = create_fails(&s, "-x", &[]).await;
    assert_eq!(
        e.to_string(),
        "invalid volume name '-x': use letters, digits, '_', '.' and '-', starting with a letter or digit"
    );
    let e = create_fails(&s, "v5", &[("colour", "red")]).await;
    assert!(e.to_string().starts_with("unknown option 'colour'"), "{e}");
    assert_seen(&s.fake, &[]);

    // Pools that are not there.
    s.fake.answer(
        "GET /v1/view/storage-pools",
        200,
        r#"[{"storage_pool_name":"pool_b","node_name":"alpha"},{"storage_pool_name":"pool_a","node_name":"alpha"}]"#,
    );
    let e = create_fails(&s, "v6", &[("storagepool", "nosuch")]).await;
    assert_eq!(
        e.to_string(),
        "storage pool 'nosuch' does not exist on any node; the pools are: pool_a, pool_b"
    );
    let e = create_fails(&s, "v6", &[("storagepool", "pool_a"), ("nodes", "bravo")]).await;
    assert_eq!(
        e.to_string(),
        "storage pool 'pool_a' does not exist on node 'bravo'"
    );
    assert_seen(
        &s.fake,
        &[
            RD_LIST,
            "GET /v1/view/storage-pools",
            RD_LIST,
            "GET /v1/view/storage-pools",
        ],
    );
}

#[tokio::test]
async fn remove_deletes_the_definition_unless_the_volume_is_in_use() {
    let s = setup().await;
    let e = s.driver.remove("v1").await.unwrap_err();
    assert_eq!(e.to_string(), "no such volume");
    s.fake
        .lists_v1("")
        .answer(
            "GET /v1/view/resources",
            200,
            r#"[{"name":"v1","node_name":"bravo","state":{"in_use":true}}]"#,
        )
        .answer("GET /v1/view/resources", 200, "[]");
    let e = s.driver.remove("v1").await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "volume 'v1' is in use on node 'bravo'; stop its containers there first"
    );
    s.driver.remove("v1").await.unwrap();
    assert_seen(
        &s.fake,
        &[
            RD_LIST,
            RD_LIST,
            V1_RESOURCES,
            RD_LIST,
            V1_RESOURCES,
            "DELETE /v1/resource-definitions/v1",
        ],
    );
    s.fake.answer(
        "DELETE /v1/resource-definitions/v1",
        500,
        &refused("Resource definition is in use", None, None),
    );
    let e = s.driver.remove("v1").await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot remove volume 'v1': Resource definition is in use"
    );
}

fn device(dir: &Path) -> String {
    let dev = dir.join("dev0");
    std::fs::write(&dev, "").unwrap();
    dev.display().to_string()
}

/// Where the plugin mounts volume `name`, as text.
fn mountpoint(s: &Setup, name: &str) -> String {
    s.dir
        .path()
        .join("state/mnt")
        .join(name)
        .display()
        .to_string()
}

/// The resources of volume v1 as the controller lists them: one on `node`, with `dev` as
/// the device of volume 0.
fn replica_view(node: &str, dev: &str) -> String {
    format!(
        r#"[{{"name":"v1","node_name":"{node}","volumes":[{{"volume_number":0,"device_path":"{dev}"}}]}}]"#
    )
}

/// blkid asking which file system `dev` holds.
fn blkid(dev: &str) -> [&str; 7] {
    ["blkid", "-p", "-o", "value", "-s", "TYPE", dev]
}

#[tokio::test]
async fn mount_attaches_here_makes_the_file_system_and_detaches_after_the_last() {
    let s = setup().await;
    let dev = device(s.dir.path());
    let mp_text = mountpoint(&s, "v1");
    s.fake
        .lists_v1(r#","Aux/strata/docker-fs":"ext4","Aux/strata/docker-mountopts":"noatime""#)
        .answer("GET /v1/view/resources", 200, "[]")
        .answer("GET /v1/view/resources", 200, &replica_view("alpha", &dev));
    s.runner
        .expect(&blkid(&dev), Output::failed(2, ""))
        .expect(&["mkfs.ext4", "-q", "-F", &dev], Output::ok(""))
        .expect(&["mount", "-o", "noatime", &dev, &mp_text], Output::ok(""));
    assert_eq!(s.driver.mount("v1", "c1").await.unwrap(), mp_text);
    assert_eq!(s.driver.mount("v1", "c2").await.unwrap(), mp_text);
    assert_eq!(s.driver.path("v1").await.unwrap(), mp_text);
    s.driver.unmount("v1", "c1").await.unwrap();
    s.driver.unmount("v1", "c2").await.unwrap();
    assert!(s.runner.remaining().is_empty());
    assert_seen(
        &s.fake,
        &[
            RD_LIST,
            V1_RESOURCES,
            V1_ATTACH,
            V1_MARK,
            V1_RESOURCES,
            RD_LIST,
            RD_LIST,
            "DELETE /v1/resource-definitions/v1/resources/alpha",
        ],
    );
}

#[tokio::test]
async fn mount_with_a_replica_here_only_marks_it() {
    let s = setup().await;
    let dev = device(s.dir.path());
    let mp_text = mountpoint(&s, "v1");
    s.fake
        .lists_v1("")
        .answer("GET /v1/view/resources", 200, &replica_view("alpha", &dev));
    s.runner
        .expect(&blkid(&dev), Output::ok("ext4\n"))
        .expect(&["mount", &dev, &mp_text], Output::ok(""));
    assert_eq!(s.driver.mount("v1", "c1").await.unwrap(), mp_text);
    s.driver.unmount("v1", "c1").await.unwrap();
    assert_seen(
        &s.fake,
        &[
            RD_LIST,
            V1_RESOURCES,
            V1_MARK,
            V1_RESOURCES,
            RD_LIST,
            V1_UNMARK,
        ],
    );
}

#[tokio::test]
async fn failed_mounts_are_explained_and_undone() {
    let s = setup().await;
    let dev = device(s.dir.path());
    let mp_text = mountpoint(&s, "v1");
    let e = s.driver.mount("v1", "c1").await.unwrap_err();
    assert_eq!(e.to_string(), "no such volume");
    s.fake
        .lists_v1("")
        .answer(
            "GET /v1/view/resources",
            200,
            r#"[{"name":"v1","node_name":"bravo","props":{"Aux/strata/docker-mounted":"true"}}]"#,
        )
        .answer("GET /v1/view/resources", 200, "[]")
        .answer("GET /v1/view/resources", 200, "[]")
        .answer("GET /v1/view/resources", 200, &replica_view("alpha", &dev))
        .answer(
            "POST /v1/resource-definitions/v1/resources/alpha/make-available",
            500,
            &refused("No diskless pool on alpha", None, None),
        )
        .answer(
            "POST /v1/resource-definitions/v1/resources/alpha/make-available",
            200,
            "[]",
        );
    // Mounted by the plugin on another node: refused at once.
    let e = s.driver.mount("v1", "c1").await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "volume 'v1' is in use on node 'bravo'; it can be mounted on one node at a time"
    );
    // The attachment refused.
    let e = s.driver.mount("v1", "c1").await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot attach volume 'v1' on node 'alpha': No diskless pool on alpha"
    );
    // The mount command fails: the mark and the attachment go again.
    s.runner.expect(&blkid(&dev), Output::ok("ext4\n")).expect(
        &["mount", &dev, &mp_text],
        Output::failed(32, "mount: wrong fs type"),
    );
    let e = s.driver.mount("v1", "c1").await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "cannot mount volume 'v1': 'mount {dev} {mp_text}' failed with exit status 32: mount: wrong fs type"
        )
    );
    let PluginError::MountFailed { source, .. } = &e else {
        panic!("{e:?}")
    };
    assert!(
        matches!(**source, DeviceError::Mount(ref x) if x.status() == Some(32)),
        "{e:?}"
    );
    // blkid cannot read the device.
    s.runner
        .expect(&blkid(&dev), Output::failed(4, "blkid: I/O error"));
    let e = s.driver.mount("v1", "c1").await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("cannot mount volume 'v1': cannot probe {dev}: blkid: I/O error")
    );
    // mkfs fails.
    s.runner.expect(&blkid(&dev), Output::failed(2, "")).expect(
        &["mkfs.ext4", "-q", "-F", &dev],
        Output::failed(1, "mkfs: too small"),
    );
    let e = s.driver.mount("v1", "c1").await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "cannot mount volume 'v1': making the ext4 file system failed: 'mkfs.ext4 -q -F {dev}' failed with exit status 1: mkfs: too small"
        )
    );
    assert!(s.runner.remaining().is_empty());
    assert_seen(
        &s.fake,
        &[
            RD_LIST,
            // in use elsewhere
            RD_LIST,
            V1_RESOURCES,
            // attachment refused
            RD_LIST,
            V1_RESOURCES,
            V1_ATTACH,
            // mount fails
            RD_LIST,
            V1_RESOURCES,
            V1_ATTACH,
            V1_MARK,
            V1_RESOURCES,
            V1_UNMARK,
            "DELETE /v1/resource-definitions/v1/resources/alpha",
            // blkid fails
            RD_LIST,
            V1_RESOURCES,
            V1_MARK,
            V1_RESOURCES,
            V1_UNMARK,
            // mkfs fails
            RD_LIST,
            V1_RESOURCES,
            V1_MARK,
            V1_RESOURCES,
            V1_UNMARK,
        ],
    );
}

#[tokio::test]
async fn an_unreachable_controller_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let runner = Arc::new(ScriptedRunner::new());
    let driver = Driver::new(settings("127.0.0.1:1", dir.path()), runner).unwrap();
    let e = driver.list().await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot list the volumes: cannot reach any controller (http://127.0.0.1:1): http://127.0.0.1:1: cannot connect: Connection refused (os error 111)"
    );
    assert!(
        matches!(
            &e,
            PluginError::CallFailed {
                call: Call::ListVolumes,
                source: strata_client::ClientError::Unreachable { .. }
            }
        ),
        "{e:?}"
    );
    let e = driver.create("v1", &opts(&[])).await.unwrap_err();
    assert!(e
        .to_string()
        .starts_with("cannot list the volumes: cannot reach any controller"));
}

/// One call of the plugin protocol, as dockerd sends it (no Content-Type); the answer's body.
async fn call(addr: &str, endpoint: &str, body: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = format!("{body}\n");
    let request = format!(
        "POST /{endpoint} HTTP/1.1\r\nHost: plugin\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).await.unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).await.unwrap();
    let (head, json) = resp.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(head.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/vnd.docker.plugins.v1.2+json"),
        "{resp}"
    );
    json.to_string()
}

#[tokio::test]
async fn the_protocol_answers_as_docker_reads_them() {
    let s = setup().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let app = server::router(Arc::new(s.driver));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let fake = s.fake;

    assert_eq!(
        call(&addr, "Plugin.Activate", "").await,
        r#"{"Implements":["VolumeDriver"]}"#
    );
    assert_eq!(
        call(&addr, "VolumeDriver.Capabilities", "{}").await,
        r#"{"Capabilities":{"Scope":"global"}}"#
    );
    assert_eq!(
        call(&addr, "VolumeDriver.List", "{}").await,
        r#"{"Err":"","Volumes":[]}"#
    );
    assert_eq!(
        call(&addr, "VolumeDriver.Get", r#"{"Name":"v1"}"#).await,
        r#"{"Err":"no such volume"}"#
    );
    assert_eq!(
        call(
            &addr,
            "VolumeDriver.Create",
            r#"{"Name":"v1","Opts":{"size":"64M"}}"#
        )
        .await,
        r#"{"Err":""}"#
    );
    assert_eq!(
        call(
            &addr,
            "VolumeDriver.Create",
            r#"{"Name":"v2","Opts":{"size":"lots"}}"#
        )
        .await,
        concat!(
            r#"{"Err":"invalid size 'lots': 'lots' is not a size: it does not start with a number; "#,
            "use a whole or decimal number with an optional unit: B, S (512-byte sectors), ",
            "K/KiB, KB, M/MiB, MB, G/GiB, GB, T/TiB, TB, P/PiB, PB (e.g. 150M, 2G, 1371956KiB); ",
            r#"write it as people do, e.g. 64M, 10GiB or 1.5T (a plain number is MiB)"}"#
        )
    );
    fake.lists_v1(r#","Aux/strata/docker-fs":"ext4""#);
    assert_eq!(
        call(&addr, "VolumeDriver.Get", r#"{"Name":"v1"}"#).await,
        r#"{"Err":"","Volume":{"Mountpoint":"","Name":"v1","Status":{"fs":"ext4","resource":"v1","size":"64 MiB"}}}"#
    );
    assert_eq!(
        call(&addr, "VolumeDriver.List", "{}").await,
        r#"{"Err":"","Volumes":[{"Mountpoint":"","Name":"v1"}]}"#
    );
    assert_eq!(
        call(&addr, "VolumeDriver.Path", r#"{"Name":"v1"}"#).await,
        r#"{"Err":"","Mountpoint":""}"#
    );
    assert_eq!(
        call(&addr, "VolumeDriver.Unmount", r#"{"Name":"v9","ID":"c1"}"#).await,
        r#"{"Err":""}"#
    );
    assert_eq!(
        call(&addr, "VolumeDriver.Remove", r#"{"Name":"v1"}"#).await,
        r#"{"Err":""}"#
    );
    assert_eq!(
        call(&addr, "VolumeDriver.Mount", "{not json").await,
        r#"{"Err":"cannot read the request: key must be a string at line 1 column 2"}"#
    );
}
