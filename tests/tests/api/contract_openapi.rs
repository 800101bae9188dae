//! openapi.yaml, the HTTP contract in machine-readable form, stays true:
//! - its operations are exactly the HTTP routes template.yaml deploys, each named after its function;
//! - it is a valid OpenAPI 3.1 document by the pinned `openapi-spec-validator`, which does refuse a
//!   broken copy (so the check can fail);
//! - its operations document what every route answers through the shared edge (auth, body limits,
//!   rate limits, conditional GETs);
//! - `check_http_response`, which every end-to-end and in-process test runs on each response it gets,
//!   passes a right body and refuses a wrong one.

use std::collections::BTreeSet;

use parley_template::{workspace_template_path, Template};
use parley_tests::contract::{self, check_http_response, openapi, operations};
use parley_tests::tools::{python_tools, run_tool, workspace};
use parley_tests::{TestApp, TestRequest};
use serde_json::{json, Value};

#[test]
fn the_operations_are_the_routes_of_the_template() {
    let template = Template::load(&workspace_template_path()).expect("template.yaml loads");
    let functions = template.functions().expect("template.yaml's functions");
    let deployed: BTreeSet<(String, String, String)> = functions
        .iter()
        .flat_map(|f| {
            f.http_routes
                .iter()
                .map(|r| (r.method.clone(), r.path.clone(), f.binary.clone()))
        })
        .collect();
    assert!(!deployed.is_empty(), "template.yaml deploys HTTP routes");
    let documented: BTreeSet<(String, String, String)> = operations()
        .into_iter()
        .map(|(method, path, operation)| {
            let id = operation["operationId"].as_str().unwrap_or("<no operationId>");
            (method, path.to_owned(), id.to_owned())
        })
        .collect();
    let undocumented: Vec<_> = deployed.difference(&documented).collect();
    let not_deployed: Vec<_> = documented.difference(&deployed).collect();
    assert!(
        undocumented.is_empty() && not_deployed.is_empty(),
        "(method, path, function crate) of template.yaml missing from openapi.yaml: {undocumented:#?}\n\
         and of openapi.yaml that template.yaml does not deploy (or under another operationId): {not_deployed:#?}"
    );
}

#[test]
fn the_document_validates() {
    let bin = python_tools("contract-checks");
    let path = contract::openapi_path();
    let (ok, output) = run_tool(&bin.join("openapi-spec-validator"), &[path.to_str().unwrap()]);
    assert!(ok, "openapi-spec-validator refuses openapi.yaml:\n{output}");
    assert_eq!(openapi()["openapi"], "3.1.0");
    assert_eq!(openapi()["info"]["version"], "1.1.0");
}

