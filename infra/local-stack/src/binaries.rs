//! Building the function binaries (one `cargo build` for all) and finding them.
//!
//! The debug and `local` profiles run every function from one binary, `parley-functions <name>`
//! (infra/local-functions), which holds each function's entry point exactly as its own `main` calls
//! it: one link instead of 51, most of a first run's and a clean test run's time and disk. The
//! release profile, what Lambda runs, builds and runs one binary per function.

use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Unoptimised: the fastest build, what the tests run.
    Debug,
    /// The workspace's `local` profile: optimised without fat LTO, what the run command runs (debug
    /// functions cannot carry the seeds' 1,000-user scenario; see BENCHMARKS.md).
    Local,
    /// What Lambda runs: fat LTO, one codegen unit, stripped (a slow build).
    Release,
}

impl Profile {
    fn dir(self) -> &'static str {
        match self {
            Profile::Debug => "debug",
            Profile::Local => "local",
            Profile::Release => "release",
        }
    }
}

pub fn target_dir(workspace: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|dir| if dir.is_relative() { workspace.join(dir) } else { dir })
        .unwrap_or_else(|| workspace.join("target"))
}

pub fn executable(workspace: &Path, profile: Profile, binary: &str) -> PathBuf {
    target_dir(workspace).join(profile.dir()).join(binary)
}

/// The gateway's own binary (this package's).
pub const GATEWAY: &str = "local-stack";

/// The binary holding every function of `functions/`, which the debug and `local` profiles run.
pub const COMBINED: &str = "parley-functions";
/// An integration test of the combined binary's package (see `build`).
const COMBINED_TEST: &str = "entry_points";

/// Whether this profile runs `binary` from the combined binary: a function of `functions/` (the
/// only ones it holds; the gateway's own test fixtures are binaries of their own), outside release.
fn runs_combined(workspace: &Path, profile: Profile, binary: &str) -> bool {
    profile != Profile::Release && workspace.join("functions").join(binary).join("src/main.rs").is_file()
}

/// How a function is started: its executable and arguments.
pub fn function_command(workspace: &Path, profile: Profile, binary: &str) -> (PathBuf, Vec<String>) {
    if runs_combined(workspace, profile, binary) {
        (executable(workspace, profile, COMBINED), vec![binary.to_owned()])
    } else {
        (executable(workspace, profile, binary), Vec::new())
    }
}

/// The binaries `build` must build so that `function_command` can start these functions.
pub fn binaries_to_build(workspace: &Path, profile: Profile, functions: &[String]) -> Vec<String> {
    let mut binaries: Vec<String> = functions
        .iter()
        .map(|binary| {
            if runs_combined(workspace, profile, binary) {
                COMBINED
            } else {
                binary.as_str()
            }
        })
        .map(str::to_owned)
        .collect();
    binaries.sort();
    binaries.dedup();
    binaries
}

/// `cargo build --bin a --bin b ...` in the workspace; cargo does nothing when they are fresh.
pub fn build(workspace: &Path, profile: Profile, binaries: &[String]) -> Result<(), String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.arg("build").arg("--quiet").current_dir(workspace);
    match profile {
        // The debug functions are what the tests run. Naming a test target makes cargo resolve features
        // with dev-dependencies, as `cargo test --workspace` does, so this build reuses the dependencies
        // the test build compiled; without it cargo compiles the SDKs, tokio and the shared crate a second
        // time with other features (about 0.4 GB and a minute or two of a clean test run).
        Profile::Debug if binaries.iter().any(|b| b == COMBINED) => {
            command.args(["--workspace", "--test", COMBINED_TEST]);
        }
        Profile::Debug => {}
        Profile::Local => {
            command.args(["--profile", "local"]);
        }
        Profile::Release => {
            command.arg("--release");
        }
    }
    for binary in binaries {
        command.arg("--bin").arg(binary);
    }
    let status = command.status().map_err(|e| format!("could not run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build of the functions failed ({status})"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    #[test]
    fn functions_run_from_the_combined_binary_outside_release_and_fixtures_from_their_own() {
        let ws = workspace();
        let (debug, arguments) = function_command(&ws, Profile::Debug, "messages-send");
        assert!(debug.ends_with("debug/parley-functions"), "{}", debug.display());
        assert_eq!(arguments, ["messages-send"]);
        let (local, _) = function_command(&ws, Profile::Local, "messages-send");
        assert!(local.ends_with("local/parley-functions"), "{}", local.display());
        let (release, arguments) = function_command(&ws, Profile::Release, "messages-send");
        assert!(release.ends_with("release/messages-send"), "{}", release.display());
        assert!(arguments.is_empty());
        let (fixture, arguments) = function_command(&ws, Profile::Debug, "fixture-echo");
        assert!(fixture.ends_with("debug/fixture-echo"), "{}", fixture.display());
        assert!(arguments.is_empty());
    }

    #[test]
    fn one_build_of_the_combined_binary_serves_every_function() {
        let ws = workspace();
        let functions = ["messages-send", "health", "fixture-echo"].map(str::to_owned);
        assert_eq!(
            binaries_to_build(&ws, Profile::Debug, &functions),
            ["fixture-echo", "parley-functions"]
        );
        assert_eq!(
            binaries_to_build(&ws, Profile::Release, &functions),
            ["fixture-echo", "health", "messages-send"]
        );
        assert!(binaries_to_build(&ws, Profile::Local, &[]).is_empty());
    }
}
