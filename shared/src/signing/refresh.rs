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
//!
//! Rotating the token secret: the key holds the refresh key derived from the current secret and, for
//! one rotation, the one derived from the previous secret. New generations are always derived with
//! the current one; an old generation counts as authentic (so its reuse revokes) when either key
//! derives its secret. The current generation is checked against the stored hash, which does not
//! depend on the key, so a session whose current generation was made under the previous secret still
//! refreshes, and that refresh moves it onto the current key: a session refreshed once between two
//! rotations survives the second, which drops the key it started with.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::random_bytes;

const PREFIX: &str = "rt1";

type HmacSha256 = hmac::Hmac<Sha256>;

/// The key refresh secrets are derived with: a sub-key of the token secret, so it is never the key
/// that signs access tokens or cursors; and, after a rotation, the sub-key of the previous secret,
/// which only verifies.
#[derive(Clone)]
pub struct RefreshKey {
    key: Vec<u8>,
    previous: Option<Vec<u8>>,
}

impl std::fmt::Debug for RefreshKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshKey(<redacted>)")
    }
}

impl RefreshKey {
    /// The key of a deployment with one token secret.
    pub fn new(token_secret: &[u8]) -> Self {
        Self::with_previous(token_secret, None)
    }

    /// The key of a deployment whose token secret was rotated: secrets are derived with `token_secret`,
    /// and those derived with `previous` still verify.
    pub fn with_previous(token_secret: &[u8], previous: Option<&[u8]>) -> Self {
        RefreshKey {
            key: sub_key(token_secret),
            previous: previous.map(sub_key),
        }
    }

    /// The secret of `generation` of the session, as issued now (with the current key).
    fn secret(&self, session_id: &str, generation: u64, salt: &str) -> String {
        derive_secret(&self.key, session_id, generation, salt)
    }

    /// True when `presented` is the secret of `generation` under the current or the previous key.
    /// Each comparison is constant time, and both are made whenever there is a previous key.
    fn verifies(&self, presented: &str, session_id: &str, generation: u64, salt: &str) -> bool {
        let matches = |key: &[u8]| {
            derive_secret(key, session_id, generation, salt)
                .as_bytes()
                .ct_eq(presented.as_bytes())
        };
        let mut authentic = matches(&self.key);
        if let Some(previous) = &self.previous {
            authentic |= matches(previous);
        }
        authentic.into()
    }
}

fn sub_key(token_secret: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(token_secret).expect("HMAC takes keys of any length");
    mac.update(b"parley refresh-token key v1");
    mac.finalize().into_bytes().to_vec()
}

fn derive_secret(key: &[u8], session_id: &str, generation: u64, salt: &str) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(session_id.as_bytes());
    mac.update(&[0]);
    mac.update(generation.to_string().as_bytes());
    mac.update(&[0]);
    mac.update(salt.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
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

    /// True when this token's secret is the one the server issued for its session and generation,
    /// under the current or (after a rotation) the previous secret (constant time).
    pub fn is_authentic(&self, key: &RefreshKey, salt: &str) -> bool {
        key.verifies(&self.secret, &self.session_id, self.generation, salt)
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
        let rotated = RefreshKey::with_previous(B, Some(secret));
        assert_eq!(
            rotated.previous.as_deref(),
            Some(RefreshKey::new(secret).key.as_slice())
        );
        assert!(!format!("{rotated:?}").contains("0123"));
    }

    const A: &[u8] = b"secret-a-secret-a-secret-a-secret-a";
    const B: &[u8] = b"secret-b-secret-b-secret-b-secret-b";
    const C: &[u8] = b"secret-c-secret-c-secret-c-secret-c";

    #[test]
    fn a_rotation_keeps_the_previous_secrets_tokens_authentic() {
        let sid = ulid::Ulid::generate().to_string();
        let salt = new_salt();
        let before = RefreshToken::derive(&RefreshKey::new(A), &sid, 0, &salt);

        let rotated = RefreshKey::with_previous(B, Some(A));
        assert!(before.is_authentic(&rotated, &salt), "made under the previous secret");
        assert!(
            !before.is_authentic(&RefreshKey::new(B), &salt),
            "not once the previous secret is gone"
        );
        let unrelated = RefreshToken::derive(&RefreshKey::new(C), &sid, 0, &salt);
        assert!(!unrelated.is_authentic(&rotated, &salt), "an unrelated secret");
        assert!(
            !RefreshToken {
                generation: 1,
                ..before.clone()
            }
            .is_authentic(&rotated, &salt),
            "still bound to its generation"
        );

        // New generations are made with the current secret only.
        let next = RefreshToken::derive(&rotated, &sid, 1, &salt);
        assert_eq!(next, RefreshToken::derive(&RefreshKey::new(B), &sid, 1, &salt));
        assert_ne!(next, RefreshToken::derive(&RefreshKey::new(A), &sid, 1, &salt));
        assert!(next.is_authentic(&rotated, &salt));
    }

    #[test]
    fn a_session_refreshed_after_a_rotation_survives_the_next_one() {
        let sid = ulid::Ulid::generate().to_string();
        let salt = new_salt();
        // Generation 0 under A; A is rotated to B; the session refreshes once.
        let first = RefreshToken::derive(&RefreshKey::new(A), &sid, 0, &salt);
        let stored_hash = first.secret_hash();
        assert!(
            first.matches_hash(&stored_hash),
            "the current generation is checked by its stored hash, whatever key made it"
        );
        let second = RefreshToken::derive(&RefreshKey::with_previous(B, Some(A)), &sid, 1, &salt);
        let stored_hash = second.secret_hash();

        // Reuse of generation 0 while A is the previous secret: authentic, so the session is revoked.
        assert!(first.is_authentic(&RefreshKey::with_previous(B, Some(A)), &salt));

        // B is rotated to C, dropping A: generation 1 (made under B) is still the session's...
        let twice = RefreshKey::with_previous(C, Some(B));
        assert!(second.matches_hash(&stored_hash));
        assert!(second.is_authentic(&twice, &salt));
        // ...and generation 0 (made under A) no longer verifies: presenting it revokes nothing.
        assert!(!first.is_authentic(&twice, &salt));
        // The next refresh moves the session onto C.
        let third = RefreshToken::derive(&twice, &sid, 2, &salt);
        assert!(third.is_authentic(&RefreshKey::new(C), &salt));
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
