//! What the controller keeps to secure its links: REST API tokens (stored hashed), one-time
//! join tokens of nodes that have not joined yet, the certificate each joined node holds, and
//! the certificates revoked. All of it persists as [`SecurityRecord`]s, one row each; none of
//! it reaches a satellite's configuration.

use serde::{Deserialize, Serialize};

use crate::name::NodeName;

/// What a REST API token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TokenRole {
    /// Everything.
    #[default]
    Admin,
    /// Reads only (`GET`, and the `POST`s that only query).
    ReadOnly,
}

impl std::fmt::Display for TokenRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TokenRole::Admin => "admin",
            TokenRole::ReadOnly => "read-only",
        })
    }
}

/// A REST API bearer token. Only the SHA-256 of the secret is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    pub id: u64,
    /// Lower-case hex SHA-256 of the token as the client sends it.
    pub hash: String,
    pub description: String,
    /// RFC 3339.
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_filter: Option<String>,
    pub is_active: bool,
    #[serde(default)]
    pub role: TokenRole,
    /// `false` for the tokens the controller made for itself (LINSTOR's satellite tokens).
    #[serde(default = "yes")]
    pub is_user_token: bool,
}

fn yes() -> bool {
    true
}

/// The one-time secret a node joins the cluster with; gone once the node joined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinToken {
    pub node: NodeName,
    pub secret: String,
    /// Milliseconds since the Unix epoch after which the token is refused.
    pub expires_at_ms: u64,
}

/// The certificate a joined node holds (issued by the cluster CA).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeCert {
    pub node: NodeName,
    /// Lower-case hex serial number.
    pub serial: String,
    /// Lower-case hex SHA-256 of the certificate's DER.
    pub fingerprint: String,
    pub not_after_ms: u64,
    /// Lower-case hex of the node's public key (DER SubjectPublicKeyInfo): renewals are
    /// issued for the same key.
    pub spki: String,
}

/// A certificate no longer accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokedCert {
    pub serial: String,
    pub node: NodeName,
    pub revoked_at_ms: u64,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SecurityRecord {
    ApiToken(ApiToken),
    JoinToken(JoinToken),
    NodeCert(NodeCert),
    Revoked(RevokedCert),
}

impl SecurityRecord {
    /// The record's unique key (its store key, and its key in [`crate::Cluster::security`]).
    pub fn key(&self) -> String {
        match self {
            SecurityRecord::ApiToken(t) => api_token_key(t.id),
            SecurityRecord::JoinToken(t) => join_token_key(&t.node),
            SecurityRecord::NodeCert(c) => node_cert_key(&c.node),
            SecurityRecord::Revoked(r) => revoked_key(&r.serial),
        }
    }
}

pub fn api_token_key(id: u64) -> String {
    format!("token:{id:020}")
}

pub fn join_token_key(node: &NodeName) -> String {
    format!("join:{}", node.key())
}

pub fn node_cert_key(node: &NodeName) -> String {
    format!("cert:{}", node.key())
}

pub fn revoked_key(serial: &str) -> String {
    format!("revoked:{}", serial.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_round_trip() {
        let n: NodeName = "Alpha".parse().unwrap();
        let r = SecurityRecord::NodeCert(NodeCert {
            node: n.clone(),
            serial: "0a".into(),
            fingerprint: "ff".into(),
            not_after_ms: 5,
            spki: "00".into(),
        });
        assert_eq!(r.key(), format!("cert:{}", n.key()));
        assert_eq!(r.key(), node_cert_key(&"ALPHA".parse().unwrap()));
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("\"kind\":\"node_cert\""), "{json}");
        assert_eq!(serde_json::from_str::<SecurityRecord>(&json).unwrap(), r);
        assert_eq!(api_token_key(7), "token:00000000000000000007");
        assert_eq!(revoked_key("0A"), "revoked:0a");
        let t: ApiToken = serde_json::from_str(
            r#"{"id":1,"hash":"x","description":"d","created_at":"c","is_active":true}"#,
        )
        .unwrap();
        assert_eq!(t.role, TokenRole::Admin);
        assert!(t.is_user_token);
    }
}
