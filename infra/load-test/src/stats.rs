//! What the virtual users measured: per-route latency histograms and outcome counts, send-to-delivery
//! latency, and a per-second timeline for the chart and the stress steps.
//!
//! Totals go into HdrHistograms (bounded memory however long a soak runs, 3 significant digits); each second
//! keeps its raw samples so the chart's percentiles are exact.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// The routes a virtual user calls, as the report names them.
pub mod route {
    pub const REGISTER: &str = "POST /auth/register";
    pub const LOGIN: &str = "POST /auth/login";
    pub const REFRESH: &str = "POST /auth/refresh";
    pub const CREATE_GROUP: &str = "POST /conversations";
    pub const LIST: &str = "GET /conversations";
    pub const HISTORY: &str = "GET /conversations/{id}/messages";
    pub const SEND: &str = "POST /conversations/{id}/messages";
    pub const WS_CONNECT: &str = "WS connect ($connect)";
    pub const WS_PING: &str = "WS ping -> pong";
}

/// Where a route stands in the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteKind {
    /// What users do all the time: held to the seeds' latency thresholds.
    Steady,
    /// Done once per user before chatting (register, create the group): reported, errors count, but
    /// its latency is not held to the thresholds (a burst of argon2 hashes is not a chat request).
    Setup,
    /// WebSocket operations: reported, errors count.
    Realtime,
}

pub fn kind_of(route: &str) -> RouteKind {
    match route {
        route::REGISTER | route::LOGIN | route::CREATE_GROUP => RouteKind::Setup,
        route::WS_CONNECT | route::WS_PING => RouteKind::Realtime,
        _ => RouteKind::Steady,
    }
}

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A response with this status.
    Status(u16),
    /// No response: connection refused or reset, timeout, unreadable body.
    Transport,
}

impl Outcome {
    /// 2xx, or 101 for a WebSocket upgrade.
    pub fn is_ok(self) -> bool {
        matches!(self, Outcome::Status(s) if (200..300).contains(&s) || s == 101)
    }
}

