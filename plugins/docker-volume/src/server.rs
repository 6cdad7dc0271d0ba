//! The Docker volume plugin protocol (`docker.volumedriver/1.0`): JSON over HTTP POST on a
//! unix socket. dockerd sends bodies without a Content-Type and with a trailing newline, so
//! bodies are read as bytes and parsed here; an empty body reads as `{}`. Every answer is
//! HTTP 200; failures are said in `Err`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde::{Deserialize, Serialize};

use crate::driver::{Driver, VolumeInfo};
use crate::error::PluginError;

/// The media type Docker's plugin clients use.
const MEDIA_TYPE: &str = "application/vnd.docker.plugins.v1.2+json";

#[derive(Debug, Default, Deserialize)]
struct Request {
    #[serde(rename = "Name", default)]
    name: String,
    #[serde(rename = "Opts", default)]
    opts: Option<BTreeMap<String, String>>,
    #[serde(rename = "ID", default)]
    id: String,
}

// The answers, their fields in alphabetical order.

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Activated {
    implements: [&'static str; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Scope {
    scope: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Capabilities {
    capabilities: Scope,
}

/// The answer of calls that answer nothing but success (an empty `Err`) or failure.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Done {
    err: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Mountpoint {
    err: String,
    mountpoint: String,
}

/// A volume in the answer of `VolumeDriver.Get`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Volume<'a> {
    mountpoint: &'a str,
    name: &'a str,
    status: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Got<'a> {
    err: String,
    volume: Volume<'a>,
}

/// A volume in the answer of `VolumeDriver.List`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Listed<'a> {
    mountpoint: &'a str,
    name: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Volumes<'a> {
    err: String,
    volumes: Vec<Listed<'a>>,
}

fn answer(v: &impl Serialize) -> Response {
    let text = serde_json::to_string(v).expect("answers always serialize");
    ([(header::CONTENT_TYPE, MEDIA_TYPE)], text).into_response()
}

fn err(e: &PluginError) -> Response {
    answer(&Done { err: e.to_string() })
}

/// `Ok(())` as the protocol says it: an empty `Err`.
fn done(result: Result<(), PluginError>) -> Response {
    match result {
        Ok(()) => answer(&Done { err: String::new() }),
        Err(e) => err(&e),
    }
}

fn parse(body: &Bytes) -> Result<Request, PluginError> {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return Ok(Request::default());
    }
    serde_json::from_str(text).map_err(PluginError::BadRequest)
}

fn mountpoint(result: Result<String, PluginError>) -> Response {
    match result {
        Ok(mountpoint) => answer(&Mountpoint {
            err: String::new(),
            mountpoint,
        }),
        Err(e) => err(&e),
    }
}

fn volume(v: &VolumeInfo) -> Volume<'_> {
    Volume {
        mountpoint: &v.mountpoint,
        name: &v.name,
        status: &v.status,
    }
}

type Shared = Arc<Driver>;

// Every handler takes the body, even when it needs none: answering before the request was
// read would close the connection under a client still sending.
async fn activate(_body: Bytes) -> Response {
    answer(&Activated {
        implements: ["VolumeDriver"],
    })
}

async fn capabilities(_body: Bytes) -> Response {
    answer(&Capabilities {
        capabilities: Scope { scope: "global" },
    })
}

async fn create(State(d): State<Shared>, body: Bytes) -> Response {
    let req = match parse(&body) {
        Ok(r) => r,
        Err(e) => return err(&e),
    };
    done(d.create(&req.name, &req.opts.unwrap_or_default()).await)
}

async fn remove(State(d): State<Shared>, body: Bytes) -> Response {
    match parse(&body) {
        Ok(req) => done(d.remove(&req.name).await),
        Err(e) => err(&e),
    }
}

async fn mount(State(d): State<Shared>, body: Bytes) -> Response {
    match parse(&body) {
        Ok(req) => mountpoint(d.mount(&req.name, &req.id).await),
        Err(e) => err(&e),
    }
}

async fn unmount(State(d): State<Shared>, body: Bytes) -> Response {
    match parse(&body) {
        Ok(req) => done(d.unmount(&req.name, &req.id).await),
        Err(e) => err(&e),
    }
}

async fn path(State(d): State<Shared>, body: Bytes) -> Response {
    match parse(&body) {
        Ok(req) => mountpoint(d.path(&req.name).await),
        Err(e) => err(&e),
    }
}

async fn get(State(d): State<Shared>, body: Bytes) -> Response {
    let req = match parse(&body) {
        Ok(r) => r,
        Err(e) => return err(&e),
    };
    match d.get(&req.name).await {
        Ok(v) => answer(&Got {
            err: String::new(),
            volume: volume(&v),
        }),
        Err(e) => err(&e),
    }
}

async fn list(State(d): State<Shared>, _body: Bytes) -> Response {
    match d.list().await {
        Ok(vs) => answer(&Volumes {
            err: String::new(),
            volumes: vs
                .iter()
                .map(|v| Listed {
                    mountpoint: &v.mountpoint,
                    name: &v.name,
                })
                .collect(),
        }),
        Err(e) => err(&e),
    }
}

pub fn router(driver: Arc<Driver>) -> Router {
    Router::new()
        .route("/Plugin.Activate", post(activate))
        .route("/VolumeDriver.Capabilities", post(capabilities))
        .route("/VolumeDriver.Create", post(create))
        .route("/VolumeDriver.Remove", post(remove))
        .route("/VolumeDriver.Mount", post(mount))
        .route("/VolumeDriver.Unmount", post(unmount))
        .route("/VolumeDriver.Path", post(path))
        .route("/VolumeDriver.Get", post(get))
        .route("/VolumeDriver.List", post(list))
        .with_state(driver)
}
