//! The DynamoDB fault proxy: an HTTP server on a free local port that the functions take for
//! DynamoDB. It forwards each request to DynamoDB Local and streams the answer back, except for the
//! configured share that it answers as DynamoDB answers when it fails: the same status, `__type` and
//! fields, so the AWS SDK parses them into the same error variants and retries what it would retry.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName, HeaderValue, CONNECTION};
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::{DynamoDbFault, FaultInjector};

type Body = UnsyncBoxBody<Bytes, hyper::Error>;

const TARGET_PREFIX: &str = "DynamoDB_20120810.";
const ERROR_NAMESPACE: &str = "com.amazonaws.dynamodb.v20120810#";

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

/// A running proxy; it stops when dropped.
pub struct FaultProxy {
    address: SocketAddr,
    shutdown: watch::Sender<bool>,
}

struct Proxy {
    upstream: String,
    client: Client<HttpConnector, Body>,
    faults: Arc<FaultInjector>,
}

impl FaultProxy {
    /// Listens on a free 127.0.0.1 port and forwards to `upstream` (`http://127.0.0.1:8000`).
    pub async fn start(upstream: &str, faults: Arc<FaultInjector>) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let address = listener.local_addr()?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let proxy = Arc::new(Proxy {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: Client::builder(TokioExecutor::new()).build_http(),
            faults,
        });
        tokio::spawn(serve(listener, shutdown_rx, proxy));
        Ok(FaultProxy { address, shutdown })
    }

    /// What the functions get as `AWS_ENDPOINT_URL_DYNAMODB`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn stop(&self) {
        let _ = self.shutdown.send(true);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn serve(listener: TcpListener, mut shutdown: watch::Receiver<bool>, proxy: Arc<Proxy>) {
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
        let proxy = Arc::clone(&proxy);
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| Arc::clone(&proxy).handle(request));
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

/// What a fault answers depends on the operation: only transactions and single-item writes conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Transaction,
    ItemWrite,
    Other,
}

fn kind_of(operation: &str) -> Kind {
    match operation {
        "TransactWriteItems" | "TransactGetItems" | "ExecuteTransaction" => Kind::Transaction,
        "PutItem" | "UpdateItem" | "DeleteItem" => Kind::ItemWrite,
        _ => Kind::Other,
    }
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed_unsync()
}

/// An error document as DynamoDB sends it: `__type` with the service's namespace, JSON 1.0.
fn dynamodb_error(status: StatusCode, body: Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amzn-requestid", request_id())
        .body(full(body.to_string()))
        .unwrap_or_else(|_| Response::new(full(Bytes::new())))
}

/// DynamoDB's request ids are 52 upper-case letters and digits.
fn request_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut bytes = [0u8; 52];
    let _ = getrandom::fill(&mut bytes);
    bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

fn internal_server_error() -> Response<Body> {
    dynamodb_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        json!({ "__type": format!("{ERROR_NAMESPACE}InternalServerError"), "message": "Internal server error" }),
    )
}

fn throttled(faults: &FaultInjector) -> Response<Body> {
    // DynamoDB answers both: ThrottlingException for on-demand tables and the control plane,
    // ProvisionedThroughputExceededException for a table or index over its capacity.
    let body = if faults.pick(2) == 0 {
        json!({
            "__type": format!("{ERROR_NAMESPACE}ThrottlingException"),
            "message": "Rate of requests exceeds the allowed throughput.",
        })
    } else {
        json!({
            "__type": format!("{ERROR_NAMESPACE}ProvisionedThroughputExceededException"),
            "message": "The level of configured provisioned throughput for the table was exceeded. \
                        Consider increasing your provisioning level with the UpdateTable API.",
        })
    };
    dynamodb_error(StatusCode::BAD_REQUEST, body)
}

/// The items of a transaction request, in order: `TransactItems` (TransactWriteItems,
/// TransactGetItems) or `TransactStatements` (ExecuteTransaction).
fn transaction_size(body: &[u8]) -> usize {
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return 1;
    };
    ["TransactItems", "TransactStatements"]
        .iter()
        .find_map(|key| request.get(key).and_then(Value::as_array).map(Vec::len))
        .unwrap_or(1)
        .max(1)
}

