//! The HTTP API: routes from the template, each request turned into an HTTP API payload v2.0 event,
//! each function result turned back into an HTTP response, with API Gateway's own error answers.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Map, Value};

use crate::ids;
use crate::logs::LogBook;
use crate::runtime::{FunctionPool, InvokeError};
use crate::url::{percent_decode, query_parameters};

/// API Gateway's request payload limit for HTTP APIs.
pub const MAX_REQUEST_BYTES: usize = 10 * 1024 * 1024;

/// HTTP APIs' maximum (and default) integration timeout.
pub const INTEGRATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    Greedy(String),
}

pub struct HttpRoute {
    method: String,
    path: String,
    segments: Vec<Segment>,
    pub function: Arc<FunctionPool>,
    pub authorizer: Option<RouteAuthorizer>,
}

/// A Lambda authorizer (payload format 2.0) in front of a route.
pub struct RouteAuthorizer {
    pub function: Arc<FunctionPool>,
    pub identity_headers: Vec<String>,
    pub simple_responses: bool,
}

impl HttpRoute {
    pub fn new(method: &str, path: &str, function: Arc<FunctionPool>) -> Self {
        let segments = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => match name.strip_suffix('+') {
                    Some(greedy) => Segment::Greedy(greedy.to_owned()),
                    None => Segment::Param(name.to_owned()),
                },
                None => Segment::Literal(s.to_owned()),
            })
            .collect();
        HttpRoute {
            method: method.to_ascii_uppercase(),
            path: path.to_owned(),
            segments,
            function,
            authorizer: None,
        }
    }

    pub fn route_key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// Literal segments beat parameters, parameters beat a greedy tail; a method beats `ANY`.
    fn specificity(&self) -> (Vec<u8>, bool) {
        let ranks = self
            .segments
            .iter()
            .map(|s| match s {
                Segment::Literal(_) => 3,
                Segment::Param(_) => 2,
                Segment::Greedy(_) => 1,
            })
            .collect();
        (ranks, self.method != "ANY")
    }

    fn matches(&self, method: &str, path: &str) -> Option<BTreeMap<String, String>> {
        if self.method != "ANY" && self.method != method {
            return None;
        }
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut params = BTreeMap::new();
        for (i, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Literal(literal) => {
                    if parts.get(i) != Some(&literal.as_str()) {
                        return None;
                    }
                }
                Segment::Param(name) => {
                    let part = parts.get(i)?;
                    params.insert(name.clone(), percent_decode(part));
                }
                Segment::Greedy(name) => {
                    if parts.len() <= i {
                        return None;
                    }
                    params.insert(name.clone(), percent_decode(&parts[i..].join("/")));
                    return Some(params);
                }
            }
        }
        (parts.len() == self.segments.len()).then_some(params)
    }
}

pub struct HttpRouter {
    routes: Vec<HttpRoute>,
}

impl HttpRouter {
    pub fn new(mut routes: Vec<HttpRoute>) -> Self {
        routes.sort_by_key(|route| std::cmp::Reverse(route.specificity()));
        HttpRouter { routes }
    }

    pub fn route_keys(&self) -> Vec<String> {
        self.routes.iter().map(HttpRoute::route_key).collect()
    }

    fn find(&self, method: &str, path: &str) -> Option<(&HttpRoute, BTreeMap<String, String>)> {
        self.routes
            .iter()
            .find_map(|route| route.matches(method, path).map(|params| (route, params)))
    }
}

type HttpResponse = Response<Full<Bytes>>;

