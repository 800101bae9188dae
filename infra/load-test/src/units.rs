//! Durations in the report's JSON: serde `serialize_with` helpers, seconds or milliseconds as numbers.

use std::time::Duration;

use serde::Serializer;

/// Serialises a duration as seconds (for serde's `serialize_with`).
pub fn secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Serialises a duration as milliseconds.
pub fn millis<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}
