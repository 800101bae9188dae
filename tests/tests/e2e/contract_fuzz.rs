//! Property-based fuzzing of the running local stack from openapi.yaml, with Schemathesis (pinned in
//! infra/contract-checks/requirements.txt, configured by infra/contract-checks/schemathesis.toml): no
//! 500, no response that breaks its schema, status code or content type, no schema-violating request
//! accepted, no request that crashes a function (even where the gateway answered 502).
//!
//! A stack of its own, without rate limits (every request comes from 127.0.0.1). Before the run the
//! test signs users up and creates what the routes' path parameters name (groups with members, a direct
//! conversation, messages, a thread reply, a reaction, an uploaded attachment, spare sessions), so the
//! generated requests reach the handlers with real ids; Schemathesis takes them from dictionaries.
//! Bounded and repeatable: a fixed seed and a fixed number of cases per operation and phase.
//!
//! Each finding the fuzzer made is fixed and has its own regression test in e2e/fuzz_findings.rs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use parley_tests::tools::{python_tools, workspace};
use parley_tests::{start_stack, Stack, RATE_LIMITS_OFF};
use serde_json::{json, Value};

const PASSWORD: &str = "fuzzing the stack";

/// What the run authenticates with, and the ids it draws from.
struct Fixtures {
    /// The fuzzer's access token: every operation but the session routes.
    token: String,
    /// Another user's sessions, for `/auth/sessions*` and for `/auth/logout`.
    sessions_token: String,
    logout_token: String,
    /// Dictionary name (infra/contract-checks/schemathesis.toml) and its entries.
    dictionaries: Vec<(&'static str, Vec<String>)>,
}

struct Client<'a> {
    stack: &'a Stack,
    http: reqwest::Client,
}

impl Client<'_> {
    async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Value {
        let mut request = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.stack.http_url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request.send().await.expect("the gateway answers");
        let status = answer.status();
        let body: Value = answer.json().await.unwrap_or(Value::Null);
        assert!(
            status.is_success(),
            "preparing the fuzz run: {method} {path} answered {status}: {body}"
        );
        body
    }

    /// Signs `username` up; (user id, access token, refresh token).
    async fn register(&self, username: &str) -> (String, String) {
        let body = self
            .call(
                "POST",
                "/auth/register",
                None,
                Some(json!({ "username": username, "password": PASSWORD })),
            )
            .await;
        (id(&body["user"]), text(&body["accessToken"]))
    }

    /// Another session of `username`: (session id, access token, refresh token).
    async fn login(&self, username: &str) -> (String, String, String) {
        let body = self
            .call(
                "POST",
                "/auth/login",
                None,
                Some(json!({ "username": username, "password": PASSWORD })),
            )
            .await;
        let token = text(&body["accessToken"]);
        let sessions = self.call("GET", "/auth/sessions", Some(&token), None).await;
        let current = sessions["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["current"] == true)
            .expect("the listing marks the current session");
        (id(current), token, text(&body["refreshToken"]))
    }

    async fn send(&self, token: &str, conversation: &str, client_id: &str, extra: Value) -> String {
        let mut body = json!({ "clientMessageId": client_id, "body": format!("fuzz fixture {client_id}") });
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let message = self
            .call(
                "POST",
                &format!("/conversations/{conversation}/messages"),
                Some(token),
                Some(body),
            )
            .await;
        id(&message)
    }
}

fn text(value: &Value) -> String {
    value
        .as_str()
        .unwrap_or_else(|| panic!("a string, not {value}"))
        .to_owned()
}

fn id(value: &Value) -> String {
    text(&value["id"])
}

