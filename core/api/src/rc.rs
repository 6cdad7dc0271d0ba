//! ApiCallRc: the reply entries of every LINSTOR call, with their masked `ret_code`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use strata_model::plan::{Op, Reply, Severity};
use strata_model::{ApiError, ObjKind};

pub const MASK_ERROR: u64 = 0xC000_0000_0000_0000;
pub const MASK_WARN: u64 = 0x8000_0000_0000_0000;
pub const MASK_INFO: u64 = 0x4000_0000_0000_0000;

pub const MASK_CRT: u64 = 0x0100_0000;
pub const MASK_MOD: u64 = 0x0200_0000;
pub const MASK_DEL: u64 = 0x0300_0000;

pub const MASK_BITS_CODE: u64 = 0x7FFF;

pub fn obj_mask(obj: ObjKind) -> u64 {
    match obj {
        ObjKind::Snapshot => 0x000C_0000,
        ObjKind::CtrlConf => 0x0010_0000,
        ObjKind::StorPool => 0x0014_0000,
        ObjKind::StorPoolDfn => 0x0018_0000,
        ObjKind::NetIf => 0x001C_0000,
        ObjKind::RscConn => 0x0024_0000,
        ObjKind::Vlm => 0x002C_0000,
        ObjKind::VlmDfn => 0x0030_0000,
        ObjKind::Rsc => 0x0034_0000,
        ObjKind::RscDfn => 0x0038_0000,
        ObjKind::Node => 0x003C_0000,
        ObjKind::Kvs => 0x0040_0000,
        ObjKind::RscGrp => 0x0044_0000,
        ObjKind::VlmGrp => 0x0048_0000,
    }
}

fn op_mask(op: Op) -> u64 {
    match op {
        Op::Create => MASK_CRT,
        Op::Modify => MASK_MOD,
        Op::Delete => MASK_DEL,
        Op::None => 0,
    }
}

fn severity_mask(s: Severity) -> u64 {
    match s {
        Severity::Success => 0,
        Severity::Info => MASK_INFO,
        Severity::Warning => MASK_WARN,
        Severity::Error => MASK_ERROR,
    }
}

/// The signed 64-bit `ret_code` LINSTOR clients expect.
pub fn ret_code(severity: Severity, op: Op, obj: ObjKind, code: u64) -> i64 {
    (severity_mask(severity) | op_mask(op) | obj_mask(obj) | (code & MASK_BITS_CODE)) as i64
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiCallRc {
    pub ret_code: i64,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correction: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub error_report_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub obj_refs: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

impl ApiCallRc {
    pub fn is_error(&self) -> bool {
        (self.ret_code as u64) & MASK_ERROR == MASK_ERROR
    }

    pub fn is_warning(&self) -> bool {
        (self.ret_code as u64) & MASK_ERROR == MASK_WARN
    }

    pub fn is_info(&self) -> bool {
        (self.ret_code as u64) & MASK_ERROR == MASK_INFO
    }

    /// The code without mask bits.
    pub fn code(&self) -> u64 {
        (self.ret_code as u64) & MASK_BITS_CODE
    }

    pub fn from_error(op: Op, err: &ApiError) -> ApiCallRc {
        ApiCallRc::from(&Reply::from_error(op, err.clone()))
    }
}

impl From<&Reply> for ApiCallRc {
    fn from(r: &Reply) -> ApiCallRc {
        ApiCallRc {
            ret_code: ret_code(r.severity, r.op, r.object, r.code),
            message: r.message.clone(),
            cause: r.cause.clone(),
            details: r.details.clone(),
            correction: r.correction.clone(),
            error_report_ids: r.report_ids.clone(),
            obj_refs: r.obj_refs.clone(),
            created_at: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_compose_like_linstor() {
        // FAIL_NOT_FOUND_NODE while creating a resource.
        let rc = ret_code(Severity::Error, Op::Create, ObjKind::Rsc, 300);
        assert_eq!(rc as u64, 0xC000_0000_0134_012C);
        assert!(rc < 0);
        // Node created.
        assert_eq!(
            ret_code(Severity::Success, Op::Create, ObjKind::Node, 1),
            0x013C_0001
        );
        let w = ret_code(Severity::Warning, Op::Delete, ObjKind::Node, 3000);
        let api = ApiCallRc {
            ret_code: w,
            message: String::new(),
            cause: None,
            details: None,
            correction: None,
            error_report_ids: vec![],
            obj_refs: BTreeMap::new(),
            created_at: None,
        };
        assert!(api.is_warning() && !api.is_error());
        assert_eq!(api.code(), 3000);
    }
}