fn gateway_error(status: StatusCode, message: &str, request_id: &str) -> HttpResponse {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("apigw-requestid", request_id)
        .body(Full::new(Bytes::from(json!({ "message": message }).to_string())))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// Is this body text API Gateway passes through as is (else it is base64-encoded)?
fn is_text(content_type: Option<&str>, body: &[u8]) -> bool {
    let textual = match content_type.map(|c| c.split(';').next().unwrap_or("").trim().to_ascii_lowercase()) {
        None => true,
        Some(ct) => {
            ct.starts_with("text/")
                || ct.ends_with("+json")
                || ct.ends_with("+xml")
                || [
                    "application/json",
                    "application/xml",
                    "application/javascript",
                    "application/x-www-form-urlencoded",
                ]
                .contains(&ct.as_str())
        }
    };
    textual && std::str::from_utf8(body).is_ok()
}

pub struct HttpGateway {
    pub router: HttpRouter,
    pub logs: Arc<LogBook>,
    /// The HTTP API's `CorsConfiguration`: API Gateway answers preflights and adds the headers.
    pub cors: Option<crate::cors::Cors>,
    /// How long API Gateway waits for the integration (HTTP APIs: at most 30 s) before it answers 504;
    /// the function itself runs on to its own end, as Lambda's does.
    pub integration_timeout: std::time::Duration,
}

impl HttpGateway {
    pub async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> Result<HttpResponse, Infallible> {
        let Some(cors) = self.cors.clone() else {
            return self.route(request, peer).await;
        };
        if let Some(preflight) = cors.preflight(request.method().as_str(), request.headers()) {
            return Ok(preflight);
        }
        let origin = request
            .headers()
            .get("origin")
            .and_then(|o| o.to_str().ok())
            .map(str::to_owned);
        let mut response = self.route(request, peer).await?;
        cors.decorate(origin.as_deref(), response.headers_mut());
        Ok(response)
    }

    async fn route(self: Arc<Self>, request: Request<Incoming>, peer: SocketAddr) -> Result<HttpResponse, Infallible> {
        let request_id = ids::request_id();
        let method = request.method().as_str().to_owned();
        let raw_path = request.uri().path().to_owned();
        let raw_query = request.uri().query().unwrap_or("").to_owned();
        let Some((route, path_params)) = self.router.find(&method, &raw_path) else {
            return Ok(gateway_error(StatusCode::NOT_FOUND, "Not Found", &request_id));
        };
        let (parts, body) = request.into_parts();
        let body = match Limited::new(body, MAX_REQUEST_BYTES).collect().await {
            Ok(body) => body.to_bytes(),
            Err(_) => {
                return Ok(gateway_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "Request Entity Too Large",
                    &request_id,
                ))
            }
        };
        let mut event = v2_event(
            &parts,
            &raw_path,
            &raw_query,
            route,
            &path_params,
            &body,
            peer,
            &request_id,
        );
        if let Some(authorizer) = &route.authorizer {
            match self.authorize(authorizer, &event).await {
                Ok(context) => event["requestContext"]["authorizer"] = json!({ "lambda": context }),
                Err(refusal) => return Ok(refusal(&request_id)),
            }
        }
        let function = Arc::clone(&route.function);
        let invocation = tokio::spawn(async move { function.invoke(Bytes::from(event.to_string())).await });
        let result = match tokio::time::timeout(self.integration_timeout, invocation).await {
            Ok(Ok(result)) => result,
            Ok(Err(task)) => Err(InvokeError::Crashed(format!("the invocation task failed: {task}"))),
            Err(_) => {
                self.logs.gateway(&format!(
                    "{} {raw_path}: no answer within the integration timeout of {:?}",
                    route.route_key(),
                    self.integration_timeout
                ));
                return Ok(gateway_error(
                    StatusCode::GATEWAY_TIMEOUT,
                    "Endpoint request timed out",
                    &request_id,
                ));
            }
        };
        Ok(match result.map(|payload| v2_response(&payload, &request_id)) {
            Ok(Ok(response)) => response,
            Ok(Err(problem)) => {
                self.logs.gateway(&format!(
                    "{} {raw_path}: malformed Lambda response: {problem}",
                    route.route_key()
                ));
                gateway_error(StatusCode::BAD_GATEWAY, "Internal Server Error", &request_id)
            }
            Err(InvokeError::Timeout) => gateway_error(StatusCode::BAD_GATEWAY, "Internal Server Error", &request_id),
            // Lambda refused the event (a body under the HTTP API's 10 MB but over Lambda's 6 MB).
            Err(InvokeError::PayloadTooLarge) => {
                gateway_error(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large", &request_id)
            }
            Err(InvokeError::Throttled) => {
                gateway_error(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests", &request_id)
            }
            Err(_) => gateway_error(StatusCode::BAD_GATEWAY, "Internal Server Error", &request_id),
        })
    }
}

type Refusal = fn(&str) -> HttpResponse;

impl HttpGateway {
    /// Runs the route's Lambda authorizer as HTTP APIs do: a missing identity header is 401 without a
    /// call, a "no" is 403, a failing authorizer is 500; a "yes" gives the context for the event.
    async fn authorize(&self, authorizer: &RouteAuthorizer, event: &Value) -> Result<Value, Refusal> {
        let unauthorized: Refusal = |id| gateway_error(StatusCode::UNAUTHORIZED, "Unauthorized", id);
        let forbidden: Refusal = |id| gateway_error(StatusCode::FORBIDDEN, "Forbidden", id);
        let failed: Refusal = |id| gateway_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error", id);
        let mut identity = Vec::new();
        for header in &authorizer.identity_headers {
            match event["headers"]
                .get(header.to_ascii_lowercase())
                .and_then(Value::as_str)
            {
                Some(value) if !value.is_empty() => identity.push(json!(value)),
                _ => return Err(unauthorized),
            }
        }
        let mut request = event.clone();
        if let Some(fields) = request.as_object_mut() {
            fields.remove("body");
            fields.remove("isBase64Encoded");
        }
        request["type"] = json!("REQUEST");
        request["identitySource"] = json!(identity);
        request["routeArn"] = json!(format!(
            "arn:aws:execute-api:{}:{}:local/$default/{}{}",
            ids::REGION,
            ids::ACCOUNT_ID,
            event["requestContext"]["http"]["method"].as_str().unwrap_or("GET"),
            event["rawPath"].as_str().unwrap_or("/")
        ));
        let payload = match authorizer.function.invoke(Bytes::from(request.to_string())).await {
            Ok(payload) => payload,
            Err(e) => {
                self.logs.gateway(&format!("authorizer failed: {e}"));
                return Err(failed);
            }
        };
        let answer: Value = serde_json::from_slice(&payload).map_err(|_| failed)?;
        let context = if authorizer.simple_responses {
            match answer.get("isAuthorized").and_then(Value::as_bool) {
                Some(true) => answer.get("context").cloned().unwrap_or_else(|| json!({})),
                Some(false) => return Err(forbidden),
                None => return Err(failed),
            }
        } else {
            crate::websocket::policy_decision(&payload).ok_or(forbidden)?
        };
        Ok(context)
    }
}

#[allow(clippy::too_many_arguments)]
fn v2_event(
    parts: &hyper::http::request::Parts,
    raw_path: &str,
    raw_query: &str,
    route: &HttpRoute,
    path_params: &BTreeMap<String, String>,
    body: &[u8],
    peer: SocketAddr,
    request_id: &str,
) -> Value {
    let mut headers: Map<String, Value> = Map::new();
    let mut cookies: Vec<Value> = Vec::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name == hyper::header::COOKIE {
            cookies.extend(
                value
                    .split(';')
                    .map(|c| c.trim())
                    .filter(|c| !c.is_empty())
                    .map(|c| json!(c)),
            );
            continue;
        }
        let key = name.as_str().to_ascii_lowercase();
        let joined = match headers.get(&key).and_then(Value::as_str) {
            Some(existing) => format!("{existing},{value}"),
            None => value,
        };
        headers.insert(key, Value::String(joined));
    }
    let host = headers
        .get("host")
        .and_then(Value::as_str)
        .unwrap_or("127.0.0.1")
        .to_owned();
    let user_agent = headers
        .get("user-agent")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let now = SystemTime::now();
    let route_key = route.route_key();
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": ids::ACCOUNT_ID,
            "apiId": "local",
            "domainName": host,
            "domainPrefix": host.split('.').next().unwrap_or("local"),
            "http": {
                "method": parts.method.as_str(),
                "path": raw_path,
                "protocol": format!("{:?}", parts.version),
                "sourceIp": peer.ip().to_string(),
                "userAgent": user_agent,
            },
            "requestId": request_id,
            "routeKey": route_key,
            "stage": "$default",
            "time": ids::clf_time(now),
            "timeEpoch": ids::epoch_millis(now),
        },
        "isBase64Encoded": false,
    });
    if !cookies.is_empty() {
        event["cookies"] = Value::Array(cookies);
    }
    let query = query_parameters(raw_query);
    if !query.is_empty() {
        event["queryStringParameters"] = Value::Object(query);
    }
    if !path_params.is_empty() {
        event["pathParameters"] = json!(path_params);
    }
    if !body.is_empty() {
        let content_type = parts
            .headers
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        if is_text(content_type, body) {
            event["body"] = json!(String::from_utf8_lossy(body));
        } else {
            event["body"] = json!(STANDARD.encode(body));
            event["isBase64Encoded"] = json!(true);
        }
    }
    event
}

