//! The run command keeps the chat across a restart: DynamoDB Local's data lives in a folder.

use local_stack::{LocalStack, Options, Storage};
use serde_json::{json, Value};

async fn start(data: &std::path::Path) -> LocalStack {
    let mut options = Options::for_tests(local_stack::workspace_template());
    options.storage = Storage::Directory(data.to_path_buf());
    LocalStack::start(options).await.expect("the stack starts")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_keeps_the_accounts() {
    let data = std::env::temp_dir().join(format!("parley-restart-{}", ulid::Ulid::generate()));
    let client = reqwest::Client::new();
    let credentials = json!({ "username": "persistent", "password": "survives restarts" });

    let first = start(&data).await;
    let registered = client
        .post(format!("{}/auth/register", first.http_url()))
        .json(&credentials)
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    let user: Value = registered.json().await.unwrap();
    first.stop().await;

    let second = start(&data).await;
    let login = client
        .post(format!("{}/auth/login", second.http_url()))
        .json(&credentials)
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200, "the account is still there");
    let body: Value = login.json().await.unwrap();
    assert_eq!(body["user"]["id"], user["user"]["id"]);
    second.stop().await;
    std::fs::remove_dir_all(&data).ok();
}
