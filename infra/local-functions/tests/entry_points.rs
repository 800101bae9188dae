//! The combined binary answers to every function of `functions/` and refuses any other name.
//!
//! The local stack's debug build also names this test (`cargo build --workspace --bin
//! parley-functions --test entry_points`): building a test target makes cargo resolve features as
//! `cargo test --workspace` does, so that build reuses the test build's compiled dependencies
//! instead of compiling the SDKs and the shared crate a second time with other features.

use std::path::Path;
use std::process::Command;

fn functions() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../functions");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.join("src/main.rs").is_file())
        .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn an_unknown_or_missing_name_is_refused_with_the_list_of_every_function() {
    for arguments in [&["no-such-function"][..], &[]] {
        let output = Command::new(env!("CARGO_BIN_EXE_parley-functions"))
            .args(arguments)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{arguments:?}");
        let usage = String::from_utf8_lossy(&output.stderr);
        let listed: Vec<&str> = usage
            .trim()
            .rsplit_once("one of: ")
            .expect("the usage lists the functions")
            .1
            .split(", ")
            .collect();
        assert_eq!(listed, functions(), "{usage}");
    }
}

#[test]
fn a_known_name_starts_that_function() {
    // With no environment a function stops at its cold start, naming the first setting it misses: proof
    // the name reached a function's entry point (an unknown name exits 2 before any of that).
    let output = Command::new(env!("CARGO_BIN_EXE_parley-functions"))
        .arg("health")
        .env_clear()
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap();
    let error = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{error}");
    assert!(error.contains("TABLE_NAME"), "{error}");
}
