//! The open loop's executor against a tiny HTTP server on 127.0.0.1 that answers every request only after
//! a delay. A closed loop slows down with its answers; the open loop must keep its arrivals on the clock,
//! dropping those that find the in-flight bound full and timing out those that take too long, and the
//! verdict must then fail. Counts are asserted, not timings, wherever the test allows.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use load_test::arrivals::{run_stage, ArrivalSource, RouteLoad};
use load_test::client::{http_client, Api};
use load_test::delivery::DeliveryCounts;
use load_test::report::{open_loop_checks, ArrivalReport, DeliveryReport};
use load_test::run::OpenLoopOutcome;
use load_test::stats::{route, Outcome, Recorder, RouteStats};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A server that answers `{}` with 200 after `delay`, keeping connections alive; it counts the requests.
async fn slow_server(delay: Duration) -> (String, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let received = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&received);
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    // One request at a time per connection: GETs without a body end at the blank line.
                    while !buffer.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let end = buffer.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                    buffer.drain(..end);
                    counter.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(delay).await;
                    let answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
                    if stream.write_all(answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (base, received)
}

/// Arrivals that list conversations on the slow server, through the load test's own HTTP client.
struct ListOnSlowServer {
    api: Api,
}

impl ArrivalSource for ListOnSlowServer {
    fn route(&self, _k: u64) -> &'static str {
        route::LIST
    }

    fn perform(self: Arc<Self>, _k: u64) -> Pin<Box<dyn Future<Output = Outcome> + Send>> {
        Box::pin(async move {
            match self.api.list_conversations("token").await {
                Ok(_) => Outcome::Status(200),
                Err(e) => e.outcome(),
            }
        })
    }
}

/// Runs one 2 s stage at 50 arrivals/s against a server answering after `delay`, then waits for what is in
/// flight; returns what was recorded for the route.
async fn two_seconds_at_fifty(base: &str, max_in_flight: usize, timeout: Duration) -> RouteStats {
    let recorder = Arc::new(Recorder::new());
    let source = Arc::new(ListOnSlowServer {
        api: Api::unrecorded(http_client(timeout + Duration::from_secs(1)).unwrap(), base),
    });
    let mut loads = [RouteLoad::new(source, 50.0, max_in_flight)];
    let start = tokio::time::Instant::from_std(recorder.restart_timeline());
    let completed = run_stage(
        &mut loads,
        1.0,
        start,
        Duration::from_secs(2),
        timeout,
        &recorder,
        &AtomicBool::new(false),
    )
    .await;
    assert!(completed);
    assert_eq!(loads[0].offered(), 100);
    loads[0].drain().await;
    assert_eq!(loads[0].in_flight(), 0);
    recorder.routes()[route::LIST].clone()
}

fn outcome(scheduled: Duration) -> OpenLoopOutcome {
    OpenLoopOutcome {
        users_wanted: 1,
        users_ready: 1,
        setup: Duration::ZERO,
        scheduled,
        max_in_flight: 20,
        request_timeout: Duration::from_secs(10),
        steps: Vec::new(),
        broke_at_per_second: None,
    }
}

fn no_deliveries() -> DeliveryReport {
    DeliveryReport {
        counts: DeliveryCounts::default(),
        completeness_percent: 100.0,
        p50_ms: 0.0,
        p95_ms: 0.0,
        p99_ms: 0.0,
        max_ms: 0.0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_open_loop_keeps_its_rate_when_answers_are_slow_and_a_closed_loop_does_not() {
    let (base, received) = slow_server(Duration::from_secs(1)).await;

    // Open loop: 100 arrivals are due in 2 s whatever the answers take. With 20 in flight at most and
    // each taking a second, about 20 start in the first 0.4 s, about 20 more once the first answers come
    // back, and the rest find the bound full: dropped, not delayed.
    let list = two_seconds_at_fifty(&base, 20, Duration::from_secs(10)).await;
    let started = list.offered - list.dropped;
    assert_eq!(list.offered, 100);
    assert!((20..=60).contains(&started), "started {started}");
    assert!(list.dropped >= 40, "dropped {}", list.dropped);
    assert_eq!((list.count, list.ok, list.timed_out), (started, started, 0));
    assert_eq!(received.load(Ordering::Relaxed), started);

    // The report and the verdict: all offered, few answered, so the route was not served.
    let report = ArrivalReport::new(route::LIST, &list, 2.0);
    assert_eq!(report.offered_per_second, 50.0);
    assert!(
        report.answered_per_second < 0.6 * report.offered_per_second,
        "{report:?}"
    );
    let checks = open_loop_checks(&[report], &no_deliveries(), &outcome(Duration::from_secs(2)));
    let failing: Vec<&str> = checks.iter().filter(|c| !c.passed).map(|c| c.name.as_str()).collect();
    assert_eq!(
        failing,
        [
            "GET /conversations latency",
            "GET /conversations served",
            "GET /conversations answered rate"
        ],
        "{checks:?}"
    );

    // A closed loop of the same 20 users over the same 2 s: each waits for its answer before the next
    // request, so the slow server slows the arrivals to about 40, where the open loop offered 100.
    let api = Api::unrecorded(http_client(Duration::from_secs(10)).unwrap(), &base);
    let closed_started = Arc::new(AtomicU64::new(0));
    let began = tokio::time::Instant::now();
    let users = (0..20).map(|_| {
        let (api, closed_started) = (api.clone(), Arc::clone(&closed_started));
        tokio::spawn(async move {
            while began.elapsed() < Duration::from_secs(2) {
                closed_started.fetch_add(1, Ordering::Relaxed);
                let _ = api.list_conversations("token").await;
            }
        })
    });
    futures_util::future::join_all(users).await;
    let closed_started = closed_started.load(Ordering::Relaxed);
    assert!(closed_started <= 60, "closed loop started {closed_started}");
    assert!(closed_started < list.offered);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arrivals_that_outlast_the_time_out_are_counted_as_timed_out() {
    let (base, _) = slow_server(Duration::from_secs(1)).await;
    // Room for all in flight, but a 300 ms time-out against 1 s answers: every arrival starts on time and
    // times out; none is dropped and none answered.
    let list = two_seconds_at_fifty(&base, 1000, Duration::from_millis(300)).await;
    assert_eq!(
        (list.offered, list.dropped, list.timed_out, list.answered()),
        (100, 0, 100, 0)
    );
    // A time-out counts in the latency at the time waited, a lower bound of the real one.
    assert!(list.ms(50.0) >= 299.0, "p50 {} ms", list.ms(50.0));
    let report = ArrivalReport::new(route::LIST, &list, 2.0);
    assert_eq!(
        (report.timed_out, report.failed, report.answered_per_second),
        (100, 0, 0.0)
    );
    let checks = open_loop_checks(&[report], &no_deliveries(), &outcome(Duration::from_secs(2)));
    assert!(checks
        .iter()
        .any(|c| c.name == "GET /conversations served" && !c.passed));
    assert!(checks
        .iter()
        .any(|c| c.name == "GET /conversations answered rate" && !c.passed));
}
