//! Decoding URLs as API Gateway does, for both APIs: percent-encoded path segments and query strings.

use serde_json::{Map, Value};

/// Percent-decodes `text` (an invalid escape is kept as it is; bytes that are not UTF-8 become U+FFFD).
pub fn percent_decode(text: &str) -> String {
    fn hex(byte: u8) -> Option<u8> {
        (byte as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(high), Some(low)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(high * 16 + low);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Decodes a query string the way API Gateway fills `queryStringParameters`: `+` is a space, repeated
/// keys are joined with commas.
pub fn query_parameters(raw: &str) -> Map<String, Value> {
    let mut params: Map<String, Value> = Map::new();
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_decode(&key.replace('+', " "));
        let value = percent_decode(&value.replace('+', " "));
        let joined = match params.get(&key).and_then(Value::as_str) {
            Some(existing) => format!("{existing},{value}"),
            None => value,
        };
        params.insert(key, Value::String(joined));
    }
    params
}
