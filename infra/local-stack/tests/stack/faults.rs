//! Fault injection over real sockets: the DynamoDB fault proxy driven by the real AWS SDK against
//! DynamoDB Local (so each fault parses into the error the SDK would give for DynamoDB's own), and the
//! stack's `/@faults` harness API and @connections faults with the fixture functions.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::get_item::GetItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_get_items::TransactGetItemsError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, Get, KeySchemaElement, KeyType, Put, ScalarAttributeType,
    TransactGetItem, TransactWriteItem,
};
use aws_sdk_dynamodb::Client;
use dynamodb_local::DynamoDbLocal;
use futures_util::{SinkExt, StreamExt};
use local_stack::faults::{ConnectionFaults, DynamoDbFaults};
use local_stack::{FaultConfig, FaultCounters, FaultInjector, FaultProxy, LocalStack, Options};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

static DYNAMODB: OnceLock<DynamoDbLocal> = OnceLock::new();

/// This test process's DynamoDB Local (killed with the process).
async fn dynamodb_endpoint() -> String {
    tokio::task::spawn_blocking(|| {
        DYNAMODB
            .get_or_init(|| DynamoDbLocal::start(dynamodb_local::Options::default()).expect("DynamoDB Local starts"))
            .endpoint()
    })
    .await
    .unwrap()
}

/// A client with no retries (unless given), so each call is one request and its error is the fault's.
async fn sdk_client(endpoint: &str, retry: RetryConfig, attempt_timeout: Duration) -> Client {
    let sdk = dynamodb_local::sdk_config(endpoint).await;
    let config = aws_sdk_dynamodb::config::Builder::from(&sdk)
        .retry_config(retry)
        .timeout_config(
            TimeoutConfig::builder()
                .operation_attempt_timeout(attempt_timeout)
                .build(),
        )
        .build();
    Client::from_conf(config)
}

async fn direct_client() -> Client {
    sdk_client(
        &dynamodb_endpoint().await,
        RetryConfig::disabled(),
        Duration::from_secs(10),
    )
    .await
}

/// A fresh table with a string hash key `pk`.
async fn table(direct: &Client) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!("faults-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst));
    direct
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("create the table");
    name
}

struct Rig {
    faults: Arc<FaultInjector>,
    proxy: FaultProxy,
    direct: Client,
    table: String,
}

impl Rig {
    async fn new(config: FaultConfig) -> Rig {
        let faults = Arc::new(FaultInjector::new(config).unwrap());
        let proxy = FaultProxy::start(&dynamodb_endpoint().await, Arc::clone(&faults))
            .await
            .unwrap();
        let direct = direct_client().await;
        let table = table(&direct).await;
        Rig {
            faults,
            proxy,
            direct,
            table,
        }
    }

    async fn through(&self) -> Client {
        sdk_client(&self.proxy.endpoint(), RetryConfig::disabled(), Duration::from_secs(10)).await
    }

    fn set(&self, update: impl FnOnce(&mut FaultConfig)) {
        let mut config = self.faults.config();
        update(&mut config);
        self.faults.set_config(config).unwrap();
    }

    fn counters(&self) -> FaultCounters {
        self.faults.counters()
    }

    async fn put(&self, client: &Client, pk: &str) -> Result<(), SdkError<PutItemError>> {
        client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(pk.to_owned()))
            .item("n", AttributeValue::N("1".to_owned()))
            .send()
            .await
            .map(|_| ())
    }

    /// Whether the item is in DynamoDB Local, asked directly.
    async fn stored(&self, pk: &str) -> bool {
        self.direct
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
            .is_some()
    }

    fn transact_puts(
        &self,
        client: &Client,
        keys: &[&str],
    ) -> aws_sdk_dynamodb::operation::transact_write_items::builders::TransactWriteItemsFluentBuilder {
        let mut request = client.transact_write_items();
        for key in keys {
            request = request.transact_items(
                TransactWriteItem::builder()
                    .put(
                        Put::builder()
                            .table_name(&self.table)
                            .item("pk", AttributeValue::S((*key).to_owned()))
                            .build()
                            .unwrap(),
                    )
                    .build(),
            );
        }
        request
    }
}

