//! The open loop's executor, as k6's constant-arrival-rate executor works: each route's arrivals are due
//! on a fixed clock (arrival k when k arrivals are owed by the rate), each starts as a task of its own
//! whatever the earlier ones are doing, and a route has a bounded number in flight. An arrival due while
//! the bound is full is dropped (counted, never started later): delaying it would turn the open loop back
//! into a closed one. Each started arrival is given the request time-out and recorded as it ends.
//!
//! Latency runs from the arrival's start to its answer (as k6 measures it); how late the scheduler itself
//! started each arrival is recorded apart (`start_lag`), so a starved load generator shows.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::stats::{Outcome, Recorder};

/// A small margin for float rounding when counting arrivals: `50/s x 2 s` is 100 arrivals, not 101.
const EPSILON: f64 = 1e-9;

/// One route's arrival clock: arrival `k` (from 0) is due when the integral of the rate since the start
/// reaches `k`. Constant over a stage, that is `k / rate` after it began; carried from stage to stage, so
/// splitting a run into stages never adds or loses arrivals, however low the rate.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ArrivalClock {
    /// Arrivals owed since the start (the rate's integral).
    owed: f64,
    /// Arrivals due so far (the next one's index).
    issued: u64,
}

/// The arrivals of one stage: indexes `first..first + count`, and when each is due.
#[derive(Debug, Clone, PartialEq)]
pub struct StageArrivals {
    pub first: u64,
    pub count: u64,
    owed_at_start: f64,
    rate: f64,
}

impl StageArrivals {
    /// When arrival `k` is due, from the stage's start.
    pub fn offset(&self, k: u64) -> Duration {
        Duration::from_secs_f64(((k as f64 - self.owed_at_start) / self.rate).max(0.0))
    }

    pub fn indexes(&self) -> std::ops::Range<u64> {
        self.first..self.first + self.count
    }
}

impl ArrivalClock {
    pub fn new() -> Self {
        ArrivalClock::default()
    }

    /// The arrivals due during a stage of `duration` at `rate` per second; moves the clock past it.
    pub fn stage(&mut self, rate: f64, duration: Duration) -> StageArrivals {
        let rate = if rate.is_finite() { rate.max(0.0) } else { 0.0 };
        let owed_at_start = self.owed;
        self.owed += rate * duration.as_secs_f64();
        // Arrival k belongs here when it is due before the stage ends: k < owed at the end.
        let end = (self.owed - EPSILON).ceil().max(0.0) as u64;
        let first = self.issued;
        self.issued = end.max(first);
        StageArrivals {
            first,
            count: self.issued - first,
            owed_at_start,
            rate,
        }
    }

    /// Arrivals due so far.
    pub fn issued(&self) -> u64 {
        self.issued
    }
}

/// What one route's arrivals do.
pub trait ArrivalSource: Send + Sync + 'static {
    /// The route arrival `k` is counted under (a source may alternate, e.g. HTTP and WebSocket sends).
    fn route(&self, k: u64) -> &'static str;

    /// Performs arrival `k` and says how it ended. The executor bounds its time, dropping the future at
    /// the time-out, so it must leave nothing half done when dropped.
    fn perform(self: Arc<Self>, k: u64) -> Pin<Box<dyn Future<Output = Outcome> + Send>>;
}

/// One route of the open loop: its source, its rate at scale 1, its clock and its in-flight bound.
pub struct RouteLoad {
    source: Arc<dyn ArrivalSource>,
    rate: f64,
    clock: ArrivalClock,
    in_flight: Arc<Semaphore>,
    max_in_flight: usize,
}

impl RouteLoad {
    pub fn new(source: Arc<dyn ArrivalSource>, rate: f64, max_in_flight: usize) -> Self {
        let max_in_flight = max_in_flight.clamp(1, Semaphore::MAX_PERMITS);
        RouteLoad {
            source,
            rate,
            clock: ArrivalClock::new(),
            in_flight: Arc::new(Semaphore::new(max_in_flight)),
            max_in_flight,
        }
    }

    /// Arrivals started and not yet ended.
    pub fn in_flight(&self) -> usize {
        self.max_in_flight - self.in_flight.available_permits()
    }

    /// Arrivals due so far.
    pub fn offered(&self) -> u64 {
        self.clock.issued()
    }

    /// Waits until every started arrival has ended (each ends within the time-out).
    pub async fn drain(&self) {
        let all = u32::try_from(self.max_in_flight).unwrap_or(u32::MAX);
        if let Ok(permits) = self.in_flight.acquire_many(all).await {
            drop(permits);
        }
    }
}

