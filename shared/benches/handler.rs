//! `cargo bench -p parley-shared --bench handler`: the warm per-request work of a function besides
//! DynamoDB (docs/ARCHITECTURE.md "Budgets": under 100 us per request).
//!
//! Three levels, from the whole in-process path down to its parts:
//! - `lambda/*`: what the function process does with one invocation once the Runtime API has handed it
//!   the event bytes: deserialize the API Gateway HTTP API v2 event (lambda_http's `LambdaRequest`),
//!   lambda_http's adapter into an `http::Request`, the service `parley::http::serve` runs: its compression
//!   layer (br or gzip over 1 KiB) over `parley::http::handle` (request parsing, rate-limit admission, token
//!   check, body parsing and validation, the reply with ETag or field selection, the JSON log line and the
//!   EMF metric line on stdout), and the API Gateway response serialized to JSON bytes.
//!   Only the HTTP exchange with the Runtime API is left out (measured by the local stack's gateway bench).
//! - `handle/*`: `parley::http::handle` alone (no compression), on an already built `lambda_http::Request`.
//! - `parts/*`: the pieces one by one, through the crate's public surface.
//!
//! The handlers are the real routes' shapes with the DynamoDB call replaced by a canned value: they
//! authenticate (HS256 verify), read path parameters and bodies through the same `ApiRequest` methods,
//! validate with the same domain functions, and build the reply with `Reply` as the real ones do. The
//! `AppContext` is built as a function builds it, with an SDK configuration pointing at an endpoint that
//! is never called. Rate limits are configured off (0), so no limiter can reach DynamoDB either.
//!
//! Every `handle` prints two lines to stdout (the JSON request log and the EMF metric document), as the
//! function does on Lambda, where stdout is a pipe. Run it with those lines going to a pipe, and keep
//! criterion's report:
//! `nice -n 10 cargo bench -p parley-shared --bench handler 2>&1 | grep --line-buffered -v '^{"'`
//! (`python3 infra/bench/criterion_table.py target/criterion lambda handle parts` tabulates the results).

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use lambda_http::lambda_runtime::{Context, LambdaEvent};
use lambda_http::request::LambdaRequest;
use lambda_http::{service_fn, Adapter, Body, Request, Response, Service};
use parley::auth::tokens::TokenKeys;
use parley::config::Config;
use parley::domain::conversations::Page;
use parley::domain::messages::Message;
use parley::domain::users::User;
use parley::http::{handle, parse_json_object, ApiRequest, CompressionLayer, FieldSelection, LambdaError, Reply};
use parley::{ApiError, AppContext};
use serde::Deserialize;
use serde_json::Value;
use tower::Layer;

const SECRET: &str = "parley-bench-secret-0123456789abcdef";
const USER_ID: &str = "01JH3Z4S0N8XQ3A4YGS6SFE0CW";
const CONVERSATION_ID: &str = "01JH3Z7Q2W8E4R6T8Y0V2K4M6P";
/// The samples' conversation id, which is not a ULID (I, O and U are not Crockford base32).
const SAMPLE_CONVERSATION_ID: &str = "01JH3Z7Q2W8E4R6T8Y0V2J4K6P";

// ---- the handlers: real routes' shapes, a canned value where DynamoDB would answer ----

fn canned_user(id: &str) -> User {
    User {
        id: id.to_owned(),
        username: "alice".to_owned(),
        display_name: "Alice Liddell".to_owned(),
        wallet_address: None,
        status: "online".to_owned(),
        status_text: Some("down the rabbit hole".to_owned()),
        last_seen_at: Some("2026-11-25T20:59:00.000Z".to_owned()),
        created_at: "2026-11-01T09:00:00.000Z".to_owned(),
        who_can_add_me: None,
    }
}

fn canned_message(i: usize, client_message_id: &str, body: &str) -> Message {
    Message {
        id: format!("01JH3ZA{i:019}"),
        conversation_id: CONVERSATION_ID.to_owned(),
        seq: i as u64 + 1,
        sender_id: USER_ID.to_owned(),
        client_message_id: client_message_id.to_owned(),
        body: body.to_owned(),
        encrypted: false,
        created_at: "2026-11-25T20:00:00.000Z".to_owned(),
        edited_at: None,
        deleted: false,
        parent_message_id: None,
        reply_count: 0,
        last_reply_at: None,
        mentions: Vec::new(),
        reactions: Default::default(),
        my_reactions: Some(Vec::new()),
        attachments: Vec::new(),
    }
}

