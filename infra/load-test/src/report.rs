//! The run's summary: per-route latency and errors, throughput, send-to-delivery, the verdict against the
//! seeds' thresholds; as text for people and as JSON for tools.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::delivery::DeliveryCounts;
use crate::runner::{RunOutcome, StressResult};
use crate::scenario::{Scenario, ERROR_BUDGET, P95_BUDGET_MS, P99_BUDGET_MS};
use crate::stats::{hist_ms, kind_of, RouteKind, RouteStats};

/// Serialises a duration as seconds (for serde's `serialize_with`).
pub fn secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Serialises a duration as milliseconds.
pub fn millis<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteReport {
    pub route: String,
    pub kind: RouteKind,
    pub count: u64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Every failure: non-2xx (429 included) and transport errors.
    pub errors: u64,
    pub rate_limited: u64,
    pub transport: u64,
    /// Other non-2xx statuses and their counts.
    pub statuses: BTreeMap<u16, u64>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryReport {
    #[serde(flatten)]
    pub counts: DeliveryCounts,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// The part of a steady scenario after its ramp.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HoldReport {
    pub from_seconds: f64,
    pub seconds: f64,
    pub requests: u64,
    pub per_second: f64,
    pub errors: u64,
    pub routes: Vec<RouteReport>,
    pub delivery_p50_ms: f64,
    pub delivery_p95_ms: f64,
    pub delivery_p99_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

/// Where the load went.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetInfo {
    pub http: String,
    pub ws: String,
    /// e.g. "local stack started in-process, debug function binaries".
    pub description: String,
    /// Template parameters given to the local stack for the load test (the rate limits, off).
    pub parameters: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub scenario: Scenario,
    pub description: String,
    pub run_id: String,
    pub target: TargetInfo,
    pub group_size: usize,
    pub load_seconds: f64,
    pub peak_users: usize,
    pub groups: usize,
    pub requests: u64,
    pub per_second: f64,
    pub errors: u64,
    pub error_rate: f64,
    pub rate_limited: u64,
    pub transport_errors: u64,
    pub routes: Vec<RouteReport>,
    pub delivery: DeliveryReport,
    pub reconnects: u64,
    pub setup_failures: u64,
    pub stress: Option<StressResult>,
    pub hold: Option<HoldReport>,
    pub checks: Vec<Check>,
    pub passed: bool,
    pub interrupted: bool,
    pub chart: Option<String>,
}

impl Report {
    pub fn build(
        scenario: &Scenario,
        run_id: &str,
        target: TargetInfo,
        group_size: usize,
        outcome: &RunOutcome,
        chart: Option<String>,
    ) -> Report {
        let seconds = outcome.load_time.as_secs_f64().max(0.001);
        let routes = route_reports(&outcome.recorder.routes(), seconds);
        let requests: u64 = routes.iter().map(|r| r.count).sum();
        let errors: u64 = routes.iter().map(|r| r.errors).sum();
        let delivery_hist = outcome.recorder.delivery();
        let delivery = DeliveryReport {
            counts: outcome.deliveries,
            p50_ms: hist_ms(&delivery_hist, 50.0),
            p95_ms: hist_ms(&delivery_hist, 95.0),
            p99_ms: hist_ms(&delivery_hist, 99.0),
            max_ms: hist_ms(&delivery_hist, 100.0),
        };
        let error_rate = if requests == 0 {
            0.0
        } else {
            errors as f64 / requests as f64
        };
        let checks = checks(&routes, requests, error_rate, &delivery);
        let hold = outcome.recorder.hold().map(|hold| {
            let held = (seconds - hold.from).max(0.001);
            let routes = route_reports(&hold.routes, held);
            HoldReport {
                from_seconds: hold.from,
                seconds: held,
                requests: routes.iter().map(|r| r.count).sum(),
                per_second: routes.iter().map(|r| r.count).sum::<u64>() as f64 / held,
                errors: routes.iter().map(|r| r.errors).sum(),
                routes,
                delivery_p50_ms: hist_ms(&hold.delivery, 50.0),
                delivery_p95_ms: hist_ms(&hold.delivery, 95.0),
                delivery_p99_ms: hist_ms(&hold.delivery, 99.0),
            }
        });
        Report {
            scenario: scenario.clone(),
            description: scenario.describe(),
            run_id: run_id.to_owned(),
            target,
            group_size,
            load_seconds: seconds,
            peak_users: outcome.peak_users,
            groups: outcome.groups,
            requests,
            per_second: requests as f64 / seconds,
            errors,
            error_rate,
            rate_limited: routes.iter().map(|r| r.rate_limited).sum(),
            transport_errors: routes.iter().map(|r| r.transport).sum(),
            routes,
            delivery,
            reconnects: outcome.reconnects,
            setup_failures: outcome.setup_failures,
            stress: outcome.stress.clone(),
            hold,
            passed: checks.iter().all(|c| c.passed),
            checks,
            interrupted: outcome.interrupted,
            chart,
        }
    }

    pub fn route(&self, name: &str) -> Option<&RouteReport> {
        self.routes.iter().find(|r| r.route == name)
    }

    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let w = &mut out;
        let _ = writeln!(
            w,
            "Parley load test: scenario {}{} (run {})",
            self.scenario.kind.name(),
            if self.scenario.short { " --short" } else { "" },
            self.run_id
        );
        let _ = writeln!(w, "  plan:    {}", self.description);
        let _ = writeln!(
            w,
            "  target:  {} and {} ({})",
            self.target.http, self.target.ws, self.target.description
        );
        if !self.target.parameters.is_empty() {
            let given: Vec<String> = self.target.parameters.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = writeln!(w, "  stack parameters: {}", given.join(" "));
        }
        let _ = writeln!(
            w,
            "  ran {:.1} s{}; peak {} users chatting in {} groups of up to {}",
            self.load_seconds,
            if self.interrupted { " (interrupted)" } else { "" },
            self.peak_users,
            self.groups,
            self.group_size
        );
        let _ = writeln!(
            w,
            "  requests {} ({:.1}/s), errors {} ({:.2} %), of which 429 {} and transport {}; setup failures {}, socket reconnects {}",
            self.requests,
            self.per_second,
            self.errors,
            self.error_rate * 100.0,
            self.rate_limited,
            self.transport_errors,
            self.setup_failures,
            self.reconnects
        );
        let _ = writeln!(w);
        let _ = writeln!(
            w,
            "{:<36} {:>8} {:>8} {:>9} {:>9} {:>9} {:>9} {:>7} {:>5}  other statuses",
            "route", "count", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "errors", "429"
        );
        let mut last_kind = None;
        for r in &self.routes {
            if last_kind != Some(r.kind) {
                let heading = match r.kind {
                    RouteKind::Steady => "-- chatting (held to the thresholds)",
                    RouteKind::Setup => "-- setup, once per user (errors count; latency not held to the thresholds)",
                    RouteKind::Realtime => "-- WebSocket",
                };
                let _ = writeln!(w, "{heading}");
                last_kind = Some(r.kind);
            }
            let statuses: Vec<String> = r
                .statuses
                .iter()
                .map(|(s, n)| format!("{s}x{n}"))
                .chain((r.transport > 0).then(|| format!("transport x{}", r.transport)))
                .collect();
            let _ = writeln!(
                w,
                "{:<36} {:>8} {:>8.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>7} {:>5}  {}",
                r.route,
                r.count,
                r.per_second,
                r.p50_ms,
                r.p95_ms,
                r.p99_ms,
                r.max_ms,
                r.errors,
                r.rate_limited,
                statuses.join(" ")
            );
        }
        let d = &self.delivery;
        let _ = writeln!(w);
        let _ = writeln!(
            w,
            "send-to-delivery (send request start -> message.new on another member's socket):"
        );
        let _ = writeln!(
            w,
            "  received {}/{} expected from {} sends ({} missing, {} duplicates, {} late or unknown, {} echoes to the sender)",
            d.counts.received,
            d.counts.expected,
            d.counts.sends,
            d.counts.missing,
            d.counts.duplicates,
            d.counts.late_or_unknown,
            d.counts.echoes
        );
        let _ = writeln!(
            w,
            "  p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            d.p50_ms, d.p95_ms, d.p99_ms, d.max_ms
        );
        if let Some(hold) = &self.hold {
            let _ = writeln!(w);
            let _ = writeln!(
                w,
                "after the ramp only (from {:.0} s, {:.0} s long; for comparison, not part of the verdict):",
                hold.from_seconds, hold.seconds
            );
            let _ = writeln!(
                w,
                "  requests {} ({:.1}/s), errors {}; send-to-delivery p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms",
                hold.requests,
                hold.per_second,
                hold.errors,
                hold.delivery_p50_ms,
                hold.delivery_p95_ms,
                hold.delivery_p99_ms
            );
            for r in hold.routes.iter().filter(|r| r.kind != RouteKind::Setup) {
                let _ = writeln!(
                    w,
                    "  {:<34} {:>8} {:>8.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>7}",
                    r.route, r.count, r.per_second, r.p50_ms, r.p95_ms, r.p99_ms, r.max_ms, r.errors
                );
            }
        }
        if let Some(stress) = &self.stress {
            let _ = writeln!(w);
            let _ = writeln!(w, "stress steps:");
            let _ = writeln!(
                w,
                "  {:>6} {:>8} {:>9} {:>7} {:>8} {:>12}",
                "users", "chatting", "requests", "errors", "error %", "steady p95"
            );
            for s in &stress.steps {
                let _ = writeln!(
                    w,
                    "  {:>6} {:>8} {:>9} {:>7} {:>8.2} {:>12}",
                    s.users,
                    s.active,
                    s.requests,
                    s.errors,
                    s.error_rate * 100.0,
                    s.p95_ms.map_or("-".to_owned(), |ms| format!("{ms:.1} ms"))
                );
            }
            let _ = match (stress.broke_at, stress.last_good) {
                (Some(at), good) => writeln!(
                    w,
                    "  level reached: the error rate passed {:.0} % at {at} users (last step under it: {})",
                    ERROR_BUDGET * 100.0,
                    good.map_or("none".to_owned(), |g| format!("{g} users"))
                ),
                (None, good) => writeln!(
                    w,
                    "  level reached: the error rate stayed under {:.0} % up to {} users (the plan's end)",
                    ERROR_BUDGET * 100.0,
                    good.unwrap_or(0)
                ),
            };
            let _ = match stress.last_within_latency {
                Some(users) => writeln!(
                    w,
                    "  latency: the chatting routes' p95 stayed under {P95_BUDGET_MS} ms up to {users} users"
                ),
                None => writeln!(
                    w,
                    "  latency: the chatting routes' p95 passed {P95_BUDGET_MS} ms from the first step"
                ),
            };
        }
        let _ = writeln!(w);
        let _ = writeln!(
            w,
            "verdict (seeds: p95 < {P95_BUDGET_MS} ms, p99 < {P99_BUDGET_MS} ms, errors < {:.0} %):",
            ERROR_BUDGET * 100.0
        );
        for c in &self.checks {
            let _ = writeln!(
                w,
                "  {}  {}: {}",
                if c.passed { "PASS" } else { "FAIL" },
                c.name,
                c.detail
            );
        }
        let _ = writeln!(w, "RESULT: {}", if self.passed { "PASS" } else { "FAIL" });
        if let Some(chart) = &self.chart {
            let _ = writeln!(w, "chart: {chart}");
        }
        out
    }
}

