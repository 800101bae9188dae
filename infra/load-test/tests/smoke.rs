//! The load test against the real local stack (started in this process, in memory), the open loop's
//! `--short` scenario and each closed-loop scenario in a seconds-long version with a handful of users.
//! Checks that real load was made and measured: every route called, no errors, every expected WebSocket
//! delivery received, a report with its per-route lines and verdict, and a real PNG. Latency is not
//! asserted: that is what the full runs in BENCHMARKS.md are for.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use load_test::report::{Report, TargetInfo};
use load_test::run::{new_run_id, RunSettings};
use load_test::scenario::{Overrides, Plan, Scenario, ScenarioKind};
use load_test::stats::route;
use load_test::target::{self, Endpoints, StackSettings};

fn tiny(kind: ScenarioKind) -> Scenario {
    let overrides = match kind {
        ScenarioKind::Stress => Overrides {
            short: true,
            closed_loop: true,
            users: Some(3),
            step_users: Some(3),
            step: Some(Duration::from_secs(2)),
            max_users: Some(6),
            duration: Some(Duration::from_secs(4)),
            ..Overrides::default()
        },
        _ => Overrides {
            short: true,
            users: Some(if kind == ScenarioKind::Normal { 6 } else { 9 }),
            duration: Some(Duration::from_secs(5)),
            think: Some(Duration::from_millis(100)),
            closed_loop: true,
            ..Overrides::default()
        },
    };
    Scenario::build(kind, &overrides)
}

/// Width and height from a PNG's IHDR, after checking the signature.
fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.len() < 24 || &bytes[..8] != b"\x89PNG\r\n\x1a\n" || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let be = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap());
    Some((be(16), be(20)))
}

fn check(report: &Report, chart: &Path) {
    let text = report.to_text();
    let name = report.scenario.kind.name();
    for r in [
        route::REGISTER,
        route::CREATE_GROUP,
        route::LIST,
        route::HISTORY,
        route::SEND,
        route::WS_CONNECT,
    ] {
        let measured = report
            .route(r)
            .unwrap_or_else(|| panic!("{name}: no {r} requests\n{text}"));
        assert!(measured.count > 0 && measured.p50_ms > 0.0, "{name}: {r}\n{text}");
        assert!(
            text.lines().any(|l| l.starts_with(r)),
            "{name}: no report line for {r}\n{text}"
        );
    }
    assert_eq!(report.errors, 0, "{name}: errors\n{text}");
    assert_eq!(report.setup_failures, 0, "{name}\n{text}");
    let d = &report.delivery.counts;
    assert!(d.sends > 0 && d.expected > 0, "{name}: no deliveries expected\n{text}");
    assert_eq!((d.received, d.missing), (d.expected, 0), "{name}: deliveries\n{text}");
    assert!(report.delivery.p50_ms > 0.0, "{name}\n{text}");
    assert!(report.peak_users > 0 && report.per_second > 0.0, "{name}\n{text}");
    assert!(
        text.contains("verdict (seeds: p95 < 300 ms, p99 < 500 ms, errors < 1 %)"),
        "{text}"
    );
    assert!(
        text.contains("PASS  error rate") && text.contains("PASS  deliveries"),
        "{text}"
    );
    assert!(
        text.contains(if report.passed { "RESULT: PASS" } else { "RESULT: FAIL" }),
        "{text}"
    );
    let json = serde_json::to_value(report).unwrap();
    assert_eq!(json["scenario"]["kind"], name);
    assert!(json["routes"].as_array().is_some_and(|r| r.len() >= 6));

    let png = std::fs::read(chart).unwrap_or_else(|e| panic!("{name}: chart {}: {e}", chart.display()));
    assert_eq!(png_size(&png), Some((1600, 1000)), "{name}: not a 1600x1000 PNG");
    assert!(
        png.len() > 20_000,
        "{name}: a {} byte chart has too little on it",
        png.len()
    );
    assert!(text.contains(&format!("chart: {}", chart.display())));
}

/// The open loop's `--short` normal scenario, with 6 users in groups of 3 for 5 s.
fn open_short() -> Scenario {
    Scenario::build(
        ScenarioKind::Normal,
        &Overrides {
            short: true,
            users: Some(6),
            duration: Some(Duration::from_secs(5)),
            ..Overrides::default()
        },
    )
}

