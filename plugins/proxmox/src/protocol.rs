//! The protocol between the Perl shim and `strata-pve`, version 1: one request as JSON on
//! stdin, one answer as JSON on stdout, one process per call.
//!
//! ```text
//! {"version": 1, "op": "alloc_image", "storeid": "strata", "node": "pve1",
//!  "scfg": {"strata-controllers": "10.0.0.1,10.0.0.2", "strata-group": "pve", ...},
//!  "args": {"vmid": 100, "name": null, "size_kib": 4194304}}
//! -> {"ok": true, "result": "vm-100-disk-0"}
//! -> {"ok": false, "error": "the controller cannot be reached: ..."}
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub const VERSION: u32 = 1;

#[derive(Debug, Clone, Deserialize)]
pub struct Request {
    pub version: u32,
    pub op: String,
    pub storeid: String,
    /// This Proxmox node's name (the LINSTOR node name).
    pub node: String,
    /// The storage's section of storage.cfg.
    #[serde(default)]
    pub scfg: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub args: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Answer {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Answer {
    pub fn ok(result: serde_json::Value) -> Answer {
        Answer {
            ok: true,
            result: Some(result),
            error: None,
        }
    }

    pub fn err(e: impl std::fmt::Display) -> Answer {
        Answer {
            ok: false,
            result: None,
            error: Some(e.to_string()),
        }
    }
}
