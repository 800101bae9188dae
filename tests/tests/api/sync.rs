//! `GET /sync` in process against DynamoDB Local: its cost grows with the changed conversations, not
//! with all of the caller's (the sync keys are written here as the conversation worker writes them),
//! and a token that is old, tampered with or someone else's is refused with the contract's error.

use std::collections::BTreeSet;

use parley::api::sync as routes;
use parley::domain::upkeep::{record_changes, Changes};
use parley::time::{epoch_ms, now};
use parley_tests::{TestApp, TestRequest, TestUser};

fn sync(user: &TestUser, since: Option<&str>) -> TestRequest {
    let request = TestRequest::new("GET", "/sync").bearer(&user.token);
    match since {
        Some(since) => request.query("since", since),
        None => request,
    }
}

/// `count` groups `me` is in whose sync keys say they last changed a minute ago.
async fn quiet_groups(app: &TestApp, me: &TestUser, owner: &TestUser, count: usize) {
    let long_ago = epoch_ms(now()) - 60_000;
    for i in 0..count {
        let group = app.group(owner, &format!("quiet-{i}"), &[me]).await;
        for user in [me, owner] {
            app.context
                .store
                .advance_sync_key(&group, &user.id, long_ago)
                .await
                .expect("the key is written");
        }
    }
}

/// A caller in `quiet` groups that changed a minute ago and one that changes after the token (a
/// message, recorded as the worker records it): the sync's DynamoDB calls and read units.
async fn one_changed_of(app: &TestApp, quiet: usize) -> (u64, f64) {
    let (me, owner) = (
        app.user(&format!("syncer{quiet}")).await,
        app.user(&format!("owner{quiet}")).await,
    );
    quiet_groups(app, &me, &owner, quiet).await;
    let group = app.group(&owner, "busy", &[&me]).await;
    let start = app.call(routes::get, sync(&me, None)).await;
    assert_eq!(start.status, 200, "{}", start.body);
    let token = start.body["next"].as_str().unwrap().to_owned();
    let message = app.send(&owner, &group, "news", "news").await;
    let changes = Changes {
        message_ids: BTreeSet::from([message["id"].as_str().unwrap().to_owned()]),
        ..Changes::default()
    };
    record_changes(app.context, &group, &changes, None)
        .await
        .expect("the worker's step");
    // A first sync warms the per-container caches (the session check), so only the sync is counted.
    app.call(routes::get, sync(&me, Some(&token))).await;
    let before = app.context.store.usage();
    let answer = app.call(routes::get, sync(&me, Some(&token))).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let used = app.context.store.usage() - before;
    let conversations = answer.body["conversations"].as_array().unwrap();
    assert_eq!(conversations.len(), 1, "only the changed group: {}", answer.body);
    assert_eq!(conversations[0]["conversation"]["id"], group.as_str());
    assert_eq!(conversations[0]["messages"][0]["id"], message["id"]);
    (used.calls, used.read_units)
}

#[tokio::test]
async fn a_sync_reads_the_changed_conversations_only() {
    let app = TestApp::new().await;
    let few = one_changed_of(&app, 5).await;
    let many = one_changed_of(&app, 85).await;
    // One Query of the sync keys, one BatchGetItem of the METAs, the last messages' current state,
    // one Query of the change items and one BatchGetItem of the messages: whatever the quiet ones.
    assert_eq!(many.0, few.0, "calls: {few:?} then {many:?}");
    assert!(many.1 <= few.1 * 1.5 + 1.0, "read units: {few:?} then {many:?}");
}

#[tokio::test]
async fn old_tampered_and_foreign_tokens_are_refused() {
    let app = TestApp::new().await;
    let (me, other) = (app.user("tokenme").await, app.user("tokenother").await);
    let start = app.call(routes::get, sync(&me, None)).await;
    assert_eq!(start.status, 200, "{}", start.body);
    assert_eq!(start.body["conversations"], serde_json::json!([]));
    let token = start.body["next"].as_str().unwrap();

    app.call(routes::get, sync(&other, Some(token)))
        .await
        .assert_error(400, "validation_failed");
    let tampered = format!("{}x", token);
    app.call(routes::get, sync(&me, Some(&tampered)))
        .await
        .assert_error(400, "validation_failed");

    // Sealed as the route seals them, for times the test chooses.
    let scope = format!("SYNC#{}", me.id);
    let at = |age_ms: u64| {
        app.context
            .cursors()
            .seal(&scope, &format!("v1:{}", epoch_ms(now()) - age_ms))
    };
    let thirty_days = 30 * 24 * 3600 * 1000;
    let gone = app.call(routes::get, sync(&me, Some(&at(thirty_days + 60_000)))).await;
    gone.assert_error(410, "gone");
    assert!(gone.body["error"]["message"].as_str().unwrap().contains("30 days"));
    let fine = app.call(routes::get, sync(&me, Some(&at(thirty_days - 60_000)))).await;
    assert_eq!(fine.status, 200, "{}", fine.body);
    // A sealed position that is not a sync token's shape.
    let odd = app.context.cursors().seal(&scope, "v1:yesterday");
    app.call(routes::get, sync(&me, Some(&odd)))
        .await
        .assert_error(400, "validation_failed");
}

/// The figure of BENCHMARKS.md ("Sync"): one changed conversation of 1, 200 and 2,000, its DynamoDB calls
/// and read units. A benchmark, not a check:
/// `cargo test -p parley-tests --test api sync::sync_figures -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "a benchmark: run it by name"]
async fn sync_figures() {
    let app = TestApp::new().await;
    println!("| conversations | changed | calls | read units |");
    for total in [1usize, 200, 2000] {
        let (calls, read_units) = one_changed_of(&app, total - 1).await;
        println!("| {total} | 1 | {calls} | {read_units:.1} |");
    }
}

/// A created message reaches the sync by its id's time; only one whose record came late (its send
/// slowed between reserving its position and committing) also gets a change item, so a sync that
/// started meanwhile still finds it.
#[tokio::test]
async fn only_late_messages_get_change_items() {
    let app = TestApp::new().await;
    let owner = app.user("lateowner").await;
    let group = app.group(&owner, "late", &[]).await;
    let fresh = ulid::Ulid::generate().to_string();
    let late = ulid::Ulid::from_parts(epoch_ms(now()) - 30_000, 7).to_string();
    let changes = Changes {
        created: BTreeSet::from([fresh.clone()]),
        ..Changes::default()
    };
    record_changes(app.context, &group, &changes, None)
        .await
        .expect("the worker's step");
    assert_eq!(
        app.count_items("CHANGE#").await,
        0,
        "a message in time needs no change item"
    );
    let changes = Changes {
        created: BTreeSet::from([fresh, late.clone()]),
        ..Changes::default()
    };
    record_changes(app.context, &group, &changes, None)
        .await
        .expect("the worker's step");
    assert_eq!(app.count_items("CHANGE#").await, 1);
    let (ids, _) = app
        .context
        .store
        .changed_message_ids(&group, epoch_ms(now()) - 1_000, 10)
        .await
        .unwrap();
    assert_eq!(ids, BTreeSet::from([late]), "only the late one");
}
