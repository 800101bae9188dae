//! Positions under concurrency (docs/API-GUIDE.md "Messages": `seq` dense and in commit order, ids agreeing with it,
//! the `after=` walk returning every message exactly once), against DynamoDB Local: many senders into
//! one conversation, containers whose clocks disagree, and repeats of one send racing each other.

use parley::api::messages;
use parley::AppContext;
use parley_tests::{TestApp, TestRequest, TestResponse, TestUser};
use serde_json::{json, Value};

const MESSAGES: &str = "/conversations/{conversationId}/messages";

async fn send_on(context: &'static AppContext, user: &TestUser, conversation: &str, client_id: &str) -> TestResponse {
    let request = TestRequest::route("POST", MESSAGES, &[("conversationId", conversation)])
        .bearer(&user.token)
        .json(json!({ "clientMessageId": client_id, "body": format!("message {client_id}") }));
    parley_tests::call_on(context, messages::send, request).await
}

/// Walks `after=` from the start, 7 at a time (pages end mid-burst), as a reconnecting client does.
async fn walk(app: &TestApp, reader: &TestUser, conversation: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut request = TestRequest::route("GET", MESSAGES, &[("conversationId", conversation)])
            .bearer(&reader.token)
            .query("limit", "7");
        request = match &after {
            Some(a) => request.query("after", a),
            // The oldest message first: the first page after the zero id.
            None => request.query("after", "00000000000000000000000000"),
        };
        let page = app.call(messages::history, request).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let items = page.body["items"].as_array().unwrap().clone();
        if items.is_empty() {
            return seen;
        }
        after = Some(items.last().unwrap()["id"].as_str().unwrap().to_owned());
        seen.extend(items);
    }
}

/// Every message once, `seq` 1..=n without a gap, ids increasing with `seq`.
fn assert_dense_and_ordered(walked: &[Value], expected: usize) {
    let seqs: Vec<u64> = walked.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=expected as u64).collect::<Vec<_>>(),
        "seq is dense and in walk order"
    );
    let ids: Vec<&str> = walked.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids grow with seq: {ids:?}");
}

#[tokio::test]
async fn twenty_concurrent_senders_into_one_group_are_all_stored_densely() {
    let app = TestApp::new().await;
    let owner = app.user("owner").await;
    let mut senders = Vec::new();
    for i in 0..20 {
        senders.push(app.user(&format!("sender{i}")).await);
    }
    let group = app.group(&owner, "busy", &senders.iter().collect::<Vec<_>>()).await;
    let mut tasks = Vec::new();
    for (i, sender) in senders.iter().enumerate() {
        for j in 0..6 {
            let (context, sender, group) = (app.context, sender.clone(), group.clone());
            tasks.push(tokio::spawn(async move {
                send_on(context, &sender, &group, &format!("s{i}-{j}")).await
            }));
        }
    }
    for task in tasks {
        let response = task.await.unwrap();
        assert_eq!(
            response.status, 201,
            "no send is refused under contention: {}",
            response.body
        );
    }
    let walked = walk(&app, &owner, &group).await;
    assert_dense_and_ordered(&walked, 120);
    assert!(
        walked.iter().all(|m| m["deleted"] == false),
        "no position was left to a placeholder"
    );
    app.settle().await;
    let conversation = app
        .call(
            parley::api::conversations::get,
            TestRequest::route("GET", "/conversations/{conversationId}", &[("conversationId", &group)])
                .bearer(&owner.token),
        )
        .await;
    assert_eq!(conversation.body["lastSeq"], 120);
    assert_eq!(conversation.body["unreadCount"], 120);
    assert_eq!(
        conversation.body["lastMessage"]["seq"], 120,
        "lastMessage is the newest"
    );
}

