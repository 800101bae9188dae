//! Opaque refresh tokens: `rt1.<sessionId>.<generation>.<secret>`.
//!
//! Only a SHA-256 of the secret is stored, on the session item, with the session's current generation.
//! Each refresh issues generation + 1 and replaces the hash. A token whose generation is older than the
//! session's was already rotated away: seeing it again means it leaked, so the whole session is revoked.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::random_bytes;

const PREFIX: &str = "rt1";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    pub session_id: String,
    pub generation: u64,
    pub secret: String,
}

impl RefreshToken {
    /// A fresh token for `session_id` at `generation`, with 256 random bits.
    pub fn generate(session_id: &str, generation: u64) -> Self {
        RefreshToken {
            session_id: session_id.to_owned(),
            generation,
            secret: URL_SAFE_NO_PAD.encode(random_bytes::<32>()),
        }
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

    #[test]
    fn round_trips_and_hashes() {
        let sid = ulid::Ulid::generate().to_string();
        let token = RefreshToken::generate(&sid, 3);
        let parsed = RefreshToken::parse(&token.encode()).unwrap();
        assert_eq!(parsed, token);
        assert!(parsed.matches_hash(&token.secret_hash()));
        assert!(!RefreshToken::generate(&sid, 3).matches_hash(&token.secret_hash()));
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
