//! The wire types of token authentication (`/v1/controller/auth/...`), as LINSTOR 1.34 has
//! them, with one addition: the `role` of a token (`admin`, the default, or `read-only`).
//!
//! A token's secret is never listed; it is said once, when the token is made, in the
//! `obj_refs` of the answer (`token`, as LINSTOR) and in its message.

use serde::{Deserialize, Serialize};

use crate::lenient;

/// The key of the created token's secret in the `obj_refs` of the answer.
pub const TOKEN_REF: &str = "token";
/// The key of the created token's id in the `obj_refs` of the answer.
pub const TOKEN_ID_REF: &str = "AuthTokenId";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuthToken {
    pub id: u64,
    pub created_at: String,
    pub is_active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_filter: Option<String>,
    pub is_user_token: bool,
    /// `admin` or `read-only`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuthTokenList {
    pub count: u64,
    pub list: Vec<AuthToken>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateAuthToken {
    #[serde(default)]
    pub description: String,
    /// A date (`2030-12-31`, midnight UTC) or an RFC 3339 date-time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// An address or a CIDR network the token may be used from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_filter: Option<String>,
    /// `admin` (the default) or `read-only`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModifyAuthToken {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// An empty string removes the filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_filter: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_bool"
    )]
    pub is_active: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InitAuthTokenRequest {
    #[serde(default, deserialize_with = "bool_or_false")]
    pub only_satellites: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "bool_or_false")]
    pub no_https: bool,
}

fn bool_or_false<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(lenient::opt_bool(d)?.unwrap_or(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_as_python_linstor_sends_them() {
        let c: CreateAuthToken =
            serde_json::from_str(r#"{"description":"ci","ip_filter":"10.0.0.0/8"}"#).unwrap();
        assert_eq!(c.description, "ci");
        assert_eq!(c.ip_filter.as_deref(), Some("10.0.0.0/8"));
        let m: ModifyAuthToken = serde_json::from_str(r#"{"is_active":"false"}"#).unwrap();
        assert_eq!(m.is_active, Some(false));
        let i: InitAuthTokenRequest = serde_json::from_str(r#"{"description":"x"}"#).unwrap();
        assert!(!i.only_satellites && !i.no_https);
        let i: InitAuthTokenRequest =
            serde_json::from_str(r#"{"only_satellites":true,"no_https":"true"}"#).unwrap();
        assert!(i.only_satellites && i.no_https);
    }
}
