//! REST API tokens, as LINSTOR 1.34's token authentication has them: made, listed, changed
//! and revoked through `/v1/controller/auth/...`, kept hashed as
//! [`SecurityRecord::ApiToken`]s, and enforced once the controller property
//! `Auth/TokenAuthenticationEnabled` is true and a token exists.
//!
//! Secrets and their hashes are made by the caller (the planner stays pure); the answer that
//! makes a token says its secret once, in its message and in `obj_refs` (`token`).

use std::net::IpAddr;

use crate::cluster::{Change, Cluster};
use crate::error::{code, ApiError, ObjKind};
use crate::security::{api_token_key, ApiToken, SecurityRecord, TokenRole};

use super::{Env, Op, Plan, PlanResult, Reply};

/// The controller property that turns token authentication on (LINSTOR's key).
pub const AUTH_ENABLED_KEY: &str = "Auth/TokenAuthenticationEnabled";
/// The key of a new token's secret in the `obj_refs` of the answer (LINSTOR's).
pub const TOKEN_REF: &str = "token";

/// A token about to be made: its secret (said once in the answer) and its hash (kept).
#[derive(Debug, Clone)]
pub struct NewToken {
    pub secret: String,
    /// Lower-case hex SHA-256 of `secret`.
    pub hash: String,
    pub description: String,
    /// RFC 3339, UTC (`2030-12-31T00:00:00Z`).
    pub expires_at: Option<String>,
    pub ip_filter: Option<String>,
    pub role: TokenRole,
}

/// What a token change asks for; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct TokenModify {
    pub description: Option<String>,
    /// An empty filter removes it.
    pub ip_filter: Option<String>,
    pub is_active: Option<bool>,
}

/// Every API token, by id.
pub fn tokens(c: &Cluster) -> impl Iterator<Item = &ApiToken> {
    c.security.values().filter_map(|r| match r {
        SecurityRecord::ApiToken(t) => Some(t),
        _ => None,
    })
}

/// Whether requests must carry a token: the property is true and a token exists (LINSTOR
/// leaves the API open while there is none, so that switching on cannot lock everyone out).
pub fn enabled(c: &Cluster) -> bool {
    c.ctrl_props
        .get(AUTH_ENABLED_KEY)
        .is_some_and(|v| v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("yes"))
        && tokens(c).next().is_some()
}

/// Whether `t` may be used at `now` (RFC 3339, UTC, as [`rfc3339`] writes it).
pub fn usable(t: &ApiToken, now: &str) -> bool {
    t.is_active && t.expires_at.as_deref().is_none_or(|e| e > now)
}

/// The token whose secret hashes to `hash`.
pub fn by_hash<'a>(c: &'a Cluster, hash: &str) -> Option<&'a ApiToken> {
    tokens(c).find(|t| t.hash == hash)
}

/// Checks an IP filter: an address (`10.0.0.5`, `fd00::1`) or a network (`10.0.0.0/24`).
pub fn check_ip_filter(filter: &str) -> Result<(), String> {
    parse_filter(filter).map(|_| ())
}

fn parse_filter(filter: &str) -> Result<(IpAddr, u8), String> {
    let bad = || {
        format!(
            "'{filter}' is neither an IP address nor a network such as 10.0.0.0/24 or fd00::/64"
        )
    };
    let (addr, len) = match filter.trim().split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (filter.trim(), None),
    };
    let addr: IpAddr = addr.parse().map_err(|_| bad())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match len {
        Some(l) => l.parse::<u8>().ok().filter(|l| *l <= max).ok_or_else(bad)?,
        None => max,
    };
    Ok((addr, len))
}

/// Whether a client at `addr` passes `filter` (an IPv4 client seen as `::ffff:a.b.c.d`
/// counts as its IPv4 address).
pub fn ip_filter_matches(filter: &str, addr: IpAddr) -> bool {
    let Ok((net, len)) = parse_filter(filter) else {
        return false;
    };
    let addr = match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(addr),
        v4 => v4,
    };
    match (net, addr) {
        (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), len),
        (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), len),
        _ => false,
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let bits = usize::from(bits);
    let (whole, rest) = (bits / 8, bits % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    rest == 0 || (a[whole] ^ b[whole]) >> (8 - rest) == 0
}

