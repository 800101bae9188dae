//! The WebSocket API and its @connections management API, on one port as API Gateway's custom
//! domain would serve them: upgrades become connections (through the `$connect` authorizer and
//! function), text frames are routed by the route selection expression, and functions (or tests)
//! post back to connections through `/@connections/{connectionId}`. With fault injection, posts fail
//! as configured and `/@faults` is the test harness's handle on the configuration (see `faults`).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::error::{Error as WsError, ProtocolError};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::faults::{self, ConnectionFault, FaultInjector};
use crate::ids;
use crate::logs::LogBook;
use crate::runtime::{FunctionPool, InvokeError};
use crate::url::{percent_decode, query_parameters};

/// API Gateway's WebSocket limits, configurable for tests: a client message of at most 128 KiB, sent
/// in frames of at most 32 KiB each (either exceeded closes the connection with 1009), closed after
/// 10 minutes without a frame either way and after 2 hours in any case (1001, `$disconnect` runs).
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_message_bytes: usize,
    pub max_frame_bytes: usize,
    pub idle_timeout: Duration,
    pub max_connection_duration: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 128 * 1024,
            max_frame_bytes: 32 * 1024,
            idle_timeout: Duration::from_secs(10 * 60),
            max_connection_duration: Duration::from_secs(2 * 3600),
        }
    }
}

pub struct WsRoute {
    pub route_key: String,
    pub function: Arc<FunctionPool>,
    pub authorizer: Option<(Arc<FunctionPool>, Vec<String>)>,
    pub has_response: bool,
}

pub struct WsApi {
    /// `$request.body.action` as the path `["action"]`.
    pub selection_path: Vec<String>,
    pub routes: HashMap<String, WsRoute>,
}

impl WsApi {
    /// Only `$request.body.<path>` expressions are supported, as for every Lambda-backed chat API.
    pub fn selection_path(expression: &str) -> Result<Vec<String>, String> {
        expression
            .strip_prefix("$request.body.")
            .filter(|p| !p.is_empty())
            .map(|p| p.split('.').map(str::to_owned).collect())
            .ok_or_else(|| {
                format!("route selection expression {expression:?} is not of the form $request.body.<field>")
            })
    }

    fn route_for(&self, frame: &str) -> Option<&WsRoute> {
        let selected = serde_json::from_str::<Value>(frame).ok().and_then(|value| {
            let mut at = &value;
            for key in &self.selection_path {
                at = at.get(key)?;
            }
            match at {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                Value::Bool(b) => Some(b.to_string()),
                _ => None,
            }
        });
        selected
            .and_then(|key| self.routes.get(&key).filter(|_| !key.starts_with('$')))
            .or_else(|| self.routes.get("$default"))
    }
}

enum Outbound {
    Text(String),
    Binary(Bytes),
    Close(CloseCode, String),
}

struct Connection {
    id: String,
    outbound: mpsc::UnboundedSender<Outbound>,
    connected_at: SystemTime,
    last_active: Mutex<SystemTime>,
    source_ip: String,
    user_agent: String,
    authorizer: Option<Value>,
}

impl Connection {
    fn touch(&self) {
        *self.last_active.lock().unwrap_or_else(|p| p.into_inner()) = SystemTime::now();
    }

    fn send_json(&self, value: Value) {
        let _ = self.outbound.send(Outbound::Text(value.to_string()));
    }

    /// The `requestContext` every event of this connection carries.
    fn request_context(&self, route_key: &str, event_type: &str, request_id: &str, domain: &str) -> Value {
        let now = SystemTime::now();
        let mut context = json!({
            "routeKey": route_key,
            "eventType": event_type,
            "extendedRequestId": request_id,
            "requestTime": ids::clf_time(now),
            "messageDirection": "IN",
            "stage": "local",
            "connectedAt": ids::epoch_millis(self.connected_at),
            "requestTimeEpoch": ids::epoch_millis(now),
            "identity": { "sourceIp": self.source_ip, "userAgent": self.user_agent },
            "requestId": request_id,
            "domainName": domain,
            "connectionId": self.id,
            "apiId": "local",
        });
        if let Some(authorizer) = &self.authorizer {
            context["authorizer"] = authorizer.clone();
        }
        context
    }
}

