//! A controller with simulated satellites: one `satellite-sim` process whose every port is a
//! node that answers the agent API at once. For placement and scale tests and benchmarks
//! where the controller's own behaviour is measured, not storage.

use std::process::Command;
use std::time::Duration;

use serde_json::json;
use strata_client::{Client, Method};

use crate::{bin, Proc, TestCluster};

/// `count` consecutive free ports on 127.0.0.1, never overlapping a range handed out before
/// in this process (tests run in parallel threads, and a range is checked free before the
/// simulator binds it).
pub fn port_range(count: u16) -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    // Where the next search starts; spread over processes by their id.
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let _ = NEXT.compare_exchange(
        0,
        20000 + (std::process::id() % 16) * 500,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..200 {
        let first = NEXT.fetch_add(u32::from(count), Ordering::SeqCst);
        // Below the kernel's ephemeral ports (32768 on), where free_port() draws from.
        if first + u32::from(count) > 32700 {
            NEXT.store(20000, Ordering::SeqCst);
            continue;
        }
        let first = first as u16;
        let free =
            (0..count).all(|i| std::net::TcpListener::bind(("127.0.0.1", first + i)).is_ok());
        if free {
            return first;
        }
    }
    panic!("no range of {count} free ports");
}

pub struct SimCluster {
    pub c: TestCluster,
    pub sim: Proc,
    /// The port of node `sim000`; node `simNNN` listens on `first + NNN`.
    pub first: u16,
    pub nodes: u16,
}

impl SimCluster {
    /// A controller (with `controller_toml` as its linstor.toml) and `nodes` simulated
    /// satellites, registered as `sim000`, `sim001`, ... with a FILE_THIN pool `pool1` each.
    pub fn start(nodes: u16, controller_toml: &str) -> SimCluster {
        let c = TestCluster::start_configured(0, controller_toml);
        let first = port_range(nodes);
        let sim = Proc::spawn(
            Command::new(bin("satellite-sim"))
                .arg(first.to_string())
                .arg(nodes.to_string()),
            &c.dir.path().join("sim.log"),
        );
        let s = SimCluster {
            c,
            sim,
            first,
            nodes,
        };
        s.wait_listening();
        let client = s.c.client();
        s.c.block(async {
            for i in 0..nodes {
                s.register(&client, i).await;
            }
        });
        s
    }

    fn wait_listening(&self) {
        let last = self.first + self.nodes - 1;
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", last)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("satellite-sim did not listen on {last}");
    }

    pub fn node_name(i: u16) -> String {
        format!("sim{i:03}")
    }

    async fn register(&self, client: &Client, i: u16) {
        let name = Self::node_name(i);
        let r = client
            .write(
                Method::POST,
                "/v1/nodes",
                Some(
                    &json!({"name": name, "type": "SATELLITE", "net_interfaces": [
                    {"name": "default", "address": "127.0.0.1", "satellite_port": self.first + i,
                     // The simulator stands in for hundreds of satellites in one process
                     // and speaks plain HTTP: the controller finds no TLS and falls back.
                     "satellite_encryption_type": "PLAIN"}]}),
                ),
            )
            .await;
        assert!(r.is_ok(), "{r:?}");
        let r = client
            .write(
                Method::POST,
                &format!("/v1/nodes/{name}/storage-pools"),
                Some(
                    &json!({"storage_pool_name": "pool1", "provider_kind": "FILE_THIN",
                             "props": {"StorDriver/StorPoolName": "/sim/pool"}}),
                ),
            )
            .await;
        assert!(r.is_ok(), "{r:?}");
    }

    /// A resource group `rg` placing `replicas` in `pool1`, with one volume group.
    pub fn create_group(&self, rg: &str, replicas: usize) {
        let client = self.c.client();
        self.c.block(async {
            client
                .write(
                    Method::POST,
                    "/v1/resource-groups",
                    Some(&json!({"name": rg, "select_filter": {"place_count": replicas, "storage_pool_list": ["pool1"]}})),
                )
                .await
                .expect("rg");
            client
                .write(
                    Method::POST,
                    &format!("/v1/resource-groups/{rg}/volume-groups"),
                    Some(&json!({})),
                )
                .await
                .expect("vg");
        });
    }

    /// Waits (at most 30 s) until every simulated node's pool reports its capacity, as after
    /// a controller restart.
    pub fn wait_reported(&self) {
        let client = self.c.client();
        let ok = self.c.wait_until(Duration::from_secs(30), || {
            let Ok((_, body)) = self.c.block(client.raw(
                Method::GET,
                "/v1/view/storage-pools?storage_pools=pool1",
                None,
            )) else {
                return false;
            };
            let pools: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            pools.as_array().is_some_and(|a| {
                a.len() == self.nodes as usize
                    && a.iter()
                        .all(|p| p["free_capacity"].as_i64().unwrap_or(0) > 0)
            })
        });
        assert!(ok, "the simulated nodes did not report their pools");
    }

    /// How many whole configurations and deltas simulated node `i` took.
    pub fn push_counts(&self, i: u16) -> (u64, u64) {
        let body = sim_call(self.first + i, "GET", "/sim/stats", "")
            .unwrap_or_else(|| panic!("satellite-sim node {i} did not answer /sim/stats"));
        let v: serde_json::Value = serde_json::from_str(&body).expect("stats are JSON");
        (
            v["full"].as_u64().unwrap_or(0),
            v["delta"].as_u64().unwrap_or(0),
        )
    }

    /// Makes simulated node `i` hold every configuration it is sent without answering
    /// (`true`), or answer again (`false`).
    pub fn stall(&self, i: u16, on: bool) {
        let port = self.first + i;
        let taken = put_stall(port, on);
        assert!(
            taken,
            "satellite-sim on {port} did not take the stall switch"
        );
    }
}

/// One request to a simulated node, written by hand (the harness needs no HTTP client for
/// its switches); the body of a 200 answer.
fn sim_call(port: u16, method: &str, path: &str, body: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    if !answer.starts_with("HTTP/1.1 200") {
        return None;
    }
    answer.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

fn put_stall(port: u16, on: bool) -> bool {
    sim_call(port, "PUT", "/sim/stall", if on { "true" } else { "false" }).is_some()
}
