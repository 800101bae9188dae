//! Parley's load test: virtual users that sign up, hold a WebSocket and chat in group conversations, driven
//! through the seeds' scenarios (normal, peak, stress, spike, soak) against the local stack or a stack you
//! name on this machine; open loop by default (arrivals at fixed rates), closed loop on request.
//!
//! - `cli`: the command line;  `target`: where the load may go, and starting the local stack;
//! - `scenario`: the user-count schedules and the open loop's arrival plans;
//! - `open_loop`, `arrivals`: the open-loop run, and its constant-arrival-rate executor;
//! - `run`: a run's settings and outcome, and what its users share;
//! - `runner`: the closed loop, following a schedule with groups of users;
//! - `group`, `user`, `client`, `socket`: a group's setup and teardown, one user's behaviour, the timed HTTP
//!   calls, a held WebSocket;
//! - `delivery`: send-to-delivery matching;  `stats`: what was measured;
//! - `report`, `units`, `chart`: the text/JSON summary with its verdict, and the PNG.

pub mod arrivals;
pub mod chart;
pub mod cli;
pub mod client;
pub mod delivery;
pub mod group;
pub mod open_loop;
pub mod report;
pub mod run;
pub mod runner;
pub mod scenario;
pub mod socket;
pub mod stats;
pub mod target;
pub mod units;
pub mod user;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use report::{Report, TargetInfo};
use run::RunSettings;

/// Runs one scenario and reports on it; the chart is written to `chart` when given. `interrupt` ends the
/// run early (the report then says so).
pub async fn load_test(
    settings: RunSettings,
    target: TargetInfo,
    chart: Option<PathBuf>,
    interrupt: Arc<AtomicBool>,
) -> Result<Report, String> {
    let scenario = settings.scenario.clone();
    let (run_id, group_size) = (settings.run_id.clone(), settings.group_size);
    let outcome = runner::run(settings, interrupt).await?;
    let chart = match chart {
        Some(path) => {
            let title = format!(
                "Parley load test: {}{}, {} (run {run_id})",
                scenario.kind.name(),
                if scenario.short { " --short" } else { "" },
                if scenario.arrivals.is_some() {
                    "open loop"
                } else {
                    "closed loop"
                }
            );
            chart::draw(&path, &title, &outcome.recorder.timeline())?;
            Some(path.display().to_string())
        }
        None => None,
    };
    Ok(Report::build(&scenario, &run_id, target, group_size, &outcome, chart))
}
