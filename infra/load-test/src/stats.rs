//! What the virtual users measured: per-route latency histograms and outcome counts, send-to-delivery
//! latency, and a per-second timeline for the chart and the stress steps. In open loop also the arrivals:
//! how many each route was offered, how many found the in-flight bound full (dropped), and how late the
//! scheduler started them.
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
    /// A `sendMessage` frame until its `ack` (open loop sends half of its messages this way).
    pub const WS_SEND: &str = "WS sendMessage -> ack";
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
    /// No response: connection refused or reset, unreadable body.
    Transport,
    /// No response within the client's time-out.
    TimedOut,
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
    /// Latency of every response (any status), and of every time-out at the time waited (a lower bound,
    /// but leaving them out would flatter the tail); transport errors have none.
    pub latency: Histogram<u64>,
    /// Requests that ended: answered, failed in transport, or timed out.
    pub count: u64,
    pub ok: u64,
    pub rate_limited: u64,
    pub transport: u64,
    pub timed_out: u64,
    /// Non-2xx statuses other than 429, by status.
    pub statuses: BTreeMap<u16, u64>,
    /// Open loop: arrivals scheduled for this route, started or not.
    pub offered: u64,
    /// Open loop: arrivals not started because the route's in-flight bound was full.
    pub dropped: u64,
    /// Open loop: how long after its scheduled time each arrival started (the load generator's own lag).
    pub start_lag: Histogram<u64>,
    /// When the last answer (any status) came, since the recorder's origin.
    pub last_answer: Option<Duration>,
}

impl RouteStats {
    fn new() -> Self {
        RouteStats {
            latency: new_histogram(),
            count: 0,
            ok: 0,
            rate_limited: 0,
            transport: 0,
            timed_out: 0,
            statuses: BTreeMap::new(),
            offered: 0,
            dropped: 0,
            start_lag: new_histogram(),
            last_answer: None,
        }
    }

    fn add(&mut self, latency: Duration, outcome: Outcome, since_origin: Duration) {
        self.count += 1;
        match outcome {
            Outcome::Status(_) if outcome.is_ok() => self.ok += 1,
            Outcome::Status(429) => self.rate_limited += 1,
            Outcome::Status(status) => *self.statuses.entry(status).or_default() += 1,
            Outcome::Transport => self.transport += 1,
            Outcome::TimedOut => self.timed_out += 1,
        }
        if let Outcome::Status(_) = outcome {
            self.last_answer = Some(self.last_answer.map_or(since_origin, |last| last.max(since_origin)));
        }
        if outcome != Outcome::Transport {
            let _ = self.latency.record(micros(latency));
        }
    }

    /// Every failed request: non-2xx (429 included), transport errors and time-outs.
    pub fn errors(&self) -> u64 {
        self.count - self.ok
    }

    /// Requests that got a response, whatever its status.
    pub fn answered(&self) -> u64 {
        self.count - self.transport - self.timed_out
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
    /// Open loop: arrivals scheduled in this second, and those dropped at the in-flight bound.
    pub offered: u64,
    pub dropped: u64,
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
    /// Where the timeline's second 0 is (see `Recorder::restart_timeline`).
    origin: Instant,
    routes: BTreeMap<&'static str, RouteStats>,
    hold: Option<Hold>,
    delivery: Histogram<u64>,
    timeline: Vec<Second>,
    users: usize,
    totals: Counts,
}

pub struct Recorder {
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
            inner: Mutex::new(Inner {
                origin: Instant::now(),
                routes: BTreeMap::new(),
                hold: None,
                delivery: new_histogram(),
                timeline: Vec::new(),
                users: 0,
                totals: Counts::default(),
            }),
        }
    }

    /// Second 0 of the timeline.
    pub fn start(&self) -> Instant {
        self.inner.lock().expect("recorder lock").origin
    }

    /// The measured phase starts now: the timeline (and so the chart) begins again at second 0, while the
    /// per-route totals recorded so far (the open loop's set-up) stay. Returns the new origin.
    pub fn restart_timeline(&self) -> Instant {
        let mut inner = self.inner.lock().expect("recorder lock");
        inner.origin = Instant::now();
        inner.timeline.clear();
        inner.origin
    }

    fn second_of(inner: &Inner, at: Instant) -> usize {
        at.saturating_duration_since(inner.origin).as_secs() as usize
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
        let now = Instant::now();
        let mut inner = self.inner.lock().expect("recorder lock");
        let index = Self::second_of(&inner, now);
        let since_origin = now.saturating_duration_since(inner.origin);
        inner
            .routes
            .entry(route)
            .or_insert_with(RouteStats::new)
            .add(latency, outcome, since_origin);
        if let Some(hold) = &mut inner.hold {
            hold.routes
                .entry(route)
                .or_insert_with(RouteStats::new)
                .add(latency, outcome, since_origin);
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

    /// Open loop: an arrival of `route` was due now; `started` says whether it started or was dropped
    /// because the route's in-flight bound was full.
    pub fn record_arrival(&self, route: &'static str, started: bool) {
        let mut inner = self.inner.lock().expect("recorder lock");
        let index = Self::second_of(&inner, Instant::now());
        let stats = inner.routes.entry(route).or_insert_with(RouteStats::new);
        stats.offered += 1;
        stats.dropped += u64::from(!started);
        let second = Self::second(&mut inner, index);
        second.offered += 1;
        second.dropped += u64::from(!started);
    }

    /// Open loop: an arrival of `route` started `lag` after its scheduled time.
    pub fn record_start_lag(&self, route: &'static str, lag: Duration) {
        let mut inner = self.inner.lock().expect("recorder lock");
        let stats = inner.routes.entry(route).or_insert_with(RouteStats::new);
        let _ = stats.start_lag.record(micros(lag));
    }

    /// A message reached another member's socket `latency` after its send request started.
    pub fn record_delivery(&self, latency: Duration) {
        let mut inner = self.inner.lock().expect("recorder lock");
        let index = Self::second_of(&inner, Instant::now());
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
        let mut inner = self.inner.lock().expect("recorder lock");
        let from = inner.origin.elapsed().as_secs_f64();
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
        let mut inner = self.inner.lock().expect("recorder lock");
        let index = Self::second_of(&inner, Instant::now());
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
