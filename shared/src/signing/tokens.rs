//! Access tokens: HS256 JWTs, 15 minutes, naming the user (`sub`) and the session (`sid`).
//!
//! The token secret can be rotated without signing anybody out: tokens are always signed with the
//! current secret, and the previous one (`TOKEN_SECRET_PREVIOUS`) still verifies. Each token's header
//! names its key (`kid`: 8 hex characters of an HMAC of a fixed label under the secret, so it says
//! nothing about the secret), and verification checks the signature with that key only; a `kid` that
//! is neither key's is refused without a check. Tokens from before `kid`s (none is older than one
//! access-token lifetime after the deploy that added them) are checked against each key in turn.

use std::time::SystemTime;

use hmac::{KeyInit, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::time::epoch_secs;

const ISSUER: &str = "parley";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub sub: String,
    pub sid: String,
    pub iss: String,
    pub iat: u64,
    pub exp: u64,
}

/// A key that verifies access tokens, and the `kid` tokens signed with it carry.
struct VerifyingKey {
    kid: String,
    decoding: DecodingKey,
}

/// The `kid` of `secret`: public, stable for the secret, and no help in finding it.
fn key_id(secret: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(b"parley access-token key id v1");
    hex::encode(&mac.finalize().into_bytes()[..4])
}

/// Keys and validation rules, built once per process from the secret (and the previous one).
pub struct TokenKeys {
    encoding: EncodingKey,
    /// The current key first, then the previous one.
    verifying: Vec<VerifyingKey>,
    validation: Validation,
    ttl_secs: u64,
    /// Derives refresh-token secrets (a sub-key of the same secret; see `auth::refresh`).
    refresh: super::refresh::RefreshKey,
}

impl TokenKeys {
    /// The keys of a deployment with one token secret.
    pub fn new(secret: &[u8], ttl: std::time::Duration) -> Self {
        Self::with_previous(secret, None, ttl)
    }

    /// The keys of a deployment whose secret was rotated: tokens are signed with `secret`, and those
    /// signed with `previous` are still accepted.
    pub fn with_previous(secret: &[u8], previous: Option<&[u8]>, ttl: std::time::Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        // Lambda clocks are NTP-synced; a few seconds cover the skew between containers.
        validation.leeway = 5;
        let verifying = std::iter::once(secret)
            .chain(previous)
            .map(|secret| VerifyingKey {
                kid: key_id(secret),
                decoding: DecodingKey::from_secret(secret),
            })
            .collect();
        TokenKeys {
            encoding: EncodingKey::from_secret(secret),
            verifying,
            validation,
            ttl_secs: ttl.as_secs(),
            refresh: super::refresh::RefreshKey::with_previous(secret, previous),
        }
    }

    /// The key refresh-token secrets are derived with.
    pub fn refresh_key(&self) -> &super::refresh::RefreshKey {
        &self.refresh
    }

