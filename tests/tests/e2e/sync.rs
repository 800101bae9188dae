//! `GET /sync` end to end (docs/API-GUIDE.md "Catching up: sync"): real HTTP clients on the local stack,
//! whose conversation worker writes the sync keys and change items from the table's stream.
//!
//! What a client relies on: one call answers every conversation that changed since its token, once,
//! with the messages created or changed since (edits, deletes, reactions and replies included) in
//! their current state; conversations left or deleted come as `removed`; and nothing is skipped while
//! others keep sending, so the union of a client's answers is what the history route holds.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use parley_tests::realtime::{Clients, User};
use parley_tests::{stack, FOLLOW_UP_WITHIN};
use serde_json::{json, Value};

fn rt() -> Clients {
    Clients { stack: stack() }
}

async fn call(method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    rt().call(method, path, token, body).await
}

/// A token from after everything `conversations` did so far: once a sync from `early` shows each of
/// them (the worker has written their keys), and the sync's overlap (5 s) has passed, a new token
/// answers only what happens next.
async fn settled_token(user: &User, early: &str, conversations: &[&str]) -> String {
    sync_until(user, early, |answer| {
        conversations.iter().all(|c| entry(answer, c).is_some())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(parley::domain::sync::SYNC_OVERLAP_MS + 1_000)).await;
    let token = first_token(user).await;
    // Nothing changed since: a sync from it answers nothing (unchanged conversations cost nothing).
    let (status, answer) = sync(user, Some(&token), "").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["conversations"], json!([]), "settled: {answer}");
    assert_eq!(answer["removed"], json!([]), "settled: {answer}");
    token
}

async fn first_token(user: &User) -> String {
    sync(user, None, "").await.1["next"].as_str().unwrap().to_owned()
}

fn ids(messages: &Value) -> Vec<String> {
    messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

fn entry<'a>(answer: &'a Value, conversation: &str) -> Option<&'a Value> {
    answer["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["conversation"]["id"] == conversation)
}

