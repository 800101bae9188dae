//! Timestamps as the API writes them (docs/API-GUIDE.md "Conventions"): RFC 3339 UTC with milliseconds.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub fn now() -> SystemTime {
    SystemTime::now()
}

/// `2026-11-23T08:00:00.000Z`
pub fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

/// Whole seconds since the epoch: the form DynamoDB's TTL attribute needs.
pub fn epoch_secs(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs()
}

/// Milliseconds since the epoch: the stamps of `GET /sync`'s keys and tokens.
pub fn epoch_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_millis() as u64
}

pub fn from_epoch_secs(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_milliseconds_and_z() {
        let at = UNIX_EPOCH + Duration::from_millis(1_795_420_800_123);
        assert_eq!(rfc3339(at), "2026-11-23T08:00:00.123Z");
        assert_eq!(epoch_secs(at), 1_795_420_800);
    }
}
