//! The command line: which scenario, what to change about it, where the load goes, where results go.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::scenario::{Overrides, Scenario, ScenarioKind};

const AFTER_HELP: &str = "\
Open loop (the default): all users are set up first (signed up, one WebSocket each, in groups), not
measured; then each route gets arrivals at a fixed rate whatever the answers take (k6's
constant-arrival-rate): sends (half over HTTP, half as WebSocket sendMessage), history reads and list
reads, each arrival from a random user in that user's group. An arrival due while --max-in-flight of its
route are still running is dropped, and every dropped, failed or timed-out arrival fails the verdict, as
does an answered rate under 99 % of the offered one. Rates default to the seeds' per user (1,000 users: 100
sends, 100 history and 20 list reads a second) times the scenario's users; spike and stress scale them
with their user schedules. --closed-loop runs the earlier model instead (each user waits for its answer,
thinks, acts again), which slows its own arrivals when the system slows.

By default the local stack is started in this process (DynamoDB Local in memory, free ports, function
binaries of the `local` profile as the run command builds them) and stopped at the end; its rate limits
are on and raised out of the load's way (RateLimitIpPerHour, RateLimitUserPerHour and
RateLimitSensitivePerMinute = 1000000; all virtual users come from one address), or off (0) with
--closed-loop, as the earlier runs had them. With --url and --ws-url the load goes to a stack that is
already running; it must be on this machine's loopback unless --allow-remote is given, and should have the
same parameters, e.g. `cargo run -p local-stack -- --in-memory --parameter RateLimitIpPerHour=1000000
--parameter RateLimitUserPerHour=1000000 --parameter RateLimitSensitivePerMinute=1000000`.

Exit status: 0 when every threshold passed, 1 when one failed, 2 for a usage error or a refused target.

Examples:
  cargo run --release -p load-test -- --users 1000 --group-size 10 --send-rate 100 --history-rate 100 --list-rate 20 --duration 60s
  cargo run --release -p load-test -- --scenario peak
  cargo run --release -p load-test -- --scenario normal --short
  cargo run --release -p load-test -- --scenario normal --closed-loop --duration 2m
  cargo run --release -p load-test -- --scenario stress --short
  cargo run --release -p load-test -- --scenario soak --url http://127.0.0.1:3000 --ws-url ws://127.0.0.1:3001";

#[derive(Debug, Clone, Parser)]
#[command(
    name = "parley-load",
    about = "Load-tests Parley: virtual users chat in groups over HTTP and WebSocket, at fixed arrival rates (open loop) or each at its own pace (closed loop); reports offered and answered rates, latency, errors and send-to-delivery against the seeds' thresholds",
    after_help = AFTER_HELP
)]
pub struct Args {
    /// Which of the seeds' scenarios to run.
    #[arg(long, value_enum, default_value_t = ScenarioKind::Normal)]
    pub scenario: ScenarioKind,

    /// A seconds-long version with a handful of users and low rates (a smoke test of the scenario).
    #[arg(long)]
    pub short: bool,

    /// Run the closed loop (each user waits for its answer, thinks, acts again) instead of the open loop.
    #[arg(long)]
    pub closed_loop: bool,

    /// Users (spike: the top of the spike, base is a tenth; stress: the first step). Open loop: the plan's
    /// most users (stress: --max-users) are all set up before the measured phase.
    #[arg(long)]
    pub users: Option<usize>,

    /// Length of the run, e.g. 90, 90s, 2m, 2h (stress: the longest it may run). Open loop: the measured
    /// phase, after the set-up.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// Open loop: messages sent per second (half over HTTP, half as WebSocket sendMessage); 0 for none.
    /// Default: 0.1 per user (0.2 with --short). Spike and stress: the rate at their top.
    #[arg(long, value_name = "PER_S", value_parser = parse_rate, conflicts_with = "closed_loop")]
    pub send_rate: Option<f64>,

    /// Open loop: history reads (GET /conversations/{id}/messages) per second. Default: 0.1 per user
    /// (0.2 with --short).
    #[arg(long, value_name = "PER_S", value_parser = parse_rate, conflicts_with = "closed_loop")]
    pub history_rate: Option<f64>,

    /// Open loop: conversation list reads (GET /conversations) per second. Default: 0.02 per user (0.1
    /// with --short).
    #[arg(long, value_name = "PER_S", value_parser = parse_rate, conflicts_with = "closed_loop")]
    pub list_rate: Option<f64>,