fn conflict(faults: &FaultInjector, kind: Kind, request_body: &[u8]) -> Response<Body> {
    if kind != Kind::Transaction {
        return dynamodb_error(
            StatusCode::BAD_REQUEST,
            json!({
                "__type": format!("{ERROR_NAMESPACE}TransactionConflictException"),
                "message": "Transaction is ongoing for the item",
            }),
        );
    }
    let items = transaction_size(request_body);
    let conflicted = faults.pick(items);
    let reasons: Vec<Value> = (0..items)
        .map(|i| {
            if i == conflicted {
                json!({ "Code": "TransactionConflict", "Message": "Transaction is ongoing for the item" })
            } else {
                json!({ "Code": "None" })
            }
        })
        .collect();
    let codes: Vec<&str> = (0..items)
        .map(|i| if i == conflicted { "TransactionConflict" } else { "None" })
        .collect();
    dynamodb_error(
        StatusCode::BAD_REQUEST,
        json!({
            "__type": format!("{ERROR_NAMESPACE}TransactionCanceledException"),
            "CancellationReasons": reasons,
            // Capitalised, unlike the other errors' `message`: so DynamoDB sends it, and so the
            // SDK reads it for this one shape.
            "Message": format!(
                "Transaction cancelled, please refer cancellation reasons for specific reasons [{}]",
                codes.join(", ")
            ),
        }),
    )
}

fn without_hop_by_hop(headers: &mut HeaderMap) {
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

impl Proxy {
    async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
        let operation = request
            .headers()
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix(TARGET_PREFIX))
            .unwrap_or("")
            .to_owned();
        let kind = kind_of(&operation);
        let faults = &self.faults;
        let Some(fault) = faults.roll_dynamodb(kind != Kind::Other) else {
            return Ok(self.forward(request.map(|b| b.boxed_unsync())).await);
        };
        let (parts, body) = request.into_parts();
        // Read to the end even when it is not forwarded, so the client's connection stays reusable.
        let body = match body.collect().await {
            Ok(body) => body.to_bytes(),
            Err(_) => return Ok(internal_server_error()),
        };
        let request = Request::from_parts(parts, full(body.clone()));
        Ok(match fault {
            DynamoDbFault::Throttle => throttled(faults),
            DynamoDbFault::Conflict => conflict(faults, kind, &body),
            DynamoDbFault::Internal => internal_server_error(),
            DynamoDbFault::InternalAfterWrite => {
                // Wait for all of DynamoDB's answer: the write is done once it has been sent.
                let _ = self.forward_whole(request).await;
                internal_server_error()
            }
            DynamoDbFault::Timeout => {
                faults.hold_dynamodb().await;
                internal_server_error()
            }
            DynamoDbFault::TimeoutAfterWrite => {
                let answer = self.forward_whole(request).await;
                faults.hold_dynamodb().await;
                answer
            }
        })
    }

    async fn forward(&self, request: Request<Body>) -> Response<Body> {
        let (mut parts, body) = request.into_parts();
        let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let Ok(uri) = format!("{}{path}", self.upstream).parse::<Uri>() else {
            return internal_server_error();
        };
        parts.uri = uri;
        without_hop_by_hop(&mut parts.headers);
        match self.client.request(Request::from_parts(parts, body)).await {
            Ok(response) => {
                let (mut parts, body) = response.into_parts();
                without_hop_by_hop(&mut parts.headers);
                Response::from_parts(parts, body.boxed_unsync())
            }
            Err(_) => {
                self.faults.upstream_failed();
                internal_server_error()
            }
        }
    }

    /// Forwards and reads the whole answer, to give it (or not) later.
    async fn forward_whole(&self, request: Request<Body>) -> Response<Body> {
        let (mut parts, body) = self.forward(request).await.into_parts();
        match body.collect().await {
            Ok(body) => {
                let body = body.to_bytes();
                parts
                    .headers
                    .insert(hyper::header::CONTENT_LENGTH, HeaderValue::from(body.len() as u64));
                Response::from_parts(parts, full(body))
            }
            Err(_) => {
                self.faults.upstream_failed();
                internal_server_error()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transactions_are_measured_by_their_items() {
        assert_eq!(transaction_size(br#"{"TransactItems":[{},{},{}]}"#), 3);
        assert_eq!(transaction_size(br#"{"TransactStatements":[{}]}"#), 1);
        assert_eq!(transaction_size(b"garbage"), 1);
    }

    #[test]
    fn request_ids_look_like_dynamodbs() {
        let id = request_id();
        assert_eq!(id.len(), 52);
        assert!(id.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
    }
}
