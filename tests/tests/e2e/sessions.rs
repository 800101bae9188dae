//! Sessions end to end (docs/API-GUIDE.md "Signing out and revocation"), over real HTTP and WebSocket connections on the local stack:
//! listing and revoking sessions, what revocation does to the session's sockets and tokens (logout,
//! `DELETE /auth/sessions/{id}`, refresh-token reuse), forged refresh secrets, and the cap of 20 open
//! connections per user.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use futures_util::StreamExt;
use parley_tests::realtime::{events_of, next_within, send_frame, Clients, Socket, User};
use parley_tests::stack;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const PASSWORD: &str = "sessions e2e";

fn rt() -> Clients {
    Clients { stack: stack() }
}

/// One request with an optional bearer token and User-Agent.
async fn call_as(method: &str, path: &str, token: Option<&str>, user_agent: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method.parse().unwrap(), format!("{}{path}", stack().http_url))
        .header("user-agent", user_agent);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("the gateway answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok());
    parley_tests::contract::check_http_response(method, path, status, content_type, &body);
    parley_tests::contract::check_http_headers(method, path, status, &headers);
    (status, body)
}

async fn call(method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    call_as(method, path, token, "parley-e2e", body).await
}

/// A signed-in session of one user: its tokens and its id (the access token's `sid`).
#[derive(Debug, Clone)]
struct Session {
    user: User,
    access: String,
    refresh: String,
    id: String,
}

fn session_of(body: &Value) -> Session {
    let access = body["accessToken"].as_str().unwrap().to_owned();
    let claims =
        parley::auth::tokens::TokenKeys::new(local_stack::LOCAL_TOKEN_SECRET.as_bytes(), Duration::from_secs(900))
            .verify(&access)
            .expect("a token of the local stack");
    Session {
        user: User {
            id: claims.sub.clone(),
            token: access.clone(),
        },
        refresh: body["refreshToken"].as_str().unwrap().to_owned(),
        id: claims.sid,
        access,
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}{}", &ulid::Ulid::generate().to_string()[18..].to_lowercase())
}

