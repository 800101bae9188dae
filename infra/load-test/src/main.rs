//! `cargo run --release -p load-test -- --scenario peak`: see `--help`, and cli.rs.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::Parser;
use load_test::cli::Args;
use load_test::report::TargetInfo;
use load_test::run::{new_run_id, RunSettings};
use load_test::target::{self, RateLimiting, StackSettings};
use local_stack::Profile;

/// A thousand users hold a socket each, twice over (client and gateway ends), plus HTTP connections (up
/// to --max-in-flight per route in open loop): more than the common soft limit of 1024 open files.
fn raise_open_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

fn refuse(problem: &str) -> ExitCode {
    eprintln!("error: {problem}");
    ExitCode::from(2)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let scenario = args.scenario();

    // The target is checked before any client exists: a refused URL gets no packet.
    let (endpoints, stack, description, parameters) = match (&args.url, &args.ws_url) {
        (Some(url), Some(ws_url)) => {
            let endpoints = match target::check_endpoints(url, ws_url, args.allow_remote) {
                Ok(endpoints) => endpoints,
                Err(problem) => return refuse(&problem),
            };
            if !args.allow_remote {
                if let Err(problem) = target::check_resolution(&endpoints).await {
                    return refuse(&problem);
                }
            }
            (
                endpoints,
                None,
                "a running stack given by --url/--ws-url".to_owned(),
                Default::default(),
            )
        }
        _ => {
            raise_open_file_limit();
            let settings = StackSettings {
                profile: match (args.release, args.debug) {
                    (true, _) => Profile::Release,
                    (_, true) => Profile::Debug,
                    _ => Profile::Local,
                },
                build: !args.no_build,
                max_instances_per_function: args.max_instances.max(1),
                echo_logs: args.stack_logs,
                // The open loop measures the stack as deployed, its limiter working on every request; the
                // closed loop keeps the earlier runs' limits off, so its numbers compare with theirs.
                rate_limiting: if scenario.arrivals.is_some() {
                    RateLimiting::Raised
                } else {
                    RateLimiting::Off
                },
                ..StackSettings::default()
            };
            eprintln!("starting the local stack ({:?} functions)...", settings.profile);
            let (stack, parameters) = match target::start_local_stack(&settings).await {
                Ok(started) => started,
                Err(problem) => {
                    eprintln!("error: {problem}");
                    return ExitCode::from(2);
                }
            };
            let endpoints = target::Endpoints {
                http: stack.http_url(),
                ws: stack.ws_url(),
            };
            let description = format!(
                "local stack started in-process: {} function binaries, up to {} instances per function, DynamoDB Local in memory",
                match settings.profile {
                    Profile::Release => "release",
                    Profile::Local => "local-profile",
                    Profile::Debug => "debug",
                },
                settings.max_instances_per_function
            );
            (endpoints, Some(stack), description, parameters)
        }
    };
    #[cfg(feature = "tls")]
    {
        // tokio-tungstenite's rustls needs a process-wide crypto provider when several are compiled in.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }

    let interrupt = Arc::new(AtomicBool::new(false));
    {
        let interrupt = Arc::clone(&interrupt);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("interrupted: stopping the users and reporting what was measured");
                interrupt.store(true, Ordering::Relaxed);
            }
        });
    }
    let run_id = args.run_id.clone().unwrap_or_else(new_run_id);
    eprintln!(
        "running {}{} (run {run_id}) against {} and {}: {}",
        scenario.kind.name(),
        if scenario.short { " --short" } else { "" },
        endpoints.http,
        endpoints.ws,
        scenario.describe()
    );
    let settings = RunSettings {
        scenario,
        endpoints: endpoints.clone(),
        run_id,
        group_size: args.group_size(),
        request_timeout: args.request_timeout,
        delivery_timeout: args.delivery_timeout,
        heartbeat: args.heartbeat,
        progress: (!args.quiet).then_some(args.progress),
        max_in_flight: args.max_in_flight as usize,
    };
    let target = TargetInfo {
        http: endpoints.http,
        ws: endpoints.ws,
        description,
        parameters,
    };
    let result = load_test::load_test(settings, target, args.chart_path(), interrupt).await;
    if let Some(stack) = stack {
        stack.stop().await;
    }
    let report = match result {
        Ok(report) => report,
        Err(problem) => return refuse(&problem),
    };
    print!("{}", report.to_text());
    if let Some(path) = &args.json {
        let written = serde_json::to_string_pretty(&report)
            .map_err(|e| e.to_string())
            .and_then(|json| std::fs::write(path, json + "\n").map_err(|e| e.to_string()));
        if let Err(e) = written {
            return refuse(&format!("writing {}: {e}", path.display()));
        }
        println!("json: {}", path.display());
    }
    if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
