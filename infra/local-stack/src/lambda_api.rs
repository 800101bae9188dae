//! Lambda's Invoke API (`POST /2015-03-31/functions/{FunctionName}/invocations`, what `aws lambda
//! invoke` and `aws-sdk-lambda` call) for the template's functions, with Lambda's limits:
//!
//! - `RequestResponse` (the default): the event at most 6 MB (6,291,456 bytes), the answer 200 with the
//!   function's result, or with `X-Amz-Function-Error: Unhandled` and its error; a throttle is 429.
//! - `Event` (asynchronous): the event at most 256 KB (262,144 bytes), answered 202 before the function
//!   runs. A failed run is retried twice, after one and then two minutes as Lambda does
//!   (`Options::lambda_async_retry_delay` shortens them for tests); a throttled one is retried without
//!   counting, for up to the six hours an event may age. An event that fails every attempt goes to the
//!   function's `DeadLetterQueue` (SQS) when it has one, with Lambda's `RequestID`, `ErrorCode` and
//!   `ErrorMessage` attributes, and is logged either way.
//! - `DryRun`: 204 once the caller may invoke.
//!
//! Over a limit the answer is 413 `RequestEntityTooLargeException` and nothing runs. Calls with a
//! function's key are checked against its role (`lambda:InvokeFunction` on the callee's ARN). The
//! function may be named by its logical id, its binary's name, or its ARN (a qualifier is ignored:
//! there is one version locally).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Request, Response, StatusCode};
use serde_json::json;

use crate::iam::{check, Iam, Role};
use crate::ids;
use crate::logs::LogBook;
use crate::runtime::{FunctionPool, InvokeError, MAX_SYNC_PAYLOAD_BYTES};
use crate::sqs::{Attribute, AttributeData, NewMessage, Queue, Sqs};

type HttpResponse = Response<Full<Bytes>>;

/// Lambda's limit on an asynchronous invocation's event: 256 KB.
pub const MAX_ASYNC_PAYLOAD_BYTES: usize = 256 * 1024;
/// Retries of a failed asynchronous invocation (Lambda's default `MaximumRetryAttempts`).
const ASYNC_RETRIES: u32 = 2;
/// How long Lambda keeps trying a throttled asynchronous event (`MaximumEventAgeInSeconds`).
const MAX_EVENT_AGE: Duration = Duration::from_secs(6 * 3600);

const PATH_PREFIX: &str = "/2015-03-31/functions/";

/// Whether a request on the gateway's WebSocket port is a Lambda Invoke call.
pub fn serves<B>(request: &Request<B>) -> bool {
    request.method() == hyper::Method::POST
        && request
            .uri()
            .path()
            .strip_prefix(PATH_PREFIX)
            .is_some_and(|rest| rest.ends_with("/invocations"))
}

pub struct LambdaApi {
    /// By logical id.
    pools: HashMap<String, Arc<FunctionPool>>,
    /// Each function's dead-letter queue, by logical id.
    dead_letters: HashMap<String, Arc<Queue>>,
    sqs: Arc<Sqs>,
    iam: Option<Arc<Iam>>,
    logs: Arc<LogBook>,
    retry_delay: Duration,
}

/// The error document of Lambda's REST-JSON protocol.
fn error(status: StatusCode, kind: &str, message: &str) -> HttpResponse {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("x-amzn-errortype", kind)
        .header("x-amzn-requestid", ids::invocation_id())
        .body(Full::new(Bytes::from(
            json!({ "Type": "User", "message": message }).to_string(),
        )))
        .unwrap_or_default()
}

fn too_large(limit: usize) -> HttpResponse {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "RequestEntityTooLargeException",
        &format!("Request must be smaller than {limit} bytes for the InvokeFunction operation"),
    )
}

impl LambdaApi {
    pub fn new(
        pools: HashMap<String, Arc<FunctionPool>>,
        dead_letters: HashMap<String, Arc<Queue>>,
        sqs: Arc<Sqs>,
        iam: Option<Arc<Iam>>,
        logs: Arc<LogBook>,
        retry_delay: Duration,
    ) -> Arc<Self> {
        Arc::new(LambdaApi {
            pools,
            dead_letters,
            sqs,
            iam,
            logs,
            retry_delay,
        })
    }

