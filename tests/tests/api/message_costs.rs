//! What threads, reactions and mentions cost in DynamoDB, in process against DynamoDB Local: the
//! figures of BENCHMARKS.md ("Threads, reactions, mentions"). A benchmark, not a check:
//! `cargo test -p parley-tests --test api message_costs:: -- --ignored --nocapture`.

use parley::api::messages;
use parley_tests::{TestApp, TestRequest};
use serde_json::json;

#[tokio::test]
#[ignore = "a benchmark: run it by name"]
async fn message_feature_costs() {
    let app = TestApp::new().await;
    let (ann, bob) = (app.user("costann").await, app.user("costbob").await);
    let group = app.group(&ann, "costs", &[&bob]).await;
    let route =
        |method: &str, path: &str, params: &[(&str, &str)]| TestRequest::route(method, path, params).bearer(&ann.token);
    // Warm the per-container caches (session check) first.
    app.send(&ann, &group, "warm", "warm").await;
    let measure = |label: &'static str, before: parley::store::Usage| {
        let used = app.context.store.usage() - before;
        println!(
            "| {label} | {} | {:.1} | {:.1} |",
            used.calls, used.read_units, used.write_units
        );
    };
    println!("| operation | DynamoDB calls | read units | write units |");
    let before = app.context.store.usage();
    let parent = app.send(&ann, &group, "plain", "a plain message").await;
    measure("send, plain", before);
    let parent_id = parent["id"].as_str().unwrap().to_owned();
    let before = app.context.store.usage();
    let send = |client_id: &str, extra: serde_json::Value| {
        let mut body = json!({ "clientMessageId": client_id, "body": "text" });
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        route(
            "POST",
            "/conversations/{conversationId}/messages",
            &[("conversationId", &group)],
        )
        .json(body)
    };
    assert_eq!(
        app.call(messages::send, send("reply", json!({ "parentMessageId": parent_id })))
            .await
            .status,
        201
    );
    measure("send, thread reply", before);
    let before = app.context.store.usage();
    assert_eq!(
        app.call(messages::send, send("mention", json!({ "mentions": [bob.id] })))
            .await
            .status,
        201
    );
    measure("send, one mention", before);
    let reaction_path = "/conversations/{conversationId}/messages/{messageId}/reactions/{reaction}";
    let params = [
        ("conversationId", group.as_str()),
        ("messageId", parent_id.as_str()),
        ("reaction", "👍"),
    ];
    let before = app.context.store.usage();
    assert_eq!(
        app.call(messages::react, route("PUT", reaction_path, &params))
            .await
            .status,
        204
    );
    measure("reaction added", before);
    let before = app.context.store.usage();
    assert_eq!(
        app.call(messages::react, route("PUT", reaction_path, &params))
            .await
            .status,
        204
    );
    measure("reaction added again (idempotent)", before);
    let before = app.context.store.usage();
    assert_eq!(
        app.call(messages::unreact, route("DELETE", reaction_path, &params))
            .await
            .status,
        204
    );
    measure("reaction removed", before);
    for i in 0..45 {
        app.send(&ann, &group, &format!("fill-{i}"), "history filler").await;
    }
    let before = app.context.store.usage();
    let page = app
        .call(
            messages::history,
            route(
                "GET",
                "/conversations/{conversationId}/messages",
                &[("conversationId", &group)],
            )
            .query("limit", "50"),
        )
        .await;
    assert_eq!(page.status, 200);
    measure("history page of 50, with myReactions", before);
    let before = app.context.store.usage();
    let replies = app
        .call(
            messages::replies,
            route(
                "GET",
                "/conversations/{conversationId}/messages/{messageId}/replies",
                &[("conversationId", &group), ("messageId", &parent_id)],
            ),
        )
        .await;
    assert_eq!(replies.status, 200);
    measure("replies page", before);
}
