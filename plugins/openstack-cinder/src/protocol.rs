//! The protocol between the Python driver (`strata_cinder.driver`) and `strata-cinder`,
//! version 1: one request as JSON on stdin, one answer as JSON on stdout, one process a
//! call.
//!
//! ```text
//! {"version": 1, "op": "create", "config": {"controllers": "10.0.0.1,10.0.0.2",
//!  "group": "cinder"}, "args": {"name": "CV_<volume id>", "size_gib": 10, "props": {...}}}
//! -> {"ok": true, "result": {...}}
//! -> {"ok": false, "kind": "busy", "error": "volume 'CV_...' is in use on node 'c1'; ..."}
//! ```
//!
//! `kind` says which of Cinder's exceptions the error becomes: `busy` (VolumeIsBusy),
//! `not_found` (the volume or snapshot does not exist), `unreachable` (no controller
//! answered), `invalid` (a request the driver cannot serve as asked), `error` (anything
//! else: the controller's refusal, with its reason).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub const VERSION: u32 = 1;

#[derive(Debug, Clone, Deserialize)]
pub struct Request {
    pub version: u32,
    pub op: String,
    /// The backend's settings from cinder.conf.
    #[serde(default)]
    pub config: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub args: serde_json::Value,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Busy,
    NotFound,
    Unreachable,
    Invalid,
    Error,
}

/// A failed call: what kind of failure, and the one line an operator reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: Kind,
    pub message: String,
}

impl Failure {
    pub fn new(kind: Kind, message: impl Into<String>) -> Failure {
        Failure {
            kind,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Failure {
        Failure::new(Kind::Invalid, message)
    }
}

impl From<strata_adapter::AdapterError> for Failure {
    fn from(e: strata_adapter::AdapterError) -> Failure {
        use strata_adapter::AdapterError as E;
        let kind = match &e {
            E::Unreachable(_) => Kind::Unreachable,
            E::NotFound(_) => Kind::NotFound,
            E::InUse { .. } => Kind::Busy,
            E::Refused(_) | E::NoDevice { .. } => Kind::Error,
        };
        Failure::new(kind, e.to_string())
    }
}

impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure::new(Kind::Error, message)
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Answer {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<Kind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Answer {
    pub fn ok(result: serde_json::Value) -> Answer {
        Answer {
            ok: true,
            result: Some(result),
            kind: None,
            error: None,
        }
    }

    pub fn failed(f: Failure) -> Answer {
        Answer {
            ok: false,
            result: None,
            kind: Some(f.kind),
            error: Some(f.message),
        }
    }
}
