//! Rate limits and slow-call logs, end to end: a local stack of its own with tiny limits (every request
//! of the suite comes from 127.0.0.1, so the shared stack runs without them) and a 1 ms slow-call
//! threshold, so every DynamoDB call is logged.
//!
//! One scenario, run in order: the per-IP counters are shared by everything this file sends.

use std::sync::OnceLock;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use parley_tests::{start_stack, Stack};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const SENSITIVE_PER_MINUTE: u64 = 3;
const IP_PER_HOUR: u64 = 6;
const USER_PER_HOUR: u64 = 8;

fn stack() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(|| {
        start_stack(&[
            ("RateLimitSensitivePerMinute", "3"),
            ("RateLimitIpPerHour", "6"),
            ("RateLimitUserPerHour", "8"),
            ("DynamoDbSlowCallMs", "1"),
        ])
    })
}

/// A reply, with `Retry-After` read as whole seconds.
struct Answer {
    status: u16,
    retry_after: Option<u64>,
    body: Value,
}

async fn call(method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Answer {
    let answer = stack().call(method, path, token, body).await;
    let retry_after = answer
        .headers
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().expect("Retry-After is whole seconds"));
    Answer {
        status: answer.status,
        retry_after,
        body: answer.body,
    }
}

fn assert_limited(answer: &Answer, window_secs: u64, what: &str) {
    assert_eq!(answer.status, 429, "{what}: {}", answer.body);
    assert_eq!(answer.body["error"]["code"], "rate_limited", "{what}");
    let retry_after = answer.retry_after.expect("429 carries Retry-After");
    assert!(
        (1..=window_secs).contains(&retry_after),
        "{what}: Retry-After {retry_after}"
    );
    assert!(
        answer.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Too many requests"),
        "{what}: {}",
        answer.body
    );
}

/// Fixed windows: start where the sign-ups (a few seconds) fit in one minute, the rest in one hour.
async fn wait_for_a_fresh_minute() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if now % 60 > 50 || now % 3600 > 3590 {
        tokio::time::sleep(Duration::from_secs(60 - now % 60)).await;
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}{}", &ulid::Ulid::generate().to_string()[18..].to_lowercase())
}