fn shares(update: impl FnOnce(&mut DynamoDbFaults)) -> FaultConfig {
    let mut config = FaultConfig {
        seed: 11,
        ..FaultConfig::default()
    };
    update(&mut config.dynamodb);
    config
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn at_share_zero_the_proxy_passes_everything_untouched() {
    let rig = Rig::new(FaultConfig::default()).await;
    let client = rig.through().await;
    client
        .put_item()
        .table_name(&rig.table)
        .item("pk", AttributeValue::S("a".into()))
        .item("text", AttributeValue::S("héllo ✓".into()))
        .item("blob", AttributeValue::B(vec![0u8, 1, 255].into()))
        .send()
        .await
        .expect("PutItem through the proxy");
    let item = client
        .get_item()
        .table_name(&rig.table)
        .key("pk", AttributeValue::S("a".into()))
        .send()
        .await
        .expect("GetItem through the proxy")
        .item
        .expect("the item");
    assert_eq!(item["text"], AttributeValue::S("héllo ✓".into()));
    assert_eq!(item["blob"], AttributeValue::B(vec![0u8, 1, 255].into()));
    rig.transact_puts(&client, &["b", "c"])
        .send()
        .await
        .expect("a transaction");
    assert!(rig.stored("b").await && rig.stored("c").await);

    // DynamoDB Local's own errors come through as they are.
    let failed = client
        .put_item()
        .table_name(&rig.table)
        .item("pk", AttributeValue::S("a".into()))
        .condition_expression("attribute_not_exists(pk)")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        failed.as_service_error(),
        Some(PutItemError::ConditionalCheckFailedException(_))
    ));
    let missing = client
        .describe_table()
        .table_name("no-such-table")
        .send()
        .await
        .unwrap_err();
    assert!(missing
        .as_service_error()
        .is_some_and(|e| e.is_resource_not_found_exception()));

    let counters = rig.counters().dynamodb;
    assert_eq!(counters.requests, 5);
    assert_eq!(counters.passed, 5);
    assert_eq!(counters.upstream_errors, 0);
}

#[tokio::test]
async fn throttling_parses_as_the_sdk_throttling_errors_and_is_retried() {
    let rig = Rig::new(shares(|d| d.throttle = 1.0)).await;
    let client = rig.through().await;
    let (mut throttling, mut provisioned) = (0, 0);
    for i in 0..12 {
        let error = rig.put(&client, &format!("t{i}")).await.unwrap_err();
        match error.as_service_error() {
            Some(PutItemError::ThrottlingException(e)) => {
                assert_eq!(e.message(), Some("Rate of requests exceeds the allowed throughput."));
                throttling += 1;
            }
            Some(PutItemError::ProvisionedThroughputExceededException(e)) => {
                assert!(e
                    .message()
                    .unwrap()
                    .starts_with("The level of configured provisioned throughput"));
                provisioned += 1;
            }
            other => panic!("not a throttling error: {other:?}"),
        }
        assert_eq!(error.raw_response().map(|r| r.status().as_u16()), Some(400));
    }
    assert!(throttling > 0 && provisioned > 0, "{throttling} {provisioned}");
    let read = client
        .get_item()
        .table_name(&rig.table)
        .key("pk", AttributeValue::S("t0".into()))
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        read.as_service_error(),
        Some(GetItemError::ThrottlingException(_) | GetItemError::ProvisionedThroughputExceededException(_))
    ));
    assert!(!rig.stored("t0").await, "a throttled write is not applied");
    assert_eq!(rig.counters().dynamodb.throttle, 13);

    // The SDK takes them for throttling: with retries, each attempt reaches the proxy.
    let retrying = sdk_client(
        &rig.proxy.endpoint(),
        RetryConfig::standard()
            .with_max_attempts(3)
            .with_initial_backoff(Duration::from_millis(1)),
        Duration::from_secs(10),
    )
    .await;
    let before = rig.counters().dynamodb.requests;
    assert!(rig.put(&retrying, "retried").await.is_err());
    assert_eq!(rig.counters().dynamodb.requests - before, 3);
}

