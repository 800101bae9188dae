//! The open-loop run (the default): every user is set up first (signed in, its WebSocket open, in its
//! group conversation), and none of that is measured; then each route gets arrivals on a fixed clock
//! (see `arrivals`), each picking a user at random and acting in that user's group:
//!
//! - send: even arrivals over `POST /conversations/{id}/messages`, odd ones as a `sendMessage` frame on the
//!   user's own socket; every other member's socket should get it (and, for HTTP, the sender's own);
//! - history: `GET /conversations/{id}/messages?limit=50`;
//! - list: `GET /conversations?limit=20`.
//!
//! At the end the arrivals in flight are waited for (each within the time-out), then the deliveries
//! still owed (within the delivery time-out), then the sockets close.

use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

use crate::arrivals::{self, ArrivalSource, RouteLoad};
use crate::client::{http_client, Api, CallError};
use crate::delivery::Tracker;
use crate::run::{run_context, OpenLoopOutcome, RateStep, RunOutcome, RunSettings};
use crate::scenario::ArrivalPlan;
use crate::socket::{self, SocketLink};
use crate::stats::{route, Outcome, Recorder, RouteStats};
use crate::user::{connect, Action, Member, Rng, RunContext};

/// The routes the open loop measures, in the report's order.
pub const MEASURED_ROUTES: [&str; 4] = [route::SEND, route::WS_SEND, route::HISTORY, route::LIST];

/// WebSocket upgrades and group creations at once during set-up: each `$connect` runs the authorizer and
/// a function, and a thousand at once would queue past the connect time-out on the local stack's ten
/// instances per function.
const CONCURRENT_SETUPS: usize = 16;

/// A user of the open loop.
struct Chatter {
    member: Arc<Member>,
    group: usize,
    conversation: String,
    /// Members of the group besides this user (each owed a copy of what it sends).
    others: u32,
    socket: Arc<SocketLink>,
}