/// Runs one stage of every route: from `start` for `duration`, each at its rate times `scale`. Returns
/// when the stage's time is over (its arrivals may still be in flight) or when `interrupt` is set (then
/// false).
pub async fn run_stage(
    loads: &mut [RouteLoad],
    scale: f64,
    start: Instant,
    duration: Duration,
    timeout: Duration,
    recorder: &Arc<Recorder>,
    interrupt: &AtomicBool,
) -> bool {
    let schedules = loads.iter_mut().map(|load| {
        let arrivals = load.clock.stage(load.rate * scale, duration);
        let (source, in_flight) = (Arc::clone(&load.source), Arc::clone(&load.in_flight));
        async move {
            for k in arrivals.indexes() {
                let due = start + arrivals.offset(k);
                if !sleep_until(due, interrupt).await {
                    return false;
                }
                launch(&source, k, due, &in_flight, timeout, recorder);
            }
            true
        }
    });
    let finished = futures_util::future::join_all(schedules).await;
    finished.into_iter().all(|done| done) && sleep_until(start + duration, interrupt).await
}

/// Sleeps until `at`, looking at `interrupt` at least every 100 ms (low rates leave long gaps); false
/// when interrupted.
async fn sleep_until(at: Instant, interrupt: &AtomicBool) -> bool {
    loop {
        if interrupt.load(Ordering::Relaxed) {
            return false;
        }
        let now = Instant::now();
        if now >= at {
            return true;
        }
        tokio::time::sleep_until(at.min(now + Duration::from_millis(100))).await;
    }
}

/// Starts arrival `k`, due at `due`, as its own task if the route has room in flight; otherwise it is
/// dropped.
fn launch(
    source: &Arc<dyn ArrivalSource>,
    k: u64,
    due: Instant,
    in_flight: &Arc<Semaphore>,
    timeout: Duration,
    recorder: &Arc<Recorder>,
) {
    let route = source.route(k);
    let Ok(permit) = Arc::clone(in_flight).try_acquire_owned() else {
        recorder.record_arrival(route, false);
        return;
    };
    recorder.record_arrival(route, true);
    let (source, recorder) = (Arc::clone(source), Arc::clone(recorder));
    tokio::spawn(async move {
        let started = Instant::now();
        recorder.record_start_lag(route, started.saturating_duration_since(due));
        let outcome = tokio::time::timeout(timeout, source.perform(k))
            .await
            .unwrap_or(Outcome::TimedOut);
        recorder.record(route, started.elapsed(), outcome);
        drop(permit);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    /// Offsets are floats turned into nanoseconds: compare them to the microsecond.
    fn at(offset: Duration, seconds: f64) -> bool {
        (offset.as_secs_f64() - seconds).abs() < 1e-6
    }

    #[test]
    fn a_constant_rate_is_k_over_rate() {
        let mut clock = ArrivalClock::new();
        let stage = clock.stage(50.0, secs(2.0));
        assert_eq!((stage.first, stage.count), (0, 100));
        assert_eq!(stage.offset(0), Duration::ZERO);
        assert!(at(stage.offset(1), 0.02));
        assert!(at(stage.offset(99), 1.98));
        // 100/s for 60 s: 6,000 arrivals, the last 10 ms before the end.
        let mut clock = ArrivalClock::new();
        let minute = clock.stage(100.0, secs(60.0));
        assert_eq!(minute.count, 6000);
        assert!(at(minute.offset(5999), 59.99));
        // Rates that do not divide the time: arrivals at 0, 4 and 8 s.
        let mut clock = ArrivalClock::new();
        let slow = clock.stage(0.25, secs(10.0));
        assert_eq!(slow.count, 3);
        assert!(at(slow.offset(2), 8.0));
    }

    #[test]
    fn stages_carry_the_clock_so_low_rates_keep_their_rate() {
        // 0.5/s for 10 s in one stage, or in ten 1 s stages: the same 5 arrivals at the same times.
        let mut whole = ArrivalClock::new();
        let one = whole.stage(0.5, secs(10.0));
        let mut split = ArrivalClock::new();
        let mut due = Vec::new();
        for n in 0..10 {
            let stage = split.stage(0.5, secs(1.0));
            due.extend(stage.indexes().map(|k| secs(n as f64) + stage.offset(k)));
        }
        assert_eq!(one.count, 5);
        let whole_due: Vec<Duration> = one.indexes().map(|k| one.offset(k)).collect();
        assert_eq!(due.len(), whole_due.len());
        assert!(
            due.iter().zip(&whole_due).all(|(a, b)| at(*a, b.as_secs_f64())),
            "{due:?} vs {whole_due:?}"
        );
        assert_eq!(split.issued(), 5);
    }

    #[test]
    fn changing_rates_and_a_zero_rate() {
        let mut clock = ArrivalClock::new();
        // 10/s for 1 s: arrivals 0..10; then nothing for 1 s; then 20/s for 0.5 s: arrivals 10..20.
        let first = clock.stage(10.0, secs(1.0));
        let idle = clock.stage(0.0, secs(1.0));
        let fast = clock.stage(20.0, secs(0.5));
        assert_eq!((first.first, first.count), (0, 10));
        assert_eq!(idle.count, 0);
        assert_eq!((fast.first, fast.count), (10, 10));
        assert_eq!(fast.offset(10), Duration::ZERO);
        assert!(at(fast.offset(11), 0.05));
        // A rate that is no number schedules nothing.
        assert_eq!(ArrivalClock::new().stage(f64::NAN, secs(1.0)).count, 0);
    }
}