#[tokio::test]
async fn a_sync_answers_each_changed_conversation_once_with_what_changed_in_it() {
    let (alice, bob) = (rt().user("synca").await, rt().user("syncb").await);
    let early = first_token(&bob).await;
    let quiet = rt().group(&alice, &[&bob]).await;
    let busy = rt().group(&alice, &[&bob]).await;
    let (status, direct) = call(
        "POST",
        "/conversations",
        Some(&alice.token),
        Some(json!({ "type": "direct", "memberIds": [bob.id] })),
    )
    .await;
    assert_eq!(status, 201, "{direct}");
    let direct = direct["id"].as_str().unwrap().to_owned();
    let old = rt().http_send(&alice, &busy, "old-1", "before the token").await;
    let old_id = old["id"].as_str().unwrap().to_owned();
    rt().http_send(&alice, &quiet, "quiet-1", "nothing after this").await;
    let token = settled_token(&bob, &early, &[&quiet, &busy, &direct]).await;

    let first = rt().http_send(&alice, &busy, "new-1", "after the token").await;
    let second = rt().http_send(&bob, &busy, "new-2", "and another").await;
    let (status, edited) = call(
        "PATCH",
        &format!("/conversations/{busy}/messages/{old_id}"),
        Some(&alice.token),
        Some(json!({ "body": "before the token, edited after" })),
    )
    .await;
    assert_eq!(status, 200, "{edited}");
    let (status, body) = call(
        "PUT",
        &format!(
            "/conversations/{busy}/messages/{}/reactions/tada",
            first["id"].as_str().unwrap()
        ),
        Some(&bob.token),
        None,
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let in_direct = rt().http_send(&alice, &direct, "direct-1", "psst").await;

    let want_busy: Vec<String> = [&old_id, first["id"].as_str().unwrap(), second["id"].as_str().unwrap()]
        .map(str::to_owned)
        .to_vec();
    let answer = sync_until(&bob, &token, |answer| {
        entry(answer, &busy)
            .is_some_and(|c| ids(&c["messages"]) == want_busy && c["messages"][1]["reactions"]["tada"] == 1)
            && entry(answer, &direct).is_some()
    })
    .await;

    assert!(
        entry(&answer, &quiet).is_none(),
        "an unchanged conversation is not answered: {answer}"
    );
    let busy_entry = entry(&answer, &busy).unwrap();
    assert_eq!(busy_entry["limited"], false);
    let messages = busy_entry["messages"].as_array().unwrap();
    // Ascending by seq, each once, in its current state (the edit, the reaction as bob sees it).
    assert_eq!(
        messages.iter().map(|m| m["seq"].as_u64().unwrap()).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(messages[0]["body"], "before the token, edited after");
    assert!(messages[0]["editedAt"].is_string());
    assert_eq!(messages[1]["myReactions"], json!(["tada"]));
    assert_eq!(busy_entry["conversation"]["lastSeq"], 3);
    assert_eq!(busy_entry["conversation"]["myRole"], "member");
    let direct_entry = entry(&answer, &direct).unwrap();
    assert_eq!(
        ids(&direct_entry["messages"]),
        vec![in_direct["id"].as_str().unwrap().to_owned()]
    );
    assert_eq!(answer["removed"], json!([]));
    // Newest activity first: the direct message came last.
    assert_eq!(answer["conversations"][0]["conversation"]["id"], direct.as_str());

    // The same token again answers at least as much; the next one, once things are quiet, nothing.
    let (status, again) = sync(&bob, Some(&token), "").await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(ids(&entry(&again, &busy).unwrap()["messages"]), want_busy);
    settled_token(&bob, answer["next"].as_str().unwrap(), &[]).await;
}

#[tokio::test]
async fn deleted_messages_and_replies_come_in_their_current_state() {
    let (alice, bob) = (rt().user("syncd").await, rt().user("synce").await);
    let early = first_token(&bob).await;
    let group = rt().group(&alice, &[&bob]).await;
    let parent = rt().http_send(&alice, &group, "parent", "a thread starts").await;
    let doomed = rt().http_send(&alice, &group, "doomed", "secret words").await;
    let parent_id = parent["id"].as_str().unwrap().to_owned();
    let token = settled_token(&bob, &early, &[&group]).await;

    let (status, reply) = call(
        "POST",
        &format!("/conversations/{group}/messages"),
        Some(&bob.token),
        Some(json!({ "clientMessageId": "reply", "body": "a reply", "parentMessageId": parent_id })),
    )
    .await;
    assert_eq!(status, 201, "{reply}");
    let (status, _) = call(
        "DELETE",
        &format!("/conversations/{group}/messages/{}", doomed["id"].as_str().unwrap()),
        Some(&alice.token),
        None,
    )
    .await;
    assert_eq!(status, 204);

    let answer = sync_until(&bob, &token, |answer| {
        entry(answer, &group).is_some_and(|c| {
            let m = c["messages"].as_array().unwrap();
            m.len() == 3 && m[0]["replyCount"] == 1 && m[1]["deleted"] == true
        })
    })
    .await;
    let messages = entry(&answer, &group).unwrap()["messages"].as_array().unwrap().clone();
    assert_eq!(messages[0]["id"], parent_id.as_str());
    assert_eq!(messages[0]["replyCount"], 1, "the parent, replied to: {answer}");
    assert_eq!(messages[1]["deleted"], true);
    assert_eq!(messages[1]["body"], "", "a deleted message's text never comes back");
    assert!(!answer.to_string().contains("secret words"));
    assert_eq!(messages[2]["parentMessageId"], parent_id.as_str());
}

#[tokio::test]
async fn leaving_removal_and_deletion_are_answered_as_removed() {
    let (alice, bob, carol) = (
        rt().user("syncf").await,
        rt().user("syncg").await,
        rt().user("synch").await,
    );
    let (bob_early, carol_early) = (first_token(&bob).await, first_token(&carol).await);
    let left = rt().group(&alice, &[&bob]).await;
    let removed = rt().group(&alice, &[&carol]).await;
    let deleted = rt().group(&carol, &[]).await;
    let bob_start = settled_token(&bob, &bob_early, &[&left]).await;
    let carol_start = settled_token(&carol, &carol_early, &[&removed, &deleted]).await;

    let (status, body) = call(
        "DELETE",
        &format!("/conversations/{left}/members/{}", bob.id),
        Some(&bob.token),
        None,
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = call(
        "DELETE",
        &format!("/conversations/{removed}/members/{}", carol.id),
        Some(&alice.token),
        None,
    )
    .await;
    assert_eq!(status, 204, "{body}");
    // The last member leaves: the group is deleted.
    let (status, body) = call(
        "DELETE",
        &format!("/conversations/{deleted}/members/{}", carol.id),
        Some(&carol.token),
        None,
    )
    .await;
    assert_eq!(status, 204, "{body}");

    let bob_answer = sync_until(&bob, &bob_start, |a| a["removed"] == json!([left])).await;
    assert!(entry(&bob_answer, &left).is_none(), "{bob_answer}");
    let mut want = vec![removed.clone(), deleted.clone()];
    want.sort();
    let carol_answer = sync_until(&carol, &carol_start, |a| a["removed"] == json!(want)).await;
    assert_eq!(carol_answer["conversations"], json!([]), "{carol_answer}");

    // Adding bob back makes it his again: the conversation, not `removed`.
    let (status, body) = call(
        "POST",
        &format!("/conversations/{left}/members"),
        Some(&alice.token),
        Some(json!({ "userIds": [bob.id] })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let back = sync_until(&bob, &bob_start, |a| entry(a, &left).is_some()).await;
    assert_eq!(back["removed"], json!([]), "{back}");
}

#[tokio::test]
async fn more_changes_than_the_limit_are_limited_and_paged_with_after() {
    let (alice, bob) = (rt().user("synci").await, rt().user("syncj").await);
    let early = first_token(&bob).await;
    let group = rt().group(&alice, &[&bob]).await;
    let token = settled_token(&bob, &early, &[&group]).await;
    let mut sent = Vec::new();
    for i in 0..5 {
        sent.push(
            rt().http_send(&alice, &group, &format!("many-{i}"), &format!("message {i}"))
                .await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let token = token.as_str();
    // The worker has recorded all five once an unlimited sync shows them.
    sync_until(&bob, token, |a| {
        entry(a, &group).is_some_and(|c| c["messages"].as_array().unwrap().len() == 5)
    })
    .await;
    let (status, answer) = sync(&bob, Some(token), "&limit=2").await;
    assert_eq!(status, 200, "{answer}");
    let limited = entry(&answer, &group).unwrap();
    assert_eq!(limited["limited"], true);
    assert_eq!(ids(&limited["messages"]), sent[..2].to_vec());
    let rest = history(&bob, &group, &format!("after={}", sent[1])).await;
    assert_eq!(rest, sent[2..].to_vec());
}

#[tokio::test]
async fn bad_tokens_and_limits_are_refused_clearly() {
    let (alice, bob) = (rt().user("synck").await, rt().user("syncl").await);
    let (_, start) = sync(&alice, None, "").await;
    let token = start["next"].as_str().unwrap().to_owned();
    let mut tampered = token.clone();
    tampered.insert(2, if tampered.as_bytes()[2] == b'A' { 'B' } else { 'A' });
    for (who, since, extra, status, code) in [
        (&alice, tampered.as_str(), "", 400, "validation_failed"),
        (&bob, token.as_str(), "", 400, "validation_failed"),
        (&alice, "not-a-token", "", 400, "validation_failed"),
        (&alice, token.as_str(), "&limit=0", 400, "validation_failed"),
        (&alice, token.as_str(), "&limit=many", 400, "validation_failed"),
    ] {
        let (got, body) = sync(who, Some(since), extra).await;
        assert_eq!(
            (got, body["error"]["code"].as_str()),
            (status, Some(code)),
            "{since} {extra}: {body}"
        );
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let (status, body) = call("GET", "/sync", None, None).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = call("GET", "/sync", Some("not.a.jwt"), None).await;
    assert_eq!(status, 401, "{body}");
    // Above the maximum is clamped, not refused.
    let (status, body) = sync(&alice, Some(&token), "&limit=1000").await;
    assert_eq!(status, 200, "{body}");
}

/// Senders keep writing (sends, edits, reactions, deletes) while a client syncs in a loop from each
/// answer's `next`; afterwards the union of its answers, each message at the state of the latest
/// answer that held it, is exactly what the history route holds.
#[tokio::test]
async fn nothing_is_skipped_while_others_keep_sending() {
    let (alice, bob, carol) = (
        rt().user("syncm").await,
        rt().user("syncn").await,
        rt().user("synco").await,
    );
    let group = rt().group(&alice, &[&bob, &carol]).await;
    let other = rt().group(&bob, &[&carol]).await;
    let (_, start) = sync(&carol, None, "").await;

    let writers = [(alice, group.clone()), (bob, other.clone())].map(|(user, conversation)| {
        tokio::spawn(async move {
            for i in 0..40 {
                let message = rt()
                    .http_send(&user, &conversation, &format!("load-{i}"), &format!("load {i}"))
                    .await;
                let id = message["id"].as_str().unwrap().to_owned();
                let path = format!("/conversations/{conversation}/messages/{id}");
                match i % 4 {
                    1 => {
                        let (status, _) = call(
                            "PATCH",
                            &path,
                            Some(&user.token),
                            Some(json!({ "body": format!("edited {i}") })),
                        )
                        .await;
                        assert_eq!(status, 200);
                    }
                    2 => {
                        let (status, _) = call("PUT", &format!("{path}/reactions/ok"), Some(&user.token), None).await;
                        assert_eq!(status, 204);
                    }
                    3 => {
                        let (status, _) = call("DELETE", &path, Some(&user.token), None).await;
                        assert_eq!(status, 204);
                    }
                    _ => {}
                }
            }
        })
    });
    let mut seen: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
    let mut token = start["next"].as_str().unwrap().to_owned();
    let absorb = |answer: &Value, seen: &mut BTreeMap<String, BTreeMap<String, Value>>| {
        for c in answer["conversations"].as_array().unwrap() {
            assert_eq!(c["limited"], false, "at most 100 changes between two syncs here");
            let into = seen
                .entry(c["conversation"]["id"].as_str().unwrap().to_owned())
                .or_default();
            for m in c["messages"].as_array().unwrap() {
                into.insert(m["id"].as_str().unwrap().to_owned(), m.clone());
            }
        }
    };
    let mut syncs = 0;
    while writers.iter().any(|w| !w.is_finished()) {
        let (status, answer) = sync(&carol, Some(&token), "&limit=100").await;
        assert_eq!(status, 200, "{answer}");
        absorb(&answer, &mut seen);
        token = answer["next"].as_str().unwrap().to_owned();
        syncs += 1;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    for writer in writers {
        writer.await.unwrap();
    }
    // The workers' last records land within FOLLOW_UP_WITHIN; syncing on that long misses nothing.
    let until = std::time::Instant::now() + FOLLOW_UP_WITHIN;
    while std::time::Instant::now() < until {
        let (_, answer) = sync(&carol, Some(&token), "&limit=100").await;
        absorb(&answer, &mut seen);
        token = answer["next"].as_str().unwrap().to_owned();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(syncs > 3, "the client synced while the senders ran ({syncs} times)");
    for conversation in [&group, &other] {
        let full = full_history(&carol, conversation).await;
        assert_eq!(full.len(), 40);
        let synced = seen.get(conversation.as_str()).cloned().unwrap_or_default();
        assert_eq!(
            synced.keys().cloned().collect::<BTreeSet<_>>(),
            full.keys().cloned().collect::<BTreeSet<_>>(),
            "every message of {conversation} reached the syncing client"
        );
        for (id, message) in &full {
            let got = &synced[id];
            for field in ["body", "deleted", "editedAt", "reactions", "myReactions", "seq"] {
                assert_eq!(
                    got[field], message[field],
                    "{field} of {id}: synced {got} vs history {message}"
                );
            }
        }
    }
}

/// Every message of the conversation as the history route returns it, walking `after=`.
async fn full_history(user: &User, conversation: &str) -> BTreeMap<String, Value> {
    let mut all = BTreeMap::new();
    let mut query = "after=00000000000000000000000000".to_owned();
    loop {
        let (status, page) = call(
            "GET",
            &format!("/conversations/{conversation}/messages?limit=100&{query}"),
            Some(&user.token),
            None,
        )
        .await;
        assert_eq!(status, 200, "{page}");
        for m in page["items"].as_array().unwrap() {
            all.insert(m["id"].as_str().unwrap().to_owned(), m.clone());
        }
        match page["nextCursor"].as_str() {
            Some(cursor) => query = format!("cursor={cursor}"),
            None => return all,
        }
    }
}

/// `GET /sync` as `user`, from `since` (none: a first token), with `extra` query text (`&limit=2`).
async fn sync(user: &User, since: Option<&str>, extra: &str) -> (u16, Value) {
    let path = match since {
        Some(since) => format!("/sync?since={since}{extra}"),
        None => format!("/sync?{}", extra.trim_start_matches('&')),
    };
    call("GET", &path, Some(&user.token), None).await
}

/// Syncs from `token` until an answer satisfies `done` (the worker lands a moment after each write),
/// or [`FOLLOW_UP_WITHIN`] has passed; returns the last answer, which the caller asserts on.
async fn sync_until(user: &User, token: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + FOLLOW_UP_WITHIN;
    loop {
        let (status, answer) = sync(user, Some(token), "").await;
        assert_eq!(status, 200, "{answer}");
        if done(&answer) || std::time::Instant::now() > deadline {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The ids of one history page of `query`.
async fn history(user: &User, conversation: &str, query: &str) -> Vec<String> {
    let (status, page) = call(
        "GET",
        &format!("/conversations/{conversation}/messages?{query}"),
        Some(&user.token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    ids(&page["items"])
}