/// Runs the open loop of `plan` (see the module's notes).
pub async fn run(settings: RunSettings, plan: ArrivalPlan, interrupt: Arc<AtomicBool>) -> Result<RunOutcome, String> {
    let recorder = Arc::new(Recorder::new());
    let tracker = Arc::new(Tracker::new(Arc::clone(&recorder), settings.delivery_timeout));
    let context = Arc::new(run_context(&settings, &recorder, &tracker)?);
    // The measured requests' own client: its time-out a little past the executor's, so every time-out is
    // the executor's, HTTP and WebSocket alike.
    let measured_api = Api::unrecorded(
        http_client(settings.request_timeout + Duration::from_secs(1))?,
        &settings.endpoints.http,
    );

    let (close, closed) = watch::channel(false);
    let setup_started = Instant::now();
    let population = set_up(
        &context,
        &plan,
        settings.group_size,
        &closed,
        settings.progress,
        &interrupt,
    )
    .await;
    let setup = setup_started.elapsed();
    let users_ready = population.chatters.len();
    context.active.store(users_ready, Ordering::Relaxed);
    let mut outcome = OpenLoopOutcome {
        users_wanted: plan.users,
        users_ready,
        setup,
        scheduled: Duration::ZERO,
        max_in_flight: settings.max_in_flight,
        request_timeout: settings.request_timeout,
        steps: Vec::new(),
        broke_at_per_second: None,
    };
    if users_ready == 0 && !interrupt.load(Ordering::Relaxed) {
        let _ = close.send(true);
        join_all(population.sockets).await;
        return Err(format!(
            "none of the {} users could be set up (sign-up, WebSocket or group creation failed): is the stack serving?",
            plan.users
        ));
    }
    eprintln!(
        "{users_ready} of {} users ready in {} groups after {:.1} s; measuring",
        plan.users,
        population.groups,
        setup.as_secs_f64()
    );

    let origin = recorder.restart_timeline();
    recorder.set_users(users_ready);
    let chat = Arc::new(Chat {
        context: Arc::clone(&context),
        api: measured_api,
        chatters: population.chatters,
        seed: seed_of(&settings.run_id),
    });
    let mut loads: Vec<RouteLoad> = [
        (Action::Send, plan.rates.send),
        (Action::History, plan.rates.history),
        (Action::List, plan.rates.list),
    ]
    .into_iter()
    .filter(|(_, rate)| *rate > 0.0 && users_ready > 0)
    .map(|(action, rate)| {
        let source: Arc<dyn ArrivalSource> = Arc::new(ChatRoute {
            chat: Arc::clone(&chat),
            action,
        });
        RouteLoad::new(source, rate, settings.max_in_flight)
    })
    .collect();

    let housekeeping = tokio::spawn(housekeeping(
        Arc::clone(&recorder),
        Arc::clone(&tracker),
        settings.progress,
    ));
    let start = tokio::time::Instant::from_std(origin);
    let mut stage_start = start;
    let mut interrupted = interrupt.load(Ordering::Relaxed);
    let mut before = measured_totals(&recorder.routes());
    for stage in &plan.stages {
        if interrupted {
            break;
        }
        let completed = arrivals::run_stage(
            &mut loads,
            stage.scale,
            stage_start,
            stage.duration,
            settings.request_timeout,
            &recorder,
            &interrupt,
        )
        .await;
        let from = stage_start.duration_since(start);
        stage_start += stage.duration;
        if !completed {
            interrupted = true;
            break;
        }
        if let Some(threshold) = plan.stop_above_failures {
            let after = measured_totals(&recorder.routes());
            let step = judge_step(stage.scale, &before, &after, stage.duration, &recorder, from);
            before = after;
            let broke = step.failure_rate > threshold;
            let offered_per_second = step.offered_per_second;
            outcome.steps.push(step);
            if broke {
                outcome.broke_at_per_second = Some(offered_per_second);
                break;
            }
        }
    }
    outcome.scheduled = stage_start.duration_since(start).min(origin.elapsed());

    // The end: every started arrival ends (within the time-out), then the deliveries still owed arrive
    // or run out of time, then the sockets close.
    for load in &loads {
        load.drain().await;
    }
    let deadline = Instant::now() + settings.delivery_timeout;
    while tracker.pending() > 0 && Instant::now() < deadline && !interrupt.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    housekeeping.abort();
    let _ = close.send(true);
    join_all(population.sockets).await;
    context.active.store(0, Ordering::Relaxed);
    recorder.set_users(0);
    Ok(RunOutcome {
        deliveries: tracker.finish(),
        load_time: outcome.scheduled,
        peak_users: users_ready,
        groups: population.groups,
        reconnects: context.reconnects.load(Ordering::Relaxed),
        setup_failures: context.setup_failures.load(Ordering::Relaxed),
        stress: None,
        interrupted: interrupted || interrupt.load(Ordering::Relaxed),
        open_loop: Some(outcome),
        recorder,
    })
}