    /// Open loop: arrivals of one route (send, history or list) running at once at most; one due beyond
    /// it is dropped (counted, never delayed).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..), conflicts_with = "closed_loop")]
    pub max_in_flight: u32,

    /// Closed loop: mean pause between a user's actions, in ms (default 1000; 200 with --short).
    #[arg(long, value_name = "MS", requires = "closed_loop")]
    pub think_ms: Option<u64>,

    /// Users per group conversation (default 10; 5 with --short).
    #[arg(long)]
    pub group_size: Option<usize>,

    /// Stress: users added per step (default: the first step's users).
    #[arg(long)]
    pub step_users: Option<usize>,

    /// Stress: how long each step lasts (default 30s; 3s with --short).
    #[arg(long, value_parser = parse_duration)]
    pub step: Option<Duration>,

    /// Stress: the most users to go up to (default 2000; 4x the first step with --short).
    #[arg(long)]
    pub max_users: Option<usize>,

    /// HTTP API of a running stack instead of starting one (needs --ws-url).
    #[arg(long, requires = "ws_url", value_name = "URL")]
    pub url: Option<String>,

    /// WebSocket API of a running stack (needs --url).
    #[arg(long, requires = "url", value_name = "URL")]
    pub ws_url: Option<String>,

    /// Allow --url/--ws-url hosts that are not this machine's loopback.
    #[arg(long)]
    pub allow_remote: bool,

    /// Local stack: run release-built functions (fat LTO: a slow build). Default: the `local` profile,
    /// as the run command runs them.
    #[arg(long, conflicts_with_all = ["url", "debug"])]
    pub release: bool,

    /// Local stack: run unoptimised (debug) functions, the quickest build.
    #[arg(long, conflicts_with = "url")]
    pub debug: bool,

    /// Local stack: use the function binaries already built.
    #[arg(long, conflicts_with = "url")]
    pub no_build: bool,

    /// Local stack: concurrent instances per function.
    #[arg(long, default_value_t = 10, conflicts_with = "url")]
    pub max_instances: usize,

    /// Local stack: echo the functions' logs.
    #[arg(long, conflicts_with = "url")]
    pub stack_logs: bool,

    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Where to write the PNG chart (default: .local/load-test/<scenario>.png in the workspace;
    /// `--chart` alone means that default, as the README shows it).
    #[arg(long, value_name = "FILE", num_args = 0..=1)]
    pub chart: Option<Option<PathBuf>>,

    /// Write no chart.
    #[arg(long, conflicts_with = "chart")]
    pub no_chart: bool,

    /// Names this run's users `lt<run>_<n>` (lowercase letters and digits, 1..=8); random by default.
    /// With a run id used before, the users log in instead of registering.
    #[arg(long, value_parser = parse_run_id)]
    pub run_id: Option<String>,

    /// Give up on a request (HTTP, or a sendMessage's ack) after this long: counted as timed out.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub request_timeout: Duration,

    /// A message not on a member's socket this long after its send counts as missing.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub delivery_timeout: Duration,

    /// How often each socket sends a ping action (the WebSocket API closes sockets idle for 10 minutes).
    #[arg(long, value_parser = parse_duration, default_value = "5m")]
    pub heartbeat: Duration,

    /// A progress line on stderr this often.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub progress: Duration,

    /// No progress lines.
    #[arg(long)]
    pub quiet: bool,
}

/// `90` (seconds) or anything humantime reads (`90s`, `2m`, `1h30m`, `500ms`).
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    if let Ok(secs) = raw.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let parsed = humantime::parse_duration(raw).map_err(|e| format!("{raw:?}: {e}"))?;
    if parsed.is_zero() {
        return Err("must be more than zero".to_owned());
    }
    Ok(parsed)
}

/// Arrivals per second: a number, 0 or more.
pub fn parse_rate(raw: &str) -> Result<f64, String> {
    match raw.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate >= 0.0 => Ok(rate),
        _ => Err(format!("{raw:?} is not a rate (arrivals per second, 0 or more)")),
    }
}

fn parse_run_id(raw: &str) -> Result<String, String> {
    if (1..=8).contains(&raw.len()) && raw.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()) {
        Ok(raw.to_owned())
    } else {
        Err("1 to 8 lowercase letters or digits".to_owned())
    }
}