async fn prepare(stack: &Stack) -> Fixtures {
    let client = Client {
        stack,
        http: reqwest::Client::new(),
    };
    let (fuzzer, token) = client.register("fuzzer").await;
    stack.grant_admin(&fuzzer).await;
    let (bob, bob_token) = client.register("bob").await;
    let (carol, _) = client.register("carol").await;
    let (dave, _) = client.register("dave").await;
    let (erin, erin_token) = client.register("erin").await;
    // The session routes' own user, with spare sessions to revoke and refresh tokens to rotate.
    client.register("sessions").await;
    let (_, sessions_token, _) = client.login("sessions").await;
    let (_, logout_token, _) = client.login("sessions").await;
    let mut spare_sessions = Vec::new();
    let mut refresh_tokens = Vec::new();
    for _ in 0..3 {
        let (session, _, refresh) = client.login("sessions").await;
        spare_sessions.push(session);
        refresh_tokens.push(refresh);
    }

    // A group the fuzzer owns, one it is a member of, a direct conversation, and one it is not in.
    let create = |token: String, body: Value| {
        let client = &client;
        async move { id(&client.call("POST", "/conversations", Some(&token), Some(body)).await) }
    };
    let owned = create(
        token.clone(),
        json!({ "type": "group", "name": "fuzzed group", "memberIds": [bob, carol] }),
    )
    .await;
    let joined = create(
        bob_token.clone(),
        json!({ "type": "group", "name": "bob's group", "memberIds": [fuzzer, dave] }),
    )
    .await;
    let direct = create(token.clone(), json!({ "type": "direct", "memberIds": [dave] })).await;
    let outside = create(
        erin_token.clone(),
        json!({ "type": "group", "name": "erin's group", "memberIds": [bob] }),
    )
    .await;

    let first = client.send(&token, &owned, "fixture-1", json!({})).await;
    let by_bob = client
        .send(&bob_token, &owned, "fixture-2", json!({ "mentions": [fuzzer] }))
        .await;
    let reply = client
        .send(&token, &owned, "fixture-3", json!({ "parentMessageId": first }))
        .await;
    let in_joined = client.send(&bob_token, &joined, "fixture-4", json!({})).await;
    let in_direct = client.send(&token, &direct, "fixture-5", json!({})).await;
    let outside_message = client.send(&erin_token, &outside, "fixture-6", json!({})).await;
    for reaction in ["+1", "%F0%9F%91%8D"] {
        client
            .call(
                "PUT",
                &format!("/conversations/{owned}/messages/{first}/reactions/{reaction}"),
                Some(&token),
                None,
            )
            .await;
    }

    // An uploaded attachment (on a message, so its download link is handed out) and one never uploaded.
    let reserved = client
        .call(
            "POST",
            &format!("/conversations/{owned}/attachments"),
            Some(&token),
            Some(json!({ "fileName": "notes.txt", "contentType": "text/plain", "size": 5 })),
        )
        .await;
    let mut upload = reqwest::Client::new().put(text(&reserved["uploadUrl"]));
    for (name, value) in reserved["uploadHeaders"].as_object().unwrap() {
        if !name.eq_ignore_ascii_case("content-length") {
            upload = upload.header(name, text(value));
        }
    }
    let uploaded = upload.body("notes").send().await.expect("the S3 server answers");
    assert!(uploaded.status().is_success(), "upload: {}", uploaded.status());
    let attachment = id(&reserved["attachment"]);
    let with_attachment = client
        .send(
            &token,
            &owned,
            "fixture-7",
            json!({ "body": "", "attachmentIds": [attachment] }),
        )
        .await;
    let pending = client
        .call(
            "POST",
            &format!("/conversations/{owned}/attachments"),
            Some(&token),
            Some(json!({ "fileName": "later.png", "contentType": "image/png", "size": 1024 })),
        )
        .await;

    Fixtures {
        token,
        sessions_token,
        logout_token,
        dictionaries: vec![
            ("conversations", vec![owned, joined, direct, outside]),
            (
                "messages",
                vec![
                    first,
                    by_bob,
                    reply,
                    in_joined,
                    in_direct,
                    outside_message,
                    with_attachment,
                ],
            ),
            ("users", vec![fuzzer, bob, carol, dave, erin]),
            (
                "usernames",
                ["fuzzer", "bob", "Carol", "nobody"].map(str::to_owned).to_vec(),
            ),
            ("sessions", spare_sessions),
            ("attachments", vec![attachment, id(&pending["attachment"])]),
            ("reactions", ["+1", "👍", "tada", "🎉"].map(str::to_owned).to_vec()),
            ("refresh-tokens", refresh_tokens),
        ],
    }
}