type HttpResponse = Response<Full<Bytes>>;

fn json_response(status: StatusCode, body: Value) -> HttpResponse {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// A management API error as the AWS SDK reads it: the error type in `x-amzn-errortype`.
fn management_error(status: StatusCode, error_type: &str, message: &str) -> HttpResponse {
    let mut response = json_response(status, json!({ "message": message }));
    if let Ok(value) = error_type.parse() {
        response.headers_mut().insert("x-amzn-errortype", value);
    }
    response
}

pub struct WsGateway {
    pub api: Option<WsApi>,
    pub limits: Limits,
    pub logs: Arc<LogBook>,
    /// `127.0.0.1:3001`: the `domainName` of events.
    pub domain: String,
    connections: RwLock<HashMap<String, Arc<Connection>>>,
    /// Breaks @connections posts as configured, and serves `/@faults`; `None`: neither.
    faults: Option<Arc<FaultInjector>>,
    /// Checks the functions' @connections calls; `None`: not checked.
    iam: Option<ConnectionsIam>,
}

/// What IAM checks an @connections call against: `execute-api:ManageConnections` on
/// `arn:aws:execute-api:<region>:<account>:<apiId>/<stage>/<METHOD>/@connections/<id>`.
pub struct ConnectionsIam {
    pub iam: Arc<crate::iam::Iam>,
    /// What `!Ref` of the API gives locally.
    pub api_id: String,
    pub stage: String,
}

impl WsGateway {
    pub fn new(api: Option<WsApi>, limits: Limits, logs: Arc<LogBook>, domain: String) -> Self {
        WsGateway {
            api,
            limits,
            logs,
            domain,
            connections: RwLock::default(),
            faults: None,
            iam: None,
        }
    }

    pub fn with_iam(mut self, iam: Option<ConnectionsIam>) -> Self {
        self.iam = iam;
        self
    }

    /// API Gateway's answer to a function whose role may not manage this connection.
    fn denial(&self, request: &Request<Incoming>, id: &str) -> Option<HttpResponse> {
        let checked = self.iam.as_ref()?;
        let role = checked.iam.caller(request)?;
        let resource = format!(
            "arn:aws:execute-api:{}:{}:{}/{}/{}/@connections/{id}",
            ids::REGION,
            ids::ACCOUNT_ID,
            checked.api_id,
            checked.stage,
            request.method()
        );
        let (message, log) = crate::iam::check(role, "execute-api:ManageConnections", &resource, &[])?;
        self.logs.gateway(&log);
        Some(management_error(StatusCode::FORBIDDEN, "ForbiddenException", &message))
    }

    pub fn with_faults(mut self, faults: Option<Arc<FaultInjector>>) -> Self {
        self.faults = faults;
        self
    }

    pub fn connection_count(&self) -> usize {
        self.connections.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    fn connection(&self, id: &str) -> Option<Arc<Connection>> {
        self.connections
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    fn forget(&self, id: &str) -> Option<Arc<Connection>> {
        self.connections.write().unwrap_or_else(|p| p.into_inner()).remove(id)
    }

    /// Closes every connection (without running `$disconnect`: the functions are stopping too).
    pub fn close_all(&self) {
        let all: Vec<Arc<Connection>> = self
            .connections
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .map(|(_, c)| c)
            .collect();
        for connection in all {
            let _ = connection
                .outbound
                .send(Outbound::Close(CloseCode::Away, "Going away".to_owned()));
        }
    }

    pub async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> Result<HttpResponse, Infallible> {
        let path = request.uri().path().to_owned();
        if faults::serves(&path) {
            return Ok(faults::harness(self.faults.as_deref(), request).await);
        }
        if let Some(at) = path.find("/@connections/") {
            let id = percent_decode(&path[at + "/@connections/".len()..]);
            return Ok(self.manage(request, &id).await);
        }
        let is_upgrade = request
            .headers()
            .get(hyper::header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
        if !is_upgrade {
            return Ok(json_response(
                StatusCode::UPGRADE_REQUIRED,
                json!({ "message": "Upgrade Required" }),
            ));
        }
        Ok(self.connect(request, peer).await)
    }

    async fn manage(&self, request: Request<Incoming>, id: &str) -> HttpResponse {
        if let Some(denied) = self.denial(&request, id) {
            return denied;
        }
        let gone = || management_error(StatusCode::GONE, "GoneException", &format!("connection {id} is gone"));
        match request.method().as_str() {
            "POST" => {
                let body = match Limited::new(request.into_body(), self.limits.max_message_bytes)
                    .collect()
                    .await
                {
                    Ok(body) => body.to_bytes(),
                    Err(_) => {
                        return management_error(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            "PayloadTooLargeException",
                            "the message is over 128 KB",
                        )
                    }
                };
                if let Some(faults) = &self.faults {
                    let internal = || {
                        management_error(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "InternalServerErrorException",
                            "Internal server error",
                        )
                    };
                    match faults.roll_connection_post(id) {
                        None => {}
                        Some(ConnectionFault::Gone) => return gone(),
                        Some(ConnectionFault::Error) => return internal(),
                        Some(ConnectionFault::Timeout) => {
                            faults.hold_connection().await;
                            return internal();
                        }
                    }
                }
                let Some(connection) = self.connection(id) else {
                    return gone();
                };
                let message = match String::from_utf8(body.to_vec()) {
                    Ok(text) => Outbound::Text(text),
                    Err(_) => Outbound::Binary(body),
                };
                if connection.outbound.send(message).is_err() {
                    return gone();
                }
                json_response(StatusCode::OK, json!({}))
            }
            "GET" => {
                let Some(connection) = self.connection(id) else {
                    return gone();
                };
                let last_active = *connection.last_active.lock().unwrap_or_else(|p| p.into_inner());
                json_response(
                    StatusCode::OK,
                    json!({
                        "ConnectedAt": ids::rfc3339(connection.connected_at),
                        "Identity": { "SourceIp": connection.source_ip, "UserAgent": connection.user_agent },
                        "LastActiveAt": ids::rfc3339(last_active),
                    }),
                )
            }
            "DELETE" => {
                let Some(connection) = self.connection(id) else {
                    return gone();
                };
                let _ = connection
                    .outbound
                    .send(Outbound::Close(CloseCode::Normal, String::new()));
                Response::builder()
                    .status(StatusCode::NO_CONTENT)
                    .body(Full::new(Bytes::new()))
                    .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
            }
            _ => management_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "BadRequestException",
                "use POST, GET or DELETE",
            ),
        }
    }

    async fn connect(self: Arc<Self>, mut request: Request<Incoming>, peer: SocketAddr) -> HttpResponse {
        let Some(api) = &self.api else {
            return json_response(StatusCode::NOT_FOUND, json!({ "message": "Not Found" }));
        };
        let Some(key) = request
            .headers()
            .get("sec-websocket-key")
            .map(|k| k.as_bytes().to_vec())
        else {
            return json_response(
                StatusCode::BAD_REQUEST,
                json!({ "message": "Sec-WebSocket-Key is missing" }),
            );
        };
        let mut headers = Map::new();
        let mut multi_headers = Map::new();
        for (name, value) in request.headers() {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            let entry = multi_headers
                .entry(name.as_str().to_owned())
                .or_insert_with(|| json!([]));
            if let Some(list) = entry.as_array_mut() {
                list.push(json!(value));
            }
            headers.insert(name.as_str().to_owned(), json!(value));
        }
        let query = query_parameters(request.uri().query().unwrap_or(""));
        let multi_query: Map<String, Value> = query
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    json!(v.as_str().unwrap_or("").split(',').collect::<Vec<_>>()),
                )
            })
            .collect();
        let user_agent = request
            .headers()
            .get(hyper::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let (outbound, outbound_rx) = mpsc::unbounded_channel();
        let mut connection = Connection {
            id: ids::connection_id(),
            outbound,
            connected_at: SystemTime::now(),
            last_active: Mutex::new(SystemTime::now()),
            source_ip: peer.ip().to_string(),
            user_agent,
            authorizer: None,
        };
        let request_id = ids::request_id();
        let connect_route = api.routes.get("$connect");

        if let Some((authorizer, identity_sources)) = connect_route.and_then(|r| r.authorizer.as_ref()) {
            let present = identity_sources.iter().all(|source| {
                if let Some(name) = source.strip_prefix("route.request.querystring.") {
                    query.get(name).and_then(Value::as_str).is_some_and(|v| !v.is_empty())
                } else if let Some(name) = source.strip_prefix("route.request.header.") {
                    headers.contains_key(&name.to_ascii_lowercase())
                } else {
                    true
                }
            });
            if !present {
                return json_response(StatusCode::UNAUTHORIZED, json!({ "message": "Unauthorized" }));
            }
            let event = json!({
                "type": "REQUEST",
                "methodArn": format!("arn:aws:execute-api:{}:{}:local/local/$connect", ids::REGION, ids::ACCOUNT_ID),
                "headers": headers,
                "multiValueHeaders": multi_headers,
                "queryStringParameters": query,
                "multiValueQueryStringParameters": multi_query,
                "stageVariables": {},
                "requestContext": connection.request_context("$connect", "CONNECT", &request_id, &self.domain),
            });
            match authorizer.invoke(Bytes::from(event.to_string())).await {
                Ok(payload) => match policy_decision(&payload) {
                    Some(context) => connection.authorizer = Some(context),
                    None => return json_response(StatusCode::FORBIDDEN, json!({ "message": "Forbidden" })),
                },
                Err(InvokeError::Function(payload)) if payload.contains("Unauthorized") => {
                    return json_response(StatusCode::UNAUTHORIZED, json!({ "message": "Unauthorized" }))
                }
                Err(e) => {
                    self.logs.gateway(&format!("$connect authorizer failed: {e}"));
                    return json_response(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        json!({ "message": "Internal Server Error" }),
                    );
                }
            }
        }

        if let Some(route) = connect_route {
            let mut event = json!({
                "headers": headers,
                "multiValueHeaders": multi_headers,
                "requestContext": connection.request_context("$connect", "CONNECT", &request_id, &self.domain),
                "isBase64Encoded": false,
            });
            if !query.is_empty() {
                event["queryStringParameters"] = Value::Object(query.clone());
                event["multiValueQueryStringParameters"] = Value::Object(multi_query.clone());
            }
            match route.function.invoke(Bytes::from(event.to_string())).await {
                Ok(payload) => {
                    let status = status_of(&payload);
                    if !(200..300).contains(&status) {
                        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
                        return json_response(
                            status,
                            json!({ "message": status.canonical_reason().unwrap_or("Refused") }),
                        );
                    }
                }
                Err(e) => {
                    self.logs.gateway(&format!("$connect failed: {e}"));
                    return json_response(StatusCode::BAD_GATEWAY, json!({ "message": "Internal Server Error" }));
                }
            }
        }

        let connection = Arc::new(connection);
        self.connections
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(connection.id.clone(), Arc::clone(&connection));
        let upgrade = hyper::upgrade::on(&mut request);
        let gateway = Arc::clone(&self);
        tokio::spawn(async move {
            match upgrade.await {
                Ok(upgraded) => gateway.run_connection(upgraded, connection, outbound_rx).await,
                Err(e) => {
                    gateway.forget(&connection.id);
                    gateway.logs.gateway(&format!("WebSocket upgrade failed: {e}"));
                }
            }
        });
        Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(hyper::header::UPGRADE, "websocket")
            .header(hyper::header::CONNECTION, "Upgrade")
            .header("sec-websocket-accept", derive_accept_key(&key))
            .body(Full::new(Bytes::new()))
            .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
    }

    async fn run_connection(
        self: Arc<Self>,
        upgraded: hyper::upgrade::Upgraded,
        connection: Arc<Connection>,
        mut outbound: mpsc::UnboundedReceiver<Outbound>,
    ) {
        // Frames over the limit are refused by us with 1009, so tungstenite may read a little more. The
        // read buffer grows for big frames; its 128 KiB default, allocated up front, was nearly all of a
        // held connection's memory (138 KB each at 10,000 connections).
        let config = WebSocketConfig::default()
            .max_message_size(Some(self.limits.max_message_bytes * 2))
            .max_frame_size(Some(self.limits.max_frame_bytes))
            .read_buffer_size(8 * 1024);
        let mut socket = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;
        let hard_deadline = Instant::now() + self.limits.max_connection_duration;
        let mut idle_deadline = Instant::now() + self.limits.idle_timeout;
        let close = |code: CloseCode, reason: &str| {
            Message::Close(Some(CloseFrame {
                code,
                reason: reason.to_owned().into(),
            }))
        };
        let (code, reason): (u16, String) = loop {
            tokio::select! {
                frame = socket.next() => {
                    idle_deadline = Instant::now() + self.limits.idle_timeout;
                    connection.touch();
                    match frame {
                        None => break (1006, String::new()),
                        // A frame over the limit (tungstenite refuses it: a capacity error); a client
                        // gone without a close (abnormal closure, nothing to send it); or a frame that
                        // breaks the protocol.
                        Some(Err(WsError::Capacity(e))) => {
                            let _ = socket.send(close(CloseCode::Size, "Message too big")).await;
                            break (1009, e.to_string());
                        }
                        Some(Err(
                            e @ (WsError::Io(_)
                            | WsError::ConnectionClosed
                            | WsError::AlreadyClosed
                            | WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake)),
                        )) => break (1006, e.to_string()),
                        Some(Err(e)) => {
                            let _ = socket.send(close(CloseCode::Protocol, "Protocol error")).await;
                            break (1002, e.to_string());
                        }
                        Some(Ok(Message::Text(text))) => {
                            if text.len() > self.limits.max_message_bytes {
                                let _ = socket.send(close(CloseCode::Size, "Message too big")).await;
                                break (1009, "Message too big".to_owned());
                            }
                            tokio::spawn(Arc::clone(&self).route_message(Arc::clone(&connection), text.to_string()));
                        }
                        Some(Ok(Message::Binary(bytes))) => {
                            if bytes.len() > self.limits.max_message_bytes {
                                let _ = socket.send(close(CloseCode::Size, "Message too big")).await;
                                break (1009, "Message too big".to_owned());
                            }
                            let text = String::from_utf8_lossy(&bytes).into_owned();
                            tokio::spawn(Arc::clone(&self).route_message(Arc::clone(&connection), text));
                        }
                        Some(Ok(Message::Close(frame))) => {
                            let (code, reason) = frame.map(|f| (u16::from(f.code), f.reason.to_string())).unwrap_or((1005, String::new()));
                            break (code, reason);
                        }
                        Some(Ok(_)) => {}
                    }
                }
                message = outbound.recv() => match message {
                    Some(Outbound::Text(text)) => {
                        if socket.send(Message::text(text)).await.is_err() {
                            break (1006, "send failed".to_owned());
                        }
                    }
                    Some(Outbound::Binary(bytes)) => {
                        if socket.send(Message::binary(bytes)).await.is_err() {
                            break (1006, "send failed".to_owned());
                        }
                    }
                    Some(Outbound::Close(code, reason)) => {
                        let _ = socket.send(close(code, &reason)).await;
                        break (u16::from(code), reason);
                    }
                    None => break (1001, "Going away".to_owned()),
                },
                _ = tokio::time::sleep_until(idle_deadline) => {
                    let _ = socket.send(close(CloseCode::Away, "Going away")).await;
                    break (1001, "idle timeout".to_owned());
                }
                _ = tokio::time::sleep_until(hard_deadline) => {
                    let _ = socket.send(close(CloseCode::Away, "Going away")).await;
                    break (1001, "maximum connection duration".to_owned());
                }
            }
        };
        let _ = socket.close(None).await;
        self.forget(&connection.id);
        self.disconnect(&connection, code, &reason).await;
    }

    async fn disconnect(&self, connection: &Connection, code: u16, reason: &str) {
        let Some(route) = self.api.as_ref().and_then(|api| api.routes.get("$disconnect")) else {
            return;
        };
        let request_id = ids::request_id();
        let mut context = connection.request_context("$disconnect", "DISCONNECT", &request_id, &self.domain);
        context["disconnectStatusCode"] = json!(code);
        context["disconnectReason"] = json!(reason);
        let event = json!({
            "headers": { "Host": self.domain },
            "requestContext": context,
            "isBase64Encoded": false,
        });
        if let Err(e) = route.function.invoke(Bytes::from(event.to_string())).await {
            self.logs.gateway(&format!("$disconnect failed: {e}"));
        }
    }

    async fn route_message(self: Arc<Self>, connection: Arc<Connection>, frame: String) {
        let Some(api) = &self.api else { return };
        let request_id = ids::request_id();
        let Some(route) = api.route_for(&frame) else {
            connection.send_json(json!({
                "message": "Forbidden",
                "connectionId": connection.id,
                "requestId": request_id,
            }));
            return;
        };
        let mut context = connection.request_context(&route.route_key, "MESSAGE", &request_id, &self.domain);
        context["messageId"] = json!(ids::request_id());
        let event = json!({
            "requestContext": context,
            "body": frame,
            "isBase64Encoded": false,
        });
        match route.function.invoke(Bytes::from(event.to_string())).await {
            Ok(payload) => {
                if route.has_response {
                    if let Some(body) = response_body(&payload) {
                        let _ = connection.outbound.send(Outbound::Text(body));
                    }
                }
            }
            Err(e) => {
                self.logs.gateway(&format!("route {} failed: {e}", route.route_key));
                connection.send_json(json!({
                    "message": "Internal server error",
                    "connectionId": connection.id,
                    "requestId": request_id,
                }));
            }
        }
    }
}

