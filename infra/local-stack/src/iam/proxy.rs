//! The DynamoDB endpoint the functions get when IAM is enforced: an HTTP proxy that reads the caller's
//! access key, and for a function's call checks what the request asks for (`super::dynamodb`) against
//! the function's role before forwarding it to DynamoDB Local (or the fault proxy). A denied call is
//! answered as DynamoDB answers it: 400, `com.amazon.coral.service#AccessDeniedException`, the
//! message naming role, action and resource; the gateway log says the same.
//!
//! Calls of unknown keys (tests, tools) are streamed through unread. A function's call is read whole
//! (DynamoDB requests are at most 16 MB and mostly a few hundred bytes), parsed for the few fields the
//! check needs, and forwarded over the one pooled client.

use std::sync::Arc;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::json;

use super::dynamodb::{self, KeyNames};
use super::{check, Iam, Role};
use crate::dynamodb_proxy::{
    dynamodb_error, full, internal_server_error, operation, Body, Handler, LoopbackServer, Upstream,
};
use crate::logs::LogBook;

/// A running proxy; it stops when dropped.
pub struct DynamoDbIamProxy {
    server: LoopbackServer,
}

pub struct Authorizer {
    pub iam: Arc<Iam>,
    pub keys: KeyNames,
    pub logs: Arc<LogBook>,
}

struct Proxy {
    upstream: Upstream,
    authorizer: Authorizer,
}