/// A libFuzzer-style dictionary: one quoted entry per line.
fn dictionary(entries: &[String]) -> String {
    entries
        .iter()
        .map(|e| format!("\"{}\"\n", e.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect()
}

/// The function binaries (one folder each under functions/).
fn functions() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(workspace().join("functions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Every function that failed an invocation (error, crash, timeout), with its panics, and the
/// gateway's remarks on dead or stopped instances; and how many invocations the functions had in all.
fn crashes(stack: &Stack) -> (Vec<String>, u64) {
    let mut found = Vec::new();
    let mut invocations = 0;
    for function in functions() {
        let Some(stats) = stack.stats(&function) else { continue };
        invocations += stats.invocations;
        if stats.errors > 0 {
            let panics: Vec<String> = stack
                .logs_of(&function)
                .into_iter()
                .filter(|l| l.contains("panicked") || l.contains("\"level\":\"ERROR\""))
                .take(5)
                .collect();
            found.push(format!(
                "{function}: {} failed invocations of {}\n    {}",
                stats.errors,
                stats.invocations,
                panics.join("\n    ")
            ));
        }
    }
    found.extend(
        stack
            .logs_of("gateway")
            .into_iter()
            .filter(|l| {
                ["exited", "timed out", "failed during init", "did not poll"]
                    .iter()
                    .any(|w| l.contains(w))
            })
            .map(|l| format!("gateway: {l}")),
    );
    (found, invocations)
}

fn run_directory(fixtures: &Fixtures) -> PathBuf {
    let run = workspace().join(".local").join("contract-fuzz");
    let _ = std::fs::remove_dir_all(&run);
    std::fs::create_dir_all(&run).unwrap();
    for file in ["schemathesis.toml", "fields_check.py"] {
        std::fs::copy(workspace().join("infra/contract-checks").join(file), run.join(file)).unwrap();
    }
    for (name, entries) in &fixtures.dictionaries {
        assert!(!entries.is_empty(), "dictionary {name} is empty");
        std::fs::write(run.join(format!("{name}.dict")), dictionary(entries)).unwrap();
    }
    run
}

/// `PARLEY_FUZZ_ARGS`: more `st run` options for a run by hand, split at spaces (a longer hunt:
/// `--max-examples 200 --continue-on-failure`; every exchange: `--report har`, in .local/contract-fuzz/).
fn extra_arguments() -> Vec<String> {
    std::env::var("PARLEY_FUZZ_ARGS")
        .map(|a| a.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

fn schemathesis(bin: &Path, run: &Path, document: &Path, stack: &Stack, fixtures: &Fixtures) -> (bool, String) {
    let output = Command::new(bin.join("st"))
        .arg("--config-file")
        .arg(run.join("schemathesis.toml"))
        .arg("run")
        .arg(document)
        .args(["--url", &stack.http_url, "--no-color"])
        .args(extra_arguments())
        // Its working files (Hypothesis's folder) stay in the run's folder, not in the checkout.
        .current_dir(run)
        .env("PARLEY_FUZZ_TOKEN", &fixtures.token)
        .env("PARLEY_FUZZ_SESSIONS_TOKEN", &fixtures.sessions_token)
        .env("PARLEY_FUZZ_LOGOUT_TOKEN", &fixtures.logout_token)
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", bin.join("st").display()));
    parley_tests::tools::outcome(&output)
}

#[test]
fn fuzzing_the_stack_from_its_openapi_document_finds_no_server_error_schema_break_or_crash() {
    let bin = python_tools("contract-checks");
    let stack = start_stack(&RATE_LIMITS_OFF);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let fixtures = runtime.block_on(prepare(&stack));
    let run = run_directory(&fixtures);
    let document = workspace().join("openapi.yaml");

    let started = Instant::now();
    let (passed, report) = schemathesis(&bin, &run, &document, &stack, &fixtures);
    let took = started.elapsed();
    // What the requests left for the stream and queue workers (the search index, deletions) runs too.
    stack.with_blocking(|s| {
        tokio::runtime::Handle::current().block_on(async {
            let _ = tokio::time::timeout(Duration::from_secs(15), s.streams_idle()).await;
        })
    });
    let (crashed, invocations) = crashes(&stack);
    let still_signed_in = runtime.block_on(async {
        reqwest::Client::new()
            .get(format!("{}/users/me", stack.http_url))
            .bearer_auth(&fixtures.token)
            .send()
            .await
            .expect("the gateway answers")
            .status()
    });

    eprintln!("schemathesis ran for {took:.1?}; the functions were invoked {invocations} times");
    assert!(
        passed,
        "schemathesis found failures (reproduce each with its curl command against a stack \
         started with the rate limits off):\n{report}"
    );
    assert!(
        crashed.is_empty(),
        "requests made functions fail (the gateway answered 502 or retried):\n{}\n\nschemathesis:\n{report}",
        crashed.join("\n")
    );
    assert!(
        still_signed_in.is_success(),
        "the fuzzer's session did not survive the run ({still_signed_in}): most requests were 401s"
    );
    assert!(
        report.contains("Test cases:") && invocations > 1000,
        "schemathesis did not run its cases ({invocations} invocations):\n{report}"
    );
}