#[test]
fn the_validator_refuses_a_broken_copy() {
    let bin = python_tools("contract-checks");
    let mut broken = openapi().clone();
    broken["paths"]["/users/me"]["get"]["responses"]["200"] = json!({
        "description": "a user",
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/NoSuchSchema" } } }
    });
    let dir = std::env::temp_dir().join(format!("parley-openapi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("openapi.yaml");
    std::fs::write(&path, serde_yaml_ng::to_string(&broken).unwrap()).unwrap();
    let (ok, output) = run_tool(&bin.join("openapi-spec-validator"), &[path.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        !ok,
        "openapi-spec-validator accepts a reference to a schema that does not exist"
    );
    assert!(
        output.contains("NoSuchSchema"),
        "the validator names the broken reference: {}",
        output.chars().take(500).collect::<String>()
    );
    // The copy itself is good apart from that one reference.
    let same = serde_yaml_ng::to_string(openapi()).unwrap();
    let good = dir.with_extension("good.yaml");
    std::fs::write(&good, same).unwrap();
    let (ok, output) = run_tool(&bin.join("openapi-spec-validator"), &[good.to_str().unwrap()]);
    std::fs::remove_file(&good).ok();
    assert!(ok, "the document written back as YAML validates: {output}");
}

/// The statuses every operation can answer through the shared edge (`parley::http::handle` and API
/// Gateway), whatever its handler does.
#[test]
fn every_operation_documents_what_the_edge_answers() {
    let document = openapi();
    let mut problems = Vec::new();
    for (method, path, operation) in operations() {
        let id = operation["operationId"].as_str().unwrap_or("?");
        let responses = operation["responses"].as_object().expect("responses");
        let has = |code: &str| responses.contains_key(code);
        let mut want: Vec<&str> = vec!["400", "413", "502", "504"];
        let public = operation.get("security").is_some_and(|s| s == &json!([]));
        let bearer = !public;
        if path != "/health" {
            want.extend(["429", "500", "503"]);
        }
        if bearer {
            want.push("401");
        }
        if operation.get("requestBody").is_some() {
            want.push("415");
        }
        if method == "GET" {
            want.push("304");
            let parameters: Vec<String> = operation["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter_map(|p| {
                            p["$ref"]
                                .as_str()
                                .map(str::to_owned)
                                .or_else(|| p["name"].as_str().map(str::to_owned))
                        })
                        .collect()
                })
                .unwrap_or_default();
            if !parameters.iter().any(|p| p.ends_with("/Fields")) {
                problems.push(format!("{id}: a GET takes fields="));
            }
        }
        for code in want {
            if !has(code) {
                problems.push(format!("{id} ({method} {path}) does not document {code}"));
            }
        }
        // docs/API-GUIDE.md "Authentication": a bearer token on every route but /auth/* (except logout and
        // sessions), /health and the VAPID key.
        let needs_token = !(path.starts_with("/auth/") || path == "/health" || path == "/push/vapid-public-key")
            || path == "/auth/logout"
            || path.starts_with("/auth/sessions");
        if needs_token != bearer {
            problems.push(format!(
                "{id}: bearer token required is {bearer}, docs/API-GUIDE.md says {needs_token}"
            ));
        }
        if operation["summary"].as_str().is_none_or(str::is_empty) {
            problems.push(format!("{id} has no summary"));
        }
    }
    assert_eq!(document["security"], json!([{ "bearerAuth": [] }]));
    assert_eq!(
        document["components"]["securitySchemes"]["bearerAuth"]["scheme"],
        "bearer"
    );
    for name in ["User", "Conversation", "Message", "Attachment", "Member", "Error"] {
        if document["components"]["schemas"].get(name).is_none() {
            problems.push(format!(
                "components/schemas/{name} (asyncapi.yaml refers to it) is missing"
            ));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// Every schema of the document (components, parameters, bodies, responses, headers) compiles, its
/// patterns included, so no check meets a broken one first in the middle of another test.
#[test]
fn every_schema_compiles() {
    fn walk(value: &Value, pointer: String, found: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    let child_pointer = format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1"));
                    let is_schema = key == "schema" || pointer == "/components/schemas";
                    if is_schema {
                        found.push(child_pointer.clone());
                    } else {
                        walk(child, child_pointer, found);
                    }
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(child, format!("{pointer}/{i}"), found);
                }
            }
            _ => {}
        }
    }
    let mut schemas = Vec::new();
    walk(openapi(), String::new(), &mut schemas);
    assert!(schemas.len() > 100, "{} schemas found", schemas.len());
    for pointer in &schemas {
        contract::schema_at(pointer);
    }
}

const ID: &str = "01JH3Z7Q2W8E4R6T8Y0V2J4K6P";
const OTHER: &str = "01JH3ZB7C9D1E3F5G7H9J1K3M5";

fn user() -> Value {
    json!({
        "id": ID,
        "username": "alice",
        "displayName": "Alice",
        "status": "online",
        "lastSeenAt": "2026-11-23T08:00:00.000Z",
        "createdAt": "2026-11-23T08:00:00.000Z"
    })
}

fn message() -> Value {
    json!({
        "id": OTHER,
        "conversationId": ID,
        "seq": 1,
        "senderId": ID,
        "clientMessageId": "c-1",
        "body": "hello",
        "encrypted": false,
        "createdAt": "2026-11-23T08:00:00.000Z",
        "deleted": false,
        "replyCount": 0,
        "mentions": [],
        "reactions": { "👍": 2 },
        "myReactions": ["👍"],
        "attachments": []
    })
}

/// The panic hook is the process's: one expected panic at a time swaps it for a silent one.
static QUIET: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The panic message of `check`, or `None` when it passed.
fn refusal(check: impl FnOnce() + std::panic::UnwindSafe) -> Option<String> {
    let _one_at_a_time = QUIET.lock().unwrap_or_else(|e| e.into_inner());
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let outcome = std::panic::catch_unwind(check);
    std::panic::set_hook(hook);
    outcome.err().map(|e| {
        e.downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default()
    })
}

const JSON: Option<&str> = Some("application/json");

