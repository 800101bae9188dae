//! VAPID (RFC 8292): the server's P-256 key, made from the VAPID secret, and the `Authorization`
//! header a Web Push request carries.
//!
//! The secret (Secrets Manager `VapidSigningSecret`, `{"current", "previous"}` like the token secret)
//! holds random text, not a key: CloudFormation can generate random text at the first deployment but not
//! a P-256 key, and a key derived from 64 random characters is as good as a generated one. The key is
//! `SHA-256("parley-vapid-v1" || counter || secret)` for the first counter that gives a valid scalar
//! (the first one, but for a chance of about 2^-32). Rotating the secret rotates the key; pushes to
//! subscriptions made with the previous key are still signed with it (each subscription records the
//! public key it was made with), so nobody loses notifications until their client subscribes again.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::EncodePrivateKey;
use sha2::{Digest, Sha256};

/// How long a VAPID JWT is valid (RFC 8292 allows at most 24 hours).
pub const JWT_LIFETIME_SECS: u64 = 12 * 3600;

/// One VAPID key pair.
pub struct VapidKey {
    signing: jsonwebtoken::EncodingKey,
    /// base64url (no padding) of the uncompressed public point: the `k=` of the header and what a
    /// browser's `applicationServerKey` takes.
    public_key: String,
}

impl std::fmt::Debug for VapidKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VapidKey")
            .field("public_key", &self.public_key)
            .finish_non_exhaustive()
    }
}

impl VapidKey {
    /// The key made from one secret value (see the module documentation).
    pub fn derive(secret: &[u8]) -> VapidKey {
        let scalar = (0u32..)
            .find_map(|counter| {
                let digest = Sha256::new()
                    .chain_update(b"parley-vapid-v1")
                    .chain_update(counter.to_be_bytes())
                    .chain_update(secret)
                    .finalize();
                p256::SecretKey::from_slice(&digest).ok()
            })
            .expect("some counter gives a valid P-256 scalar");
        let public = scalar.public_key().as_affine().to_encoded_point(false);
        let der = scalar.to_pkcs8_der().expect("a valid P-256 scalar encodes as PKCS#8");
        VapidKey {
            signing: jsonwebtoken::EncodingKey::from_ec_der(der.as_bytes()),
            public_key: URL_SAFE_NO_PAD.encode(public.as_bytes()),
        }
    }

    pub fn public_key(&self) -> &str {
        &self.public_key
    }

    /// `vapid t=<JWT>, k=<public key>` for a push to `endpoint`: ES256, `aud` the endpoint's origin,
    /// `exp` [`JWT_LIFETIME_SECS`] from `now_secs`, `sub` the contact (a `mailto:` or `https:` URL).
    pub fn authorization(&self, endpoint: &http::Uri, subject: &str, now_secs: u64) -> Result<String, String> {
        #[derive(serde::Serialize)]
        struct Claims<'a> {
            aud: String,
            exp: u64,
            sub: &'a str,
        }
        let claims = Claims {
            aud: origin(endpoint).ok_or("the endpoint has no scheme or host")?,
            exp: now_secs + JWT_LIFETIME_SECS,
            sub: subject,
        };
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        let token = jsonwebtoken::encode(&header, &claims, &self.signing).map_err(|e| e.to_string())?;
        Ok(format!("vapid t={token}, k={}", self.public_key))
    }
}

/// The ASCII serialisation of an endpoint's origin (RFC 6454): scheme, host, and the port unless it is
/// the scheme's default. What a push service compares a VAPID JWT's `aud` with.
pub fn origin(endpoint: &http::Uri) -> Option<String> {
    let scheme = endpoint.scheme_str()?.to_ascii_lowercase();
    let host = endpoint.host()?.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => Some(443),
        "http" => Some(80),
        _ => None,
    };
    Some(match endpoint.port_u16() {
        Some(port) if Some(port) != default_port => format!("{scheme}://{host}:{port}"),
        _ => format!("{scheme}://{host}"),
    })
}

/// The keys of the current secret and of the one before its last rotation.
#[derive(Debug)]
pub struct VapidKeys {
    pub current: VapidKey,
    pub previous: Option<VapidKey>,
}

