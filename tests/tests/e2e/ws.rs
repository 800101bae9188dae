//! Real time end to end: real WebSocket clients on the local stack (the real functions, DynamoDB
//! Local), events from both the WebSocket and the HTTP routes.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use futures_util::{SinkExt, StreamExt};
use parley_tests::realtime::{events_of, next, send_frame, silent, Clients, Socket, User};
use parley_tests::stack;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

fn rt() -> Clients {
    Clients { stack: stack() }
}

async fn call(method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    rt().call(method, path, token, body).await
}

async fn user(prefix: &str) -> User {
    rt().user(prefix).await
}

async fn connect_with(query: &str) -> Result<Socket, u16> {
    rt().connect_with(query).await
}

async fn connect(user: &User) -> Socket {
    rt().connect(user).await
}

async fn group(owner: &User, members: &[&User]) -> String {
    rt().group(owner, members).await
}

async fn http_send(sender: &User, conversation: &str, client_id: &str, body: &str) -> Value {
    rt().http_send(sender, conversation, client_id, body).await
}

#[tokio::test(flavor = "multi_thread")]
async fn two_users_on_three_connections_see_exactly_their_events() {
    let (ann, bob, eve) = (user("ann").await, user("bob").await, user("eve").await);
    let (status, direct) = call(
        "POST",
        "/conversations",
        Some(&ann.token),
        Some(json!({ "type": "direct", "memberIds": [bob.id] })),
    )
    .await;
    assert_eq!(status, 201);
    let conversation = direct["id"].as_str().unwrap().to_owned();
    let (mut ann_phone, mut ann_laptop, mut bob_phone, mut eve_phone) = (
        connect(&ann).await,
        connect(&ann).await,
        connect(&bob).await,
        connect(&eve).await,
    );

    // From the WebSocket: an ack to the sending connection, message.new to every other one.
    send_frame(
        &mut ann_phone,
        json!({ "action": "sendMessage", "conversationId": conversation, "clientMessageId": "a1", "body": "hi bob" }),
    )
    .await;
    let ack = next(&mut ann_phone).await;
    assert_eq!(
        (ack["type"].as_str(), ack["clientMessageId"].as_str()),
        (Some("ack"), Some("a1"))
    );
    let first = ack["message"].clone();
    for socket in [&mut ann_laptop, &mut bob_phone] {
        let event = next(socket).await;
        assert_eq!(event, json!({ "type": "message.new", "message": first }));
    }

    // From HTTP: every connection of both members, the sender's included.
    let second = http_send(&bob, &conversation, "b1", "hi ann").await;
    for socket in [&mut ann_phone, &mut ann_laptop, &mut bob_phone] {
        let event = next(socket).await;
        assert_eq!(
            (event["type"].as_str(), &event["message"]),
            (Some("message.new"), &second)
        );
    }

    // Typing reaches the others only; read markers reach everyone else.
    send_frame(
        &mut bob_phone,
        json!({ "action": "typing", "conversationId": conversation }),
    )
    .await;
    for socket in [&mut ann_phone, &mut ann_laptop] {
        assert_eq!(
            next(socket).await,
            json!({ "type": "typing", "conversationId": conversation, "userId": bob.id })
        );
    }
    send_frame(
        &mut ann_laptop,
        json!({ "action": "markRead", "conversationId": conversation, "messageId": second["id"] }),
    )
    .await;
    assert_eq!(next(&mut ann_laptop).await["type"], "ack");
    let read = json!({ "type": "read", "conversationId": conversation, "userId": ann.id, "messageId": second["id"], "seq": second["seq"] });
    assert_eq!(next(&mut ann_phone).await, read);
    assert_eq!(next(&mut bob_phone).await, read);

    // Edits and deletes over HTTP.
    let path = format!(
        "/conversations/{conversation}/messages/{}",
        first["id"].as_str().unwrap()
    );
    call("PATCH", &path, Some(&ann.token), Some(json!({ "body": "hi bob!" }))).await;
    call("DELETE", &path, Some(&ann.token), None).await;
    for socket in [&mut ann_phone, &mut ann_laptop, &mut bob_phone] {
        let updated = next(socket).await;
        assert_eq!(
            (updated["type"].as_str(), updated["message"]["body"].as_str()),
            (Some("message.updated"), Some("hi bob!"))
        );
        let deleted = next(socket).await;
        assert_eq!(
            (deleted["type"].as_str(), deleted["message"]["deleted"].as_bool()),
            (Some("message.deleted"), Some(true))
        );
    }

    // Eve, in no conversation with them, saw nothing; nobody saw anything more.
    silent(&mut eve_phone, 300).await;
    for socket in [&mut ann_phone, &mut ann_laptop, &mut bob_phone] {
        silent(socket, 100).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn removed_members_stop_receiving_and_added_ones_start() {
    let (owner, stays, leaves, joins) = (
        user("own").await,
        user("sta").await,
        user("lea").await,
        user("joi").await,
    );
    let conversation = group(&owner, &[&stays, &leaves]).await;
    let (mut stays_ws, mut leaves_ws, mut joins_ws) =
        (connect(&stays).await, connect(&leaves).await, connect(&joins).await);
    http_send(&owner, &conversation, "o1", "before").await;
    assert_eq!(next(&mut stays_ws).await["message"]["body"], "before");
    assert_eq!(next(&mut leaves_ws).await["message"]["body"], "before");

    let (status, _) = call(
        "DELETE",
        &format!("/conversations/{conversation}/members/{}", leaves.id),
        Some(&owner.token),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let removed = json!({ "type": "member.removed", "conversationId": conversation, "userIds": [leaves.id] });
    assert_eq!(next(&mut stays_ws).await, removed);
    assert_eq!(
        next(&mut leaves_ws).await,
        removed,
        "the removed member learns it, last"
    );

    let (status, _) = call(
        "POST",
        &format!("/conversations/{conversation}/members"),
        Some(&owner.token),
        Some(json!({ "userIds": [joins.id] })),
    )
    .await;
    assert_eq!(status, 200);
    let added = json!({ "type": "member.added", "conversationId": conversation, "userIds": [joins.id] });
    assert_eq!(next(&mut stays_ws).await, added);
    assert_eq!(next(&mut joins_ws).await, added);

    http_send(&owner, &conversation, "o2", "after").await;
    assert_eq!(next(&mut stays_ws).await["message"]["body"], "after");
    assert_eq!(next(&mut joins_ws).await["message"]["body"], "after");
    silent(&mut leaves_ws, 500).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vanished_connection_is_removed_on_the_next_send() {
    let (ann, bob) = (user("van").await, user("ish").await);
    let conversation = group(&ann, &[&bob]).await;
    let mut bob_ws = connect(&bob).await;
    // A connection API Gateway no longer knows (its $disconnect never came), still in Bob's set.
    let sdk = dynamodb_local::sdk_config(&stack().dynamodb_endpoint).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let key = || {
        std::collections::HashMap::from([
            ("PK".to_owned(), AttributeValue::S(format!("USER#{}", bob.id))),
            ("SK".to_owned(), AttributeValue::S("CONNS".to_owned())),
        ])
    };
    dynamodb
        .update_item()
        .table_name("ChatTable")
        .set_key(Some(key()))
        .update_expression("ADD connectionIds :id")
        .expression_attribute_values(":id", AttributeValue::Ss(vec!["VanishedConn0=".to_owned()]))
        .send()
        .await
        .unwrap();

    http_send(&ann, &conversation, "v1", "are you there?").await;
    assert_eq!(
        next(&mut bob_ws).await["message"]["body"],
        "are you there?",
        "the live connection still gets it"
    );
    // The worker removes the gone connection as its post comes back 410, beside the live one's delivery.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let ids = loop {
        let set = dynamodb
            .get_item()
            .table_name("ChatTable")
            .set_key(Some(key()))
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        let ids = set.item.unwrap()["connectionIds"].as_ss().unwrap().clone();
        if ids.len() == 1 || tokio::time::Instant::now() > deadline {
            break ids;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(ids.len(), 1, "only the live connection is left: {ids:?}");
    assert!(!ids.contains(&"VanishedConn0=".to_owned()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reconnecting_client_catches_up_without_loss() {
    let (ann, bob) = (user("rec").await, user("onn").await);
    let conversation = group(&ann, &[&bob]).await;
    let mut bob_ws = connect(&bob).await;
    let first = http_send(&ann, &conversation, "r1", "one").await;
    assert_eq!(next(&mut bob_ws).await["message"]["id"], first["id"]);
    bob_ws.close(None).await.unwrap();
    drop(bob_ws);

    let mut missed = Vec::new();
    for (i, body) in ["two", "three", "four"].iter().enumerate() {
        missed.push(http_send(&ann, &conversation, &format!("r{}", i + 2), body).await["id"].clone());
    }
    let mut bob_ws = connect(&bob).await;
    let (status, page) = call(
        "GET",
        &format!(
            "/conversations/{conversation}/messages?after={}",
            first["id"].as_str().unwrap()
        ),
        Some(&bob.token),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let caught_up: Vec<Value> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].clone())
        .collect();
    assert_eq!(caught_up, missed, "everything sent while away, oldest first");
    let live = http_send(&ann, &conversation, "r5", "five").await;
    assert_eq!(next(&mut bob_ws).await["message"]["id"], live["id"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hundred_clients_in_one_group_all_get_every_message() {
    let owner = user("hun").await;
    let mut members = Vec::new();
    for i in 0..99 {
        members.push(user(&format!("m{i}x")).await);
    }
    let refs: Vec<&User> = members.iter().collect();
    let conversation = group(&owner, &refs).await;
    let mut sockets = vec![connect(&owner).await];
    for member in &members {
        sockets.push(connect(member).await);
    }
    let mut sent = Vec::new();
    for i in 0..3 {
        sent.push(http_send(&owner, &conversation, &format!("h{i}"), &format!("to all {i}")).await["id"].clone());
    }
    for socket in sockets.iter_mut() {
        let mut got = Vec::new();
        while got.len() < 3 {
            for event in events_of(next(socket).await) {
                assert_eq!(event["type"], "message.new");
                got.push(event["message"]["id"].clone());
            }
        }
        assert_eq!(got, sent, "every message, in order");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn presence_goes_to_co_members_only() {
    let (ann, bob, stranger) = (user("pre").await, user("sen").await, user("str").await);
    group(&ann, &[&bob]).await;
    let (mut bob_ws, mut stranger_ws) = (connect(&bob).await, connect(&stranger).await);
    let (status, _) = call(
        "PATCH",
        "/users/me",
        Some(&ann.token),
        Some(json!({ "status": "away", "statusText": "lunch" })),
    )
    .await;
    assert_eq!(status, 200);
    let presence = next(&mut bob_ws).await;
    assert_eq!(
        (presence["type"].as_str(), presence["userId"].as_str()),
        (Some("presence"), Some(ann.id.as_str()))
    );
    assert_eq!(
        (presence["status"].as_str(), presence["statusText"].as_str()),
        (Some("away"), Some("lunch"))
    );
    silent(&mut stranger_ws, 400).await;
    let (status, _) = call(
        "PATCH",
        "/users/me",
        Some(&ann.token),
        Some(json!({ "displayName": "Ann" })),
    )
    .await;
    assert_eq!(status, 200);
    silent(&mut bob_ws, 400).await;
}

/// At most one `presence` per user every 10 seconds, changes within the window collapsed into the
/// last: a burst of three status changes reaches a co-member as the first at once and the last when
/// the window ends, never the one in between.
#[tokio::test(flavor = "multi_thread")]
async fn presence_goes_out_once_per_window_with_the_changes_in_it_collapsed() {
    let (ann, bob) = (user("thr").await, user("ott").await);
    group(&ann, &[&bob]).await;
    let mut bob_ws = connect(&bob).await;
    let status = |body: Value| {
        let token = ann.token.clone();
        async move {
            let (status, answer) = call("PATCH", "/users/me", Some(&token), Some(body)).await;
            assert_eq!(status, 200, "{answer}");
        }
    };
    status(json!({ "status": "away" })).await;
    let first = next(&mut bob_ws).await;
    let window_start = std::time::Instant::now();
    assert_eq!(
        (first["type"].as_str(), first["status"].as_str()),
        (Some("presence"), Some("away"))
    );
    status(json!({ "status": "busy" })).await;
    status(json!({ "status": "online", "statusText": "back" })).await;
    // Nothing until the window ends, then the last state only.
    silent(&mut bob_ws, 5_000).await;
    let collapsed = next(&mut bob_ws).await;
    assert!(
        window_start.elapsed() >= std::time::Duration::from_secs(8),
        "the collapsed change waits for the window's end ({:?})",
        window_start.elapsed()
    );
    assert_eq!(
        (
            collapsed["type"].as_str(),
            collapsed["status"].as_str(),
            collapsed["statusText"].as_str()
        ),
        (Some("presence"), Some("online"), Some("back"))
    );
    silent(&mut bob_ws, 2_000).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_the_documented_refusal_and_the_connection_keeps_working() {
    let (ann, bob) = (user("bad").await, user("inp").await);
    let conversation = group(&ann, &[&bob]).await;
    let (_, private) = call(
        "POST",
        "/conversations",
        Some(&bob.token),
        Some(json!({ "type": "group", "name": "p", "memberIds": [] })),
    )
    .await;
    let private = private["id"].as_str().unwrap().to_owned();

    assert_eq!(connect_with("").await.err(), Some(401), "no token");
    assert_eq!(connect_with("token=garbage").await.err(), Some(401), "bad token");
    let expired =
        parley::auth::tokens::TokenKeys::new(local_stack::LOCAL_TOKEN_SECRET.as_bytes(), Duration::from_secs(900))
            .issue(&ann.id, "S", std::time::SystemTime::now() - Duration::from_secs(3600))
            .unwrap();
    assert_eq!(
        connect_with(&format!("token={expired}")).await.err(),
        Some(401),
        "expired token"
    );

    let mut socket = connect(&ann).await;
    socket.send(Message::text("this is not JSON")).await.unwrap();
    let error = next(&mut socket).await;
    assert_eq!(
        (error["type"].as_str(), error["error"]["code"].as_str()),
        (Some("error"), Some("invalid_json"))
    );

    send_frame(&mut socket, json!({ "action": "dance" })).await;
    assert_eq!(next(&mut socket).await["error"]["code"], "validation_failed");

    send_frame(
        &mut socket,
        json!({ "action": "sendMessage", "conversationId": private, "clientMessageId": "x1", "body": "let me in" }),
    )
    .await;
    assert_eq!(next(&mut socket).await["error"]["code"], "not_found");

    send_frame(&mut socket, json!({ "action": "sendMessage", "conversationId": conversation, "clientMessageId": "x2", "body": "x".repeat(5000) })).await;
    let too_long = next(&mut socket).await;
    assert_eq!(too_long["error"]["code"], "validation_failed", "{too_long}");

    send_frame(
        &mut socket,
        json!({ "action": "sendMessage", "conversationId": conversation, "clientMessageId": "bad id!", "body": "hi" }),
    )
    .await;
    assert_eq!(next(&mut socket).await["error"]["code"], "validation_failed");

    send_frame(&mut socket, json!({ "action": "typing", "conversationId": private })).await;
    assert_eq!(
        next(&mut socket).await["error"]["code"],
        "not_found",
        "an error reaches the sender on a one-way route"
    );

    send_frame(&mut socket, json!({ "action": "ping" })).await;
    let pong = next(&mut socket).await;
    assert_eq!(pong["type"], "pong", "the connection still works");
    assert!(pong["at"].as_str().unwrap().ends_with('Z'));

    let (_, history) = call(
        "GET",
        &format!("/conversations/{conversation}/messages"),
        Some(&ann.token),
        None,
    )
    .await;
    assert_eq!(history["items"], json!([]), "nothing was stored by any bad frame");

    // Over API Gateway's 128 KB frame limit: the connection is closed with 1009.
    socket
        .send(Message::text(format!(
            "{{\"action\":\"ping\",\"pad\":\"{}\"}}",
            "x".repeat(130 * 1024)
        )))
        .await
        .unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("closed within 10 s")
        {
            Some(Ok(Message::Close(Some(frame)))) => {
                assert_eq!(u16::from(frame.code), 1009);
                break;
            }
            Some(Ok(Message::Text(text))) => {
                parley_tests::contract_ws::check_ws_frame(&serde_json::from_str(&text).unwrap())
            }
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}