/// Registers a new user; the first session.
async fn register(prefix: &str) -> (String, Session) {
    let username = unique(prefix);
    let (status, body) = call_as(
        "POST",
        "/auth/register",
        None,
        "Phone/1.0",
        Some(json!({ "username": username, "password": PASSWORD })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    (username, session_of(&body))
}

/// Another session of the same user.
async fn login(username: &str, user_agent: &str) -> Session {
    let (status, body) = call_as(
        "POST",
        "/auth/login",
        None,
        user_agent,
        Some(json!({ "username": username, "password": PASSWORD })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    session_of(&body)
}

async fn connect(session: &Session) -> Socket {
    rt().connect(&session.user).await
}

/// True when the server closes the socket within `wait` (a close frame or the end of the stream).
async fn closed_within(socket: &mut Socket, wait: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Err(_) => return false,
            Ok(None | Some(Ok(Message::Close(_))) | Some(Err(_))) => return true,
            Ok(Some(Ok(_))) => continue,
        }
    }
}

/// The socket still answers: a ping gets its pong.
async fn answers_ping(socket: &mut Socket) {
    send_frame(socket, json!({ "action": "ping" })).await;
    let pong = next_within(socket, Duration::from_secs(10)).await.expect("a pong");
    assert_eq!(pong["type"], "pong", "{pong}");
}

/// Polls `GET /users/me` with `token` until it is refused; how long that took. Fails after `limit`.
async fn refused_within(token: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let (status, body) = call("GET", "/users/me", Some(token), None).await;
        if status == 401 {
            assert_eq!(body["error"]["code"], "unauthorized", "{body}");
            assert!(
                body["error"]["message"].as_str().unwrap().contains("revoked"),
                "a clear message: {body}"
            );
            return started.elapsed();
        }
        assert_eq!(status, 200, "{body}");
        assert!(
            started.elapsed() < limit,
            "the access token still worked after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn list(session: &Session) -> Vec<Value> {
    let (status, body) = call("GET", "/auth/sessions", Some(&session.access), None).await;
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().unwrap().clone()
}

async fn refresh(token: &str) -> (u16, Value) {
    call("POST", "/auth/refresh", None, Some(json!({ "refreshToken": token }))).await
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_are_listed_newest_first_with_the_current_one_marked() {
    let (username, phone) = register("seslist").await;
    let laptop = login(&username, "Laptop/2.0 (a very long agent)").await;

    let items = list(&laptop).await;
    let ids: Vec<&str> = items.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [laptop.id.as_str(), phone.id.as_str()], "newest first: {items:?}");
    assert_eq!(items[0]["current"], true);
    assert_eq!(items[1]["current"], false);
    assert_eq!(items[0]["userAgent"], "Laptop/2.0 (a very long agent)");
    assert_eq!(items[1]["userAgent"], "Phone/1.0");
    for item in &items {
        for field in ["createdAt", "lastUsedAt"] {
            assert!(item[field].as_str().unwrap().ends_with('Z'), "{field}: {item}");
        }
        assert!(item.get("tokenHash").is_none() && item.get("salt").is_none(), "{item}");
    }

    // From the other session's token, the other one is current.
    let from_phone = list(&phone).await;
    let current: Vec<&str> = from_phone
        .iter()
        .filter(|s| s["current"] == true)
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(current, [phone.id.as_str()]);

    // A refresh is a use.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, _) = refresh(&phone.refresh).await;
    assert_eq!(status, 200);
    let after = list(&laptop).await;
    let phone_item = after.iter().find(|s| s["id"] == phone.id.as_str()).unwrap();
    assert!(
        phone_item["lastUsedAt"].as_str().unwrap() > phone_item["createdAt"].as_str().unwrap(),
        "{phone_item}"
    );

    // A long User-Agent is cut to 256 characters.
    let long = login(&username, &"x".repeat(400)).await;
    let items = list(&long).await;
    assert_eq!(items[0]["userAgent"].as_str().unwrap().len(), 256);
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_another_session_closes_its_socket_and_refuses_its_tokens() {
    let (username, stolen) = register("sesdel").await;
    let mine = login(&username, "Mine/1.0").await;
    let mut stolen_socket = connect(&stolen).await;
    let mut my_socket = connect(&mine).await;
    // The stolen session's token is in use (and so in the containers' caches).
    assert_eq!(call("GET", "/users/me", Some(&stolen.access), None).await.0, 200);

    let started = Instant::now();
    let (status, body) = call(
        "DELETE",
        &format!("/auth/sessions/{}", stolen.id),
        Some(&mine.access),
        None,
    )
    .await;
    assert_eq!(status, 204, "{body}");
    assert!(
        closed_within(&mut stolen_socket, Duration::from_secs(2)).await,
        "the revoked session's socket is closed at once"
    );
    let took = refused_within(&stolen.access, Duration::from_secs(6)).await;
    assert!(started.elapsed() < Duration::from_secs(6), "refused after {took:?}");
    let (status, body) = refresh(&stolen.refresh).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthorized")),
        "{body}"
    );
    // Nor can it open a new socket.
    assert_eq!(
        rt().connect_with(&format!("token={}", stolen.access)).await.err(),
        Some(401)
    );

    // The current session is untouched.
    answers_ping(&mut my_socket).await;
    assert_eq!(call("GET", "/users/me", Some(&mine.access), None).await.0, 200);
    let ids: Vec<Value> = list(&mine).await.into_iter().map(|s| s["id"].clone()).collect();
    assert_eq!(ids, [json!(mine.id)]);

    // Deleting it again is harmless.
    let (status, _) = call(
        "DELETE",
        &format!("/auth/sessions/{}", stolen.id),
        Some(&mine.access),
        None,
    )
    .await;
    assert_eq!(status, 204);
}

#[tokio::test(flavor = "multi_thread")]
async fn logout_closes_the_logged_out_sessions_socket() {
    let (username, leaving) = register("seslogout").await;
    let staying = login(&username, "Staying/1.0").await;
    let (_, friend) = register("sesfriend").await;
    let conversation = rt().group(&friend.user, &[&leaving.user]).await;
    let mut leaving_socket = connect(&leaving).await;
    let mut staying_socket = connect(&staying).await;

    let (status, _) = call("POST", "/auth/logout", Some(&leaving.access), None).await;
    assert_eq!(status, 204);
    // The logout closes the socket before it answers, so the close is already on its way.
    assert!(
        closed_within(&mut leaving_socket, Duration::from_secs(2)).await,
        "the logged-out session's socket is closed at once; the logout function said:\n{}",
        stack().logs_of("auth-logout").join("\n")
    );

    // What leaked before: a message sent after logout reached the logged-out socket. The socket is
    // gone; the user's other device still gets it.
    let sent = rt()
        .http_send(&friend.user, &conversation, "after-logout", "still there?")
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let frame = next_within(&mut staying_socket, deadline.saturating_duration_since(Instant::now()))
            .await
            .expect("the other device gets the message");
        // Events of the group's creation may come first.
        if events_of(frame).iter().any(|e| e["message"]["id"] == sent["id"]) {
            break;
        }
    }
    assert!(leaving_socket
        .next()
        .await
        .is_none_or(|frame| !matches!(frame, Ok(Message::Text(_)))));

    refused_within(&leaving.access, Duration::from_secs(6)).await;
    assert_eq!(
        rt().connect_with(&format!("token={}", leaving.access)).await.err(),
        Some(401)
    );
    // Logging out twice is harmless.
    assert_eq!(call("POST", "/auth/logout", Some(&leaving.access), None).await.0, 204);
}

/// A phone that lost a refresh's answer (its connection dropped) retries with the same token within the
/// grace: it gets the same pair, and its session, tokens and socket live on.
#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_retried_after_a_lost_answer_gets_the_same_pair_and_the_session_lives_on() {
    let (_, phone) = register("sesretry").await;
    let mut socket = rt()
        .connect(&User {
            id: phone.user.id.clone(),
            token: phone.access.clone(),
        })
        .await;
    let (status, first) = refresh(&phone.refresh).await;
    assert_eq!(status, 200, "{first}");
    let (status, retried) = refresh(&phone.refresh).await;
    assert_eq!(status, 200, "the retry is answered: {retried}");
    assert_eq!(retried["refreshToken"], first["refreshToken"], "the same refresh token");
    assert_eq!(retried["accessToken"], first["accessToken"], "the same access token");
    answers_ping(&mut socket).await;
    let access = retried["accessToken"].as_str().unwrap();
    assert_eq!(call("GET", "/users/me", Some(access), None).await.0, 200);
    let (status, next) = refresh(retried["refreshToken"].as_str().unwrap()).await;
    assert_eq!(status, 200, "the session rotates on: {next}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forged_old_generation_refresh_token_revokes_nothing_and_a_real_reuse_revokes_all() {
    let (_, victim) = register("sesforge").await;
    let (status, first) = refresh(&victim.refresh).await;
    assert_eq!(status, 200, "{first}");
    let current = first["refreshToken"].as_str().unwrap().to_owned();
    let mut socket = rt()
        .connect(&User {
            id: victim.user.id.clone(),
            token: first["accessToken"].as_str().unwrap().to_owned(),
        })
        .await;

    // Session id and an older generation are not secret; the secret is. A made-up one is only a 401.
    for _ in 0..3 {
        let secret: String = ulid::Ulid::generate().to_string() + &ulid::Ulid::generate().to_string()[..17];
        let forged = format!("rt1.{}.0.{secret}", victim.id);
        assert_eq!(secret.len(), 43);
        let (status, body) = refresh(&forged).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (401, Some("unauthorized")),
            "{body}"
        );
        assert!(
            !body["error"]["message"].as_str().unwrap().contains("already used"),
            "{body}"
        );
    }
    answers_ping(&mut socket).await;
    let (status, second) = refresh(&current).await;
    assert_eq!(status, 200, "the victim's real token still works: {second}");
    let newest = second["refreshToken"].as_str().unwrap().to_owned();

    // The genuine first token, used again: that is reuse, and the whole session ends.
    let (status, body) = refresh(&victim.refresh).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("already used"),
        "{body}"
    );
    assert!(
        closed_within(&mut socket, Duration::from_secs(2)).await,
        "the session's socket is closed"
    );
    assert_eq!(refresh(&newest).await.0, 401);
    refused_within(second["accessToken"].as_str().unwrap(), Duration::from_secs(6)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_for_the_session_routes() {
    let (_, alice) = register("sesbad").await;
    let (_, bob) = register("sesbadb").await;
    let path = format!("/auth/sessions/{}", bob.id);

    for (method, route) in [("GET", "/auth/sessions".to_owned()), ("DELETE", path.clone())] {
        let (status, body) = call(method, &route, None, None).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (401, Some("unauthorized")),
            "{body}"
        );
        let (status, body) = call(method, &route, Some("not-a-token"), None).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (401, Some("unauthorized")),
            "{body}"
        );
        assert!(body["requestId"].is_string());
    }

    // Another user's session is not found, and nothing happens to it.
    let (status, body) = call("DELETE", &path, Some(&alice.access), None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
    let unknown = format!("/auth/sessions/{}", ulid::Ulid::generate());
    let (status, body) = call("DELETE", &unknown, Some(&alice.access), None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
    assert_eq!(call("GET", "/users/me", Some(&bob.access), None).await.0, 200);
    assert_eq!(list(&bob).await.len(), 1, "bob's session is still live");
    assert_eq!(refresh(&bob.refresh).await.0, 200, "and its refresh token works");

    // A malformed id is a validation error, as every malformed id in a path.
    for bad in [
        "nope",
        "01JH3Z4S0XJWT7H5P6ZD1FV8Y!",
        "01JH3Z4S0XJWT7H5P6ZD1FV8Y",
        "01JH3Z4S0XJWT7H5P6ZD1FV8YMX",
    ] {
        let (status, body) = call("DELETE", &format!("/auth/sessions/{bad}"), Some(&alice.access), None).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("validation_failed")),
            "{bad}: {body}"
        );
    }
    // One's own session, the current one included, can be revoked.
    let (status, _) = call(
        "DELETE",
        &format!("/auth/sessions/{}", alice.id),
        Some(&alice.access),
        None,
    )
    .await;
    assert_eq!(status, 204);
    refused_within(&alice.access, Duration::from_secs(6)).await;
}