/// A seed for the arrivals' choice of users, from the run id (so a run id repeats its choices).
fn seed_of(run_id: &str) -> u64 {
    run_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |hash, b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Totals over the measured routes: what a stress step is judged by.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MeasuredTotals {
    pub offered: u64,
    pub answered: u64,
    /// Failed (non-2xx or no answer), timed out or dropped.
    pub failures: u64,
    /// Started and not ended yet.
    pub in_flight: u64,
}

pub fn measured_totals(routes: &std::collections::BTreeMap<&'static str, RouteStats>) -> MeasuredTotals {
    MEASURED_ROUTES
        .iter()
        .filter_map(|name| routes.get(name))
        .fold(MeasuredTotals::default(), |t, r| MeasuredTotals {
            offered: t.offered + r.offered,
            answered: t.answered + r.answered(),
            failures: t.failures + r.errors() + r.dropped,
            in_flight: t.in_flight + (r.offered - r.dropped).saturating_sub(r.count),
        })
}

fn judge_step(
    scale: f64,
    before: &MeasuredTotals,
    after: &MeasuredTotals,
    duration: Duration,
    recorder: &Recorder,
    from: Duration,
) -> RateStep {
    let seconds = duration.as_secs_f64().max(0.001);
    let offered = after.offered - before.offered;
    let failures = after.failures - before.failures;
    let from_second = from.as_secs() as usize;
    RateStep {
        scale,
        offered,
        offered_per_second: offered as f64 / seconds,
        answered_per_second: (after.answered - before.answered) as f64 / seconds,
        failures,
        failure_rate: if offered == 0 {
            0.0
        } else {
            failures as f64 / offered as f64
        },
        p95_ms: recorder.window_ms(from_second, (from + duration).as_secs() as usize, 95.0),
    }
}

/// Every second: gives up on deliveries older than the delivery time-out, and prints progress when due.
async fn housekeeping(recorder: Arc<Recorder>, tracker: Arc<Tracker>, progress: Option<Duration>) {
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last = (started, measured_totals(&recorder.routes()));
    let mut next_progress = progress.map(|every| started + every);
    loop {
        tick.tick().await;
        let now = Instant::now();
        tracker.expire(now);
        let (Some(at), Some(every)) = (next_progress, progress) else {
            continue;
        };
        if now < at {
            continue;
        }
        next_progress = Some(at + every);
        let totals = measured_totals(&recorder.routes());
        let seconds = now.duration_since(last.0).as_secs_f64().max(0.001);
        let deliveries = tracker.counts();
        eprintln!(
            "[{:>5}s] offered {:.1}/s, answered {:.1}/s, failed/timed out/dropped {}, in flight {} | deliveries {} received, {} missing",
            now.duration_since(started).as_secs(),
            (totals.offered - last.1.offered) as f64 / seconds,
            (totals.answered - last.1.answered) as f64 / seconds,
            totals.failures - last.1.failures,
            totals.in_flight,
            deliveries.received,
            deliveries.missing,
        );
        last = (now, totals);
    }
}

/// The users set up for the run, and the tasks holding their sockets.
struct Population {
    chatters: Vec<Arc<Chatter>>,
    groups: usize,
    sockets: Vec<JoinHandle<()>>,
}

/// Sets up `plan.users` users in groups of `group_size`: sign-ups a few at a time (argon2), then their
/// sockets, then each group's conversation. Users whose set-up failed are counted and left out.
async fn set_up(
    context: &Arc<RunContext>,
    plan: &ArrivalPlan,
    group_size: usize,
    close: &watch::Receiver<bool>,
    progress: Option<Duration>,
    interrupt: &AtomicBool,
) -> Population {
    let group_size = group_size.max(1);
    let setups = Arc::new(Semaphore::new(CONCURRENT_SETUPS));
    let ready = Arc::new(AtomicUsize::new(0));
    let mut groups: Vec<JoinHandle<GroupSetup>> = (0..plan.users.div_ceil(group_size))
        .map(|index| {
            let users = index * group_size..((index + 1) * group_size).min(plan.users);
            tokio::spawn(set_up_group(
                Arc::clone(context),
                index,
                users,
                close.clone(),
                Arc::clone(&setups),
                Arc::clone(&ready),
            ))
        })
        .collect();
    let started = Instant::now();
    let mut next_progress = progress.map(|every| started + every);
    let mut population = Population {
        chatters: Vec::new(),
        groups: 0,
        sockets: Vec::new(),
    };
    for group in groups.iter_mut() {
        // Waits for each group in turn, looking up now and then for progress and interruptions.
        let finished = loop {
            tokio::select! {
                finished = &mut *group => break finished.ok(),
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
            if interrupt.load(Ordering::Relaxed) {
                break None;
            }
            if let (Some(at), Some(every)) = (next_progress, progress) {
                if Instant::now() >= at {
                    eprintln!(
                        "[{:>5}s] setting up: {}/{} users ready",
                        started.elapsed().as_secs(),
                        ready.load(Ordering::Relaxed),
                        plan.users
                    );
                    next_progress = Some(at + every);
                }
            }
        };
        if let Some(group) = finished {
            population.groups += usize::from(!group.chatters.is_empty());
            population.chatters.extend(group.chatters);
            population.sockets.extend(group.sockets);
        }
    }
    if interrupt.load(Ordering::Relaxed) {
        for group in &groups {
            group.abort();
        }
    }
    population
}

struct GroupSetup {
    chatters: Vec<Arc<Chatter>>,
    sockets: Vec<JoinHandle<()>>,
}

/// One group: its users sign in, open their sockets (held from then on), and the first creates the
/// group conversation with the others.
async fn set_up_group(
    context: Arc<RunContext>,
    index: usize,
    users: Range<usize>,
    close: watch::Receiver<bool>,
    setups: Arc<Semaphore>,
    ready: Arc<AtomicUsize>,
) -> GroupSetup {
    let wanted = users.len();
    let failed = |n: usize| {
        context.setup_failures.fetch_add(n as u64, Ordering::Relaxed);
    };
    let signed_in = join_all(users.map(|i| Member::sign_in(&context, i))).await;
    let members: Vec<Arc<Member>> = signed_in.into_iter().filter_map(Result::ok).map(Arc::new).collect();
    failed(wanted - members.len());

    let sockets = join_all(members.iter().map(|member| {
        let (context, setups) = (&context, &setups);
        async move {
            let _permit = setups.acquire().await.expect("the set-up semaphore is never closed");
            connect(context, &member.token()).await
        }
    }))
    .await;
    let mut connected = Vec::new();
    let mut holders = Vec::new();
    for (member, socket) in members.into_iter().zip(sockets) {
        let Ok(socket) = socket else {
            failed(1);
            continue;
        };
        let (link, frames) = SocketLink::new();
        holders.push(tokio::spawn(socket::hold(
            Arc::clone(&context),
            Arc::clone(&member),
            socket,
            Arc::clone(&link),
            frames,
            close.clone(),
        )));
        connected.push((member, link));
    }
    let Some((creator, _)) = connected.first() else {
        return GroupSetup {
            chatters: Vec::new(),
            sockets: holders,
        };
    };
    let others: Vec<String> = connected[1..].iter().map(|(m, _)| m.user_id.clone()).collect();
    let name = format!("load test {} group {index}", context.run_id);
    let created = {
        let _permit = setups.acquire().await.expect("the set-up semaphore is never closed");
        context.api.create_group(&creator.token(), &name, &others).await
    };
    let Ok(conversation) = created else {
        failed(connected.len());
        return GroupSetup {
            chatters: Vec::new(),
            sockets: holders,
        };
    };
    let others = others.len() as u32;
    ready.fetch_add(connected.len(), Ordering::Relaxed);
    GroupSetup {
        chatters: connected
            .into_iter()
            .map(|(member, socket)| {
                Arc::new(Chatter {
                    member,
                    group: index,
                    conversation: conversation.clone(),
                    others,
                    socket,
                })
            })
            .collect(),
        sockets: holders,
    }
}

/// What every route of the open loop shares.
struct Chat {
    context: Arc<RunContext>,
    /// Unrecorded: the executor times and records each arrival.
    api: Api,
    chatters: Vec<Arc<Chatter>>,
    seed: u64,
}

/// One route of the open loop.
struct ChatRoute {
    chat: Arc<Chat>,
    action: Action,
}

impl ArrivalSource for ChatRoute {
    fn route(&self, k: u64) -> &'static str {
        match self.action {
            Action::Send if sent_over_http(k) => route::SEND,
            Action::Send => route::WS_SEND,
            Action::History => route::HISTORY,
            Action::List => route::LIST,
        }
    }

    fn perform(self: Arc<Self>, k: u64) -> Pin<Box<dyn Future<Output = Outcome> + Send>> {
        Box::pin(async move { self.chat.perform(self.action, k).await })
    }
}

/// Sends alternate: even arrivals over HTTP, odd ones over the WebSocket, so each carries half.
pub fn sent_over_http(k: u64) -> bool {
    k.is_multiple_of(2)
}

fn outcome_of<T>(result: &Result<T, CallError>) -> Outcome {
    match result {
        // The status of a success is not needed: it counts as OK.
        Ok(_) => Outcome::Status(200),
        Err(e) => e.outcome(),
    }
}

/// A send's deliveries, owed once it succeeds. Dropped unsettled (the send failed, or the executor gave up
/// at the time-out), it cancels them: anything that still arrives counts as late or unknown.
struct Expectation {
    tracker: Arc<Tracker>,
    client_id: String,
    settled: bool,
}

impl Expectation {
    fn new(tracker: &Arc<Tracker>, client_id: &str, chatter: &Chatter, own_copy: bool) -> Self {
        tracker.expect(client_id, chatter.group, chatter.others, own_copy, Instant::now());
        Expectation {
            tracker: Arc::clone(tracker),
            client_id: client_id.to_owned(),
            settled: false,
        }
    }

    fn sent(mut self) {
        self.tracker.confirm(&self.client_id);
        self.settled = true;
    }
}

impl Drop for Expectation {
    fn drop(&mut self) {
        if !self.settled {
            self.tracker.cancel(&self.client_id);
        }
    }
}

impl Chat {
    /// Arrival `k` of `action`'s user: uniform over the users, the same for the same run id.
    fn pick(&self, action: Action, k: u64) -> &Arc<Chatter> {
        let salt = match action {
            Action::Send => 1,
            Action::History => 2,
            Action::List => 3,
        };
        let draw = Rng::new(self.seed ^ k.wrapping_mul(4).wrapping_add(salt)).next_u64();
        &self.chatters[(draw % self.chatters.len() as u64) as usize]
    }

    async fn perform(&self, action: Action, k: u64) -> Outcome {
        let chatter = self.pick(action, k);
        let conversation = &chatter.conversation;
        match action {
            Action::History => {
                let token = chatter.member.fresh_token(&self.context).await;
                outcome_of(&self.api.history(&token, conversation).await)
            }
            Action::List => {
                let token = chatter.member.fresh_token(&self.context).await;
                outcome_of(&self.api.list_conversations(&token).await)
            }
            Action::Send => {
                let client_id = format!("{}-o{k}", self.context.run_id);
                let body = format!(
                    "Message {k} of run {}, from virtual user {}: an ordinary line of chat.",
                    self.context.run_id, chatter.member.index
                );
                let result = if sent_over_http(k) {
                    let token = chatter.member.fresh_token(&self.context).await;
                    let expectation = Expectation::new(&self.context.tracker, &client_id, chatter, true);
                    let result = self.api.send(&token, conversation, &client_id, &body).await.map(|_| ());
                    if result.is_ok() {
                        expectation.sent();
                    }
                    result
                } else {
                    let expectation = Expectation::new(&self.context.tracker, &client_id, chatter, false);
                    let result = chatter.socket.send_message(conversation, &client_id, &body).await;
                    if result.is_ok() {
                        expectation.sent();
                    }
                    result
                };
                outcome_of(&result)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_alternate_between_http_and_websocket() {
        let over_http = (0..1000).filter(|k| sent_over_http(*k)).count();
        assert_eq!(over_http, 500);
        assert!(sent_over_http(0) && !sent_over_http(1));
    }

    #[test]
    fn totals_count_failures_and_what_is_in_flight() {
        let recorder = Recorder::new();
        let ms = Duration::from_millis(5);
        for _ in 0..5 {
            recorder.record_arrival(route::HISTORY, true);
        }
        recorder.record_arrival(route::HISTORY, false);
        recorder.record(route::HISTORY, ms, Outcome::Status(200));
        recorder.record(route::HISTORY, ms, Outcome::Status(503));
        recorder.record(route::HISTORY, ms, Outcome::TimedOut);
        // Not a measured route: left out.
        recorder.record(route::REGISTER, ms, Outcome::Status(500));
        let totals = measured_totals(&recorder.routes());
        assert_eq!(
            totals,
            MeasuredTotals {
                offered: 6,
                answered: 2,
                failures: 3,
                in_flight: 2
            }
        );
    }

    #[test]
    fn seeds_differ_by_run() {
        assert_ne!(seed_of("abc"), seed_of("abd"));
        assert_eq!(seed_of("abc"), seed_of("abc"));
    }
}
