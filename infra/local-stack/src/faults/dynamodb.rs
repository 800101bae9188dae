//! The DynamoDB fault proxy: an HTTP server on a free local port that the functions take for
//! DynamoDB. It forwards each request to DynamoDB Local and streams the answer back, except for the
//! configured share that it answers as DynamoDB answers when it fails: the same status, `__type` and
//! fields, so the AWS SDK parses them into the same error variants and retries what it would retry.

use std::sync::Arc;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};

use super::{DynamoDbFault, FaultInjector};
use crate::dynamodb_proxy::{
    dynamodb_error, full, internal_server_error, operation, Body, Handler, LoopbackServer, Upstream, ERROR_NAMESPACE,
};

/// A running proxy; it stops when dropped.
pub struct FaultProxy {
    server: LoopbackServer,
}

struct Proxy {
    upstream: Upstream,
    faults: Arc<FaultInjector>,
}

impl FaultProxy {
    /// Listens on a free 127.0.0.1 port and forwards to `upstream` (`http://127.0.0.1:8000`).
    pub async fn start(upstream: &str, faults: Arc<FaultInjector>) -> std::io::Result<Self> {
        let proxy = Arc::new(Proxy {
            upstream: Upstream::new(upstream),
            faults,
        });
        Ok(FaultProxy {
            server: LoopbackServer::start(proxy).await?,
        })
    }

    /// What the functions get as `AWS_ENDPOINT_URL_DYNAMODB`.
    pub fn endpoint(&self) -> String {
        self.server.endpoint()
    }

    pub fn stop(&self) {
        self.server.stop();
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

impl Handler for Proxy {
    async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Response<Body> {
        let operation = operation(&request).to_owned();
        let kind = kind_of(&operation);
        let faults = &self.faults;
        let Some(fault) = faults.roll_dynamodb(kind != Kind::Other) else {
            return self.forward(request.map(|b| b.boxed_unsync())).await;
        };
        let (parts, body) = request.into_parts();
        // Read to the end even when it is not forwarded, so the client's connection stays reusable.
        let body = match body.collect().await {
            Ok(body) => body.to_bytes(),
            Err(_) => return internal_server_error(),
        };
        let request = Request::from_parts(parts, full(body.clone()));
        match fault {
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
        }
    }
}

impl Proxy {
    async fn forward(&self, request: Request<Body>) -> Response<Body> {
        self.upstream.forward(request).await.unwrap_or_else(|()| {
            self.faults.upstream_failed();
            internal_server_error()
        })
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
}