    /// The function a path names: `/2015-03-31/functions/<name or ARN>/invocations`.
    fn function(&self, path: &str) -> Option<(&String, &Arc<FunctionPool>)> {
        let name = crate::url::percent_decode(path.strip_prefix(PATH_PREFIX)?.strip_suffix("/invocations")?);
        // `arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]`, or `<name>[:<qualifier>]`.
        let name = match name.strip_prefix("arn:") {
            Some(arn) => arn.split(':').nth(5)?.to_owned(),
            None => name.split(':').next()?.to_owned(),
        };
        self.pools
            .iter()
            .find(|(id, pool)| **id == name || pool.spec.binary == name)
    }

    pub async fn handle<B>(self: &Arc<Self>, request: Request<B>, caller: Option<&Role>) -> HttpResponse
    where
        B: hyper::body::Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let path = request.uri().path().to_owned();
        let Some((logical_id, pool)) = self.function(&path) else {
            let named = path.trim_start_matches(PATH_PREFIX).trim_end_matches("/invocations");
            return error(
                StatusCode::NOT_FOUND,
                "ResourceNotFoundException",
                &format!("Function not found: {}", ids::function_arn(named)),
            );
        };
        let (logical_id, pool) = (logical_id.clone(), Arc::clone(pool));
        let resource = ids::function_arn(&logical_id);
        if let Some(role) = caller.filter(|_| self.iam.is_some()) {
            if let Some((message, log)) = check(role, "lambda:InvokeFunction", &resource, &[]) {
                self.logs.gateway(&log);
                return error(StatusCode::FORBIDDEN, "AccessDeniedException", &message);
            }
        }
        let kind = request
            .headers()
            .get("x-amz-invocation-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("RequestResponse")
            .to_owned();
        let limit = match kind.as_str() {
            "RequestResponse" => MAX_SYNC_PAYLOAD_BYTES,
            "Event" => MAX_ASYNC_PAYLOAD_BYTES,
            "DryRun" => MAX_SYNC_PAYLOAD_BYTES,
            other => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "InvalidParameterValueException",
                    &format!("1 validation error detected: Value '{other}' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]"),
                )
            }
        };
        let payload = match Limited::new(request.into_body(), limit).collect().await {
            Ok(body) => body.to_bytes(),
            Err(_) => {
                self.logs.gateway(&format!(
                    "{logical_id}: an {kind} invocation over Lambda's limit of {limit} bytes was refused"
                ));
                return too_large(limit);
            }
        };
        let payload = if payload.is_empty() {
            Bytes::from_static(b"{}")
        } else {
            payload
        };
        if serde_json::from_slice::<serde_json::Value>(&payload).is_err() {
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidRequestContentException",
                "Could not parse request body into json",
            );
        }
        match kind.as_str() {
            "DryRun" => Response::builder()
                .status(StatusCode::NO_CONTENT)
                .body(Full::new(Bytes::new()))
                .unwrap_or_default(),
            "Event" => {
                let request_id = ids::invocation_id();
                let this = Arc::clone(self);
                let id = request_id.clone();
                tokio::spawn(async move { this.run_async(logical_id, pool, payload, id).await });
                Response::builder()
                    .status(StatusCode::ACCEPTED)
                    .header("x-amzn-requestid", request_id)
                    .body(Full::new(Bytes::new()))
                    .unwrap_or_default()
            }
            _ => self.run_sync(&pool, payload).await,
        }
    }

    async fn run_sync(&self, pool: &Arc<FunctionPool>, payload: Bytes) -> HttpResponse {
        let answer = |body: Bytes, function_error: bool| {
            let mut response = Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/json")
                .header("x-amzn-requestid", ids::invocation_id())
                .header("x-amz-executed-version", "$LATEST");
            if function_error {
                response = response.header("x-amz-function-error", "Unhandled");
            }
            response.body(Full::new(body)).unwrap_or_default()
        };
        match pool.invoke(payload).await {
            Ok(result) => answer(result, false),
            Err(InvokeError::Function(payload)) => answer(Bytes::from(payload), true),
            Err(InvokeError::Throttled) => error(StatusCode::TOO_MANY_REQUESTS, "TooManyRequestsException", "Rate Exceeded."),
            Err(InvokeError::PayloadTooLarge) => too_large(MAX_SYNC_PAYLOAD_BYTES),
            Err(InvokeError::Timeout) => answer(
                Bytes::from(
                    json!({ "errorType": "Sandbox.Timedout", "errorMessage": format!("Task timed out after {:.2} seconds", pool.spec.timeout.as_secs_f64()) })
                        .to_string(),
                ),
                true,
            ),
            Err(InvokeError::Crashed(why)) => answer(
                Bytes::from(json!({ "errorType": "Runtime.ExitError", "errorMessage": why }).to_string()),
                true,
            ),
        }
    }

    /// An accepted `Event` invocation: run, retried as Lambda retries, dead-lettered when it never
    /// succeeds.
    async fn run_async(
        self: Arc<Self>,
        logical_id: String,
        pool: Arc<FunctionPool>,
        payload: Bytes,
        request_id: String,
    ) {
        let accepted = Instant::now();
        let mut failures = 0u32;
        let failure = loop {
            let outcome = pool.invoke(payload.clone()).await;
            let why = match outcome {
                Ok(_) => return,
                Err(InvokeError::Throttled) if accepted.elapsed() < MAX_EVENT_AGE => {
                    tokio::time::sleep(self.retry_delay).await;
                    continue;
                }
                Err(e) => e.to_string(),
            };
            failures += 1;
            if failures > ASYNC_RETRIES {
                break why;
            }
            self.logs.gateway(&format!(
                "{logical_id}: asynchronous invocation {request_id} failed ({why}); retry {failures} of {ASYNC_RETRIES}"
            ));
            // One minute, then two, as Lambda waits.
            tokio::time::sleep(self.retry_delay * failures).await;
        };
        match self.dead_letters.get(&logical_id) {
            Some(queue) => {
                let text = |name: &str, data_type: &str, value: String| Attribute {
                    name: name.to_owned(),
                    data_type: data_type.to_owned(),
                    data: AttributeData::Text(value),
                };
                self.sqs.send(
                    queue,
                    vec![NewMessage {
                        body: String::from_utf8_lossy(&payload).into_owned(),
                        delay: Duration::ZERO,
                        attributes: vec![
                            text("RequestID", "String", request_id.clone()),
                            text("ErrorCode", "Number", "200".to_owned()),
                            text("ErrorMessage", "String", failure.clone()),
                        ],
                        trace_header: None,
                        group_id: None,
                        dedup_id: None,
                    }],
                );
                self.logs.gateway(&format!(
                    "{logical_id}: asynchronous invocation {request_id} failed {} times ({failure}); sent to its dead-letter queue",
                    ASYNC_RETRIES + 1
                ));
            }
            None => self.logs.gateway(&format!(
                "{logical_id}: asynchronous invocation {request_id} failed {} times ({failure}); dropped (no dead-letter queue)",
                ASYNC_RETRIES + 1
            )),
        }
    }
}