fn check_open(report: &Report, chart: &Path) {
    let text = report.to_text();
    let open = report
        .open_loop
        .as_ref()
        .unwrap_or_else(|| panic!("not open loop\n{text}"));
    assert_eq!((open.outcome.users_wanted, open.outcome.users_ready), (6, 6), "{text}");
    assert_eq!(report.groups, 2, "{text}");
    for r in [route::SEND, route::WS_SEND, route::HISTORY, route::LIST] {
        let a = report.arrivals(r).unwrap_or_else(|| panic!("no {r} arrivals\n{text}"));
        assert!(a.offered > 0, "{r}\n{text}");
        // Every arrival served: the short plan's rates are nothing for the stack.
        assert_eq!(
            (a.ok, a.answered, a.unserved()),
            (a.offered, a.offered, 0),
            "{r}\n{text}"
        );
        assert!(a.p50_ms > 0.0 && a.offered_per_second > 0.0, "{r}\n{text}");
        assert!(text.lines().any(|l| l.starts_with(r)), "no report line for {r}\n{text}");
    }
    // Sends alternate, HTTP first: half each, the HTTP half one more when the count is odd.
    let (http, ws) = (
        report.arrivals(route::SEND).unwrap(),
        report.arrivals(route::WS_SEND).unwrap(),
    );
    assert!(http.offered == ws.offered || http.offered == ws.offered + 1, "{text}");
    // Groups of 3: an HTTP send owes both others and the sender's own socket, a sendMessage the others.
    let d = &report.delivery.counts;
    assert_eq!(d.expected, 3 * http.ok + 2 * ws.ok, "{text}");
    assert_eq!((d.received, d.missing), (d.expected, 0), "deliveries\n{text}");
    assert_eq!(report.delivery.completeness_percent, 100.0);
    assert!(report.delivery.p50_ms > 0.0, "{text}");
    for check in ["PASS  GET /conversations served", "PASS  deliveries", "PASS  set-up"] {
        assert!(text.contains(check), "{check}\n{text}");
    }
    assert!(text.contains("answered rate") && text.contains("RESULT: "), "{text}");
    let json = serde_json::to_value(report).unwrap();
    assert_eq!(json["model"], "open loop");
    assert_eq!(json["openLoop"]["routes"].as_array().map(Vec::len), Some(4));
    assert_eq!(json["openLoop"]["usersReady"], 6);
    let png = std::fs::read(chart).unwrap_or_else(|e| panic!("open loop: chart {}: {e}", chart.display()));
    assert_eq!(png_size(&png), Some((1600, 1000)), "open loop: not a 1600x1000 PNG");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_in_short_against_the_local_stack() {
    let began = Instant::now();
    // A small DynamoDB Local heap, as the other end-to-end tests use: a few users need no more.
    let settings = StackSettings {
        dynamodb_heap_mb: 384,
        ..StackSettings::default()
    };
    let (stack, parameters) = target::start_local_stack(&settings)
        .await
        .expect("the local stack starts");
    eprintln!("local stack up after {:.1} s", began.elapsed().as_secs_f64());
    let endpoints = Endpoints {
        http: stack.http_url(),
        ws: stack.ws_url(),
    };
    let charts = std::env::temp_dir().join(format!("parley-load-smoke-{}", std::process::id()));
    let target = TargetInfo {
        http: endpoints.http.clone(),
        ws: endpoints.ws.clone(),
        description: "smoke test".to_owned(),
        parameters: parameters.clone(),
    };
    // The rate limits are on, raised out of the way, as the open loop runs them.
    assert!(parameters.values().all(|v| v == "1000000"), "{parameters:?}");

    // Every run's settings but its scenario and heartbeat.
    let settings = |scenario, heartbeat| RunSettings {
        scenario,
        endpoints: endpoints.clone(),
        run_id: new_run_id(),
        group_size: 3,
        request_timeout: Duration::from_secs(10),
        delivery_timeout: Duration::from_secs(10),
        heartbeat,
        progress: None,
        max_in_flight: 64,
    };
    let chart = charts.join("open-loop.png");
    let report = load_test::load_test(
        settings(open_short(), Duration::from_secs(60)),
        target.clone(),
        Some(chart.clone()),
        Arc::new(AtomicBool::new(false)),
    )
    .await
    .expect("the open loop completes");
    check_open(&report, &chart);
    eprintln!("open loop done after {:.1} s", began.elapsed().as_secs_f64());

    let mut outcomes = Vec::new();
    for kind in [
        ScenarioKind::Normal,
        ScenarioKind::Peak,
        ScenarioKind::Spike,
        ScenarioKind::Stress,
    ] {
        let chart: PathBuf = charts.join(format!("{}.png", kind.name()));
        let report = load_test::load_test(
            settings(tiny(kind), Duration::from_secs(1)),
            target.clone(),
            Some(chart.clone()),
            Arc::new(AtomicBool::new(false)),
        )
        .await
        .expect("the run completes");
        check(&report, &chart);
        eprintln!("{} done after {:.1} s", kind.name(), began.elapsed().as_secs_f64());
        outcomes.push(report);
    }
    stack.stop().await;
    let _ = std::fs::remove_dir_all(&charts);

    // The spike really spiked: three times the base at the top, then back down.
    let spike = &outcomes[2];
    assert!(spike.peak_users >= 9, "{}", spike.to_text());
    // The heartbeat (1 s here) pinged over each socket and got its pong.
    assert!(outcomes[0]
        .route(route::WS_PING)
        .is_some_and(|r| r.count > 0 && r.errors == 0));
    // Stress went through its steps and says where it stopped.
    let stress = outcomes[3].stress.as_ref().expect("stress steps");
    assert_eq!(stress.steps.iter().map(|s| s.users).collect::<Vec<_>>(), [3, 6]);
    assert_eq!((stress.broke_at, stress.last_good), (None, Some(6)));
    assert!(outcomes[3].to_text().contains("level reached") && outcomes[3].to_text().contains("latency: "));
    eprintln!("smoke test took {:.1} s", began.elapsed().as_secs_f64());
}

#[test]
fn soak_is_two_hundred_users_for_hours() {
    let soak = Scenario::build(ScenarioKind::Soak, &Overrides::default());
    let Plan::Fixed(schedule) = &soak.plan else {
        panic!("soak follows a fixed schedule")
    };
    assert_eq!(schedule.max_users(), 200);
    assert_eq!(schedule.duration(), Duration::from_secs(2 * 3600));
    assert_eq!(schedule.users_at(Duration::from_secs(3600)), 200);
    let longer = Scenario::build(
        ScenarioKind::Soak,
        &Overrides {
            duration: Some(Duration::from_secs(8 * 3600)),
            ..Overrides::default()
        },
    );
    assert_eq!(longer.plan.duration(), Duration::from_secs(8 * 3600));
}
