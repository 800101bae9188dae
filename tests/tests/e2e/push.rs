//! Push notifications end to end (docs/API-GUIDE.md "Push notifications"): real HTTP and WebSocket
//! clients on the local stack, whose delivery worker hands offline members to the push worker, which
//! pushes to a Web Push service of the test's own on 127.0.0.1 (it verifies the VAPID JWT and decrypts
//! each payload with the device's key, `parley_tests::push_service`) or, for APNs and FCM devices, to
//! the stack's SNS stand-in, which records what a phone would have been sent.
//!
//! Each rule is checked against a witness: an offline member with a device and the default level,
//! pushed by the same job, so once the witness has its push the worker has decided for everyone.

use std::time::Duration;

use parley_tests::push_service::{Device, PushService};
use parley_tests::realtime::{until, Clients, User};
use parley_tests::stack;
use serde_json::{json, Value};

const WITHIN: Duration = Duration::from_secs(20);

fn rt() -> Clients {
    Clients { stack: stack() }
}

async fn call(method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    rt().call(method, path, token, body).await
}

async fn push_service() -> PushService {
    let (status, key) = call("GET", "/push/vapid-public-key", None, None).await;
    assert_eq!(status, 200, "{key}");
    PushService::start(key["publicKey"].as_str().unwrap()).await
}

