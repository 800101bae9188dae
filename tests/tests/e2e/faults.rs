//! Delivery's promises under injected faults, end to end on a local stack of its own with fault
//! injection on (DynamoDB calls through the fault proxy, @connections posts broken on demand), a short
//! queue visibility timeout and a 1 s SDK attempt timeout:
//! - at 5 % of DynamoDB calls failing (throttling, transaction conflicts, 500s before and after the
//!   write, timeouts) and 5 % of posts failing (500s, timeouts), concurrent senders that retry as a
//!   client does never see a 500, every acknowledged message is stored exactly once with `seq`
//!   dense, and every connected member gets every acknowledged message at least once;
//! - a delivery whose posts fail every time is retried with backoff and parked; a record the worker
//!   cannot process at all is redriven by SQS to the dead-letter queue; and both queues' depth metric,
//!   which the alarms watch, moves.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use local_stack::faults::{ConnectionFaults, DynamoDbFaults};
use local_stack::FaultConfig;
use parley_tests::realtime::{events_of, next_within, Clients, User};
use parley_tests::{start_stack_with, Stack, RATE_LIMITS_OFF};
use serde_json::{json, Value};

fn faulty() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(|| {
        start_stack_with(&RATE_LIMITS_OFF, |options| {
            options.fault_injection = true;
            options.sdk_attempt_timeout = Duration::from_millis(1000);
            options.queue_visibility_timeout = Some(Duration::from_secs(1));
        })
    })
}

fn rt() -> Clients {
    Clients { stack: faulty() }
}

/// The tests here change the one stack's faults: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn set_faults(config: FaultConfig) {
    faulty()
        .with(move |stack| stack.set_faults(config))
        .await
        .expect("a valid fault configuration");
}

