//! The S3 endpoint the functions get when IAM is enforced: an HTTP proxy in front of the local S3
//! server that checks each call of a function's key against the function's role before forwarding it.
//! Presigned URLs carry their signer's key, and S3 authorizes them with the signer's rights when they
//! are used, so a browser's upload or download through a function's URL is checked here as well: the
//! URLs name this proxy, since the functions sign them for the endpoint they are given.
//!
//! A denied call is answered as S3 answers it: 403 `AccessDenied`, the message naming the role, the
//! action and the quoted resource (no body for `HEAD`); the gateway log says the same. Everything
//! else, bodies included, is streamed through untouched (the Host header too, which the signature
//! covers); only a multi-object delete's body is read, since it names the keys to judge.
//!
//! Bucket policies (resource-based) are not evaluated: Parley's only denies TLS-less requests, which
//! the local endpoints are by design. Authentication comes after authorization here (the S3 server
//! verifies signatures), the other way round from S3: a forged request with a function's key is told
//! AccessDenied where S3 would say SignatureDoesNotMatch.

use std::sync::Arc;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

use super::s3::{access_key, accesses, needs_body};
use super::{check, Iam, Role};
use crate::dynamodb_proxy::{full, Body, Handler, LoopbackServer, Upstream};
use crate::logs::LogBook;

/// A running proxy; it stops when dropped.
pub struct S3IamProxy {
    server: LoopbackServer,
}

struct Proxy {
    upstream: Upstream,
    iam: Arc<Iam>,
    logs: Arc<LogBook>,
}

impl S3IamProxy {
    /// Listens on 127.0.0.1:`port` (0: a free port) and forwards to `upstream` (the S3 server's
    /// endpoint).
    pub async fn start(port: u16, upstream: &str, iam: Arc<Iam>, logs: Arc<LogBook>) -> std::io::Result<Self> {
        let proxy = Arc::new(Proxy {
            upstream: Upstream::new(upstream),
            iam,
            logs,
        });
        Ok(S3IamProxy {
            server: LoopbackServer::start_on(proxy, port).await?,
        })
    }

    /// What the functions get as `AWS_ENDPOINT_URL_S3`.
    pub fn endpoint(&self) -> String {
        self.server.endpoint()
    }

    pub fn stop(&self) {
        self.server.stop();
    }
}

/// S3's request ids: 16 upper-case hex digits.
fn s3_request_id() -> String {
    let mut bytes = [0u8; 8];
    let _ = getrandom::fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn escape_xml(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// S3's answer to a request IAM denies.
pub fn access_denied(method: &Method, message: &str) -> Response<Body> {
    let request_id = s3_request_id();
    let body = match *method {
        Method::HEAD => String::new(),
        _ => format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code><Message>{}</Message>\
             <RequestId>{request_id}</RequestId><HostId>local</HostId></Error>",
            escape_xml(message)
        ),
    };
    Response::builder()
        .status(StatusCode::FORBIDDEN)
        .header("content-type", "application/xml")
        .header("x-amz-request-id", request_id)
        .header("x-amz-id-2", "local")
        .body(full(body))
        .unwrap_or_else(|_| Response::new(full(bytes::Bytes::new())))
}

impl Proxy {
    /// None when every access is allowed; otherwise the denial's message (S3 quotes the resource),
    /// logged.
    fn denial(
        &self,
        role: &Role,
        method: &Method,
        path: &str,
        query: &str,
        headers: &hyper::HeaderMap,
        body: Option<&[u8]>,
    ) -> Option<String> {
        let needed = match accesses(method, path, query, headers, body) {
            Ok(needed) => needed,
            Err(why) => {
                self.logs.gateway(&format!(
                    "IAM: {} denied an S3 request the local stack cannot judge ({why})",
                    role.function
                ));
                return Some(format!(
                    "User: {} is not authorized to perform this request: the local stack cannot judge it ({why})",
                    role.caller_arn()
                ));
            }
        };
        for access in needed {
            if let Some((_, log)) = check(role, access.action, &access.resource, &[]) {
                self.logs.gateway(&log);
                let decision = role.decide(&super::Request {
                    action: access.action,
                    resource: &access.resource,
                    context: &[],
                });
                return Some(role.denial(access.action, &format!("\"{}\"", access.resource), decision));
            }
        }
        None
    }

    async fn forward(&self, request: Request<Body>) -> Response<Body> {
        match self.upstream.forward(request).await {
            Ok(response) => response,
            Err(()) => Response::builder()
                .status(StatusCode::SERVICE_UNAVAILABLE)
                .body(full("the local S3 server could not be reached"))
                .unwrap_or_else(|_| Response::new(full(bytes::Bytes::new()))),
        }
    }
}

impl Handler for Proxy {
    async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Response<Body> {
        let query = request.uri().query().unwrap_or("").to_owned();
        let role = match *request.method() {
            // CORS preflights are never signed.
            Method::OPTIONS => None,
            _ => access_key(request.headers(), &query).and_then(|key| self.iam.role_of_key(&key)),
        };
        let Some(role) = role else {
            return self.forward(request.map(|b| b.boxed_unsync())).await;
        };
        let path = request.uri().path().to_owned();
        let (parts, body) = request.into_parts();
        let (body, read) = match needs_body(&parts.method, &path, &query) {
            true => match body.collect().await {
                Ok(collected) => {
                    let bytes = collected.to_bytes();
                    (full(bytes.clone()), Some(bytes))
                }
                Err(_) => return access_denied(&parts.method, "the request body could not be read"),
            },
            false => (body.boxed_unsync(), None),
        };
        if let Some(message) = self.denial(role, &parts.method, &path, &query, &parts.headers, read.as_deref()) {
            return access_denied(&parts.method, &message);
        }
        self.forward(Request::from_parts(parts, body)).await
    }
}
