//! The seeds' scenarios as user-count schedules: how many virtual users should be chatting at each moment.
//!
//! Fixed scenarios (normal, peak, spike, soak) are piecewise-linear schedules known up front. Stress is a
//! staircase that only ends when the error rate of a step passes the threshold, so it is a plan the runner
//! evaluates step by step.
//!
//! By default a scenario runs open loop (docs/ARCHITECTURE.md, "Budgets"): all its users are set up first,
//! then each route gets arrivals at a rate of its own on a fixed clock, whatever the answers take, as k6's
//! constant-arrival-rate executor does. A closed loop (each user waits for its answer, thinks, acts again)
//! slows its own arrivals when the system slows and so hides a collapse; it stays, behind
//! `--closed-loop`, for comparison with the earlier runs. The open loop's rates follow the scenario's
//! user schedule where it has a shape (spike, stress), in constant-rate stages.

use std::time::Duration;

use serde::Serialize;

/// The seeds' thresholds: p95 under 300 ms, p99 under 500 ms, errors under 1 %.
pub const P95_BUDGET_MS: f64 = 300.0;
pub const P99_BUDGET_MS: f64 = 500.0;
pub const ERROR_BUDGET: f64 = 0.01;
/// Open loop: a route answering under this share of the rate it was offered is falling behind.
pub const ANSWERED_SHARE_BUDGET: f64 = 0.99;
/// Open loop: the share of expected deliveries that must arrive.
pub const DELIVERY_BUDGET: f64 = 0.999;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ScenarioKind {
    /// 100 users for 10 minutes.
    Normal,
    /// 500 users for 5 minutes.
    Peak,
    /// Add users step by step until the error rate of a step passes 1 %.
    Stress,
    /// 100 users, then 1,000 within one minute, then back to 100.
    Spike,
    /// 200 users for hours (2 h by default).
    Soak,
}

impl ScenarioKind {
    pub fn name(self) -> &'static str {
        match self {
            ScenarioKind::Normal => "normal",
            ScenarioKind::Peak => "peak",
            ScenarioKind::Stress => "stress",
            ScenarioKind::Spike => "spike",
            ScenarioKind::Soak => "soak",
        }
    }
}

/// A straight line from `from` users to `to` users over `duration` (zero duration: a jump).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Phase {
    #[serde(serialize_with = "crate::units::secs")]
    pub duration: Duration,
    pub from: usize,
    pub to: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Schedule {
    pub phases: Vec<Phase>,
}

impl Schedule {
    pub fn duration(&self) -> Duration {
        self.phases.iter().map(|p| p.duration).sum()
    }

    pub fn max_users(&self) -> usize {
        self.phases.iter().map(|p| p.from.max(p.to)).max().unwrap_or(0)
    }

    /// Users wanted at `t` since the start; after the end, the last phase's target.
    pub fn users_at(&self, t: Duration) -> usize {
        let mut start = Duration::ZERO;
        for phase in &self.phases {
            let end = start + phase.duration;
            if t < end {
                let into = (t - start).as_secs_f64() / phase.duration.as_secs_f64();
                let users = phase.from as f64 + (phase.to as f64 - phase.from as f64) * into;
                // Round towards the phase's start, so a ramp reaches its target only at its end.
                return if phase.to >= phase.from {
                    users.floor() as usize
                } else {
                    users.ceil() as usize
                };
            }
            start = end;
        }
        self.phases.last().map_or(0, |p| p.to)
    }
}

/// Stress: `start_users`, then `step_users` more every `step`, until a step's error rate passes
/// `error_threshold`, `max_users` have had their step, or `max_duration` is over.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StressPlan {
    pub start_users: usize,
    pub step_users: usize,
    #[serde(serialize_with = "crate::units::secs")]
    pub step: Duration,
    pub max_users: usize,
    #[serde(serialize_with = "crate::units::secs")]
    pub max_duration: Duration,
    pub error_threshold: f64,
}

impl StressPlan {
    /// Users of step `n` (0-based).
    pub fn users_at_step(&self, n: usize) -> usize {
        (self.start_users + self.step_users * n).min(self.max_users)
    }