/// `GET /users/me` without the read: authenticate, reply with the profile.
async fn get_me(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let claims = request.authenticate(context)?;
    Reply::ok(&canned_user(&claims.sub))
}

/// `POST /conversations/{conversationId}/messages` without the transaction and the fan-out:
/// authenticate, the path's ULID, the JSON body, the domain's validation, 201 with the message.
async fn send(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct SendBody {
        client_message_id: String,
        body: String,
        #[serde(default)]
        encrypted: bool,
    }
    let me = request.authenticate(context)?.sub;
    let id = parley::validate::ulid("conversationId", request.path_param("conversationId")?)?;
    let body: SendBody = request.json()?;
    let mut problems = parley::validate::Problems::default();
    let client_id = problems.check(parley::domain::messages::client_message_id(&body.client_message_id));
    let text = problems.check(parley::domain::messages::body(&body.body));
    problems.finish()?;
    let mut message = canned_message(0, &client_id.unwrap_or_default(), &text.unwrap_or_default());
    message.sender_id = me;
    message.conversation_id = id;
    message.encrypted = body.encrypted;
    Reply::created(&message)
}

/// `GET /conversations/{conversationId}/messages?limit=50` without the query: a full page of 50
/// messages (about 12 KiB of JSON, so it is compressed).
async fn history(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let _me = request.authenticate(context)?.sub;
    let _id = parley::validate::ulid("conversationId", request.path_param("conversationId")?)?;
    let limit: usize = request.query("limit").and_then(|l| l.parse().ok()).unwrap_or(50);
    let body = "Shall we start at ten? I will bring the slides and the notes from last week's review.";
    let page = Page {
        items: (0..limit)
            .map(|i| canned_message(i, &format!("c-{i:08}"), body))
            .collect::<Vec<_>>(),
        next_cursor: Some("eyJjIjoiMDFKSDNaQTAwMDAwMDAwMDAwMDAwMDAwMDQ5In0.c2lnbmF0dXJl".to_owned()),
    };
    Reply::ok(&page)
}

// ---- the events ----

fn sample_event(name: &str) -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../events/").to_owned() + name + ".json";
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A sample event of events/ with a valid token (and optionally other changes).
fn event(name: &str, token: &str, change: impl FnOnce(&mut Value)) -> String {
    let mut event = sample_event(name);
    event["headers"]["authorization"] = Value::String(format!("Bearer {token}"));
    change(&mut event);
    event.to_string().replace(SAMPLE_CONVERSATION_ID, CONVERSATION_ID)
}

fn request(event: &str) -> Request {
    lambda_http::request::from_str(event).expect("an API Gateway HTTP API v2 event")
}

