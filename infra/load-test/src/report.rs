//! The run's summary: per-route latency and errors, throughput, send-to-delivery, the verdict against the
//! seeds' thresholds; as text for people and as JSON for tools.
//!
//! In open loop each measured route also states what it was offered against what it answered, and the
//! verdict holds it to both: every arrival served (none failed, timed out or dropped), and answers at 99 %
//! of the offered rate or more, besides the latency thresholds and the deliveries.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::delivery::DeliveryCounts;
use crate::open_loop::MEASURED_ROUTES;
use crate::run::{OpenLoopOutcome, RunOutcome, StressResult};
use crate::scenario::{Scenario, ANSWERED_SHARE_BUDGET, DELIVERY_BUDGET, ERROR_BUDGET, P95_BUDGET_MS, P99_BUDGET_MS};
use crate::stats::{hist_ms, kind_of, route, RouteKind, RouteStats};

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
    pub timed_out: u64,
    /// Other non-2xx statuses and their counts.
    pub statuses: BTreeMap<u16, u64>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryReport {
    #[serde(flatten)]
    pub counts: DeliveryCounts,
    /// Received of expected, in % (100 when nothing was expected).
    pub completeness_percent: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// One measured route of the open loop.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArrivalReport {
    pub route: String,
    /// Arrivals scheduled, started or not.
    pub offered: u64,
    /// Offered over the time arrivals were scheduled.
    pub offered_per_second: f64,
    /// Arrivals that got an answer, whatever its status.
    pub answered: u64,
    /// Answered over the time from the start to the last answer (or the schedule's end, if later): answers
    /// that trail the schedule stretch the time and lower the rate, as a queue would.
    pub answered_per_second: f64,
    pub ok: u64,
    /// Non-2xx answers, and requests that ended without an answer before the time-out.
    pub failed: u64,
    /// `failed` by status ("transport" for no answer).
    pub failed_by_status: BTreeMap<String, u64>,
    pub timed_out: u64,
    /// Not started: the route's in-flight bound was full.
    pub dropped: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// How late the load generator started arrivals (its own lag, not the system's).
    pub start_lag_p99_ms: f64,
    pub start_lag_max_ms: f64,
}

impl ArrivalReport {
    /// `route`'s arrivals over `scheduled_seconds` of schedule.
    pub fn new(route: &str, stats: &RouteStats, scheduled_seconds: f64) -> ArrivalReport {
        let scheduled = scheduled_seconds.max(0.001);
        let answering = stats.last_answer.map_or(0.0, |d| d.as_secs_f64()).max(scheduled);
        let mut failed_by_status: BTreeMap<String, u64> =
            stats.statuses.iter().map(|(s, n)| (s.to_string(), *n)).collect();
        if stats.rate_limited > 0 {
            failed_by_status.insert("429".to_owned(), stats.rate_limited);
        }
        if stats.transport > 0 {
            failed_by_status.insert("transport".to_owned(), stats.transport);
        }
        let answered = stats.answered();
        ArrivalReport {
            route: route.to_owned(),
            offered: stats.offered,
            offered_per_second: stats.offered as f64 / scheduled,
            answered,
            answered_per_second: answered as f64 / answering,
            ok: stats.ok,
            failed: failed_by_status.values().sum(),
            failed_by_status,
            timed_out: stats.timed_out,
            dropped: stats.dropped,
            p50_ms: stats.ms(50.0),
            p95_ms: stats.ms(95.0),
            p99_ms: stats.ms(99.0),
            max_ms: stats.ms(100.0),
            start_lag_p99_ms: hist_ms(&stats.start_lag, 99.0),
            start_lag_max_ms: hist_ms(&stats.start_lag, 100.0),
        }
    }

    /// Failed, timed out or dropped.
    pub fn unserved(&self) -> u64 {
        self.failed + self.timed_out + self.dropped
    }
}

/// A start lag (p99) past this says the load generator could not keep its own schedule.
const LATE_START_NOTE_MS: f64 = 100.0;

