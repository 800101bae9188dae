//! Web Push (RFC 8030) requests: the subscription's endpoint checked, the payload encrypted as RFC 8291
//! `aes128gcm` (web-push-native, RustCrypto), and the headers a push service wants: `TTL`, `Topic` (so
//! a newer push for the same conversation replaces one still queued), `Urgency` and VAPID.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use super::vapid::VapidKey;

/// Longest endpoint accepted (browsers' are a few hundred characters).
pub const MAX_ENDPOINT_CHARS: usize = 2048;
/// How long a push service keeps a push for a device that is offline: a chat notification a day late
/// is noise.
pub const PUSH_TTL_SECS: u64 = 6 * 3600;

/// Which endpoints a deployment accepts (defined in `config`, which reads it).
pub use crate::config::PushEndpoints as Endpoints;

/// Checks an endpoint: an absolute `https` URL on a host name (not an address of a private network,
/// which would let anyone make the worker call into the deployment's own network), or, locally, a
/// loopback `http` URL.
pub fn check_endpoint(endpoint: &str, allowed: Endpoints) -> Result<http::Uri, String> {
    if endpoint.len() > MAX_ENDPOINT_CHARS {
        return Err(format!("must be at most {MAX_ENDPOINT_CHARS} characters"));
    }
    let uri: http::Uri = endpoint.parse().map_err(|_| "is not a URL".to_owned())?;
    let host = uri.host().ok_or("is not an absolute URL")?.to_ascii_lowercase();
    let loopback = host == "127.0.0.1" || host == "localhost" || host == "[::1]";
    match uri.scheme_str() {
        Some("http") if loopback && allowed == Endpoints::PublicAndLoopback => return Ok(uri),
        Some("https") if loopback && allowed == Endpoints::PublicAndLoopback => return Ok(uri),
        Some("https") => {}
        _ => return Err("must be an https URL".to_owned()),
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err("must not carry credentials".to_owned());
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<std::net::IpAddr>().is_ok() || !host.contains('.') || host.ends_with(".internal") || loopback {
        return Err("must be on a public host name, not an address or a local name".to_owned());
    }
    Ok(uri)
}

/// A browser's subscription keys, decoded and checked: `p256dh` a point on P-256, `auth` 16 bytes.
pub fn decode_keys(
    p256dh: &str,
    auth: &str,
) -> Result<(p256::PublicKey, web_push_native::Auth), (&'static str, String)> {
    let decode = |text: &str| {
        URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text.trim_end_matches('=')))
    };
    let point = decode(p256dh).map_err(|_| ("keys.p256dh", "must be base64url".to_owned()))?;
    let public = p256::PublicKey::from_sec1_bytes(&point)
        .ok()
        .filter(|_| point.len() == 65)
        .ok_or((
            "keys.p256dh",
            "must be an uncompressed P-256 public key (65 bytes)".to_owned(),
        ))?;
    let secret = decode(auth).map_err(|_| ("keys.auth", "must be base64url".to_owned()))?;
    if secret.len() != 16 {
        return Err(("keys.auth", "must be 16 bytes".to_owned()));
    }
    Ok((public, web_push_native::Auth::clone_from_slice(&secret)))
}

/// What one push to one browser is.
pub struct PushRequest<'a> {
    pub endpoint: &'a http::Uri,
    pub p256dh: &'a str,
    pub auth: &'a str,
    pub payload: &'a [u8],
    /// RFC 8030 `Topic` (at most 32 URL-safe base64 characters): a conversation id.
    pub topic: &'a str,
    pub vapid: &'a VapidKey,
    pub contact: &'a str,
    pub now_secs: u64,
}

