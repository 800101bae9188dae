//! Responses over 1 KiB are compressed when the client sends Accept-Encoding with br or gzip
//! (docs/API-GUIDE.md "Conventions").

use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll};

use lambda_http::{Body, Request, Response};

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

/// A tower layer that compresses the responses of the service it wraps, as negotiated with the
/// request's `Accept-Encoding`. API Gateway passes binary bodies base64-encoded, which lambda_http does
/// for `Body::Binary`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CompressionLayer;

impl<S> tower::Layer<S> for CompressionLayer {
    type Service = Compression<S>;
    fn layer(&self, inner: S) -> Compression<S> {
        Compression { inner }
    }
}

#[derive(Debug, Clone)]
pub struct Compression<S> {
    inner: S,
}

impl<S> tower::Service<Request> for Compression<S>
where
    S: tower::Service<Request, Response = Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let encoding = negotiate(
            request
                .headers()
                .get(http::header::ACCEPT_ENCODING)
                .and_then(|v| v.to_str().ok()),
        );
        let response = self.inner.call(request);
        Box::pin(async move { Ok(compressed(response.await?, encoding)) })
    }
}

/// `response` with its JSON body compressed when it is over [`MIN_COMPRESSED_BYTES`]. Any response of a
/// negotiating request varies by `Accept-Encoding`, compressed or not, so caches keep the variants apart.
pub fn compressed(response: Response<Body>, encoding: Option<Encoding>) -> Response<Body> {
    let Some(encoding) = encoding else { return response };
    let (mut parts, body) = response.into_parts();
    parts
        .headers
        .insert(http::header::VARY, http::HeaderValue::from_static("accept-encoding"));
    let text = match body {
        Body::Text(text) if text.len() > MIN_COMPRESSED_BYTES => text,
        other => return Response::from_parts(parts, other),
    };
    match compress(encoding, text.as_bytes()) {
        Ok(bytes) => {
            parts.headers.insert(
                http::header::CONTENT_ENCODING,
                http::HeaderValue::from_static(encoding.header_value()),
            );
            Response::from_parts(parts, Body::Binary(bytes))
        }
        Err(e) => {
            tracing::warn!(error = %e, "compression failed; answering uncompressed");
            Response::from_parts(parts, Body::Text(text))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    async fn through_the_layer(accept_encoding: Option<&str>, body: String) -> Response<Body> {
        use tower::{Layer, Service};
        let inner = lambda_http::service_fn(move |_request: Request| {
            let body = body.clone();
            async move { Ok::<_, std::convert::Infallible>(Response::new(Body::Text(body))) }
        });
        let mut service = CompressionLayer.layer(inner);
        let mut request = Request::new(Body::Empty);
        if let Some(value) = accept_encoding {
            request
                .headers_mut()
                .insert(http::header::ACCEPT_ENCODING, value.parse().unwrap());
        }
        std::future::poll_fn(|cx| service.poll_ready(cx)).await.unwrap();
        service.call(request).await.unwrap()
    }

    #[tokio::test]
    async fn the_layer_compresses_what_the_client_accepts_and_nothing_else() {
        let big = "x".repeat(MIN_COMPRESSED_BYTES + 1);
        let gzip = through_the_layer(Some("gzip"), big.clone()).await;
        assert_eq!(gzip.headers()[http::header::CONTENT_ENCODING], "gzip");
        assert_eq!(gzip.headers()[http::header::VARY], "accept-encoding");
        let Body::Binary(bytes) = gzip.body() else {
            panic!("compressed bodies are binary (base64 for API Gateway)")
        };
        let mut plain = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut plain)
            .unwrap();
        assert_eq!(plain, big);

        for refused in [Some("identity"), Some("zstd-unknown"), None] {
            let response = through_the_layer(refused, big.clone()).await;
            assert!(
                response.headers().get(http::header::CONTENT_ENCODING).is_none(),
                "{refused:?}"
            );
            assert!(
                matches!(response.body(), Body::Text(text) if *text == big),
                "{refused:?}"
            );
        }
        let small = through_the_layer(Some("br"), "{}".to_owned()).await;
        assert!(small.headers().get(http::header::CONTENT_ENCODING).is_none());
        assert!(matches!(small.body(), Body::Text(text) if text == "{}"));
    }

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
