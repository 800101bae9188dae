//! `GET /health` answers 200 when DynamoDB answers, and 503 naming the check when it does not.

use parley::api::health::health;
use parley::config::Config;
use parley::AppContext;
use parley_tests::{TestApp, TestRequest, TEST_TOKEN_SECRET};
use serde_json::json;

#[tokio::test]
async fn healthy_when_dynamodb_answers() {
    let app = TestApp::new().await;
    let response = app.call(health, TestRequest::new("GET", "/health")).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body["status"], "ok");
    assert_eq!(response.body["checks"], json!({ "dynamodb": "ok" }));
    assert!(response.body["version"].is_string());
}

#[tokio::test]
async fn unavailable_when_dynamodb_does_not() {
    let sdk = dynamodb_local::sdk_config("http://127.0.0.1:1").await;
    let config = Config::from_lookup(|name| match name {
        "TABLE_NAME" => Some("nowhere".to_owned()),
        "TOKEN_SECRET" => Some(TEST_TOKEN_SECRET.to_owned()),
        _ => None,
    })
    .unwrap();
    let context: &'static AppContext = Box::leak(Box::new(AppContext::new(config, &sdk)));
    let event = TestRequest::new("GET", "/health").to_event();
    let request = lambda_http::request::from_str(&event.to_string()).unwrap();
    let response = parley_tests::TestResponse::from(parley::http::handle(context, health, request).await);
    assert_eq!(response.status, 503);
    assert_eq!(response.body["status"], "unavailable");
    assert_ne!(response.body["checks"]["dynamodb"], "ok");
}
