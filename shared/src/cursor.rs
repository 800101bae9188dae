//! Opaque pagination cursors: the position, sealed with an HMAC over the list it belongs to, so a
//! tampered cursor or one from another list is refused rather than followed.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{KeyInit, Mac};
use sha2::Sha256;

use crate::error::ApiError;

type HmacSha256 = hmac::Hmac<Sha256>;

pub struct Cursors {
    key: Vec<u8>,
    /// The key of the token secret before the last rotation: cursors it sealed still open.
    previous: Option<Vec<u8>>,
}

const TAG_BYTES: usize = 16;

fn cursor_key(secret: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(b"parley cursor key v1");
    mac.finalize().into_bytes().to_vec()
}

fn mac(key: &[u8], scope: &str, position: &str) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(scope.as_bytes());
    mac.update(&[0]);
    mac.update(position.as_bytes());
    mac
}

impl Cursors {
    /// Derives the cursor key from the token secret, so the two never coincide.
    pub fn new(secret: &[u8]) -> Self {
        Self::with_previous(secret, None)
    }

    /// After a rotation of the token secret: seals with `secret`'s key, and opens cursors sealed with
    /// it or with `previous`'s.
    pub fn with_previous(secret: &[u8], previous: Option<&[u8]>) -> Self {
        Cursors {
            key: cursor_key(secret),
            previous: previous.map(cursor_key),
        }
    }

    fn tag(&self, scope: &str, position: &str) -> Vec<u8> {
        mac(&self.key, scope, position).finalize().into_bytes()[..TAG_BYTES].to_vec()
    }

    /// A cursor for `position` in the list named by `scope`.
    pub fn seal(&self, scope: &str, position: &str) -> String {
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(position),
            URL_SAFE_NO_PAD.encode(self.tag(scope, position))
        )
    }

    /// The position of a cursor sealed for `scope`; `validation_failed` on `field` otherwise.
    pub fn open(&self, scope: &str, cursor: &str, field: &str) -> Result<String, ApiError> {
        let invalid = || ApiError::invalid(field, "is not a cursor this list gave out");
        let (position, tag) = cursor.split_once('.').ok_or_else(invalid)?;
        let position =
            String::from_utf8(URL_SAFE_NO_PAD.decode(position).map_err(|_| invalid())?).map_err(|_| invalid())?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| invalid())?;
        if tag.len() != TAG_BYTES {
            return Err(invalid());
        }
        // Each check is constant time; the previous key is tried only when the current one fails.
        let sealed_with = |key: &[u8]| mac(key, scope, position.as_str()).verify_truncated_left(&tag).is_ok();
        if sealed_with(&self.key) || self.previous.as_deref().is_some_and(sealed_with) {
            Ok(position)
        } else {
            Err(invalid())
        }
    }
}

/// The `limit` of every list (docs/API-GUIDE.md "Pagination"): 50 when absent, at most 100 (larger is
/// clamped), at least 1.
pub fn page_limit(raw: Option<&str>) -> Result<usize, ApiError> {
    let Some(raw) = raw else { return Ok(50) };
    let value: i64 = raw
        .trim()
        .parse()
        .map_err(|_| ApiError::invalid("limit", "must be a whole number from 1 to 100"))?;
    if value < 1 {
        return Err(ApiError::invalid("limit", "must be at least 1"));
    }
    Ok(value.min(100) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_open_only_in_their_scope() {
        let cursors = Cursors::new(b"0123456789abcdef0123456789abcdef");
        let cursor = cursors.seal("CONV#A", "01ABC");
        assert_eq!(cursors.open("CONV#A", &cursor, "cursor").unwrap(), "01ABC");
        assert!(
            cursors.open("CONV#B", &cursor, "cursor").is_err(),
            "another list's cursor"
        );
        let mut tampered = cursor.clone();
        tampered.replace_range(0..1, if cursor.starts_with('M') { "N" } else { "M" });
        assert!(cursors.open("CONV#A", &tampered, "cursor").is_err());
        assert!(cursors.open("CONV#A", "garbage", "cursor").is_err());
        assert!(cursors.open("CONV#A", "a.b", "cursor").is_err());
        let other = Cursors::new(b"another-secret-another-secret-xx");
        assert!(
            other.open("CONV#A", &cursor, "cursor").is_err(),
            "another deployment's cursor"
        );
    }

    #[test]
    fn cursors_of_the_previous_secret_still_open() {
        let a: &[u8] = b"secret-a-secret-a-secret-a-secret-a";
        let b: &[u8] = b"secret-b-secret-b-secret-b-secret-b";
        let c: &[u8] = b"secret-c-secret-c-secret-c-secret-c";
        let before = Cursors::new(a).seal("CONV#A", "01ABC");
        let rotated = Cursors::with_previous(b, Some(a));
        assert_eq!(rotated.open("CONV#A", &before, "cursor").unwrap(), "01ABC");
        assert!(rotated.open("CONV#B", &before, "cursor").is_err(), "still scoped");

        let after = rotated.seal("CONV#A", "01ABC");
        assert_eq!(
            after,
            Cursors::new(b).seal("CONV#A", "01ABC"),
            "sealed with the current key"
        );
        assert_ne!(after, before);
        assert_eq!(Cursors::new(b).open("CONV#A", &after, "cursor").unwrap(), "01ABC");

        let unrelated = Cursors::new(c).seal("CONV#A", "01ABC");
        assert!(
            rotated.open("CONV#A", &unrelated, "cursor").is_err(),
            "an unrelated secret"
        );
        assert!(
            Cursors::with_previous(c, Some(b))
                .open("CONV#A", &before, "cursor")
                .is_err(),
            "gone once its secret is two rotations old"
        );
        let (position, tag) = before.split_once('.').unwrap();
        let tag = URL_SAFE_NO_PAD.decode(tag).unwrap();
        let short = format!("{position}.{}", URL_SAFE_NO_PAD.encode(&tag[..12]));
        assert!(rotated.open("CONV#A", &short, "cursor").is_err(), "a truncated tag");
    }

    #[test]
    fn limits() {
        assert_eq!(page_limit(None).unwrap(), 50);
        assert_eq!(page_limit(Some("7")).unwrap(), 7);
        assert_eq!(page_limit(Some("1000")).unwrap(), 100);
        assert!(page_limit(Some("0")).is_err());
        assert!(page_limit(Some("-3")).is_err());
        assert!(page_limit(Some("abc")).is_err());
        assert!(page_limit(Some("")).is_err());
    }
}
