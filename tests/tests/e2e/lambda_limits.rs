//! Lambda's limits hold on the local stack as on AWS:
//! - each function's reserved concurrency (template.yaml `ReservedConcurrentExecutions`): an invocation
//!   beyond it is throttled, which the HTTP API answers with 429 `{"message":"Too Many Requests"}`, and
//!   the function is not run; within it nothing is refused;
//! - the synchronous payload limit (6 MB): a body the HTTP API takes (up to 10 MB) but whose event is
//!   over it never reaches the function, and API Gateway answers 413 itself;
//! - Lambda's Invoke API: 6 MB for `RequestResponse`, 256 KB for `Event` (413
//!   `RequestEntityTooLargeException`, nothing runs), `lambda:InvokeFunction` checked against the
//!   caller's role, and a failing asynchronous event retried twice, then sent to the function's
//!   dead-letter queue.

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

/// The gateway port's Lambda Invoke endpoint for `function`.
fn invoke_url(stack: &Stack, function: &str) -> String {
    format!(
        "{}/2015-03-31/functions/{function}/invocations",
        stack.ws_url.replacen("ws://", "http://", 1)
    )
}

/// A SigV4 `Authorization` header with `key` (the stand-ins read the caller from it).
fn signed_by(key: &str) -> String {
    format!("AWS4-HMAC-SHA256 Credential={key}/20261207/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=0")
}

async fn invoke(stack: &Stack, function: &str, kind: &str, body: String, caller: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(invoke_url(stack, function))
        .header("x-amz-invocation-type", kind)
        .body(body);
    if let Some(key) = caller {
        request = request.header("authorization", signed_by(key));
    }
    request.send().await.expect("the gateway answers")
}

/// A JSON event of about `bytes` bytes.
fn event_of(bytes: usize) -> String {
    serde_json::json!({ "pad": "x".repeat(bytes) }).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_invoke_api_holds_lambdas_payload_limits_and_the_callers_rights() {
    let stack = parley_tests::stack();
    // Asynchronous: 256 KB at most; nothing is queued or run.
    let answer = invoke(stack, "HealthFunction", "Event", event_of(300 * 1024), None).await;
    assert_eq!(answer.status(), 413);
    assert_eq!(answer.headers()["x-amzn-errortype"], "RequestEntityTooLargeException");
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(
        body["message"],
        "Request must be smaller than 262144 bytes for the InvokeFunction operation"
    );
    assert!(stack
        .logs_of("gateway")
        .iter()
        .any(|l| l == "HealthFunction: an Event invocation over Lambda's limit of 262144 bytes was refused"));
    // The same event synchronously is within 6 MB: it runs (and the HTTP function cannot read it).
    let answer = invoke(stack, "HealthFunction", "RequestResponse", event_of(300 * 1024), None).await;
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["x-amz-function-error"], "Unhandled");
    // Synchronous: 6 MB at most.
    let answer = invoke(
        stack,
        "HealthFunction",
        "RequestResponse",
        event_of(7 * 1024 * 1024),
        None,
    )
    .await;
    assert_eq!(answer.status(), 413);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(
        body["message"],
        "Request must be smaller than 6291456 bytes for the InvokeFunction operation"
    );
    // A dry run only checks the caller's rights.
    let answer = invoke(stack, "health", "DryRun", "{}".to_owned(), None).await;
    assert_eq!(answer.status(), 204);
    // A function whose role has no lambda:InvokeFunction is refused as Lambda refuses it.
    let key = local_stack::access_key_for("MessagesSendFunction");
    let answer = invoke(stack, "HealthFunction", "Event", "{}".to_owned(), Some(&key)).await;
    assert_eq!(answer.status(), 403);
    assert_eq!(answer.headers()["x-amzn-errortype"], "AccessDeniedException");
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(
        body["message"],
        "User: arn:aws:sts::123456789012:assumed-role/MessagesSendFunctionRole/MessagesSendFunction is not \
         authorized to perform: lambda:InvokeFunction on resource: \
         arn:aws:lambda:us-east-1:123456789012:function:HealthFunction because no identity-based policy allows \
         the lambda:InvokeFunction action"
    );
    // Unknown functions and invocation types.
    let answer = invoke(stack, "NoSuchFunction", "Event", "{}".to_owned(), None).await;
    assert_eq!(answer.status(), 404);
    assert_eq!(answer.headers()["x-amzn-errortype"], "ResourceNotFoundException");
    let answer = invoke(stack, "HealthFunction", "Later", "{}".to_owned(), None).await;
    assert_eq!(answer.status(), 400);
    let answer = invoke(stack, "HealthFunction", "Event", "not json".to_owned(), None).await;
    assert_eq!(answer.status(), 400);
    assert_eq!(answer.headers()["x-amzn-errortype"], "InvalidRequestContentException");
}

