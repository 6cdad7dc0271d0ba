//! Server-sent event streams (`/v1/events/...`).

use std::convert::Infallible;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use tokio::sync::broadcast::error::RecvError;

use super::AppState;

/// `GET /v1/events/drbd/promotion`: a `may-promote-change` event whenever DRBD on a node says
/// a resource became promotable there, or stopped being. Only changes after the client
/// connected are sent.
pub async fn drbd_promotion(State(core): State<AppState>) -> Response {
    let rx = core.promotions.subscribe();
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(change) => {
                    let event = Event::default()
                        .event("may-promote-change")
                        .json_data(&change)
                        .ok()?;
                    return Some((Ok::<_, Infallible>(event), rx));
                }
                // A client too slow to keep up misses changes, not the stream.
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}