    /// Users wanted `into` step `n`: a step's new users arrive over its first third (as people do, not
    /// all in the same instant), then the step holds.
    pub fn users_during(&self, n: usize, into: Duration) -> usize {
        let from = if n == 0 { 0 } else { self.users_at_step(n - 1) };
        let to = self.users_at_step(n);
        let arrival = self.step / 3;
        if into >= arrival || arrival.is_zero() {
            return to;
        }
        from + ((to - from) as f64 * into.as_secs_f64() / arrival.as_secs_f64()).floor() as usize
    }

    /// How many steps fit: up to the one that reaches `max_users`, and within `max_duration`.
    pub fn steps(&self) -> usize {
        let to_max = if self.step_users == 0 {
            1
        } else {
            self.max_users
                .saturating_sub(self.start_users)
                .div_ceil(self.step_users)
                + 1
        };
        let in_time = (self.max_duration.as_secs_f64() / self.step.as_secs_f64())
            .floor()
            .max(1.0) as usize;
        to_max.min(in_time)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Plan {
    Fixed(Schedule),
    Stepped(StressPlan),
}

impl Plan {
    pub fn max_users(&self) -> usize {
        match self {
            Plan::Fixed(schedule) => schedule.max_users(),
            Plan::Stepped(stress) => stress.users_at_step(stress.steps().saturating_sub(1)),
        }
    }

    pub fn duration(&self) -> Duration {
        match self {
            Plan::Fixed(schedule) => schedule.duration(),
            Plan::Stepped(stress) => stress.step * stress.steps() as u32,
        }
    }
}

/// Arrivals per second of each measured route.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteRates {
    /// Messages sent, half over `POST /conversations/{id}/messages`, half as WebSocket `sendMessage`.
    pub send: f64,
    /// `GET /conversations/{id}/messages`.
    pub history: f64,
    /// `GET /conversations`.
    pub list: f64,
}

impl RouteRates {
    /// The seeds' load per user: 1,000 users send 100 messages a second (docs/ARCHITECTURE.md "Budgets"), and read
    /// as many histories and a fifth as many lists (issue 21's mix).
    pub const PER_USER: RouteRates = RouteRates {
        send: 0.1,
        history: 0.1,
        list: 0.02,
    };
    /// `--short` has a handful of users for seconds: each does more, so every route sees a few arrivals.
    pub const PER_USER_SHORT: RouteRates = RouteRates {
        send: 0.2,
        history: 0.2,
        list: 0.1,
    };

    pub fn times(self, factor: f64) -> RouteRates {
        RouteRates {
            send: self.send * factor,
            history: self.history * factor,
            list: self.list * factor,
        }
    }

    pub fn total(self) -> f64 {
        self.send + self.history + self.list
    }
}

/// A stretch of the open loop at constant rates: the plan's rates times `scale`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stage {
    #[serde(serialize_with = "crate::units::secs")]
    pub duration: Duration,
    pub scale: f64,
}

/// The open loop of a scenario.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArrivalPlan {
    /// Users set up (signed in, socket open, in their group) before the measured phase; each arrival picks
    /// one of them at random.
    pub users: usize,
    /// Arrivals per second at the scenario's top (scale 1).
    pub rates: RouteRates,
    pub stages: Vec<Stage>,
    /// Stress: judge each stage, and stop after the first whose failures (failed, timed out or dropped
    /// arrivals) pass this share of its arrivals.
    pub stop_above_failures: Option<f64>,
}

impl ArrivalPlan {
    pub fn duration(&self) -> Duration {
        self.stages.iter().map(|s| s.duration).sum()
    }

    /// The open loop of `plan`: its top user count, set up first, at `rates`; the rates scaled by the
    /// users the schedule wants at each moment where it has a shape. Steady scenarios (normal, peak, soak)
    /// drop their ramp, which only paced the sign-ups that the open loop does before measuring.
    pub fn following(kind: ScenarioKind, plan: &Plan, rates: RouteRates) -> ArrivalPlan {
        let users = plan.max_users().max(1);
        let (stages, stop_above_failures) = match plan {
            Plan::Fixed(schedule) if kind == ScenarioKind::Spike => (stages_following(schedule, users), None),
            Plan::Fixed(schedule) => (
                vec![Stage {
                    duration: schedule.duration(),
                    scale: 1.0,
                }],
                None,
            ),
            Plan::Stepped(stress) => (
                (0..stress.steps())
                    .map(|n| Stage {
                        duration: stress.step,
                        scale: stress.users_at_step(n) as f64 / users as f64,
                    })
                    .collect(),
                Some(stress.error_threshold),
            ),
        };
        ArrivalPlan {
            users,
            rates,
            stages,
            stop_above_failures,
        }
    }
}

