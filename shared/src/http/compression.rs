//! API.md: "Responses over 1 KiB are compressed when the client sends Accept-Encoding with br or gzip."

use std::io::Write;

/// Bodies at or under this size go as they are: compressing them saves nothing worth the CPU.
pub const MIN_COMPRESSED_BYTES: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Brotli,
    Gzip,
}

impl Encoding {
    pub fn header_value(self) -> &'static str {
        match self {
            Encoding::Brotli => "br",
            Encoding::Gzip => "gzip",
        }
    }
}

/// The encoding to answer with for an `Accept-Encoding` header: br over gzip, neither when the client
/// refuses them (`q=0`) or names only others (`identity`, unknown codings).
pub fn negotiate(accept_encoding: Option<&str>) -> Option<Encoding> {
    let mut brotli = false;
    let mut gzip = false;
    for part in accept_encoding?.split(',') {
        let mut pieces = part.split(';');
        let coding = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
        let refused = pieces.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        if refused {
            continue;
        }
        match coding.as_str() {
            "br" => brotli = true,
            "gzip" | "x-gzip" => gzip = true,
            "*" => {
                brotli = true;
                gzip = true;
            }
            _ => {}
        }
    }
    if brotli {
        Some(Encoding::Brotli)
    } else if gzip {
        Some(Encoding::Gzip)
    } else {
        None
    }
}

/// `body` compressed with `encoding` (brotli at a middle quality: most of the gain for little CPU).
pub fn compress(encoding: Encoding, body: &[u8]) -> std::io::Result<Vec<u8>> {
    match encoding {
        Encoding::Brotli => {
            let mut out = Vec::with_capacity(body.len() / 3);
            {
                let mut writer = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
                writer.write_all(body)?;
            }
            Ok(out)
        }
        Encoding::Gzip => {
            let mut writer =
                flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 3), flate2::Compression::fast());
            writer.write_all(body)?;
            writer.finish()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn negotiation_prefers_br_and_respects_refusals() {
        assert_eq!(negotiate(Some("gzip, deflate, br")), Some(Encoding::Brotli));
        assert_eq!(negotiate(Some("gzip")), Some(Encoding::Gzip));
        assert_eq!(negotiate(Some("br;q=0, gzip;q=0.5")), Some(Encoding::Gzip));
        assert_eq!(negotiate(Some("identity")), None);
        assert_eq!(negotiate(Some("compress, zstd-unknown")), None);
        assert_eq!(negotiate(Some("*")), Some(Encoding::Brotli));
        assert_eq!(negotiate(Some("")), None);
        assert_eq!(negotiate(None), None);
    }

    #[test]
    fn both_encodings_round_trip() {
        let body = "{\"items\":[".to_owned() + &"{\"id\":\"01ABC\",\"body\":\"hello\"},".repeat(100) + "]}";
        let gz = compress(Encoding::Gzip, body.as_bytes()).unwrap();
        let mut back = String::new();
        flate2::read::GzDecoder::new(&gz[..]).read_to_string(&mut back).unwrap();
        assert_eq!(back, body);
        let br = compress(Encoding::Brotli, body.as_bytes()).unwrap();
        let mut back = String::new();
        brotli::Decompressor::new(&br[..], 4096)
            .read_to_string(&mut back)
            .unwrap();
        assert_eq!(back, body);
        assert!(br.len() < body.len() / 5 && gz.len() < body.len() / 5);
    }
}
