//! End to end over real HTTP: the real function binaries behind the local stack's gateway, on
//! DynamoDB Local, exactly as the README's run command serves them.

use parley_template::{workspace_template_path, Template};
use parley_tests::{eventually, stack};
use serde_json::{json, Value};

async fn call(method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let answer = stack().call(method, path, token, body).await;
    (answer.status, answer.body)
}

fn unique(prefix: &str) -> String {
    format!("{prefix}{}", &ulid::Ulid::generate().to_string()[16..].to_lowercase())
}

#[tokio::test(flavor = "multi_thread")]
async fn every_function_in_the_template_starts_and_answers() {
    let functions = Template::load(&workspace_template_path()).unwrap().functions().unwrap();
    // The WebSocket functions: connect (authorizer, $connect), a frame for each route, close ($disconnect).
    let (status, registered) = call(
        "POST",
        "/auth/register",
        None,
        Some(json!({ "username": unique("wsall"), "password": "every function" })),
    )
    .await;
    assert_eq!(status, 201);
    let token = registered["accessToken"].as_str().unwrap();
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("{}/?token={token}", stack().ws_url))
        .await
        .unwrap();
    let somewhere = ulid::Ulid::generate().to_string();
    for frame in [
        json!({ "action": "ping" }),
        json!({ "action": "sendMessage", "conversationId": somewhere, "clientMessageId": "x", "body": "x" }),
        json!({ "action": "typing", "conversationId": somewhere }),
        json!({ "action": "markRead", "conversationId": somewhere, "messageId": somewhere }),
        json!({ "action": "nothing" }),
    ] {
        use futures_util::{SinkExt, StreamExt};
        socket
            .send(tokio_tungstenite::tungstenite::Message::text(frame.to_string()))
            .await
            .unwrap();
        let answer = tokio::time::timeout(std::time::Duration::from_secs(15), socket.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let answer: Value = serde_json::from_str(answer.to_text().unwrap()).unwrap();
        assert!(
            matches!(answer["type"].as_str(), Some("pong" | "error")),
            "{frame} -> {answer}"
        );
    }
    socket.close(None).await.unwrap();
    let disconnect = functions.iter().find(|f| f.binary == "ws-disconnect").unwrap();
    for _ in 0..100 {
        if stack().stats(&disconnect.binary).unwrap().cold_starts > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Functions no API routes to are invoked directly with their sample event.
    for function in functions
        .iter()
        .filter(|f| f.http_routes.is_empty() && !f.binary.starts_with("ws-"))
    {
        let sample: Value = serde_json::from_str(
            &std::fs::read_to_string(
                workspace_template_path()
                    .with_file_name("events")
                    .join(format!("{}.json", function.binary)),
            )
            .unwrap(),
        )
        .unwrap();
        let name = function.binary.clone();
        let result = tokio::task::spawn_blocking(move || stack().invoke(&name, sample))
            .await
            .unwrap();
        assert!(result.is_ok(), "{} failed: {result:?}", function.binary);
    }
    for function in &functions {
        for route in &function.http_routes {
            let path = route.path.replace("{userId}", &ulid::Ulid::generate().to_string());
            let (status, body) = call(&route.method, &path, None, None).await;
            let from_the_function = (body["error"]["code"].is_string() && body["requestId"].is_string())
                || ((200..300).contains(&status) && body.get("message").is_none());
            assert!(
                from_the_function,
                "{} {} answered {status} {body}: not an answer from the function",
                route.method, route.path
            );
        }
        let stats = stack().stats(&function.binary).unwrap();
        assert!(stats.cold_starts >= 1, "{} never started", function.binary);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_account_lives_through_the_gateway() {
    let username = unique("e2e");
    let (status, registered) = call(
        "POST",
        "/auth/register",
        None,
        Some(json!({ "username": username, "password": "through the gateway", "displayName": "E2E" })),
    )
    .await;
    assert_eq!(status, 201, "{registered}");
    let access = registered["accessToken"].as_str().unwrap();
    let user_id = registered["user"]["id"].as_str().unwrap();

    let (status, me) = call("GET", "/users/me?fields=username", Some(access), None).await;
    assert_eq!((status, me), (200, json!({ "id": user_id, "username": username })));

    let (status, patched) = call("PATCH", "/users/me", Some(access), Some(json!({ "status": "busy" }))).await;
    assert_eq!((status, patched["status"].as_str()), (200, Some("busy")));

    let (status, other) = call("GET", &format!("/users/{user_id}"), Some(access), None).await;
    assert_eq!((status, other["status"].as_str()), (200, Some("busy")));

    let (status, many) = call("GET", &format!("/users?ids={user_id}"), Some(access), None).await;
    assert_eq!((status, many["items"][0]["id"].as_str()), (200, Some(user_id)));

    let (status, login) = call(
        "POST",
        "/auth/login",
        None,
        Some(json!({ "username": username, "password": "through the gateway" })),
    )
    .await;
    assert_eq!(status, 200);
    let (status, refreshed) = call(
        "POST",
        "/auth/refresh",
        None,
        Some(json!({ "refreshToken": login["refreshToken"] })),
    )
    .await;
    assert_eq!(status, 200, "{refreshed}");
    let (status, _) = call("POST", "/auth/logout", refreshed["accessToken"].as_str(), None).await;
    assert_eq!(status, 204);
    let (status, _) = call(
        "POST",
        "/auth/refresh",
        None,
        Some(json!({ "refreshToken": refreshed["refreshToken"] })),
    )
    .await;
    assert_eq!(status, 401);
}

/// A response of a hand-made request, held to openapi.yaml like every `Stack::call` answer; its body.
async fn checked(method: &str, path: &str, response: reqwest::Response) -> Value {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok());
    parley_tests::contract::check_http_response(method, path, status, content_type, &body);
    parley_tests::contract::check_http_headers(method, path, status, &headers);
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_get_api_errors_through_the_gateway() {
    let client = reqwest::Client::new();
    let url = &stack().http_url;
    let malformed = client
        .post(format!("{url}/auth/register"))
        .header("content-type", "application/json")
        .body("{\"username\":")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    assert_eq!(
        checked("POST", "/auth/register", malformed).await["error"]["code"],
        "invalid_json"
    );

    let oversize = client
        .post(format!("{url}/auth/register"))
        .header("content-type", "application/json")
        .body(format!("{{\"username\":\"{}\"}}", "x".repeat(70 * 1024)))
        .send()
        .await
        .unwrap();
    assert_eq!(oversize.status(), 413);
    assert_eq!(
        checked("POST", "/auth/register", oversize).await["error"]["code"],
        "payload_too_large"
    );

    let (status, body) = call("GET", "/users/me", Some("not-a-token"), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthorized")));

    let (status, body) = call("GET", "/no/such/route", None, None).await;
    assert_eq!((status, body), (404, json!({ "message": "Not Found" })));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_conversation_lives_through_the_gateway() {
    let mut users = Vec::new();
    for name in ["chatter", "listener"] {
        let (status, body) = call(
            "POST",
            "/auth/register",
            None,
            Some(json!({ "username": unique(name), "password": "through the gateway" })),
        )
        .await;
        assert_eq!(status, 201);
        users.push((
            body["user"]["id"].as_str().unwrap().to_owned(),
            body["accessToken"].as_str().unwrap().to_owned(),
        ));
    }
    let ((a_id, a), (b_id, b)) = (&users[0], &users[1]);
    let (status, direct) = call(
        "POST",
        "/conversations",
        Some(a),
        Some(json!({ "type": "direct", "memberIds": [b_id] })),
    )
    .await;
    assert_eq!(status, 201, "{direct}");
    let id = direct["id"].as_str().unwrap();
    let (status, again) = call(
        "POST",
        "/conversations",
        Some(b),
        Some(json!({ "type": "direct", "memberIds": [a_id] })),
    )
    .await;
    assert_eq!((status, again["id"].as_str()), (200, Some(id)));

    let messages = format!("/conversations/{id}/messages");
    let (status, sent) = call(
        "POST",
        &messages,
        Some(a),
        Some(json!({ "clientMessageId": "e2e-1", "body": "over the wire" })),
    )
    .await;
    assert_eq!(status, 201, "{sent}");
    let (status, retried) = call(
        "POST",
        &messages,
        Some(a),
        Some(json!({ "clientMessageId": "e2e-1", "body": "over the wire" })),
    )
    .await;
    assert_eq!((status, retried["id"].clone()), (200, sent["id"].clone()));

    let (status, page) = call("GET", &format!("{messages}?limit=10"), Some(b), None).await;
    assert_eq!(
        (status, page["items"][0]["body"].as_str()),
        (200, Some("over the wire"))
    );
    // The unread count follows from the conversation worker, a moment after the send's answer.
    let listed = eventually(&(200, Some(1)), || async {
        let (status, listed) = call("GET", "/conversations", Some(b), None).await;
        (status, listed["items"][0]["unreadCount"].as_u64())
    })
    .await;
    assert_eq!(listed, (200, Some(1)));
    let (status, _) = call(
        "POST",
        &format!("/conversations/{id}/read"),
        Some(b),
        Some(json!({ "messageId": sent["id"] })),
    )
    .await;
    assert_eq!(status, 204);
    let (_, listed) = call("GET", "/conversations", Some(b), None).await;
    assert_eq!(listed["items"][0]["unreadCount"], 0);

    let message = format!("{messages}/{}", sent["id"].as_str().unwrap());
    let (status, _) = call("PATCH", &message, Some(b), Some(json!({ "body": "not mine" }))).await;
    assert_eq!(status, 403);
    let (status, edited) = call(
        "PATCH",
        &message,
        Some(a),
        Some(json!({ "body": "over the wire, edited" })),
    )
    .await;
    assert_eq!((status, edited["body"].as_str()), (200, Some("over the wire, edited")));
    let (status, _) = call("DELETE", &message, Some(a), None).await;
    assert_eq!(status, 204);
    let (_, page) = call("GET", &messages, Some(b), None).await;
    assert_eq!(
        (page["items"][0]["deleted"].as_bool(), page["items"][0]["body"].as_str()),
        (Some(true), Some(""))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_invocation_writes_an_embedded_metric_format_line() {
    let (status, _) = call(
        "POST",
        "/auth/login",
        None,
        Some(json!({ "username": "nobody-here", "password": "wrong password" })),
    )
    .await;
    assert_eq!(status, 401);
    let login_errors = |lines: &[String]| -> Option<Value> {
        lines
            .iter()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .find(|doc| doc.get("_aws").is_some() && doc["statusCode"] == 401)
    };
    let lines = stack()
        .logs_when("auth-login", std::time::Duration::from_secs(10), |lines| {
            login_errors(lines).is_some()
        })
        .await;
    let metrics = login_errors(&lines).expect("an EMF line from auth-login");
    assert_eq!(metrics["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Parley");
    assert_eq!(metrics["Route"], "POST /auth/login", "keyed by route, not raw path");
    assert_eq!(metrics["Function"], "AuthLoginFunction");
    assert_eq!(
        (metrics["Errors4xx"].as_f64(), metrics["Errors5xx"].as_f64()),
        (Some(1.0), Some(0.0))
    );
    assert_eq!(metrics["errorCode"], "unauthorized");
    assert!(metrics["Latency"].as_f64().unwrap() > 0.0);
    assert!(
        metrics["DynamoDBCalls"].as_f64().unwrap() >= 1.0,
        "the username lookup is counted"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn large_responses_are_compressed_as_the_client_accepts() {
    use std::io::Read;
    let (status, body) = call(
        "POST",
        "/auth/register",
        None,
        Some(json!({ "username": unique("zip"), "password": "squeeze me please" })),
    )
    .await;
    assert_eq!(status, 201);
    let token = body["accessToken"].as_str().unwrap().to_owned();
    let (_, group) = call(
        "POST",
        "/conversations",
        Some(&token),
        Some(json!({ "type": "group", "name": "zip", "memberIds": [] })),
    )
    .await;
    let messages = format!("/conversations/{}/messages", group["id"].as_str().unwrap());
    for i in 0..20 {
        let body = json!({ "clientMessageId": format!("z{i}"), "body": "a message long enough to make the page bigger than a kibibyte" });
        assert_eq!(call("POST", &messages, Some(&token), Some(body)).await.0, 201);
    }
    let fetch = |encoding: &'static str, path: String| {
        let token = token.clone();
        async move {
            let response = reqwest::Client::new()
                .get(format!("{}{path}", stack().http_url))
                .bearer_auth(token)
                .header("accept-encoding", encoding)
                .send()
                .await
                .unwrap();
            let encoding = response
                .headers()
                .get("content-encoding")
                .map(|v| v.to_str().unwrap().to_owned());
            (encoding, response.bytes().await.unwrap().to_vec())
        }
    };
    let (plain_encoding, plain) = fetch("identity", messages.clone()).await;
    assert_eq!(plain_encoding, None);
    let page: Value = serde_json::from_slice(&plain).unwrap();
    assert!(plain.len() > 1024 && page["items"].as_array().unwrap().len() == 20);

    let (encoding, bytes) = fetch("gzip, deflate, br", messages.clone()).await;
    assert_eq!(encoding.as_deref(), Some("br"));
    let mut text = Vec::new();
    brotli::Decompressor::new(&bytes[..], 4096)
        .read_to_end(&mut text)
        .unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&text).unwrap(), page);
    assert!(bytes.len() < plain.len() / 2);

    let (encoding, bytes) = fetch("gzip", messages.clone()).await;
    assert_eq!(encoding.as_deref(), Some("gzip"));
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(&bytes[..]).read_to_end(&mut text).unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&text).unwrap(), page);

    let (encoding, _) = fetch("zstd-from-the-future", messages.clone()).await;
    assert_eq!(encoding, None, "an unknown coding gets the plain body");
    let (encoding, small) = fetch("br", "/users/me".to_owned()).await;
    assert_eq!(encoding, None, "a body under 1 KiB is left alone");
    assert!(serde_json::from_slice::<Value>(&small).is_ok());
}
