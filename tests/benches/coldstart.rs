//! `cargo bench -p parley-tests --bench coldstart`: cold start and binary size of every function, as the
//! local stack runs it (docs/ARCHITECTURE.md "Budgets": cold start under 30 ms locally, binary under 8 MB stripped).
//!
//! Cold start is what the gateway measures for each new instance: from just before it spawns the process to
//! the process's first `GET /2018-06-01/runtime/invocation/next` on its Runtime API (the function's init:
//! exec, the tracing subscriber, configuration, the AWS SDK clients). Each round starts a fresh stack
//! (in-memory DynamoDB Local), waits for it to settle, then invokes every function once, one after the
//! other, with its sample event from events/ (so every instance starts alone on the machine), and reads the
//! init times the gateway recorded. DynamoDB Local is warmed first with the call every init makes (a
//! GetItem), as the real service always is. A first round is run and left out (page cache).
//!
//! The binaries are the ones already built; nothing is built here:
//! - release (what Lambda gets): `nice -n 10 cargo build --release $(ls functions | sed 's/^/-p /')`, then
//!   `cargo bench -p parley-tests --bench coldstart`
//! - debug: `cargo build $(ls functions | sed 's/^/-p /')`, then
//!   `COLDSTART_PROFILE=debug cargo bench -p parley-tests --bench coldstart`
//!
//! Settings (environment): `COLDSTART_PROFILE` (`release` or `debug`, default release), `COLDSTART_SAMPLES`
//! (measured rounds, default 10), `COLDSTART_FUNCTIONS` (comma-separated binary names, default all).

use std::collections::BTreeMap;
use std::time::Duration;

use local_stack::{LocalStack, Options, Profile};
use parley_template::Template;

