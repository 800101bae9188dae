//! The command line refuses targets off this machine before sending anything.

use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

fn parley_load(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_parley-load"))
        .args(args)
        .output()
        .expect("run parley-load");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_remote_url_is_refused_with_a_reason() {
    for (url, ws) in [
        ("http://example.com", "ws://example.com"),
        ("http://10.0.0.1:3000", "ws://10.0.0.1:3001"),
        ("https://chat.example.org", "wss://ws.example.org"),
    ] {
        let (code, stderr) = parley_load(&["--scenario", "normal", "--short", "--url", url, "--ws-url", ws]);
        assert_eq!(code, Some(2), "{url}: {stderr}");
        assert!(stderr.contains("refusing to load-test"), "{url}: {stderr}");
        assert!(stderr.contains("--allow-remote"), "{stderr}");
    }
}

#[test]
fn nothing_is_sent_to_the_loopback_half_when_the_other_half_is_remote() {
    // A listener on loopback stands in for the HTTP API: the refusal must come before any connection.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (code, stderr) = parley_load(&["--short", "--url", &url, "--ws-url", "ws://192.168.1.20:3001"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("192.168.1.20"), "{stderr}");
    std::thread::sleep(Duration::from_millis(100));
    assert!(listener.accept().is_err(), "parley-load connected before refusing");
}

#[test]
fn allow_remote_passes_validation() {
    // Validation only: nothing is started or sent.
    let endpoints = load_test::target::check_endpoints("http://example.com", "ws://example.com", true).unwrap();
    assert_eq!(endpoints.http, "http://example.com");
    assert!(load_test::target::check_endpoints("http://example.com", "ws://example.com", false).is_err());
}

#[test]
fn flags_of_the_other_loop_are_usage_errors() {
    for args in [
        &["--closed-loop", "--send-rate", "5"][..],
        &["--think-ms", "500"],
        &["--list-rate", "-2"],
    ] {
        let (code, stderr) = parley_load(args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
    }
}

#[test]
fn help_lists_the_scenarios() {
    let output = Command::new(env!("CARGO_BIN_EXE_parley-load"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for word in [
        "normal",
        "peak",
        "stress",
        "spike",
        "soak",
        "--short",
        "--allow-remote",
        "--chart",
        "--json",
        "--closed-loop",
        "--send-rate",
        "--history-rate",
        "--list-rate",
        "--max-in-flight",
        "--users",
        "--group-size",
        "--duration",
        "RateLimitUserPerHour=1000000",
    ] {
        assert!(help.contains(word), "--help lacks {word}");
    }
}
