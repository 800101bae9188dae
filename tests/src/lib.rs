//! The test harness: one AWS DynamoDB Local per test process (started on first use, killed with the
//! process), a fresh table per test created from template.yaml's definition, and requests shaped as
//! API Gateway HTTP API (payload v2.0) events fed through the same edge the Lambda functions use.

pub mod contract;
pub mod contract_ws;
pub mod push_service;
pub mod realtime;
pub mod tools;

use std::future::Future;
use std::sync::OnceLock;

use dynamodb_local::{DynamoDbLocal, Options};
use lambda_http::Body;
use parley::config::Config;
use parley::http::{ApiRequest, Reply};
use parley::{ApiError, AppContext};
use parley_template::{workspace_template_path, Template};
use serde_json::{json, Value};

/// URLs of this process's local stack (the real template, in memory), started on first use on a
/// runtime of its own, so every test's runtime can talk to it; it stops with the process.
pub struct Stack {
    pub http_url: String,
    pub ws_url: String,
    pub connections_url: String,
    pub dynamodb_endpoint: String,
    /// The web client's URL, when the stack serves it (`Options::web_port`).
    pub web_url: Option<String>,
    stats: std::sync::mpsc::SyncSender<StatsQuery>,
}

/// What [`Stack::call`] got back; a body that is not JSON reads as `null`.
pub struct HttpAnswer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

enum StatsQuery {
    Function(String, std::sync::mpsc::SyncSender<Option<local_stack::FunctionStats>>),
    Logs(String, std::sync::mpsc::SyncSender<Vec<String>>),
    Invoke(String, Value, std::sync::mpsc::SyncSender<Result<Value, String>>),
    Control(Box<dyn FnOnce(&local_stack::LocalStack) + Send>),
}

impl Stack {
    /// The counters of one function of the running stack.
    pub fn stats(&self, function: &str) -> Option<local_stack::FunctionStats> {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        self.stats.send(StatsQuery::Function(function.to_owned(), reply)).ok()?;
        answer.recv().ok().flatten()
    }

    /// Invokes a function of the running stack directly (blocking; call it from `spawn_blocking`).
    pub fn invoke(&self, function: &str, payload: Value) -> Result<Value, String> {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        self.stats
            .send(StatsQuery::Invoke(function.to_owned(), payload, reply))
            .map_err(|e| e.to_string())?;
        answer.recv().map_err(|e| e.to_string())?
    }

