//! Per-container caches: other users' profiles for a few seconds (and fresh after this container's own
//! write), one's own profile always fresh, and the hit ratio published per invocation.

use parley::api::users;
use parley::store::Usage;
use parley_tests::{stack, TestApp, TestRequest};
use serde_json::{json, Value};

/// One request of the user's own, so the bearer token's session check (one read per session and
/// container every 4 s: `auth::session_state`) is not counted in what follows.
async fn warm_session_check(app: &TestApp, token: &str) {
    let me = app
        .call(users::get_me, TestRequest::new("GET", "/users/me").bearer(token))
        .await;
    assert_eq!(me.status, 200, "{}", me.body);
}

async fn get_user(app: &TestApp, token: &str, id: &str) -> (Value, Usage) {
    let before = app.context.store.usage();
    let response = app
        .call(
            users::get_user,
            TestRequest::route("GET", "/users/{userId}", &[("userId", id)]).bearer(token),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.body);
    (response.body, app.context.store.usage() - before)
}

#[tokio::test]
async fn another_users_profile_is_read_once_and_refreshed_by_this_containers_writes() {
    let app = TestApp::new().await;
    let alice = app.user("cachealice").await;
    let bob = app.user("cachebob").await;
    warm_session_check(&app, &bob.token).await;

    let (first, cold) = get_user(&app, &bob.token, &alice.id).await;
    let (second, warm) = get_user(&app, &bob.token, &alice.id).await;
    assert_eq!(first, second);
    assert_eq!(warm.calls + 1, cold.calls, "the second read is served from the cache");
    assert!(warm.read_units < cold.read_units, "{warm:?} vs {cold:?}");

    // Alice renames herself through this container: its cache follows at once.
    let renamed = app
        .call(
            users::update_me,
            TestRequest::new("PATCH", "/users/me")
                .bearer(&alice.token)
                .json(json!({ "displayName": "Alice Cached" })),
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    let (after, _) = get_user(&app, &bob.token, &alice.id).await;
    assert_eq!(after["displayName"], "Alice Cached");
}

#[tokio::test]
async fn ones_own_profile_is_never_served_from_the_cache() {
    let app = TestApp::new().await;
    let alice = app.user("cacheself").await;
    warm_session_check(&app, &alice.token).await;
    let (_, first) = get_user(&app, &alice.token, &alice.id).await;
    let (_, second) = get_user(&app, &alice.token, &alice.id).await;
    assert_eq!(first.calls, second.calls, "both read the table");
    // A write from elsewhere (another container, here straight to the store) shows at once.
    app.context
        .store
        .update_profile(
            &alice.id,
            &parley::store::ProfilePatch {
                display_name: Some("Changed Elsewhere".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let (me, _) = get_user(&app, &alice.token, &alice.id).await;
    assert_eq!(me["displayName"], "Changed Elsewhere");
}

async fn http(method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Value {
    let answer = stack().call(method, path, token, body).await;
    assert!(
        (200..300).contains(&answer.status),
        "{method} {path}: {}",
        answer.status
    );
    answer.body
}

#[tokio::test(flavor = "multi_thread")]
async fn hits_and_misses_are_published_with_each_invocation() {
    let mut users = Vec::new();
    for name in ["metrica", "metricb"] {
        let name = format!("{name}{}", &ulid::Ulid::generate().to_string()[18..].to_lowercase());
        let registered = http(
            "POST",
            "/auth/register",
            None,
            Some(json!({ "username": name, "password": "cache metrics" })),
        )
        .await;
        users.push((
            registered["user"]["id"].as_str().unwrap().to_owned(),
            registered["accessToken"].as_str().unwrap().to_owned(),
        ));
    }
    let path = format!("/users/{}", users[0].0);
    http("GET", &path, Some(&users[1].1), None).await;
    http("GET", &path, Some(&users[1].1), None).await;

    let metric_docs = |lines: &[String]| -> Vec<Value> {
        lines
            .iter()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|doc| doc.get("_aws").is_some() && doc.get("CacheHits").is_some())
            .collect()
    };
    let hits_and_misses = |docs: &[Value]| -> Vec<(f64, f64)> {
        docs.iter()
            .map(|doc| (doc["CacheHits"].as_f64().unwrap(), doc["CacheMisses"].as_f64().unwrap()))
            .collect()
    };
    let lines = stack()
        .logs_when("users-get", std::time::Duration::from_secs(5), |lines| {
            let counts = hits_and_misses(&metric_docs(lines));
            counts.contains(&(0.0, 1.0)) && counts.contains(&(1.0, 0.0))
        })
        .await;
    let metric_lines = metric_docs(&lines);
    let counts = hits_and_misses(&metric_lines);
    assert!(counts.contains(&(0.0, 1.0)), "the first read misses: {counts:?}");
    assert!(counts.contains(&(1.0, 0.0)), "the second read hits: {counts:?}");
    let declared = &metric_lines[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"];
    for name in ["CacheHits", "CacheMisses", "DynamoDBLatency"] {
        assert!(
            declared.as_array().unwrap().iter().any(|m| m["Name"] == name),
            "{name} is a declared metric: {declared}"
        );
    }
}