/// A copy of the template whose health function has the alarm responder's dead-letter queue.
fn template_with_health_dead_letter_queue() -> std::path::PathBuf {
    let template = std::fs::read_to_string(workspace().join("template.yaml")).unwrap();
    let start = template.find("\n  HealthFunction:\n").expect("the health function");
    let at = start + template[start..].find("    Properties:\n").expect("its properties") + "    Properties:\n".len();
    let mut copy = template.clone();
    copy.insert_str(
        at,
        "      DeadLetterQueue:\n        Type: SQS\n        TargetArn: !GetAtt AlarmResponderDeadLetterQueue.Arn\n",
    );
    let dir = workspace().join("target/parley-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("dead-letter-{}.yaml", std::process::id()));
    std::fs::write(&path, copy).unwrap();
    path
}

/// An asynchronous event the function fails on runs three times (retried after 1 s and 2 s here,
/// one and two minutes on AWS), then lands in the dead-letter queue with Lambda's attributes.
#[tokio::test(flavor = "multi_thread")]
async fn a_failing_asynchronous_event_is_retried_twice_then_dead_lettered() {
    let stack = stack_with_template(template_with_health_dead_letter_queue(), &parley_tests::RATE_LIMITS_OFF);
    let stack: &'static Stack = Box::leak(Box::new(stack));
    let before = stack.stats("HealthFunction").unwrap().invocations;
    // Not an HTTP API event: the function's runtime cannot read it and reports an error.
    let answer = invoke(
        stack,
        "HealthFunction",
        "Event",
        r#"{"not":"an HTTP event"}"#.to_owned(),
        None,
    )
    .await;
    assert_eq!(answer.status(), 202);
    let request_id = answer.headers()["x-amzn-requestid"].to_str().unwrap().to_owned();
    let (sqs, queue) = stack
        .with(|s| (s.sqs_url(), s.queue_url("AlarmResponderDeadLetterQueue").unwrap()))
        .await;
    let client = reqwest::Client::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let message = loop {
        let received: serde_json::Value = client
            .post(&sqs)
            .header("x-amz-target", "AmazonSQS.ReceiveMessage")
            .header("content-type", "application/x-amz-json-1.0")
            .body(
                serde_json::json!({ "QueueUrl": queue, "MessageAttributeNames": ["All"], "WaitTimeSeconds": 1 })
                    .to_string(),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(message) = received["Messages"].get(0) {
            break message.clone();
        }
        assert!(std::time::Instant::now() < deadline, "nothing was dead-lettered");
    };
    assert_eq!(message["Body"], r#"{"not":"an HTTP event"}"#);
    let attributes = &message["MessageAttributes"];
    assert_eq!(attributes["RequestID"]["StringValue"], request_id.as_str());
    assert_eq!(attributes["ErrorCode"]["StringValue"], "200");
    assert!(
        attributes["ErrorMessage"]["StringValue"]
            .as_str()
            .is_some_and(|m| m.starts_with("function error")),
        "{message}"
    );
    assert_eq!(stack.stats("HealthFunction").unwrap().invocations - before, 3);
    let retries: Vec<String> = stack
        .logs_of("gateway")
        .into_iter()
        .filter(|l| l.contains(&request_id))
        .collect();
    assert_eq!(retries.len(), 3, "{retries:#?}");
    assert!(retries[2].ends_with("sent to its dead-letter queue"), "{retries:#?}");
}
