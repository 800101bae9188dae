//! Delivery through the queue and the worker, end to end over real HTTP and WebSocket connections on
//! the local stack: at-least-once for retried sends, every member of a 300-member group, events from
//! different requests coalesced into one `batch` frame, and the `seq` fields the API promises (asyncapi.yaml).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use parley::auth::tokens::TokenKeys;
use parley_tests::realtime::{events_of, next, next_within, send_frame, silent, Clients, Socket, User};
use parley_tests::{eventually, stack};
use serde_json::json;

fn rt() -> Clients {
    Clients { stack: stack() }
}

/// The `message.new` events that reach `socket` within `wait`, by message id (duplicates counted).
async fn collect_new(socket: &mut Socket, wait: Duration, want: usize) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + wait;
    while seen.len() < want {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(frame) = next_within(socket, left).await else {
            break;
        };
        for event in events_of(frame) {
            if event["type"] == "message.new" {
                *seen
                    .entry(event["message"]["id"].as_str().unwrap().to_owned())
                    .or_default() += 1;
            }
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retried_send_reaches_every_members_connections_again() {
    let (ann, bob) = (rt().user("ann").await, rt().user("bob").await);
    let group = rt().group(&ann, &[&bob]).await;
    let mut sockets = vec![
        rt().connect(&ann).await,
        rt().connect(&bob).await,
        rt().connect(&bob).await,
    ];
    let first = rt().http_send(&ann, &group, "retry-me", "once").await;
    for socket in &mut sockets {
        let event = next(socket).await;
        assert_eq!(
            (event["type"].as_str(), &event["message"]["id"]),
            (Some("message.new"), &first["id"])
        );
        assert_eq!(event["message"]["seq"], 1);
    }
    // The client did not get the answer and sends again: 200, the same message, delivered again.
    let (status, again) = rt()
        .call(
            "POST",
            &format!("/conversations/{group}/messages"),
            Some(&ann.token),
            Some(json!({ "clientMessageId": "retry-me", "body": "once" })),
        )
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["id"], first["id"]);
    for socket in &mut sockets {
        let event = next(socket).await;
        assert_eq!(
            (event["type"].as_str(), &event["message"]["id"]),
            (Some("message.new"), &first["id"])
        );
    }
    // And over the WebSocket: the ack again, and message.new again to the other connections.
    send_frame(
        &mut sockets[0],
        json!({ "action": "sendMessage", "conversationId": group, "clientMessageId": "retry-me", "body": "once" }),
    )
    .await;
    let ack = next(&mut sockets[0]).await;
    assert_eq!(
        (ack["type"].as_str(), &ack["message"]["id"]),
        (Some("ack"), &first["id"])
    );
    for socket in &mut sockets[1..] {
        let event = next(socket).await;
        assert_eq!(event["message"]["id"], first["id"]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_member_of_a_300_member_group_gets_every_message() {
    const MEMBERS: usize = 300;
    const MESSAGES: usize = 5;
    // Members written straight to the table with tokens signed by the local secret: 300 argon2 sign-ups
    // would only test argon2.
    let sdk = dynamodb_local::sdk_config(&stack().dynamodb_endpoint).await;
    let store = parley::store::Store::new(&sdk, "ChatTable", Duration::from_secs(1));
    let keys = TokenKeys::new(local_stack::LOCAL_TOKEN_SECRET.as_bytes(), Duration::from_secs(3600));
    let run = ulid::Ulid::generate().to_string()[18..].to_lowercase();
    let mut members = Vec::new();
    for i in 0..MEMBERS {
        let id = parley_tests::silent_user(&store, &format!("big{run}x{i}")).await;
        let token = keys.issue(&id, "big", SystemTime::now()).unwrap();
        members.push(User { id, token });
    }
    let others: Vec<&User> = members[1..].iter().collect();
    let group = rt().group(&members[0], &others).await;
    let mut sockets = Vec::new();
    for chunk in members.chunks(50) {
        let connecting: Vec<_> = chunk
            .iter()
            .map(|m| {
                let m = m.clone();
                tokio::spawn(async move { rt().connect(&m).await })
            })
            .collect();
        for socket in connecting {
            sockets.push(socket.await.unwrap());
        }
    }
    let mut sent = BTreeSet::new();
    for i in 0..MESSAGES {
        let message = rt()
            .http_send(&members[i + 1], &group, &format!("big-{i}"), "to everyone")
            .await;
        sent.insert(message["id"].as_str().unwrap().to_owned());
    }
    let readers: Vec<_> = sockets
        .into_iter()
        .map(|mut socket| {
            tokio::spawn(async move { collect_new(&mut socket, Duration::from_secs(60), MESSAGES).await })
        })
        .collect();
    for (i, reader) in readers.into_iter().enumerate() {
        let seen = reader.await.unwrap();
        let ids: BTreeSet<String> = seen.into_keys().collect();
        assert_eq!(ids, sent, "member {i} got every message");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn events_from_different_requests_are_coalesced_into_one_batch_frame() {
    let (ann, bob, cy, dee) = (
        rt().user("ann").await,
        rt().user("bob").await,
        rt().user("cy").await,
        rt().user("dee").await,
    );
    let group = rt().group(&ann, &[&bob, &cy, &dee]).await;
    let mut listener = rt().connect(&dee).await;
    // While the worker is held back, three people send: their events wait in the queue together, and
    // the worker's next batch carries all three to Dee as one frame.
    stack().with(|s| s.pause_event_sources(true)).await;
    let mut sent = Vec::new();
    for (user, id) in [(&ann, "c-1"), (&bob, "c-2"), (&cy, "c-3")] {
        sent.push(
            rt().http_send(user, &group, id, "together").await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    stack().with(|s| s.pause_event_sources(false)).await;
    let frame = next(&mut listener).await;
    assert_eq!(frame["type"], "batch", "one frame for the three: {frame}");
    let ids: BTreeSet<String> = events_of(frame)
        .iter()
        .map(|e| e["message"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, sent.into_iter().collect::<BTreeSet<_>>());
}

#[tokio::test(flavor = "multi_thread")]
async fn events_and_conversations_carry_seq_and_read_positions() {
    let (ann, bob) = (rt().user("ann").await, rt().user("bob").await);
    let group = rt().group(&ann, &[&bob]).await;
    let mut ann_socket = rt().connect(&ann).await;
    let mut bob_socket = rt().connect(&bob).await;
    let first = rt().http_send(&ann, &group, "s-1", "one").await;
    let second = rt().http_send(&ann, &group, "s-2", "two").await;
    assert_eq!((first["seq"].as_u64(), second["seq"].as_u64()), (Some(1), Some(2)));
    let seen = collect_new(&mut bob_socket, Duration::from_secs(15), 2).await;
    assert_eq!(seen.len(), 2);

    // Bob reads up to the first over the WebSocket: Ann hears `read` with its seq.
    send_frame(
        &mut bob_socket,
        json!({ "action": "markRead", "conversationId": group, "messageId": first["id"] }),
    )
    .await;
    let ack = next(&mut bob_socket).await;
    assert_eq!(ack["type"], "ack");
    let read = loop {
        let events = events_of(next(&mut ann_socket).await);
        if let Some(read) = events.into_iter().find(|e| e["type"] == "read") {
            break read;
        }
    };
    assert_eq!(
        (read["userId"].as_str(), read["seq"].as_u64()),
        (Some(bob.id.as_str()), Some(1))
    );
    // Reading the same message again moves nothing: an ack, and no `read` for anyone.
    send_frame(
        &mut bob_socket,
        json!({ "action": "markRead", "conversationId": group, "messageId": first["id"] }),
    )
    .await;
    assert_eq!(next(&mut bob_socket).await["type"], "ack");
    silent(&mut ann_socket, 1500).await;

    // `lastSeq` and the sender's read marker follow from the conversation worker, a moment after
    // the send's answer.
    let counts = eventually(&(200, Some(2), Some(1), Some(1)), || async {
        let (status, conversation) = rt()
            .call("GET", &format!("/conversations/{group}"), Some(&bob.token), None)
            .await;
        (
            status,
            conversation["lastSeq"].as_u64(),
            conversation["readSeq"].as_u64(),
            conversation["unreadCount"].as_u64(),
        )
    })
    .await;
    assert_eq!(counts, (200, Some(2), Some(1), Some(1)));
    let read_seqs = eventually(&(2, 1), || async {
        let (_, members) = rt()
            .call(
                "GET",
                &format!("/conversations/{group}/members"),
                Some(&ann.token),
                None,
            )
            .await;
        let read_seqs: BTreeMap<String, u64> = members["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["userId"].as_str().unwrap().to_owned(), m["readSeq"].as_u64().unwrap()))
            .collect();
        (read_seqs[ann.id.as_str()], read_seqs[bob.id.as_str()])
    })
    .await;
    assert_eq!(read_seqs, (2, 1), "a sender has read what it sent; bob read the first");
}
