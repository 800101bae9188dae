//! `sam build` works offline: every function of template.yaml is built for x86_64 (the template's
//! `Architecture` parameter) by SAM's `rust-cargolambda` workflow, with `sam` and `cargo-lambda`
//! pinned in infra/template-checks/requirements.txt, and each artifact is checked:
//!
//! - it is `<build dir>/<LogicalId>/bootstrap`, an executable x86-64 ELF file;
//! - it needs nothing newer than GLIBC 2.34, what `provided.al2023` has;
//! - it starts and serves: the local stack runs the artifacts themselves (`Options::artifacts`),
//!   every function answers its sample event from events/ through the Lambda Runtime API without
//!   crashing or timing out, and `GET /health` answers 200 through the HTTP gateway.
//!
//! Deployed builds use the release profile (fat LTO, one codegen unit: about 4 minutes per function
//! here). So that 51 functions fit the CI budget, this build keeps the release profile's other
//! settings but turns LTO off, uses 16 codegen units and opt-level 0 (`CARGO_PROFILE_RELEASE_*`,
//! which cargo honours over Cargo.toml), in a target directory of its own (`target/sam/`). The
//! binaries are compiled by one `cargo lambda build` of all functions first, so cargo builds them in
//! parallel; SAM's own `cargo lambda build --release --bin <name>` for each function then finds them
//! fresh and copies them. The arm64 build is the release workflow's (README "Deploying").

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use parley_template::{workspace_template_path, Template};
use parley_tests::tools::{python_tools, workspace};
use serde_json::Value;

/// The newest GLIBC symbol version provided.al2023 has.
const NEWEST_GLIBC: (u32, u32) = (2, 34);

fn sam_environment(command: &mut Command, tools: &Path) {
    let path = std::env::var("PATH").unwrap_or_default();
    command
        .current_dir(workspace())
        .env("PATH", format!("{}:{path}", tools.display()))
        .env("SAM_CLI_TELEMETRY", "0")
        .env("CARGO_LAMBDA_COMPILER", "cargo")
        .env("CARGO_TARGET_DIR", workspace().join("target/sam"))
        .env("CARGO_PROFILE_RELEASE_LTO", "false")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "16")
        .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "0")
        .env("CARGO_PROFILE_RELEASE_INCREMENTAL", "false");
}

fn run(mut command: Command, what: &str) {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        free_space()
    );
}

/// `df` of the build's disk: a linker killed by SIGBUS is most often one whose output file could not
/// grow on a full disk, and this build writes about 3 GB.
fn free_space() -> String {
    match Command::new("df").arg("-h").arg(workspace().join("target")).output() {
        Ok(output) => format!("disk: {}", String::from_utf8_lossy(&output.stdout).trim()),
        Err(e) => format!("disk: df failed: {e}"),
    }
}

/// Runs `sam build` for x86_64 into `target/sam/build`; returns that directory.
fn sam_build(template: &Template) -> PathBuf {
    let tools = python_tools("template-checks");
    let build_dir = workspace().join("target/sam/build");
    let binaries: Vec<String> = template.functions().unwrap().into_iter().map(|f| f.binary).collect();

    let mut prebuild = Command::new(tools.join("cargo-lambda"));
    prebuild.args(["lambda", "build", "--release"]);
    for binary in &binaries {
        prebuild.args(["--bin", binary]);
    }
    sam_environment(&mut prebuild, &tools);
    run(prebuild, "cargo lambda build of every function");

    let mut sam = Command::new(tools.join("sam"));
    sam.args([
        "build",
        "--language-extensions",
        "--template",
        "template.yaml",
        "--build-dir",
    ])
    .arg(&build_dir)
    .args(["--parameter-overrides", "Architecture=x86_64"]);
    sam_environment(&mut sam, &tools);
    run(sam, "sam build");
    // cargo-lambda's copies of the binaries (target/sam/lambda/<name>/bootstrap, 1.2 GB) are what SAM
    // copied from; the build directory has its own, so the rest of the suite gets that disk back.
    let copies = workspace().join("target/sam/lambda");
    std::fs::remove_dir_all(&copies).unwrap_or_else(|e| panic!("remove {}: {e}", copies.display()));
    build_dir
}

/// The GLIBC symbol versions a binary names (`GLIBC_2.34` -> (2, 34)), read from its dynamic string
/// table's version names; `GLIBC_PRIVATE` and the like are not versions.
fn glibc_versions(binary: &[u8]) -> BTreeSet<(u32, u32)> {
    let mut versions = BTreeSet::new();
    let marker = b"GLIBC_";
    let mut at = 0;
    while let Some(offset) = binary[at..].windows(marker.len()).position(|w| w == marker) {
        let start = at + offset + marker.len();
        let text: String = binary[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit() || **b == b'.')
            .map(|b| *b as char)
            .collect();
        let mut parts = text.split('.').map(str::parse::<u32>);
        if let (Some(Ok(major)), Some(Ok(minor))) = (parts.next(), parts.next()) {
            versions.insert((major, minor));
        }
        at = start;
    }
    versions
}

