//! Idempotent send, history in both directions with cursors, edits and deletes, against DynamoDB Local.

use parley::api::{conversations, messages};
use parley_tests::{TestApp, TestRequest, TestResponse, TestUser};
use serde_json::{json, Value};

const MESSAGES: &str = "/conversations/{conversationId}/messages";
const MESSAGE: &str = "/conversations/{conversationId}/messages/{messageId}";

fn send(user: &TestUser, conversation: &str, body: Value) -> TestRequest {
    TestRequest::route("POST", MESSAGES, &[("conversationId", conversation)])
        .bearer(&user.token)
        .json(body)
}

fn history(user: &TestUser, conversation: &str) -> TestRequest {
    TestRequest::route("GET", MESSAGES, &[("conversationId", conversation)]).bearer(&user.token)
}

fn one(method: &str, user: &TestUser, conversation: &str, message: &str) -> TestRequest {
    TestRequest::route(
        method,
        MESSAGE,
        &[("conversationId", conversation), ("messageId", message)],
    )
    .bearer(&user.token)
}

fn bodies(response: &TestResponse) -> Vec<String> {
    response.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_retried_send_returns_the_original_and_stores_nothing_twice() {
    let app = TestApp::new().await;
    let (ada, bo) = (app.user("ada").await, app.user("bob").await);
    let direct = app.direct(&ada, &bo).await;
    let first = app
        .call(
            messages::send,
            send(&ada, &direct, json!({ "clientMessageId": "c-1", "body": " hi bo \n" })),
        )
        .await;
    assert_eq!(first.status, 201, "{}", first.body);
    let message = &first.body;
    assert_eq!(message["body"], "hi bo", "bodies are trimmed");
    assert_eq!(message["senderId"], ada.id.as_str());
    assert_eq!(message["conversationId"], direct.as_str());
    assert_eq!(message["clientMessageId"], "c-1");
    assert_eq!(
        (message["encrypted"].as_bool(), message["deleted"].as_bool()),
        (Some(false), Some(false))
    );
    assert!(message.get("editedAt").is_none());

    let retry = app
        .call(
            messages::send,
            send(&ada, &direct, json!({ "clientMessageId": "c-1", "body": "different" })),
        )
        .await;
    assert_eq!(retry.status, 200);
    assert_eq!(retry.body, first.body, "the original comes back");
    let same_id_other_sender = app
        .call(
            messages::send,
            send(&bo, &direct, json!({ "clientMessageId": "c-1", "body": "mine" })),
        )
        .await;
    assert_eq!(same_id_other_sender.status, 201, "client ids are per sender");
    assert_eq!(app.count_items("MSG#").await, 2);

    let encrypted = app
        .call(
            messages::send,
            send(
                &ada,
                &direct,
                json!({ "clientMessageId": "c-2", "body": "b64:AAEC", "encrypted": true }),
            ),
        )
        .await;
    assert_eq!(encrypted.body["encrypted"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sends_with_one_client_id_store_one_message() {
    let app = TestApp::new().await;
    let (cy, di, reader) = (app.user("cyd").await, app.user("dib").await, app.user("reader").await);
    let group = app.group(&cy, "race", &[&di, &reader]).await;
    let context = app.context;
    let mut tasks = Vec::new();
    for i in 0..6 {
        let event = send(
            &cy,
            &group,
            json!({ "clientMessageId": "same", "body": format!("attempt {i}") }),
        )
        .to_event();
        tasks.push(tokio::spawn(async move {
            let request = lambda_http::request::from_str(&event.to_string()).unwrap();
            TestResponse::from(parley::http::handle(context, messages::send, request).await)
        }));
    }
    // And other messages at the same time, racing for the next position.
    for i in 0..4 {
        let event = send(
            &di,
            &group,
            json!({ "clientMessageId": format!("other-{i}"), "body": "busy" }),
        )
        .to_event();
        tasks.push(tokio::spawn(async move {
            let request = lambda_http::request::from_str(&event.to_string()).unwrap();
            TestResponse::from(parley::http::handle(context, messages::send, request).await)
        }));
    }
    let mut ids = std::collections::BTreeSet::new();
    for (i, task) in tasks.into_iter().enumerate() {
        let response = task.await.unwrap();
        assert!(matches!(response.status, 200 | 201), "{}", response.body);
        if i < 6 {
            ids.insert(response.body["id"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(ids.len(), 1, "one message for one client id: {ids:?}");
    assert_eq!(app.count_items("MSG#").await, 5);
    app.settle().await;
    let unread = app
        .call(
            conversations::get,
            TestRequest::route("GET", "/conversations/{conversationId}", &[("conversationId", &group)])
                .bearer(&reader.token),
        )
        .await;
    assert_eq!(
        unread.body["unreadCount"], 5,
        "positions are dense: one per stored message"
    );
}

#[tokio::test]
async fn bad_messages_are_refused_and_write_nothing() {
    let app = TestApp::new().await;
    let (ed, flo) = (app.user("eddy").await, app.user("flo").await);
    let direct = app.direct(&ed, &flo).await;
    let before = app.all_keys().await;
    for (body, field) in [
        (json!({ "clientMessageId": "a", "body": "" }), "body"),
        (json!({ "clientMessageId": "a", "body": "  \n\t " }), "body"),
        (json!({ "clientMessageId": "a", "body": "x".repeat(4001) }), "body"),
        (json!({ "clientMessageId": "a", "body": "🙂".repeat(4001) }), "body"),
        (json!({ "clientMessageId": "a", "body": "bell \u{7}" }), "body"),
        (json!({ "clientMessageId": "a b", "body": "hi" }), "clientMessageId"),
        (json!({ "clientMessageId": "a/b", "body": "hi" }), "clientMessageId"),
        (json!({ "clientMessageId": "", "body": "hi" }), "clientMessageId"),
        (
            json!({ "clientMessageId": "x".repeat(65), "body": "hi" }),
            "clientMessageId",
        ),
        (json!({ "clientMessageId": 7, "body": "hi" }), "clientMessageId"),
        (json!({ "body": "hi" }), "clientMessageId"),
        (
            json!({ "clientMessageId": "a", "body": "hi", "encrypted": "yes" }),
            "encrypted",
        ),
    ] {
        let response = app.call(messages::send, send(&ed, &direct, body.clone())).await;
        response.assert_error(400, "validation_failed");
        assert!(
            response.body["error"]["details"].to_string().contains(field),
            "{body}: {}",
            response.body
        );
    }
    assert_eq!(app.all_keys().await, before, "nothing half-written");
    let longest = app
        .call(
            messages::send,
            send(
                &ed,
                &direct,
                json!({ "clientMessageId": "x".repeat(64), "body": "🙂".repeat(4000) }),
            ),
        )
        .await;
    assert_eq!(
        longest.status, 201,
        "4000 scalar values and a 64-character id are allowed"
    );
}

#[tokio::test]
async fn history_pages_both_ways_with_validated_cursors() {
    let app = TestApp::new().await;
    let (gil, hana) = (app.user("gil").await, app.user("hana").await);
    let direct = app.direct(&gil, &hana).await;
    let mut sent = Vec::new();
    for i in 1..=7 {
        sent.push(
            app.send(
                if i % 2 == 0 { &hana } else { &gil },
                &direct,
                &format!("m{i}"),
                &format!("message {i}"),
            )
            .await,
        );
    }
    let newest = app.call(messages::history, history(&gil, &direct)).await;
    assert_eq!(newest.status, 200);
    assert_eq!(bodies(&newest)[..3], ["message 7", "message 6", "message 5"]);
    assert_eq!(newest.body["nextCursor"], Value::Null);

    // Newest first, three at a time, with cursors.
    let mut walked = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut request = history(&hana, &direct).query("limit", "3");
        if let Some(c) = &cursor {
            request = request.query("cursor", c);
        }
        let page = app.call(messages::history, request).await;
        walked.extend(bodies(&page));
        match page.body["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        walked,
        (1..=7).rev().map(|i| format!("message {i}")).collect::<Vec<_>>()
    );

    // Catch-up after a reconnect: everything after the last seen id, oldest first.
    let after = app
        .call(
            messages::history,
            history(&gil, &direct).query("after", sent[3]["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(bodies(&after), ["message 5", "message 6", "message 7"]);
    let after_page = app
        .call(
            messages::history,
            history(&gil, &direct)
                .query("after", sent[0]["id"].as_str().unwrap())
                .query("limit", "2"),
        )
        .await;
    assert_eq!(bodies(&after_page), ["message 2", "message 3"]);
    let next = after_page.body["nextCursor"].as_str().unwrap();
    let rest = app
        .call(messages::history, history(&gil, &direct).query("cursor", next))
        .await;
    assert_eq!(bodies(&rest), ["message 4", "message 5", "message 6", "message 7"]);
    let before = app
        .call(
            messages::history,
            history(&gil, &direct).query("before", sent[2]["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(bodies(&before), ["message 2", "message 1"]);

    // Field selection keeps the id.
    let selected = app
        .call(
            messages::history,
            history(&gil, &direct).query("fields", "body").query("limit", "1"),
        )
        .await;
    assert_eq!(
        selected.body["items"],
        json!([{ "id": sent[6]["id"], "body": "message 7" }])
    );

    // Cursors are checked: garbage, tampered, or from another conversation.
    let other = app.group(&gil, "other", &[&hana]).await;
    app.send(&gil, &other, "o1", "x").await;
    app.send(&gil, &other, "o2", "y").await;
    let foreign = app
        .call(messages::history, history(&gil, &other).query("limit", "1"))
        .await;
    let foreign_cursor = foreign.body["nextCursor"].as_str().unwrap();
    for (name, value) in [
        ("cursor", foreign_cursor),
        ("cursor", "garbage"),
        ("before", foreign_cursor),
        ("after", "not-an-id"),
    ] {
        app.call(messages::history, history(&gil, &direct).query(name, value))
            .await
            .assert_error(400, "validation_failed");
    }
    for bad in ["0", "abc", "-5"] {
        app.call(messages::history, history(&gil, &direct).query("limit", bad))
            .await
            .assert_error(400, "validation_failed");
    }
    let both = history(&gil, &direct)
        .query("before", sent[2]["id"].as_str().unwrap())
        .query("after", sent[1]["id"].as_str().unwrap());
    app.call(messages::history, both)
        .await
        .assert_error(400, "validation_failed");
}

#[tokio::test]
async fn a_hundred_is_the_most_a_page_holds() {
    let app = TestApp::new().await;
    let (ike, jo) = (app.user("ike").await, app.user("joe").await);
    let direct = app.direct(&ike, &jo).await;
    for i in 0..101 {
        app.send(&ike, &direct, &format!("n{i}"), &format!("n{i}")).await;
    }
    let page = app
        .call(messages::history, history(&jo, &direct).query("limit", "500"))
        .await;
    assert_eq!(page.body["items"].as_array().unwrap().len(), 100);
    assert!(page.body["nextCursor"].is_string());
    let default = app.call(messages::history, history(&jo, &direct)).await;
    assert_eq!(default.body["items"].as_array().unwrap().len(), 50);
}

#[tokio::test]
async fn edits_and_deletes_keep_the_message_in_place() {
    let app = TestApp::new().await;
    let (kai, lou, mo) = (app.user("kai").await, app.user("lou").await, app.user("moe").await);
    let group = app.group(&kai, "edits", &[&lou, &mo]).await;
    let by_lou = app.send(&lou, &group, "l1", "first").await;
    let by_mo = app.send(&mo, &group, "m1", "second").await;
    let lou_id = by_lou["id"].as_str().unwrap();
    let mo_id = by_mo["id"].as_str().unwrap();

    let edited = app
        .call(
            messages::edit,
            one("PATCH", &lou, &group, lou_id).json(json!({ "body": "first, edited" })),
        )
        .await;
    assert_eq!(edited.status, 200, "{}", edited.body);
    assert_eq!(edited.body["body"], "first, edited");
    assert!(edited.body["editedAt"].is_string());
    assert_eq!(edited.body["createdAt"], by_lou["createdAt"]);

    app.call(
        messages::edit,
        one("PATCH", &kai, &group, lou_id).json(json!({ "body": "owner edit" })),
    )
    .await
    .assert_error(403, "forbidden");
    app.call(
        messages::edit,
        one("PATCH", &lou, &group, lou_id).json(json!({ "body": "" })),
    )
    .await
    .assert_error(400, "validation_failed");
    let unknown = ulid::Ulid::generate().to_string();
    app.call(
        messages::edit,
        one("PATCH", &lou, &group, &unknown).json(json!({ "body": "x" })),
    )
    .await
    .assert_error(404, "not_found");

    // A member cannot delete another's message; the owner can; the sender can.
    app.call(messages::delete, one("DELETE", &lou, &group, mo_id))
        .await
        .assert_error(403, "forbidden");
    assert_eq!(
        app.call(messages::delete, one("DELETE", &kai, &group, mo_id))
            .await
            .status,
        204
    );
    assert_eq!(
        app.call(messages::delete, one("DELETE", &lou, &group, lou_id))
            .await
            .status,
        204
    );
    assert_eq!(
        app.call(messages::delete, one("DELETE", &lou, &group, lou_id))
            .await
            .status,
        204,
        "idempotent"
    );
    app.call(
        messages::edit,
        one("PATCH", &lou, &group, lou_id).json(json!({ "body": "back" })),
    )
    .await
    .assert_error(409, "conflict");

    let page = app.call(messages::history, history(&kai, &group)).await;
    let items = page.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "deleted messages keep their place");
    for item in items {
        assert_eq!(
            (item["deleted"].as_bool(), item["body"].as_str()),
            (Some(true), Some(""))
        );
    }
    assert_eq!(items[0]["id"], mo_id);
    let conversation = app
        .call(
            conversations::get,
            TestRequest::route("GET", "/conversations/{conversationId}", &[("conversationId", &group)])
                .bearer(&kai.token),
        )
        .await;
    assert_eq!(
        conversation.body["lastMessage"]["deleted"], true,
        "the list's last message follows the delete"
    );

    // In a direct conversation nobody moderates: only the sender deletes.
    let direct = app.direct(&kai, &lou).await;
    let note = app.send(&lou, &direct, "d1", "note").await;
    app.call(
        messages::delete,
        one("DELETE", &kai, &direct, note["id"].as_str().unwrap()),
    )
    .await
    .assert_error(403, "forbidden");
}
