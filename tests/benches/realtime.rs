//! `cargo bench -p parley-tests --bench realtime`: through the local stack, for groups of 2, 10, 100 and 1000
//! connected members: the send's own latency (HTTP round trip), send-to-delivery per delivery and to
//! the last member, and the DynamoDB work per message, synchronous (the send) and asynchronous (the
//! delivery worker), from the functions' own metric lines.
//!
//! `REALTIME_PROFILE=release` runs release-built functions (build them first:
//! `cargo build --release $(ls functions | sed 's/^/-p /')`); the default is debug.
//!
//! Users are written straight to the stack's table and given tokens signed with the local secret
//! (registering a thousand through argon2 would only measure argon2). Every member holds one real
//! WebSocket; the owner sends over HTTP at a steady pace; each client timestamps the `message.new` it
//! receives. Latency = receive time - the moment the owner's HTTP request started.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt;
use local_stack::{LocalStack, Options, Profile, LOCAL_TOKEN_SECRET};
use parley::auth::tokens::TokenKeys;
use parley::config::Config;
use parley::AppContext;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const MESSAGES: usize = 30;
const PACE: Duration = Duration::from_millis(100);

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Sums of the per-invocation metric lines of one binary since `skip` lines: invocations, DynamoDB
/// calls, RCU, WCU.
fn work(stack: &LocalStack, binary: &str, skip: usize) -> (usize, f64, f64, f64) {
    let mut totals = (0usize, 0.0, 0.0, 0.0);
    for line in stack.logs().iter().filter(|l| l.source == binary).skip(skip) {
        let Ok(value) = serde_json::from_str::<Value>(&line.text) else {
            continue;
        };
        if value.get("DynamoDBCalls").is_some() {
            totals.0 += 1;
            totals.1 += value["DynamoDBCalls"].as_f64().unwrap_or(0.0);
            totals.2 += value["ReadCapacityUnits"].as_f64().unwrap_or(0.0);
            totals.3 += value["WriteCapacityUnits"].as_f64().unwrap_or(0.0);
        }
    }
    totals
}

fn lines_of(stack: &LocalStack, binary: &str) -> usize {
    stack.logs().iter().filter(|l| l.source == binary).count()
}

/// The functions a send sets to work: the send itself (the request path), then the delivery worker
/// (the queue), the conversation worker (lastMessage, read marker, list keys: the stream) and the
/// search indexer (the stream).
const WORKERS: [&str; 4] = [
    "messages-send",
    "delivery-worker",
    "conversation-worker",
    "search-indexer",
];

/// A typical chat message: 14 words.
const TYPICAL_BODY: &str = "are we still meeting at the station tomorrow morning or should I book a table";