/// A user with one device of `service`.
async fn subscribed(service: &PushService, prefix: &str) -> (User, Device) {
    let user = rt().user(prefix).await;
    let device = service.device();
    let (status, body) = call(
        "POST",
        "/users/me/push-subscriptions",
        Some(&user.token),
        Some(device.subscription()),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    (user, device)
}

async fn send(sender: &User, conversation: &str, body: Value) -> Value {
    let (status, message) = call(
        "POST",
        &format!("/conversations/{conversation}/messages"),
        Some(&sender.token),
        Some(body),
    )
    .await;
    assert_eq!(status, 201, "{message}");
    message
}

fn text(body: &str) -> Value {
    json!({ "clientMessageId": ulid::Ulid::generate().to_string(), "body": body })
}

async fn set_level(user: &User, conversation: &str, body: Value) -> Value {
    let (status, answer) = call(
        "PUT",
        &format!("/conversations/{conversation}/notifications"),
        Some(&user.token),
        Some(body),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    answer
}

/// The payloads a device got, each checked to have come as a push service demands.
fn payloads(service: &PushService, device: &Device) -> Vec<Value> {
    service
        .received(device)
        .into_iter()
        .map(|r| {
            assert!(
                r.problems.is_empty(),
                "the push service refused a push: {:?}",
                r.problems
            );
            r.payload
        })
        .collect()
}

#[tokio::test]
async fn an_offline_member_is_pushed_and_an_online_one_and_the_sender_are_not() {
    let service = push_service().await;
    let (alice, alice_device) = subscribed(&service, "pusha").await;
    let (bob, bob_device) = subscribed(&service, "pushb").await;
    let (carol, carol_device) = subscribed(&service, "pushc").await;
    let group = rt().group(&alice, &[&bob, &carol]).await;
    let mut carols_socket = rt().connect(&carol).await;
    let sent = send(&alice, &group, text("dinner at eight?")).await;
    until(&mut carols_socket, |e| {
        e["type"] == "message.new" && e["message"]["id"] == sent["id"]
    })
    .await;

    let received = service.wait_for(&bob_device, 1, WITHIN).await;
    assert_eq!(received.len(), 1, "bob, offline, is pushed");
    let push = &received[0];
    assert!(push.problems.is_empty(), "{:?}", push.problems);
    assert_eq!(push.headers.get("topic"), Some(&group), "Topic is the conversation");
    assert_eq!(push.headers.get("urgency").map(String::as_str), Some("high"));
    let payload = &push.payload;
    assert_eq!(payload["type"], "message");
    assert_eq!(payload["conversationId"], group.as_str());
    assert_eq!(payload["messageId"], sent["id"]);
    assert_eq!(payload["seq"], sent["seq"]);
    assert_eq!(payload["senderId"], alice.id.as_str());
    assert_eq!(payload["body"], "dinner at eight?");
    assert!(payload["title"].as_str().unwrap().ends_with(" in rt"), "{payload}");

    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        payloads(&service, &carol_device).is_empty(),
        "carol's connection took it"
    );
    assert!(payloads(&service, &alice_device).is_empty(), "never the sender");
    let stats = stack().stats("push-worker").expect("the push worker ran");
    assert!(stats.invocations >= 1);
}

#[tokio::test]
async fn levels_mutes_and_blocks_decide_who_is_pushed() {
    let service = push_service().await;
    let alice = rt().user("pushlvla").await;
    let (witness, witness_device) = subscribed(&service, "pushlvlw").await;
    let (quiet, quiet_device) = subscribed(&service, "pushlvln").await;
    let (mentions, mentions_device) = subscribed(&service, "pushlvlm").await;
    let (muted, muted_device) = subscribed(&service, "pushlvlu").await;
    let (blocker, blocker_device) = subscribed(&service, "pushlvlb").await;
    let group = rt()
        .group(&alice, &[&witness, &quiet, &mentions, &muted, &blocker])
        .await;
    assert_eq!(
        set_level(&quiet, &group, json!({ "level": "none" })).await,
        json!({ "level": "none", "mutedUntil": null })
    );
    set_level(&mentions, &group, json!({ "level": "mentions" })).await;
    let until_time =
        humantime::format_rfc3339_millis(std::time::SystemTime::now() + Duration::from_secs(3600)).to_string();
    let answer = set_level(&muted, &group, json!({ "level": "all", "mutedUntil": until_time })).await;
    assert_eq!(answer["mutedUntil"], until_time.as_str());
    let (status, _) = call(
        "PUT",
        &format!("/users/me/blocks/{}", alice.id),
        Some(&blocker.token),
        None,
    )
    .await;
    assert_eq!(status, 204);

    send(&alice, &group, text("no mention")).await;
    assert_eq!(
        service.wait_for(&witness_device, 1, WITHIN).await.len(),
        1,
        "the witness is pushed"
    );
    for (who, device) in [
        ("none", &quiet_device),
        ("mentions", &mentions_device),
        ("muted", &muted_device),
        ("blocker", &blocker_device),
    ] {
        assert!(payloads(&service, device).is_empty(), "{who} is not pushed");
    }

    // A mention reaches the `mentions` member; `none`, the mute and the block still hold. (The witness's
    // collapse window holds its second push back: it is not the witness here.)
    let mut body = text("look @you");
    body["mentions"] = json!([mentions.id, quiet.id, muted.id]);
    send(&alice, &group, body).await;
    let got = service.wait_for(&mentions_device, 1, WITHIN).await;
    assert_eq!(got.len(), 1, "mentioned");
    for (who, device) in [
        ("none", &quiet_device),
        ("muted", &muted_device),
        ("blocker", &blocker_device),
    ] {
        assert!(payloads(&service, device).is_empty(), "{who} is still not pushed");
    }

    // The mute lifted (null), the member is pushed again.
    let answer = set_level(&muted, &group, json!({ "level": "all", "mutedUntil": null })).await;
    assert_eq!(answer["mutedUntil"], Value::Null);
    send(&alice, &group, text("after the mute")).await;
    assert_eq!(service.wait_for(&muted_device, 1, WITHIN).await.len(), 1, "unmuted");
}

#[tokio::test]
async fn a_mute_that_runs_out_pushes_again() {
    let service = push_service().await;
    let alice = rt().user("pushexpa").await;
    let (bob, bob_device) = subscribed(&service, "pushexpb").await;
    let (witness, witness_device) = subscribed(&service, "pushexpw").await;
    let first = rt().group(&alice, &[&bob, &witness]).await;
    let second = rt().group(&alice, &[&bob]).await;
    let soon = humantime::format_rfc3339_millis(std::time::SystemTime::now() + Duration::from_secs(3)).to_string();
    set_level(&bob, &first, json!({ "level": "all", "mutedUntil": soon })).await;
    send(&alice, &first, text("while muted")).await;
    assert_eq!(service.wait_for(&witness_device, 1, WITHIN).await.len(), 1);
    assert!(payloads(&service, &bob_device).is_empty(), "muted");
    tokio::time::sleep(Duration::from_secs(4)).await;
    send(&alice, &first, text("the mute is over")).await;
    let got = service.wait_for(&bob_device, 1, WITHIN).await;
    assert_eq!(got.len(), 1, "the mute ran out");
    assert_eq!(got[0].payload["body"], "the mute is over");
    // The mute was bob's for one conversation only.
    send(&alice, &second, text("elsewhere")).await;
    assert_eq!(service.wait_for(&bob_device, 2, WITHIN).await.len(), 2);
}

#[tokio::test]
async fn a_direct_conversation_pushes_at_the_mentions_level_and_encrypted_bodies_stay_out() {
    let service = push_service().await;
    let alice = rt().user("pushdira").await;
    let (bob, bob_device) = subscribed(&service, "pushdirb").await;
    let (status, direct) = call(
        "POST",
        "/conversations",
        Some(&alice.token),
        Some(json!({ "type": "direct", "memberIds": [bob.id] })),
    )
    .await;
    assert_eq!(status, 201, "{direct}");
    let direct = direct["id"].as_str().unwrap().to_owned();
    set_level(&bob, &direct, json!({ "level": "mentions" })).await;
    let mut secret = text("c2VjcmV0IGNpcGhlcnRleHQ=");
    secret["encrypted"] = json!(true);
    let sent = send(&alice, &direct, secret).await;
    let got = service.wait_for(&bob_device, 1, WITHIN).await;
    assert_eq!(got.len(), 1, "a direct message pushes at the mentions level");
    let payload = &got[0].payload;
    assert_eq!(payload["messageId"], sent["id"]);
    assert!(
        payload.get("body").is_none(),
        "an encrypted message's text never leaves: {payload}"
    );
    assert!(
        !payload["title"].as_str().unwrap().contains(" in "),
        "a direct title is the sender: {payload}"
    );
}

#[tokio::test]
async fn a_burst_is_collapsed_into_one_push_per_ten_seconds() {
    let service = push_service().await;
    let alice = rt().user("pushburst").await;
    let (bob, bob_device) = subscribed(&service, "pushburstb").await;
    let group = rt().group(&alice, &[&bob]).await;
    for n in 0..4 {
        send(&alice, &group, text(&format!("burst {n}"))).await;
    }
    assert_eq!(service.wait_for(&bob_device, 1, WITHIN).await.len(), 1);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        payloads(&service, &bob_device).len(),
        1,
        "the rest of the burst is collapsed"
    );
    // After the window, the next message pushes again.
    tokio::time::sleep(Duration::from_millis(parley::push::COLLAPSE_WINDOW_MS)).await;
    send(&alice, &group, text("later")).await;
    let got = service.wait_for(&bob_device, 2, WITHIN).await;
    assert_eq!(got.len(), 2, "a new window");
    assert_eq!(got[1].payload["body"], "later");
}

