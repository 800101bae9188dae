//! The sample events in events/ (one per function, shaped as API Gateway sends them) go through their
//! handlers and succeed; and functions/, template.yaml and events/ list the same functions.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use k256::ecdsa::SigningKey;
use parley::api::{auth, users};
use parley::auth::wallet::personal_sign;
use parley_template::{workspace_template_path, Template};
use parley_tests::{TestApp, TestRequest, TestResponse};
use serde_json::{json, Value};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn names_in(dir: &str, keep: impl Fn(&Path) -> Option<String>) -> BTreeSet<String> {
    std::fs::read_dir(workspace().join(dir))
        .unwrap_or_else(|e| panic!("read {dir}: {e}"))
        .filter_map(|entry| keep(&entry.ok()?.path()))
        .collect()
}

fn template_binaries() -> BTreeSet<String> {
    let functions = Template::load(&workspace_template_path()).unwrap().functions().unwrap();
    let binaries: Vec<String> = functions.iter().map(|f| f.binary.clone()).collect();
    let unique: BTreeSet<String> = binaries.iter().cloned().collect();
    assert_eq!(
        unique.len(),
        binaries.len(),
        "a crate has more than one template entry: {binaries:?}"
    );
    unique
}

#[test]
fn every_function_crate_has_one_template_entry_and_one_sample_event() {
    let crates = names_in("functions", |p| {
        p.join("Cargo.toml")
            .is_file()
            .then(|| p.file_name().unwrap().to_string_lossy().into_owned())
    });
    let events = names_in("events", |p| {
        (p.extension()? == "json").then(|| p.file_stem().unwrap().to_string_lossy().into_owned())
    });
    let template = template_binaries();
    assert_eq!(crates, template, "functions/ and template.yaml differ");
    assert_eq!(events, template, "events/ and template.yaml differ");
}

#[test]
fn every_sample_event_matches_its_template_route() {
    for function in Template::load(&workspace_template_path()).unwrap().functions().unwrap() {
        let event = load_event(&function.binary);
        let route_keys: Vec<String> = function
            .http_routes
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect();
        assert!(
            route_keys.contains(&event["routeKey"].as_str().unwrap().to_owned()),
            "events/{}.json has routeKey {} but the template routes {route_keys:?}",
            function.binary,
            event["routeKey"]
        );
        assert_eq!(event["version"], "2.0");
        assert_eq!(event["requestContext"]["routeKey"], event["routeKey"]);
    }
}

fn load_event(name: &str) -> Value {
    let path = workspace().join("events").join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Replaces the sample's placeholder credentials and ids with live ones from this test's table.
async fn prepare(app: &TestApp, name: &str, mut event: Value) -> Value {
    let body: Value = event["body"]
        .as_str()
        .map(|b| serde_json::from_str(b).unwrap())
        .unwrap_or(Value::Null);
    let needs_user = event["headers"].get("authorization").is_some() || matches!(name, "auth-login" | "auth-refresh");
    if needs_user {
        let username = body["username"].as_str().unwrap_or("sampleuser");
        let password = body["password"].as_str().unwrap_or("sample-password");
        let signed_in = app
            .call(
                auth::register,
                TestRequest::new("POST", "/auth/register").json(json!({ "username": username, "password": password })),
            )
            .await;
        assert_eq!(signed_in.status, 201, "{}", signed_in.body);
        let signed_in = signed_in.body;
        if event["headers"].get("authorization").is_some() {
            event["headers"]["authorization"] = json!(format!("Bearer {}", signed_in["accessToken"].as_str().unwrap()));
        }
        let user_id = signed_in["user"]["id"].as_str().unwrap();
        if let Some(sample_id) = event["pathParameters"]["userId"].as_str().map(str::to_owned) {
            event["pathParameters"]["userId"] = json!(user_id);
            let path = event["rawPath"].as_str().unwrap().replace(&sample_id, user_id);
            event["rawPath"] = json!(path);
            event["requestContext"]["http"]["path"] = json!(path);
        }
        if let Some(ids) = event["queryStringParameters"]["ids"].as_str().map(str::to_owned) {
            let ids = ids.replacen(ids.split(',').next().unwrap(), user_id, 1);
            event["queryStringParameters"]["ids"] = json!(ids);
            event["rawQueryString"] = json!(format!("ids={}", ids.replace(',', "%2C")));
        }
        if name == "auth-refresh" {
            event["body"] = json!(json!({ "refreshToken": signed_in["refreshToken"] }).to_string());
        }
    }
    if name == "auth-wallet-verify" {
        // The address of the sample is that of this well-known test key; sign a live challenge with it.
        let key = SigningKey::from_slice(
            &hex::decode("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318").unwrap(),
        )
        .unwrap();
        let challenge = app
            .call(
                auth::wallet_challenge,
                TestRequest::new("POST", "/auth/wallet/challenge").json(json!({ "address": body["address"] })),
            )
            .await;
        let signature = personal_sign(&key, challenge.body["message"].as_str().unwrap());
        event["body"] = json!(json!({ "address": body["address"], "signature": signature }).to_string());
    }
    event
}

async fn run(app: &TestApp, name: &str, event: &Value) -> TestResponse {
    match name {
        "auth-register" => app.call_event(auth::register, event).await,
        "auth-login" => app.call_event(auth::login, event).await,
        "auth-refresh" => app.call_event(auth::refresh, event).await,
        "auth-logout" => app.call_event(auth::logout, event).await,
        "auth-wallet-challenge" => app.call_event(auth::wallet_challenge, event).await,
        "auth-wallet-verify" => app.call_event(auth::wallet_verify, event).await,
        "users-me-get" => app.call_event(users::get_me, event).await,
        "users-me-update" => app.call_event(users::update_me, event).await,
        "users-get" => app.call_event(users::get_user, event).await,
        "users-batch-get" => app.call_event(users::batch_get, event).await,
        other => panic!("no handler is known for events/{other}.json: add it here"),
    }
}

#[tokio::test]
async fn every_sample_event_succeeds_through_its_handler() {
    for name in template_binaries() {
        let app = TestApp::new().await;
        let event = prepare(&app, &name, load_event(&name)).await;
        let response = run(&app, &name, &event).await;
        assert!(
            (200..300).contains(&response.status),
            "events/{name}.json answered {}: {}",
            response.status,
            response.body
        );
        if name == "users-batch-get" {
            assert_eq!(
                response.body["items"].as_array().unwrap().len(),
                1,
                "the live id is found, the sample one is not"
            );
        }
    }
}

#[tokio::test]
async fn the_samples_placeholder_token_is_refused() {
    let app = TestApp::new().await;
    let response = run(&app, "users-me-get", &load_event("users-me-get")).await;
    response.assert_error(401, "unauthorized");
}