#[tokio::test]
async fn conflicts_cancel_transactions_with_one_reason_per_item() {
    let rig = Rig::new(shares(|d| d.conflict = 1.0)).await;
    let client = rig.through().await;
    let mut conflicted_at = BTreeSet::new();
    for round in 0..8 {
        let keys = [format!("x{round}"), format!("y{round}"), format!("z{round}")];
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let error = rig.transact_puts(&client, &keys).send().await.unwrap_err();
        let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) = error.as_service_error() else {
            panic!("not a cancelled transaction: {error:?}");
        };
        let codes: Vec<&str> = cancelled
            .cancellation_reasons()
            .iter()
            .map(|r| r.code().unwrap())
            .collect();
        assert_eq!(codes.len(), 3, "one reason per item");
        assert_eq!(codes.iter().filter(|c| **c == "TransactionConflict").count(), 1);
        assert_eq!(codes.iter().filter(|c| **c == "None").count(), 2);
        let at = codes.iter().position(|c| *c == "TransactionConflict").unwrap();
        assert_eq!(
            cancelled.cancellation_reasons()[at].message(),
            Some("Transaction is ongoing for the item")
        );
        assert_eq!(
            cancelled.message(),
            Some(
                format!(
                    "Transaction cancelled, please refer cancellation reasons for specific reasons [{}]",
                    codes.join(", ")
                )
                .as_str()
            )
        );
        conflicted_at.insert(at);
        for key in keys {
            assert!(!rig.stored(key).await, "a cancelled transaction writes nothing");
        }
    }
    assert!(conflicted_at.len() > 1, "the conflicting item varies");

    let read = client
        .transact_get_items()
        .transact_items(
            TransactGetItem::builder()
                .get(
                    Get::builder()
                        .table_name(&rig.table)
                        .key("pk", AttributeValue::S("x0".into()))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    let Some(TransactGetItemsError::TransactionCanceledException(cancelled)) = read.as_service_error() else {
        panic!("not a cancelled transaction: {read:?}");
    };
    assert_eq!(cancelled.cancellation_reasons().len(), 1);

    let single = rig.put(&client, "single").await.unwrap_err();
    let Some(PutItemError::TransactionConflictException(e)) = single.as_service_error() else {
        panic!("not a transaction conflict: {single:?}");
    };
    assert_eq!(e.message(), Some("Transaction is ongoing for the item"));
    assert!(!rig.stored("single").await);

    client
        .get_item()
        .table_name(&rig.table)
        .key("pk", AttributeValue::S("x0".into()))
        .send()
        .await
        .expect("a plain read cannot conflict, so it passes");
    let counters = rig.counters().dynamodb;
    assert_eq!((counters.conflict, counters.passed), (10, 1));
}

#[tokio::test]
async fn internal_errors_before_and_after_the_write() {
    let rig = Rig::new(shares(|d| d.internal = 1.0)).await;
    let client = rig.through().await;
    let error = rig.put(&client, "before").await.unwrap_err();
    let Some(PutItemError::InternalServerError(e)) = error.as_service_error() else {
        panic!("not an internal server error: {error:?}");
    };
    assert_eq!(e.message(), Some("Internal server error"));
    assert_eq!(error.raw_response().map(|r| r.status().as_u16()), Some(500));
    assert!(!rig.stored("before").await, "nothing was forwarded");

    rig.set(|c| {
        c.dynamodb = DynamoDbFaults {
            internal_after_write: 1.0,
            ..DynamoDbFaults::default()
        }
    });
    let error = rig.put(&client, "after").await.unwrap_err();
    assert!(matches!(
        error.as_service_error(),
        Some(PutItemError::InternalServerError(_))
    ));
    assert!(rig.stored("after").await, "the write was applied all the same");
    let error = rig
        .transact_puts(&client, &["after-1", "after-2"])
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        error.as_service_error(),
        Some(TransactWriteItemsError::InternalServerError(_))
    ));
    assert!(rig.stored("after-1").await && rig.stored("after-2").await);
    let counters = rig.counters().dynamodb;
    assert_eq!((counters.internal, counters.internal_after_write), (1, 2));
}