/// One line per route, the chatting routes first, then setup, then WebSocket.
fn route_reports(routes: &BTreeMap<&'static str, RouteStats>, seconds: f64) -> Vec<RouteReport> {
    let mut reports: Vec<RouteReport> = routes
        .iter()
        .map(|(route, stats)| RouteReport {
            route: (*route).to_owned(),
            kind: kind_of(route),
            count: stats.count,
            per_second: stats.count as f64 / seconds,
            p50_ms: stats.ms(50.0),
            p95_ms: stats.ms(95.0),
            p99_ms: stats.ms(99.0),
            max_ms: stats.ms(100.0),
            errors: stats.errors(),
            rate_limited: stats.rate_limited,
            transport: stats.transport,
            statuses: stats.statuses.clone(),
        })
        .collect();
    reports.sort_by(|a, b| (a.kind, &a.route).cmp(&(b.kind, &b.route)));
    reports
}

fn checks(routes: &[RouteReport], requests: u64, error_rate: f64, delivery: &DeliveryReport) -> Vec<Check> {
    let mut checks = Vec::new();
    for r in routes.iter().filter(|r| r.kind == RouteKind::Steady) {
        checks.push(Check {
            name: r.route.clone(),
            passed: r.p95_ms < P95_BUDGET_MS && r.p99_ms < P99_BUDGET_MS,
            detail: format!("p95 {:.1} ms, p99 {:.1} ms", r.p95_ms, r.p99_ms),
        });
    }
    checks.push(Check {
        name: "error rate".to_owned(),
        passed: requests > 0 && error_rate < ERROR_BUDGET,
        detail: format!("{:.2} % of {requests} requests", error_rate * 100.0),
    });
    let counts = &delivery.counts;
    let received = if counts.expected == 0 {
        1.0
    } else {
        counts.received as f64 / counts.expected as f64
    };
    checks.push(Check {
        name: "deliveries".to_owned(),
        passed: counts.sends > 0 && 1.0 - received < ERROR_BUDGET,
        detail: format!(
            "{}/{} received ({:.2} %) from {} sends",
            counts.received,
            counts.expected,
            received * 100.0,
            counts.sends
        ),
    });
    checks.push(Check {
        name: "send-to-delivery".to_owned(),
        passed: counts.received > 0 && delivery.p95_ms < P95_BUDGET_MS && delivery.p99_ms < P99_BUDGET_MS,
        detail: format!("p95 {:.1} ms, p99 {:.1} ms", delivery.p95_ms, delivery.p99_ms),
    });
    checks
}