/// `ms` since the Unix epoch as RFC 3339 in UTC, to the second (`2030-12-31T00:00:00Z`):
/// one width for every date of this era, so that such strings compare as times do.
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

fn invalid(message: String) -> ApiError {
    ApiError::new(code::FAIL_INVLD_CONF, ObjKind::CtrlConf, message)
}

fn put(plan: &mut Plan, t: ApiToken) {
    plan.change(Change::PutSecurity(SecurityRecord::ApiToken(t)));
}

/// Adds the token to `plan`; answers its id.
fn add_token(
    c: &Cluster,
    env: &mut dyn Env,
    t: &NewToken,
    plan: &mut Plan,
) -> Result<u64, ApiError> {
    if let Some(f) = t.ip_filter.as_deref().filter(|f| !f.is_empty()) {
        check_ip_filter(f).map_err(|e| invalid(format!("Invalid IP filter: {f}")).cause(e))?;
    }
    let id = tokens(c).map(|t| t.id).max().unwrap_or(0) + 1;
    put(
        plan,
        ApiToken {
            id,
            hash: t.hash.clone(),
            description: t.description.clone(),
            created_at: rfc3339(env.now_ms()),
            expires_at: t.expires_at.clone(),
            ip_filter: t.ip_filter.clone().filter(|f| !f.is_empty()),
            is_active: true,
            role: t.role,
            is_user_token: true,
        },
    );
    Ok(id)
}

/// `POST /v1/controller/auth/token`: a new token; token authentication stays as it is.
pub fn create(c: &Cluster, env: &mut dyn Env, t: &NewToken) -> PlanResult {
    let mut plan = Plan::new();
    let id = add_token(c, env, t, &mut plan)?;
    plan.reply(
        Reply::created(
            ObjKind::CtrlConf,
            format!("Auth token created successfully: {}", t.secret),
        )
        .with_ref(TOKEN_REF, t.secret.clone())
        .with_ref("AuthTokenId", id.to_string())
        .with_details(format!("token {id}, role {}", t.role)),
    );
    Ok(plan)
}

/// `POST /v1/controller/auth/initialize-token-auth`: makes a first (admin) token and turns
/// token authentication on; no effect when it is on already with a usable admin token.
/// Satellites have no tokens here (their link is mutual TLS), so `only_satellites` has none.
pub fn init(c: &Cluster, env: &mut dyn Env, t: &NewToken, only_satellites: bool) -> PlanResult {
    let now = rfc3339(env.now_ms());
    let has_admin = tokens(c).any(|t| t.role == TokenRole::Admin && usable(t, &now));
    if only_satellites {
        return Ok(Plan::only(Reply::warning(
            Op::Modify,
            ObjKind::CtrlConf,
            code::WARN_NO_EFFECT,
            "Satellites need no tokens: the controller and its satellites authenticate each other with certificates",
        )));
    }
    if enabled(c) && has_admin {
        return Ok(Plan::only(
            Reply::warning(
                Op::Modify,
                ObjKind::CtrlConf,
                code::WARN_NO_EFFECT,
                "Token authentication is already enabled",
            )
            .with_correction("Make more tokens with 'linstor controller auth create'"),
        ));
    }
    let mut plan = Plan::new();
    let first = NewToken {
        role: TokenRole::Admin,
        ..t.clone()
    };
    let id = add_token(c, env, &first, &mut plan)?;
    let mut props = c.ctrl_props.clone();
    props.insert(AUTH_ENABLED_KEY.to_string(), "true".to_string());
    plan.change(Change::CtrlProps(props));
    plan.reply(
        Reply::created(
            ObjKind::CtrlConf,
            format!(
                "Token authentication initialized successfully. Init token {}",
                t.secret
            ),
        )
        .with_ref(TOKEN_REF, t.secret.clone())
        .with_ref("AuthTokenId", id.to_string()),
    );
    Ok(plan)
}

fn find(c: &Cluster, id: u64) -> Option<&ApiToken> {
    match c.security.get(&api_token_key(id)) {
        Some(SecurityRecord::ApiToken(t)) => Some(t),
        _ => None,
    }
}