#[tokio::test]
async fn timeouts_hold_until_the_client_gives_up() {
    let rig = Rig::new(shares(|d| d.timeout = 1.0)).await;
    let impatient = sdk_client(
        &rig.proxy.endpoint(),
        RetryConfig::disabled(),
        Duration::from_millis(300),
    )
    .await;
    let started = Instant::now();
    let error = rig.put(&impatient, "held").await.unwrap_err();
    assert!(matches!(error, SdkError::TimeoutError(_)), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    eventually("the held request is let go once its client gives up", || {
        rig.counters().dynamodb.held == 0
    })
    .await;
    assert!(!rig.stored("held").await, "a held request was not forwarded");

    rig.set(|c| {
        c.dynamodb = DynamoDbFaults {
            timeout_after_write: 1.0,
            ..DynamoDbFaults::default()
        }
    });
    let error = rig.put(&impatient, "written").await.unwrap_err();
    assert!(matches!(error, SdkError::TimeoutError(_)), "{error:?}");
    assert!(rig.stored("written").await, "forwarded before the answer was held");
    eventually("the held answer is let go", || rig.counters().dynamodb.held == 0).await;

    // A patient client gets an answer at the hold limit: a 500 for a request never forwarded, and
    // DynamoDB's own answer for one that was.
    rig.set(|c| c.hold_limit_ms = 200);
    let patient = rig.through().await;
    let started = Instant::now();
    rig.put(&patient, "late").await.expect("the answer, late");
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(rig.stored("late").await);
    rig.set(|c| {
        c.dynamodb = DynamoDbFaults {
            timeout: 1.0,
            ..DynamoDbFaults::default()
        }
    });
    let error = rig.put(&patient, "never").await.unwrap_err();
    assert!(matches!(
        error.as_service_error(),
        Some(PutItemError::InternalServerError(_))
    ));
    let counters = rig.counters().dynamodb;
    assert_eq!((counters.timeout, counters.timeout_after_write), (2, 2));
}

#[tokio::test]
async fn counters_count_each_kind_and_seeds_replay() {
    let config = shares(|d| {
        d.throttle = 0.3;
        d.internal = 0.3;
    });
    let mut outcomes = Vec::new();
    for _ in 0..2 {
        let rig = Rig::new(config.clone()).await;
        let client = rig.through().await;
        let mut run = Vec::new();
        for i in 0..40 {
            run.push(match rig.put(&client, &format!("c{i}")).await {
                Ok(()) => "ok",
                Err(e) if e.as_service_error().is_some_and(|e| e.is_internal_server_error()) => "internal",
                Err(_) => "throttled",
            });
        }
        let counters = rig.counters().dynamodb;
        assert_eq!(counters.requests, 40);
        assert_eq!(counters.passed + counters.throttle + counters.internal, 40);
        assert_eq!(counters.passed as usize, run.iter().filter(|o| **o == "ok").count());
        assert_eq!(
            counters.internal as usize,
            run.iter().filter(|o| **o == "internal").count()
        );
        assert!(
            counters.throttle >= 4 && counters.internal >= 4 && counters.passed >= 4,
            "{counters:?}"
        );
        outcomes.push(run);
    }
    assert_eq!(outcomes[0], outcomes[1], "one seed, one run");
}

// The whole stack, with the fixture functions.

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn fault_options() -> Options {
    let mut options = Options::for_tests(fixture("template.yaml"));
    options.parameters.insert("FixtureSecret".into(), "s3cret".into());
    options.fault_injection = true;
    options
}

type WebSocket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_text(socket: &mut WebSocket) -> String {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a frame within 10 s")
            .expect("the socket is open")
            .expect("a valid frame");
        match message {
            Message::Text(text) => return text.to_string(),
            Message::Close(frame) => panic!("closed: {frame:?}"),
            _ => continue,
        }
    }
}