/// One stage per second at the users the schedule wants in that second (taken at its middle), relative to
/// `top`; seconds at the same scale merged.
fn stages_following(schedule: &Schedule, top: usize) -> Vec<Stage> {
    let total = schedule.duration();
    let mut stages: Vec<Stage> = Vec::new();
    let mut at = Duration::ZERO;
    while at < total {
        let duration = (total - at).min(Duration::from_secs(1));
        let scale = schedule.users_at(at + duration / 2) as f64 / top as f64;
        match stages.last_mut() {
            Some(last) if last.scale == scale => last.duration += duration,
            _ => stages.push(Stage { duration, scale }),
        }
        at += duration;
    }
    stages
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scenario {
    pub kind: ScenarioKind,
    /// Users over time: who chats in the closed loop; the shape the open loop's rates follow.
    pub plan: Plan,
    /// Closed loop: mean pause between one user's actions (each pause is drawn from 0.5x..1.5x of it).
    #[serde(serialize_with = "crate::units::millis")]
    pub think: Duration,
    pub short: bool,
    /// The open loop (the default); None for `--closed-loop`.
    pub arrivals: Option<ArrivalPlan>,
}

/// What the command line may change about a scenario.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Seconds-long smoke version with a handful of users.
    pub short: bool,
    /// The scenario's headline user count (spike: the top; stress: the first step).
    pub users: Option<usize>,
    /// Total length (stress: the longest it may run).
    pub duration: Option<Duration>,
    pub think: Option<Duration>,
    pub step_users: Option<usize>,
    pub step: Option<Duration>,
    pub max_users: Option<usize>,
    /// Run the old closed loop instead of the open loop.
    pub closed_loop: bool,
    /// Open loop: arrivals per second at the top, per route (default: the users times the seeds' rates).
    pub send_rate: Option<f64>,
    pub history_rate: Option<f64>,
    pub list_rate: Option<f64>,
}

/// Time taken to bring the users in at the start: a fifth of the run, at most a minute. A ramp rather than
/// a wall of simultaneous registrations (argon2 on every one) is how real users arrive.
fn ramp_for(total: Duration) -> Duration {
    (total / 5).min(Duration::from_secs(60))
}

/// Ramp up to `users`, then hold until `total`.
fn steady(users: usize, total: Duration) -> Schedule {
    let ramp = ramp_for(total);
    Schedule {
        phases: vec![
            Phase {
                duration: ramp,
                from: 0,
                to: users,
            },
            Phase {
                duration: total - ramp,
                from: users,
                to: users,
            },
        ],
    }
}

/// Base load (a tenth of the top), the spike to `top` within a minute, hold, the drop back to base, hold.
fn spike(top: usize, total: Duration) -> Schedule {
    let base = (top / 10).max(1);
    let warm_up = total / 10;
    let base_hold = total / 10;
    let surge = (total / 5).min(Duration::from_secs(60));
    let after = total / 5;
    let top_hold = total.saturating_sub(warm_up + base_hold + surge + after);
    Schedule {
        phases: vec![
            Phase {
                duration: warm_up,
                from: 0,
                to: base,
            },
            Phase {
                duration: base_hold,
                from: base,
                to: base,
            },
            Phase {
                duration: surge,
                from: base,
                to: top,
            },
            Phase {
                duration: top_hold,
                from: top,
                to: top,
            },
            Phase {
                duration: Duration::ZERO,
                from: top,
                to: base,
            },
            Phase {
                duration: after,
                from: base,
                to: base,
            },
        ],
    }
}