#[test]
fn a_right_body_passes() {
    assert_eq!(
        refusal(|| check_http_response("GET", "/users/me", 200, JSON, &user())),
        None
    );
    let page = json!({ "items": [message()], "nextCursor": null });
    let path = format!("/conversations/{ID}/messages?limit=5");
    assert_eq!(refusal(|| check_http_response("GET", &path, 200, JSON, &page)), None);
    // An answer documented inline under a path with parameters (its schema's pointer holds `{`, `}`).
    let path = format!("/conversations/{ID}/messages");
    assert_eq!(
        refusal(|| check_http_response("POST", &path, 201, JSON, &message())),
        None
    );
    let path = format!("/conversations/{ID}/messages/{OTHER}/reactions/%F0%9F%91%8D");
    assert_eq!(
        refusal(|| check_http_response("PUT", &path, 204, None, &Value::Null)),
        None
    );
    let error = json!({
        "error": { "code": "validation_failed", "message": "limit: must be at least 1",
                   "details": [{ "field": "limit", "problem": "must be at least 1" }] },
        "requestId": "r-1"
    });
    assert_eq!(
        refusal(|| check_http_response(
            "GET",
            "/conversations?limit=0",
            400,
            Some("application/json; charset=utf-8"),
            &error
        )),
        None
    );
    // API Gateway's own answers: an unknown path is not the document's business.
    let gateway = json!({ "message": "Not Found" });
    assert_eq!(
        refusal(|| check_http_response("GET", "/no/such/route", 404, JSON, &gateway)),
        None
    );
}

#[test]
fn a_missing_required_field_is_refused_unless_fields_left_it_out() {
    let mut partial = user();
    partial.as_object_mut().unwrap().remove("username");
    let refused = refusal(|| check_http_response("GET", "/users/me", 200, JSON, &partial)).expect("refused");
    assert!(
        refused.contains("users-me-get") && refused.contains("username"),
        "{refused}"
    );
    assert!(refused.contains("GET /users/me"), "names the route: {refused}");

    let selected = json!({ "id": ID, "displayName": "Alice" });
    assert_eq!(
        refusal(|| check_http_response("GET", "/users/me?fields=displayName", 200, JSON, &selected)),
        None
    );
    // A selected field that the schema requires must still be there, with its type.
    let refused = refusal(|| check_http_response("GET", "/users/me?fields=displayName,username", 200, JSON, &selected));
    assert!(refused.is_some_and(|r| r.contains("username")));
    let page = json!({ "items": [{ "id": OTHER, "seq": 1 }], "nextCursor": null });
    let path = format!("/conversations/{ID}/messages?fields=seq");
    assert_eq!(refusal(|| check_http_response("GET", &path, 200, JSON, &page)), None);
}

#[test]
fn a_conversation_answer_shows_its_last_message_as_read() {
    let mut conversation = json!({
        "id": ID, "type": "group", "name": "lunch", "createdBy": ID,
        "createdAt": "2026-11-23T08:00:00.000Z", "updatedAt": "2026-11-23T08:00:00.000Z",
        "lastMessage": message(), "lastSeq": 1, "memberCount": 2, "unreadCount": 0,
        "mentionCount": 0, "readSeq": 1, "myRole": "owner", "slowModeSeconds": 0
    });
    let path = format!("/conversations/{ID}");
    assert_eq!(
        refusal(|| check_http_response("PATCH", &path, 200, JSON, &conversation)),
        None
    );
    conversation["lastMessage"]
        .as_object_mut()
        .unwrap()
        .remove("myReactions");
    let refused = refusal(|| check_http_response("PATCH", &path, 200, JSON, &conversation)).expect("refused");
    assert!(
        refused.contains("/lastMessage") && refused.contains("myReactions"),
        "{refused}"
    );
    // A group has a name, a direct conversation none.
    conversation["type"] = json!("direct");
    conversation["lastMessage"]["myReactions"] = json!([]);
    assert!(refusal(|| check_http_response("GET", &path, 200, JSON, &conversation)).is_some());
}

#[test]
fn a_wrong_type_is_refused_with_its_place() {
    let mut wrong = message();
    wrong["seq"] = json!("1");
    let page = json!({ "items": [wrong], "nextCursor": null });
    let path = format!("/conversations/{ID}/messages");
    let refused = refusal(|| check_http_response("GET", &path, 200, JSON, &page)).expect("refused");
    assert!(
        refused.contains("/items/0/seq"),
        "the instance path of the problem: {refused}"
    );
    println!("what a refusal says:\n{refused}");
    // An unknown field is refused too (nothing leaks), and so is a wrong error code for a status.
    let mut leaky = user();
    leaky["passwordHash"] = json!("$argon2id$...");
    assert!(refusal(|| check_http_response("GET", "/users/me", 200, JSON, &leaky)).is_some());
    let wrong_code = json!({ "error": { "code": "forbidden", "message": "no" }, "requestId": "r" });
    let refused = refusal(|| check_http_response("GET", &format!("/users/{ID}"), 404, JSON, &wrong_code));
    assert!(refused.is_some_and(|r| r.contains("not_found")));
}

