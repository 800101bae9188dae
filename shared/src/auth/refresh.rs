//! Opaque refresh tokens: `rt1.<sessionId>.<generation>.<secret>`.
//!
//! A generation's secret is not random: it is HMAC-SHA256(refresh key, sessionId ‖ generation ‖ salt),
//! base64url (43 characters), where the refresh key is derived from the token secret with a label of
//! its own and the salt is 16 random bytes stored on the session item. So the server can tell, for any
//! generation, whether a presented secret is one it issued, without keeping old hashes; and without
//! the server key and the salt nobody can compute one.
//!
//! Only a SHA-256 of the current secret is stored, on the session item, with the session's current
//! generation. Each refresh issues generation + 1 and replaces the hash. A token whose generation is
//! older than the session's *and whose secret verifies* was already rotated away: seeing it again means
//! it leaked, so the whole session is revoked. A secret that does not verify revokes nothing.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::random_bytes;

const PREFIX: &str = "rt1";

type HmacSha256 = hmac::Hmac<Sha256>;

/// The key refresh secrets are derived with: a sub-key of the token secret, so it is never the key
/// that signs access tokens or cursors.
#[derive(Clone)]
pub struct RefreshKey {
    key: Vec<u8>,
}

impl std::fmt::Debug for RefreshKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshKey(<redacted>)")
    }
}

impl RefreshKey {
    pub fn new(token_secret: &[u8]) -> Self {
        let mut mac = HmacSha256::new_from_slice(token_secret).expect("HMAC takes keys of any length");
        mac.update(b"parley refresh-token key v1");
        RefreshKey {
            key: mac.finalize().into_bytes().to_vec(),
        }
    }

    /// The secret of `generation` of the session.
    fn secret(&self, session_id: &str, generation: u64, salt: &str) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(session_id.as_bytes());
        mac.update(&[0]);
        mac.update(generation.to_string().as_bytes());
        mac.update(&[0]);
        mac.update(salt.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }
}

/// A fresh per-session salt (16 random bytes, hex).
pub fn new_salt() -> String {
    hex::encode(random_bytes::<16>())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    pub session_id: String,
    pub generation: u64,
    pub secret: String,
}

impl RefreshToken {
    /// The token of `generation` of the session salted with `salt`.
    pub fn derive(key: &RefreshKey, session_id: &str, generation: u64, salt: &str) -> Self {
        RefreshToken {
            session_id: session_id.to_owned(),
            generation,
            secret: key.secret(session_id, generation, salt),
        }
    }

    /// True when this token's secret is the one the server issued for its session and generation
    /// (constant time).
    pub fn is_authentic(&self, key: &RefreshKey, salt: &str) -> bool {
        let expected = key.secret(&self.session_id, self.generation, salt);
        expected.as_bytes().ct_eq(self.secret.as_bytes()).into()
    }

    /// `None` for anything not shaped like a token this service issued.
    pub fn parse(raw: &str) -> Option<Self> {
        let mut parts = raw.split('.');
        let (prefix, sid, generation, secret) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if prefix != PREFIX || parts.next().is_some() || secret.len() != 43 {
            return None;
        }
        let session_id = ulid::Ulid::from_string(sid).ok()?.to_string();
        Some(RefreshToken {
            session_id,
            generation: generation.parse().ok()?,
            secret: secret.to_owned(),
        })
    }

    pub fn encode(&self) -> String {
        format!("{PREFIX}.{}.{}.{}", self.session_id, self.generation, self.secret)
    }

    /// What the session item stores.
    pub fn secret_hash(&self) -> String {
        hex::encode(Sha256::digest(self.secret.as_bytes()))
    }

    pub fn matches_hash(&self, stored_hash: &str) -> bool {
        self.secret_hash().as_bytes().ct_eq(stored_hash.as_bytes()).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> RefreshKey {
        RefreshKey::new(b"0123456789abcdef0123456789abcdef")
    }

    #[test]
    fn round_trips_and_hashes() {
        let sid = ulid::Ulid::generate().to_string();
        let salt = new_salt();
        let token = RefreshToken::derive(&key(), &sid, 3, &salt);
        assert_eq!(token.secret.len(), 43);
        let parsed = RefreshToken::parse(&token.encode()).unwrap();
        assert_eq!(parsed, token);
        assert!(parsed.matches_hash(&token.secret_hash()));
        assert!(!RefreshToken::derive(&key(), &sid, 4, &salt).matches_hash(&token.secret_hash()));
    }

    #[test]
    fn only_issued_secrets_are_authentic() {
        let sid = ulid::Ulid::generate().to_string();
        let salt = new_salt();
        for generation in [0, 1, 7] {
            let token = RefreshToken::derive(&key(), &sid, generation, &salt);
            assert!(token.is_authentic(&key(), &salt), "generation {generation}");
            assert!(!token.is_authentic(&key(), &new_salt()), "another session's salt");
            assert!(
                !token.is_authentic(&RefreshKey::new(b"another-secret-another-secret-xx"), &salt),
                "another deployment's key"
            );
            let moved = RefreshToken {
                generation: generation + 1,
                ..token.clone()
            };
            assert!(
                !moved.is_authentic(&key(), &salt),
                "a secret is bound to its generation"
            );
            let forged = RefreshToken {
                secret: URL_SAFE_NO_PAD.encode(random_bytes::<32>()),
                ..token
            };
            assert!(!forged.is_authentic(&key(), &salt), "a random secret");
        }
    }

    #[test]
    fn the_refresh_key_is_not_the_token_secret() {
        let secret = b"0123456789abcdef0123456789abcdef";
        assert_ne!(RefreshKey::new(secret).key, secret.to_vec());
        assert_eq!(RefreshKey::new(secret).key.len(), 32);
        assert!(!format!("{:?}", RefreshKey::new(secret)).contains("0123"));
    }

    #[test]
    fn rejects_malformed() {
        let sid = ulid::Ulid::generate().to_string();
        for bad in [
            "",
            "rt1",
            "rt1.x.1.y",
            &format!("rt2.{sid}.1.{}", "a".repeat(43)),
            &format!("rt1.{sid}.-1.{}", "a".repeat(43)),
        ] {
            assert!(RefreshToken::parse(bad).is_none(), "{bad}");
        }
    }
}