impl Scenario {
    /// The seeds' definition of `kind`, with the command line's overrides applied.
    pub fn build(kind: ScenarioKind, overrides: &Overrides) -> Scenario {
        let short = overrides.short;
        let secs = Duration::from_secs;
        // (headline users, total duration) of the full and the short versions.
        let (users, total) = match (kind, short) {
            (ScenarioKind::Normal, false) => (100, secs(10 * 60)),
            (ScenarioKind::Peak, false) => (500, secs(5 * 60)),
            (ScenarioKind::Spike, false) => (1000, secs(5 * 60)),
            (ScenarioKind::Soak, false) => (200, secs(2 * 3600)),
            (ScenarioKind::Stress, false) => (50, secs(30 * 60)),
            (ScenarioKind::Normal, true) => (10, secs(10)),
            (ScenarioKind::Peak, true) => (20, secs(10)),
            (ScenarioKind::Spike, true) => (20, secs(10)),
            (ScenarioKind::Soak, true) => (10, secs(10)),
            (ScenarioKind::Stress, true) => (5, secs(12)),
        };
        let users = overrides.users.unwrap_or(users).max(1);
        let total = overrides.duration.unwrap_or(total).max(secs(1));
        let think = overrides
            .think
            .unwrap_or(if short { Duration::from_millis(200) } else { secs(1) });
        let plan = match kind {
            ScenarioKind::Normal | ScenarioKind::Peak | ScenarioKind::Soak => Plan::Fixed(steady(users, total)),
            ScenarioKind::Spike => Plan::Fixed(spike(users, total)),
            ScenarioKind::Stress => {
                let step_users = overrides.step_users.unwrap_or(users).max(1);
                Plan::Stepped(StressPlan {
                    start_users: users,
                    step_users,
                    step: overrides
                        .step
                        .unwrap_or(if short { secs(3) } else { secs(30) })
                        .max(secs(1)),
                    max_users: overrides
                        .max_users
                        .unwrap_or(if short { 4 * users } else { 2000 })
                        .max(users),
                    max_duration: total,
                    error_threshold: ERROR_BUDGET,
                })
            }
        };
        let arrivals = (!overrides.closed_loop).then(|| {
            let per_user = if short {
                RouteRates::PER_USER_SHORT
            } else {
                RouteRates::PER_USER
            };
            let defaults = per_user.times(plan.max_users() as f64);
            let rates = RouteRates {
                send: overrides.send_rate.unwrap_or(defaults.send),
                history: overrides.history_rate.unwrap_or(defaults.history),
                list: overrides.list_rate.unwrap_or(defaults.list),
            };
            ArrivalPlan::following(kind, &plan, rates)
        });
        Scenario {
            kind,
            plan,
            think,
            short,
            arrivals,
        }
    }

    /// One line for the report's header.
    pub fn describe(&self) -> String {
        if let Some(arrivals) = &self.arrivals {
            return describe_open_loop(self.kind, arrivals);
        }
        let think = format!("think {} ms", self.think.as_millis());
        match &self.plan {
            Plan::Fixed(schedule) => {
                let shape: Vec<String> = schedule
                    .phases
                    .iter()
                    .filter(|p| !(p.duration.is_zero() && p.from == p.to))
                    .map(|p| {
                        if p.from == p.to {
                            format!("hold {} for {}s", p.to, p.duration.as_secs())
                        } else if p.duration.is_zero() {
                            format!("jump to {}", p.to)
                        } else {
                            format!("{}->{} in {}s", p.from, p.to, p.duration.as_secs())
                        }
                    })
                    .collect();
                format!(
                    "{} users max, {}s: {}; {think}",
                    schedule.max_users(),
                    schedule.duration().as_secs(),
                    shape.join(", ")
                )
            }
            Plan::Stepped(s) => format!(
                "{} users +{} every {}s up to {} (at most {}s), until a step's errors pass {:.0} %; {think}",
                s.start_users,
                s.step_users,
                s.step.as_secs(),
                s.max_users,
                s.max_duration.as_secs(),
                s.error_threshold * 100.0
            ),
        }
    }
}

fn describe_open_loop(kind: ScenarioKind, arrivals: &ArrivalPlan) -> String {
    let r = arrivals.rates;
    let rates = format!(
        "{} sends/s (half HTTP, half WebSocket), {} history reads/s, {} list reads/s",
        rate(r.send),
        rate(r.history),
        rate(r.list)
    );
    let seconds = arrivals.duration().as_secs_f64();
    let shape = match (kind, arrivals.stop_above_failures) {
        (_, Some(threshold)) => format!(
            "{} steps of {:.0}s from {:.0} % to 100 % of these rates, until a step's failed, timed-out or dropped arrivals pass {:.0} %",
            arrivals.stages.len(),
            arrivals.stages.first().map_or(0.0, |s| s.duration.as_secs_f64()),
            arrivals.stages.first().map_or(0.0, |s| s.scale * 100.0),
            threshold * 100.0
        ),
        (ScenarioKind::Spike, None) => format!(
            "these rates at the top, following the spike's users over {seconds:.0}s (a tenth at the base)"
        ),
        _ => format!("for {seconds:.0}s"),
    };
    format!(
        "open loop: {} users set up first, then {rates}, {shape}",
        arrivals.users
    )
}