/// What a client does: the same request again after a 503, a 502 or no answer, with backoff.
async fn send_until_acknowledged(
    user: &User,
    conversation: &str,
    client_id: &str,
    statuses: &Mutex<Vec<u16>>,
) -> Value {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let mut pause = Duration::from_millis(100);
    for _ in 0..30 {
        let answer = client
            .post(format!("{}/conversations/{conversation}/messages", faulty().http_url))
            .bearer_auth(&user.token)
            .json(&json!({ "clientMessageId": client_id, "body": format!("under faults {client_id}") }))
            .send()
            .await;
        if let Ok(response) = answer {
            let status = response.status().as_u16();
            statuses.lock().unwrap().push(status);
            if matches!(status, 200 | 201) {
                return response.json().await.unwrap();
            }
            assert!(matches!(status, 502..=504), "only a retryable refusal, never {status}");
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
    panic!("{client_id} was never acknowledged");
}

/// `after=` from the start, retrying refusals (faults may still be on).
async fn walk(reader: &User, conversation: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    let mut after = "00000000000000000000000000".to_owned();
    loop {
        let (status, page) = rt()
            .call(
                "GET",
                &format!("/conversations/{conversation}/messages?after={after}&limit=25"),
                Some(&reader.token),
                None,
            )
            .await;
        if status == 503 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().unwrap().clone();
        let Some(last) = items.last() else {
            return seen;
        };
        after = last["id"].as_str().unwrap().to_owned();
        seen.extend(items);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn under_injected_faults_every_acknowledged_message_is_stored_once_and_delivered() {
    let _serial = SERIAL.lock().await;
    set_faults(FaultConfig::default()).await;
    let mut users = Vec::new();
    for i in 0..8 {
        users.push(rt().user(&format!("f{i}")).await);
    }
    let others: Vec<&User> = users[1..].iter().collect();
    let group = rt().group(&users[0], &others).await;
    // Every member connected (the first on two devices), each socket collecting message ids.
    let received: Vec<Arc<Mutex<BTreeSet<String>>>> = (0..users.len() + 1).map(|_| Arc::default()).collect();
    let mut readers = Vec::new();
    for (i, seen) in received.iter().enumerate() {
        let mut socket = rt().connect(&users[i.min(users.len() - 1)]).await;
        let seen = Arc::clone(seen);
        readers.push(tokio::spawn(async move {
            while let Some(frame) = next_within(&mut socket, Duration::from_secs(120)).await {
                for event in events_of(frame).into_iter().filter(|e| e["type"] == "message.new") {
                    seen.lock()
                        .unwrap()
                        .insert(event["message"]["id"].as_str().unwrap().to_owned());
                }
            }
        }));
    }

    set_faults(FaultConfig {
        dynamodb: DynamoDbFaults {
            throttle: 0.01,
            conflict: 0.01,
            internal: 0.01,
            internal_after_write: 0.01,
            timeout: 0.005,
            timeout_after_write: 0.005,
        },
        connections: ConnectionFaults {
            error: 0.04,
            timeout: 0.01,
        },
        seed: 11,
        hold_limit_ms: 3000,
        ..FaultConfig::default()
    })
    .await;
    let statuses: Arc<Mutex<Vec<u16>>> = Arc::default();
    let mut senders = Vec::new();
    for (i, user) in users.iter().enumerate() {
        let (user, group, statuses) = (user.clone(), group.clone(), Arc::clone(&statuses));
        senders.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for j in 0..12 {
                let client_id = format!("u{i}-m{j}");
                let message = send_until_acknowledged(&user, &group, &client_id, &statuses).await;
                acknowledged.push((client_id, message["id"].as_str().unwrap().to_owned()));
            }
            acknowledged
        }));
    }
    let mut acknowledged: BTreeMap<String, String> = BTreeMap::new();
    for sender in senders {
        acknowledged.extend(sender.await.unwrap());
    }
    let (_, counters) = faulty().with(|stack| stack.faults()).await;
    set_faults(FaultConfig::default()).await;
    let statuses = statuses.lock().unwrap().clone();
    eprintln!(
        "answers: {} ({} refusals); faults injected: {counters:?}",
        statuses.len(),
        statuses.iter().filter(|s| !matches!(s, 200 | 201)).count()
    );
    assert!(!statuses.contains(&500), "no 500 under faults: {statuses:?}");
    assert!(
        counters.dynamodb.requests > counters.dynamodb.passed
            && counters.connections.error + counters.connections.timeout > 0,
        "faults were injected: {counters:?}"
    );

    // Stored exactly once, positions dense and in id order.
    let walked = walk(&users[1], &group).await;
    let seqs: Vec<u64> = walked.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=walked.len() as u64).collect::<Vec<_>>(), "seq is dense");
    let ids: Vec<&str> = walked.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids follow seq");
    let stored: Vec<(&str, &str)> = walked
        .iter()
        .filter(|m| m["deleted"] == false)
        .map(|m| (m["clientMessageId"].as_str().unwrap(), m["id"].as_str().unwrap()))
        .collect();
    let expected: Vec<(&str, &str)> = acknowledged.iter().map(|(c, i)| (c.as_str(), i.as_str())).collect();
    let mut stored_sorted = stored.clone();
    stored_sorted.sort();
    assert_eq!(stored_sorted, expected, "every acknowledged message once, nothing else");

    // Delivered at least once to every connection.
    let want: BTreeSet<String> = acknowledged.values().cloned().collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let missing: Vec<usize> = received
            .iter()
            .map(|seen| want.difference(&seen.lock().unwrap()).count())
            .collect();
        if missing.iter().all(|m| *m == 0) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "connections still missing messages: {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for reader in readers {
        reader.abort();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn deliveries_that_fail_every_time_are_parked_in_the_dead_letter_queue() {
    let _serial = SERIAL.lock().await;
    set_faults(FaultConfig::default()).await;
    let (ann, bob) = (rt().user("ann").await, rt().user("bob").await);
    let group = rt().group(&ann, &[&bob]).await;
    let _bob_socket = rt().connect(&bob).await;
    let depth = |queue: &'static str| faulty().with(move |s| s.queue_depth(queue).0);
    let (parked_before, dead_before) = (depth(PARKED).await, depth(DEAD_LETTERS).await);

    // Every post fails: the worker retries the connection with backoff, then parks the delivery.
    set_faults(FaultConfig {
        connections: ConnectionFaults {
            error: 1.0,
            timeout: 0.0,
        },
        ..FaultConfig::default()
    })
    .await;
    let message = rt().http_send(&ann, &group, "never-arrives", "lost?").await;
    let parked = wait_for(PARKED, parked_before + 1).await;
    assert!(
        parked.iter().any(|body| body.contains(message["id"].as_str().unwrap())),
        "the parked delivery carries the message: {parked:?}"
    );

    // A record the worker cannot handle at all (DynamoDB refusing every call while it reads the
    // recipients) goes back to SQS, and after maxReceiveCount receives SQS moves it to the dead-letter
    // queue.
    set_faults(FaultConfig::default()).await;
    faulty().with(|s| s.pause_event_sources(true)).await;
    let second = rt().http_send(&ann, &group, "redriven", "lost too?").await;
    set_faults(FaultConfig {
        dynamodb: DynamoDbFaults {
            throttle: 1.0,
            ..DynamoDbFaults::default()
        },
        ..FaultConfig::default()
    })
    .await;
    faulty().with(|s| s.pause_event_sources(false)).await;
    let dead = wait_for(DEAD_LETTERS, dead_before + 1).await;
    set_faults(FaultConfig::default()).await;
    assert!(dead.iter().any(|body| body.contains(second["id"].as_str().unwrap())));

    // The alarms' metric: the queues' depth, as CloudWatch has it.
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_cloudwatch::config::Credentials::new(
            "local", "local", None, None, "test",
        ))
        .endpoint_url(faulty().ws_url.replace("ws://", "http://"))
        .load()
        .await;
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&sdk);
    for (queue, want) in [(PARKED, parked_before + 1), (DEAD_LETTERS, dead_before + 1)] {
        // The metric's dimension is the queue's name (a FIFO queue's ends in `.fifo`).
        let queue = faulty()
            .with(move |s| s.queue_name(queue))
            .await
            .expect("a queue of the template");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let now = std::time::SystemTime::now();
            let answer = cloudwatch
                .get_metric_statistics()
                .namespace("AWS/SQS")
                .metric_name("ApproximateNumberOfMessagesVisible")
                .dimensions(
                    aws_sdk_cloudwatch::types::Dimension::builder()
                        .name("QueueName")
                        .value(&queue)
                        .build(),
                )
                .start_time((now - Duration::from_secs(600)).into())
                .end_time((now + Duration::from_secs(60)).into())
                .period(60)
                .statistics(aws_sdk_cloudwatch::types::Statistic::Maximum)
                .send()
                .await
                .expect("the CloudWatch stand-in answers");
            let highest = answer
                .datapoints()
                .iter()
                .filter_map(|d| d.maximum())
                .fold(0.0, f64::max);
            if highest >= want as f64 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{queue}'s depth metric did not move: {answer:?}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

const PARKED: &str = "DeliveryParkedQueue";
const DEAD_LETTERS: &str = "DeliveryDeadLetterQueue";

/// A queue's bodies once it holds at least `count`.
async fn wait_for(queue: &'static str, count: usize) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (depth, bodies) = faulty()
            .with(|s| (s.queue_depth(queue).0, s.queue_messages(queue)))
            .await;
        if depth >= count {
            return bodies;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{queue} holds {depth}, not {count}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_send_whose_retry_budget_is_spent_is_a_503_with_retry_after_and_writes_nothing() {
    let _serial = SERIAL.lock().await;
    set_faults(FaultConfig::default()).await;
    let (ann, bob) = (rt().user("ann").await, rt().user("bob").await);
    let group = rt().group(&ann, &[&bob]).await;
    // Every write conflicts (as a hot item does under real DynamoDB's optimistic transactions): the send
    // retries with jitter until its budget is spent, then refuses cleanly.
    set_faults(FaultConfig {
        dynamodb: DynamoDbFaults {
            conflict: 1.0,
            ..DynamoDbFaults::default()
        },
        ..FaultConfig::default()
    })
    .await;
    let refused = faulty()
        .call(
            "POST",
            &format!("/conversations/{group}/messages"),
            Some(&ann.token),
            Some(json!({ "clientMessageId": "budget", "body": "not now" })),
        )
        .await;
    set_faults(FaultConfig::default()).await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert_eq!(refused.body["error"]["code"], "unavailable");
    let retry_after: u64 = refused.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after >= 1);
    assert!(walk(&bob, &group).await.is_empty(), "nothing was stored");
    // The client's retry is a first send: position 1, no gap.
    let stored = rt().http_send(&ann, &group, "budget", "not now").await;
    assert_eq!(stored["seq"], 1);
}