/// The authorizer's verdict: `Some(context)` when its policy allows `execute-api:Invoke`.
pub(crate) fn policy_decision(payload: &[u8]) -> Option<Value> {
    let value: Value = serde_json::from_slice(payload).ok()?;
    let statements = value.get("policyDocument")?.get("Statement")?;
    let statements = match statements {
        Value::Array(list) => list.clone(),
        single => vec![single.clone()],
    };
    let allowed = statements
        .iter()
        .any(|s| s.get("Effect").and_then(Value::as_str) == Some("Allow"));
    let denied = statements
        .iter()
        .any(|s| s.get("Effect").and_then(Value::as_str) == Some("Deny"));
    if !allowed || denied {
        return None;
    }
    let mut context = value
        .get("context")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if let Some(principal) = value.get("principalId") {
        context.insert("principalId".to_owned(), principal.clone());
    }
    Some(Value::Object(context))
}

fn status_of(payload: &[u8]) -> u16 {
    serde_json::from_slice::<Value>(payload)
        .ok()
        .and_then(|v| v.get("statusCode").and_then(Value::as_u64))
        .map(|s| s as u16)
        .unwrap_or(200)
}

/// What API Gateway sends back to the client for a two-way route's function result.
fn response_body(payload: &[u8]) -> Option<String> {
    match serde_json::from_slice::<Value>(payload).ok()? {
        Value::Object(object) if object.contains_key("statusCode") => match object.get("body")? {
            Value::String(text) => Some(text.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        },
        Value::String(text) => Some(text),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_expressions() {
        assert_eq!(WsApi::selection_path("$request.body.action").unwrap(), ["action"]);
        assert_eq!(
            WsApi::selection_path("$request.body.meta.kind").unwrap(),
            ["meta", "kind"]
        );
        assert!(WsApi::selection_path("${request.body.action}").is_err());
    }

    #[test]
    fn authorizer_policies() {
        let allow = br#"{"principalId":"u1","policyDocument":{"Version":"2012-10-17","Statement":[{"Action":"execute-api:Invoke","Effect":"Allow","Resource":"*"}]},"context":{"userId":"u1"}}"#;
        assert_eq!(
            policy_decision(allow).unwrap(),
            json!({"userId": "u1", "principalId": "u1"})
        );
        let deny = br#"{"principalId":"u1","policyDocument":{"Statement":[{"Effect":"Deny","Action":"execute-api:Invoke","Resource":"*"}]}}"#;
        assert!(policy_decision(deny).is_none());
        assert!(policy_decision(b"garbage").is_none());
    }

    #[test]
    fn two_way_bodies() {
        assert_eq!(
            response_body(br#"{"statusCode":200,"body":"hi"}"#).as_deref(),
            Some("hi")
        );
        assert_eq!(response_body(br#"{"statusCode":200}"#), None);
        assert_eq!(response_body(br#"{"a":1}"#).as_deref(), Some(r#"{"a":1}"#));
    }
}