fn check_artifact(logical_id: &str, bootstrap: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let bytes = std::fs::read(bootstrap).map_err(|e| format!("{logical_id}: no {}: {e}", bootstrap.display()))?;
    let mode = std::fs::metadata(bootstrap).unwrap().permissions().mode();
    if bytes.get(..4) != Some(b"\x7fELF".as_slice()) {
        return Err(format!("{logical_id}: bootstrap is not an ELF file"));
    }
    // e_machine (bytes 18..20, little-endian): 0x3e is x86-64.
    if bytes.get(18..20) != Some([0x3e, 0x00].as_slice()) {
        return Err(format!("{logical_id}: bootstrap is not an x86-64 binary"));
    }
    if mode & 0o111 == 0 {
        return Err(format!("{logical_id}: bootstrap is not executable (mode {mode:o})"));
    }
    let versions = glibc_versions(&bytes);
    match versions.last() {
        None => Err(format!(
            "{logical_id}: bootstrap names no GLIBC version (not a glibc binary?)"
        )),
        Some(newest) if *newest > NEWEST_GLIBC => Err(format!(
            "{logical_id}: bootstrap needs GLIBC {}.{}, provided.al2023 has {}.{}",
            newest.0, newest.1, NEWEST_GLIBC.0, NEWEST_GLIBC.1
        )),
        Some(_) => Ok(()),
    }
}

fn sample_event(binary: &str) -> Value {
    let path = workspace().join("events").join(format!("{binary}.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

#[test]
fn sam_build_makes_a_bootstrap_for_every_function_that_starts_and_serves() {
    let template = Template::load(&workspace_template_path()).unwrap();
    let build_dir = sam_build(&template);
    let functions = template.functions().unwrap();

    let problems: Vec<String> = functions
        .iter()
        .filter_map(|f| check_artifact(&f.logical_id, &build_dir.join(&f.logical_id).join("bootstrap")).err())
        .collect();
    assert!(problems.is_empty(), "sam build's artifacts:\n{}", problems.join("\n"));

    // The built template points every function at its own artifact directory.
    let built: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(build_dir.join("template.yaml")).unwrap()).unwrap();
    for function in &functions {
        let code_uri = built["Resources"][function.logical_id.as_str()]["Properties"]["CodeUri"].as_str();
        assert_eq!(
            code_uri,
            Some(function.logical_id.as_str()),
            "{}'s CodeUri",
            function.logical_id
        );
    }

    let artifacts = build_dir.clone();
    let stack = parley_tests::start_stack_with(&parley_tests::RATE_LIMITS_OFF, move |options| {
        options.build = false;
        options.artifacts = Some(artifacts);
    });
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let health = runtime.block_on(stack.call("GET", "/health", None, None));
    assert_eq!(
        health.status, 200,
        "GET /health from the sam-built function: {}",
        health.body
    );

    let mut failures = Vec::new();
    for function in &functions {
        match stack.invoke(&function.logical_id, sample_event(&function.binary)) {
            Ok(answer) => {
                let status = answer.get("statusCode").and_then(Value::as_u64).unwrap_or(200);
                if status >= 500 {
                    failures.push(format!("{} answered {status}: {answer}", function.logical_id));
                }
            }
            // The handler's own error for a sample whose resources do not exist here is an answer.
            Err(error) if error.starts_with("function error") => {}
            Err(error) => failures.push(format!("{}: {error}", function.logical_id)),
        }
    }
    assert!(
        failures.is_empty(),
        "sam-built functions that did not serve:\n{}",
        failures.join("\n")
    );
    for function in &functions {
        let stats = stack.stats(&function.logical_id).unwrap_or_default();
        assert!(
            stats.cold_starts >= 1,
            "{} never started: {stats:?}",
            function.logical_id
        );
    }
}

#[test]
fn the_glibc_check_reads_symbol_versions() {
    let bytes = b"\0GLIBC_2.17\0GLIBC_2.34\0GLIBC_PRIVATE\0GLIBC_2.3.4\0";
    let versions = glibc_versions(bytes);
    assert_eq!(versions.into_iter().collect::<Vec<_>>(), [(2, 3), (2, 17), (2, 34)]);
    let too_new = b"\x7fELF";
    assert!(glibc_versions(too_new).is_empty());
}