    /// Seconds an access token lives: the `expiresIn` of the auth responses.
    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }

    pub fn issue(&self, user_id: &str, session_id: &str, now: SystemTime) -> Result<String, ApiError> {
        let iat = epoch_secs(now);
        let claims = AccessClaims {
            sub: user_id.to_owned(),
            sid: session_id.to_owned(),
            iss: ISSUER.to_owned(),
            iat,
            exp: iat + self.ttl_secs,
        };
        let header = Header {
            kid: Some(self.verifying[0].kid.clone()),
            ..Header::new(Algorithm::HS256)
        };
        jsonwebtoken::encode(&header, &claims, &self.encoding)
            .map_err(|e| ApiError::internal(format!("JWT encode: {e}")))
    }

    /// Checks signature, algorithm, issuer and expiry, with the key the token's `kid` names (each key
    /// in turn for a token without one). Every failure is the same 401 to the client.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, ApiError> {
        let rejected = |reason: &dyn std::fmt::Display| {
            tracing::debug!(error = %reason, "access token rejected");
            ApiError::Unauthorized("The access token is invalid or has expired.".to_owned())
        };
        let header = jsonwebtoken::decode_header(token).map_err(|e| rejected(&e))?;
        let mut candidates = self
            .verifying
            .iter()
            .filter(|key| header.kid.as_ref().is_none_or(|kid| *kid == key.kid))
            .peekable();
        if candidates.peek().is_none() {
            return Err(rejected(&"signed with a key this deployment no longer has"));
        }
        let mut last_error = None;
        for key in candidates {
            match jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &self.validation) {
                Ok(data) => return Ok(data.claims),
                Err(e) => last_error = Some(e),
            }
        }
        Err(rejected(&last_error.expect("at least one key was tried")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn round_trip() {
        let keys = TokenKeys::new(SECRET, Duration::from_secs(900));
        let token = keys.issue("U1", "S1", SystemTime::now()).unwrap();
        let claims = keys.verify(&token).unwrap();
        assert_eq!((claims.sub.as_str(), claims.sid.as_str()), ("U1", "S1"));
        assert_eq!(claims.exp - claims.iat, 900);
    }

    const A: &[u8] = b"secret-a-secret-a-secret-a-secret-a";
    const B: &[u8] = b"secret-b-secret-b-secret-b-secret-b";
    const C: &[u8] = b"secret-c-secret-c-secret-c-secret-c";
    const TTL: Duration = Duration::from_secs(900);

    fn header_of(token: &str) -> serde_json::Value {
        let encoded = token.split('.').next().unwrap();
        let bytes = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, encoded).unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    fn encode_part(value: &serde_json::Value) -> String {
        base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, value.to_string())
    }

    #[test]
    fn tokens_of_the_previous_secret_survive_a_rotation() {
        let before = TokenKeys::new(A, TTL).issue("U1", "S1", SystemTime::now()).unwrap();
        let rotated = TokenKeys::with_previous(B, Some(A), TTL);
        let claims = rotated.verify(&before).unwrap();
        assert_eq!((claims.sub.as_str(), claims.sid.as_str()), ("U1", "S1"));

        let after = rotated.issue("U1", "S1", SystemTime::now()).unwrap();
        assert!(
            TokenKeys::new(B, TTL).verify(&after).is_ok(),
            "signed with the current secret"
        );
        assert_eq!(TokenKeys::new(A, TTL).verify(&after).unwrap_err().status(), 401);
        assert_eq!(header_of(&after)["kid"], key_id(B));
        assert_eq!(header_of(&before)["kid"], key_id(A));

        let unrelated = TokenKeys::new(C, TTL).issue("U1", "S1", SystemTime::now()).unwrap();
        assert_eq!(rotated.verify(&unrelated).unwrap_err().status(), 401);
        assert_eq!(
            TokenKeys::with_previous(C, Some(B), TTL)
                .verify(&before)
                .unwrap_err()
                .status(),
            401,
            "two rotations later"
        );
        let expired = TokenKeys::new(A, TTL)
            .issue("U1", "S1", SystemTime::now() - Duration::from_secs(3600))
            .unwrap();
        assert_eq!(
            rotated.verify(&expired).unwrap_err().status(),
            401,
            "expiry still counts"
        );
    }

    #[test]
    fn key_ids_name_keys_without_revealing_them() {
        assert_eq!(key_id(A).len(), 8);
        assert_ne!(key_id(A), key_id(B));
        assert_eq!(key_id(A), key_id(A));
        assert!(!hex::encode(A).contains(&key_id(A)));
    }

    #[test]
    fn a_kid_picks_the_key_and_never_replaces_the_signature() {
        let rotated = TokenKeys::with_previous(B, Some(A), TTL);
        let now = epoch_secs(SystemTime::now());
        let claims = serde_json::json!({"sub": "U1", "sid": "S1", "iss": "parley", "iat": now, "exp": now + 900});

        // Signed with A but claiming to be B's: checked with B only, so refused.
        let mislabelled = jsonwebtoken::encode(
            &Header {
                kid: Some(key_id(B)),
                ..Header::new(Algorithm::HS256)
            },
            &claims,
            &EncodingKey::from_secret(A),
        )
        .unwrap();
        assert_eq!(rotated.verify(&mislabelled).unwrap_err().status(), 401);

        // From before kids: each key is tried.
        let unlabelled =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(A)).unwrap();
        assert!(rotated.verify(&unlabelled).is_ok());
        assert_eq!(
            TokenKeys::with_previous(C, Some(B), TTL)
                .verify(&unlabelled)
                .unwrap_err()
                .status(),
            401
        );

        // Unsigned, or signed with another algorithm, whatever the kid says.
        for kid in [Some(key_id(B)), Some(key_id(A)), None] {
            let header = serde_json::json!({"alg": "none", "typ": "JWT", "kid": kid});
            let unsigned = format!("{}.{}.", encode_part(&header), encode_part(&claims));
            assert_eq!(rotated.verify(&unsigned).unwrap_err().status(), 401, "{kid:?}");
            let hs512 = jsonwebtoken::encode(
                &Header {
                    kid: kid.clone(),
                    ..Header::new(Algorithm::HS512)
                },
                &claims,
                &EncodingKey::from_secret(B),
            )
            .unwrap();
            assert_eq!(rotated.verify(&hs512).unwrap_err().status(), 401, "{kid:?}");
        }
    }

    #[test]
    fn rejects_expired_tampered_and_foreign_tokens() {
        let keys = TokenKeys::new(SECRET, Duration::from_secs(900));
        let old = keys
            .issue("U1", "S1", SystemTime::now() - Duration::from_secs(3600))
            .unwrap();
        assert_eq!(keys.verify(&old).unwrap_err().status(), 401);

        let token = keys.issue("U1", "S1", SystemTime::now()).unwrap();
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let forged_claims = r#"{"sub":"U2","sid":"S1","iss":"parley","iat":1,"exp":99999999999}"#;
        parts[1] = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, forged_claims);
        assert_eq!(keys.verify(&parts.join(".")).unwrap_err().status(), 401);

        let other = TokenKeys::new(b"another-secret-another-secret-xx", Duration::from_secs(900));
        assert_eq!(
            keys.verify(&other.issue("U1", "S1", SystemTime::now()).unwrap())
                .unwrap_err()
                .status(),
            401
        );
        assert_eq!(keys.verify("garbage").unwrap_err().status(), 401);
    }
}
