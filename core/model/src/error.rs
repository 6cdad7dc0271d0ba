//! Domain failures, each carrying the LINSTOR code that classifies it and the words a person
//! needs: what went wrong, why, and how to fix it. The API layer turns them into ApiCallRc.

use std::fmt;

/// The object class an answer is about; it selects the object bits of a `ret_code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjKind {
    Node,
    NetIf,
    StorPoolDfn,
    StorPool,
    RscDfn,
    VlmDfn,
    Rsc,
    Vlm,
    RscGrp,
    VlmGrp,
    CtrlConf,
    Snapshot,
    Kvs,
    RscConn,
}

/// LINSTOR failure codes used by this implementation (the low bits of a `ret_code`).
pub mod code {
    pub const FAIL_SQL: u64 = 100;
    pub const FAIL_INVLD_NODE_NAME: u64 = 200;
    pub const FAIL_INVLD_NODE_TYPE: u64 = 201;
    pub const FAIL_INVLD_RSC_NAME: u64 = 202;
    pub const FAIL_INVLD_RSC_PORT: u64 = 203;
    pub const FAIL_INVLD_NODE_ID: u64 = 204;
    pub const FAIL_INVLD_VLM_NR: u64 = 205;
    pub const FAIL_INVLD_VLM_SIZE: u64 = 206;
    pub const FAIL_INVLD_MINOR_NR: u64 = 207;
    pub const FAIL_INVLD_STOR_POOL_NAME: u64 = 208;
    pub const FAIL_INVLD_NET_NAME: u64 = 209;
    pub const FAIL_INVLD_NET_ADDR: u64 = 210;
    pub const FAIL_INVLD_NET_PORT: u64 = 211;
    pub const FAIL_INVLD_NET_TYPE: u64 = 212;
    pub const FAIL_INVLD_PROP: u64 = 213;
    pub const FAIL_INVLD_ENCRYPT_TYPE: u64 = 217;
    pub const FAIL_INVLD_SNAPSHOT_NAME: u64 = 218;
    pub const FAIL_INVLD_PLACE_COUNT: u64 = 219;
    pub const FAIL_INVLD_STOR_DRIVER: u64 = 221;
    pub const FAIL_INVLD_LAYER_KIND: u64 = 224;
    pub const FAIL_INVLD_LAYER_STACK: u64 = 225;
    pub const FAIL_INVLD_EXT_NAME: u64 = 226;
    pub const FAIL_INVLD_PROVIDER: u64 = 227;
    pub const FAIL_INVLD_VLM_SIZES: u64 = 228;
    pub const FAIL_INVLD_VLM_COUNT: u64 = 229;
    pub const FAIL_INVLD_CONF: u64 = 230;
    pub const FAIL_NODE_HAS_USED_RSC: u64 = 233;
    pub const FAIL_INVLD_REQUEST: u64 = 234;
    pub const FAIL_INVLD_RSC_GRP_NAME: u64 = 237;
    pub const FAIL_NOT_FOUND_NODE: u64 = 300;
    pub const FAIL_NOT_FOUND_RSC_DFN: u64 = 301;
    pub const FAIL_NOT_FOUND_RSC: u64 = 302;
    pub const FAIL_NOT_FOUND_VLM_DFN: u64 = 303;
    pub const FAIL_NOT_FOUND_VLM: u64 = 304;
    pub const FAIL_NOT_FOUND_NET_IF: u64 = 305;
    pub const FAIL_NOT_FOUND_RSC_CONN: u64 = 307;
    pub const FAIL_NOT_FOUND_STOR_POOL_DFN: u64 = 309;
    pub const FAIL_NOT_FOUND_STOR_POOL: u64 = 310;
    pub const FAIL_NOT_FOUND_DFLT_STOR_POOL: u64 = 311;
    pub const FAIL_NOT_FOUND_SNAPSHOT_DFN: u64 = 313;
    pub const FAIL_NOT_FOUND_SNAPSHOT: u64 = 315;
    pub const FAIL_NOT_FOUND_RSC_GRP: u64 = 317;
    pub const FAIL_NOT_FOUND_VLM_GRP: u64 = 318;
    pub const FAIL_NOT_FOUND_EXT_FILE: u64 = 320;
    pub const FAIL_ACC_DENIED_COMMAND: u64 = 412;
    pub const FAIL_EXISTS_NODE: u64 = 500;
    pub const FAIL_EXISTS_RSC_DFN: u64 = 501;
    pub const FAIL_EXISTS_RSC: u64 = 502;
    pub const FAIL_EXISTS_VLM_DFN: u64 = 503;
    pub const FAIL_EXISTS_SNAPSHOT_DFN: u64 = 514;
    pub const FAIL_EXISTS_NET_IF: u64 = 505;
    pub const FAIL_EXISTS_STOR_POOL_DFN: u64 = 509;
    pub const FAIL_EXISTS_STOR_POOL: u64 = 510;
    pub const FAIL_EXISTS_EXT_NAME: u64 = 517;
    pub const FAIL_EXISTS_RSC_GRP: u64 = 522;
    pub const FAIL_EXISTS_VLM_GRP: u64 = 523;
    pub const FAIL_MISSING_PROPS: u64 = 600;
    pub const FAIL_POOL_EXHAUSTED_VLM_NR: u64 = 800;
    pub const FAIL_POOL_EXHAUSTED_MINOR_NR: u64 = 801;
    pub const FAIL_POOL_EXHAUSTED_TCP_PORT: u64 = 802;
    pub const FAIL_POOL_EXHAUSTED_NODE_ID: u64 = 803;
    pub const FAIL_NOT_ENOUGH_FREE_SPACE: u64 = 980;
    pub const FAIL_NOT_ALL_UPTODATE: u64 = 974;
    pub const FAIL_STLT_DOES_NOT_SUPPORT_LAYER: u64 = 988;
    pub const FAIL_STLT_DOES_NOT_SUPPORT_PROVIDER: u64 = 989;
    pub const FAIL_STOR_POOL_CONFIGURATION_ERROR: u64 = 990;
    pub const FAIL_INSUFFICIENT_REPLICA_COUNT: u64 = 991;
    pub const FAIL_INSUFFICIENT_PEER_SLOTS: u64 = 993;
    pub const FAIL_SNAPSHOTS_NOT_SUPPORTED: u64 = 994;
    pub const FAIL_NOT_CONNECTED: u64 = 995;
    pub const FAIL_NOT_ENOUGH_NODES: u64 = 996;
    pub const FAIL_IN_USE: u64 = 997;
    pub const FAIL_UNKNOWN_ERROR: u64 = 998;
    pub const FAIL_IMPL_ERROR: u64 = 999;