/// Writes a connection straight into the store that API Gateway does not know (closed without a
/// `$disconnect`), connected long ago.
async fn stale_connection(user_id: &str) -> String {
    let sdk = dynamodb_local::sdk_config(&stack().dynamodb_endpoint).await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let id = format!("stale{}=", &ulid::Ulid::generate().to_string()[16..]);
    client
        .put_item()
        .table_name("ChatTable")
        .item("PK", AttributeValue::S(format!("CONN#{id}")))
        .item("SK", AttributeValue::S("CONN".into()))
        .item("connectionId", AttributeValue::S(id.clone()))
        .item("userId", AttributeValue::S(user_id.to_owned()))
        .item("connectedAt", AttributeValue::S("2000-01-01T00:00:00.000Z".into()))
        .item("expiresAt", AttributeValue::N("4102444800".into()))
        .send()
        .await
        .unwrap();
    client
        .update_item()
        .table_name("ChatTable")
        .key("PK", AttributeValue::S(format!("USER#{user_id}")))
        .key("SK", AttributeValue::S("CONNS".into()))
        .update_expression("ADD connectionIds :id")
        .expression_attribute_values(":id", AttributeValue::Ss(vec![id.clone()]))
        .send()
        .await
        .unwrap();
    id
}

#[tokio::test(flavor = "multi_thread")]
async fn the_21st_connection_is_refused_until_one_closes() {
    let (_, owner) = register("sescap").await;
    let mut sockets = Vec::new();
    for _ in 0..20 {
        sockets.push(connect(&owner).await);
    }
    assert_eq!(
        rt().connect_with(&format!("token={}", owner.access)).await.err(),
        Some(429),
        "the 21st is refused on the upgrade"
    );
    // Still 20 working connections.
    answers_ping(sockets.last_mut().unwrap()).await;

    // Close one: its `$disconnect` frees the slot.
    let mut closing = sockets.pop().unwrap();
    closing.close(None).await.unwrap();
    let started = Instant::now();
    let mut reopened = loop {
        match rt().connect_with(&format!("token={}", owner.access)).await {
            Ok(socket) => break socket,
            Err(429) if started.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(status) => panic!("after a close, the upgrade answered {status}"),
        }
    };
    answers_ping(&mut reopened).await;
    sockets.push(reopened);

    // A gone connection left in the set (no `$disconnect` ever came) does not hold a slot: a connect
    // that finds the set full asks API Gateway, which answers 410 for it, and drops it.
    drop(sockets.pop());
    let started = Instant::now();
    let slot_free = loop {
        // Wait for that close's `$disconnect`, then fill the slot with a stale entry.
        let sdk = dynamodb_local::sdk_config(&stack().dynamodb_endpoint).await;
        let set = aws_sdk_dynamodb::Client::new(&sdk)
            .get_item()
            .table_name("ChatTable")
            .key("PK", AttributeValue::S(format!("USER#{}", owner.user.id)))
            .key("SK", AttributeValue::S("CONNS".into()))
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        let held = set
            .item
            .and_then(|i| i.get("connectionIds").and_then(|v| v.as_ss().ok()).map(Vec::len))
            .unwrap_or(0);
        if held < 20 {
            break held;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the close never freed its slot"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(slot_free, 19);
    stale_connection(&owner.user.id).await;
    let mut last = connect(&owner).await;
    answers_ping(&mut last).await;
    assert_eq!(
        rt().connect_with(&format!("token={}", owner.access)).await.err(),
        Some(429),
        "and the cap holds again"
    );
}
