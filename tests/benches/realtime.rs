//! `cargo bench -p parley-tests --bench realtime`: send-to-delivery latency through the local stack for
//! groups of 10, 100 and 1000 connected members, and the DynamoDB work of one fan-out.
//!
//! Users are written straight to the stack's table and given tokens signed with the local secret
//! (registering a thousand through argon2 would only measure argon2). Every member holds one real
//! WebSocket; the owner sends over HTTP at a steady pace; each client timestamps the `message.new` it
//! receives. Latency = receive time - the moment the owner's HTTP request started.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt;
use local_stack::{LocalStack, Options, LOCAL_TOKEN_SECRET};
use parley::auth::tokens::TokenKeys;
use parley::config::Config;
use parley::AppContext;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const MESSAGES: usize = 20;
const PACE: Duration = Duration::from_millis(100);

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let mut options = Options::for_tests(local_stack::workspace_template());
    options.max_instances_per_function = 4;
    let stack = LocalStack::start(options).await.expect("stack");
    let sdk = dynamodb_local::sdk_config(stack.dynamodb_endpoint().unwrap()).await;
    let config = Config::from_lookup(|name| match name {
        "TABLE_NAME" => Some("ChatTable".to_owned()),
        "TOKEN_SECRET" => Some(LOCAL_TOKEN_SECRET.to_owned()),
        "WEBSOCKET_ENDPOINT" => Some(format!("http://{}", stack.ws_url().trim_start_matches("ws://"))),
        _ => None,
    })
    .unwrap();
    let context = AppContext::new(config, &sdk);
    let keys = TokenKeys::new(LOCAL_TOKEN_SECRET.as_bytes(), Duration::from_secs(3600));
    let http = reqwest::Client::new();

    println!("| members connected | messages | deliveries | p50 (ms) | p95 (ms) | p99 (ms) | max (ms) |");
    println!("|---|---|---|---|---|---|---|");
    let mut fanout_work = Vec::new();
    for members in [10usize, 100, 1000] {
        // Users and tokens.
        let mut users = Vec::with_capacity(members);
        for i in 0..members {
            let id = parley_tests::silent_user(&context.store, &format!("rt{members}x{i}")).await;
            let token = keys.issue(&id, "bench", SystemTime::now()).unwrap();
            users.push((id, token));
        }
        let owner_token = users[0].1.clone();
        let member_ids: Vec<&str> = users[1..].iter().map(|(id, _)| id.as_str()).collect();
        let created: Value = http
            .post(format!("{}/conversations", stack.http_url()))
            .bearer_auth(&owner_token)
            .json(&json!({ "type": "group", "name": "bench", "memberIds": member_ids }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let conversation = created["id"].as_str().expect("group created").to_owned();

        // One WebSocket per member; each records when each message arrives.
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
                    while let Some(Ok(frame)) = socket.next().await {
                        let at = Instant::now();
                        if let Message::Text(text) = frame {
                            let value: Value = serde_json::from_str(&text).unwrap_or_default();
                            if value["type"] == "message.new" {
                                let id = value["message"]["clientMessageId"]
                                    .as_str()
                                    .unwrap_or_default()
                                    .to_owned();
                                arrivals.lock().unwrap().entry(id).or_default().push(at);
                            }
                        }
                    }
                }));
            }
        }

        // Warm the send path, then measure.
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
                    .json(&json!({ "clientMessageId": client_id, "body": "a message of ordinary length for the benchmark" }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 201);
                started
            }
        };
        send("warm".to_owned()).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut started = HashMap::new();
        for i in 0..MESSAGES {
            let id = format!("m{i}");
            started.insert(id.clone(), send(id).await);
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
        let mut latencies: Vec<f64> = Vec::new();
        for (id, times) in arrivals.lock().unwrap().iter() {
            if let Some(start) = started.get(id) {
                latencies.extend(times.iter().map(|t| t.duration_since(*start).as_secs_f64() * 1000.0));
            }
        }
        latencies.sort_by(f64::total_cmp);
        println!(
            "| {members} | {MESSAGES} | {}/{} | {:.1} | {:.1} | {:.1} | {:.1} |",
            latencies.len(),
            MESSAGES * members,
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.95),
            percentile(&latencies, 0.99),
            latencies.last().copied().unwrap_or_default()
        );

        // The DynamoDB work of one fan-out, measured in-process on the same data (warm member cache).
        let record = context.store.get_conversation(&conversation).await.unwrap().unwrap();
        let event = json!({ "type": "bench" });
        context
            .fanout
            .to_conversation(
                &context.store,
                &record,
                std::slice::from_ref(&event),
                parley::realtime::Skip::Nobody,
            )
            .await;
        let before = context.store.usage();
        let delivery = context
            .fanout
            .to_conversation(
                &context.store,
                &record,
                std::slice::from_ref(&event),
                parley::realtime::Skip::Nobody,
            )
            .await;
        let used = context.store.usage() - before;
        fanout_work.push((members, used, delivery));
        for reader in readers {
            reader.abort();
        }
    }
    println!("\n| members | DynamoDB calls per fan-out | read units | connections posted |");
    println!("|---|---|---|---|");
    for (members, used, delivery) in fanout_work {
        println!(
            "| {members} | {} | {:.1} | {} |",
            used.calls, used.read_units, delivery.delivered
        );
    }
    stack.stop().await;
}