#[test]
fn an_undocumented_status_or_body_is_refused() {
    let refused = refusal(|| check_http_response("GET", "/users/me", 418, JSON, &user())).expect("refused");
    assert!(refused.contains("not documented"), "{refused}");
    // users-blocks-delete never answers 404 (unblocking an unknown user changes nothing).
    let not_found = json!({ "error": { "code": "not_found", "message": "no" }, "requestId": "r" });
    let path = format!("/users/me/blocks/{ID}");
    assert!(refusal(|| check_http_response("DELETE", &path, 404, JSON, &not_found)).is_some());
    // A 204 has no body; a 200 has one, and it is JSON.
    assert!(refusal(|| check_http_response("PUT", &path, 204, JSON, &json!({}))).is_some());
    assert!(refusal(|| check_http_response("GET", "/users/me", 200, None, &Value::Null)).is_some());
    assert!(refusal(|| check_http_response("GET", "/users/me", 200, Some("text/html"), &user())).is_some());
}

#[test]
fn required_headers_are_checked() {
    let headers = |pairs: &[(&'static str, &str)]| {
        let mut map = http::HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    };
    let tagged = headers(&[("etag", "\"0123abcd\""), ("x-request-id", "r-1")]);
    assert_eq!(
        refusal(|| contract::check_http_headers("GET", "/users/me", 200, &tagged)),
        None
    );
    assert_eq!(
        refusal(|| contract::check_http_headers("GET", "/users/me", 304, &tagged)),
        None
    );
    let untagged = headers(&[("x-request-id", "r-1")]);
    let refused = refusal(|| contract::check_http_headers("GET", "/users/me", 200, &untagged)).expect("refused");
    assert!(refused.contains("ETag"), "{refused}");
    // A write's answer has no ETag to give.
    assert_eq!(
        refusal(|| contract::check_http_headers("PATCH", "/users/me", 200, &untagged)),
        None
    );
    // `unavailable` always says when to come back; a 429 may come from API Gateway's throttling,
    // which sends no Retry-After, so there it is checked only when present.
    assert!(refusal(|| contract::check_http_headers("POST", "/auth/login", 503, &untagged)).is_some());
    let waiting = headers(&[("retry-after", "30")]);
    assert_eq!(
        refusal(|| contract::check_http_headers("POST", "/auth/login", 503, &waiting)),
        None
    );
    assert_eq!(
        refusal(|| contract::check_http_headers("POST", "/auth/login", 429, &untagged)),
        None
    );
    assert_eq!(
        refusal(|| contract::check_http_headers("POST", "/auth/login", 429, &waiting)),
        None
    );
    let never = headers(&[("retry-after", "0")]);
    assert!(refusal(|| contract::check_http_headers("POST", "/auth/login", 429, &never)).is_some());
}

#[test]
fn the_workspace_holds_the_document() {
    assert!(workspace().join("openapi.yaml").is_file());
}

/// A handler that answers `GET /users/me` with something that is not a user.
async fn not_a_user(
    _: &'static parley::AppContext,
    _: parley::http::ApiRequest,
) -> Result<parley::http::Reply, parley::ApiError> {
    Ok(parley::http::Reply {
        status: 200,
        body: Some(json!({ "id": ID, "name": "not a user" })),
    })
}

/// Every response of the in-process edge (`TestApp::call`) is held to the document, so a handler that
/// breaks it fails the test that called it.
// QUIET only orders the swaps of the process's panic hook; its other holders never wait on this test.
#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread")]
async fn the_in_process_edge_checks_every_response() {
    let app = TestApp::new().await;
    let alice = app.user("alice").await;
    let me = app
        .call(
            parley::api::users::get_me,
            TestRequest::new("GET", "/users/me").bearer(&alice.token),
        )
        .await;
    assert_eq!(me.status, 200, "{}", me.body);
    let outcome = tokio::spawn(async move {
        app.call(not_a_user, TestRequest::new("GET", "/users/me").bearer(&alice.token))
            .await
            .status
    });
    let refused = {
        let _one_at_a_time = QUIET.lock().unwrap_or_else(|e| e.into_inner());
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let outcome = outcome.await;
        std::panic::set_hook(hook);
        outcome
    };
    let panic = refused.expect_err("a body that is no user is refused").into_panic();
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        message.contains("users-me-get") && message.contains("username"),
        "{message}"
    );
}

/// The problems of `body` against the request body schema of `method path` (a template).
fn request_problems(method: &str, template: &str, body: &Value) -> Vec<String> {
    let pointer = format!(
        "/paths/{}/{}/requestBody/content/application~1json/schema",
        template.replace('~', "~0").replace('/', "~1"),
        method.to_ascii_lowercase()
    );
    contract::schema_errors(&pointer, body)
}