/// Nearest-rank percentile of sorted samples (`p` in 0..=100): the smallest sample with at least p % of
/// the samples at or below it. None for no samples.
pub fn percentile<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn new_histogram() -> Histogram<u64> {
    // Microseconds, 1 us to 10 min, 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

fn micros(d: Duration) -> u64 {
    (d.as_micros() as u64).clamp(1, 600_000_000)
}

#[derive(Debug, Clone)]
pub struct RouteStats {
    /// Latency of every response (any status); transport errors have none.
    pub latency: Histogram<u64>,
    pub count: u64,
    pub ok: u64,
    pub rate_limited: u64,
    pub transport: u64,
    /// Non-2xx statuses other than 429, by status.
    pub statuses: BTreeMap<u16, u64>,
}

impl RouteStats {
    fn new() -> Self {
        RouteStats {
            latency: new_histogram(),
            count: 0,
            ok: 0,
            rate_limited: 0,
            transport: 0,
            statuses: BTreeMap::new(),
        }
    }

    fn add(&mut self, latency: Duration, outcome: Outcome) {
        self.count += 1;
        match outcome {
            Outcome::Status(_) if outcome.is_ok() => self.ok += 1,
            Outcome::Status(429) => self.rate_limited += 1,
            Outcome::Status(status) => *self.statuses.entry(status).or_default() += 1,
            Outcome::Transport => self.transport += 1,
        }
        if outcome != Outcome::Transport {
            let _ = self.latency.record(micros(latency));
        }
    }

    /// Every failed request: non-2xx (429 included) and transport errors.
    pub fn errors(&self) -> u64 {
        self.count - self.ok
    }

    /// Percentile in milliseconds (0 with no samples).
    pub fn ms(&self, p: f64) -> f64 {
        hist_ms(&self.latency, p)
    }
}

pub fn hist_ms(histogram: &Histogram<u64>, p: f64) -> f64 {
    if histogram.is_empty() {
        return 0.0;
    }
    histogram.value_at_quantile(p / 100.0) as f64 / 1000.0
}

/// One second of the run.
#[derive(Debug, Clone, Default)]
pub struct Second {
    /// Latencies (us) of the steady routes' responses that ended in this second.
    pub http: Vec<u32>,
    /// Send-to-delivery latencies (us) of deliveries received in this second.
    pub delivery: Vec<u32>,
    pub requests: u64,
    pub errors: u64,
    pub rate_limited: u64,
    /// Users chatting at the end of the second (as last reported by the runner).
    pub users: usize,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub requests: u64,
    pub errors: u64,
}

/// The same measurements restricted to the part of the run after the ramp (see `Recorder::start_hold`).
#[derive(Debug, Clone)]
pub struct Hold {
    /// Seconds since the run's start when the hold began.
    pub from: f64,
    pub routes: BTreeMap<&'static str, RouteStats>,
    pub delivery: Histogram<u64>,
}

struct Inner {
    routes: BTreeMap<&'static str, RouteStats>,
    hold: Option<Hold>,
    delivery: Histogram<u64>,
    timeline: Vec<Second>,
    users: usize,
    totals: Counts,
}

pub struct Recorder {
    start: Instant,
    inner: Mutex<Inner>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    pub fn new() -> Self {
        Recorder {
            start: Instant::now(),
            inner: Mutex::new(Inner {
                routes: BTreeMap::new(),
                hold: None,
                delivery: new_histogram(),
                timeline: Vec::new(),
                users: 0,
                totals: Counts::default(),
            }),
        }
    }

    pub fn start(&self) -> Instant {
        self.start
    }

    fn second_of(&self, at: Instant) -> usize {
        at.saturating_duration_since(self.start).as_secs() as usize
    }

    fn second(inner: &mut Inner, index: usize) -> &mut Second {
        if inner.timeline.len() <= index {
            let users = inner.users;
            inner.timeline.resize_with(index + 1, || Second {
                users,
                ..Second::default()
            });
        }
        &mut inner.timeline[index]
    }

    /// One request of `route` that took `latency` and ended now.
    pub fn record(&self, route: &'static str, latency: Duration, outcome: Outcome) {
        let index = self.second_of(Instant::now());
        let mut inner = self.inner.lock().expect("recorder lock");
        inner
            .routes
            .entry(route)
            .or_insert_with(RouteStats::new)
            .add(latency, outcome);
        if let Some(hold) = &mut inner.hold {
            hold.routes
                .entry(route)
                .or_insert_with(RouteStats::new)
                .add(latency, outcome);
        }
        inner.totals.requests += 1;
        if !outcome.is_ok() {
            inner.totals.errors += 1;
        }
        let second = Self::second(&mut inner, index);
        second.requests += 1;
        if !outcome.is_ok() {
            second.errors += 1;
        }
        if outcome == Outcome::Status(429) {
            second.rate_limited += 1;
        }
        if kind_of(route) == RouteKind::Steady && outcome != Outcome::Transport {
            second.http.push(micros(latency).min(u32::MAX as u64) as u32);
        }
    }

    /// A message reached another member's socket `latency` after its send request started.
    pub fn record_delivery(&self, latency: Duration) {
        let index = self.second_of(Instant::now());
        let mut inner = self.inner.lock().expect("recorder lock");
        let _ = inner.delivery.record(micros(latency));
        if let Some(hold) = &mut inner.hold {
            let _ = hold.delivery.record(micros(latency));
        }
        Self::second(&mut inner, index)
            .delivery
            .push(micros(latency).min(u32::MAX as u64) as u32);
    }

    /// From now on, also measure apart what happens after the ramp: the steady state without the cold
    /// starts, the sign-ups and DynamoDB Local's JIT warm-up that come with users arriving.
    pub fn start_hold(&self) {
        let from = self.start.elapsed().as_secs_f64();
        let mut inner = self.inner.lock().expect("recorder lock");
        inner.hold.get_or_insert_with(|| Hold {
            from,
            routes: BTreeMap::new(),
            delivery: new_histogram(),
        });
    }

    pub fn hold(&self) -> Option<Hold> {
        self.inner.lock().expect("recorder lock").hold.clone()
    }

    /// The number of users chatting now, for the timeline.
    pub fn set_users(&self, users: usize) {
        let index = self.second_of(Instant::now());
        let mut inner = self.inner.lock().expect("recorder lock");
        inner.users = users;
        Self::second(&mut inner, index).users = users;
    }

    /// Requests and errors so far (the stress runner diffs these per step).
    pub fn counts(&self) -> Counts {
        self.inner.lock().expect("recorder lock").totals
    }

    pub fn routes(&self) -> BTreeMap<&'static str, RouteStats> {
        self.inner.lock().expect("recorder lock").routes.clone()
    }

    pub fn delivery(&self) -> Histogram<u64> {
        self.inner.lock().expect("recorder lock").delivery.clone()
    }

    pub fn timeline(&self) -> Vec<Second> {
        self.inner.lock().expect("recorder lock").timeline.clone()
    }

    /// The steady routes' latency (ms) at percentile `p` over seconds `from..to` of the run.
    pub fn window_ms(&self, from: usize, to: usize, p: f64) -> Option<f64> {
        let inner = self.inner.lock().expect("recorder lock");
        let mut samples: Vec<u32> = inner
            .timeline
            .get(from.min(inner.timeline.len())..to.min(inner.timeline.len()))
            .unwrap_or_default()
            .iter()
            .flat_map(|s| s.http.iter().copied())
            .collect();
        drop(inner);
        samples.sort_unstable();
        percentile(&samples, p).map(|us| us as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let hundred: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&hundred, 50.0), Some(50));
        assert_eq!(percentile(&hundred, 95.0), Some(95));
        assert_eq!(percentile(&hundred, 99.0), Some(99));
        assert_eq!(percentile(&hundred, 100.0), Some(100));
        assert_eq!(percentile(&hundred, 0.0), Some(1));
        let ten: Vec<u32> = (1..=10).collect();
        // p95 of 10 samples is the 10th (ceil(9.5)), never an interpolation.
        assert_eq!(percentile(&ten, 95.0), Some(10));
        assert_eq!(percentile(&ten, 50.0), Some(5));
        assert_eq!(percentile(&[7u32], 99.0), Some(7));
        assert_eq!(percentile::<u32>(&[], 50.0), None);
    }

    #[test]
    fn histogram_percentiles_agree_with_exact_ones() {
        let recorder = Recorder::new();
        // 1..=1000 ms, in shuffled order.
        for i in 0..1000u64 {
            let ms = (i * 7919) % 1000 + 1;
            recorder.record(route::HISTORY, Duration::from_millis(ms), Outcome::Status(200));
        }
        let routes = recorder.routes();
        let history = &routes[route::HISTORY];
        for (p, exact) in [(50.0, 500.0), (95.0, 950.0), (99.0, 990.0)] {
            let got = history.ms(p);
            assert!((got - exact).abs() <= exact * 0.001 + 0.001, "p{p}: {got} vs {exact}");
        }
        assert_eq!(recorder.window_ms(0, 10, 95.0), Some(950.0));
    }

    #[test]
    fn outcomes_are_counted_apart() {
        let recorder = Recorder::new();
        let ms = Duration::from_millis(3);
        recorder.record(route::SEND, ms, Outcome::Status(201));
        recorder.record(route::SEND, ms, Outcome::Status(200));
        recorder.record(route::SEND, ms, Outcome::Status(429));
        recorder.record(route::SEND, ms, Outcome::Status(502));
        recorder.record(route::SEND, ms, Outcome::Transport);
        let send = recorder.routes()[route::SEND].clone();
        assert_eq!((send.count, send.ok, send.rate_limited, send.transport), (5, 2, 1, 1));
        assert_eq!(send.statuses, BTreeMap::from([(502, 1)]));
        assert_eq!(send.errors(), 3);
        // The transport error has no latency.
        assert_eq!(send.latency.len(), 4);
        assert_eq!(recorder.counts(), Counts { requests: 5, errors: 3 });
        let second = &recorder.timeline()[0];
        assert_eq!((second.requests, second.errors, second.rate_limited), (5, 3, 1));
    }

    #[test]
    fn the_hold_counts_only_what_ends_after_it_starts() {
        let recorder = Recorder::new();
        recorder.record(route::LIST, Duration::from_millis(900), Outcome::Status(200));
        recorder.record_delivery(Duration::from_millis(800));
        assert!(recorder.hold().is_none());
        recorder.start_hold();
        recorder.record(route::LIST, Duration::from_millis(10), Outcome::Status(200));
        recorder.record_delivery(Duration::from_millis(20));
        let hold = recorder.hold().unwrap();
        assert_eq!(hold.routes[route::LIST].count, 1);
        // HdrHistogram answers with the top of the value's bucket: 3 significant digits.
        assert!((hold.routes[route::LIST].ms(99.0) - 10.0).abs() < 0.02);
        assert!((hold_delivery_ms(&hold) - 20.0).abs() < 0.03);
        assert_eq!(recorder.routes()[route::LIST].count, 2);
    }

    fn hold_delivery_ms(hold: &Hold) -> f64 {
        hist_ms(&hold.delivery, 50.0)
    }

    #[test]
    fn route_kinds() {
        assert_eq!(kind_of(route::SEND), RouteKind::Steady);
        assert_eq!(kind_of(route::REFRESH), RouteKind::Steady);
        assert_eq!(kind_of(route::REGISTER), RouteKind::Setup);
        assert_eq!(kind_of(route::WS_CONNECT), RouteKind::Realtime);
    }
}