/// The open loop's part of the report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenLoopReport {
    #[serde(flatten)]
    pub outcome: OpenLoopOutcome,
    pub routes: Vec<ArrivalReport>,
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
    /// "open loop" or "closed loop".
    pub model: &'static str,
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
    pub open_loop: Option<OpenLoopReport>,
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
        let recorded = outcome.recorder.routes();
        let routes = route_reports(&recorded, seconds);
        // Open loop: the totals are the measured routes' (the set-up happened before the clock started).
        let counted = |r: &&RouteReport| outcome.open_loop.is_none() || MEASURED_ROUTES.contains(&r.route.as_str());
        let requests: u64 = routes.iter().filter(counted).map(|r| r.count).sum();
        let errors: u64 = routes.iter().filter(counted).map(|r| r.errors).sum();
        let delivery_hist = outcome.recorder.delivery();
        let delivery = DeliveryReport {
            counts: outcome.deliveries,
            completeness_percent: completeness(&outcome.deliveries) * 100.0,
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
        let open_loop = outcome.open_loop.as_ref().map(|open| OpenLoopReport {
            outcome: open.clone(),
            routes: MEASURED_ROUTES
                .iter()
                .filter_map(|name| recorded.get(name).map(|stats| (name, stats)))
                .filter(|(_, stats)| stats.offered > 0)
                .map(|(name, stats)| ArrivalReport::new(name, stats, seconds))
                .collect(),
        });
        let checks = match &open_loop {
            Some(open) => open_loop_checks(&open.routes, &delivery, &open.outcome),
            None => checks(&routes, requests, error_rate, &delivery),
        };
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
            model: if open_loop.is_some() {
                "open loop"
            } else {
                "closed loop"
            },
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
            rate_limited: routes.iter().filter(counted).map(|r| r.rate_limited).sum(),
            transport_errors: routes.iter().filter(counted).map(|r| r.transport).sum(),
            routes,
            delivery,
            reconnects: outcome.reconnects,
            setup_failures: outcome.setup_failures,
            stress: outcome.stress.clone(),
            hold,
            open_loop,
            passed: checks.iter().all(|c| c.passed),
            checks,
            interrupted: outcome.interrupted,
            chart,
        }
    }

    pub fn route(&self, name: &str) -> Option<&RouteReport> {
        self.routes.iter().find(|r| r.route == name)
    }

    /// The open loop's line for `route`.
    pub fn arrivals(&self, route: &str) -> Option<&ArrivalReport> {
        self.open_loop.as_ref()?.routes.iter().find(|r| r.route == route)
    }

    pub fn to_text(&self) -> String {
        if let Some(open) = &self.open_loop {
            return self.open_loop_text(open);
        }
        let mut out = String::new();
        let w = &mut out;
        self.header(w, "");
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
                .chain((r.timed_out > 0).then(|| format!("timed out x{}", r.timed_out)))
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
            timed_out: stats.timed_out,
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
    let received = completeness(counts);
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

/// Received of expected deliveries, as a share (1 when none were expected).
fn completeness(counts: &DeliveryCounts) -> f64 {
    if counts.expected == 0 {
        1.0
    } else {
        counts.received as f64 / counts.expected as f64
    }
}

/// The open loop's verdict: per measured route its latency, that every arrival was served, and that it
/// answered at the rate it was offered; the deliveries' completeness and latency; and a complete set-up.
pub fn open_loop_checks(routes: &[ArrivalReport], delivery: &DeliveryReport, open: &OpenLoopOutcome) -> Vec<Check> {
    let mut checks = Vec::new();
    for r in routes {
        checks.push(Check {
            name: format!("{} latency", r.route),
            passed: r.p95_ms < P95_BUDGET_MS && r.p99_ms < P99_BUDGET_MS,
            detail: format!("p95 {:.1} ms, p99 {:.1} ms", r.p95_ms, r.p99_ms),
        });
        let statuses: Vec<String> = r.failed_by_status.iter().map(|(s, n)| format!("{s} x{n}")).collect();
        checks.push(Check {
            name: format!("{} served", r.route),
            passed: r.unserved() == 0,
            detail: format!(
                "{} offered: {} OK, {} failed{}, {} timed out, {} dropped",
                r.offered,
                r.ok,
                r.failed,
                if statuses.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", statuses.join(", "))
                },
                r.timed_out,
                r.dropped
            ),
        });
        let share = if r.offered_per_second > 0.0 {
            r.answered_per_second / r.offered_per_second
        } else {
            1.0
        };
        checks.push(Check {
            name: format!("{} answered rate", r.route),
            passed: share >= ANSWERED_SHARE_BUDGET,
            detail: format!(
                "{:.2}/s answered of {:.2}/s offered ({:.1} %)",
                r.answered_per_second,
                r.offered_per_second,
                share * 100.0
            ),
        });
    }
    let counts = &delivery.counts;
    let sends_offered = routes
        .iter()
        .any(|r| (r.route == route::SEND || r.route == route::WS_SEND) && r.offered > 0);
    let received = completeness(counts);
    checks.push(Check {
        name: "deliveries".to_owned(),
        passed: !sends_offered || (counts.expected > 0 && received >= DELIVERY_BUDGET),
        detail: format!(
            "{}/{} delivered ({:.2} %) from {} sends, {} missing",
            counts.received,
            counts.expected,
            received * 100.0,
            counts.sends,
            counts.missing
        ),
    });
    checks.push(Check {
        name: "send-to-delivery".to_owned(),
        passed: !sends_offered || (counts.received > 0 && delivery.p95_ms < P95_BUDGET_MS),
        detail: format!("p95 {:.1} ms (p99 {:.1} ms)", delivery.p95_ms, delivery.p99_ms),
    });
    checks.push(Check {
        name: "set-up".to_owned(),
        passed: open.users_ready == open.users_wanted,
        detail: format!(
            "{} of {} users ready before measuring",
            open.users_ready, open.users_wanted
        ),
    });
    checks
}