    pub const WARN_NOT_CONNECTED: u64 = 1002;
    pub const WARN_STLT_NOT_UPDATED: u64 = 1003;
    pub const WARN_DEL_UNSET_PROP: u64 = 1005;
    pub const WARN_RSC_ALREADY_DEPLOYED: u64 = 1006;
    pub const WARN_STORAGE_ERROR: u64 = 1010;
    pub const WARN_INVLD_CONF: u64 = 1021;
    pub const WARN_NOT_FOUND: u64 = 3000;
    pub const WARN_NO_EFFECT: u64 = 3001;

    pub const INFO_NO_RSC_SPAWNED: u64 = 10000;
    pub const INFO_PROP_SET: u64 = 10002;
    pub const INFO_TIE_BREAKER_CREATED: u64 = 10003;
    pub const INFO_PROP_REMOVED: u64 = 10005;
    pub const INFO_TIE_BREAKER_DELETING: u64 = 10004;
    pub const INFO_TIE_BREAKER_TAKEOVER: u64 = 10006;
    pub const INFO_RSC_ALREADY_EXISTS: u64 = 10008;
}

/// A request that cannot be carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: u64,
    pub object: ObjKind,
    pub message: String,
    pub cause: Option<String>,
    pub correction: Option<String>,
    pub details: Option<String>,
    /// The error report written about it (see the controller's error reports); boxed to
    /// keep the error small, as most have none.
    pub report_id: Option<Box<String>>,
}

impl ApiError {
    pub fn new(code: u64, object: ObjKind, message: impl Into<String>) -> Self {
        ApiError {
            code,
            object,
            message: message.into(),
            cause: None,
            correction: None,
            details: None,
            report_id: None,
        }
    }

    pub fn report(mut self, id: impl Into<String>) -> Self {
        self.report_id = Some(Box::new(id.into()));
        self
    }

    pub fn cause(mut self, cause: impl Into<String>) -> Self {
        self.cause = Some(cause.into());
        self
    }

    pub fn correction(mut self, correction: impl Into<String>) -> Self {
        self.correction = Some(correction.into());
        self
    }

    pub fn details(mut self, details: impl Into<String>) -> Self {
        self.details = Some(details.into());
        self
    }

    /// Whether the failure means "the object you named does not exist".
    pub fn is_not_found(&self) -> bool {
        (300..400).contains(&self.code)
    }

    /// A not-found error met while creating an object of `kind` names `kind` in its mask,
    /// as LINSTOR's do (a pool on an unknown node: FAIL_NOT_FOUND_NODE | MASK_STOR_POOL).
    pub fn creating(mut self, kind: ObjKind) -> Self {
        if (300..400).contains(&self.code) {
            self.object = kind;
        }
        self
    }

    pub fn not_found(code: u64, object: ObjKind, what: &str, name: &str) -> Self {
        ApiError::new(code, object, format!("{what} '{name}' not found"))
            .cause(format!("The specified {what} '{name}' does not exist."))
            .correction(format!("Create the {what} first, or check the name."))
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(c) = &self.cause {
            write!(f, " ({c})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

pub type ApiResult<T> = Result<T, ApiError>;