#[tokio::test]
async fn a_gone_endpoint_loses_its_subscription_and_a_failing_one_is_retried() {
    let service = push_service().await;
    let alice = rt().user("pushgonea").await;
    let (bob, gone) = subscribed(&service, "pushgoneb").await;
    let flaky = service.device();
    let (status, flaky_subscription) = call(
        "POST",
        "/users/me/push-subscriptions",
        Some(&bob.token),
        Some(flaky.subscription()),
    )
    .await;
    assert_eq!(status, 201, "{flaky_subscription}");
    service.answer(&gone, &[], 410);
    service.answer(&flaky, &[503], 201);
    let group = rt().group(&alice, &[&bob]).await;
    send(&alice, &group, text("anyone there?")).await;

    let attempts = service.wait_for(&flaky, 2, WITHIN).await;
    assert_eq!(
        attempts.iter().map(|r| r.status).collect::<Vec<_>>(),
        [503, 201],
        "retried after a 503"
    );
    assert_eq!(attempts[0].payload, attempts[1].payload, "the same push again");
    assert!(
        attempts[1].at - attempts[0].at >= Duration::from_millis(1500),
        "with a backoff"
    );
    assert_eq!(service.wait_for(&gone, 1, WITHIN).await[0].status, 410);
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let (status, list) = call("GET", "/users/me/push-subscriptions", Some(&bob.token), None).await;
        assert_eq!(status, 200);
        let ids: Vec<&str> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap())
            .collect();
        if ids == [flaky_subscription["id"].as_str().unwrap()] {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the 410 subscription is removed: {list}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        service.received(&gone).len(),
        1,
        "nothing more is sent to a gone endpoint"
    );
}