/// Refuses a change that leaves token authentication on without a usable admin token: no
/// one could manage tokens any more.
fn keep_an_admin(c: &Cluster, env: &dyn Env, gone: u64) -> Result<(), ApiError> {
    let now = rfc3339(env.now_ms());
    let others = tokens(c).any(|t| t.id != gone && t.role == TokenRole::Admin && usable(t, &now));
    if !enabled(c) || others {
        return Ok(());
    }
    Err(ApiError::new(
        code::FAIL_INVLD_REQUEST,
        ObjKind::CtrlConf,
        format!("Auth token {gone} is the last usable admin token"),
    )
    .cause("Token authentication is on; without an admin token no one could manage tokens")
    .correction(
        "Create another admin token first, or turn token authentication off with 'linstor controller set-property Auth/TokenAuthenticationEnabled false'",
    ))
}

fn not_found(id: u64) -> ApiError {
    ApiError::new(
        code::FAIL_INVLD_REQUEST,
        ObjKind::CtrlConf,
        format!("Auth token {id} not found"),
    )
    .cause("The specified auth token does not exist")
    .correction("List the tokens with 'linstor controller auth list'")
}

/// `PUT /v1/controller/auth/token/{id}`.
pub fn modify(c: &Cluster, env: &mut dyn Env, id: u64, m: &TokenModify) -> PlanResult {
    let Some(old) = find(c, id) else {
        return Err(not_found(id));
    };
    let mut t = old.clone();
    if let Some(d) = &m.description {
        t.description = d.clone();
    }
    if let Some(f) = &m.ip_filter {
        if f.is_empty() {
            t.ip_filter = None;
        } else {
            check_ip_filter(f).map_err(|e| invalid(format!("Invalid IP filter: {f}")).cause(e))?;
            t.ip_filter = Some(f.trim().to_string());
        }
    }
    if let Some(a) = m.is_active {
        t.is_active = a;
    }
    if old.is_active && !t.is_active {
        keep_an_admin(c, env, id)?;
    }
    let mut plan = Plan::new();
    put(&mut plan, t);
    plan.reply(Reply::modified(
        ObjKind::CtrlConf,
        format!("Auth token {id} modified successfully"),
    ));
    Ok(plan)
}

