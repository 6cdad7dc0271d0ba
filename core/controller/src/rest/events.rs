//! Server-sent event streams (`/v1/events/...`). Only changes after the client connected are
//! sent; a client too slow to keep up misses changes, not the stream.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::broadcast::Receiver;

use super::{AppState, Query};

/// The stream of what `rx` carries, each item made an SSE event by `to_event` (`None`: left
/// out).
fn stream<T: Clone + Send + 'static>(
    rx: Receiver<T>,
    to_event: impl Fn(T) -> Option<Event> + Send + 'static,
) -> Response {
    let stream = futures_util::stream::unfold((rx, to_event), |(mut rx, to_event)| async move {
        loop {
            match rx.recv().await {
                Ok(item) => {
                    if let Some(event) = to_event(item) {
                        return Some((Ok::<_, Infallible>(event), (rx, to_event)));
                    }
                }
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn sse(e: &crate::events::Event) -> Option<Event> {
    Event::default().event(e.name).json_data(&e.data).ok()
}

/// `GET /v1/events/drbd/promotion`: a `may-promote-change` event whenever DRBD on a node says
/// a resource became promotable there, or stopped being.
pub async fn drbd_promotion(State(core): State<AppState>) -> Response {
    stream(core.promotions.subscribe(), |change| {
        Event::default()
            .event("may-promote-change")
            .json_data(&change)
            .ok()
    })
}

/// `GET /v1/events/nodes` (LINSTOR 1.28): `node-create`, `node-delete`, `node-evacuate`,
/// `node-evicted`, `node-restored` with `{"node": ...}`, and `node-modified` with
/// `{"old_node": ..., "new_node": ...}` (its connection status changing among the causes).
pub async fn nodes(State(core): State<AppState>) -> Response {
    let rx = core
        .events
        .subscribe_nodes(&core.cluster(), &core.observed());
    stream(rx, |e: Arc<crate::events::Event>| sse(&e))
}

/// `GET /v1/events/resources[?resources=..&nodes=..]`: `resource-create`, `resource-state`
/// and `resource-delete`, with the resource's state on its node (in use, and each volume's
/// disk state and replication towards each peer, with a resync's progress).
pub async fn resources(State(core): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let q = Query::parse(q.as_deref());
    let (rscs, nodes) = (q.names("resources"), q.names("nodes"));
    let rx = core
        .events
        .subscribe_resources(&core.cluster(), &core.observed());
    stream(rx, move |e: Arc<crate::events::Event>| {
        let name = e.data["resource_name"].as_str().unwrap_or_default();
        let node = e.data["node_name"].as_str().unwrap_or_default();
        let wanted = |filter: &[String], key: &str| {
            filter.is_empty() || filter.iter().any(|f| f.eq_ignore_ascii_case(key))
        };
        (wanted(&rscs, name) && wanted(&nodes, node))
            .then(|| sse(&e))
            .flatten()
    })
}
