//! The search's cost, in process against DynamoDB Local: the reads of one query for a caller in 1 and
//! in 200 conversations stay within the bounds `shared/src/search` documents, and the write units of
//! indexing a message follow its words. There is no stream in process: messages are indexed by calling
//! the indexer as the stream worker would (`search::indexer::index`).

use parley::api::search as routes;
use parley::search::{indexer, query};
use parley_tests::{TestApp, TestRequest, TestUser};
use serde_json::Value;

fn search(user: &TestUser, q: &str, limit: usize) -> TestRequest {
    TestRequest::new("GET", "/search/messages")
        .bearer(&user.token)
        .query("q", q)
        .query("limit", &limit.to_string())
}

/// Sends `body` and indexes it as the stream would; returns the message and the write units indexing
/// it took.
async fn send_indexed(
    app: &TestApp,
    sender: &TestUser,
    conversation: &str,
    client_id: &str,
    body: &str,
) -> (Value, f64) {
    let message = app.send(sender, conversation, client_id, body).await;
    let record = app
        .context
        .store
        .get_message(conversation, message["id"].as_str().unwrap())
        .await
        .unwrap()
        .expect("the message is stored");
    let before = app.context.store.usage();
    indexer::index(app.context, &record).await.expect("indexed");
    let used = app.context.store.usage() - before;
    (message, used.write_units)
}

/// (DynamoDB calls, read units, items) of one search, after a warm-up search (session cache).
async fn query_cost(app: &TestApp, user: &TestUser, q: &str, limit: usize) -> (u64, f64, usize) {
    app.call(routes::messages, search(user, q, limit)).await;
    let before = app.context.store.usage();
    let page = app.call(routes::messages, search(user, q, limit)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let used = app.context.store.usage() - before;
    (
        used.calls,
        used.read_units,
        page.body["items"].as_array().unwrap().len(),
    )
}

#[tokio::test]
async fn a_query_reads_one_index_partition_per_conversation_and_no_more() {
    let app = TestApp::new().await;
    let (me, other) = (app.user("seeker").await, app.user("talker").await);
    let first = app.group(&other, "first", &[&me]).await;
    for i in 0..3 {
        send_indexed(
            &app,
            &other,
            &first,
            &format!("f{i}"),
            &format!("harbour lights number {i}"),
        )
        .await;
    }
    let one = query_cost(&app, &me, "harbour", 20).await;
    assert_eq!(one.2, 3);
    // Rate-limit counter, one Query of member items, one index Query, one BatchGetItem of the
    // messages, one of the caller's own reactions to them.
    assert!(one.0 <= 5, "calls at 1 conversation: {one:?}");

    for i in 0..199 {
        let group = app.group(&other, &format!("g{i}"), &[&me]).await;
        if i % 20 == 0 {
            send_indexed(&app, &other, &group, &format!("m{i}"), "harbour view tonight").await;
        }
    }
    let many = query_cost(&app, &me, "harbour", 20).await;
    assert_eq!(many.2, 13);
    // Two Queries of member items (100 a page), 200 index Queries, follow-ups within the budget.
    assert!(
        many.0 <= 1 + 2 + 200 + query::MAX_FOLLOW_UPS as u64 + 2,
        "calls at 200 conversations: {many:?}"
    );
    assert!(many.0 >= 200, "one index Query per conversation: {many:?}");
    assert!(many.1 <= 150.0, "read units at 200 conversations: {many:?}");

    // With `conversationId`, one conversation whatever the caller's total.
    let before = app.context.store.usage();
    let page = app
        .call(
            routes::messages,
            search(&me, "harbour", 20).query("conversationId", &first),
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.body["items"].as_array().unwrap().len(), 3);
    let used = app.context.store.usage() - before;
    assert!(used.calls <= 5, "calls with conversationId: {used:?}");
}

#[tokio::test]
async fn indexing_costs_one_write_unit_per_distinct_prefix() {
    let app = TestApp::new().await;
    let (me, other) = (app.user("writer").await, app.user("reader").await);
    let group = app.group(&me, "w", &[&other]).await;
    let (_, units) = send_indexed(&app, &me, &group, "w1", "See you at the café tomorrow").await;
    // see(3) you(3) at(2, a shared) the(2 new: th, the; t shared) cafe(4) tomorrow(7 new: to..tomorrow)
    let expected = parley::search::indexer::Indexed::of("See you at the café tomorrow", false, false)
        .prefixes()
        .len();
    assert_eq!(units, expected as f64, "one write unit per entry");
    let entries = app
        .all_keys()
        .await
        .into_iter()
        .filter(|(pk, _)| pk.starts_with("IDX#"))
        .count();
    assert_eq!(entries, expected);
}

fn median_and_max(mut times: Vec<f64>) -> (f64, f64) {
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], times[times.len() - 1])
}

/// The figures of BENCHMARKS.md ("Search (issue 13)"): one query at 1 and 200 conversations (a
/// matching message in each), its DynamoDB calls, read units and wall time (median of 20), the same for
/// a term that matches nothing, and the write units of indexing messages of several lengths. A
/// benchmark, not a check: `cargo test -p parley-tests --test search_cost -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "a benchmark: run it by name"]
async fn search_figures() {
    let app = TestApp::new().await;
    let (me, other) = (app.user("figures").await, app.user("sender").await);
    let mut made = 0;
    println!("| conversations | query | results | calls | read units | p50 ms | max ms |");
    println!("|---|---|---|---|---|---|---|");
    for target in [1usize, 200] {
        while made < target {
            let group = app.group(&other, &format!("g{made}"), &[&me]).await;
            send_indexed(
                &app,
                &other,
                &group,
                &format!("m{made}"),
                &format!("lighthouse keeper log {made}"),
            )
            .await;
            send_indexed(&app, &other, &group, &format!("n{made}"), "nothing to see here").await;
            made += 1;
        }
        for q in ["lighthouse", "light keeper", "zeppelin"] {
            let (calls, read_units, results) = query_cost(&app, &me, q, 20).await;
            let mut times = Vec::new();
            for _ in 0..20 {
                let started = std::time::Instant::now();
                app.call(routes::messages, search(&me, q, 20)).await;
                times.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            let (p50, max) = median_and_max(times);
            println!("| {target} | `{q}` | {results} | {calls} | {read_units:.1} | {p50:.1} | {max:.1} |");
        }
    }
    println!();
    println!("| message | words | index entries (WCU) | delete all (WCU) |");
    println!("|---|---|---|---|");
    let group = app.group(&me, "writes", &[&other]).await;
    let long: Vec<String> = (0..600).map(|i| format!("w{i}x")).collect();
    let samples = [
        ("short", "ok see you soon".to_owned()),
        (
            "typical",
            "Can we move the quarterly review to Thursday afternoon? The slides are not ready yet".to_owned(),
        ),
        ("long (4,000 characters)", long.join(" ").chars().take(4000).collect()),
    ];
    for (i, (what, body)) in samples.iter().enumerate() {
        let (message, units) = send_indexed(&app, &me, &group, &format!("s{i}"), body).await;
        let indexed = indexer::Indexed::of(body, false, false);
        let before = app.context.store.usage();
        indexer::apply(
            app.context,
            &group,
            message["id"].as_str().unwrap(),
            std::slice::from_ref(&indexed),
            &indexer::Indexed::default(),
        )
        .await
        .unwrap();
        let deleted = (app.context.store.usage() - before).write_units;
        println!("| {what} | {} | {units:.0} | {deleted:.0} |", indexed.words.len());
    }
}