/// A rate as the header shows it: whole numbers bare, others with two decimals.
fn rate(per_second: f64) -> String {
    if per_second.fract() == 0.0 {
        format!("{per_second:.0}")
    } else {
        format!("{per_second:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn seeds_defaults() {
        let none = Overrides::default();
        let normal = Scenario::build(ScenarioKind::Normal, &none);
        assert_eq!((normal.plan.max_users(), normal.plan.duration()), (100, secs(600)));
        let peak = Scenario::build(ScenarioKind::Peak, &none);
        assert_eq!((peak.plan.max_users(), peak.plan.duration()), (500, secs(300)));
        let soak = Scenario::build(ScenarioKind::Soak, &none);
        assert_eq!((soak.plan.max_users(), soak.plan.duration()), (200, secs(7200)));
        let spike = Scenario::build(ScenarioKind::Spike, &none);
        assert_eq!((spike.plan.max_users(), spike.plan.duration()), (1000, secs(300)));
        assert_eq!(normal.think, secs(1));
    }

    #[test]
    fn steady_ramps_then_holds() {
        let Plan::Fixed(s) = Scenario::build(ScenarioKind::Peak, &Overrides::default()).plan else {
            panic!("peak is a fixed schedule")
        };
        // 60 s ramp to 500, then 500 until 300 s.
        assert_eq!(s.users_at(secs(0)), 0);
        assert_eq!(s.users_at(secs(30)), 250);
        assert_eq!(s.users_at(Duration::from_millis(59_999)), 499);
        assert_eq!(s.users_at(secs(60)), 500);
        assert_eq!(s.users_at(secs(299)), 500);
        assert_eq!(s.users_at(secs(1000)), 500);
    }

    #[test]
    fn spike_goes_from_a_hundred_to_a_thousand_within_a_minute_and_back() {
        let Plan::Fixed(s) = Scenario::build(ScenarioKind::Spike, &Overrides::default()).plan else {
            panic!("spike is a fixed schedule")
        };
        assert_eq!(s.users_at(secs(15)), 50);
        assert_eq!(s.users_at(secs(30)), 100);
        assert_eq!(s.users_at(secs(59)), 100);
        assert_eq!(s.users_at(secs(60)), 100);
        assert_eq!(s.users_at(secs(90)), 550);
        assert_eq!(s.users_at(secs(120)), 1000);
        assert_eq!(s.users_at(secs(239)), 1000);
        // The drop is instantaneous, then the base holds to the end.
        assert_eq!(s.users_at(secs(240)), 100);
        assert_eq!(s.users_at(secs(299)), 100);
        // The surge phase never takes more than a minute, however long the run.
        let long = Overrides {
            duration: Some(secs(3600)),
            ..Overrides::default()
        };
        let Plan::Fixed(s) = Scenario::build(ScenarioKind::Spike, &long).plan else {
            panic!("spike is a fixed schedule")
        };
        let surge = s.phases.iter().find(|p| p.to > p.from && p.from > 0).unwrap();
        assert_eq!((surge.from, surge.to, surge.duration), (100, 1000, secs(60)));
        assert_eq!(s.duration(), secs(3600));
    }

    #[test]
    fn overrides_and_short_versions() {
        let short = Overrides {
            short: true,
            ..Overrides::default()
        };
        for kind in [
            ScenarioKind::Normal,
            ScenarioKind::Peak,
            ScenarioKind::Spike,
            ScenarioKind::Soak,
            ScenarioKind::Stress,
        ] {
            let s = Scenario::build(kind, &short);
            assert!(s.plan.duration() <= secs(15), "{kind:?} short is seconds long");
            assert!(s.plan.max_users() <= 20, "{kind:?} short has few users");
        }
        let custom = Overrides {
            users: Some(42),
            duration: Some(secs(100)),
            think: Some(Duration::from_millis(300)),
            ..Overrides::default()
        };
        let s = Scenario::build(ScenarioKind::Soak, &custom);
        assert_eq!(
            (s.plan.max_users(), s.plan.duration(), s.think),
            (42, secs(100), Duration::from_millis(300))
        );
        let Plan::Fixed(schedule) = s.plan else { panic!() };
        assert_eq!(schedule.users_at(secs(10)), 21, "a 20 s ramp for a 100 s run");
    }

    #[test]
    fn open_loop_is_the_default_and_follows_the_users() {
        let none = Overrides::default();
        // The scenario: 1,000 users for 60 s are 100 sends, 100 history and 20 list reads a second.
        let seed = Scenario::build(
            ScenarioKind::Normal,
            &Overrides {
                users: Some(1000),
                duration: Some(secs(60)),
                ..Overrides::default()
            },
        );
        let arrivals = seed.arrivals.as_ref().expect("open loop by default");
        assert_eq!(arrivals.users, 1000);
        assert_eq!(
            arrivals.rates,
            RouteRates {
                send: 100.0,
                history: 100.0,
                list: 20.0
            }
        );
        assert_eq!(
            arrivals.stages,
            [Stage {
                duration: secs(60),
                scale: 1.0
            }]
        );
        assert!(seed
            .describe()
            .starts_with("open loop: 1000 users set up first, then 100 sends/s"));
        // Flags set the rates; the closed loop has none.
        let flagged = Scenario::build(
            ScenarioKind::Peak,
            &Overrides {
                send_rate: Some(7.0),
                list_rate: Some(0.0),
                ..Overrides::default()
            },
        );
        let rates = flagged.arrivals.unwrap().rates;
        assert_eq!((rates.send, rates.history, rates.list), (7.0, 50.0, 0.0));
        let closed = Scenario::build(
            ScenarioKind::Peak,
            &Overrides {
                closed_loop: true,
                ..none.clone()
            },
        );
        assert!(closed.arrivals.is_none());

        // Spike: a tenth of the rates at the base, all of them at the top, a tenth again after.
        let spike = Scenario::build(ScenarioKind::Spike, &none).arrivals.unwrap();
        assert_eq!(spike.users, 1000);
        assert_eq!(spike.duration(), secs(300));
        let scale_at = |t: u64| {
            let mut start = Duration::ZERO;
            for stage in &spike.stages {
                if secs(t) < start + stage.duration {
                    return stage.scale;
                }
                start += stage.duration;
            }
            panic!("{t} s is past the plan")
        };
        assert_eq!((scale_at(45), scale_at(150), scale_at(250)), (0.1, 1.0, 0.1));
        assert!((0.5..0.6).contains(&scale_at(90)), "mid-surge: {}", scale_at(90));

        // Stress: steps of the rates of 50, 100, ... users out of 2,000, judged one by one.
        let stress = Scenario::build(ScenarioKind::Stress, &none).arrivals.unwrap();
        assert_eq!(stress.users, 2000);
        assert_eq!(stress.stop_above_failures, Some(ERROR_BUDGET));
        assert_eq!(stress.stages.len(), 40);
        assert_eq!(stress.stages[0].scale, 0.025);
        assert_eq!(stress.stages[39].scale, 1.0);

        // Short: a handful of users, a few arrivals a second, seconds long.
        let short = Scenario::build(ScenarioKind::Normal, &Overrides { short: true, ..none })
            .arrivals
            .unwrap();
        assert_eq!((short.users, short.duration()), (10, secs(10)));
        assert_eq!(short.rates.total(), 5.0);
    }

    #[test]
    fn stress_steps() {
        let s = StressPlan {
            start_users: 50,
            step_users: 50,
            step: secs(30),
            max_users: 200,
            max_duration: secs(3600),
            error_threshold: 0.01,
        };
        assert_eq!(s.steps(), 4);
        assert_eq!(
            (0..5).map(|n| s.users_at_step(n)).collect::<Vec<_>>(),
            [50, 100, 150, 200, 200]
        );
        let capped_by_time = StressPlan {
            max_duration: secs(90),
            ..s.clone()
        };
        assert_eq!(capped_by_time.steps(), 3);
        // Each step's new users arrive over its first 10 s.
        assert_eq!(s.users_during(0, secs(0)), 0);
        assert_eq!(s.users_during(0, secs(5)), 25);
        assert_eq!(s.users_during(1, secs(5)), 75);
        assert_eq!(s.users_during(1, secs(10)), 100);
        assert_eq!(s.users_during(1, secs(29)), 100);
        let uneven = StressPlan { max_users: 120, ..s };
        assert_eq!(uneven.steps(), 3);
        assert_eq!(uneven.users_at_step(2), 120);
    }
}