    /// One request to the stack's HTTP API, as a client sends it: JSON body, bearer token.
    pub async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> HttpAnswer {
        let mut request = reqwest::Client::new().request(
            method.parse().expect("an HTTP method"),
            format!("{}{path}", self.http_url),
        );
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the gateway answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("the gateway sends the body");
        // This client asks for no compression, so an encoded body breaks the contract too.
        let shown = match headers.get("content-encoding") {
            Some(encoding) => Value::String(format!(
                "<{} bytes encoded {encoding:?} though not asked for>",
                bytes.len()
            )),
            None if bytes.is_empty() => Value::Null,
            None => serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned())),
        };
        let content_type = headers.get("content-type").and_then(|v| v.to_str().ok());
        contract::check_http_response(method, path, status, content_type, &shown);
        contract::check_http_headers(method, path, status, &headers);
        HttpAnswer {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            headers,
        }
    }

    /// Runs `control` on the stack itself (pause event sources, read a queue, change faults); blocking,
    /// so call it from `spawn_blocking` or through [`Stack::with`].
    pub fn with_blocking<T: Send + 'static>(
        &self,
        control: impl FnOnce(&local_stack::LocalStack) -> T + Send + 'static,
    ) -> T {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        self.stats
            .send(StatsQuery::Control(Box::new(move |stack| {
                let _ = reply.send(control(stack));
            })))
            .expect("the stack thread is running");
        answer.recv().expect("the stack thread answers")
    }

    /// [`Stack::with_blocking`] from async code.
    pub async fn with<T: Send + 'static>(
        &'static self,
        control: impl FnOnce(&local_stack::LocalStack) -> T + Send + 'static,
    ) -> T {
        tokio::task::spawn_blocking(move || self.with_blocking(control))
            .await
            .expect("control thread")
    }

    /// Makes a user an operator (`role = admin`), as an operator does by hand (README "Operate"):
    /// there is no API that grants a role.
    pub async fn grant_admin(&self, user_id: &str) {
        let sdk = dynamodb_local::sdk_config(&self.dynamodb_endpoint).await;
        aws_sdk_dynamodb::Client::new(&sdk)
            .update_item()
            .table_name("ChatTable")
            .key(
                "PK",
                aws_sdk_dynamodb::types::AttributeValue::S(format!("USER#{user_id}")),
            )
            .key("SK", aws_sdk_dynamodb::types::AttributeValue::S("PROFILE".into()))
            .update_expression("SET #role = :admin")
            .expression_attribute_names("#role", "role")
            .expression_attribute_values(":admin", aws_sdk_dynamodb::types::AttributeValue::S("admin".into()))
            .send()
            .await
            .expect("DynamoDB Local takes the role");
    }

    /// A function's output is read apart from its answers, so what it printed while answering can
    /// arrive a moment after the answer did: waits up to `within` until `found` holds of its output
    /// lines, and returns them either way (the caller's assertions then say what is missing). The
    /// local stack's CloudWatch answers come from the same lines, so wait here before asking it too.
    pub async fn logs_when(
        &self,
        binary: &str,
        within: std::time::Duration,
        found: impl Fn(&[String]) -> bool,
    ) -> Vec<String> {
        let deadline = std::time::Instant::now() + within;
        loop {
            let lines = self.logs_of(binary);
            if found(&lines) || std::time::Instant::now() >= deadline {
                return lines;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// The output lines of one function (by binary name) so far.
    pub fn logs_of(&self, binary: &str) -> Vec<String> {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        if self.stats.send(StatsQuery::Logs(binary.to_owned(), reply)).is_err() {
            return Vec::new();
        }
        answer.recv().unwrap_or_default()
    }
}

/// Template parameters that turn every rate limit off.
pub const RATE_LIMITS_OFF: [(&str, &str); 4] = [
    ("RateLimitIpPerHour", "0"),
    ("RateLimitUserPerHour", "0"),
    ("RateLimitSensitivePerMinute", "0"),
    ("RateLimitGroupsPerHour", "0"),
];

pub fn stack() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    // Every test talks from 127.0.0.1: the rate limits have a stack of their own (e2e/operations.rs).
    // Groups are listed at every message (not once per 10 s) so list order can be checked at once.
    STACK.get_or_init(|| {
        let mut parameters = RATE_LIMITS_OFF.to_vec();
        parameters.push(("ListingGranularityMs", "0"));
        start_stack(&parameters)
    })
}

/// Starts a local stack of the real template with `parameters`, on a runtime of its own; it stops
/// with the process. Most tests share [`stack`]; a test that needs other parameters starts its own.
pub fn start_stack(parameters: &[(&str, &str)]) -> Stack {
    start_stack_with(parameters, |_| {})
}

/// [`start_stack`] with other options too (fault injection, a short queue visibility timeout, ...).
pub fn start_stack_with(
    parameters: &[(&str, &str)],
    configure: impl FnOnce(&mut local_stack::Options) + Send + 'static,
) -> Stack {
    let parameters: Vec<(String, String)> = parameters
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    {
        let (ready, started) = std::sync::mpsc::sync_channel(1);
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().expect("a runtime for the local stack");
            runtime.block_on(async move {
                let mut options = local_stack::Options::for_tests(local_stack::workspace_template());
                options.parameters.extend(parameters);
                configure(&mut options);
                let stack = match local_stack::LocalStack::start(options).await {
                    Ok(stack) => stack,
                    Err(e) => {
                        let _ = ready.send(Err(e.to_string()));
                        return;
                    }
                };
                let (stats, queries) = std::sync::mpsc::sync_channel::<StatsQuery>(16);
                let _ = ready.send(Ok(Stack {
                    http_url: stack.http_url(),
                    ws_url: stack.ws_url(),
                    connections_url: stack.connections_url(),
                    dynamodb_endpoint: stack.dynamodb_endpoint().unwrap_or_default().to_owned(),
                    web_url: stack.web_url(),
                    stats,
                }));
                let stack = std::sync::Arc::new(stack);
                let runtime = tokio::runtime::Handle::current();
                tokio::task::spawn_blocking(move || {
                    while let Ok(query) = queries.recv() {
                        match query {
                            StatsQuery::Function(function, reply) => {
                                let _ = reply.send(stack.stats(&function));
                            }
                            StatsQuery::Invoke(function, payload, reply) => {
                                let stack = std::sync::Arc::clone(&stack);
                                runtime.spawn(async move {
                                    let _ = reply.send(stack.invoke(&function, &payload).await);
                                });
                            }
                            StatsQuery::Control(control) => control(&stack),
                            StatsQuery::Logs(binary, reply) => {
                                let lines = stack
                                    .logs()
                                    .into_iter()
                                    .filter(|l| l.source == binary)
                                    .map(|l| l.text)
                                    .collect();
                                let _ = reply.send(lines);
                            }
                        }
                    }
                })
                .await
                .ok();
            });
        });
        match started.recv() {
            Ok(Ok(stack)) => stack,
            Ok(Err(e)) => panic!("the local stack did not start: {e}"),
            Err(_) => panic!("the local stack thread ended"),
        }
    }
}

