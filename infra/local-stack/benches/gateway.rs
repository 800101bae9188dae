//! `cargo bench -p local-stack --bench gateway`: what the local gateway costs per request, how many
//! requests a second it serves, and each real function's cold start.
//!
//! - Overhead: sequential GETs of a no-op function through the gateway, against the same GETs to a bare
//!   HTTP server on loopback answering the same bytes (the "direct call"). The difference is the gateway:
//!   routing, the v2 event, the Runtime API round trip and the response conversion.
//! - Throughput: concurrent clients on the no-op route for a fixed time.
//! - Cold starts: the first request to every function of template.yaml on a fresh stack (debug build,
//!   as the run command runs them), process start to first poll of the Runtime API.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use local_stack::{LocalStack, Options};

const SEQUENTIAL: usize = 2_000;
const CONCURRENCY: usize = 32;
const THROUGHPUT_WINDOW: Duration = Duration::from_secs(10);

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1e6
}

async fn sequential(client: &reqwest::Client, url: &str) -> Vec<Duration> {
    for _ in 0..50 {
        client.get(url).send().await.unwrap().bytes().await.unwrap();
    }
    let mut times = Vec::with_capacity(SEQUENTIAL);
    for _ in 0..SEQUENTIAL {
        let started = Instant::now();
        let response = client.get(url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
        times.push(started.elapsed());
    }
    times.sort();
    times
}

async fn direct_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_| async {
                    Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(b"ok"))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    format!("http://{address}/")
}

async fn throughput(url: &str) -> (f64, u64) {
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + THROUGHPUT_WINDOW;
    let mut workers = Vec::new();
    for _ in 0..CONCURRENCY {
        let (url, done, failed) = (url.to_owned(), Arc::clone(&done), Arc::clone(&failed));
        workers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            while Instant::now() < deadline {
                match client.get(&url).send().await {
                    Ok(r) if r.status() == 200 => {
                        let _ = r.bytes().await;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for worker in workers {
        worker.await.unwrap();
    }
    (
        done.load(Ordering::Relaxed) as f64 / THROUGHPUT_WINDOW.as_secs_f64(),
        failed.load(Ordering::Relaxed),
    )
}

#[tokio::main]
async fn main() {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/template.yaml");
    let mut options = Options::for_tests(fixtures);
    options.parameters.insert("FixtureSecret".into(), "bench".into());
    options.max_instances_per_function = CONCURRENCY;
    let stack = LocalStack::start(options).await.expect("fixture stack");
    let client = reqwest::Client::new();

    let through_gateway = sequential(&client, &format!("{}/noop", stack.http_url())).await;
    let direct = sequential(&client, &direct_server().await).await;
    println!("Per request, sequential, {SEQUENTIAL} requests after 50 warm-up (microseconds):");
    println!("| path | p50 | p95 | p99 |");
    println!("|---|---|---|---|");
    for (name, times) in [
        ("direct to a bare HTTP server", &direct),
        ("through the gateway to a no-op function", &through_gateway),
    ] {
        println!(
            "| {name} | {:.0} | {:.0} | {:.0} |",
            percentile(times, 0.50),
            percentile(times, 0.95),
            percentile(times, 0.99)
        );
    }
    println!(
        "| gateway overhead (difference) | {:.0} | {:.0} | {:.0} |",
        percentile(&through_gateway, 0.50) - percentile(&direct, 0.50),
        percentile(&through_gateway, 0.95) - percentile(&direct, 0.95),
        percentile(&through_gateway, 0.99) - percentile(&direct, 0.99)
    );

    let (rate, failed) = throughput(&format!("{}/noop", stack.http_url())).await;
    let instances = stack.stats("fixture-noop").unwrap().cold_starts;
    println!(
        "\nThroughput: {rate:.0} requests/s through the gateway ({CONCURRENCY} concurrent clients, {} s, {failed} failed, {instances} instances)",
        THROUGHPUT_WINDOW.as_secs()
    );
    stack.stop().await;

    let real = LocalStack::start(Options::for_tests(local_stack::workspace_template()))
        .await
        .expect("real stack");
    let template = parley_template::Template::load(&local_stack::workspace_template()).unwrap();
    println!("\nCold start per function (debug build; process start to first Runtime API poll):");
    println!("| function | init (ms) |");
    println!("|---|---|");
    for function in template.functions().unwrap() {
        let route = &function.http_routes[0];
        let path = route.path.replace("{userId}", "01JH3Z4S0N8XQ3A4YGS6SFE0CW");
        let _ = client
            .request(route.method.parse().unwrap(), format!("{}{path}", real.http_url()))
            .send()
            .await;
        let stats = real.stats(&function.binary).unwrap();
        println!("| {} | {:.1} |", function.binary, stats.init_micros[0] as f64 / 1000.0);
    }
    real.stop().await;
}