impl DynamoDbIamProxy {
    /// Listens on a free 127.0.0.1 port and forwards to `upstream` (`http://127.0.0.1:8000`).
    pub async fn start(upstream: &str, authorizer: Authorizer) -> std::io::Result<Self> {
        let proxy = Arc::new(Proxy {
            upstream: Upstream::new(upstream),
            authorizer,
        });
        Ok(DynamoDbIamProxy {
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

/// DynamoDB's answer to a call IAM denies (the SDK reads `Message` for this shape).
pub fn access_denied(message: &str) -> Response<Body> {
    dynamodb_error(
        StatusCode::BAD_REQUEST,
        json!({ "__type": "com.amazon.coral.service#AccessDeniedException", "Message": message }),
    )
}

impl Authorizer {
    /// None: allowed (or not a call this can judge, which DynamoDB then refuses itself); otherwise the
    /// denial's message, logged.
    pub fn denial(&self, role: &Role, operation: &str, body: &[u8]) -> Option<String> {
        let accesses = dynamodb::accesses(operation, body, &self.keys).ok()?;
        for access in &accesses {
            let leading: Vec<&str> = access.leading_keys.iter().map(|k| k.as_ref()).collect();
            let with_keys: [(&str, &[&str]); 1] = [("dynamodb:leadingkeys", &leading)];
            let context: &[(&str, &[&str])] = if leading.is_empty() { &[] } else { &with_keys };
            if let Some((message, log)) = check(role, &access.action, &access.resource, context) {
                self.logs.gateway(&log);
                return Some(message);
            }
        }
        None
    }
}

impl Handler for Proxy {
    async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Response<Body> {
        let Some(role) = self.authorizer.iam.caller(&request) else {
            return self.forward(request.map(|b| b.boxed_unsync())).await;
        };
        let operation = operation(&request).to_owned();
        let (parts, body) = request.into_parts();
        let body = match body.collect().await {
            Ok(body) => body.to_bytes(),
            Err(_) => return internal_server_error(),
        };
        if let Some(message) = self.authorizer.denial(role, &operation, &body) {
            return access_denied(&message);
        }
        self.forward(Request::from_parts(parts, full(body))).await
    }
}

impl Proxy {
    async fn forward(&self, request: Request<Body>) -> Response<Body> {
        self.upstream
            .forward(request)
            .await
            .unwrap_or_else(|()| internal_server_error())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::{Duration, Instant};

    use std::convert::Infallible;

    use bytes::Bytes;
    use http_body_util::Full;
    use hyper_util::client::legacy::connect::HttpConnector;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use parley_template::Template;
    use tokio::net::TcpListener;

    use super::*;
    use crate::dynamodb_proxy::TARGET_PREFIX;
    use crate::iam::access_key_for;
    use crate::resolve::Resolver;

    /// Calls the functions make, in the proportions of a send (MessagesSendFunction's role).
    const BODIES: [(&str, &str); 4] = [
        (
            "UpdateItem",
            r##"{"TableName":"ChatTable","Key":{"PK":{"S":"RATE#user#01M983XMTEPT58Z5J10Y5YCET4"},"SK":{"S":"W#1796000000"}},"UpdateExpression":"ADD #c :one SET expiresAt = :ttl","ExpressionAttributeNames":{"#c":"count"},"ExpressionAttributeValues":{":one":{"N":"1"},":ttl":{"N":"1796003600"}},"ReturnValues":"UPDATED_NEW"}"##,
        ),
        (
            "BatchGetItem",
            r##"{"RequestItems":{"ChatTable":{"Keys":[{"PK":{"S":"CONV#01M983XMTEPT58Z5J10Y5YCET4"},"SK":{"S":"META"}},{"PK":{"S":"CONV#01M983XMTEPT58Z5J10Y5YCET4"},"SK":{"S":"MEMBER#01M983XMTEPT58Z5J10Y5YCET5"}}],"ConsistentRead":true}}}"##,
        ),
        (
            "TransactWriteItems",
            r##"{"TransactItems":[{"Put":{"TableName":"ChatTable","Item":{"PK":{"S":"CONV#01M983XMTEPT58Z5J10Y5YCET4"},"SK":{"S":"MSG#01M983XMTEPT58Z5J10Y5YCET6"},"body":{"S":"hello there, a message of a usual length with \"quotes\" and all"},"senderId":{"S":"01M983XMTEPT58Z5J10Y5YCET5"},"seq":{"N":"42"},"mentions":{"L":[]}},"ConditionExpression":"attribute_not_exists(PK)"}},{"Put":{"TableName":"ChatTable","Item":{"PK":{"S":"CONV#01M983XMTEPT58Z5J10Y5YCET4"},"SK":{"S":"CLIENTMSG#01M983XMTEPT58Z5J10Y5YCET5#c-1"},"messageId":{"S":"01M983XMTEPT58Z5J10Y5YCET6"}},"ConditionExpression":"attribute_not_exists(PK)"}},{"Update":{"TableName":"ChatTable","Key":{"PK":{"S":"CONV#01M983XMTEPT58Z5J10Y5YCET4"},"SK":{"S":"META"}},"UpdateExpression":"SET lastSeq = :s","ExpressionAttributeValues":{":s":{"N":"42"}}}}]}"##,
        ),
        (
            "Query",
            r##"{"TableName":"ChatTable","KeyConditionExpression":"PK = :pk AND begins_with(SK, :p)","ExpressionAttributeValues":{":pk":{"S":"CONV#01M983XMTEPT58Z5J10Y5YCET4"},":p":{"S":"MEMBER#"}},"Limit":100}"##,
        ),
    ];

    fn cpu_time() -> Duration {
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: getrusage writes the struct it is given and nothing else.
        unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
        let at = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
        at(usage.ru_utime) + at(usage.ru_stime)
    }

    async fn stub_upstream() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(|request: Request<Incoming>| async move {
                        let _ = request.into_body().collect().await;
                        Ok::<_, Infallible>(
                            Response::builder()
                                .header("content-type", "application/x-amz-json-1.0")
                                .body(Full::new(Bytes::from_static(b"{}")))
                                .unwrap(),
                        )
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        format!("http://{address}")
    }

    fn authorizer() -> Authorizer {
        let template = Template::load(&crate::workspace_template()).unwrap();
        let functions = template.functions().unwrap();
        let resolver = Resolver::new(&template, BTreeMap::new());
        let (roles, _) = super::super::policies::roles(&template, &functions, &resolver);
        Authorizer {
            iam: Arc::new(Iam::new(roles)),
            keys: KeyNames::new(&[template.table().unwrap()]),
            logs: Arc::new(LogBook::new(false)),
        }
    }

    /// Process CPU per call of `calls` sequential requests to `endpoint` signed with `access_key`.
    async fn cpu_per_call(endpoint: &str, access_key: &str, calls: usize) -> Duration {
        let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let authorization =
            format!("AWS4-HMAC-SHA256 Credential={access_key}/20261207/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0");
        let send = |i: usize| {
            let (operation, body) = BODIES[i % BODIES.len()];
            let request = Request::post(format!("{endpoint}/"))
                .header("x-amz-target", format!("{TARGET_PREFIX}{operation}"))
                .header("content-type", "application/x-amz-json-1.0")
                .header("authorization", &authorization)
                .body(Full::new(Bytes::from_static(body.as_bytes())))
                .unwrap();
            let response = client.request(request);
            async move {
                let response = response.await.unwrap();
                assert_eq!(response.status(), 200);
                response.into_body().collect().await.unwrap();
            }
        };
        for i in 0..500 {
            send(i).await;
        }
        let started = cpu_time();
        for i in 0..calls {
            send(i).await;
        }
        (cpu_time() - started) / calls as u32
    }

    /// What the proxy costs per DynamoDB call: the process's CPU time for the same sequential calls
    /// through the proxy and straight to a stub DynamoDB, the difference per call. Client, stub and
    /// proxy share this process, so the difference is the proxy's hop and check. Measure it optimised:
    /// `cargo test -p local-stack --profile local --lib cpu_per_call -- --ignored --nocapture`.
    #[tokio::test(flavor = "current_thread")]
    #[ignore = "a measurement, not a check"]
    async fn cpu_per_call_through_the_proxy() {
        const CALLS: usize = 20_000;
        let upstream = stub_upstream().await;
        let proxy = DynamoDbIamProxy::start(&upstream, authorizer()).await.unwrap();
        let function = access_key_for("MessagesSendFunction");
        let direct = cpu_per_call(&upstream, &function, CALLS).await;
        let unchecked = cpu_per_call(&proxy.endpoint(), "local", CALLS).await;
        let checked = cpu_per_call(&proxy.endpoint(), &function, CALLS).await;
        let check_only = {
            let authorizer = authorizer();
            let role = authorizer.iam.roles.get(&function).unwrap();
            let started = Instant::now();
            for i in 0..CALLS * 5 {
                let (operation, body) = BODIES[i % BODIES.len()];
                assert!(authorizer.denial(role, operation, body.as_bytes()).is_none());
            }
            started.elapsed() / (CALLS * 5) as u32
        };
        println!(
            "CPU per call: direct {direct:?}; through the proxy, unchecked key {unchecked:?} (+{:?}), \
             function's key {checked:?} (+{:?}); parse and evaluate alone {check_only:?}",
            unchecked.saturating_sub(direct),
            checked.saturating_sub(direct)
        );
    }
}
