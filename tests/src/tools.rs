//! Pinned Python tools the tests run (linters, `sam`, the contract checkers), each set installed from
//! `infra/<name>/requirements.txt` into a git-ignored virtual environment `.local/<name>/` the first
//! time, and again only when the pins change (offline afterwards). Packages pinned in
//! `infra/<name>/requirements-no-deps.txt` are installed without their declared dependencies: what
//! they need is in requirements.txt, and what they would pull in besides is never used (cargo-lambda
//! declares ziglang, 411 MB, for cross-compiling with zig, which `sam build` here does not do).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository's root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap()
}

/// The `bin/` folder of the virtual environment with the tools pinned in `infra/<name>/requirements.txt`.
/// Test processes that ask for the same set at once wait for one another on a lock file.
pub fn python_tools(name: &str) -> PathBuf {
    let root = workspace();
    let requirements = root.join("infra").join(name).join("requirements.txt");
    let venv = root.join(".local").join(name);
    let stamp = venv.join("requirements.installed");
    let without_dependencies = root.join("infra").join(name).join("requirements-no-deps.txt");
    let mut wanted = std::fs::read_to_string(&requirements)
        .unwrap_or_else(|e| panic!("the pinned requirements {}: {e}", requirements.display()));
    let no_deps = std::fs::read_to_string(&without_dependencies).ok();
    if let Some(pins) = &no_deps {
        wanted.push_str(pins);
    }
    std::fs::create_dir_all(root.join(".local")).unwrap();
    let lock = std::fs::File::create(root.join(".local").join(format!("{name}.lock"))).unwrap();
    lock.lock().unwrap();
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
        let created = Command::new(&python)
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .expect("python3 -m venv");
        assert!(created.success(), "could not create {}", venv.display());
        let installed = Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(&requirements)
            .status()
            .expect("pip");
        assert!(installed.success(), "pip install -r {} failed", requirements.display());
        if no_deps.is_some() {
            let installed = Command::new(venv.join("bin/pip"))
                .args(["install", "--quiet", "--disable-pip-version-check", "--no-deps", "-r"])
                .arg(&without_dependencies)
                .status()
                .expect("pip");
            assert!(
                installed.success(),
                "pip install --no-deps -r {} failed",
                without_dependencies.display()
            );
        }
        std::fs::write(&stamp, wanted).unwrap();
    }
    venv.join("bin")
}

/// Runs `program` in the repository's root; whether it succeeded, and its stdout and stderr together.
pub fn run_tool(program: &Path, args: &[&str]) -> (bool, String) {
    let output = Command::new(program)
        .args(args)
        .current_dir(workspace())
        .env("SAM_CLI_TELEMETRY", "0")
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
    outcome(&output)
}

/// Whether a finished program succeeded, and its stdout and stderr together (for a failure message).
pub fn outcome(output: &std::process::Output) -> (bool, String) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}
