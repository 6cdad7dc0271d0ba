//! Token authentication of the REST API, as LINSTOR 1.34: the `/v1/controller/auth/...`
//! calls, and the check every request passes once it is on (`plan::auth::enabled`).
//!
//! A request then needs `Authorization: Bearer <token>` with a token that is active, not
//! expired, and — when the token has an IP filter — sent from an address the filter admits;
//! otherwise it gets 401 with an ApiCallRc (`FAIL_ACC_DENIED_COMMAND`, as LINSTOR). A
//! read-only token gets 403 on every call that changes something. `/health` and
//! `GET /v1/controller/version` are always open: clients ask for the version before they
//! decide whether to send their token, and it tells nothing about the cluster.

use std::net::IpAddr;

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use strata_api::auth::{
    AuthToken, AuthTokenList, CreateAuthToken, InitAuthTokenRequest, ModifyAuthToken,
};
use strata_api::{paths, ApiCallRc};
use strata_model::error::code;
use strata_model::plan::auth::{self as plan, NewToken, TokenModify};
use strata_model::plan::{Op, Reply};
use strata_model::security::TokenRole;
use strata_model::{ApiError, ObjKind};

use super::{error, json, ok, run, AppState, Body};

/// Lower-case hex SHA-256 of a token as the client sends it.
pub fn token_hash(token: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh secret: 32 letters and digits from the OS's random source (LINSTOR's form).
fn new_secret() -> Result<String, ApiError> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let rng = ring::rand::SystemRandom::new();
    let mut out = String::with_capacity(32);
    while out.len() < 32 {
        let mut bytes = [0u8; 64];
        ring::rand::SecureRandom::fill(&rng, &mut bytes).map_err(|_| {
            ApiError::new(
                code::FAIL_UNKNOWN_ERROR,
                ObjKind::CtrlConf,
                "The operating system's random source failed",
            )
        })?;
        // Bytes of 248 and above would favour the first letters: skip them.
        for b in bytes.iter().filter(|b| **b < 248).take(32 - out.len()) {
            out.push(char::from(ALPHABET[usize::from(*b % 62)]));
        }
    }
    Ok(out)
}

fn now() -> String {
    plan::rfc3339(chrono::Utc::now().timestamp_millis())
}

/// Reads an expiry as LINSTOR takes it: a date (midnight UTC) or an RFC 3339 date-time.
fn expiry(text: &str) -> Result<String, ApiError> {
    let text = text.trim();
    let ms = if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        t.timestamp_millis()
    } else if let Ok(d) =
        chrono::NaiveDate::parse_from_str(text.get(..10).unwrap_or(text), "%Y-%m-%d")
    {
        d.and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_millis())
            .unwrap_or_default()
    } else {
        return Err(ApiError::new(
            code::FAIL_INVLD_CONF,
            ObjKind::CtrlConf,
            format!("Invalid expiration date format: {text}"),
        )
        .cause("The expiration date must be a date (2030-12-31) or an RFC 3339 date-time"));
    };
    Ok(plan::rfc3339(ms))
}

fn role(text: Option<&str>) -> Result<TokenRole, ApiError> {
    match text.map(|r| r.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") | Some("admin") => Ok(TokenRole::Admin),
        Some("read-only" | "read_only" | "readonly") => Ok(TokenRole::ReadOnly),
        Some(other) => Err(ApiError::new(
            code::FAIL_INVLD_CONF,
            ObjKind::CtrlConf,
            format!("Invalid token role '{other}'"),
        )
        .correction("Use 'admin' or 'read-only'")),
    }
}

fn new_token(
    description: String,
    expires_at: Option<&str>,
    ip_filter: Option<String>,
    role: TokenRole,
) -> Result<NewToken, ApiError> {
    let secret = new_secret()?;
    Ok(NewToken {
        hash: token_hash(&secret),
        secret,
        description,
        expires_at: expires_at
            .filter(|e| !e.trim().is_empty())
            .map(expiry)
            .transpose()?,
        ip_filter: ip_filter.map(|f| f.trim().to_string()),
        role,
    })
}

pub async fn list(State(core): State<AppState>) -> Response {
    let cluster = core.cluster();
    let list: Vec<AuthToken> = plan::tokens(&cluster)
        .map(|t| AuthToken {
            id: t.id,
            created_at: t.created_at.clone(),
            is_active: t.is_active,
            expires_at: t.expires_at.clone(),
            description: t.description.clone(),
            ip_filter: t.ip_filter.clone(),
            is_user_token: t.is_user_token,
            role: Some(t.role.to_string()),
        })
        .collect();
    ok(&AuthTokenList {
        count: list.len() as u64,
        list,
    })
}

pub async fn create(State(core): State<AppState>, Body(req): Body<CreateAuthToken>) -> Response {
    let t = match role(req.role.as_deref())
        .and_then(|r| new_token(req.description, req.expires_at.as_deref(), req.ip_filter, r))
    {
        Ok(t) => t,
        Err(e) => return error(Op::Create, e),
    };
    run(&core, Op::Create, StatusCode::CREATED, move |c, env, _| {
        plan::create(c, env, &t)
    })
    .await
}

pub async fn init(State(core): State<AppState>, Body(req): Body<InitAuthTokenRequest>) -> Response {
    let description = req
        .description
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "init-client".to_string());
    let t = match new_token(description, None, None, TokenRole::Admin) {
        Ok(t) => t,
        Err(e) => return error(Op::Create, e),
    };
    let only_satellites = req.only_satellites;
    run(&core, Op::Create, StatusCode::CREATED, move |c, env, _| {
        plan::init(c, env, &t, only_satellites)
    })
    .await
}

