//! Threads, reactions and mentions end to end over real HTTP and WebSocket connections on the local
//! stack (docs/API-GUIDE.md "Messages"): replies one level deep with exact counts under concurrency, reactions
//! idempotent per user with exact counts under concurrency and `myReactions` wherever a caller reads a
//! message, mentions of members only with the reader's `mentionCount`, and every bad input refused
//! with nothing changed.

use std::collections::BTreeMap;

use parley_tests::realtime::{events_of_kind, send_frame, Clients, User};
use parley_tests::{eventually, stack};
use serde_json::{json, Value};

fn rt() -> Clients {
    Clients { stack: stack() }
}

fn assert_error(answer: &(u16, Value), status: u16, code: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["error"]["code"], code, "{}", answer.1);
}

async fn send(user: &User, conversation: &str, body: Value) -> (u16, Value) {
    rt().call(
        "POST",
        &format!("/conversations/{conversation}/messages"),
        Some(&user.token),
        Some(body),
    )
    .await
}

async fn get_message(user: &User, conversation: &str, id: &str) -> Value {
    let (status, message) = rt()
        .call(
            "GET",
            &format!("/conversations/{conversation}/messages/{id}"),
            Some(&user.token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{message}");
    message
}

/// Every message of the conversation, newest first (what `GET .../messages` gives).
async fn history(user: &User, conversation: &str) -> Vec<Value> {
    let (status, page) = rt()
        .call(
            "GET",
            &format!("/conversations/{conversation}/messages?limit=100"),
            Some(&user.token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

/// The path segment of a reaction (percent-encoded, as a browser sends it).
fn encoded(reaction: &str) -> String {
    reaction.bytes().map(|b| format!("%{b:02X}")).collect()
}

/// A reaction as a well-behaved client makes it: a burst over the function's reserved concurrency is
/// throttled by API Gateway (`429 {"message":"Too Many Requests"}`: nothing ran), so it backs off and
/// tries again. Any other answer is returned.
async fn react(user: &User, conversation: &str, message: &str, reaction: &str, method: &str) -> (u16, Value) {
    let path = format!(
        "/conversations/{conversation}/messages/{message}/reactions/{}",
        encoded(reaction)
    );
    let mut back_off = std::time::Duration::from_millis(20);
    loop {
        let (status, body) = rt().call(method, &path, Some(&user.token), None).await;
        if status != 429 || body != json!({ "message": "Too Many Requests" }) {
            return (status, body);
        }
        tokio::time::sleep(back_off).await;
        back_off = (back_off * 2).min(std::time::Duration::from_millis(500));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn replies_form_a_thread_with_exact_counts_and_appear_in_the_history() {
    let (ann, bob) = (rt().user("ann").await, rt().user("bob").await);
    let group = rt().group(&ann, &[&bob]).await;
    let parent = rt().http_send(&ann, &group, "root", "where shall we eat?").await;
    let parent_id = parent["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (parent["replyCount"].as_u64(), parent.get("parentMessageId")),
        (Some(0), None)
    );

    // Twenty concurrent replies over HTTP, and one over the WebSocket.
    let replies: Vec<_> = (0..20)
        .map(|i| {
            let (user, group, parent_id) = (if i % 2 == 0 { ann.clone() } else { bob.clone() }, group.clone(), parent_id.clone());
            tokio::spawn(async move {
                let (status, reply) = send(
                    &user,
                    &group,
                    json!({ "clientMessageId": format!("reply-{i}"), "body": format!("idea {i}"), "parentMessageId": parent_id }),
                )
                .await;
                assert_eq!(status, 201, "{reply}");
                reply
            })
        })
        .collect();
    for reply in replies {
        assert_eq!(reply.await.unwrap()["parentMessageId"], parent_id.as_str());
    }
    let mut socket = rt().connect(&bob).await;
    send_frame(
        &mut socket,
        json!({ "action": "sendMessage", "conversationId": group, "clientMessageId": "ws-reply", "body": "over the socket", "parentMessageId": parent_id }),
    )
    .await;
    let ack = events_of_kind(&mut socket, "ack", 1).await.remove(0);
    assert_eq!(ack["message"]["parentMessageId"], parent_id.as_str());
    let last_reply_at = ack["message"]["createdAt"].clone();

    let parent_now = get_message(&ann, &group, &parent_id).await;
    assert_eq!(parent_now["replyCount"], 21, "{parent_now}");
    // `lastReplyAt` follows from the conversation worker, a moment after the answer.
    let replied_at = eventually(&last_reply_at, || async {
        get_message(&ann, &group, &parent_id).await["lastReplyAt"].clone()
    })
    .await;
    assert_eq!(replied_at, last_reply_at);

    // The thread, oldest first, in pages.
    let mut thread = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/conversations/{group}/messages/{parent_id}/replies?limit=8&cursor={c}"),
            None => format!("/conversations/{group}/messages/{parent_id}/replies?limit=8"),
        };
        let (status, page) = rt().call("GET", &path, Some(&bob.token), None).await;
        assert_eq!(status, 200, "{page}");
        thread.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["id"].as_str().unwrap().to_owned()),
        );
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(thread.len(), 21);
    assert!(thread.windows(2).all(|w| w[0] < w[1]), "oldest first: {thread:?}");
    let in_history = history(&ann, &group).await;
    let replies_in_history = in_history
        .iter()
        .filter(|m| m["parentMessageId"] == parent_id.as_str())
        .count();
    assert_eq!(replies_in_history, 21, "replies are in the main history too");

    // Deleting a reply takes it off the count once, however many deletes race.
    let doomed = thread[0].clone();
    let deletes: Vec<_> = (0..4)
        .map(|_| {
            let (token, path) = (ann.token.clone(), format!("/conversations/{group}/messages/{doomed}"));
            tokio::spawn(async move { rt().call("DELETE", &path, Some(&token), None).await.0 })
        })
        .collect();
    for delete in deletes {
        assert_eq!(delete.await.unwrap(), 204);
    }
    assert_eq!(get_message(&bob, &group, &parent_id).await["replyCount"], 20);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_parents_are_refused_and_nothing_is_stored() {
    let (ann, bob) = (rt().user("ann").await, rt().user("bob").await);
    let group = rt().group(&ann, &[&bob]).await;
    let elsewhere = rt().group(&ann, &[]).await;
    let foreign = rt().http_send(&ann, &elsewhere, "foreign", "other room").await;
    let parent = rt().http_send(&ann, &group, "root", "root").await;
    let (_, reply) = send(
        &ann,
        &group,
        json!({ "clientMessageId": "r1", "body": "reply", "parentMessageId": parent["id"] }),
    )
    .await;
    let before = history(&ann, &group).await.len();
    for (client_id, parent_id) in [
        ("in-other", foreign["id"].clone()),
        ("to-reply", reply["id"].clone()),
        ("missing", json!(ulid::Ulid::generate().to_string())),
        ("malformed", json!("not-an-id")),
        ("wrong-type", json!(42)),
    ] {
        let answer = send(
            &ann,
            &group,
            json!({ "clientMessageId": client_id, "body": "x", "parentMessageId": parent_id }),
        )
        .await;
        assert_error(&answer, 400, "validation_failed");
        assert!(
            answer.1["error"]["message"]
                .as_str()
                .unwrap()
                .contains("parentMessageId"),
            "{}",
            answer.1
        );
    }
    assert_eq!(history(&ann, &group).await.len(), before, "nothing stored");
    assert_eq!(
        get_message(&ann, &group, parent["id"].as_str().unwrap()).await["replyCount"],
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reactions_are_idempotent_per_user_and_show_wherever_a_message_is_read() {
    let (ann, bob) = (rt().user("ann").await, rt().user("bob").await);
    let group = rt().group(&ann, &[&bob]).await;
    let message = rt().http_send(&ann, &group, "react-me", "lunch?").await;
    let id = message["id"].as_str().unwrap().to_owned();
    // The send's answer is the message as its event carries it: counts, no per-reader `myReactions`.
    assert_eq!(
        (message["reactions"].clone(), message.get("myReactions")),
        (json!({}), None)
    );
    let mut anns = rt().connect(&ann).await;

    assert_eq!(react(&bob, &group, &id, "👍", "PUT").await.0, 204);
    assert_eq!(react(&bob, &group, &id, "👍", "PUT").await.0, 204, "again: idempotent");
    assert_eq!(react(&bob, &group, &id, "pizza", "PUT").await.0, 204);
    let added = events_of_kind(&mut anns, "reaction.added", 2).await;
    assert_eq!(
        added[0],
        json!({ "type": "reaction.added", "conversationId": group, "messageId": id, "userId": bob.id, "reaction": "👍" })
    );

    let seen_by_bob = get_message(&bob, &group, &id).await;
    assert_eq!(seen_by_bob["reactions"], json!({ "👍": 1, "pizza": 1 }));
    assert_eq!(seen_by_bob["myReactions"], json!(["pizza", "👍"]));
    let seen_by_ann = get_message(&ann, &group, &id).await;
    assert_eq!(
        (
            seen_by_ann["reactions"]["👍"].clone(),
            seen_by_ann["myReactions"].clone()
        ),
        (json!(1), json!([]))
    );
    // In the history, and on the conversation's lastMessage, with the reader's own.
    let page = history(&bob, &group).await;
    assert_eq!(page[0]["myReactions"], json!(["pizza", "👍"]));
    // `lastMessage` is the conversation worker's, a moment after the send's answer.
    let mine = eventually(&json!(["pizza", "👍"]), || async {
        let (_, conversation) = rt()
            .call("GET", &format!("/conversations/{group}"), Some(&bob.token), None)
            .await;
        conversation["lastMessage"]["myReactions"].clone()
    })
    .await;
    assert_eq!(mine, json!(["pizza", "👍"]));
    let (_, list) = rt().call("GET", "/conversations", Some(&bob.token), None).await;
    let listed = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == group.as_str())
        .unwrap();
    assert_eq!(listed["lastMessage"]["reactions"]["pizza"], 1);

    assert_eq!(react(&bob, &group, &id, "👍", "DELETE").await.0, 204);
    assert_eq!(
        react(&bob, &group, &id, "👍", "DELETE").await.0,
        204,
        "again: idempotent"
    );
    let removed = events_of_kind(&mut anns, "reaction.removed", 1).await;
    assert_eq!(removed[0]["reaction"], "👍");
    let after = get_message(&bob, &group, &id).await;
    assert_eq!(
        (after["reactions"].clone(), after["myReactions"].clone()),
        (json!({ "pizza": 1 }), json!(["pizza"]))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_users_reacting_concurrently_fifty_times_each_give_exact_counts() {
    let (ann, bob) = (rt().user("ann").await, rt().user("bob").await);
    let group = rt().group(&ann, &[&bob]).await;
    let message = rt().http_send(&ann, &group, "busy", "vote!").await;
    let id = message["id"].as_str().unwrap().to_owned();
    let reactions = ["👍", "🎉", "❤️", "😂", "🔥", "yes", "no", "maybe", "later", "+1"];
    let mut tasks = Vec::new();
    for user in [&ann, &bob] {
        for i in 0..50 {
            let (user, group, id) = (user.clone(), group.clone(), id.clone());
            let reaction = reactions[i % reactions.len()];
            tasks.push(tokio::spawn(async move {
                react(&user, &group, &id, reaction, "PUT").await.0
            }));
        }
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), 204);
    }
    let seen = get_message(&ann, &group, &id).await;
    let expected: BTreeMap<&str, u64> = reactions.iter().map(|r| (*r, 2)).collect();
    assert_eq!(seen["reactions"], json!(expected), "each reaction once per user");
    assert_eq!(seen["myReactions"].as_array().unwrap().len(), reactions.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_reactions_are_refused_and_change_nothing() {
    let (ann, bob, outsider) = (rt().user("ann").await, rt().user("bob").await, rt().user("out").await);
    let group = rt().group(&ann, &[&bob]).await;
    let message = rt().http_send(&ann, &group, "limits", "react").await;
    let id = message["id"].as_str().unwrap().to_owned();
    for bad in ["👍👍", "Thumbs Up", "a/b", &"a".repeat(33)] {
        assert_error(&react(&ann, &group, &id, bad, "PUT").await, 400, "validation_failed");
    }
    assert_error(
        &react(&ann, &group, "not-an-id", "👍", "PUT").await,
        400,
        "validation_failed",
    );
    assert_error(
        &react(&ann, &group, &ulid::Ulid::generate().to_string(), "👍", "PUT").await,
        404,
        "not_found",
    );
    assert_error(&react(&outsider, &group, &id, "👍", "PUT").await, 404, "not_found");
    // Twenty distinct reactions, then a 21st is refused (an existing one is still fine).
    for i in 0..20 {
        assert_eq!(react(&ann, &group, &id, &format!("r{i}"), "PUT").await.0, 204);
    }
    assert_error(&react(&bob, &group, &id, "r20", "PUT").await, 409, "conflict");
    assert_eq!(react(&bob, &group, &id, "r3", "PUT").await.0, 204);
    let seen = get_message(&bob, &group, &id).await;
    assert_eq!(seen["reactions"].as_object().unwrap().len(), 20);
    assert_eq!(seen["reactions"]["r3"], 2);
    // A deleted message takes no reactions and shows none.
    let (status, _) = rt()
        .call(
            "DELETE",
            &format!("/conversations/{group}/messages/{id}"),
            Some(&ann.token),
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_error(&react(&bob, &group, &id, "👍", "PUT").await, 409, "conflict");
    let gone = get_message(&bob, &group, &id).await;
    assert_eq!(
        (
            gone["reactions"].clone(),
            gone["myReactions"].clone(),
            gone["body"].clone()
        ),
        (json!({}), json!([]), json!(""))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn mentions_name_members_and_count_until_read() {
    let (ann, bob, cy, outsider) = (
        rt().user("ann").await,
        rt().user("bob").await,
        rt().user("cyx").await,
        rt().user("out").await,
    );
    let group = rt().group(&ann, &[&bob, &cy]).await;
    let (status, first) = send(
        &ann,
        &group,
        json!({ "clientMessageId": "m1", "body": "@bob look", "mentions": [bob.id] }),
    )
    .await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["mentions"], json!([bob.id]));
    send(
        &ann,
        &group,
        json!({ "clientMessageId": "m2", "body": "@bob @cy", "mentions": [bob.id, cy.id, bob.id] }),
    )
    .await;
    rt().http_send(&ann, &group, "m3", "no mention").await;
    let counts = |user: &User| {
        let (token, group) = (user.token.clone(), group.clone());
        async move {
            let (_, c) = rt()
                .call("GET", &format!("/conversations/{group}"), Some(&token), None)
                .await;
            (c["unreadCount"].as_u64().unwrap(), c["mentionCount"].as_u64().unwrap())
        }
    };
    // Counts follow from the conversation worker, a moment after the sends' answers.
    assert_eq!(eventually(&(3, 2), || counts(&bob)).await, (3, 2));
    assert_eq!(eventually(&(3, 1), || counts(&cy)).await, (3, 1));
    assert_eq!(eventually(&(0, 0), || counts(&ann)).await, (0, 0));

    // Bad mentions: nothing stored.
    let before = history(&ann, &group).await.len();
    let answer = send(
        &ann,
        &group,
        json!({ "clientMessageId": "bad1", "body": "x", "mentions": [outsider.id] }),
    )
    .await;
    assert_error(&answer, 400, "validation_failed");
    assert!(
        answer.1["error"]["message"].as_str().unwrap().contains(&outsider.id),
        "names it: {}",
        answer.1
    );
    let many: Vec<String> = (0..51).map(|_| ulid::Ulid::generate().to_string()).collect();
    assert_error(
        &send(
            &ann,
            &group,
            json!({ "clientMessageId": "bad2", "body": "x", "mentions": many }),
        )
        .await,
        400,
        "validation_failed",
    );
    assert_error(
        &send(
            &ann,
            &group,
            json!({ "clientMessageId": "bad3", "body": "x", "mentions": ["nope"] }),
        )
        .await,
        400,
        "validation_failed",
    );
    assert_error(
        &send(
            &ann,
            &group,
            json!({ "clientMessageId": "bad4", "body": "x", "mentions": "bob" }),
        )
        .await,
        400,
        "validation_failed",
    );
    assert_eq!(history(&ann, &group).await.len(), before);

    // Reading up to the first mention clears it; reading everything clears both.
    let (status, _) = rt()
        .call(
            "POST",
            &format!("/conversations/{group}/read"),
            Some(&bob.token),
            Some(json!({ "messageId": first["id"] })),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(counts(&bob).await, (2, 1));
    let newest = history(&bob, &group).await[0]["id"].clone();
    rt().call(
        "POST",
        &format!("/conversations/{group}/read"),
        Some(&bob.token),
        Some(json!({ "messageId": newest })),
    )
    .await;
    assert_eq!(counts(&bob).await, (0, 0));
}