/// A connection and its id.
async fn connect(stack: &LocalStack, user: &str) -> (WebSocket, String) {
    let request = format!("{}/?token=good-{user}", stack.ws_url())
        .into_client_request()
        .unwrap();
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.expect("connect");
    socket.send(Message::text(r#"{"action":"echo"}"#)).await.unwrap();
    let echoed: Value = serde_json::from_str(&next_text(&mut socket).await).unwrap();
    let id = echoed["connectionId"].as_str().unwrap().to_owned();
    (socket, id)
}

fn connection_url(stack: &LocalStack, id: &str) -> String {
    format!("{}/{}", stack.connections_url(), id.replace('=', "%3D"))
}

#[tokio::test]
async fn the_harness_api_reads_and_replaces_the_configuration() {
    let stack = LocalStack::start(fault_options()).await.unwrap();
    let url = stack.faults_url().unwrap();
    let http = reqwest::Client::new();

    let state: Value = http.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(state["config"], serde_json::to_value(FaultConfig::default()).unwrap());
    assert_eq!(
        state["counters"],
        serde_json::to_value(FaultCounters::default()).unwrap()
    );
    assert_eq!(state["config"]["dynamodb"]["throttle"], 0.0);
    assert_eq!(state["config"]["hold_limit_ms"], 30000);
    assert_eq!(state["counters"]["connections"]["gone"], 0);

    let put = http
        .put(&url)
        .json(
            &json!({ "dynamodb": { "conflict": 0.25 }, "connections": { "error": 0.5 }, "seed": 9,
                       "gone_connections": ["abc="] }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let state: Value = put.json().await.unwrap();
    assert_eq!(state["config"]["dynamodb"]["conflict"], 0.25);
    assert_eq!(state["config"]["dynamodb"]["throttle"], 0.0, "left out: 0");
    let (config, _) = stack.faults();
    assert_eq!(config.connections.error, 0.5);
    assert_eq!(config.seed, 9);
    assert_eq!(config.gone_connections, BTreeSet::from(["abc=".to_owned()]));

    for (body, says) in [
        ("{not json", "not a fault configuration"),
        (r#"{"dynamodb":{"throttle":1.5}}"#, "dynamodb.throttle is 1.5"),
        (r#"{"connections":{"timeout":-0.1}}"#, "connections.timeout is -0.1"),
        (
            r#"{"dynamodb":{"throttle":0.6,"timeout":0.6}}"#,
            "the dynamodb shares add up to",
        ),
        (r#"{"dynamodb":{"throtle":0.1}}"#, "unknown field `throtle`"),
        (r#"{"seed":"x"}"#, "not a fault configuration"),
    ] {
        let response = http.put(&url).body(body).send().await.unwrap();
        assert_eq!(response.status(), 400, "{body}");
        let answer: Value = response.json().await.unwrap();
        let message = answer["message"].as_str().unwrap();
        assert!(message.contains(says), "{body}: {message}");
    }
    assert_eq!(stack.faults().0, config, "a refused configuration changes nothing");
    assert_eq!(http.delete(&url).send().await.unwrap().status(), 405);

    let mut from_rust = FaultConfig::default();
    from_rust.dynamodb.internal = 0.1;
    stack.set_faults(from_rust.clone()).unwrap();
    let state: Value = http.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(state["config"], serde_json::to_value(&from_rust).unwrap());
    from_rust.connections.error = 2.0;
    assert!(stack
        .set_faults(from_rust)
        .unwrap_err()
        .contains("connections.error is 2"));
    assert!(stack.fault_proxy_url().is_none(), "no table, no DynamoDB, no proxy");
    stack.stop().await;

    // Off by default: no endpoint, no proxy.
    let mut options = fault_options();
    options.fault_injection = false;
    let stack = LocalStack::start(options).await.unwrap();
    assert!(stack.faults_url().is_none());
    let url = format!("http://{}/@faults", stack.ws_url().trim_start_matches("ws://"));
    assert_eq!(http.get(&url).send().await.unwrap().status(), 404);
    assert!(stack.set_faults(FaultConfig::default()).is_err());
    assert_eq!(stack.faults(), (FaultConfig::default(), FaultCounters::default()));
    stack.stop().await;
}

#[tokio::test]
async fn connections_posts_fail_time_out_and_go_gone_as_configured() {
    let stack = LocalStack::start(fault_options()).await.unwrap();
    let (mut socket, id) = connect(&stack, "alice").await;
    let (mut other, other_id) = connect(&stack, "bob").await;
    let url = connection_url(&stack, &id);
    let http = reqwest::Client::new();

    // Gone for one chosen connection: 410 for its posts (and the functions' posts), socket open.
    stack
        .set_faults(FaultConfig {
            gone_connections: BTreeSet::from([id.clone()]),
            ..FaultConfig::default()
        })
        .unwrap();
    let response = http.post(&url).body("lost").send().await.unwrap();
    assert_eq!(response.status(), 410);
    assert_eq!(
        response.headers()["x-amzn-errortype"].to_str().unwrap(),
        "GoneException"
    );
    socket.send(Message::text(r#"{"action":"postback"}"#)).await.unwrap();
    let no_reply = tokio::time::timeout(Duration::from_millis(800), next_text(&mut socket)).await;
    assert!(no_reply.is_err(), "the function's post was refused, so nothing arrived");
    let posted = http
        .post(connection_url(&stack, &other_id))
        .body("hi bob")
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200, "other connections are untouched");
    assert_eq!(next_text(&mut other).await, "hi bob");
    assert_eq!(stack.open_connections(), 2, "the gone connection's socket stays open");
    assert_eq!(
        http.get(&url).send().await.unwrap().status(),
        200,
        "only posts are refused"
    );

    // 500s.
    stack
        .set_faults(FaultConfig {
            connections: ConnectionFaults {
                error: 1.0,
                ..ConnectionFaults::default()
            },
            ..FaultConfig::default()
        })
        .unwrap();
    let response = http.post(&url).body("x").send().await.unwrap();
    assert_eq!(response.status(), 500);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({ "message": "Internal server error" }));

    // Held until the client gives up, and let go then.
    stack
        .set_faults(FaultConfig {
            connections: ConnectionFaults {
                timeout: 1.0,
                ..ConnectionFaults::default()
            },
            ..FaultConfig::default()
        })
        .unwrap();
    let gave_up = http
        .post(&url)
        .body("x")
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .unwrap_err();
    assert!(gave_up.is_timeout());
    eventually("the held post is let go", || stack.faults().1.connections.held == 0).await;
    let mut config = stack.faults().0;
    config.hold_limit_ms = 100;
    stack.set_faults(config).unwrap();
    assert_eq!(http.post(&url).body("x").send().await.unwrap().status(), 500);

    // Faults off: delivered, and the held and failed posts never were.
    stack.set_faults(FaultConfig::default()).unwrap();
    assert_eq!(http.post(&url).body("finally").send().await.unwrap().status(), 200);
    assert_eq!(next_text(&mut socket).await, "finally");

    let counters = stack.faults().1.connections;
    assert_eq!(
        (
            counters.gone,
            counters.error,
            counters.timeout,
            counters.passed,
            counters.held
        ),
        (2, 1, 2, 2, 0)
    );
    assert_eq!(counters.posts, 7);
    stack.stop().await;
}

#[tokio::test]
async fn with_a_table_the_functions_reach_dynamodb_through_the_proxy() {
    let mut options = Options::for_tests(fixture("faults-template.yaml"));
    options.fault_injection = true;
    options.sdk_attempt_timeout = Duration::from_millis(1000);
    // With IAM enforced the functions' endpoint is IAM's proxy, in front of this one.
    options.iam_enforcement = false;
    let stack = LocalStack::start(options).await.unwrap();
    let proxy = stack.fault_proxy_url().expect("a proxy in front of DynamoDB Local");
    assert_ne!(Some(proxy.as_str()), stack.dynamodb_endpoint());

    let env: Value = reqwest::get(format!("{}/env?dynamodb=1", stack.http_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(env["env"]["dynamodbEndpoint"], proxy.as_str());
    assert_eq!(env["env"]["sdkAttemptTimeoutMs"], "1000");
    assert!(env["dynamodbStatus"].as_str().unwrap().starts_with("HTTP/1.1 "));
    let counters = stack.faults().1.dynamodb;
    assert_eq!((counters.requests, counters.passed), (1, 1));

    // The stack's own endpoint is DynamoDB Local itself, for seeding and checking behind the faults.
    let direct = sdk_client(
        stack.dynamodb_endpoint().unwrap(),
        RetryConfig::disabled(),
        Duration::from_secs(10),
    )
    .await;
    let tables = direct.list_tables().send().await.unwrap();
    assert_eq!(tables.table_names(), ["FixtureTable"]);
    assert_eq!(stack.faults().1.dynamodb.requests, 1);
    stack.stop().await;
}

#[tokio::test]
async fn the_run_command_takes_fault_flags() {
    use tokio::io::{AsyncBufReadExt, BufReader};

    let refused = tokio::process::Command::new(env!("CARGO_BIN_EXE_local-stack"))
        .args(["--faults", "dynamodb.throttle=2"])
        .output()
        .await
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("dynamodb.throttle is 2"), "{said}");
    assert!(said.contains("--faults SPEC"), "the usage follows: {said}");

    let template = fixture("faults-template.yaml");
    let mut stack = tokio::process::Command::new(env!("CARGO_BIN_EXE_local-stack"))
        .args([
            "--http-port",
            "0",
            "--ws-port",
            "0",
            "--in-memory",
            "--quiet",
            "--debug",
            "--no-web",
            "--template",
        ])
        .arg(&template)
        .args([
            "--faults",
            "dynamodb=0.06,connections=0.1",
            "--faults",
            "dynamodb.throttle=0.2",
            "--fault-seed",
            "5",
            "--sdk-attempt-timeout-ms",
            "800",
        ])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(stack.stdout.take().unwrap()).lines();
    let (mut faults_url, mut http_url, mut printed) = (None, None, Vec::new());
    while let Ok(Ok(Some(line))) = tokio::time::timeout(Duration::from_secs(600), lines.next_line()).await {
        printed.push(line.clone());
        if let Some(rest) = line.trim().strip_prefix("Faults:") {
            faults_url = rest.split_whitespace().next().map(str::to_owned);
        }
        if let Some(rest) = line.trim().strip_prefix("HTTP API:") {
            http_url = Some(rest.trim().to_owned());
        }
        if line.contains("Ctrl-C") {
            break;
        }
    }
    assert!(printed.iter().any(|l| l.contains("Fault proxy:")), "{printed:?}");
    let faults_url = faults_url.unwrap_or_else(|| panic!("no /@faults URL printed: {printed:?}"));
    let state: Value = reqwest::get(&faults_url).await.unwrap().json().await.unwrap();
    let config: FaultConfig = serde_json::from_value(state["config"].clone()).unwrap();
    assert_eq!(config.dynamodb.throttle, 0.2);
    assert!((config.dynamodb.timeout - 0.01).abs() < 1e-12);
    assert!((config.connections.timeout - 0.05).abs() < 1e-12);
    assert_eq!(config.seed, 5);
    let env: Value = reqwest::get(format!("{}/env", http_url.unwrap()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(env["env"]["sdkAttemptTimeoutMs"], "800");

    // SAFETY: kill(2) on the child this test started.
    unsafe { libc::kill(stack.id().unwrap() as i32, libc::SIGINT) };
    let status = tokio::time::timeout(Duration::from_secs(30), stack.wait())
        .await
        .expect("stopped within 30 s")
        .unwrap();
    assert!(status.success(), "{status}");
}