fn benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    parley::logging::init();
    let sdk = runtime.block_on(
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "bench", "bench", None, None, "bench",
            ))
            // Nothing listens there, and nothing here calls it.
            .endpoint_url("http://127.0.0.1:9")
            .load(),
    );
    let config = Config::from_lookup(|name| match name {
        "TABLE_NAME" => Some("ChatTable".to_owned()),
        "TOKEN_SECRET" => Some(SECRET.to_owned()),
        "RATE_LIMIT_IP_PER_HOUR" | "RATE_LIMIT_USER_PER_HOUR" | "RATE_LIMIT_SENSITIVE_PER_MINUTE" => Some("0".into()),
        _ => None,
    })
    .expect("bench configuration");
    let context: &'static AppContext = Box::leak(Box::new(AppContext::new(config, &sdk)));
    // Same secret as the context; a day long, so a slow run never sees it expire.
    let token = TokenKeys::new(SECRET.as_bytes(), Duration::from_secs(86_400))
        .issue(USER_ID, "01JH3Z4S0XJWT7H5P6ZD1FV8YM", SystemTime::now())
        .expect("a token");

    let get_event = event("users-me-get", &token, |_| {});
    let get_fields_event = event("users-me-get", &token, |e| {
        e["rawQueryString"] = "fields=displayName,status".into();
        e["queryStringParameters"] = serde_json::json!({ "fields": "displayName,status" });
    });
    let post_event = event("messages-send", &token, |_| {});
    let list_event = event("messages-list", &token, |_| {});
    let list_gzip_event = event("messages-list", &token, |e| {
        e["headers"]["accept-encoding"] = "gzip".into();
    });
    let list_plain_event = event("messages-list", &token, |e| {
        e["headers"].as_object_mut().expect("headers").remove("accept-encoding");
    });

    // Check every case answers as intended before timing it.
    let check = |name: &str, response: lambda_http::Response<Body>, status: u16, encoding: Option<&str>| {
        assert_eq!(response.status().as_u16(), status, "{name}: {:?}", response.body());
        assert_eq!(
            response.headers().get("content-encoding").and_then(|v| v.to_str().ok()),
            encoding,
            "{name}: content-encoding"
        );
    };

    macro_rules! cases {
        ($each:ident) => {
            $each!("get_users_me", get_event, get_me, 200, None);
            $each!("get_users_me_fields", get_fields_event, get_me, 200, None);
            $each!("post_message_send", post_event, send, 201, None);
            $each!("get_messages_page_br", list_event, history, 200, Some("br"));
            $each!(
                "get_messages_page_gzip",
                list_gzip_event,
                history,
                200,
                Some("gzip")
            );
            $each!("get_messages_page_plain", list_plain_event, history, 200, None);
        };
    }

    // Level 1: event bytes in, response bytes out, through the service `parley::http::serve` runs
    // (compression layer over `handle`) and lambda_http's adapter.
    {
        let mut group = c.benchmark_group("lambda");
        macro_rules! lambda_case {
            ($name:expr, $event:ident, $handler:ident, $status:expr, $encoding:expr) => {{
                let service = || {
                    CompressionLayer.layer(service_fn(move |event: Request| async move {
                        Ok::<_, LambdaError>(handle(context, $handler, event).await)
                    }))
                };
                let response = runtime
                    .block_on(service().call(request(&$event)))
                    .expect("a response");
                check($name, response, $status, $encoding);
                let bytes = $event.clone().into_bytes();
                let mut adapter = Adapter::from(service());
                group.bench_function($name, |b| {
                    b.to_async(&runtime).iter(|| {
                        let payload: LambdaRequest = serde_json::from_slice(black_box(&bytes)).expect("a v2 event");
                        let mut lambda_context = Context::default();
                        lambda_context.request_id = "8476a536-e9f4-11e8-9739-2dfe598c3fcd".to_owned();
                        let call = adapter.call(LambdaEvent::new(payload, lambda_context));
                        async move {
                            let response = call.await.expect("a response");
                            black_box(serde_json::to_vec(&response).expect("response JSON"))
                        }
                    })
                });
            }};
        }
        cases!(lambda_case);
        group.finish();
    }

    // Level 2: `handle` on a built request.
    {
        let mut group = c.benchmark_group("handle");
        macro_rules! handle_case {
            ($name:expr, $event:ident, $handler:ident, $status:expr, $encoding:expr) => {{
                // `handle` does not compress (the layer does): one page case is enough here.
                if Option::<&str>::is_none(&$encoding) {
                    group.bench_function($name, |b| {
                        b.to_async(&runtime).iter_batched(
                            || request(&$event),
                            |event| handle(context, $handler, event),
                            BatchSize::SmallInput,
                        )
                    });
                }
            }};
        }
        cases!(handle_case);
        group.finish();
    }

    // Level 3: the parts.
    {
        let mut group = c.benchmark_group("parts");
        group.bench_function("event_to_request_get", |b| b.iter(|| request(black_box(&get_event))));
        group.bench_function("event_to_request_post", |b| b.iter(|| request(black_box(&post_event))));
        group.bench_function("api_request_from_lambda_post", |b| {
            b.iter_batched(
                || request(&post_event),
                |event| ApiRequest::from_lambda(black_box(event)),
                BatchSize::SmallInput,
            )
        });
        group.bench_function("token_verify", |b| {
            b.iter(|| context.tokens().verify(black_box(&token)).expect("valid"))
        });
        let post = ApiRequest::from_lambda(request(&post_event));
        group.bench_function("authenticate_header", |b| {
            b.iter(|| black_box(&post).authenticate(context).expect("valid"))
        });
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        #[allow(dead_code)]
        struct SendBody {
            client_message_id: String,
            body: String,
            #[serde(default)]
            encrypted: bool,
        }
        let body = br#"{"clientMessageId": "c-7f3a9b2e", "body": "Shall we start at ten?"}"#;
        group.bench_function("send_body_parse_validate", |b| {
            b.iter(|| {
                let parsed: SendBody = parse_json_object(black_box(body)).expect("valid");
                let id = parley::domain::messages::client_message_id(&parsed.client_message_id).expect("valid");
                let text = parley::domain::messages::body(&parsed.body).expect("valid");
                let conversation = parley::validate::ulid("conversationId", CONVERSATION_ID).expect("valid");
                black_box((id, text, conversation))
            })
        });
        let fields = ApiRequest::from_lambda(request(&get_fields_event));
        group.bench_function("field_selection_parse", |b| {
            b.iter(|| FieldSelection::from_request(black_box(&fields)).expect("valid"))
        });
        group.bench_function("reply_user", |b| {
            b.iter(|| Reply::ok(&canned_user(black_box(USER_ID))).expect("reply"))
        });
        // The compression layer alone, on the 50-message page (about 12 KiB of JSON).
        let page_text = {
            let response = runtime.block_on(handle(context, history, request(&list_plain_event)));
            match response.into_body() {
                Body::Text(text) => text,
                other => panic!("a text body, not {other:?}"),
            }
        };
        for (name, accept) in [("compress_page_br", "br"), ("compress_page_gzip", "gzip")] {
            let text = page_text.clone();
            let mut layer = CompressionLayer.layer(service_fn(move |_event: Request| {
                let body = Body::Text(text.clone());
                async move { Ok::<_, LambdaError>(Response::new(body)) }
            }));
            let mut compressing = request(&list_plain_event);
            compressing
                .headers_mut()
                .insert("accept-encoding", accept.parse().expect("a header value"));
            group.bench_function(name, |b| {
                b.to_async(&runtime).iter_batched(
                    || {
                        let mut r = Request::new(Body::Empty);
                        *r.headers_mut() = compressing.headers().clone();
                        r
                    },
                    |r| layer.call(r),
                    BatchSize::SmallInput,
                )
            });
        }
        println!("messages page: {} bytes of JSON", page_text.len());
        // The reply of the 50-message page: the domain value to JSON (`Reply::ok`), then the ETag every
        // 200 GET carries (the body as text, SHA-256, hex).
        let page = Page {
            items: (0..50)
                .map(|i| {
                    canned_message(
                        i,
                        &format!("c-{i:08}"),
                        "Shall we start at ten? I will bring the slides and the notes from last week's review.",
                    )
                })
                .collect::<Vec<_>>(),
            next_cursor: Some("eyJjIjoiMDFKSDNaQTAwMDAwMDAwMDAwMDAwMDAwMDQ5In0.c2lnbmF0dXJl".to_owned()),
        };
        group.bench_function("reply_messages_page", |b| {
            b.iter(|| Reply::ok(black_box(&page)).expect("reply"))
        });
        let page_value = Reply::ok(&page).expect("reply").body.expect("a body");
        group.bench_function("etag_messages_page", |b| {
            b.iter(|| {
                use sha2::Digest;
                let text = black_box(&page_value).to_string();
                let tag = format!("\"{}\"", &hex::encode(sha2::Sha256::digest(text.as_bytes()))[..32]);
                black_box((text, tag))
            })
        });
        // A metric document of the shape `handle` prints per request (EMF, 11 metrics), built and printed.
        group.bench_function("emf_metric_line", |b| {
            b.iter(|| {
                let line = parley::metrics::document(
                    &[("Function", "local"), ("Route", black_box("GET /users/me"))],
                    &[
                        ("Latency", "Milliseconds", 0.045),
                        ("ColdStart", "Count", 0.0),
                        ("Errors4xx", "Count", 0.0),
                        ("Errors5xx", "Count", 0.0),
                        ("DynamoDBCalls", "Count", 0.0),
                        ("ReadCapacityUnits", "Count", 0.0),
                        ("WriteCapacityUnits", "Count", 0.0),
                        ("DynamoDBLatency", "Milliseconds", 0.0),
                        ("CacheHits", "Count", 0.0),
                        ("CacheMisses", "Count", 0.0),
                    ],
                    &[
                        ("statusCode", serde_json::json!(200)),
                        ("errorCode", Value::Null),
                        ("requestId", serde_json::json!("KLzdocEXAMPLE=")),
                    ],
                );
                println!("{line}");
            })
        });
        // The JSON request log line `handle` writes through the tracing subscriber (to stdout).
        group.bench_function("request_log_line", |b| {
            b.iter(|| {
                tracing::info!(
                    requestId = %black_box("KLzdocEXAMPLE="),
                    route = %"GET /users/me",
                    status = 200u16,
                    durationMs = 0.045,
                    "request"
                )
            })
        });
        group.finish();
    }
}

criterion_group! {
    name = handler;
    config = Criterion::default().warm_up_time(Duration::from_secs(2)).measurement_time(Duration::from_secs(5));
    targets = benches
}
criterion_main!(handler);
