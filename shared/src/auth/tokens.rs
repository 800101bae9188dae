//! Access tokens: HS256 JWTs, 15 minutes, naming the user (`sub`) and the session (`sid`).

use std::time::SystemTime;

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

/// Keys and validation rules, built once per process from the secret.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl_secs: u64,
    /// Derives refresh-token secrets (a sub-key of the same secret; see `auth::refresh`).
    refresh: super::refresh::RefreshKey,
}

impl TokenKeys {
    pub fn new(secret: &[u8], ttl: std::time::Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        // Lambda clocks are NTP-synced; a few seconds cover the skew between containers.
        validation.leeway = 5;
        TokenKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl_secs: ttl.as_secs(),
            refresh: super::refresh::RefreshKey::new(secret),
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
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| ApiError::internal(format!("JWT encode: {e}")))
    }

    /// Checks signature, algorithm, issuer and expiry. Every failure is the same 401 to the client.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, ApiError> {
        jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| {
                tracing::debug!(error = %e, "access token rejected");
                ApiError::Unauthorized("The access token is invalid or has expired.".to_owned())
            })
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
