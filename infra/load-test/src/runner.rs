//! Drives a scenario. The open loop (the default) is `open_loop`; this is the closed loop of
//! `--closed-loop`: it starts and stops groups of users to follow the schedule, and for stress judges each
//! step's error rate to decide whether to go on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::delivery::Tracker;
use crate::group::GroupHandle;
use crate::run::{run_context, RunOutcome, RunSettings, StepResult, StressResult};
use crate::scenario::{Plan, ScenarioKind, P95_BUDGET_MS};
use crate::stats::Recorder;

/// Groups covering users `0..max_users`, `size` each (the last one smaller when it does not divide).
fn group_range(index: usize, size: usize, max_users: usize) -> std::ops::Range<usize> {
    let start = index * size;
    start..(start + size).min(max_users)
}

/// Runs the scenario to its end (or until `interrupt` is set) and stops every user: the open loop when the
/// scenario has arrivals (the default), else the closed loop below.
pub async fn run(settings: RunSettings, interrupt: Arc<AtomicBool>) -> Result<RunOutcome, String> {
    if let Some(plan) = settings.scenario.arrivals.clone() {
        return crate::open_loop::run(settings, plan, interrupt).await;
    }
    let recorder = Arc::new(Recorder::new());
    let tracker = Arc::new(Tracker::new(Arc::clone(&recorder), settings.delivery_timeout));
    let context = Arc::new(run_context(&settings, &recorder, &tracker)?);
    let group_size = settings.group_size.max(1);
    let plan = settings.scenario.plan.clone();
    let max_users = plan.max_users();
    let start = recorder.start();

    let mut running: Vec<GroupHandle> = Vec::new();
    let mut stopping: Vec<GroupHandle> = Vec::new();
    let mut next_group = 0usize;
    let mut peak_users = 0usize;
    let mut interrupted = false;
    // Stress bookkeeping.
    let mut step = 0usize;
    let mut step_counts = recorder.counts();
    let mut steps: Vec<StepResult> = Vec::new();
    let mut broke_at = None;
    let mut next_progress = settings.progress.map(|every| start + every);
    let mut next_expiry = start + Duration::from_secs(1);
    // Steady scenarios ramp up, then hold: the hold is also measured on its own.
    let hold_from = match (&plan, settings.scenario.kind) {
        (Plan::Fixed(schedule), ScenarioKind::Normal | ScenarioKind::Peak | ScenarioKind::Soak) => {
            schedule.phases.first().map(|ramp| ramp.duration)
        }
        _ => None,
    };

    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let load_time = loop {
        tick.tick().await;
        let now = Instant::now();
        let t = now - start;
        if interrupt.load(Ordering::Relaxed) {
            interrupted = true;
            break t;
        }
        let wanted = match &plan {
            Plan::Fixed(schedule) => {
                if t >= schedule.duration() {
                    break t;
                }
                schedule.users_at(t)
            }
            Plan::Stepped(stress) => {
                if t >= stress.step * (step as u32 + 1) {
                    // The step is over: judge it by the requests that ended during it.
                    let counts = recorder.counts();
                    let (requests, errors) = (
                        counts.requests - step_counts.requests,
                        counts.errors - step_counts.errors,
                    );
                    let from = (stress.step * step as u32).as_secs() as usize;
                    let error_rate = if requests == 0 {
                        0.0
                    } else {
                        errors as f64 / requests as f64
                    };
                    steps.push(StepResult {
                        users: stress.users_at_step(step),
                        active: context.active.load(Ordering::Relaxed),
                        requests,
                        errors,
                        error_rate,
                        p95_ms: recorder.window_ms(from, t.as_secs() as usize, 95.0),
                    });
                    step_counts = counts;
                    if error_rate > stress.error_threshold {
                        broke_at = Some(stress.users_at_step(step));
                        break t;
                    }
                    step += 1;
                    if step >= stress.steps() {
                        break t;
                    }
                }
                stress.users_during(step, t.saturating_sub(stress.step * step as u32))
            }
        };

        // Start groups until their users cover `wanted`; stop the newest groups beyond it.
        while next_group * group_size < wanted.min(max_users) {
            let users = group_range(next_group, group_size, max_users);
            running.push(GroupHandle::spawn(Arc::clone(&context), next_group, users));
            next_group += 1;
        }
        while running.last().is_some_and(|g| g.users.start >= wanted) {
            let group = running.pop().expect("a running group");
            group.stop();
            stopping.push(group);
        }
        if hold_from.is_some_and(|from| t >= from) {
            recorder.start_hold();
        }
        let active = context.active.load(Ordering::Relaxed);
        peak_users = peak_users.max(active);
        recorder.set_users(active);

        if now >= next_expiry {
            tracker.expire(now);
            next_expiry = now + Duration::from_secs(1);
        }
        if let (Some(at), Some(every)) = (next_progress, settings.progress) {
            if now >= at {
                progress(&recorder, &tracker, t, wanted, active, every);
                next_progress = Some(at + every);
            }
        }
    };

    // Stop everyone: the users finish their action, the groups wait for their last deliveries.
    for group in &running {
        group.stop();
    }
    let groups = next_group;
    let all: Vec<GroupHandle> = running.into_iter().chain(stopping).collect();
    futures_util::future::join_all(all.into_iter().map(GroupHandle::join)).await;
    recorder.set_users(0);
    let stress = match plan {
        Plan::Stepped(_) => Some(StressResult {
            last_good: steps
                .iter()
                .filter(|s| Some(s.users) != broke_at)
                .map(|s| s.users)
                .max(),
            last_within_latency: steps
                .iter()
                .take_while(|s| Some(s.users) != broke_at && s.p95_ms.is_some_and(|ms| ms < P95_BUDGET_MS))
                .map(|s| s.users)
                .max(),
            steps,
            broke_at,
        }),
        Plan::Fixed(_) => None,
    };
    Ok(RunOutcome {
        deliveries: tracker.finish(),
        load_time,
        peak_users,
        groups,
        reconnects: context.reconnects.load(Ordering::Relaxed),
        setup_failures: context.setup_failures.load(Ordering::Relaxed),
        stress,
        interrupted,
        open_loop: None,
        recorder,
    })
}

fn progress(recorder: &Recorder, tracker: &Tracker, t: Duration, wanted: usize, active: usize, every: Duration) {
    let second = t.as_secs() as usize;
    let window = every.as_secs().max(1) as usize;
    let timeline = recorder.timeline();
    let recent = &timeline[second.saturating_sub(window).min(timeline.len())..second.min(timeline.len())];
    let requests: u64 = recent.iter().map(|s| s.requests).sum();
    let errors: u64 = recent.iter().map(|s| s.errors).sum();
    let p95 = recorder
        .window_ms(second.saturating_sub(window), second, 95.0)
        .map_or("-".to_owned(), |ms| format!("{ms:.1} ms"));
    let deliveries = tracker.counts();
    eprintln!(
        "[{:>5}s] users {active}/{wanted} | {:.1} req/s | errors {errors} | steady p95 {p95} | deliveries {} received, {} missing, {} sends in flight",
        t.as_secs(),
        requests as f64 / window as f64,
        deliveries.received,
        deliveries.missing,
        tracker.pending(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_partition_the_users() {
        assert_eq!(group_range(0, 10, 25), 0..10);
        assert_eq!(group_range(2, 10, 25), 20..25);
        assert_eq!(group_range(0, 10, 3), 0..3);
    }
}
