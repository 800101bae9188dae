//! What a run is given and what it gives back, open loop or closed: its settings, its outcome (with the
//! stress steps and the open loop's own account), a run id, and the context every virtual user shares.

use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::client::{http_client, Api};
use crate::delivery::{DeliveryCounts, Tracker};
use crate::scenario::Scenario;
use crate::stats::Recorder;
use crate::target::Endpoints;
use crate::user::RunContext;

#[derive(Debug, Clone)]
pub struct RunSettings {
    pub scenario: Scenario,
    pub endpoints: Endpoints,
    /// Makes usernames and message ids of this run unique: `lt<run>_<n>`.
    pub run_id: String,
    /// Users per group conversation.
    pub group_size: usize,
    pub request_timeout: Duration,
    pub delivery_timeout: Duration,
    pub heartbeat: Duration,
    /// A progress line on stderr this often (None: quiet).
    pub progress: Option<Duration>,
    /// Open loop: arrivals in flight at most, per route; one due beyond it is dropped.
    pub max_in_flight: usize,
}

/// One stress step as it went.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepResult {
    pub users: usize,
    /// Users actually chatting at the step's end (lower while a step's users are still signing up).
    pub active: usize,
    pub requests: u64,
    pub errors: u64,
    pub error_rate: f64,
    pub p95_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StressResult {
    pub steps: Vec<StepResult>,
    /// The users of the step whose error rate passed the threshold; None if none did.
    pub broke_at: Option<usize>,
    /// The most users of a step that stayed under the threshold.
    pub last_good: Option<usize>,
    /// The most users of a step whose chatting routes also kept their p95 under the seeds' 300 ms: where
    /// latency gives way, which on a closed loop of users comes well before errors do.
    pub last_within_latency: Option<usize>,
}

pub struct RunOutcome {
    pub recorder: Arc<Recorder>,
    pub deliveries: DeliveryCounts,
    /// From the first user to the stop signal: the window throughput is computed over.
    pub load_time: Duration,
    pub peak_users: usize,
    pub groups: usize,
    pub reconnects: u64,
    pub setup_failures: u64,
    pub stress: Option<StressResult>,
    pub interrupted: bool,
    /// The open loop's own account (None for the closed loop).
    pub open_loop: Option<OpenLoopOutcome>,
}

/// One stress step of the open loop, judged by the arrivals of its own time.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RateStep {
    /// Share of the plan's rates this step offered.
    pub scale: f64,
    pub offered: u64,
    pub offered_per_second: f64,
    pub answered_per_second: f64,
    /// Failed (non-2xx or no answer), timed out or dropped.
    pub failures: u64,
    pub failure_rate: f64,
    pub p95_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenLoopOutcome {
    pub users_wanted: usize,
    /// Users signed in, connected and in a group when the measured phase began.
    pub users_ready: usize,
    #[serde(serialize_with = "crate::units::secs")]
    pub setup: Duration,
    /// How long arrivals were scheduled: the plan's length, unless interrupted or a stress step broke.
    #[serde(serialize_with = "crate::units::secs")]
    pub scheduled: Duration,
    /// Arrivals in flight at most, per route.
    pub max_in_flight: usize,
    #[serde(serialize_with = "crate::units::millis")]
    pub request_timeout: Duration,
    /// Stress: the steps run.
    pub steps: Vec<RateStep>,
    /// Stress: the offered rate (all routes, per second) of the step whose failures passed the threshold.
    pub broke_at_per_second: Option<f64>,
}

/// A short, lowercase id for usernames: base36 of 32 random bits.
pub fn new_run_id() -> String {
    let mut bytes = [0u8; 4];
    let seed = match getrandom::fill(&mut bytes) {
        Ok(()) => u32::from_le_bytes(bytes) as u64,
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64 & 0xffff_ffff),
    };
    let mut n = seed;
    let mut id = Vec::new();
    loop {
        id.push(b"0123456789abcdefghijklmnopqrstuvwxyz"[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    id.reverse();
    String::from_utf8(id).expect("ascii")
}

/// What every virtual user of a run shares, open loop or closed.
pub(crate) fn run_context(
    settings: &RunSettings,
    recorder: &Arc<Recorder>,
    tracker: &Arc<Tracker>,
) -> Result<RunContext, String> {
    Ok(RunContext {
        api: Api::new(
            http_client(settings.request_timeout)?,
            &settings.endpoints.http,
            Arc::clone(recorder),
        ),
        ws_base: settings.endpoints.ws.trim_end_matches('/').to_owned(),
        recorder: Arc::clone(recorder),
        tracker: Arc::clone(tracker),
        run_id: settings.run_id.clone(),
        think: settings.scenario.think,
        heartbeat: settings.heartbeat,
        delivery_timeout: settings.delivery_timeout,
        active: AtomicUsize::new(0),
        reconnects: AtomicU64::new(0),
        setup_failures: AtomicU64::new(0),
        signups: tokio::sync::Semaphore::new(crate::user::CONCURRENT_SIGNUPS),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_fit_usernames() {
        let id = new_run_id();
        assert!(!id.is_empty() && id.len() <= 7, "{id}");
        assert!(id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
    }
}
