//! Lambda's limits hold on the local stack as on AWS:
//! - each function's reserved concurrency (template.yaml `ReservedConcurrentExecutions`): an invocation
//!   beyond it is throttled, which the HTTP API answers with 429 `{"message":"Too Many Requests"}`, and
//!   the function is not run; within it nothing is refused;
//! - the synchronous payload limit (6 MB): a body the HTTP API takes (up to 10 MB) but whose event is
//!   over it never reaches the function, and API Gateway answers 413 itself.

use parley_tests::{start_stack_with, tools::workspace, Stack};

/// A copy of the template in which the health function may run only once at a time; it lives under
/// `target/` so that the stack finds the workspace's binaries from it.
fn template_with_health_concurrency(reserved: u32) -> std::path::PathBuf {
    let template = std::fs::read_to_string(workspace().join("template.yaml")).unwrap();
    let start = template.find("\n  HealthFunction:\n").expect("the health function");
    let line = "      ReservedConcurrentExecutions: !If [ReserveConcurrency, 10, !Ref AWS::NoValue]\n";
    let at = start
        + template[start..]
            .find(line)
            .expect("the health function's reserved concurrency");
    let mut copy = template.clone();
    copy.replace_range(
        at..at + line.len(),
        &format!("      ReservedConcurrentExecutions: !If [ReserveConcurrency, {reserved}, !Ref AWS::NoValue]\n"),
    );
    let dir = workspace().join("target/parley-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("throttling-{}.yaml", std::process::id()));
    std::fs::write(&path, copy).unwrap();
    path
}

fn stack_with_template(path: std::path::PathBuf, parameters: &[(&str, &str)]) -> Stack {
    start_stack_with(parameters, move |options| options.template = path)
}

/// Twenty health checks at once: (answers 200, answers 429 with API Gateway's body, any other).
async fn twenty_at_once(stack: &Stack) -> (usize, usize, Vec<u16>) {
    let answers = futures_util::future::join_all((0..20).map(|_| stack.call("GET", "/health", None, None))).await;
    let ok = answers.iter().filter(|a| a.status == 200).count();
    let throttled = answers
        .iter()
        .filter(|a| a.status == 429 && a.body == serde_json::json!({ "message": "Too Many Requests" }))
        .count();
    let other = answers
        .iter()
        .filter(|a| a.status != 200 && a.status != 429)
        .map(|a| a.status)
        .collect();
    (ok, throttled, other)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invocations_beyond_a_functions_reserved_concurrency_are_throttled_with_429() {
    let stack = stack_with_template(template_with_health_concurrency(1), &[]);
    let (ok, throttled, other) = twenty_at_once(&stack).await;
    assert!(other.is_empty(), "only 200s and 429s: {other:?}");
    assert!(ok >= 1, "the one slot served at least one request");
    assert!(
        throttled >= 1,
        "twenty requests at once over one slot: some are throttled ({ok} served)"
    );
    // Throttling is no failure of the function: the next request, alone, is served.
    assert_eq!(stack.call("GET", "/health", None, None).await.status, 200);

    // A reserved concurrency of 0 turns a function off: every invocation is throttled.
    let stopped = stack_with_template(template_with_health_concurrency(0), &[]);
    assert_eq!(stopped.call("GET", "/health", None, None).await.status, 429);

    // With `ReservedConcurrency=none` the template reserves nothing, and nothing is throttled.
    let unreserved = stack_with_template(template_with_health_concurrency(1), &[("ReservedConcurrency", "none")]);
    let (ok, throttled, other) = twenty_at_once(&unreserved).await;
    assert_eq!((ok, throttled, other), (20, 0, vec![]), "no reservation, no throttling");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_body_over_lambdas_six_megabytes_is_refused_before_the_function_runs() {
    let stack = parley_tests::stack();
    let body_of = |bytes: usize| serde_json::json!({ "username": "x".repeat(bytes), "password": "correct horse" });
    // Over the API's 64 KiB, under Lambda's limit: the function itself refuses it, with its code.
    let answer = stack
        .call("POST", "/auth/register", None, Some(body_of(100 * 1024)))
        .await;
    assert_eq!(
        (answer.status, answer.body["error"]["code"].as_str()),
        (413, Some("payload_too_large"))
    );
    // 7 MB: under the HTTP API's 10 MB, over Lambda's 6 MB: API Gateway's own 413, no function ran.
    let answer = stack
        .call("POST", "/auth/register", None, Some(body_of(7 * 1024 * 1024)))
        .await;
    assert_eq!(
        (answer.status, answer.body.clone()),
        (413, serde_json::json!({ "message": "Request Entity Too Large" }))
    );
}

/// The HTTP API waits for a function at most its integration timeout (30 s on AWS; 50 ms here, where
/// a registration's password hashing takes longer) and then answers 504 itself, while the function
/// runs on to its end, as Lambda's does.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_answer_later_than_the_integration_timeout_is_a_504_and_the_function_runs_on() {
    let stack = start_stack_with(&parley_tests::RATE_LIMITS_OFF, |options| {
        options.http_integration_timeout = std::time::Duration::from_millis(50);
    });
    let answer = stack
        .call(
            "POST",
            "/auth/register",
            None,
            Some(serde_json::json!({ "username": "late_lara", "password": "correct horse battery" })),
        )
        .await;
    assert_eq!(
        (answer.status, answer.body),
        (504, serde_json::json!({ "message": "Endpoint request timed out" }))
    );
    let finished = |lines: &[String]| lines.iter().any(|l| l.contains("\"DynamoDBCalls\""));
    let lines = stack
        .logs_when("auth-register", std::time::Duration::from_secs(30), finished)
        .await;
    assert!(
        finished(&lines),
        "the registration ran to its end after the 504: {lines:?}"
    );
}