const SIZE_BUDGET_BYTES: u64 = 8 * 1000 * 1000;
const COLD_START_BUDGET_MS: f64 = 30.0;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let (profile, profile_dir) = match std::env::var("COLDSTART_PROFILE").as_deref() {
        Ok("debug") => (Profile::Debug, "debug"),
        _ => (Profile::Release, "release"),
    };
    let samples: usize = env_or("COLDSTART_SAMPLES", 10);
    let template_path = local_stack::workspace_template();
    let template = Template::load(&template_path).expect("template.yaml");
    let mut binaries: Vec<String> = template
        .functions()
        .expect("functions")
        .into_iter()
        .map(|f| f.binary)
        .collect();
    binaries.sort();
    if let Ok(only) = std::env::var("COLDSTART_FUNCTIONS") {
        let only: Vec<&str> = only.split(',').map(str::trim).collect();
        binaries.retain(|b| only.contains(&b.as_str()));
    }
    let workspace = template_path.parent().expect("workspace").to_path_buf();
    let events: BTreeMap<String, serde_json::Value> = binaries
        .iter()
        .map(|b| {
            let path = workspace.join("events").join(format!("{b}.json"));
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (b.clone(), serde_json::from_str(&text).expect("a JSON event"))
        })
        .collect();

    println!(
        "cold start: {profile_dir} binaries, {samples} measured rounds (+1 left out), {} functions, {} cores",
        binaries.len(),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    let mut init_ms: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    // Init times by the instance's place in its round (0, 1, 2, 3 = later), to see start-up effects.
    let mut by_position: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    for round in 0..=samples {
        let mut options = Options::for_tests(template_path.clone());
        options.profile = profile;
        options.build = false;
        options
            .parameters
            .extend(parley_tests::RATE_LIMITS_OFF.map(|(name, value)| (name.to_owned(), value.to_owned())));
        let stack = LocalStack::start(options).await.expect("the local stack");
        // A fresh DynamoDB Local answers its first calls slowly (class loading, JIT), and every function's
        // init makes one call (the connection warm-up, a GetItem): warm it with that call first, as the
        // real DynamoDB always is. Then let the machine settle, so instances start on an idle machine.
        let sdk = dynamodb_local::sdk_config(stack.dynamodb_endpoint().expect("DynamoDB Local")).await;
        let config = parley::config::Config::from_lookup(|name| match name {
            "TABLE_NAME" => Some("ChatTable".to_owned()),
            "TOKEN_SECRET" => Some(local_stack::LOCAL_TOKEN_SECRET.to_owned()),
            _ => None,
        })
        .expect("configuration");
        let context = parley::AppContext::new(config, &sdk);
        for _ in 0..200 {
            let _ = context.store.ping().await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        // Rotate the order, so no function always comes first.
        let mut order = binaries.clone();
        order.rotate_left(round % binaries.len().max(1));
        for (position, binary) in order.iter().enumerate() {
            // The outcome does not matter (the sample's token is not valid here): only the start does.
            let _ = stack.invoke(binary, &events[binary]).await;
            if round > 0 {
                if let Some(us) = stack.stats(binary).and_then(|s| s.init_micros.first().copied()) {
                    by_position.entry(position.min(3)).or_default().push(us as f64 / 1000.0);
                }
            }
        }
        let mut this_round: Vec<f64> = Vec::new();
        for binary in &binaries {
            let stats = stack.stats(binary).expect("a function of the template");
            this_round.extend(stats.init_micros.iter().map(|us| *us as f64 / 1000.0));
            if stats.cold_starts != 1 {
                eprintln!(
                    "{binary}: {} cold starts in round {round} (expected 1)",
                    stats.cold_starts
                );
            }
            if round > 0 {
                init_ms
                    .entry(binary.clone())
                    .or_default()
                    .extend(stats.init_micros.iter().map(|us| *us as f64 / 1000.0));
            }
        }
        stack.stop().await;
        // The machine's load while the round ran: other work on the 2 cores shows up as slow starts.
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        this_round.sort_by(f64::total_cmp);
        eprintln!(
            "round {round}{}: load average {}, init median {:.1} ms, slowest {:.1} ms",
            if round == 0 { " (left out)" } else { "" },
            load.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
            percentile(&this_round, 0.5),
            this_round.last().copied().unwrap_or(f64::NAN)
        );
    }

    println!();
    println!(
        "| function | binary (bytes) | binary (MiB) | samples | init p50 (ms) | init p95 (ms) | min (ms) | max (ms) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut all = Vec::new();
    let mut largest = 0u64;
    for (binary, times) in &mut init_ms {
        times.sort_by(f64::total_cmp);
        all.extend(times.iter().copied());
        // In debug, the executable started is the combined `parley-functions` (local_stack::function_command).
        let (executable, _) = local_stack::function_command(&workspace, profile, binary);
        let size = std::fs::metadata(executable).map(|m| m.len()).unwrap_or(0);
        largest = largest.max(size);
        println!(
            "| {binary} | {size} | {:.2} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
            size as f64 / (1024.0 * 1024.0),
            times.len(),
            percentile(times, 0.5),
            percentile(times, 0.95),
            times.first().copied().unwrap_or(f64::NAN),
            times.last().copied().unwrap_or(f64::NAN),
        );
    }
    all.sort_by(f64::total_cmp);
    println!(
        "| all functions | largest {largest} | {:.2} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
        largest as f64 / (1024.0 * 1024.0),
        all.len(),
        percentile(&all, 0.5),
        percentile(&all, 0.95),
        all.first().copied().unwrap_or(f64::NAN),
        all.last().copied().unwrap_or(f64::NAN),
    );
    println!();
    for (position, times) in &mut by_position {
        times.sort_by(f64::total_cmp);
        println!(
            "{} started in its round: {} samples, init p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
            if *position < 3 {
                format!("instance #{}", position + 1)
            } else {
                "later instances".to_owned()
            },
            times.len(),
            percentile(times, 0.5),
            percentile(times, 0.95),
            times.last().copied().unwrap_or(f64::NAN)
        );
    }
    println!();
    if profile == Profile::Debug {
        println!("(the budgets are for release binaries; debug figures are for comparison)");
    }
    println!(
        "budget: cold start under {COLD_START_BUDGET_MS} ms: p95 of all {:.1} ms -> {}; binary under 8 MB: largest {largest} bytes -> {}",
        percentile(&all, 0.95),
        if percentile(&all, 0.95) < COLD_START_BUDGET_MS { "met" } else { "NOT met" },
        if largest < SIZE_BUDGET_BYTES { "met" } else { "NOT met" },
    );
}