/// `DELETE /v1/controller/auth/token/{id}`: the token is gone at once.
pub fn revoke(c: &Cluster, env: &mut dyn Env, id: u64) -> PlanResult {
    if find(c, id).is_none() {
        return Ok(Plan::only(
            Reply::warning(
                Op::Delete,
                ObjKind::CtrlConf,
                code::WARN_NOT_FOUND,
                format!("Auth token {id} not found or already revoked"),
            )
            .with_cause("The specified auth token does not exist or was already revoked"),
        ));
    }
    keep_an_admin(c, env, id)?;
    let mut plan = Plan::new();
    plan.change(Change::DelSecurity(api_token_key(id)));
    plan.reply(Reply::deleted(
        ObjKind::CtrlConf,
        format!("Auth token {id} revoked successfully"),
    ));
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct At(i64);

    impl Env for At {
        fn uuid(&mut self) -> String {
            "u".into()
        }
        fn now_ms(&self) -> i64 {
            self.0
        }
    }

    fn apply(c: &mut Cluster, plan: Plan) {
        for ch in plan.changes {
            c.apply(ch);
        }
    }

    fn new_token(secret: &str, role: TokenRole) -> NewToken {
        NewToken {
            secret: secret.into(),
            hash: format!("h-{secret}"),
            description: secret.into(),
            expires_at: None,
            ip_filter: None,
            role,
        }
    }

    #[test]
    fn times_are_rfc3339_of_one_width() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_924_991_999_000), "2030-12-31T23:59:59Z");
        assert!(rfc3339(1_924_991_999_000) > rfc3339(951_782_400_000));
    }

    #[test]
    fn ip_filters() {
        let a = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(ip_filter_matches("10.0.0.5", a("10.0.0.5")));
        assert!(!ip_filter_matches("10.0.0.5", a("10.0.0.6")));
        assert!(ip_filter_matches("10.1.0.0/16", a("10.1.200.3")));
        assert!(!ip_filter_matches("10.1.0.0/16", a("10.2.0.1")));
        assert!(ip_filter_matches("10.0.0.0/12", a("10.15.255.255")));
        assert!(!ip_filter_matches("10.0.0.0/12", a("10.16.0.0")));
        assert!(ip_filter_matches("127.0.0.1", a("::ffff:127.0.0.1")));
        assert!(ip_filter_matches("fd00::/8", a("fd12::1")));
        assert!(ip_filter_matches("0.0.0.0/0", a("192.168.1.1")));
        assert!(!ip_filter_matches("fd00::/8", a("10.0.0.1")));
        for bad in ["", "host.example", "10.0.0.0/33", "10.0.0.0/x", "::/129"] {
            assert!(check_ip_filter(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn init_create_modify_revoke() {
        let mut c = Cluster::default();
        let mut env = At(1_000);
        assert!(!enabled(&c));
        let plan = init(&c, &mut env, &new_token("s1", TokenRole::ReadOnly), false).unwrap();
        let r = &plan.replies[0];
        assert_eq!(r.obj_refs["token"], "s1");
        assert!(r.message.contains("s1"));
        apply(&mut c, plan);
        assert!(enabled(&c));
        let first = by_hash(&c, "h-s1").unwrap();
        assert_eq!(
            first.role,
            TokenRole::Admin,
            "the first token manages the others"
        );
        assert_eq!(first.created_at, "1970-01-01T00:00:01Z");
        // A second init has no effect.
        let again = init(&c, &mut env, &new_token("s2", TokenRole::Admin), false).unwrap();
        assert!(again.changes.is_empty());
        assert_eq!(again.replies[0].code, code::WARN_NO_EFFECT);

        let mut ro = new_token("s3", TokenRole::ReadOnly);
        ro.ip_filter = Some("10.0.0.0/8".into());
        let plan = create(&c, &mut env, &ro).unwrap();
        assert_eq!(plan.replies[0].obj_refs["AuthTokenId"], "2");
        apply(&mut c, plan);
        assert_eq!(by_hash(&c, "h-s3").unwrap().role, TokenRole::ReadOnly);
        ro.ip_filter = Some("nowhere".into());
        assert_eq!(
            create(&c, &mut env, &ro).unwrap_err().code,
            code::FAIL_INVLD_CONF
        );

        // The only admin token can be neither switched off nor revoked.
        let off = TokenModify {
            is_active: Some(false),
            ..Default::default()
        };
        assert!(modify(&c, &mut env, 1, &off).is_err());
        assert!(revoke(&c, &mut env, 1).is_err());
        // Read-only tokens go freely; an unknown one is a warning.
        let p = revoke(&c, &mut env, 2).unwrap();
        apply(&mut c, p);
        assert!(by_hash(&c, "h-s3").is_none());
        assert_eq!(
            revoke(&c, &mut env, 2).unwrap().replies[0].code,
            code::WARN_NOT_FOUND
        );
        // With a second admin token the first may go.
        let p = create(&c, &mut env, &new_token("s4", TokenRole::Admin)).unwrap();
        apply(&mut c, p);
        let p = modify(&c, &mut env, 1, &off).unwrap();
        apply(&mut c, p);
        assert!(!usable(
            by_hash(&c, "h-s1").unwrap(),
            &rfc3339(env.now_ms())
        ));
        let unset = TokenModify {
            ip_filter: Some(String::new()),
            description: Some("renamed".into()),
            ..Default::default()
        };
        let p = modify(&c, &mut env, 2, &unset).unwrap();
        apply(&mut c, p);
        assert_eq!(by_hash(&c, "h-s4").unwrap().description, "renamed");
        assert!(modify(&c, &mut env, 99, &unset).is_err());
    }

    #[test]
    fn expired_tokens_are_not_usable() {
        let mut t = ApiToken {
            id: 1,
            hash: "h".into(),
            description: String::new(),
            created_at: rfc3339(0),
            expires_at: Some("2030-01-01T00:00:00Z".into()),
            ip_filter: None,
            is_active: true,
            role: TokenRole::Admin,
            is_user_token: true,
        };
        assert!(usable(&t, "2029-12-31T23:59:59Z"));
        assert!(!usable(&t, "2030-01-01T00:00:00Z"));
        t.expires_at = None;
        t.is_active = false;
        assert!(!usable(&t, "2029-12-31T23:59:59Z"));
    }
}