async fn username_is_claimed(name: &str) -> bool {
    let sdk = dynamodb_local::sdk_config(&stack().dynamodb_endpoint).await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    use aws_sdk_dynamodb::types::AttributeValue;
    let found = client
        .get_item()
        .table_name("ChatTable")
        .key("PK", AttributeValue::S(format!("USERNAME#{name}")))
        .key("SK", AttributeValue::S("CLAIM".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    found.item.is_some()
}

#[tokio::test(flavor = "multi_thread")]
async fn limits_refuse_with_429_and_change_nothing_else() {
    stack();
    wait_for_a_fresh_minute().await;

    // Sign-ups: three a minute from one address, then 429 and no account.
    let mut users = Vec::new();
    for n in 0..SENSITIVE_PER_MINUTE {
        let name = unique(&format!("rl{n}"));
        let answer = call(
            "POST",
            "/auth/register",
            None,
            Some(json!({ "username": name, "password": "rate limited" })),
        )
        .await;
        assert_eq!(answer.status, 201, "{}", answer.body);
        assert_eq!(answer.retry_after, None);
        users.push((
            answer.body["user"]["id"].as_str().unwrap().to_owned(),
            answer.body["accessToken"].as_str().unwrap().to_owned(),
        ));
    }
    let refused_name = unique("rlx");
    let refused = call(
        "POST",
        "/auth/register",
        None,
        Some(json!({ "username": refused_name, "password": "rate limited" })),
    )
    .await;
    assert_limited(&refused, 60, "the fourth sign-up in a minute");
    assert!(refused.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("per minute"));
    assert!(
        !username_is_claimed(&refused_name).await,
        "a refused sign-up writes nothing"
    );

    // Other anonymous requests share the address's hourly budget (the three sign-ups spent three).
    for _ in SENSITIVE_PER_MINUTE..IP_PER_HOUR {
        let answer = call(
            "POST",
            "/auth/refresh",
            None,
            Some(json!({ "refreshToken": "rt1.not.a.token" })),
        )
        .await;
        assert_eq!(answer.status, 401, "{}", answer.body);
    }
    let over = call(
        "POST",
        "/auth/refresh",
        None,
        Some(json!({ "refreshToken": "rt1.not.a.token" })),
    )
    .await;
    assert_limited(&over, 3600, "the seventh anonymous request in an hour");
    assert!(over.body["error"]["message"].as_str().unwrap().contains("per hour"));

    // Health probes are never counted.
    for _ in 0..10 {
        assert_eq!(call("GET", "/health", None, None).await.status, 200);
    }

    // Signed-in users count per user, over HTTP and WebSocket alike, whatever the address's budget.
    let (_, alice_token) = users[0].clone();
    let (bob, bob_token) = users[1].clone();
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("{}/?token={alice_token}", stack().ws_url))
        .await
        .expect("alice connects (1 of 8)");
    let direct = call(
        "POST",
        "/conversations",
        Some(&alice_token),
        Some(json!({ "type": "direct", "memberIds": [bob] })),
    )
    .await;
    assert_eq!(direct.status, 201, "{}", direct.body);
    let conversation = direct.body["id"].as_str().unwrap().to_owned();
    let messages = format!("/conversations/{conversation}/messages");
    for n in 3..=USER_PER_HOUR {
        let sent = call(
            "POST",
            &messages,
            Some(&alice_token),
            Some(json!({ "clientMessageId": format!("m{n}"), "body": format!("message {n}") })),
        )
        .await;
        assert_eq!(sent.status, 201, "request {n} of {USER_PER_HOUR}: {}", sent.body);
    }
    let stored = USER_PER_HOUR - 2;
    let refused_send = call(
        "POST",
        &messages,
        Some(&alice_token),
        Some(json!({ "clientMessageId": "over", "body": "one too many" })),
    )
    .await;
    assert_limited(&refused_send, 3600, "alice's ninth request");

    // Over the WebSocket: an error frame, and the connection stays.
    socket
        .send(Message::text(
            json!({ "action": "sendMessage", "conversationId": conversation, "clientMessageId": "ws-over", "body": "no" })
                .to_string(),
        ))
        .await
        .unwrap();
    let frame = loop {
        let next = tokio::time::timeout(Duration::from_secs(15), socket.next())
            .await
            .expect("an answer frame")
            .unwrap()
            .unwrap();
        let frame: Value = serde_json::from_str(next.to_text().unwrap()).unwrap();
        if frame["type"] == "error" {
            break frame;
        }
    };
    assert_eq!(frame["error"]["code"], "rate_limited", "{frame}");
    socket.send(Message::text(r#"{"action":"ping"}"#)).await.unwrap();
    let pong = tokio::time::timeout(Duration::from_secs(15), socket.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        pong.to_text().unwrap().contains("pong"),
        "ping is never counted: {pong}"
    );

    // Bob has a budget of his own, and sees exactly the messages that were let through.
    let history = call("GET", &messages, Some(&bob_token), None).await;
    assert_eq!(history.status, 200, "{}", history.body);
    let bodies: Vec<&str> = history.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies.len() as u64, stored, "{bodies:?}");
    assert!(!bodies.contains(&"one too many") && !bodies.contains(&"no"));
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_dynamodb_calls_are_logged_with_their_keys_only() {
    let secret_name = format!("Secret Display {}", ulid::Ulid::generate());
    let username = unique("slow");
    // The per-minute sign-up budget belongs to the other test; sign-up runs through DynamoDB directly.
    let sdk = dynamodb_local::sdk_config(&stack().dynamodb_endpoint).await;
    let store = parley::store::Store::new(&sdk, "ChatTable", Duration::from_secs(60));
    let user_id = parley_tests::silent_user(&store, &username).await;
    store
        .update_profile(
            &user_id,
            &parley::store::ProfilePatch {
                display_name: Some(secret_name.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let token =
        parley::auth::tokens::TokenKeys::new(local_stack::LOCAL_TOKEN_SECRET.as_bytes(), Duration::from_secs(900))
            .issue(&user_id, "session", std::time::SystemTime::now())
            .unwrap();
    let me = call("GET", "/users/me", Some(&token), None).await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.body["displayName"], secret_name.as_str());

    let profile_key = format!("PK=USER#{user_id},SK=PROFILE");
    let logged: Vec<String> = stack()
        .logs_when("users-me-get", Duration::from_secs(5), |lines| {
            lines
                .iter()
                .any(|line| line.contains("slow DynamoDB call") && line.contains(&profile_key))
        })
        .await
        .into_iter()
        .filter(|line| line.contains("slow DynamoDB call"))
        .collect();
    let read = logged
        .iter()
        .find(|line| line.contains(&profile_key))
        .unwrap_or_else(|| panic!("the profile read is logged: {logged:#?}"));
    let read: Value = serde_json::from_str(read).expect("a JSON log line");
    assert_eq!(read["operation"], "GetItem", "{read}");
    assert!(read["durationMs"].as_f64().unwrap() >= 1.0, "{read}");
    assert_eq!(read["thresholdMs"], 1, "{read}");
    assert!(
        logged.iter().all(|line| !line.contains(&secret_name)),
        "no attribute but the key is ever logged"
    );
}
