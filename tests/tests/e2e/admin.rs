//! `GET /admin/metrics` end to end: the real function reads CloudWatch through aws-sdk-cloudwatch, which
//! the local stack answers from the metric lines the functions printed.

use parley_tests::stack;
use serde_json::{json, Value};

async fn call(method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let answer = stack().call(method, path, token, body).await;
    (answer.status, answer.body)
}

async fn register(prefix: &str) -> (String, String) {
    let name = format!("{prefix}{}", &ulid::Ulid::generate().to_string()[18..].to_lowercase());
    let (status, body) = call(
        "POST",
        "/auth/register",
        None,
        Some(json!({ "username": name, "password": "admin metrics" })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    (
        body["user"]["id"].as_str().unwrap().to_owned(),
        body["accessToken"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn only_admins_read_the_metrics_and_bad_windows_are_refused() {
    let (_, member) = register("notadmin").await;
    let (status, body) = call("GET", "/admin/metrics", None, None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthorized")));
    let (status, body) = call("GET", "/admin/metrics", Some(&member), None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );

    let (admin_id, admin) = register("admin").await;
    stack().grant_admin(&admin_id).await;
    for bad in ["0", "-5", "1441", "ten", "1.5"] {
        let (status, body) = call("GET", &format!("/admin/metrics?minutes={bad}"), Some(&admin), None).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("validation_failed")),
            "minutes={bad}: {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn admins_see_latency_errors_cold_starts_and_capacity_per_function() {
    let (admin_id, admin) = register("metricsadmin").await;
    stack().grant_admin(&admin_id).await;
    for _ in 0..5 {
        assert_eq!(call("GET", "/users/me", Some(&admin), None).await.0, 200);
    }
    let missing = format!("/users/{}", ulid::Ulid::generate());
    assert_eq!(call("GET", &missing, Some(&admin), None).await.0, 404);
    // The report is made of the metric lines the stack has read: wait until the calls' lines are in.
    let within = std::time::Duration::from_secs(5);
    let metric_docs = |lines: &[String]| -> Vec<Value> {
        lines
            .iter()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|doc| doc.get("_aws").is_some())
            .collect()
    };
    stack()
        .logs_when("users-me-get", within, |lines| metric_docs(lines).len() >= 5)
        .await;
    let users_get = stack()
        .logs_when("users-get", within, |lines| {
            metric_docs(lines).iter().any(|doc| doc["ErrorCode"] == "not_found")
        })
        .await;

    let (status, report) = call("GET", "/admin/metrics?minutes=10", Some(&admin), None).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["minutes"], 10);
    let functions = report["functions"].as_array().unwrap();
    let of = |name: &str| {
        functions
            .iter()
            .find(|f| f["function"] == name)
            .unwrap_or_else(|| panic!("{name} in {report:#}"))
    };
    let me = of("UsersMeGetFunction");
    assert!(me["invocations"].as_u64().unwrap() >= 5, "{me}");
    let latency = &me["latencyMs"];
    let (p50, p95, p99) = (
        latency["p50"].as_f64().unwrap(),
        latency["p95"].as_f64().unwrap(),
        latency["p99"].as_f64().unwrap(),
    );
    assert!(0.0 < p50 && p50 <= p95 && p95 <= p99, "{latency}");
    assert!(me["coldStarts"].as_u64().unwrap() >= 1, "{me}");
    assert!(me["readCapacityUnits"].as_f64().unwrap() > 0.0, "{me}");
    assert!(me["writeCapacityUnits"].is_number(), "{me}");

    let get = of("UsersGetFunction");
    assert!(get["errors4xx"].as_u64().unwrap() >= 1, "{get}");
    assert!(get["clientErrorRate"].as_f64().unwrap() > 0.0, "{get}");
    assert_eq!(get["errors5xx"], 0, "{get}");
    assert_eq!(get["errorRate"].as_f64(), Some(0.0), "{get}");

    // Errors are also counted by their error code (docs/API-GUIDE.md "Errors").
    let by_code = metric_docs(&users_get)
        .into_iter()
        .find(|doc| doc["ErrorCode"] == "not_found")
        .expect("an Errors metric for not_found");
    assert_eq!(by_code["Errors"], 1.0);
    assert_eq!(
        by_code["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["Function", "ErrorCode"], ["Function"], []])
    );
}