impl Args {
    pub fn scenario(&self) -> Scenario {
        Scenario::build(
            self.scenario,
            &Overrides {
                short: self.short,
                users: self.users,
                duration: self.duration,
                think: self.think_ms.map(Duration::from_millis),
                step_users: self.step_users,
                step: self.step,
                max_users: self.max_users,
                closed_loop: self.closed_loop,
                send_rate: self.send_rate,
                history_rate: self.history_rate,
                list_rate: self.list_rate,
            },
        )
    }

    pub fn group_size(&self) -> usize {
        self.group_size.unwrap_or(if self.short { 5 } else { 10 }).max(1)
    }

    /// The chart's path, or None for `--no-chart`. The closed loop's default differs, so a comparison run
    /// does not overwrite the open loop's chart.
    pub fn chart_path(&self) -> Option<PathBuf> {
        if self.no_chart {
            return None;
        }
        Some(self.chart.clone().flatten().unwrap_or_else(|| {
            let template = local_stack::workspace_template();
            let workspace = template.parent().map(PathBuf::from).unwrap_or_default();
            let workspace = workspace.canonicalize().unwrap_or(workspace);
            workspace.join(".local/load-test").join(format!(
                "{}{}.png",
                self.scenario.name(),
                if self.closed_loop { "-closed-loop" } else { "" }
            ))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("0s").is_err());
    }

    #[test]
    fn arguments() {
        let args = Args::try_parse_from(["parley-load", "--scenario", "spike", "--short", "--users", "40"]).unwrap();
        assert_eq!(args.scenario, ScenarioKind::Spike);
        assert_eq!(args.scenario().plan.max_users(), 40);
        assert_eq!(args.group_size(), 5);
        assert!(args.chart_path().unwrap().ends_with(".local/load-test/spike.png"));
        // `--chart` without a file name, as the README writes it, is the default path.
        let bare = Args::try_parse_from(["parley-load", "--scenario", "peak", "--chart"]).unwrap();
        assert!(bare.chart_path().unwrap().ends_with(".local/load-test/peak.png"));
        let named = Args::try_parse_from(["parley-load", "--chart", "out.png"]).unwrap();
        assert_eq!(named.chart_path().unwrap(), PathBuf::from("out.png"));
        // --url needs --ws-url, and the local stack's options make no sense with it.
        assert!(Args::try_parse_from(["parley-load", "--url", "http://127.0.0.1:1"]).is_err());
        assert!(Args::try_parse_from([
            "parley-load",
            "--url",
            "http://127.0.0.1:1",
            "--ws-url",
            "ws://127.0.0.1:2",
            "--release"
        ])
        .is_err());
        assert!(Args::try_parse_from(["parley-load", "--run-id", "Bad_Id"]).is_err());
        // Open loop by default; its rates are flags; the closed loop's think time needs --closed-loop.
        let open = Args::try_parse_from([
            "parley-load",
            "--users",
            "1000",
            "--group-size",
            "10",
            "--send-rate",
            "100",
            "--history-rate",
            "100",
            "--list-rate",
            "20",
            "--duration",
            "60s",
        ])
        .unwrap();
        let arrivals = open.scenario().arrivals.expect("open loop");
        assert_eq!(
            (
                arrivals.users,
                arrivals.rates.send,
                arrivals.rates.history,
                arrivals.rates.list
            ),
            (1000, 100.0, 100.0, 20.0)
        );
        assert_eq!((arrivals.duration(), open.group_size()), (Duration::from_secs(60), 10));
        assert_eq!(open.max_in_flight, 256);
        let closed = Args::try_parse_from(["parley-load", "--closed-loop", "--think-ms", "500"]).unwrap();
        assert!(closed.scenario().arrivals.is_none());
        assert!(closed
            .chart_path()
            .unwrap()
            .ends_with(".local/load-test/normal-closed-loop.png"));
        assert!(Args::try_parse_from(["parley-load", "--think-ms", "500"]).is_err());
        assert!(Args::try_parse_from(["parley-load", "--closed-loop", "--send-rate", "5"]).is_err());
        assert!(Args::try_parse_from(["parley-load", "--send-rate", "-1"]).is_err());
        assert!(Args::try_parse_from(["parley-load", "--list-rate", "lots"]).is_err());
        assert!(Args::try_parse_from(["parley-load", "--max-in-flight", "0"]).is_err());
        assert!(Args::try_parse_from(["parley-load", "--scenario", "nope"]).is_err());
    }
}
