//! The one-time join: both sides prove they hold the node's join token without sending it.
//!
//! The satellite proves it over its own public key (the one its TLS connection showed), so
//! that a certificate the controller issues for that key is of use to no one else; the
//! controller proves it over the CA and the certificate it hands over, so that the satellite
//! binds only to the cluster that made its token.

use ring::hmac;

/// A new random join token (48 hex digits).
pub fn new_token() -> String {
    let mut bytes = [0u8; 24];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .expect("the system's random source");
    crate::hex(&bytes)
}

/// Whether `token` looks like a token (so that typos are caught before a join fails).
pub fn valid_token(token: &str) -> bool {
    (16..=256).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_graphic())
}

fn mac(token: &str, parts: &[&[u8]]) -> hmac::Tag {
    let key = hmac::Key::new(hmac::HMAC_SHA256, token.as_bytes());
    let mut ctx = hmac::Context::with_key(&key);
    for p in parts {
        ctx.update(&(p.len() as u64).to_be_bytes());
        ctx.update(p);
    }
    ctx.sign()
}

fn verify(token: &str, parts: &[&[u8]], proof_hex: &str) -> bool {
    let Some(proof) = crate::unhex(proof_hex) else {
        return false;
    };
    let key = hmac::Key::new(hmac::HMAC_SHA256, token.as_bytes());
    let mut msg = Vec::new();
    for p in parts {
        msg.extend_from_slice(&(p.len() as u64).to_be_bytes());
        msg.extend_from_slice(p);
    }
    hmac::verify(&key, &msg, &proof).is_ok()
}

const SATELLITE: &[u8] = b"strata-join/satellite";
const CONTROLLER: &[u8] = b"strata-join/controller";

/// The satellite's proof: it holds `token`, and `spki` is its key.
pub fn satellite_proof(token: &str, node: &str, spki: &[u8]) -> String {
    crate::hex(mac(token, &[SATELLITE, node.as_bytes(), spki]).as_ref())
}

pub fn check_satellite_proof(token: &str, node: &str, spki: &[u8], proof: &str) -> bool {
    verify(token, &[SATELLITE, node.as_bytes(), spki], proof)
}

/// The controller's proof: it holds `token`, and hands over this CA and certificate.
pub fn controller_proof(token: &str, node: &str, ca_pem: &str, cert_pem: &str) -> String {
    crate::hex(
        mac(
            token,
            &[
                CONTROLLER,
                node.as_bytes(),
                ca_pem.as_bytes(),
                cert_pem.as_bytes(),
            ],
        )
        .as_ref(),
    )
}

pub fn check_controller_proof(
    token: &str,
    node: &str,
    ca_pem: &str,
    cert_pem: &str,
    proof: &str,
) -> bool {
    verify(
        token,
        &[
            CONTROLLER,
            node.as_bytes(),
            ca_pem.as_bytes(),
            cert_pem.as_bytes(),
        ],
        proof,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proofs_hold_only_for_the_same_token_node_and_key() {
        let t = new_token();
        assert_eq!(t.len(), 48);
        assert!(valid_token(&t));
        assert!(!valid_token("short"));
        let p = satellite_proof(&t, "alpha", b"key");
        assert!(check_satellite_proof(&t, "alpha", b"key", &p));
        assert!(!check_satellite_proof(&t, "beta", b"key", &p));
        assert!(!check_satellite_proof(&t, "alpha", b"other", &p));
        assert!(!check_satellite_proof(&new_token(), "alpha", b"key", &p));
        assert!(!check_satellite_proof(&t, "alpha", b"key", "zz"));
        // The parts are length-prefixed: moving a byte from one part to the next changes it.
        let c = controller_proof(&t, "alpha", "ab", "c");
        assert!(check_controller_proof(&t, "alpha", "ab", "c", &c));
        assert!(!check_controller_proof(&t, "alpha", "a", "bc", &c));
        // A satellite's proof is no controller's proof.
        assert!(!check_controller_proof(&t, "alpha", "key", "", &p));
    }
}
