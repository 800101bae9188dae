//! Slow mode (docs/API-GUIDE.md "Slow mode") end to end over real HTTP and WebSocket clients on the
//! local stack: set by a group's owner or admins, announced with `conversation.updated`, holding a plain
//! member's next message back with `429` and `Retry-After`, never a repeat of a send and never the
//! owner or admins; off again at 0.

use parley_tests::realtime::{until, Clients, User};
use parley_tests::stack;
use serde_json::{json, Value};

fn rt() -> Clients {
    Clients { stack: stack() }
}

async fn call(method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    rt().call(method, path, token, body).await
}

async fn set_slow_mode(by: &User, group: &str, seconds: Value) -> (u16, Value) {
    call(
        "PATCH",
        &format!("/conversations/{group}"),
        Some(&by.token),
        Some(json!({ "slowModeSeconds": seconds })),
    )
    .await
}

/// A send's status and its `Retry-After`, if any.
async fn send(user: &User, group: &str, client_id: &str) -> (u16, Option<u64>) {
    let answer = stack()
        .call(
            "POST",
            &format!("/conversations/{group}/messages"),
            Some(&user.token),
            Some(json!({ "clientMessageId": client_id, "body": "hi" })),
        )
        .await;
    let retry = answer
        .headers
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    if answer.status == 429 {
        assert_eq!(answer.body["error"]["code"], "rate_limited", "{}", answer.body);
        assert!(answer.body["error"]["message"].as_str().unwrap().contains("slow mode"));
    }
    (answer.status, retry)
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_mode_spaces_a_plain_members_messages_and_nobody_elses() {
    let (ann, bob) = (rt().user("slowa").await, rt().user("slowb").await);
    let group = rt().group(&ann, &[&bob]).await;
    let mut bob_ws = rt().connect(&bob).await;

    let (status, conversation) = set_slow_mode(&ann, &group, json!(2)).await;
    assert_eq!(status, 200, "{conversation}");
    assert_eq!(conversation["slowModeSeconds"], 2);
    let event = until(&mut bob_ws, |e| e["type"] == "conversation.updated").await;
    assert_eq!(event["conversation"]["slowModeSeconds"], 2);
    let (_, seen) = call("GET", &format!("/conversations/{group}"), Some(&bob.token), None).await;
    assert_eq!(seen["slowModeSeconds"], 2);

    assert_eq!(send(&bob, &group, "first").await.0, 201);
    let (status, retry) = send(&bob, &group, "second").await;
    assert_eq!(status, 429);
    assert!(retry.is_some_and(|s| (1..=2).contains(&s)), "Retry-After {retry:?}");
    // A repeat of a stored send is answered, not held back.
    assert_eq!(send(&bob, &group, "first").await.0, 200);
    // The owner is exempt.
    assert_eq!(send(&ann, &group, "owner-1").await.0, 201);
    assert_eq!(send(&ann, &group, "owner-2").await.0, 201);
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    assert_eq!(send(&bob, &group, "second").await.0, 201);

    // Off again.
    assert_eq!(set_slow_mode(&ann, &group, json!(0)).await.0, 200);
    assert_eq!(send(&bob, &group, "third").await.0, 201);
    assert_eq!(send(&bob, &group, "fourth").await.0, 201);
}

#[tokio::test(flavor = "multi_thread")]
async fn only_a_groups_owner_and_admins_set_slow_mode_within_an_hour() {
    let (ann, bob) = (rt().user("slowc").await, rt().user("slowd").await);
    let group = rt().group(&ann, &[&bob]).await;
    for bad in [json!(3601), json!(-1), json!("ten"), json!(null)] {
        let (status, body) = set_slow_mode(&ann, &group, bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (status, body) = set_slow_mode(&bob, &group, json!(10)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    let (status, body) = call(
        "PATCH",
        &format!("/conversations/{group}"),
        Some(&ann.token),
        Some(json!({})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("validation_failed")),
        "{body}"
    );
    let (_, direct) = call(
        "POST",
        "/conversations",
        Some(&ann.token),
        Some(json!({ "type": "direct", "memberIds": [bob.id] })),
    )
    .await;
    let (status, body) = set_slow_mode(&ann, direct["id"].as_str().unwrap(), json!(10)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("validation_failed")),
        "{body}"
    );
    // Name and slow mode together.
    let (status, body) = call(
        "PATCH",
        &format!("/conversations/{group}"),
        Some(&ann.token),
        Some(json!({ "name": "calm", "slowModeSeconds": 30 })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["name"].as_str(), body["slowModeSeconds"].as_u64()),
        (Some("calm"), Some(30))
    );
}