impl Report {
    /// The report's first lines, the same for both loops: scenario and run, plan, target, parameters.
    fn header(&self, w: &mut String, loop_kind: &str) {
        let _ = writeln!(
            w,
            "Parley load test: scenario {}{}{loop_kind} (run {})",
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
    }

    fn open_loop_text(&self, open: &OpenLoopReport) -> String {
        let mut out = String::new();
        let w = &mut out;
        let o = &open.outcome;
        self.header(w, ", open loop");
        let _ = writeln!(
            w,
            "  set-up (not measured): {} of {} users ready in {} groups of up to {}, {:.1} s; setup failures {}",
            o.users_ready,
            o.users_wanted,
            self.groups,
            self.group_size,
            o.setup.as_secs_f64(),
            self.setup_failures
        );
        let _ = writeln!(
            w,
            "  measured {:.1} s{}: at most {} in flight per route, time-out {:.1} s; socket reconnects {}",
            self.load_seconds,
            if self.interrupted { " (interrupted)" } else { "" },
            o.max_in_flight,
            o.request_timeout.as_secs_f64(),
            self.reconnects
        );
        let _ = writeln!(w);
        let _ = writeln!(
            w,
            "{:<34} {:>7} {:>9} {:>9} {:>7} {:>6} {:>6} {:>7} {:>8} {:>8} {:>8} {:>8}  failed by status",
            "route",
            "offered",
            "offered/s",
            "answer/s",
            "ok",
            "failed",
            "t/out",
            "dropped",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "lag p99"
        );
        for r in &open.routes {
            let statuses: Vec<String> = r.failed_by_status.iter().map(|(s, n)| format!("{s}x{n}")).collect();
            let _ = writeln!(
                w,
                "{:<34} {:>7} {:>9.2} {:>9.2} {:>7} {:>6} {:>6} {:>7} {:>8.1} {:>8.1} {:>8.1} {:>8.1}  {}",
                r.route,
                r.offered,
                r.offered_per_second,
                r.answered_per_second,
                r.ok,
                r.failed,
                r.timed_out,
                r.dropped,
                r.p50_ms,
                r.p95_ms,
                r.p99_ms,
                r.start_lag_p99_ms,
                statuses.join(" ")
            );
        }
        let (offered, answered): (f64, f64) = open.routes.iter().fold((0.0, 0.0), |(o, a), r| {
            (o + r.offered_per_second, a + r.answered_per_second)
        });
        let _ = writeln!(
            w,
            "{:<34} {:>7} {:>9.2} {:>9.2} {:>7} {:>6} {:>6} {:>7}",
            "all measured routes",
            open.routes.iter().map(|r| r.offered).sum::<u64>(),
            offered,
            answered,
            open.routes.iter().map(|r| r.ok).sum::<u64>(),
            open.routes.iter().map(|r| r.failed).sum::<u64>(),
            open.routes.iter().map(|r| r.timed_out).sum::<u64>(),
            open.routes.iter().map(|r| r.dropped).sum::<u64>(),
        );
        let latest = open.routes.iter().map(|r| r.start_lag_p99_ms).fold(0.0, f64::max);
        if latest > LATE_START_NOTE_MS {
            let _ = writeln!(
                w,
                "note: the load generator started arrivals up to {latest:.0} ms late (start lag p99): it was short of CPU \
                 (on one machine it shares the cores with the stack), so some load came later than scheduled; latency \
                 runs from each arrival's start"
            );
        }
        let others: Vec<&RouteReport> = self
            .routes
            .iter()
            .filter(|r| !MEASURED_ROUTES.contains(&r.route.as_str()))
            .collect();
        if !others.is_empty() {
            let _ = writeln!(w);
            let _ = writeln!(
                w,
                "set-up and sockets (not held to the thresholds):  count    p50 ms    p95 ms    p99 ms  errors"
            );
            for r in others {
                let _ = writeln!(
                    w,
                    "  {:<46} {:>6} {:>9.1} {:>9.1} {:>9.1} {:>7}",
                    r.route, r.count, r.p50_ms, r.p95_ms, r.p99_ms, r.errors
                );
            }
        }
        let d = &self.delivery;
        let _ = writeln!(w);
        let _ = writeln!(
            w,
            "deliveries (each send to every other member's socket, and an HTTP send to the sender's own too; a sendMessage skips its own connection):"
        );
        let _ = writeln!(
            w,
            "  expected {} from {} sends, delivered {} ({:.2} %), missing {}; duplicates {}, late or unknown {}",
            d.counts.expected,
            d.counts.sends,
            d.counts.received,
            d.completeness_percent,
            d.counts.missing,
            d.counts.duplicates,
            d.counts.late_or_unknown
        );
        let _ = writeln!(
            w,
            "  send-to-delivery (send start -> message.new): p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            d.p50_ms, d.p95_ms, d.p99_ms, d.max_ms
        );
        if !o.steps.is_empty() {
            let _ = writeln!(w);
            let _ = writeln!(w, "stress steps:");
            let _ = writeln!(
                w,
                "  {:>7} {:>10} {:>10} {:>9} {:>10} {:>12}",
                "scale", "offered/s", "answer/s", "failures", "failure %", "steady p95"
            );
            for s in &o.steps {
                let _ = writeln!(
                    w,
                    "  {:>6.1}% {:>10.1} {:>10.1} {:>9} {:>10.2} {:>12}",
                    s.scale * 100.0,
                    s.offered_per_second,
                    s.answered_per_second,
                    s.failures,
                    s.failure_rate * 100.0,
                    s.p95_ms.map_or("-".to_owned(), |ms| format!("{ms:.1} ms"))
                );
            }
            let last_good = o
                .steps
                .iter()
                .filter(|s| s.failure_rate <= ERROR_BUDGET)
                .map(|s| s.offered_per_second)
                .fold(None, |best: Option<f64>, r| Some(best.map_or(r, |b| b.max(r))));
            let _ = match (o.broke_at_per_second, last_good) {
                (Some(at), good) => writeln!(
                    w,
                    "  level reached: failures passed {:.0} % at {at:.1} arrivals/s (last step under it: {})",
                    ERROR_BUDGET * 100.0,
                    good.map_or("none".to_owned(), |g| format!("{g:.1}/s"))
                ),
                (None, good) => writeln!(
                    w,
                    "  level reached: failures stayed under {:.0} % up to {:.1} arrivals/s (the plan's end)",
                    ERROR_BUDGET * 100.0,
                    good.unwrap_or(0.0)
                ),
            };
        }
        let _ = writeln!(w);
        let _ = writeln!(
            w,
            "verdict (per route p95 < {P95_BUDGET_MS} ms and p99 < {P99_BUDGET_MS} ms, no arrival failed, timed out or dropped, answered >= {:.0} % of offered; deliveries >= {:.1} %, send-to-delivery p95 < {P95_BUDGET_MS} ms):",
            ANSWERED_SHARE_BUDGET * 100.0,
            DELIVERY_BUDGET * 100.0
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::stats::{Outcome, Recorder};

    fn open(users_ready: usize) -> OpenLoopOutcome {
        OpenLoopOutcome {
            users_wanted: 10,
            users_ready,
            setup: Duration::from_secs(3),
            scheduled: Duration::from_secs(10),
            max_in_flight: 256,
            request_timeout: Duration::from_secs(10),
            steps: Vec::new(),
            broke_at_per_second: None,
        }
    }

    /// A route offered `offered` arrivals over 10 s, of which `answered` answered 200 in `ms` (the last
    /// answer at `last_answer_s`), the rest as `rest` says.
    fn arrivals(
        route_name: &'static str,
        offered: u64,
        answered: u64,
        ms: u64,
        rest: Outcome,
        last_answer_s: f64,
    ) -> ArrivalReport {
        let recorder = Recorder::new();
        for i in 0..offered {
            recorder.record_arrival(route_name, true);
            let outcome = if i < answered { Outcome::Status(200) } else { rest };
            recorder.record(route_name, Duration::from_millis(ms), outcome);
        }
        let mut stats = recorder.routes()[route_name].clone();
        stats.last_answer = Some(Duration::from_secs_f64(last_answer_s));
        ArrivalReport::new(route_name, &stats, 10.0)
    }

    fn delivery(expected: u64, received: u64, p95_ms: f64) -> DeliveryReport {
        let counts = DeliveryCounts {
            sends: expected / 2,
            expected,
            received,
            missing: expected - received,
            ..DeliveryCounts::default()
        };
        DeliveryReport {
            completeness_percent: completeness(&counts) * 100.0,
            counts,
            p50_ms: p95_ms / 2.0,
            p95_ms,
            p99_ms: p95_ms,
            max_ms: p95_ms,
        }
    }

    fn failing(checks: &[Check]) -> Vec<&str> {
        checks.iter().filter(|c| !c.passed).map(|c| c.name.as_str()).collect()
    }

    #[test]
    fn a_healthy_open_loop_passes() {
        let routes = [
            arrivals(route::SEND, 500, 500, 20, Outcome::Status(200), 10.0),
            arrivals(route::HISTORY, 1000, 1000, 10, Outcome::Status(200), 10.0),
        ];
        assert_eq!(routes[0].offered_per_second, 50.0);
        assert_eq!(routes[0].answered_per_second, 50.0);
        let checks = open_loop_checks(&routes, &delivery(4500, 4500, 40.0), &open(10));
        assert!(failing(&checks).is_empty(), "{checks:?}");
    }

    #[test]
    fn answers_trailing_the_schedule_fail_the_answered_rate() {
        // Every arrival answered, fast enough per request, but the last answer came at 20 s for a 10 s
        // schedule: the route served half the rate it was offered.
        let slow = [arrivals(route::HISTORY, 1000, 1000, 100, Outcome::Status(200), 20.0)];
        assert_eq!(slow[0].answered_per_second, 50.0);
        let checks = open_loop_checks(&slow, &delivery(0, 0, 0.0), &open(10));
        assert_eq!(failing(&checks), ["GET /conversations/{id}/messages answered rate"]);
        // 98.9 % of the offered rate fails, 99 % passes.
        let behind = [arrivals(route::LIST, 1000, 989, 5, Outcome::TimedOut, 10.0)];
        let checks = open_loop_checks(&behind, &delivery(0, 0, 0.0), &open(10));
        assert!(
            failing(&checks).contains(&"GET /conversations answered rate"),
            "{checks:?}"
        );
        let enough = arrivals(route::LIST, 1000, 990, 5, Outcome::TimedOut, 10.0);
        assert!((enough.answered_per_second / enough.offered_per_second - 0.99).abs() < 1e-9);
    }

    #[test]
    fn every_unserved_arrival_and_every_threshold_fails() {
        let failed = arrivals(route::SEND, 100, 99, 5, Outcome::Status(503), 10.0);
        assert_eq!((failed.failed, failed.failed_by_status.get("503")), (1, Some(&1)));
        let timed_out = arrivals(route::WS_SEND, 100, 99, 5, Outcome::TimedOut, 10.0);
        assert_eq!((timed_out.timed_out, timed_out.answered), (1, 99));
        let mut dropped = arrivals(route::LIST, 100, 100, 5, Outcome::Status(200), 10.0);
        dropped.dropped = 1;
        let mut slow = arrivals(route::HISTORY, 100, 100, 300, Outcome::Status(200), 10.0);
        slow.p99_ms = 299.0;
        let checks = open_loop_checks(
            &[failed, timed_out, dropped, slow],
            &delivery(1000, 998, 300.0),
            &open(9),
        );
        assert_eq!(
            failing(&checks),
            [
                "POST /conversations/{id}/messages served",
                "WS sendMessage -> ack served",
                "GET /conversations served",
                "GET /conversations/{id}/messages latency",
                "deliveries",
                "send-to-delivery",
                "set-up"
            ]
        );
        // 99.9 % of the deliveries is enough.
        let checks = open_loop_checks(&[], &delivery(1000, 999, 10.0), &open(10));
        assert!(failing(&checks).is_empty(), "{checks:?}");
        // Sends offered but none succeeded: nothing was expected, and that is no pass.
        let none = [arrivals(route::SEND, 10, 0, 5, Outcome::Status(500), 10.0)];
        let checks = open_loop_checks(&none, &delivery(0, 0, 0.0), &open(10));
        assert!(failing(&checks).contains(&"deliveries"), "{checks:?}");
    }
}