#[tokio::main]
async fn main() {
    let mut options = Options::for_tests(local_stack::workspace_template());
    match std::env::var("REALTIME_PROFILE").as_deref() {
        Ok("release") => {
            options.profile = Profile::Release;
            options.build = false;
        }
        Ok("local") => {
            options.profile = Profile::Local;
            options.build = false;
        }
        _ => {}
    }
    let stack = LocalStack::start(options).await.expect("stack");
    let sdk = dynamodb_local::sdk_config(stack.dynamodb_endpoint().unwrap()).await;
    let config = Config::from_lookup(|name| match name {
        "TABLE_NAME" => Some("ChatTable".to_owned()),
        "TOKEN_SECRET" => Some(LOCAL_TOKEN_SECRET.to_owned()),
        _ => None,
    })
    .unwrap();
    let context = AppContext::new(config, &sdk);
    let keys = TokenKeys::new(LOCAL_TOKEN_SECRET.as_bytes(), Duration::from_secs(3600));
    let http = reqwest::Client::new();

    let mut rows = Vec::new();
    let mut work_rows = Vec::new();
    for members in [2usize, 10, 100, 1000] {
        let mut users = Vec::with_capacity(members);
        for i in 0..members {
            let id = parley_tests::silent_user(&context.store, &format!("rt{members}x{i}")).await;
            let token = keys.issue(&id, "bench", SystemTime::now()).unwrap();
            users.push((id, token));
        }
        let owner_token = users[0].1.clone();
        let member_ids: Vec<&str> = users[1..].iter().map(|(id, _)| id.as_str()).collect();
        let body = if members == 2 {
            json!({ "type": "direct", "memberIds": member_ids })
        } else {
            json!({ "type": "group", "name": "bench", "memberIds": member_ids })
        };
        let created: Value = http
            .post(format!("{}/conversations", stack.http_url()))
            .bearer_auth(&owner_token)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let conversation = created["id"].as_str().expect("conversation created").to_owned();

        // One WebSocket per member; each records when each message first arrives (batches opened).
        let arrivals: Arc<Mutex<HashMap<String, Vec<Instant>>>> = Arc::default();
        let mut readers = Vec::new();
        for chunk in users.chunks(50) {
            let mut connecting = Vec::new();
            for (_, token) in chunk {
                let url = format!("{}/?token={token}", stack.ws_url());
                connecting.push(tokio::spawn(async move {
                    tokio_tungstenite::connect_async(url).await.expect("connect").0
                }));
            }
            for socket in connecting {
                let mut socket = socket.await.unwrap();
                let arrivals = Arc::clone(&arrivals);
                readers.push(tokio::spawn(async move {
                    let mut seen = std::collections::HashSet::new();
                    while let Some(Ok(frame)) = socket.next().await {
                        let at = Instant::now();
                        let Message::Text(text) = frame else { continue };
                        let value: Value = serde_json::from_str(&text).unwrap_or_default();
                        let events = if value["type"] == "batch" {
                            value["events"].as_array().cloned().unwrap_or_default()
                        } else {
                            vec![value]
                        };
                        for event in events.into_iter().filter(|e| e["type"] == "message.new") {
                            let id = event["message"]["clientMessageId"]
                                .as_str()
                                .unwrap_or_default()
                                .to_owned();
                            if seen.insert(id.clone()) {
                                arrivals.lock().unwrap().entry(id).or_default().push(at);
                            }
                        }
                    }
                }));
            }
        }

        let send = |client_id: String| {
            let (http, url, token) = (
                http.clone(),
                format!("{}/conversations/{conversation}/messages", stack.http_url()),
                owner_token.clone(),
            );
            async move {
                let started = Instant::now();
                let response = http
                    .post(url)
                    .bearer_auth(token)
                    .json(&json!({ "clientMessageId": client_id, "body": TYPICAL_BODY }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 201);
                (started, started.elapsed().as_secs_f64() * 1000.0)
            }
        };
        // Warm both paths (the send function and the worker) before measuring.
        for i in 0..10 {
            send(format!("warm{i}")).await;
        }
        // The stream workers batch for up to a second: let the warm-up's work land before counting.
        tokio::time::sleep(Duration::from_millis(3000)).await;
        let skips: Vec<usize> = WORKERS.iter().map(|binary| lines_of(&stack, binary)).collect();
        let mut started = HashMap::new();
        let mut send_ms = Vec::new();
        for i in 0..MESSAGES {
            let id = format!("m{i}");
            let (at, took) = send(id.clone()).await;
            started.insert(id, at);
            send_ms.push(took);
            tokio::time::sleep(PACE).await;
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let done = arrivals
                .lock()
                .unwrap()
                .iter()
                .filter(|(k, v)| started.contains_key(*k) && v.len() == members)
                .count();
            if done == MESSAGES {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // And the measured sends' stream work.
        tokio::time::sleep(Duration::from_millis(3000)).await;
        let mut per_delivery = Vec::new();
        let mut to_all = Vec::new();
        let mut delivered = 0;
        for (id, times) in arrivals.lock().unwrap().iter() {
            let Some(start) = started.get(id) else { continue };
            delivered += times.len();
            let ms: Vec<f64> = times
                .iter()
                .map(|t| t.duration_since(*start).as_secs_f64() * 1000.0)
                .collect();
            if times.len() == members {
                to_all.push(ms.iter().copied().fold(0.0, f64::max));
            }
            per_delivery.extend(ms);
        }
        per_delivery.sort_by(f64::total_cmp);
        to_all.sort_by(f64::total_cmp);
        send_ms.sort_by(f64::total_cmp);
        rows.push(format!(
            "| {members} | {MESSAGES} | {delivered}/{} | {:.1} / {:.1} | {:.1} / {:.1} / {:.1} | {:.1} / {:.1} |",
            MESSAGES * members,
            percentile(&send_ms, 0.50),
            percentile(&send_ms, 0.95),
            percentile(&per_delivery, 0.50),
            percentile(&per_delivery, 0.95),
            percentile(&per_delivery, 0.99),
            percentile(&to_all, 0.50),
            percentile(&to_all, 0.95),
        ));
        let per = |total: f64| total / MESSAGES as f64;
        let mut row = format!("| {members} |");
        let mut total_wcu = 0.0;
        for (binary, skip) in WORKERS.iter().zip(&skips) {
            let (invocations, calls, rcu, wcu) = work(&stack, binary, *skip);
            total_wcu += wcu;
            row.push_str(&format!(
                " {:.2} / {:.2} / {:.2} / {:.2} |",
                invocations as f64 / MESSAGES as f64,
                per(calls),
                per(rcu),
                per(wcu)
            ));
        }
        row.push_str(&format!(" {:.2} |", per(total_wcu)));
        work_rows.push(row);
        for reader in readers {
            reader.abort();
        }
    }
    let contention = contention(&stack, &context, &keys, &http).await;
    println!("| members connected | messages | deliveries | send p50 / p95 (ms) | send-to-delivery p50 / p95 / p99 (ms) | to the last member p50 / p95 (ms) |");
    println!("|---|---|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
    println!("\nPer message: invocations / DynamoDB calls / RCU / WCU (the functions' own metric lines)\n");
    println!("| members | send (request path) | delivery worker | conversation worker | search indexer | WCU in all |");
    println!("|---|---|---|---|---|---|");
    for row in work_rows {
        println!("{row}");
    }
    println!("\n{contention}");
    stack.stop().await;
}

/// 20 senders sustaining 50 sends/s into one conversation for 20 s: every send must be stored (none
/// refused), `seq` dense, and the send's latency under contention.
async fn contention(stack: &LocalStack, context: &AppContext, keys: &TokenKeys, http: &reqwest::Client) -> String {
    const SENDERS: usize = 20;
    const PER_SENDER: usize = 50;
    const INTERVAL: Duration = Duration::from_millis(400);
    let mut users = Vec::new();
    for i in 0..SENDERS {
        let id = parley_tests::silent_user(&context.store, &format!("busy{i}")).await;
        users.push((id.clone(), keys.issue(&id, "bench", SystemTime::now()).unwrap()));
    }
    let member_ids: Vec<&str> = users[1..].iter().map(|(id, _)| id.as_str()).collect();
    let created: Value = http
        .post(format!("{}/conversations", stack.http_url()))
        .bearer_auth(&users[0].1)
        .json(&json!({ "type": "group", "name": "busy", "memberIds": member_ids }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let conversation = created["id"].as_str().unwrap().to_owned();
    let url = format!("{}/conversations/{conversation}/messages", stack.http_url());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, (_, token)) in users.iter().enumerate() {
        let (http, url, token) = (http.clone(), url.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            // Spread the senders over the interval, then a steady pace each.
            tokio::time::sleep(INTERVAL * i as u32 / SENDERS as u32).await;
            let mut ticker = tokio::time::interval(INTERVAL);
            let mut results = Vec::new();
            for j in 0..PER_SENDER {
                ticker.tick().await;
                let sent = Instant::now();
                let status = http
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({ "clientMessageId": format!("b{i}-{j}"), "body": "busy group" }))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                results.push((status, sent.elapsed().as_secs_f64() * 1000.0));
            }
            results
        }));
    }
    let mut latencies = Vec::new();
    let mut refused = 0;
    for task in tasks {
        for (status, ms) in task.await.unwrap() {
            if status == 201 {
                latencies.push(ms);
            } else {
                refused += 1;
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    // The walk: every position once.
    let mut seqs = Vec::new();
    let mut after = "00000000000000000000000000".to_owned();
    loop {
        let page: Value = http
            .get(format!("{url}?after={after}&limit=100"))
            .bearer_auth(&users[0].1)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let items = page["items"].as_array().cloned().unwrap_or_default();
        let Some(last) = items.last() else { break };
        after = last["id"].as_str().unwrap().to_owned();
        seqs.extend(items.iter().map(|m| m["seq"].as_u64().unwrap()));
    }
    let dense = seqs == (1..=seqs.len() as u64).collect::<Vec<_>>();
    format!(
        "| senders | sends | rate (/s) | refused | stored, seq dense | send p50 / p95 / p99 (ms) |\n|---|---|---|---|---|---|\n| {SENDERS} | {} | {:.1} | {refused} | {}, {} | {:.1} / {:.1} / {:.1} |",
        SENDERS * PER_SENDER,
        (SENDERS * PER_SENDER) as f64 / elapsed,
        seqs.len(),
        if dense { "yes" } else { "NO" },
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.95),
        percentile(&latencies, 0.99),
    )
}