/// The token secret every test context uses.
pub const TEST_TOKEN_SECRET: &str = "parley-test-secret-0123456789abcdef";
/// The VAPID secret of in-process tests (the key is derived from it: `parley::push::vapid`).
pub const TEST_VAPID_SECRET: &str = "parley-test-vapid-secret-0123456789abcdef";

static DYNAMODB: OnceLock<Result<DynamoDbLocal, String>> = OnceLock::new();

/// The endpoint of this process's DynamoDB Local, starting it on first call.
pub fn dynamodb_endpoint() -> String {
    let server = DYNAMODB.get_or_init(|| DynamoDbLocal::start(Options::default()).map_err(|e| e.to_string()));
    match server {
        Ok(server) => server.endpoint(),
        Err(e) => panic!("cannot run the tests without DynamoDB Local: {e}"),
    }
}

/// [`TestApp::call`] with another context (one from [`TestApp::another_container`]).
pub async fn call_on<H, Fut>(context: &'static AppContext, handler: H, request: TestRequest) -> TestResponse
where
    H: Fn(&'static AppContext, ApiRequest) -> Fut,
    Fut: Future<Output = Result<Reply, ApiError>>,
{
    call_event_on(context, handler, &request.to_event()).await
}

async fn call_event_on<H, Fut>(context: &'static AppContext, handler: H, event: &Value) -> TestResponse
where
    H: Fn(&'static AppContext, ApiRequest) -> Fut,
    Fut: Future<Output = Result<Reply, ApiError>>,
{
    let request = lambda_http::request::from_str(&event.to_string()).expect("an API Gateway v2 event");
    let response = TestResponse::from(parley::http::handle(context, handler, request).await);
    check_in_process(event, &response);
    response
}

/// One test's world: its own table and a context on it, as a function would build at cold start.
pub struct TestApp {
    pub context: &'static AppContext,
    pub client: aws_sdk_dynamodb::Client,
    pub table: String,
}

impl TestApp {
    pub async fn new() -> Self {
        let endpoint = tokio::task::spawn_blocking(dynamodb_endpoint)
            .await
            .expect("DynamoDB Local start-up thread");
        let sdk = dynamodb_local::sdk_config(&endpoint).await;
        let client = aws_sdk_dynamodb::Client::new(&sdk);
        let table = format!("test-{}", ulid::Ulid::generate());
        let definition = Template::load(&workspace_template_path())
            .and_then(|t| t.table())
            .expect("template.yaml defines the table");
        dynamodb_local::create_table(&client, &table, &definition)
            .await
            .expect("create the test table");
        let context = Self::context(&sdk, &table, &[]);
        TestApp { context, client, table }
    }

    /// A second container of the same deployment (same table and secret), with other settings: for
    /// example `CLOCK_SKEW_MS` for a container whose clock is wrong.
    pub async fn another_container(&self, settings: &[(&str, &str)]) -> &'static AppContext {
        let endpoint = tokio::task::spawn_blocking(dynamodb_endpoint)
            .await
            .expect("DynamoDB Local start-up thread");
        let sdk = dynamodb_local::sdk_config(&endpoint).await;
        Self::context(&sdk, &self.table, settings)
    }

    fn context(sdk: &aws_config::SdkConfig, table: &str, settings: &[(&str, &str)]) -> &'static AppContext {
        let config = Config::from_lookup(|name| match name {
            "TABLE_NAME" => Some(table.to_owned()),
            "TOKEN_SECRET" => Some(TEST_TOKEN_SECRET.to_owned()),
            "VAPID_SECRET" if !settings.iter().any(|(n, _)| *n == name) => Some(TEST_VAPID_SECRET.to_owned()),
            // In-process tests register their own Web Push services on 127.0.0.1.
            "PUSH_LOOPBACK_ENDPOINTS" if !settings.iter().any(|(n, _)| *n == name) => Some("allow".to_owned()),
            // Presigned URLs are made offline: in-process tests need a bucket name, not a server.
            "ATTACHMENTS_BUCKET" if !settings.iter().any(|(n, _)| *n == name) => Some("test-attachments".to_owned()),
            // In-process tests list every message (see `TestApp::list_activity`).
            "LISTING_GRANULARITY_MS" if !settings.iter().any(|(n, _)| *n == name) => Some("0".to_owned()),
            // Cost tests give one user hundreds of groups; the limit on new groups has tests of its own.
            "RATE_LIMIT_GROUPS_PER_HOUR" if !settings.iter().any(|(n, _)| *n == name) => Some("0".to_owned()),
            other => settings.iter().find(|(n, _)| *n == other).map(|(_, v)| (*v).to_owned()),
        })
        .expect("test configuration");
        // Leaked on purpose: a function's context lives for its whole process, and handlers take it as 'static.
        Box::leak(Box::new(AppContext::new(config, sdk)))
    }

    /// What the conversation worker does when the table's stream reports a change to the
    /// conversation's META (in process there is no stream): its activity onto the members' list keys.
    pub async fn list_activity(&self, conversation_id: &str) {
        let meta = self
            .context
            .store
            .get_conversation(conversation_id)
            .await
            .expect("the META reads")
            .expect("the conversation exists");
        parley::domain::upkeep::list_activity(self.context, &meta)
            .await
            .expect("the members' list keys move");
    }

    /// What the conversation worker does with the stream records of stored messages (in process there
    /// is no stream): every conversation's `lastMessage`, read markers, list keys, threads and mentions
    /// brought up to its messages (`upkeep::record_sent`, idempotent, so settling twice is harmless).
    /// Through a second context, so the caller's usage counters keep only what its requests did.
    pub async fn settle(&self) {
        let mut by_conversation: std::collections::BTreeMap<String, Vec<parley::store::MessageRecord>> =
            Default::default();
        for item in self.all_items().await {
            let is_message = item
                .get("SK")
                .and_then(|v| v.as_s().ok())
                .is_some_and(|sk| sk.starts_with("MSG#"));
            if is_message {
                let message: parley::store::MessageRecord = serde_dynamo::from_item(item).expect("a message item");
                by_conversation
                    .entry(message.conversation_id.clone())
                    .or_default()
                    .push(message);
            }
        }
        let worker = self.worker_context().await;
        for (conversation_id, messages) in by_conversation {
            parley::domain::upkeep::record_sent(worker, &conversation_id, &messages)
                .await
                .expect("the follow-ups of the sends are recorded");
        }
    }

    async fn worker_context(&self) -> &'static AppContext {
        static WORKERS: std::sync::Mutex<Vec<(String, &'static AppContext)>> = std::sync::Mutex::new(Vec::new());
        if let Some((_, context)) = WORKERS.lock().unwrap().iter().find(|(table, _)| *table == self.table) {
            return context;
        }
        let context = self.another_container(&[]).await;
        WORKERS.lock().unwrap().push((self.table.clone(), context));
        context
    }

    /// Runs `handler` on `request` through the same edge as the deployed function.
    pub async fn call<H, Fut>(&self, handler: H, request: TestRequest) -> TestResponse
    where
        H: Fn(&'static AppContext, ApiRequest) -> Fut,
        Fut: Future<Output = Result<Reply, ApiError>>,
    {
        self.call_event(handler, &request.to_event()).await
    }

    /// Runs `handler` on a raw API Gateway event (for the samples in events/).
    pub async fn call_event<H, Fut>(&self, handler: H, event: &Value) -> TestResponse
    where
        H: Fn(&'static AppContext, ApiRequest) -> Fut,
        Fut: Future<Output = Result<Reply, ApiError>>,
    {
        call_event_on(self.context, handler, event).await
    }

    /// Every item in the test's table (tests may scan; request paths never do).
    pub async fn all_items(&self) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        self.client
            .scan()
            .table_name(&self.table)
            .send()
            .await
            .expect("scan the test table")
            .items
            .unwrap_or_default()
    }

    /// The `(PK, SK)` of every item but the rate-limit counters, sorted.
    pub async fn all_keys(&self) -> Vec<(String, String)> {
        let mut keys: Vec<(String, String)> = self
            .all_items()
            .await
            .iter()
            .map(|item| {
                let s = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
                (s("PK"), s("SK"))
            })
            // Every request counts against its rate limits, bad ones included: the counters are not
            // what a request "wrote".
            .filter(|(pk, _)| !pk.starts_with("RATE#"))
            .collect();
        keys.sort();
        keys
    }

    /// Registers `username` (password `password-<username>`) and returns the 201 body.
    pub async fn register(&self, username: &str) -> Value {
        let response = self
            .call(
                parley::api::auth::register,
                TestRequest::new("POST", "/auth/register")
                    .json(json!({ "username": username, "password": format!("password-{username}") })),
            )
            .await;
        assert_eq!(response.status, 201, "register {username}: {}", response.body);
        response.body
    }
}

/// A registered user of a test.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: String,
    pub token: String,
}

impl TestApp {
    pub async fn user(&self, username: &str) -> TestUser {
        let signed_in = self.register(username).await;
        TestUser {
            id: signed_in["user"]["id"].as_str().unwrap().to_owned(),
            token: signed_in["accessToken"].as_str().unwrap().to_owned(),
        }
    }

    /// Creates a group owned by `owner`; returns its id.
    pub async fn group(&self, owner: &TestUser, name: &str, members: &[&TestUser]) -> String {
        let ids: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
        let response = self
            .call(
                parley::api::conversations::create,
                TestRequest::new("POST", "/conversations")
                    .bearer(&owner.token)
                    .json(json!({ "type": "group", "name": name, "memberIds": ids })),
            )
            .await;
        assert_eq!(response.status, 201, "create group: {}", response.body);
        response.body["id"].as_str().unwrap().to_owned()
    }

    /// Opens the direct conversation of two users; returns its id.
    pub async fn direct(&self, me: &TestUser, other: &TestUser) -> String {
        let response = self
            .call(
                parley::api::conversations::create,
                TestRequest::new("POST", "/conversations")
                    .bearer(&me.token)
                    .json(json!({ "type": "direct", "memberIds": [other.id] })),
            )
            .await;
        assert!(matches!(response.status, 200 | 201), "open direct: {}", response.body);
        response.body["id"].as_str().unwrap().to_owned()
    }

    /// Sends `body` (client id `client_id`); returns the message.
    pub async fn send(&self, sender: &TestUser, conversation: &str, client_id: &str, body: &str) -> Value {
        self.send_request(
            sender,
            conversation,
            json!({ "clientMessageId": client_id, "body": body }),
        )
        .await
    }

    /// Sends the message request `request` (a `POST /conversations/{id}/messages` body) and expects
    /// `201`; returns the message.
    pub async fn send_request(&self, sender: &TestUser, conversation: &str, request: Value) -> Value {
        let response = self
            .call(
                parley::api::messages::send,
                TestRequest::route(
                    "POST",
                    "/conversations/{conversationId}/messages",
                    &[("conversationId", conversation)],
                )
                .bearer(&sender.token)
                .json(request),
            )
            .await;
        assert_eq!(response.status, 201, "send: {}", response.body);
        response.body
    }

    /// Items whose sort key starts with `prefix`.
    pub async fn count_items(&self, sk_prefix: &str) -> usize {
        self.all_keys()
            .await
            .iter()
            .filter(|(_, sk)| sk.starts_with(sk_prefix))
            .count()
    }
}

/// An HTTP request, to be shaped into the event API Gateway would send.
#[derive(Debug, Clone)]
pub struct TestRequest {
    method: String,
    route_path: String,
    path: String,
    path_params: Vec<(String, String)>,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Option<String>,
}

impl TestRequest {
    /// A request to a route without path parameters.
    pub fn new(method: &str, path: &str) -> Self {
        TestRequest {
            method: method.to_owned(),
            route_path: path.to_owned(),
            path: path.to_owned(),
            path_params: Vec::new(),
            query: Vec::new(),
            headers: vec![("user-agent".into(), "parley-tests".into())],
            body: None,
        }
    }

    /// A request to `route` (e.g. `/users/{userId}`) with its parameters filled in.
    pub fn route(method: &str, route: &str, params: &[(&str, &str)]) -> Self {
        let mut path = route.to_owned();
        for (name, value) in params {
            path = path.replace(&format!("{{{name}}}"), value);
        }
        let mut request = Self::new(method, &path);
        request.route_path = route.to_owned();
        request.path_params = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        request
    }

    pub fn json(self, body: Value) -> Self {
        self.header("content-type", "application/json")
            .raw_body(&body.to_string())
    }

    pub fn raw_body(mut self, body: &str) -> Self {
        self.body = Some(body.to_owned());
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.headers.push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    pub fn query(mut self, name: &str, value: &str) -> Self {
        self.query.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The HTTP API payload v2.0 event API Gateway sends for this request.
    pub fn to_event(&self) -> Value {
        let raw_query = self
            .query
            .iter()
            .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let mut query = serde_json::Map::new();
        for (k, v) in &self.query {
            let joined = match query.get(k).and_then(Value::as_str) {
                Some(existing) => format!("{existing},{v}"),
                None => v.clone(),
            };
            query.insert(k.clone(), Value::String(joined));
        }
        let headers: serde_json::Map<String, Value> = self
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let route_key = format!("{} {}", self.method, self.route_path);
        let mut event = json!({
            "version": "2.0",
            "routeKey": route_key,
            "rawPath": self.path,
            "rawQueryString": raw_query,
            "headers": headers,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "parleytest",
                "domainName": "parleytest.execute-api.us-east-1.amazonaws.com",
                "domainPrefix": "parleytest",
                "http": {
                    "method": self.method,
                    "path": self.path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": "127.0.0.1",
                    "userAgent": "parley-tests"
                },
                "requestId": ulid::Ulid::generate().to_string(),
                "routeKey": route_key,
                "stage": "$default",
                "time": "25/Nov/2026:20:00:00 +0000",
                "timeEpoch": 1_795_636_800_000u64
            },
            "isBase64Encoded": false
        });
        if !query.is_empty() {
            event["queryStringParameters"] = Value::Object(query);
        }
        if !self.path_params.is_empty() {
            event["pathParameters"] = self
                .path_params
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect::<serde_json::Map<_, _>>()
                .into();
        }
        if let Some(body) = &self.body {
            event["body"] = Value::String(body.clone());
        }
        event
    }
}

/// Holds a response of the in-process edge to openapi.yaml ([`contract::check_http_response`]): the
/// event's route (its `routeKey`, when that is a path of the document, else its raw path) and query.
fn check_in_process(event: &Value, response: &TestResponse) {
    let method = event["requestContext"]["http"]["method"].as_str().unwrap_or("GET");
    let raw_path = event["rawPath"].as_str().unwrap_or("/");
    let route = event["routeKey"]
        .as_str()
        .and_then(|key| key.split_once(' '))
        .map(|(_, route)| route)
        .filter(|route| openapi_has_path(route))
        .unwrap_or(raw_path);
    let query = event["rawQueryString"].as_str().unwrap_or("");
    let target = if query.is_empty() {
        route.to_owned()
    } else {
        format!("{route}?{query}")
    };
    let content_type = response.headers.get("content-type").and_then(|v| v.to_str().ok());
    contract::check_http_response(method, &target, response.status, content_type, &response.body);
    contract::check_http_headers(method, &target, response.status, &response.headers);
}

fn openapi_has_path(template: &str) -> bool {
    contract::openapi()["paths"].get(template).is_some()
}

/// Query-string encoding as a browser sends it: everything but unreserved characters as `%XX`.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Debug)]
pub struct TestResponse {
    pub status: u16,
    pub headers: http::HeaderMap,
    /// The JSON body, or `Null` when there is none.
    pub body: Value,
}

impl TestResponse {
    /// `error.code` of an error body.
    pub fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("<no error code>")
    }

    /// Asserts an API error (docs/API-GUIDE.md "Errors"): this status and code, a message, and the request id.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!((self.status, self.error_code()), (status, code), "body: {}", self.body);
        assert!(
            self.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
            "an error has a message: {}",
            self.body
        );
        assert!(
            self.body["requestId"].is_string(),
            "an error names the request: {}",
            self.body
        );
    }
}

impl From<lambda_http::Response<Body>> for TestResponse {
    fn from(response: lambda_http::Response<Body>) -> Self {
        let (parts, body) = response.into_parts();
        let body = match body {
            Body::Empty => Value::Null,
            Body::Text(text) => serde_json::from_str(&text).unwrap_or(Value::String(text)),
            Body::Binary(bytes) => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            _ => Value::Null,
        };
        TestResponse {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        }
    }
}

/// A user written straight to the store, without a password: for benchmarks that need hundreds
/// (registering them through argon2 would only measure argon2). Returns the id.
pub async fn silent_user(store: &parley::store::Store, username: &str) -> String {
    let id = ulid::Ulid::generate().to_string();
    let record = parley::store::UserRecord {
        id: id.clone(),
        username: username.to_owned(),
        display_name: username.to_owned(),
        status: "online".into(),
        status_text: None,
        wallet_address: None,
        password_hash: None,
        last_seen_at: None,
        created_at: parley::time::rfc3339(std::time::SystemTime::now()),
        role: None,
        who_can_add_me: None,
    };
    store.create_user(&record).await.expect("a silent user");
    id
}

/// What follows a stored message (the conversation's `lastMessage`, read markers, unread and mention
/// counts, list keys, threads' `lastReplyAt`) is the conversation worker's, from the table's stream: it
/// lands a moment after the send's answer. How long a test waits for it at most.
pub const FOLLOW_UP_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

/// Calls `probe` until it answers `expected` or [`FOLLOW_UP_WITHIN`] has passed, and returns its last
/// answer (the caller asserts it, so a failure shows what was seen).
pub async fn eventually<T, F, Fut>(expected: &T, mut probe: F) -> T
where
    T: PartialEq,
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
{
    let deadline = std::time::Instant::now() + FOLLOW_UP_WITHIN;
    loop {
        let seen = probe().await;
        if seen == *expected || std::time::Instant::now() > deadline {
            return seen;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
