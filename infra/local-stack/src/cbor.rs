//! Just enough CBOR (RFC 8949) for the Smithy RPC v2 CBOR protocol: a value tree, decoded from a whole
//! request body and encoded into a response body.
//!
//! A tree rather than typed (de)serializers because the gateway reads a handful of fields of a few
//! operations and must skip everything else, including members the SDK adds in later versions.

use minicbor::data::{Tag, Type};
use minicbor::{Decoder, Encoder};

/// CBOR's epoch-seconds timestamp tag, which Smithy uses for every timestamp.
pub const EPOCH_TAG: u64 = 1;

/// Nested arrays and maps deeper than this are refused, so a hostile body cannot exhaust the stack.
const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Text(String),
    Bytes(Vec<u8>),
    Array(Vec<Value>),
    /// In the order received: Smithy maps have string keys, but CBOR allows any.
    Map(Vec<(Value, Value)>),
    Tag(u64, Box<Value>),
}

impl Value {
    /// A map from string keys, for building responses.
    pub fn map<K: Into<String>>(entries: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::Map(entries.into_iter().map(|(k, v)| (Value::Text(k.into()), v)).collect())
    }

    pub fn text(text: impl Into<String>) -> Value {
        Value::Text(text.into())
    }

    /// A Smithy timestamp: tag 1 around epoch seconds (an integer when whole, as most services send).
    pub fn timestamp_millis(millis: i64) -> Value {
        let seconds = if millis % 1000 == 0 {
            Value::Int(i128::from(millis / 1000))
        } else {
            Value::Float(millis as f64 / 1000.0)
        };
        Value::Tag(EPOCH_TAG, Box::new(seconds))
    }

    /// The member `key` of a map with string keys.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| matches!(k, Value::Text(t) if t == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(text) => Some(text),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(n) => i64::try_from(*n).ok(),
            Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(*f as i64),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(n) => Some(*n as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    /// A Smithy timestamp in epoch milliseconds. A bare number is taken too: some hand-written
    /// clients forget the tag, and refusing them would teach nothing about CloudWatch.
    pub fn as_timestamp_millis(&self) -> Option<i64> {
        let seconds = match self {
            Value::Tag(EPOCH_TAG, inner) => inner.as_f64()?,
            Value::Int(_) | Value::Float(_) => self.as_f64()?,
            _ => return None,
        };
        let millis = (seconds * 1000.0).floor();
        (millis.is_finite() && millis.abs() < 1.0e16).then_some(millis as i64)
    }
}

/// Decodes exactly one data item that fills `bytes`.
pub fn decode(bytes: &[u8]) -> Result<Value, String> {
    let mut decoder = Decoder::new(bytes);
    let value = decode_item(&mut decoder, 0)?;
    if decoder.position() != bytes.len() {
        return Err(format!(
            "{} bytes after the CBOR data item",
            bytes.len() - decoder.position()
        ));
    }
    Ok(value)
}

fn decode_item(decoder: &mut Decoder<'_>, depth: usize) -> Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err("CBOR nested too deeply".to_owned());
    }
    let at = decoder.position();
    let fail = |e: minicbor::decode::Error| format!("invalid CBOR at byte {at}: {e}");
    let datatype = decoder.datatype().map_err(fail)?;
    Ok(match datatype {
        Type::Bool => Value::Bool(decoder.bool().map_err(fail)?),
        Type::Null => {
            decoder.null().map_err(fail)?;
            Value::Null
        }
        // Smithy never sends `undefined`; treating it as null keeps "absent" the only meaning.
        Type::Undefined => {
            decoder.undefined().map_err(fail)?;
            Value::Null
        }
        Type::U8 | Type::U16 | Type::U32 | Type::U64 | Type::I8 | Type::I16 | Type::I32 | Type::I64 | Type::Int => {
            Value::Int(i128::from(decoder.int().map_err(fail)?))
        }
        Type::F16 | Type::F32 | Type::F64 => Value::Float(decoder.f64().map_err(fail)?),
        Type::Simple => {
            decoder.simple().map_err(fail)?;
            Value::Null
        }
        Type::Bytes | Type::BytesIndef => {
            let mut bytes = Vec::new();
            for chunk in decoder.bytes_iter().map_err(fail)? {
                bytes.extend_from_slice(chunk.map_err(fail)?);
            }
            Value::Bytes(bytes)
        }
        Type::String | Type::StringIndef => {
            let mut text = String::new();
            for chunk in decoder.str_iter().map_err(fail)? {
                text.push_str(chunk.map_err(fail)?);
            }
            Value::Text(text)
        }
        Type::Array | Type::ArrayIndef => {
            let mut items = Vec::new();
            match decoder.array().map_err(fail)? {
                Some(n) => {
                    for _ in 0..n {
                        items.push(decode_item(decoder, depth + 1)?);
                    }
                }
                None => {
                    while !at_break(decoder)? {
                        items.push(decode_item(decoder, depth + 1)?);
                    }
                }
            }
            Value::Array(items)
        }
        Type::Map | Type::MapIndef => {
            let mut entries = Vec::new();
            match decoder.map().map_err(fail)? {
                Some(n) => {
                    for _ in 0..n {
                        let key = decode_item(decoder, depth + 1)?;
                        entries.push((key, decode_item(decoder, depth + 1)?));
                    }
                }
                None => {
                    while !at_break(decoder)? {
                        let key = decode_item(decoder, depth + 1)?;
                        entries.push((key, decode_item(decoder, depth + 1)?));
                    }
                }
            }
            Value::Map(entries)
        }
        Type::Tag => {
            let tag = decoder.tag().map_err(fail)?;
            Value::Tag(tag.as_u64(), Box::new(decode_item(decoder, depth + 1)?))
        }
        Type::Break => return Err(format!("invalid CBOR at byte {at}: unexpected break")),
        Type::Unknown(b) => return Err(format!("invalid CBOR at byte {at}: unknown initial byte {b:#04x}")),
    })
}