impl VapidKeys {
    pub fn new(current: &[u8], previous: Option<&[u8]>) -> Self {
        VapidKeys {
            current: VapidKey::derive(current),
            previous: previous.map(VapidKey::derive),
        }
    }

    /// The key a subscription was made with (its recorded public key), if it is still one of ours;
    /// the current key for a subscription that recorded none.
    pub fn for_subscription(&self, public_key: Option<&str>) -> Option<&VapidKey> {
        match public_key {
            None => Some(&self.current),
            Some(key) if key == self.current.public_key => Some(&self.current),
            Some(key) => self.previous.as_ref().filter(|p| p.public_key == key),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_stable_per_secret_and_differs_between_secrets() {
        let a = VapidKey::derive(b"secret-a-secret-a-secret-a-secret-a");
        let again = VapidKey::derive(b"secret-a-secret-a-secret-a-secret-a");
        let b = VapidKey::derive(b"secret-b-secret-b-secret-b-secret-b");
        assert_eq!(a.public_key(), again.public_key());
        assert_ne!(a.public_key(), b.public_key());
        let point = URL_SAFE_NO_PAD.decode(a.public_key()).unwrap();
        assert_eq!(point.len(), 65);
        assert_eq!(point[0], 4, "uncompressed");
        assert_eq!(a.public_key().len(), 87);
    }

    #[test]
    fn the_jwt_verifies_with_the_public_key_and_names_the_origin() {
        let key = VapidKey::derive(b"secret-a-secret-a-secret-a-secret-a");
        let endpoint: http::Uri = "http://127.0.0.1:4711/push/abc".parse().unwrap();
        let header = key
            .authorization(&endpoint, "mailto:ops@example.com", 1_000_000)
            .unwrap();
        let (token, k) = header
            .strip_prefix("vapid t=")
            .and_then(|rest| rest.split_once(", k="))
            .unwrap();
        assert_eq!(k, key.public_key());
        let point = URL_SAFE_NO_PAD.decode(k).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.set_audience(&["http://127.0.0.1:4711"]);
        validation.validate_exp = false;
        let claims = jsonwebtoken::decode::<serde_json::Value>(
            token,
            &jsonwebtoken::DecodingKey::from_ec_der(&point),
            &validation,
        )
        .unwrap()
        .claims;
        assert_eq!(claims["sub"], "mailto:ops@example.com");
        assert_eq!(claims["exp"], 1_000_000 + JWT_LIFETIME_SECS);
        let other = VapidKey::derive(b"secret-b-secret-b-secret-b-secret-b");
        let wrong = URL_SAFE_NO_PAD.decode(other.public_key()).unwrap();
        assert!(jsonwebtoken::decode::<serde_json::Value>(
            token,
            &jsonwebtoken::DecodingKey::from_ec_der(&wrong),
            &validation
        )
        .is_err());
    }

    #[test]
    fn origins_keep_only_non_default_ports() {
        let o = |u: &str| origin(&u.parse().unwrap()).unwrap();
        assert_eq!(o("https://fcm.googleapis.com/fcm/send/x"), "https://fcm.googleapis.com");
        assert_eq!(o("https://push.example:443/x"), "https://push.example");
        assert_eq!(o("https://push.example:8443/x"), "https://push.example:8443");
        assert_eq!(o("http://127.0.0.1:9000/x"), "http://127.0.0.1:9000");
    }

    #[test]
    fn a_subscription_is_signed_with_the_key_it_was_made_with() {
        let keys = VapidKeys::new(
            b"secret-b-secret-b-secret-b-secret-b",
            Some(b"secret-a-secret-a-secret-a-secret-a"),
        );
        let old = VapidKey::derive(b"secret-a-secret-a-secret-a-secret-a");
        assert_eq!(
            keys.for_subscription(Some(old.public_key())).unwrap().public_key(),
            old.public_key()
        );
        assert_eq!(
            keys.for_subscription(None).unwrap().public_key(),
            keys.current.public_key()
        );
        assert!(keys.for_subscription(Some("someone-else")).is_none());
    }
}
