//! Message search end to end over real HTTP on the local stack, whose search indexer runs from DynamoDB
//! Local's real stream: accents, case and scripts fold away, terms are prefixes AND-ed, encrypted and
//! deleted messages and edited-away words are never found, only the caller's current conversations are
//! searched, pages walk newest first without repeats, and every bad input is answered per docs/API-GUIDE.md.
//! "Findable within 5 seconds": each wait polls for up to 6 s, no fixed sleeps.

use std::time::Duration;

use parley_tests::realtime::{Clients, User};
use parley_tests::stack;
use serde_json::{json, Value};

fn rt() -> Clients {
    Clients { stack: stack() }
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn search_with(user: Option<&User>, params: &[(&str, &str)]) -> (u16, Value) {
    let query: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    rt().call(
        "GET",
        &format!("/search/messages?{}", query.join("&")),
        user.map(|u| u.token.as_str()),
        None,
    )
    .await
}

/// The ids of one page of results for `q`.
async fn search(user: &User, q: &str) -> Vec<String> {
    let (status, page) = search_with(Some(user), &[("q", q)]).await;
    assert_eq!(status, 200, "{page}");
    ids(&page)
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a page: {page}"))
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Polls `q` for up to 6 s until its ids are `expected` (in that order); panics with the last answer.
async fn eventually(user: &User, q: &str, expected: &[&str]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(6);
    loop {
        let found = search(user, q).await;
        if found == expected {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            let indexer = stack().logs_of("search-indexer");
            panic!(
                "search {q:?}: expected {expected:?} within 5 s, found {found:?}; the indexer's last lines: {:?}",
                &indexer[indexer.len().saturating_sub(10)..]
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn id(message: &Value) -> &str {
    message["id"].as_str().unwrap()
}

fn assert_error(answer: &(u16, Value), status: u16, code: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["error"]["code"], code, "{}", answer.1);
    assert!(
        answer.1["error"]["message"].as_str().is_some_and(|m| m.len() > 10),
        "a message a person understands: {}",
        answer.1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn accents_case_and_scripts_fold_away() {
    let (ann, bob) = (rt().user("sann").await, rt().user("sbob").await);
    let group = rt().group(&ann, &[&bob]).await;
    let cafe = rt().http_send(&ann, &group, "s1", "Rendez-vous au Café ce soir").await;
    let tokyo = rt().http_send(&bob, &group, "s2", "来週は東京タワーへ行こう").await;
    let privet = rt().http_send(&bob, &group, "s3", "Привет всем!").await;

    eventually(&bob, "cafe", &[id(&cafe)]).await;
    assert_eq!(search(&bob, "CAFÉ").await, [id(&cafe)]);
    // Each message is one index item, but the stream may hand the three sends to the indexer in
    // different batches: every query of a message not yet seen waits the contract's 5 s too.
    eventually(&ann, "café soir", &[id(&cafe)]).await; // the sender finds it too
    eventually(&ann, "東京", &[id(&tokyo)]).await;
    eventually(&ann, "タワー", &[id(&tokyo)]).await; // a katakana word
    eventually(&ann, "привет", &[id(&privet)]).await;
    eventually(&ann, "ПРИВ", &[id(&privet)]).await;

    let (status, page) = search_with(Some(&ann), &[("q", "cafe")]).await;
    assert_eq!(status, 200);
    let found = &page["items"][0];
    assert_eq!(
        found["body"], "Rendez-vous au Café ce soir",
        "the message as the API returns it"
    );
    assert_eq!(found["conversationId"], group.as_str());
    assert_eq!(found["senderId"], ann.id.as_str());
    assert_eq!(found["seq"], 1);
    assert_eq!(page["nextCursor"], Value::Null);
}

#[tokio::test(flavor = "multi_thread")]
async fn terms_are_prefixes_and_every_one_must_match() {
    let (ann, bob) = (rt().user("pann").await, rt().user("pbob").await);
    let group = rt().group(&ann, &[&bob]).await;
    let both = rt().http_send(&ann, &group, "p1", "See you tomorrow at noon").await;
    let later = rt().http_send(&bob, &group, "p2", "Tomorrow is fine").await;
    let noon = rt().http_send(&bob, &group, "p3", "noon works for me").await;

    eventually(&ann, "tomo", &[id(&later), id(&both)]).await;
    eventually(&ann, "noon", &[id(&noon), id(&both)]).await;
    assert_eq!(search(&ann, "tomo noon").await, [id(&both)], "AND");
    eventually(&ann, "noo TOMORROW see", &[id(&both)]).await;
    assert!(search(&ann, "tomorrow lunch").await.is_empty());
    assert!(
        search(&ann, "morrow").await.is_empty(),
        "a term matches the start of a word"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_encrypted_message_is_never_found() {
    let (ann, bob) = (rt().user("eann").await, rt().user("ebob").await);
    let group = rt().group(&ann, &[&bob]).await;
    let (status, secret) = rt()
        .call(
            "POST",
            &format!("/conversations/{group}/messages"),
            Some(&ann.token),
            Some(json!({ "clientMessageId": "e1", "body": "zebracipher plans", "encrypted": true })),
        )
        .await;
    assert_eq!(status, 201, "{secret}");
    let plain = rt()
        .http_send(&bob, &group, "e2", "plans for zebracipherless days")
        .await;

    // The plain one was written after the encrypted one: once it is found, the other's record was
    // handled too (the stream hands a shard's records over in order).
    eventually(&ann, "plans", &[id(&plain)]).await;
    eventually(&ann, "zebracipher plans", &[id(&plain)]).await;
    let (status, secret_page) = search_with(Some(&ann), &[("q", "zebracipher")]).await;
    assert_eq!(status, 200);
    assert_eq!(ids(&secret_page), [id(&plain)], "only the plain message");
}

#[tokio::test(flavor = "multi_thread")]
async fn edits_and_deletes_are_reflected() {
    let (ann, bob) = (rt().user("dann").await, rt().user("dbob").await);
    let group = rt().group(&ann, &[&bob]).await;
    let report = rt().http_send(&ann, &group, "d1", "the quarterly report is late").await;
    eventually(&bob, "quarterly", &[id(&report)]).await;

    let (status, edited) = rt()
        .call(
            "PATCH",
            &format!("/conversations/{group}/messages/{}", id(&report)),
            Some(&ann.token),
            Some(json!({ "body": "the annual report is late" })),
        )
        .await;
    assert_eq!(status, 200, "{edited}");
    assert!(
        search(&bob, "quarterly").await.is_empty(),
        "the edited-away word is not found, even before the indexer caught up"
    );
    eventually(&bob, "annual", &[id(&report)]).await;
    assert!(search(&bob, "quarterly").await.is_empty());
    assert_eq!(search(&bob, "report").await, [id(&report)]);

    let (status, _) = rt()
        .call(
            "DELETE",
            &format!("/conversations/{group}/messages/{}", id(&report)),
            Some(&ann.token),
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert!(
        search(&bob, "annual").await.is_empty(),
        "a deleted message is never returned"
    );
    assert!(search(&bob, "report").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_callers_current_conversations_are_searched() {
    let (ann, bob, carol) = (
        rt().user("cann").await,
        rt().user("cbob").await,
        rt().user("ccar").await,
    );
    let ours = rt().group(&ann, &[&bob]).await;
    let theirs = rt().group(&carol, &[]).await;
    let mine = rt().http_send(&ann, &ours, "c1", "pineapple pizza tonight").await;
    let foreign = rt().http_send(&carol, &theirs, "c2", "pineapple pizza forever").await;

    eventually(&carol, "pineapple", &[id(&foreign)]).await;
    eventually(&bob, "pineapple", &[id(&mine)]).await;
    assert_eq!(
        search(&ann, "pineapple").await,
        [id(&mine)],
        "never another conversation's"
    );

    let (status, page) = search_with(Some(&ann), &[("q", "pineapple"), ("conversationId", &ours)]).await;
    assert_eq!((status, ids(&page)), (200, vec![id(&mine).to_owned()]));
    let answer = search_with(Some(&ann), &[("q", "pineapple"), ("conversationId", &theirs)]).await;
    assert_error(&answer, 404, "not_found");
    let answer = search_with(
        Some(&ann),
        &[("q", "pineapple"), ("conversationId", "01JH3Z7Q2W8E4R6T8Y0V2J4K6P")],
    )
    .await;
    assert_error(&answer, 404, "not_found");
    let answer = search_with(Some(&ann), &[("q", "pineapple"), ("conversationId", "nope")]).await;
    assert_error(&answer, 400, "validation_failed");

    // Bob is removed: from that moment he finds nothing of the group's.
    let (status, _) = rt()
        .call(
            "DELETE",
            &format!("/conversations/{ours}/members/{}", bob.id),
            Some(&ann.token),
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert!(search(&bob, "pineapple").await.is_empty(), "a removed member");
    let answer = search_with(Some(&bob), &[("q", "pineapple"), ("conversationId", &ours)]).await;
    assert_error(&answer, 404, "not_found");
    assert_eq!(search(&ann, "pineapple").await, [id(&mine)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_walk_newest_first_without_repeats() {
    let (ann, bob) = (rt().user("gann").await, rt().user("gbob").await);
    let first = rt().group(&ann, &[&bob]).await;
    let second = rt().group(&bob, &[&ann]).await;
    let mut sent = Vec::new();
    for i in 0..7 {
        let group = if i % 2 == 0 { &first } else { &second };
        let message = rt()
            .http_send(&ann, group, &format!("g{i}"), &format!("waypoint number {i}"))
            .await;
        sent.push(id(&message).to_owned());
    }
    rt().http_send(&ann, &first, "gx", "nothing to see").await;
    let newest_first: Vec<&str> = sent.iter().rev().map(String::as_str).collect();
    eventually(&bob, "waypoint", &newest_first).await;

    let mut walked = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut params = vec![("q", "waypoint"), ("limit", "3")];
        if let Some(c) = &cursor {
            params.push(("cursor", c.as_str()));
        }
        let (status, page) = search_with(Some(&bob), &params).await;
        assert_eq!(status, 200, "{page}");
        assert!(ids(&page).len() <= 3);
        walked.extend(ids(&page));
        pages += 1;
        assert!(pages <= 5, "the walk ends: {walked:?}");
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(walked, newest_first, "every match once, newest first");
    assert!(pages >= 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_refused() {
    let (ann, bob) = (rt().user("bann").await, rt().user("bbob").await);
    let group = rt().group(&ann, &[&bob]).await;
    for i in 0..3 {
        rt().http_send(&ann, &group, &format!("b{i}"), &format!("lighthouse {i}"))
            .await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(6);
    while search(&ann, "lighthouse").await.len() < 3 {
        assert!(tokio::time::Instant::now() < deadline, "indexed within 5 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let long = "a".repeat(201);
    let bad_queries: [(&str, &[(&str, &str)]); 6] = [
        ("no q", &[]),
        ("empty", &[("q", "")]),
        ("whitespace", &[("q", "   \t ")]),
        ("over 200 characters", &[("q", &long)]),
        ("9 terms", &[("q", "a b c d e f g h i")]),
        ("limit 0", &[("q", "lighthouse"), ("limit", "0")]),
    ];
    for (what, params) in bad_queries {
        let answer = search_with(Some(&ann), params).await;
        assert_eq!(answer.0, 400, "{what}: {}", answer.1);
        assert_error(&answer, 400, "validation_failed");
    }
    let (status, _) = search_with(Some(&ann), &[("q", &"a".repeat(200))]).await;
    assert_eq!(status, 200, "200 characters is fine");
    let (status, _) = search_with(Some(&ann), &[("q", "a b c d e f g h")]).await;
    assert_eq!(status, 200, "8 terms is fine");

    let (status, page) = search_with(Some(&ann), &[("q", "lighthouse"), ("limit", "1")]).await;
    assert_eq!(status, 200, "{page}");
    let cursor = page["nextCursor"].as_str().expect("a next page").to_owned();
    let (status, _) = search_with(Some(&ann), &[("q", "lighthouse"), ("limit", "1"), ("cursor", &cursor)]).await;
    assert_eq!(status, 200);
    let mut tampered = cursor.clone();
    tampered.replace_range(0..1, if cursor.starts_with('M') { "N" } else { "M" });
    for (what, user, q, c) in [
        ("tampered", &ann, "lighthouse", tampered.as_str()),
        ("garbage", &ann, "lighthouse", "not-a-cursor"),
        ("another user's", &bob, "lighthouse", cursor.as_str()),
        ("another query's", &ann, "lighthouses", cursor.as_str()),
    ] {
        let answer = search_with(Some(user), &[("q", q), ("limit", "1"), ("cursor", c)]).await;
        assert_eq!(answer.0, 400, "{what} cursor: {}", answer.1);
        assert_error(&answer, 400, "validation_failed");
    }
    let answer = search_with(
        Some(&ann),
        &[("q", "lighthouse"), ("conversationId", &group), ("cursor", &cursor)],
    )
    .await;
    assert_error(&answer, 400, "validation_failed");

    let answer = search_with(None, &[("q", "lighthouse")]).await;
    assert_error(&answer, 401, "unauthorized");
}