fn token_id(id: &str) -> Result<u64, ApiError> {
    id.parse().map_err(|_| {
        ApiError::new(
            code::FAIL_INVLD_REQUEST,
            ObjKind::CtrlConf,
            format!("'{id}' is not an auth token id"),
        )
        .correction("Token ids are numbers; list them with 'linstor controller auth list'")
    })
}

pub async fn modify(
    State(core): State<AppState>,
    Path(id): Path<String>,
    Body(req): Body<ModifyAuthToken>,
) -> Response {
    let id = match token_id(&id) {
        Ok(id) => id,
        Err(e) => return error(Op::Modify, e),
    };
    let m = TokenModify {
        description: req.description,
        ip_filter: req.ip_filter,
        is_active: req.is_active,
    };
    run(&core, Op::Modify, StatusCode::OK, move |c, env, _| {
        plan::modify(c, env, id, &m)
    })
    .await
}

pub async fn revoke(State(core): State<AppState>, Path(id): Path<String>) -> Response {
    let id = match token_id(&id) {
        Ok(id) => id,
        Err(e) => return error(Op::Delete, e),
    };
    run(&core, Op::Delete, StatusCode::OK, move |c, env, _| {
        plan::revoke(c, env, id)
    })
    .await
}

/// Whether a call changes something: every method but GET, HEAD and OPTIONS, except the
/// POSTs that only ask a question.
fn mutates(method: &Method, path: &str) -> bool {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return false;
    }
    let queries = path == paths::MAX_VLM_SIZE
        || path == paths::RSC_GRPS_SIZE_INFO
        || (path.starts_with("/v1/resource-groups/") && path.ends_with("/query-size-info"));
    !(queries && *method == Method::POST)
}

fn refusal(status: StatusCode, message: &str, correction: &str) -> Response {
    let err = ApiError::new(code::FAIL_ACC_DENIED_COMMAND, ObjKind::CtrlConf, message)
        .correction(correction);
    let rcs = vec![ApiCallRc::from(&Reply::from_error(Op::None, err))];
    let mut resp = json(status, &rcs);
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"linstor-controller\""),
        );
    }
    resp
}

fn bearer(req: &Request) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Why a request may not pass, if it may not.
fn verdict(core: &AppState, req: &Request) -> Option<Response> {
    let path = req.uri().path();
    if path == paths::HEALTH || (path == paths::CONTROLLER_VERSION && req.method() == Method::GET) {
        return None;
    }
    let cluster = core.cluster();
    if !plan::enabled(&cluster) {
        return None;
    }
    let unauthorized = || {
        Some(refusal(
            StatusCode::UNAUTHORIZED,
            "Unauthorized: token invalid or not provided",
            "Send 'Authorization: Bearer <token>' with a valid token (linstor --auth-token, LS_AUTH_TOKEN, or /var/lib/linstor.d/auth.json)",
        ))
    };
    let Some(secret) = bearer(req) else {
        return unauthorized();
    };
    let Some(token) = plan::by_hash(&cluster, &token_hash(secret)) else {
        tracing::debug!("refused an unknown token");
        return unauthorized();
    };
    if !plan::usable(token, &now()) {
        tracing::debug!(id = token.id, "refused an inactive or expired token");
        return unauthorized();
    }
    if let Some(filter) = &token.ip_filter {
        let peer: Option<IpAddr> = req
            .extensions()
            .get::<strata_net::ConnInfo>()
            .map(|c| c.peer.ip());
        if !peer.is_some_and(|p| plan::ip_filter_matches(filter, p)) {
            tracing::debug!(
                id = token.id,
                ?peer,
                "refused a token outside its IP filter"
            );
            return unauthorized();
        }
    }
    if token.role == TokenRole::ReadOnly && mutates(req.method(), path) {
        return Some(refusal(
            StatusCode::FORBIDDEN,
            "Forbidden: this token may only read",
            "Use an admin token for calls that change the cluster",
        ));
    }
    None
}

/// The check every request passes (a middleware of the router).
pub async fn check(State(core): State<AppState>, req: Request, next: Next) -> Response {
    match verdict(&core, &req) {
        Some(refused) => refused,
        None => next.run(req).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_and_secrets() {
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let s = new_secret().unwrap();
        assert_eq!(s.len(), 32);
        assert!(s.chars().all(|c| c.is_ascii_alphanumeric()), "{s}");
        assert_ne!(s, new_secret().unwrap());
    }

    #[test]
    fn expiries_and_roles() {
        assert_eq!(expiry("2030-12-31").unwrap(), "2030-12-31T00:00:00Z");
        assert_eq!(
            expiry("2030-12-31T10:00:00+02:00").unwrap(),
            "2030-12-31T08:00:00Z"
        );
        assert!(expiry("tomorrow").is_err());
        assert_eq!(role(Some("Read-Only")).unwrap(), TokenRole::ReadOnly);
        assert_eq!(role(None).unwrap(), TokenRole::Admin);
        assert!(role(Some("root")).is_err());
    }

    #[test]
    fn what_mutates() {
        assert!(!mutates(&Method::GET, "/v1/nodes"));
        assert!(mutates(&Method::POST, "/v1/nodes"));
        assert!(mutates(&Method::PATCH, "/v1/error-reports"));
        assert!(!mutates(&Method::POST, "/v1/query-max-volume-size"));
        assert!(!mutates(
            &Method::POST,
            "/v1/resource-groups/rg1/query-size-info"
        ));
        assert!(mutates(&Method::POST, "/v1/resource-groups/rg1/spawn"));
    }
}