/// Each function's `DeadLetterQueue` of `Type: SQS` (`TargetArn: !GetAtt <Queue>.Arn`), by logical id.
pub fn dead_letter_queues(template: &parley_template::Template, sqs: &Sqs) -> HashMap<String, Arc<Queue>> {
    let mut queues = HashMap::new();
    for id in template.resource_ids() {
        let Some(config) = template
            .resource(&id)
            .and_then(|r| r.get("Properties"))
            .and_then(|p| p.get("DeadLetterQueue"))
        else {
            continue;
        };
        if config.get("Type").and_then(serde_yaml_ng::Value::as_str) != Some("SQS") {
            continue;
        }
        let owner = match config.get("TargetArn") {
            Some(serde_yaml_ng::Value::Tagged(tagged)) if tagged.tag == "GetAtt" => tagged
                .value
                .as_str()
                .and_then(|s| s.split('.').next())
                .map(str::to_owned),
            _ => None,
        };
        if let Some(queue) = owner.and_then(|q| sqs.queue(&q).cloned()) {
            queues.insert(id, queue);
        }
    }
    queues
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invoke_paths_are_served_and_nothing_else() {
        let post = |path: &str| Request::post(path).body(()).unwrap();
        assert!(serves(&post(
            "/2015-03-31/functions/AlarmResponderFunction/invocations"
        )));
        assert!(serves(&post(
            "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3AX/invocations"
        )));
        assert!(!serves(&post("/2015-03-31/functions/X")));
        assert!(!serves(
            &Request::get("/2015-03-31/functions/X/invocations").body(()).unwrap()
        ));
    }
}
