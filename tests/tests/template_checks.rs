//! template.yaml passes `cfn-lint` and `sam validate --lint`, at the versions pinned in
//! infra/template-checks/requirements.txt, installed by this test into a git-ignored virtual
//! environment the first time (offline afterwards).

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap()
}

/// The virtual environment with the pinned linters, created or updated when the pins change.
fn linters() -> PathBuf {
    let root = workspace();
    let requirements = root.join("infra/template-checks/requirements.txt");
    let venv = root.join(".local/template-checks");
    let stamp = venv.join("requirements.installed");
    let wanted = std::fs::read_to_string(&requirements).expect("the pinned requirements");
    std::fs::create_dir_all(root.join(".local")).unwrap();
    let lock = std::fs::File::create(root.join(".local/template-checks.lock")).unwrap();
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
        std::fs::write(&stamp, wanted).unwrap();
    }
    venv.join("bin")
}

fn run(program: &Path, args: &[&str]) -> (bool, String) {
    let output = Command::new(program)
        .args(args)
        .current_dir(workspace())
        .env("SAM_CLI_TELEMETRY", "0")
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn the_template_passes_cfn_lint_and_sam_validate() {
    let bin = linters();
    let (ok, output) = run(&bin.join("cfn-lint"), &["template.yaml"]);
    assert!(ok, "cfn-lint found problems:\n{output}");
    let (ok, output) = run(&bin.join("sam"), &["validate", "--lint", "--template", "template.yaml"]);
    assert!(
        ok && output.contains("is a valid SAM Template"),
        "sam validate --lint failed:\n{output}"
    );
}

#[test]
fn a_broken_template_fails_the_checks() {
    let bin = linters();
    let broken = std::env::temp_dir().join(format!("parley-broken-{}.yaml", std::process::id()));
    let template = std::fs::read_to_string(workspace().join("template.yaml")).unwrap();
    std::fs::write(
        &broken,
        template.replace("BillingMode: PAY_PER_REQUEST", "BillingMode: WHENEVER"),
    )
    .unwrap();
    let (ok, output) = run(&bin.join("cfn-lint"), &[broken.to_str().unwrap()]);
    std::fs::remove_file(&broken).ok();
    assert!(
        !ok && output.contains("WHENEVER"),
        "cfn-lint accepted a bad billing mode:\n{output}"
    );
}
