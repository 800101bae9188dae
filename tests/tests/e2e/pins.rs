//! Pinned messages (docs/API-GUIDE.md "Pins") end to end over real HTTP and WebSocket clients on the
//! local stack: who may pin, the members' `message.pinned` / `message.unpinned` events (once per change:
//! pin and unpin are idempotent), the limit of 50, deleted messages, and the refusals.

use parley_tests::realtime::{silent, until, Clients, User};
use parley_tests::stack;
use serde_json::{json, Value};

fn rt() -> Clients {
    Clients { stack: stack() }
}

async fn call(method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    rt().call(method, path, token, body).await
}

async fn pin(user: &User, conversation: &str, message: &str) -> (u16, Value) {
    call(
        "PUT",
        &format!("/conversations/{conversation}/pins/{message}"),
        Some(&user.token),
        None,
    )
    .await
}

async fn unpin(user: &User, conversation: &str, message: &str) -> (u16, Value) {
    call(
        "DELETE",
        &format!("/conversations/{conversation}/pins/{message}"),
        Some(&user.token),
        None,
    )
    .await
}

async fn pinned(user: &User, conversation: &str) -> (u16, Value) {
    call(
        "GET",
        &format!("/conversations/{conversation}/pins"),
        Some(&user.token),
        None,
    )
    .await
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

fn assert_error(answer: &(u16, Value), status: u16, code: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["error"]["code"], code, "{}", answer.1);
    assert!(answer.1["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
}

#[tokio::test(flavor = "multi_thread")]
async fn owners_pin_members_hear_of_it_once_and_read_the_pins() {
    let (ann, bob, outsider) = (
        rt().user("pina").await,
        rt().user("pinb").await,
        rt().user("pino").await,
    );
    let group = rt().group(&ann, &[&bob]).await;
    let first = rt().http_send(&bob, &group, "p1", "pin me").await;
    let second = rt().http_send(&ann, &group, "p2", "and me").await;
    let (first, second) = (first["id"].as_str().unwrap(), second["id"].as_str().unwrap());
    let mut bob_ws = rt().connect(&bob).await;

    assert_eq!(pin(&ann, &group, first).await.0, 204);
    let event = until(&mut bob_ws, |e| e["type"] == "message.pinned").await;
    assert_eq!(
        event,
        json!({ "type": "message.pinned", "conversationId": group, "messageId": first })
    );
    // Again: nothing changes, nobody hears of it.
    assert_eq!(pin(&ann, &group, first).await.0, 204);
    assert_eq!(pin(&ann, &group, second).await.0, 204);
    let event = until(&mut bob_ws, |e| e["type"] == "message.pinned").await;
    assert_eq!(event["messageId"], second, "the repeat sent no event before this one");

    // A plain member of a group may not pin; an outsider does not see the group.
    assert_error(&pin(&bob, &group, first).await, 403, "forbidden");
    assert_error(&unpin(&bob, &group, first).await, 403, "forbidden");
    assert_error(&pin(&outsider, &group, first).await, 404, "not_found");
    assert_error(&pinned(&outsider, &group).await, 404, "not_found");
    // Bad and unknown ids.
    assert_error(&pin(&ann, &group, "not-a-ulid").await, 400, "validation_failed");
    assert_error(&pin(&ann, &group, "01ARZ3NDEKTSV4RRFFQ69G5FAV").await, 404, "not_found");

    // Members read them, newest pin first, as messages.
    let (status, page) = pinned(&bob, &group).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(ids(&page), vec![second.to_owned(), first.to_owned()]);
    assert_eq!(page["items"][1]["body"], "pin me");

    // Unpinned once; the repeat is quiet.
    assert_eq!(unpin(&ann, &group, second).await.0, 204);
    let event = until(&mut bob_ws, |e| e["type"] == "message.unpinned").await;
    assert_eq!(event["messageId"], second);
    assert_eq!(unpin(&ann, &group, second).await.0, 204);
    silent(&mut bob_ws, 500).await;

    // Deleting a pinned message unpins it; a deleted message cannot be pinned.
    let (status, _) = call(
        "DELETE",
        &format!("/conversations/{group}/messages/{first}"),
        Some(&bob.token),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let event = until(&mut bob_ws, |e| e["type"] == "message.unpinned").await;
    assert_eq!(event["messageId"], first);
    assert_eq!(ids(&pinned(&ann, &group).await.1), Vec::<String>::new());
    assert_error(&pin(&ann, &group, first).await, 409, "conflict");
}

#[tokio::test(flavor = "multi_thread")]
async fn either_member_pins_in_a_direct_conversation_and_fifty_is_the_most() {
    let (ann, bob) = (rt().user("pind").await, rt().user("pine").await);
    let (status, direct) = call(
        "POST",
        "/conversations",
        Some(&ann.token),
        Some(json!({ "type": "direct", "memberIds": [bob.id] })),
    )
    .await;
    assert!(status == 201 || status == 200, "{direct}");
    let direct = direct["id"].as_str().unwrap().to_owned();
    let mut sent = Vec::new();
    for i in 0..51 {
        let message = rt()
            .http_send(&ann, &direct, &format!("m{i}"), &format!("message {i}"))
            .await;
        sent.push(message["id"].as_str().unwrap().to_owned());
    }
    for (i, id) in sent.iter().take(50).enumerate() {
        let who = if i % 2 == 0 { &ann } else { &bob };
        assert_eq!(pin(who, &direct, id).await.0, 204, "pin {i}");
    }
    assert_error(&pin(&bob, &direct, &sent[50]).await, 409, "conflict");
    assert_eq!(ids(&pinned(&bob, &direct).await.1).len(), 50);
    // Room again after an unpin.
    assert_eq!(unpin(&ann, &direct, &sent[0]).await.0, 204);
    assert_eq!(pin(&bob, &direct, &sent[50]).await.0, 204);
}
