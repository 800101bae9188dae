//! What the stack's HTTP proxies in front of DynamoDB Local share (the fault proxy, `faults::dynamodb`,
//! and the IAM proxy, `iam::proxy`): a loopback HTTP/1 server that hands each request to a handler,
//! forwarding over one pooled keep-alive client, and DynamoDB's own error documents.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName, CONNECTION};
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub(crate) type Body = UnsyncBoxBody<Bytes, hyper::Error>;

/// The `X-Amz-Target` prefix of every DynamoDB operation.
pub(crate) const TARGET_PREFIX: &str = "DynamoDB_20120810.";
pub(crate) const ERROR_NAMESPACE: &str = "com.amazonaws.dynamodb.v20120810#";

/// Headers about one connection, not the message (RFC 9110 section 7.6.1).
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The operation a DynamoDB request names in `X-Amz-Target` ("" when it names none).
pub(crate) fn operation<B>(request: &Request<B>) -> &str {
    request
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix(TARGET_PREFIX))
        .unwrap_or("")
}

pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed_unsync()
}

/// A request id shaped like DynamoDB's (`x-amzn-RequestId`: 52 upper-case letters and digits).
pub(crate) fn request_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut bytes = [0u8; 52];
    let _ = getrandom::fill(&mut bytes);
    bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

/// An error document as DynamoDB sends it: `__type`, JSON 1.0, its request id.
pub(crate) fn dynamodb_error(status: StatusCode, body: Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amzn-requestid", request_id())
        .body(full(body.to_string()))
        .unwrap_or_else(|_| Response::new(full(Bytes::new())))
}

pub(crate) fn internal_server_error() -> Response<Body> {
    dynamodb_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        json!({ "__type": format!("{ERROR_NAMESPACE}InternalServerError"), "message": "Internal server error" }),
    )
}

pub(crate) fn without_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Where a proxy forwards to (`http://127.0.0.1:<port>`), over one pooled client.
pub(crate) struct Upstream {
    base: String,
    client: Client<HttpConnector, Body>,
}

impl Upstream {
    pub(crate) fn new(base: &str) -> Self {
        // Without TCP_NODELAY a forwarded request's last segment waits for the previous one's ACK,
        // which the server delays: tens of milliseconds on a call DynamoDB Local answers in one.
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Upstream {
            base: base.trim_end_matches('/').to_owned(),
            client: Client::builder(TokioExecutor::new()).build(connector),
        }
    }

    /// The upstream's answer, streamed; Err when it could not be reached (the caller answers
    /// [`internal_server_error`], as DynamoDB's front end would).
    pub(crate) async fn forward(&self, request: Request<Body>) -> Result<Response<Body>, ()> {
        let (mut parts, body) = request.into_parts();
        let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let uri = format!("{}{path}", self.base).parse::<Uri>().map_err(|_| ())?;
        parts.uri = uri;
        without_hop_by_hop(&mut parts.headers);
        let response = self
            .client
            .request(Request::from_parts(parts, body))
            .await
            .map_err(|_| ())?;
        let (mut parts, body) = response.into_parts();
        without_hop_by_hop(&mut parts.headers);
        Ok(Response::from_parts(parts, body.boxed_unsync()))
    }
}

/// What a proxy does with each request it is sent.
pub(crate) trait Handler: Send + Sync + 'static {
    fn handle(self: Arc<Self>, request: Request<Incoming>) -> impl Future<Output = Response<Body>> + Send;
}

/// A running loopback HTTP/1 server; it stops when dropped.
pub(crate) struct LoopbackServer {
    address: SocketAddr,
    shutdown: watch::Sender<bool>,
}

impl LoopbackServer {
    /// Listens on a free 127.0.0.1 port and serves every connection with `handler`.
    pub(crate) async fn start<H: Handler>(handler: Arc<H>) -> std::io::Result<Self> {
        Self::start_on(handler, 0).await
    }

    /// [`LoopbackServer::start`] on a given port (0: any free one).
    pub(crate) async fn start_on<H: Handler>(handler: Arc<H>, port: u16) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let address = listener.local_addr()?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        tokio::spawn(serve(listener, shutdown_rx, handler));
        Ok(LoopbackServer { address, shutdown })
    }

    /// What the functions get as `AWS_ENDPOINT_URL_DYNAMODB`.
    pub(crate) fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    pub(crate) fn stop(&self) {
        let _ = self.shutdown.send(true);
    }
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn serve<H: Handler>(listener: TcpListener, mut shutdown: watch::Receiver<bool>, handler: Arc<H>) {
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => {
                    crate::accept_failed().await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let _ = stream.set_nodelay(true);
        let handler = Arc::clone(&handler);
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let handler = Arc::clone(&handler);
                async move { Ok::<_, Infallible>(handler.handle(request).await) }
            });
            // When the client closes its connection, this future ends and drops the request it was
            // serving: that is how a held request notices its caller gave up.
            let connection = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                _ = shutdown.changed() => {}
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_look_like_dynamodbs() {
        let id = request_id();
        assert_eq!(id.len(), 52);
        assert!(id.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()));
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_dropped() {
        let mut headers = HeaderMap::new();
        headers.insert(CONNECTION, "keep-alive, x-private".parse().unwrap());
        headers.insert("x-private", "1".parse().unwrap());
        headers.insert("keep-alive", "timeout=5".parse().unwrap());
        headers.insert("x-amz-target", "DynamoDB_20120810.GetItem".parse().unwrap());
        without_hop_by_hop(&mut headers);
        assert_eq!(headers.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["x-amz-target"]);
    }
}