/// Consumes the break that ends an indefinite-length array or map, if it is next.
fn at_break(decoder: &mut Decoder<'_>) -> Result<bool, String> {
    let at = decoder.position();
    match decoder.datatype() {
        Ok(Type::Break) => {
            decoder.set_position(at + 1);
            Ok(true)
        }
        Ok(_) => Ok(false),
        Err(e) => Err(format!("invalid CBOR at byte {at}: {e}")),
    }
}

pub fn encode(value: &Value) -> Vec<u8> {
    let mut encoder = Encoder::new(Vec::new());
    encode_item(&mut encoder, value);
    encoder.into_writer()
}

fn encode_item(encoder: &mut Encoder<Vec<u8>>, value: &Value) {
    // Writing into a Vec cannot fail (its error type is Infallible), so the results are dropped.
    match value {
        Value::Null => {
            let _ = encoder.null();
        }
        Value::Bool(b) => {
            let _ = encoder.bool(*b);
        }
        Value::Int(n) => match minicbor::data::Int::try_from(*n) {
            Ok(n) => {
                let _ = encoder.int(n);
            }
            // Out of CBOR's 65-bit integer range: only reachable by a bug, and a float beats a panic.
            Err(_) => {
                let _ = encoder.f64(*n as f64);
            }
        },
        // Always 8 bytes: the SDK decodes doubles from any float width, but a fixed width keeps
        // the encoding obviously lossless.
        Value::Float(f) => {
            let _ = encoder.f64(*f);
        }
        Value::Text(text) => {
            let _ = encoder.str(text);
        }
        Value::Bytes(bytes) => {
            let _ = encoder.bytes(bytes);
        }
        Value::Array(items) => {
            let _ = encoder.array(items.len() as u64);
            for item in items {
                encode_item(encoder, item);
            }
        }
        Value::Map(entries) => {
            let _ = encoder.map(entries.len() as u64);
            for (key, value) in entries {
                encode_item(encoder, key);
                encode_item(encoder, value);
            }
        }
        Value::Tag(tag, inner) => {
            let _ = encoder.tag(Tag::new(*tag));
            encode_item(encoder, inner);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_survive_a_round_trip() {
        let value = Value::map([
            ("Text", Value::text("héllo")),
            ("Int", Value::Int(-42)),
            ("Big", Value::Int(u64::MAX as i128)),
            ("Float", Value::Float(1.5)),
            ("List", Value::Array(vec![Value::Bool(true), Value::Null])),
            ("When", Value::timestamp_millis(1_700_000_000_000)),
            ("Blob", Value::Bytes(vec![0, 1, 255])),
        ]);
        assert_eq!(decode(&encode(&value)).unwrap(), value);
    }

    #[test]
    fn indefinite_lengths_and_timestamps_decode() {
        // {_ "a": [_ 1, 2], "t": 1(1700000000.5)} with indefinite map, array and a chunked string.
        let mut bytes = vec![
            0xbf, 0x61, b'a', 0x9f, 0x01, 0x02, 0xff, 0x7f, 0x61, b't', 0xff, 0xc1, 0xfb,
        ];
        bytes.extend_from_slice(&1_700_000_000.5f64.to_be_bytes());
        bytes.push(0xff);
        let value = decode(&bytes).unwrap();
        assert_eq!(
            value.get("a").unwrap().as_array().unwrap(),
            [Value::Int(1), Value::Int(2)]
        );
        assert_eq!(value.get("t").unwrap().as_timestamp_millis(), Some(1_700_000_000_500));
        assert_eq!(
            Value::timestamp_millis(1_700_000_000_250).as_timestamp_millis(),
            Some(1_700_000_000_250)
        );
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        for bytes in [
            &b""[..],
            &[0xa1, 0x61][..],             // truncated
            &[0x01, 0x02][..],             // trailing data
            &[0xff][..],                   // lone break
            &[0x9f, 0x01][..],             // unterminated indefinite array
            &[0x7f, 0x01, 0xff][..],       // an integer inside an indefinite string
            &[0x1c][..],                   // reserved additional information
            &[0x62, 0xff, 0xfe][..],       // invalid UTF-8
            &[0x9b, 0xff, 0xff, 0xff][..], // absurd length
        ] {
            assert!(decode(bytes).is_err(), "{bytes:02x?}");
        }
        let deep: Vec<u8> = std::iter::repeat_n(0x81, 10_000).chain([0x01]).collect();
        assert!(decode(&deep).unwrap_err().contains("deeply"));
    }
}
