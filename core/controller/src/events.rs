//! Event streams of changes: nodes (`/v1/events/nodes`, LINSTOR 1.28's events) and the state
//! of resources (`/v1/events/resources`). Each stream keeps the last view it sent of every
//! object and, when something may have changed, compares the objects concerned with their
//! views of now and sends what differs. Without subscribers nothing is computed or kept; the
//! first subscriber takes the views of everything as the base.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use strata_api::types::{Node, ReplicationState};
use tokio::sync::broadcast;

use crate::observed::ObservedState;
use strata_model::{Change, Cluster, NodeName, ResourceName};

/// One event: its SSE name and its data.
#[derive(Debug, Clone)]
pub struct Event {
    pub name: &'static str,
    pub data: serde_json::Value,
}

/// How many events wait for a slow subscriber before it misses some.
const BACKLOG: usize = 4096;

/// A stream of changes of objects keyed by `K`, viewed as `V`.
pub struct Stream<K, V> {
    /// The last view sent of every object; kept only while someone subscribes.
    last: Mutex<BTreeMap<K, V>>,
    tx: broadcast::Sender<Arc<Event>>,
    /// The event for a change from the first view to the second (`None`: nothing to say).
    classify: fn(Option<&V>, Option<&V>) -> Option<Event>,
}

impl<K: Ord + Clone, V: PartialEq + Clone> Stream<K, V> {
    pub fn new(classify: fn(Option<&V>, Option<&V>) -> Option<Event>) -> Stream<K, V> {
        Stream {
            last: Mutex::new(BTreeMap::new()),
            tx: broadcast::channel(BACKLOG).0,
            classify,
        }
    }

    /// A new subscriber; `all` gives the views of everything when nobody subscribed before.
    /// The caller holds the locks `all` reads under (as `refresh`'s callers do, taken before
    /// this stream's own), so that nothing changes between the views and the subscription.
    pub fn subscribe(
        &self,
        all: impl FnOnce() -> BTreeMap<K, V>,
    ) -> broadcast::Receiver<Arc<Event>> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        // Without subscribers the views were not kept up to date: take them anew.
        if self.tx.receiver_count() == 0 {
            *last = all();
        }
        self.tx.subscribe()
    }

    /// Whether anyone subscribes (else changes need not be looked at); the views kept for
    /// subscribers who left are dropped.
    pub fn listened(&self) -> bool {
        if self.tx.receiver_count() > 0 {
            return true;
        }
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if !last.is_empty() {
            *last = BTreeMap::new();
        }
        false
    }

    /// Compares the objects of `keys` (those now, from `current`) and the kept ones `also`
    /// selects (so that those gone are seen) with their last views; sends what changed.
    pub fn refresh(
        &self,
        keys: impl IntoIterator<Item = K>,
        also: impl Fn(&K) -> bool,
        current: impl Fn(&K) -> Option<V>,
    ) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if self.tx.receiver_count() == 0 {
            last.clear();
            return;
        }
        let mut keys: Vec<K> = keys.into_iter().collect();
        keys.extend(last.keys().filter(|k| also(k)).cloned());
        keys.sort();
        keys.dedup();
        for k in keys {
            let now = current(&k);
            let before = last.get(&k);
            if before == now.as_ref() {
                continue;
            }
            if let Some(event) = (self.classify)(before, now.as_ref()) {
                let _ = self.tx.send(Arc::new(event));
            }
            match now {
                Some(v) => last.insert(k, v),
                None => last.remove(&k),
            };
        }
    }
}

fn json<T: Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

fn has_flag(n: &Node, flag: &str) -> bool {
    n.flags.iter().any(|f| f.eq_ignore_ascii_case(flag))
}

/// LINSTOR's node events: `node-create`, `node-delete`, `node-evacuate`, `node-evicted`,
/// `node-restored` (`{"node": ...}`), and `node-modified` (`{"old_node", "new_node"}`) for any
/// other change, its connection status among them.
pub fn node_event(before: Option<&Node>, now: Option<&Node>) -> Option<Event> {
    let one = |name, n: &Node| Event {
        name,
        data: serde_json::json!({ "node": json(n) }),
    };
    Some(match (before, now) {
        (None, None) => return None,
        (None, Some(n)) => one("node-create", n),
        (Some(n), None) => one("node-delete", n),
        (Some(old), Some(new)) => {
            if has_flag(new, "EVACUATE") && !has_flag(old, "EVACUATE") {
                one("node-evacuate", new)
            } else if has_flag(new, "EVICTED") && !has_flag(old, "EVICTED") {
                one("node-evicted", new)
            } else if has_flag(old, "EVICTED") && !has_flag(new, "EVICTED") {
                one("node-restored", new)
            } else {
                Event {
                    name: "node-modified",
                    data: serde_json::json!({ "old_node": json(old), "new_node": json(new) }),
                }
            }
        }
    })
}