/// Turns a function's result into the HTTP response, by the payload format 2.0 rules: an object with
/// `statusCode` is a structured response; any other JSON is a 200 with that JSON as the body.
fn v2_response(payload: &[u8], request_id: &str) -> Result<HttpResponse, String> {
    let value: Value = serde_json::from_slice(payload).map_err(|e| format!("not JSON ({e})"))?;
    let mut builder = Response::builder().header("apigw-requestid", request_id);
    let structured = value.as_object().filter(|o| o.contains_key("statusCode"));
    let Some(object) = structured else {
        return builder
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(value.to_string())))
            .map_err(|e| e.to_string());
    };
    let status = object["statusCode"]
        .as_u64()
        .and_then(|s| StatusCode::from_u16(s as u16).ok())
        .ok_or("statusCode is not an HTTP status")?;
    builder = builder.status(status);
    let header_text = |v: &Value| match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(format!("header value {other} is not a string")),
    };
    let append = |builder: hyper::http::response::Builder, name: &str, value: String| -> Result<_, String> {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| format!("header {name:?}: {e}"))?;
        let value = HeaderValue::from_str(&value).map_err(|e| format!("header {name}: {e}"))?;
        Ok(builder.header(name, value))
    };
    if let Some(headers) = object.get("headers").and_then(Value::as_object) {
        for (name, value) in headers {
            builder = append(builder, name, header_text(value)?)?;
        }
    }
    if let Some(headers) = object.get("multiValueHeaders").and_then(Value::as_object) {
        for (name, values) in headers {
            for value in values.as_array().ok_or("multiValueHeaders values must be lists")? {
                builder = append(builder, name, header_text(value)?)?;
            }
        }
    }
    if let Some(cookies) = object.get("cookies").and_then(Value::as_array) {
        for cookie in cookies {
            builder = append(builder, "set-cookie", header_text(cookie)?)?;
        }
    }
    let body = match object.get("body") {
        None | Some(Value::Null) => Bytes::new(),
        Some(Value::String(text)) if object.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) => {
            Bytes::from(STANDARD.decode(text).map_err(|e| format!("body is not base64: {e}"))?)
        }
        Some(Value::String(text)) => Bytes::from(text.clone()),
        Some(other) => Bytes::from(other.to_string()),
    };
    builder.body(Full::new(body)).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: &str, path: &str) -> HttpRoute {
        HttpRoute {
            method: method.into(),
            path: path.into(),
            segments: HttpRoute::new(method, path, dummy_pool()).segments,
            function: dummy_pool(),
            authorizer: None,
        }
    }

    fn dummy_pool() -> Arc<FunctionPool> {
        FunctionPool::new(
            crate::runtime::FunctionSpec {
                logical_id: "F".into(),
                binary: "f".into(),
                executable: "/nonexistent".into(),
                arguments: vec![],
                environment: vec![],
                timeout: std::time::Duration::from_secs(1),
                memory_mb: 128,
            },
            1,
            None,
            Arc::new(LogBook::new(false)),
            Arc::default(),
        )
    }

    #[test]
    fn the_most_specific_route_wins() {
        let router = HttpRouter::new(vec![
            route("GET", "/users/{userId}"),
            route("GET", "/users/me"),
            route("ANY", "/files/{proxy+}"),
            route("GET", "/files/{proxy+}"),
            route("GET", "/users"),
        ]);
        let key = |m: &str, p: &str| router.find(m, p).map(|(r, params)| (r.route_key(), params));
        assert_eq!(key("GET", "/users/me").unwrap().0, "GET /users/me");
        let (k, params) = key("GET", "/users/01ABC").unwrap();
        assert_eq!(
            (k.as_str(), params["userId"].as_str()),
            ("GET /users/{userId}", "01ABC")
        );
        assert_eq!(key("GET", "/users").unwrap().0, "GET /users");
        let (k, params) = key("GET", "/files/a/b%20c").unwrap();
        assert_eq!((k.as_str(), params["proxy"].as_str()), ("GET /files/{proxy+}", "a/b c"));
        assert_eq!(key("DELETE", "/files/x").unwrap().0, "ANY /files/{proxy+}");
        assert!(
            key("GET", "/files").is_none(),
            "a greedy parameter needs at least one segment"
        );
        assert!(key("POST", "/users/me").is_none());
        assert!(key("GET", "/users/me/extra").is_none());
    }

    #[test]
    fn query_strings_decode_like_api_gateway() {
        let q = query_parameters("a=1&b=x+y&a=2&c=%2C&empty=&flag");
        assert_eq!(q["a"], "1,2");
        assert_eq!(q["b"], "x y");
        assert_eq!(q["c"], ",");
        assert_eq!(q["empty"], "");
        assert_eq!(q["flag"], "");
    }

    #[test]
    fn responses_follow_payload_format_2() {
        let plain = v2_response(br#"{"hello":"world"}"#, "r").unwrap();
        assert_eq!(plain.status(), 200);
        assert_eq!(plain.headers()["content-type"], "application/json");

        let structured = v2_response(
            br#"{"statusCode":201,"headers":{"x-a":"1","x-n":2},"multiValueHeaders":{"x-m":["p","q"]},"cookies":["a=1","b=2"],"body":"AAEC","isBase64Encoded":true}"#,
            "r",
        )
        .unwrap();
        assert_eq!(structured.status(), 201);
        assert_eq!(structured.headers()["x-n"], "2");
        assert_eq!(structured.headers().get_all("x-m").iter().count(), 2);
        assert_eq!(structured.headers().get_all("set-cookie").iter().count(), 2);

        assert!(v2_response(b"not json", "r").is_err());
        assert!(v2_response(br#"{"statusCode":"abc"}"#, "r").is_err());
        assert!(v2_response(br#"{"statusCode":200,"body":"%%%","isBase64Encoded":true}"#, "r").is_err());
    }
}
