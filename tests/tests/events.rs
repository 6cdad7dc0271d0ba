//! The server-sent event streams of nodes (`/v1/events/nodes`, LINSTOR 1.28's events) and of
//! resources' state (`/v1/events/resources`), read by a real SSE client (sseclient-py) while
//! a cluster works: nodes created, coming online, changed, going offline and deleted;
//! resources created, a resync's progress, the end of the resync, deletion; a filter.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use strata_tests::TestCluster;

const MIB: u64 = 1024;

/// An SSE client reading a stream of the controller into a file, one JSON line per event.
struct Reader {
    child: Child,
    out: PathBuf,
    _dir: tempfile::TempDir,
}

const SCRIPT: &str = r#"
import json, sys, urllib.request
import sseclient
resp = urllib.request.urlopen(sys.argv[1], timeout=300)
print(json.dumps({"event": "connected"}), flush=True)
for ev in sseclient.SSEClient(resp).events():
    print(json.dumps({"event": ev.event, "data": json.loads(ev.data)}), flush=True)
"#;

impl Reader {
    fn start(c: &TestCluster, path: &str) -> Reader {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("events.jsonl");
        let child = Command::new(strata_tests::python())
            .args(["-c", SCRIPT, &format!("{}{path}", c.url())])
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python runs");
        let r = Reader {
            child,
            out,
            _dir: dir,
        };
        r.wait_for("the stream to open", |e| e["event"] == "connected");
        r
    }

    fn events(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits for an event `want` accepts; answers it.
    fn wait_for(&self, what: &str, want: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(e) = self.events().into_iter().find(|e| want(e)) {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "no event for {what}; got:\n{:#?}",
                self.events()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn node_id(c: &TestCluster, rsc: &str, node: &str) -> u32 {
    c.drbd_node_id(rsc, node)
}

#[test]
fn node_events_follow_the_nodes() {
    strata_tests::needs_cluster!(strata_tests::python_modules(&["sseclient"]));
    let mut c = TestCluster::start(2);
    let events = Reader::start(&c, "/v1/events/nodes");
    c.register_all();
    for n in ["node1", "node2"] {
        events.wait_for(&format!("{n} created"), |e| {
            e["event"] == "node-create" && e["data"]["node"]["name"] == n
        });
        events.wait_for(&format!("{n} online"), |e| {
            e["event"] == "node-modified"
                && e["data"]["new_node"]["name"] == n
                && e["data"]["new_node"]["connection_status"] == "ONLINE"
                && e["data"]["old_node"]["connection_status"] != "ONLINE"
        });
    }
    c.linstor_ok(&["node", "set-property", "node1", "Aux/rack", "r7"]);
    events.wait_for("a property set", |e| {
        e["event"] == "node-modified"
            && e["data"]["new_node"]["props"]["Aux/rack"] == "r7"
            && e["data"]["old_node"]["props"].get("Aux/rack").is_none()
    });
    c.stop_satellite(1);
    events.wait_for("node2 offline", |e| {
        e["event"] == "node-modified"
            && e["data"]["new_node"]["name"] == "node2"
            && e["data"]["new_node"]["connection_status"] == "OFFLINE"
    });
    c.linstor_ok(&["node", "delete", "node2"]);
    let gone = events.wait_for("node2 deleted", |e| e["event"] == "node-delete");
    assert_eq!(gone["data"]["node"]["name"], "node2");
    // Each change was said once: one creation per node.
    let created = events
        .events()
        .iter()
        .filter(|e| e["event"] == "node-create")
        .count();
    assert_eq!(created, 2);
}

#[test]
fn resource_events_follow_state_and_progress() {
    strata_tests::needs_cluster!(strata_tests::python_modules(&["sseclient"]));
    let c = TestCluster::start_drbd_dry_run(2);
    c.register_all();
    c.create_group("rg2", 2);
    let all = Reader::start(&c, "/v1/events/resources");
    let one = Reader::start(&c, "/v1/events/resources?resources=ev1&nodes=node1");
    c.spawn("rg2", "ev1", 32 * MIB);
    c.spawn("rg2", "ev2", 32 * MIB);
    for (r, n) in [("ev1", "node1"), ("ev1", "node2"), ("ev2", "node1")] {
        all.wait_for(&format!("{r} on {n} created"), |e| {
            e["event"] == "resource-create"
                && e["data"]["resource_name"] == r
                && e["data"]["node_name"] == n
        });
    }

    // node1 receives a resync from node2: its progress is streamed.
    let (id1, id2) = (node_id(&c, "ev1", "node1"), node_id(&c, "ev1", "node2"));
    c.satellites[0].drbd_events(&[
        "exists resource name:ev1 role:Secondary suspended:no may_promote:no promotion_score:0",
        &format!("exists connection name:ev1 peer-node-id:{id2} conn-name:node2 connection:Connected role:Secondary"),
        "exists device name:ev1 volume:0 minor:1000 disk:Inconsistent client:no quorum:yes open:no",
        &format!("exists peer-device name:ev1 peer-node-id:{id2} conn-name:node2 volume:0 replication:SyncTarget peer-disk:UpToDate peer-client:no done:30.00"),
        "exists -",
    ]);
    let progress = |done: f64| {
        move |e: &serde_json::Value| {
            e["event"] == "resource-state"
                && e["data"]["resource_name"] == "ev1"
                && e["data"]["node_name"] == "node1"
                && e["data"]["volumes"][0]["replication_states"]["node2"]["replication_state"]
                    == "SyncTarget"
                && e["data"]["volumes"][0]["replication_states"]["node2"]["done_percentage"] == done
        }
    };
    one.wait_for("30% done", progress(30.0));
    c.satellites[0].drbd_events(&[&format!(
        "change peer-device name:ev1 peer-node-id:{id2} conn-name:node2 volume:0 done:60.00"
    )]);
    one.wait_for("60% done", progress(60.0));
    c.satellites[0].drbd_events(&[
        "change device name:ev1 volume:0 disk:UpToDate",
        &format!("change peer-device name:ev1 peer-node-id:{id2} conn-name:node2 volume:0 replication:Established"),
    ]);
    one.wait_for("in sync", |e| {
        e["event"] == "resource-state" && e["data"]["volumes"][0]["disk_state"] == "UpToDate"
    });
    let _ = id1;

    c.linstor_ok(&["resource-definition", "delete", "ev1"]);
    one.wait_for("ev1 deleted on node1", |e| {
        e["event"] == "resource-delete" && e["data"]["node_name"] == "node1"
    });
    all.wait_for("ev1 deleted on node2", |e| {
        e["event"] == "resource-delete"
            && e["data"]["resource_name"] == "ev1"
            && e["data"]["node_name"] == "node2"
    });
    // The filtered stream saw ev1 on node1 only.
    for e in one.events().iter().skip(1) {
        assert_eq!(e["data"]["resource_name"], "ev1", "{e}");
        assert_eq!(e["data"]["node_name"], "node1", "{e}");
    }
}