/// The state of a resource on a node, as `/v1/events/resources` sends it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResourceState {
    pub resource_name: String,
    pub node_name: String,
    /// DRBD Primary (the device is in use) here; `None` while unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_use: Option<bool>,
    pub volumes: Vec<VolumeState>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VolumeState {
    pub volume_number: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_state: Option<String>,
    /// Towards each peer: the replication state and, while a resync runs, how far it is.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub replication_states: BTreeMap<String, ReplicationState>,
}

/// `resource-create` when a resource appears, `resource-state` when its state changes,
/// `resource-delete` when it is gone; the data is the resource's state.
pub fn resource_event(
    before: Option<&ResourceState>,
    now: Option<&ResourceState>,
) -> Option<Event> {
    let (name, state) = match (before, now) {
        (None, None) => return None,
        (None, Some(s)) => ("resource-create", s),
        (Some(s), None) => ("resource-delete", s),
        (Some(_), Some(s)) => ("resource-state", s),
    };
    Some(Event {
        name,
        data: json(state),
    })
}

/// The streams the controller feeds.
pub struct Events {
    pub nodes: Stream<String, Node>,
    /// Keyed by (resource, node).
    pub resources: Stream<(String, String), ResourceState>,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            nodes: Stream::new(node_event),
            resources: Stream::new(resource_event),
        }
    }
}

fn node_view(cluster: &Cluster, observed: &ObservedState, name: &str) -> Option<Node> {
    let n = cluster.nodes.get(&NodeName::new(name).ok()?)?;
    let obs = observed.nodes.get(&n.name);
    Some(strata_api::convert::node(
        n,
        observed.status(&n.name),
        obs.and_then(|o| o.caps.as_ref()),
    ))
}

fn resource_view(
    cluster: &Cluster,
    observed: &ObservedState,
    (rsc, node): &(String, String),
) -> Option<ResourceState> {
    let rn = ResourceName::new(rsc).ok()?;
    let r = cluster.resource(&rn, &NodeName::new(node).ok()?)?;
    let rd = cluster.rsc_dfns.get(&rn)?;
    let (state, seen) = observed.joined(r);
    let view = strata_api::convert::resource_with_volumes(r, rd, state, seen, &|pool| {
        cluster.stor_pool(&r.node, pool).map(|sp| sp.kind)
    });
    Some(ResourceState {
        resource_name: view.resource.name,
        node_name: view.resource.node_name,
        in_use: view.resource.state.and_then(|s| s.in_use),
        volumes: view
            .volumes
            .into_iter()
            .map(|v| {
                let state = v.state.unwrap_or_default();
                VolumeState {
                    volume_number: v.volume_number,
                    disk_state: state.disk_state,
                    replication_states: state.replication_states,
                }
            })
            .collect(),
    })
}

fn all_resources(
    cluster: &Cluster,
    observed: &ObservedState,
) -> BTreeMap<(String, String), ResourceState> {
    cluster
        .rsc_dfns
        .keys()
        .flat_map(|rn| cluster.resources_of(rn))
        .filter_map(|r| {
            let key = (r.name.to_string(), r.node.to_string());
            resource_view(cluster, observed, &key).map(|v| (key, v))
        })
        .collect()
}

impl Events {
    /// Whether any stream has a subscriber: without one, callers need not look at changes
    /// (nor take the locks to).
    pub fn listened(&self) -> bool {
        // Both asked: each drops what it kept for subscribers who left.
        let nodes = self.nodes.listened();
        let resources = self.resources.listened();
        nodes || resources
    }

    pub fn subscribe_nodes(
        &self,
        cluster: &Cluster,
        observed: &ObservedState,
    ) -> broadcast::Receiver<Arc<Event>> {
        self.nodes.subscribe(|| {
            cluster
                .nodes
                .keys()
                .filter_map(|n| {
                    node_view(cluster, observed, n.as_str()).map(|v| (n.to_string(), v))
                })
                .collect()
        })
    }

    pub fn subscribe_resources(
        &self,
        cluster: &Cluster,
        observed: &ObservedState,
    ) -> broadcast::Receiver<Arc<Event>> {
        self.resources
            .subscribe(|| all_resources(cluster, observed))
    }