/// A push's headers, by name.
pub type Headers = Vec<(&'static str, String)>;

/// The encrypted body and the headers of a push.
pub fn build(push: &PushRequest<'_>) -> Result<(Vec<u8>, Headers), String> {
    let (public, auth) = decode_keys(push.p256dh, push.auth).map_err(|(_, problem)| problem)?;
    let body = web_push_native::encrypt(push.payload.to_vec(), &public, &auth).map_err(|e| e.to_string())?;
    let mut headers = vec![
        ("TTL", PUSH_TTL_SECS.to_string()),
        ("Content-Encoding", "aes128gcm".to_owned()),
        ("Content-Type", "application/octet-stream".to_owned()),
        ("Urgency", "high".to_owned()),
        (
            "Authorization",
            push.vapid.authorization(push.endpoint, push.contact, push.now_secs)?,
        ),
    ];
    if !push.topic.is_empty()
        && push.topic.len() <= 32
        && push
            .topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        headers.push(("Topic", push.topic.to_owned()));
    }
    Ok((body, headers))
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::elliptic_curve::sec1::ToEncodedPoint;

    #[test]
    fn endpoints_deployed_are_https_on_public_names() {
        let ok = |e: &str| check_endpoint(e, Endpoints::Public).is_ok();
        assert!(ok("https://fcm.googleapis.com/fcm/send/abc"));
        assert!(ok("https://updates.push.services.mozilla.com/wpush/v2/x"));
        assert!(!ok("http://fcm.googleapis.com/fcm/send/abc"));
        assert!(!ok("https://127.0.0.1/x"));
        assert!(!ok("https://10.0.0.5/x"));
        assert!(!ok("https://[::1]/x"));
        assert!(!ok("https://localhost/x"));
        assert!(!ok("https://metadata/x"));
        assert!(!ok("https://user:pw@push.example.com/x"));
        assert!(!ok("not a url"));
        assert!(!ok("/relative"));
        assert!(!ok(&format!("https://push.example.com/{}", "a".repeat(3000))));
        let local = |e: &str| check_endpoint(e, Endpoints::PublicAndLoopback).is_ok();
        assert!(local("http://127.0.0.1:9000/push/1"));
        assert!(local("https://fcm.googleapis.com/fcm/send/abc"));
        assert!(!local("http://10.0.0.5/x"));
        assert!(!local("ftp://127.0.0.1/x"));
    }

    #[test]
    fn a_push_decrypts_with_the_browsers_private_key() {
        let browser = p256::SecretKey::from_slice(&[7u8; 32]).unwrap();
        let p256dh = URL_SAFE_NO_PAD.encode(browser.public_key().as_affine().to_encoded_point(false).as_bytes());
        let auth = URL_SAFE_NO_PAD.encode([9u8; 16]);
        let vapid = VapidKey::derive(b"secret-a-secret-a-secret-a-secret-a");
        let endpoint: http::Uri = "https://push.example.com/x".parse().unwrap();
        let (body, headers) = build(&PushRequest {
            endpoint: &endpoint,
            p256dh: &p256dh,
            auth: &auth,
            payload: br#"{"type":"message"}"#,
            topic: "01JABCDEFGHJKMNPQRSTVWXYZ0",
            vapid: &vapid,
            contact: "mailto:ops@example.com",
            now_secs: 1,
        })
        .unwrap();
        let plain =
            web_push_native::decrypt(body, &browser, &web_push_native::Auth::clone_from_slice(&[9u8; 16])).unwrap();
        assert_eq!(plain, br#"{"type":"message"}"#);
        let names: Vec<&str> = headers.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "TTL",
                "Content-Encoding",
                "Content-Type",
                "Urgency",
                "Authorization",
                "Topic"
            ]
        );
    }

    #[test]
    fn bad_keys_are_named() {
        let auth = URL_SAFE_NO_PAD.encode([9u8; 16]);
        assert_eq!(decode_keys("!!", &auth).unwrap_err().0, "keys.p256dh");
        assert_eq!(
            decode_keys(&URL_SAFE_NO_PAD.encode([4u8; 65]), &auth).unwrap_err().0,
            "keys.p256dh"
        );
        let browser = p256::SecretKey::from_slice(&[7u8; 32]).unwrap();
        let p256dh = URL_SAFE_NO_PAD.encode(browser.public_key().as_affine().to_encoded_point(false).as_bytes());
        assert_eq!(decode_keys(&p256dh, "abc").unwrap_err().0, "keys.auth");
        assert!(decode_keys(&p256dh, &auth).is_ok());
    }
}