#[tokio::test]
async fn a_container_whose_clock_runs_behind_still_orders_ids_by_seq() {
    let app = TestApp::new().await;
    // One container a minute behind, one a minute ahead, and the right one.
    let behind = app.another_container(&[("CLOCK_SKEW_MS", "-60000")]).await;
    let ahead = app.another_container(&[("CLOCK_SKEW_MS", "60000")]).await;
    let (ada, bo) = (app.user("ada").await, app.user("bob").await);
    let group = app.group(&ada, "clocks", &[&bo]).await;
    let mut order = Vec::new();
    // Alternate sequentially first (each send sees the other's newer clock), then all at once.
    for i in 0..6 {
        let context = [app.context, behind, ahead][i % 3];
        let response = send_on(context, &ada, &group, &format!("seq-{i}")).await;
        assert_eq!(response.status, 201, "{}", response.body);
        order.push(response.body["id"].as_str().unwrap().to_owned());
    }
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "each later send has a later id: {order:?}"
    );
    let mut tasks = Vec::new();
    for i in 0..30 {
        let context = [app.context, behind, ahead][i % 3];
        let (user, group) = (if i % 2 == 0 { ada.clone() } else { bo.clone() }, group.clone());
        tasks.push(tokio::spawn(async move {
            send_on(context, &user, &group, &format!("par-{i}")).await
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().status, 201);
    }
    let walked = walk(&app, &bo, &group).await;
    assert_dense_and_ordered(&walked, 36);
}

#[tokio::test]
async fn concurrent_repeats_of_one_send_take_one_position() {
    let app = TestApp::new().await;
    let (ada, bo) = (app.user("ada").await, app.user("bob").await);
    let group = app.group(&ada, "repeats", &[&bo]).await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (context, user, group) = (app.context, ada.clone(), group.clone());
        // Half on a second container, as retries through API Gateway land anywhere.
        let context = if i % 2 == 0 {
            context
        } else {
            app.another_container(&[]).await
        };
        tasks.push(tokio::spawn(
            async move { send_on(context, &user, &group, "same").await },
        ));
    }
    let mut ids = std::collections::BTreeSet::new();
    let mut created = 0;
    for task in tasks {
        let response = task.await.unwrap();
        assert!(matches!(response.status, 200 | 201), "{}", response.body);
        created += usize::from(response.status == 201);
        ids.insert(response.body["id"].as_str().unwrap().to_owned());
    }
    assert_eq!((ids.len(), created), (1, 1), "one message, created once");
    let after = send_on(app.context, &bo, &group, "next").await;
    assert_eq!(after.body["seq"], 2, "the repeats took no position");
    let walked = walk(&app, &bo, &group).await;
    assert_dense_and_ordered(&walked, 2);
}

/// An attempt that reserved a position and then died before storing (its Lambda timed out, DynamoDB
/// refused even the placeholder) leaves the position reserved for its send's token: the client's retry
/// finds it in the register and stores its message there, so `seq` stays dense and the retry takes no
/// second position.
#[tokio::test]
async fn a_retry_of_an_attempt_that_died_after_reserving_stores_at_its_position() {
    let app = TestApp::new().await;
    let (ann, bob) = (app.user("deadann").await, app.user("deadbob").await);
    let conversation = app.direct(&ann, &bob).await;
    app.send(&ann, &conversation, "before", "first").await;
    // The attempt that died: it reserved seq 2 with the send's token and stored nothing.
    let token = parley::domain::messages::send_token(&conversation, &ann.id, "retried");
    let now_ms = app.context.now_ms();
    let reserved = app
        .context
        .store
        .reserve_position(&conversation, 1, now_ms - 4000, &token, false)
        .await
        .unwrap();
    assert!(
        matches!(
            reserved,
            parley::store::Reserved::New(parley::store::Position { seq: 2, .. })
        ),
        "{reserved:?}"
    );

    let retried = send_on(app.context, &ann, &conversation, "retried").await;
    assert_eq!(retried.status, 201, "{}", retried.body);
    assert_eq!(
        retried.body["seq"], 2,
        "the retry stored at the dead attempt's position"
    );
    let after = send_on(app.context, &bob, &conversation, "after").await;
    assert_eq!(after.body["seq"], 3);
    let walked = walk(&app, &bob, &conversation).await;
    let seqs: Vec<u64> = walked.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3], "dense: {walked:?}");
    assert_eq!(walked[1]["body"], "message retried", "{walked:?}");
    let ids: Vec<&str> = walked.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids follow seq: {ids:?}");
}