    /// The node `node` changed (its connection, what its satellite said): the node and its
    /// resources.
    pub fn node_changed(&self, cluster: &Cluster, observed: &ObservedState, node: &NodeName) {
        self.nodes.refresh(
            [node.to_string()],
            |_| false,
            |k| node_view(cluster, observed, k),
        );
        self.resources_changed(cluster, observed, node);
    }

    /// DRBD or the storage of `node` reported: its resources.
    pub fn resources_changed(&self, cluster: &Cluster, observed: &ObservedState, node: &NodeName) {
        let keys = cluster
            .resources_on(node)
            .map(|r| (r.name.to_string(), r.node.to_string()));
        let name = node.as_str();
        self.resources.refresh(
            keys,
            |(_, n)| n.eq_ignore_ascii_case(name),
            |k| resource_view(cluster, observed, k),
        );
    }

    /// A commit made `changes`: the nodes and resources they concern.
    pub fn committed(&self, cluster: &Cluster, observed: &ObservedState, changes: &[Change]) {
        let mut nodes = Vec::new();
        let mut rscs = Vec::new();
        let mut dfns: Vec<String> = Vec::new();
        for c in changes {
            match c {
                Change::PutNode(n) => nodes.push(n.name.to_string()),
                Change::DelNode(n) => nodes.push(n.to_string()),
                Change::PutRsc(r) => rscs.push((r.name.to_string(), r.node.to_string())),
                Change::DelRsc(r, n) => rscs.push((r.to_string(), n.to_string())),
                Change::PutRscDfn(d) => dfns.push(d.name.to_string()),
                Change::DelRscDfn(d) => dfns.push(d.to_string()),
                _ => {}
            }
        }
        if nodes.is_empty() && rscs.is_empty() && dfns.is_empty() {
            return;
        }
        if !nodes.is_empty() {
            self.nodes.refresh(
                nodes.iter().cloned(),
                |k| nodes.iter().any(|n| n.eq_ignore_ascii_case(k)),
                |k| node_view(cluster, observed, k),
            );
        }
        for d in &dfns {
            if let Ok(rn) = ResourceName::new(d) {
                rscs.extend(
                    cluster
                        .resources_of(&rn)
                        .map(|r| (r.name.to_string(), r.node.to_string())),
                );
            }
        }
        self.resources.refresh(
            rscs,
            |(r, _)| dfns.iter().any(|d| d.eq_ignore_ascii_case(r)),
            |k| resource_view(cluster, observed, k),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, status: &str, flags: &[&str]) -> Node {
        Node {
            name: name.into(),
            connection_status: Some(status.into()),
            flags: flags.iter().map(|f| f.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn node_changes_are_named_as_linstor_names_them() {
        let s: Stream<String, Node> = Stream::new(node_event);
        let mut current: BTreeMap<String, Node> = BTreeMap::new();
        current.insert("a".into(), node("a", "ONLINE", &[]));
        // Nobody listens: nothing is kept.
        s.refresh(["a".to_string()], |_| true, |k| current.get(k).cloned());
        assert!(s.last.lock().unwrap().is_empty());
        let mut rx = s.subscribe(|| current.clone());
        let mut step = |current: &BTreeMap<String, Node>| {
            s.refresh(
                current.keys().cloned().collect::<Vec<_>>(),
                |_| true,
                |k| current.get(k).cloned(),
            );
            let mut got = Vec::new();
            while let Ok(e) = rx.try_recv() {
                got.push(e);
            }
            got
        };
        assert!(step(&current).is_empty(), "no change, no event");
        current.insert("b".into(), node("b", "OFFLINE", &[]));
        let got = step(&current);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].name, "node-create");
        assert_eq!(got[0].data["node"]["name"], "b");
        current.insert("b".into(), node("b", "ONLINE", &[]));
        let got = step(&current);
        assert_eq!(got[0].name, "node-modified");
        assert_eq!(got[0].data["old_node"]["connection_status"], "OFFLINE");
        assert_eq!(got[0].data["new_node"]["connection_status"], "ONLINE");
        current.insert("b".into(), node("b", "ONLINE", &["EVACUATE"]));
        assert_eq!(step(&current)[0].name, "node-evacuate");
        current.insert("b".into(), node("b", "OFFLINE", &["EVACUATE", "EVICTED"]));
        assert_eq!(step(&current)[0].name, "node-evicted");
        current.insert("b".into(), node("b", "ONLINE", &[]));
        assert_eq!(step(&current)[0].name, "node-restored");
        current.remove("b");
        let got = step(&current);
        assert_eq!(got[0].name, "node-delete");
        assert_eq!(got[0].data["node"]["name"], "b");
        assert_eq!(got.len(), 1);
    }
}