/// The request schemas say what the handlers accept (spot checks of the rules in shared/src).
#[test]
fn request_schemas_accept_what_the_code_accepts() {
    let accepted = [
        (
            "POST",
            "/auth/register",
            json!({ "username": "Alice_01", "password": "12345678", "displayName": null }),
        ),
        (
            "POST",
            "/auth/register",
            json!({ "username": "bob", "password": "12345678", "displayName": " Bob\tB ", "extra": 1 }),
        ),
        ("PATCH", "/users/me", json!({ "statusText": null })),
        ("PATCH", "/users/me", json!({ "status": "busy", "displayName": null })),
        (
            "POST",
            "/conversations",
            json!({ "type": "direct", "memberIds": [ID.to_lowercase()] }),
        ),
        (
            "POST",
            "/conversations",
            json!({ "type": "group", "name": "lunch", "memberIds": [] }),
        ),
        (
            "POST",
            "/conversations/{conversationId}/messages",
            json!({ "clientMessageId": "c-1", "body": "hi\nthere" }),
        ),
        (
            "POST",
            "/conversations/{conversationId}/messages",
            json!({ "clientMessageId": "c_2", "body": "", "attachmentIds": [ID] }),
        ),
        (
            "POST",
            "/conversations/{conversationId}/attachments",
            json!({ "fileName": "a b.png", "contentType": "image/png", "size": 26214400 }),
        ),
        (
            "POST",
            "/auth/wallet/verify",
            json!({ "address": format!("0x{}", "a".repeat(40)), "signature": "0".repeat(130) }),
        ),
    ];
    for (method, path, body) in &accepted {
        assert_eq!(
            request_problems(method, path, body),
            Vec::<String>::new(),
            "{method} {path} {body}"
        );
    }
    let refused = [
        (
            "POST",
            "/auth/register",
            json!({ "username": "al", "password": "12345678" }),
        ),
        (
            "POST",
            "/auth/register",
            json!({ "username": "alice", "password": "1234567" }),
        ),
        (
            "POST",
            "/auth/register",
            json!({ "username": "alice", "password": "12345678", "displayName": "bell\u{7}" }),
        ),
        (
            "POST",
            "/auth/register",
            json!({ "username": "alice", "password": "12345678", "displayName": "   " }),
        ),
        ("PATCH", "/users/me", json!({})),
        ("PATCH", "/users/me", json!({ "displayName": null })),
        ("PATCH", "/users/me", json!({ "status": "asleep" })),
        (
            "POST",
            "/conversations",
            json!({ "type": "direct", "memberIds": [ID, OTHER] }),
        ),
        ("POST", "/conversations", json!({ "type": "group", "memberIds": [ID] })),
        (
            "POST",
            "/conversations",
            json!({ "type": "group", "name": "x".repeat(101), "memberIds": [] }),
        ),
        (
            "POST",
            "/conversations",
            json!({ "type": "direct", "memberIds": ["not-a-ulid"] }),
        ),
        (
            "POST",
            "/conversations/{conversationId}/messages",
            json!({ "clientMessageId": "c 1", "body": "hi" }),
        ),
        (
            "POST",
            "/conversations/{conversationId}/messages",
            json!({ "clientMessageId": "c-1", "body": " " }),
        ),
        (
            "POST",
            "/conversations/{conversationId}/messages",
            json!({ "clientMessageId": "c-1", "body": "x".repeat(4001) }),
        ),
        (
            "POST",
            "/conversations/{conversationId}/messages",
            json!({ "clientMessageId": "c-1", "body": "hi", "mentions": vec![ID; 51] }),
        ),
        (
            "POST",
            "/conversations/{conversationId}/attachments",
            json!({ "fileName": "a/b", "contentType": "image/png", "size": 1 }),
        ),
        (
            "POST",
            "/conversations/{conversationId}/attachments",
            json!({ "fileName": "a", "contentType": "png", "size": 1 }),
        ),
        (
            "POST",
            "/conversations/{conversationId}/attachments",
            json!({ "fileName": "a", "contentType": "image/png", "size": 0 }),
        ),
        (
            "PATCH",
            "/conversations/{conversationId}/members/{userId}",
            json!({ "role": "owner" }),
        ),
        (
            "POST",
            "/conversations/{conversationId}/members",
            json!({ "userIds": [] }),
        ),
    ];
    for (method, path, body) in &refused {
        assert!(
            !request_problems(method, path, body).is_empty(),
            "{method} {path} {body} is refused by the code"
        );
    }
}