#[tokio::test]
async fn a_service_that_keeps_failing_gets_three_attempts_then_the_push_is_dropped() {
    let service = push_service().await;
    let alice = rt().user("pushfaila").await;
    let (bob, device) = subscribed(&service, "pushfailb").await;
    service.answer(&device, &[], 503);
    let group = rt().group(&alice, &[&bob]).await;
    send(&alice, &group, text("are you there?")).await;
    let attempts = service
        .wait_for(&device, parley::push::PUSH_ATTEMPTS as usize, Duration::from_secs(30))
        .await;
    assert_eq!(attempts.len(), parley::push::PUSH_ATTEMPTS as usize);
    tokio::time::sleep(Duration::from_secs(9)).await;
    assert_eq!(
        service.received(&device).len(),
        parley::push::PUSH_ATTEMPTS as usize,
        "then dropped"
    );
    let (_, list) = call("GET", "/users/me/push-subscriptions", Some(&bob.token), None).await;
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        1,
        "a failing service keeps the subscription"
    );
}

#[tokio::test]
async fn apns_and_fcm_devices_are_pushed_through_sns_and_a_disabled_one_is_removed() {
    let alice = rt().user("pushsnsa").await;
    let bob = rt().user("pushsnsb").await;
    let token = format!("fcm-{}", ulid::Ulid::generate());
    let (status, subscription) = call(
        "POST",
        "/users/me/push-subscriptions",
        Some(&bob.token),
        Some(json!({ "type": "fcm", "token": token })),
    )
    .await;
    assert_eq!(status, 201, "{subscription}");
    assert_eq!(subscription["type"], "fcm");
    let apns_token = "a".repeat(64);
    let (status, apns) = call(
        "POST",
        "/users/me/push-subscriptions",
        Some(&bob.token),
        Some(json!({ "type": "apns", "token": apns_token })),
    )
    .await;
    assert_eq!(status, 201, "{apns}");
    let (status, again) = call(
        "POST",
        "/users/me/push-subscriptions",
        Some(&bob.token),
        Some(json!({ "type": "fcm", "token": token })),
    )
    .await;
    assert_eq!(
        (status, &again["id"]),
        (200, &subscription["id"]),
        "the same device again"
    );

    let group = rt().group(&alice, &[&bob]).await;
    let sent = send(&alice, &group, text("hello phone")).await;
    let publishes = |token: String| async move {
        stack()
            .with(move |s| {
                s.sns_publishes()
                    .into_iter()
                    .filter(|p| p.token == token)
                    .collect::<Vec<_>>()
            })
            .await
    };
    let deadline = tokio::time::Instant::now() + WITHIN;
    let published = loop {
        let found = publishes(token.clone()).await;
        if !found.is_empty() || tokio::time::Instant::now() > deadline {
            break found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(published.len(), 1, "the FCM device got one publish");
    let message: Value = serde_json::from_str(&published[0].message).unwrap();
    assert_eq!(published[0].message_structure.as_deref(), Some("json"));
    let gcm: Value = serde_json::from_str(message["GCM"].as_str().unwrap()).unwrap();
    assert_eq!(gcm["notification"]["body"], "hello phone");
    assert_eq!(gcm["data"]["messageId"], sent["id"]);
    assert_eq!(publishes(apns_token.clone()).await.len(), 1, "and the APNs device");

    // The FCM token goes stale: SNS disables the endpoint, the next push removes the subscription.
    let arn = stack()
        .with({
            let token = token.clone();
            move |s| s.sns_endpoints().into_iter().find(|(_, t)| *t == token).unwrap().0
        })
        .await;
    assert!(stack().with(move |s| s.disable_sns_endpoint(&arn)).await);
    let other = rt().group(&alice, &[&bob]).await;
    send(&alice, &other, text("still there?")).await;
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let (_, list) = call("GET", "/users/me/push-subscriptions", Some(&bob.token), None).await;
        let kinds: Vec<&str> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["type"].as_str().unwrap())
            .collect();
        if kinds == ["apns"] {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the disabled FCM device is removed: {list}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn subscriptions_are_the_callers_own_and_bad_ones_are_refused() {
    let service = push_service().await;
    let (bob, device) = subscribed(&service, "pushsubb").await;
    let mallory = rt().user("pushsubm").await;
    let (status, again) = call(
        "POST",
        "/users/me/push-subscriptions",
        Some(&bob.token),
        Some(device.subscription()),
    )
    .await;
    assert_eq!(status, 200, "{again}");
    let (_, list) = call("GET", "/users/me/push-subscriptions", Some(&bob.token), None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let id = list["items"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(again["id"], id.as_str());
    assert!(list["items"][0].get("endpoint").is_none(), "the endpoint is not echoed");

    // Someone else's subscription is not theirs to see or remove.
    let (status, theirs) = call("GET", "/users/me/push-subscriptions", Some(&mallory.token), None).await;
    assert_eq!((status, theirs["items"].as_array().unwrap().len()), (200, 0));
    let (status, body) = call(
        "DELETE",
        &format!("/users/me/push-subscriptions/{id}"),
        Some(&mallory.token),
        None,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
    let (status, _) = call("DELETE", "/users/me/push-subscriptions/unknown", Some(&bob.token), None).await;
    assert_eq!(status, 404);
    let (status, _) = call("GET", "/users/me/push-subscriptions", None, None).await;
    assert_eq!(status, 401);
    let (status, _) = call(
        "POST",
        "/users/me/push-subscriptions",
        Some("not-a-token"),
        Some(device.subscription()),
    )
    .await;
    assert_eq!(status, 401);

    let other = service.device();
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({ "endpoint": other.endpoint, "keys": { "p256dh": other.p256dh, "auth": other.auth } }),
            "type",
        ),
        (json!({ "type": "sms", "token": "x" }), "type"),
        (
            json!({ "type": "webpush", "endpoint": "ftp://127.0.0.1/push", "keys": { "p256dh": other.p256dh, "auth": other.auth } }),
            "endpoint",
        ),
        (
            json!({ "type": "webpush", "endpoint": "http://10.0.0.8/push", "keys": { "p256dh": other.p256dh, "auth": other.auth } }),
            "endpoint",
        ),
        (
            json!({ "type": "webpush", "endpoint": "not a url", "keys": { "p256dh": other.p256dh, "auth": other.auth } }),
            "endpoint",
        ),
        (
            json!({ "type": "webpush", "endpoint": other.endpoint, "keys": { "p256dh": "BAAA", "auth": other.auth } }),
            "keys.p256dh",
        ),
        (
            json!({ "type": "webpush", "endpoint": other.endpoint, "keys": { "p256dh": other.p256dh, "auth": "c2hvcnQ" } }),
            "keys.auth",
        ),
        (json!({ "type": "webpush", "endpoint": other.endpoint }), "keys"),
        (
            json!({ "type": "webpush", "endpoint": 5, "keys": { "p256dh": other.p256dh, "auth": other.auth } }),
            "endpoint",
        ),
        (
            json!({ "type": "webpush", "endpoint": other.endpoint, "token": "t", "keys": { "p256dh": other.p256dh, "auth": other.auth } }),
            "token",
        ),
        (json!({ "type": "fcm" }), "token"),
        (json!({ "type": "fcm", "token": "has space" }), "token"),
        (json!({ "type": "apns", "token": "not-hex" }), "token"),
    ];
    for (body, field) in cases {
        let (status, answer) = call(
            "POST",
            "/users/me/push-subscriptions",
            Some(&bob.token),
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, 400, "{body} -> {answer}");
        assert_eq!(answer["error"]["code"], "validation_failed", "{body} -> {answer}");
        assert!(
            answer["error"]["message"].as_str().unwrap().contains(field),
            "{body} names {field}: {answer}"
        );
    }
    let response = reqwest::Client::new()
        .post(format!("{}/users/me/push-subscriptions", stack().http_url))
        .bearer_auth(&bob.token)
        .header("content-type", "application/json")
        .body("{\"type\": \"webpush\",")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let (_, list) = call("GET", "/users/me/push-subscriptions", Some(&bob.token), None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "nothing was written");

    // At most 20 devices.
    for _ in 1..parley::push::MAX_SUBSCRIPTIONS {
        let d = service.device();
        let (status, body) = call(
            "POST",
            "/users/me/push-subscriptions",
            Some(&bob.token),
            Some(d.subscription()),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = call(
        "POST",
        "/users/me/push-subscriptions",
        Some(&bob.token),
        Some(service.device().subscription()),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "conflict");
    let (status, _) = call(
        "POST",
        "/users/me/push-subscriptions",
        Some(&bob.token),
        Some(device.subscription()),
    )
    .await;
    assert_eq!(status, 200, "a known device still registers again when full");
    let (status, _) = call(
        "DELETE",
        &format!("/users/me/push-subscriptions/{id}"),
        Some(&bob.token),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = call(
        "DELETE",
        &format!("/users/me/push-subscriptions/{id}"),
        Some(&bob.token),
        None,
    )
    .await;
    assert_eq!(status, 404, "gone");
}

#[tokio::test]
async fn notification_settings_are_for_members_and_checked() {
    let alice = rt().user("pushseta").await;
    let bob = rt().user("pushsetb").await;
    let outsider = rt().user("pushseto").await;
    let group = rt().group(&alice, &[&bob]).await;
    let path = format!("/conversations/{group}/notifications");
    let (status, body) = call("PUT", &path, Some(&outsider.token), Some(json!({ "level": "none" }))).await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = call(
        "PUT",
        "/conversations/01JH3Z7Q2W8E4R6T8Y0V2J4K6P/notifications",
        Some(&bob.token),
        Some(json!({ "level": "none" })),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = call("PUT", &path, None, Some(json!({ "level": "none" }))).await;
    assert_eq!(status, 401);
    let past = humantime::format_rfc3339_millis(std::time::SystemTime::now() - Duration::from_secs(60)).to_string();
    let far = humantime::format_rfc3339_millis(std::time::SystemTime::now() + Duration::from_secs(400 * 24 * 3600))
        .to_string();
    for (body, field) in [
        (json!({}), "level"),
        (json!({ "level": "loud" }), "level"),
        (json!({ "level": 3 }), "level"),
        (json!({ "level": null }), "level"),
        (json!({ "level": "all", "mutedUntil": "tomorrow" }), "mutedUntil"),
        (json!({ "level": "all", "mutedUntil": past }), "mutedUntil"),
        (json!({ "level": "all", "mutedUntil": far }), "mutedUntil"),
    ] {
        let (status, answer) = call("PUT", &path, Some(&bob.token), Some(body.clone())).await;
        assert_eq!(status, 400, "{body} -> {answer}");
        assert!(
            answer["error"]["message"].as_str().unwrap().contains(field),
            "{body}: {answer}"
        );
    }
    let answer = set_level(&bob, &group, json!({ "level": "mentions" })).await;
    assert_eq!(answer, json!({ "level": "mentions", "mutedUntil": null }));
}

/// Push latency on this machine: from the moment a send's HTTP request leaves the client to the push
/// service's receipt of the push (the delivery worker, the push queue, the push worker, encryption and
/// the post), for 40 messages to an offline member, each in a conversation of its own (no collapse).
/// `cargo test -p parley-tests --test e2e push::push_latency -- --ignored --nocapture`
#[tokio::test]
#[ignore = "a measurement for BENCHMARKS.md, not a check"]
async fn push_latency() {
    let service = push_service().await;
    let alice = rt().user("pushlata").await;
    let (bob, device) = subscribed(&service, "pushlatb").await;
    let mut latencies = Vec::new();
    for n in 0..40 {
        let group = rt().group(&alice, &[&bob]).await;
        let started = std::time::Instant::now();
        send(&alice, &group, text(&format!("latency {n}"))).await;
        let received = service.wait_for(&device, n + 1, WITHIN).await;
        assert_eq!(received.len(), n + 1);
        latencies.push(received[n].at.duration_since(started));
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1)];
    println!(
        "push latency over {} pushes: p50 {:?}, p95 {:?}, max {:?}",
        latencies.len(),
        at(0.50),
        at(0.95),
        latencies.last().unwrap()
    );
}
