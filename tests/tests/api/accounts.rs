//! Registration, password sign-in, tokens, refresh rotation and logout, against DynamoDB Local.

use std::time::{Duration, SystemTime};

use parley::api::{auth, users};
use parley::auth::tokens::TokenKeys;
use parley::config::Config;
use parley::AppContext;
use parley_tests::{TestApp, TestRequest, TEST_TOKEN_SECRET};
use serde_json::{json, Value};

fn register_request(body: Value) -> TestRequest {
    TestRequest::new("POST", "/auth/register").json(body)
}

fn login_request(username: &str, password: &str) -> TestRequest {
    TestRequest::new("POST", "/auth/login").json(json!({ "username": username, "password": password }))
}

fn refresh_request(token: &str) -> TestRequest {
    TestRequest::new("POST", "/auth/refresh").json(json!({ "refreshToken": token }))
}

fn me(token: &str) -> TestRequest {
    TestRequest::new("GET", "/users/me").bearer(token)
}

fn str_of<'a>(body: &'a Value, field: &str) -> &'a str {
    body[field].as_str().unwrap_or_else(|| panic!("{field} in {body}"))
}

#[tokio::test]
async fn register_signs_in_and_the_tokens_work() {
    let app = TestApp::new().await;
    let response = app
        .call(
            auth::register,
            register_request(json!({ "username": "Alice", "password": "wonderland", "displayName": " Alice L. " })),
        )
        .await;
    assert_eq!(response.status, 201, "{}", response.body);
    let body = &response.body;
    assert_eq!(body["user"]["username"], "alice", "usernames are case-folded");
    assert_eq!(body["user"]["displayName"], "Alice L.");
    assert_eq!(body["user"]["status"], "online");
    assert_eq!(body["expiresIn"], 900);
    assert!(body["user"]["createdAt"].as_str().unwrap().ends_with('Z'));
    assert!(
        body["user"].get("passwordHash").is_none(),
        "the hash never leaves the server"
    );
    assert!(response.headers.contains_key("x-request-id"));

    let me = app.call(users::get_me, me(str_of(body, "accessToken"))).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body, body["user"]);

    let login = app.call(auth::login, login_request("ALICE", "wonderland")).await;
    assert_eq!(login.status, 200, "{}", login.body);
    assert_eq!(login.body["user"]["id"], body["user"]["id"]);
    assert_ne!(
        login.body["refreshToken"], body["refreshToken"],
        "each sign-in is its own session"
    );
}

#[tokio::test]
async fn malformed_json_wrong_types_and_missing_fields_are_named() {
    let app = TestApp::new().await;
    let not_json = app
        .call(
            auth::register,
            TestRequest::new("POST", "/auth/register")
                .header("content-type", "application/json")
                .raw_body("{\"username\": "),
        )
        .await;
    not_json.assert_error(400, "invalid_json");

    let trailing = app
        .call(
            auth::register,
            TestRequest::new("POST", "/auth/register").raw_body("{} {}"),
        )
        .await;
    trailing.assert_error(400, "invalid_json");

    let empty = app
        .call(auth::register, TestRequest::new("POST", "/auth/register"))
        .await;
    empty.assert_error(400, "invalid_json");

    let wrong_type = app
        .call(
            auth::register,
            register_request(json!({ "username": 42, "password": "password1" })),
        )
        .await;
    wrong_type.assert_error(400, "validation_failed");
    assert_eq!(wrong_type.body["error"]["details"][0]["field"], "username");

    let missing = app
        .call(auth::register, register_request(json!({ "username": "bob" })))
        .await;
    missing.assert_error(400, "validation_failed");
    assert_eq!(missing.body["error"]["details"][0]["field"], "password");

    let not_an_object = app
        .call(auth::register, register_request(json!(["bob", "password1"])))
        .await;
    not_an_object.assert_error(400, "validation_failed");

    let several = app
        .call(
            auth::register,
            register_request(json!({ "username": "b!", "password": "short", "displayName": "" })),
        )
        .await;
    several.assert_error(400, "validation_failed");
    let fields: Vec<&str> = several.body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["username", "password", "displayName"],
        "every bad field is named at once"
    );

    let control = app
        .call(
            auth::register,
            register_request(json!({ "username": "carol", "password": "password1", "displayName": "a\u{0}b" })),
        )
        .await;
    control.assert_error(400, "validation_failed");

    assert!(
        app.all_keys().await.is_empty(),
        "nothing was written by any bad request"
    );

    let unknown_fields = app
        .call(
            auth::register,
            register_request(json!({ "username": "dave", "password": "password1", "favouriteColour": "green" })),
        )
        .await;
    assert_eq!(
        unknown_fields.status, 201,
        "unknown fields are ignored: {}",
        unknown_fields.body
    );
}

#[tokio::test]
async fn oversize_bodies_and_other_media_types_are_refused() {
    let app = TestApp::new().await;
    let huge = json!({ "username": "erin", "password": "password1", "displayName": "x".repeat(70 * 1024) });
    app.call(auth::register, register_request(huge))
        .await
        .assert_error(413, "payload_too_large");

    let form = TestRequest::new("POST", "/auth/register")
        .header("content-type", "application/x-www-form-urlencoded")
        .raw_body("username=erin&password=password1");
    app.call(auth::register, form)
        .await
        .assert_error(415, "unsupported_media_type");

    let json_with_charset = TestRequest::new("POST", "/auth/register")
        .header("content-type", "application/json; charset=utf-8")
        .raw_body(&json!({ "username": "erin", "password": "password1" }).to_string());
    assert_eq!(app.call(auth::register, json_with_charset).await.status, 201);
}

#[tokio::test]
async fn a_taken_username_is_a_conflict_and_writes_nothing() {
    let app = TestApp::new().await;
    app.register("frank").await;
    let before = app.all_keys().await;

    let again = app
        .call(
            auth::register,
            register_request(json!({ "username": "FRANK", "password": "another-password" })),
        )
        .await;
    again.assert_error(409, "conflict");
    assert_eq!(app.all_keys().await, before, "no half-written user, claim or session");

    let profiles = before.iter().filter(|(_, sk)| sk == "PROFILE").count();
    assert_eq!(profiles, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_registrations_of_one_name_create_one_user() {
    let app = TestApp::new().await;
    let attempt = |i: u32| {
        app.call(
            auth::register,
            register_request(json!({ "username": "grace", "password": format!("password-{i}") })),
        )
    };
    let (a, b, c, d) = tokio::join!(attempt(0), attempt(1), attempt(2), attempt(3));
    let statuses: Vec<u16> = [a, b, c, d].iter().map(|r| r.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 3, "{statuses:?}");
    let profiles = app
        .all_keys()
        .await
        .into_iter()
        .filter(|(_, sk)| sk == "PROFILE")
        .count();
    assert_eq!(profiles, 1);
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_401() {
    let app = TestApp::new().await;
    app.register("heidi").await;
    let wrong_password = app.call(auth::login, login_request("heidi", "not-her-password")).await;
    let unknown_user = app.call(auth::login, login_request("ivan", "whatever-password")).await;
    let invalid_name = app.call(auth::login, login_request("!!", "whatever-password")).await;
    for response in [&wrong_password, &unknown_user, &invalid_name] {
        response.assert_error(401, "unauthorized");
        assert_eq!(
            response.body["error"], wrong_password.body["error"],
            "one answer for all"
        );
    }
    let missing_password = app
        .call(
            auth::login,
            TestRequest::new("POST", "/auth/login").json(json!({ "username": "heidi" })),
        )
        .await;
    missing_password.assert_error(400, "validation_failed");
}

#[tokio::test]
async fn expired_tampered_and_foreign_tokens_are_401() {
    let app = TestApp::new().await;
    let alice = app.register("judy").await;
    let user_id = alice["user"]["id"].as_str().unwrap();
    let keys = TokenKeys::new(TEST_TOKEN_SECRET.as_bytes(), Duration::from_secs(900));

    let expired = keys
        .issue(user_id, "S", SystemTime::now() - Duration::from_secs(901 + 10))
        .unwrap();
    app.call(users::get_me, me(&expired))
        .await
        .assert_error(401, "unauthorized");

    let valid = alice["accessToken"].as_str().unwrap();
    let mut tampered: Vec<char> = valid.chars().collect();
    let middle = valid.find('.').unwrap() + 5;
    tampered[middle] = if tampered[middle] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    app.call(users::get_me, me(&tampered))
        .await
        .assert_error(401, "unauthorized");

    let foreign = TokenKeys::new(b"some-other-secret-some-other-secret!", Duration::from_secs(900))
        .issue(user_id, "S", SystemTime::now())
        .unwrap();
    app.call(users::get_me, me(&foreign))
        .await
        .assert_error(401, "unauthorized");

    app.call(users::get_me, TestRequest::new("GET", "/users/me"))
        .await
        .assert_error(401, "unauthorized");
    let basic = TestRequest::new("GET", "/users/me").header("authorization", "Basic dXNlcjpwYXNz");
    app.call(users::get_me, basic).await.assert_error(401, "unauthorized");
    app.call(users::get_me, me("not.a.jwt"))
        .await
        .assert_error(401, "unauthorized");

    assert_eq!(
        app.call(users::get_me, me(valid)).await.status,
        200,
        "the real token still works"
    );
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_whole_session() {
    let app = TestApp::new().await;
    let first = app.register("mallory").await;
    let original = str_of(&first, "refreshToken").to_owned();

    let rotated = app.call(auth::refresh, refresh_request(&original)).await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let second = str_of(&rotated.body, "refreshToken").to_owned();
    assert_ne!(second, original);
    assert_eq!(rotated.body["expiresIn"], 900);
    let access = str_of(&rotated.body, "accessToken");
    assert_eq!(app.call(users::get_me, me(access)).await.status, 200);

    let third = app.call(auth::refresh, refresh_request(&second)).await;
    assert_eq!(third.status, 200);
    let newest = str_of(&third.body, "refreshToken").to_owned();

    // The first token was rotated away: using it again is reuse.
    let reused = app.call(auth::refresh, refresh_request(&original)).await;
    reused.assert_error(401, "unauthorized");
    assert!(reused.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("already used"));

    // ...which ends the session: the newest token no longer works either.
    app.call(auth::refresh, refresh_request(&newest))
        .await
        .assert_error(401, "unauthorized");

    // Another session of the same user is untouched.
    let other = app
        .call(auth::login, login_request("mallory", "password-mallory"))
        .await;
    let other_token = str_of(&other.body, "refreshToken");
    assert_eq!(app.call(auth::refresh, refresh_request(other_token)).await.status, 200);
}

/// A client that lost a refresh's answer retries with the same token: within the grace it gets the same
/// pair again, and the session lives on; an older token is still reuse.
#[tokio::test]
async fn a_refresh_retried_within_the_grace_gets_the_same_pair_again() {
    let app = TestApp::new().await;
    let first = app.register("retrier").await;
    let original = str_of(&first, "refreshToken").to_owned();

    let rotated = app.call(auth::refresh, refresh_request(&original)).await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let retried = app.call(auth::refresh, refresh_request(&original)).await;
    assert_eq!(retried.status, 200, "{}", retried.body);
    for field in ["refreshToken", "accessToken", "expiresIn"] {
        assert_eq!(
            retried.body[field], rotated.body[field],
            "{field}: the same answer again"
        );
    }
    let access = str_of(&retried.body, "accessToken");
    assert_eq!(app.call(users::get_me, me(access)).await.status, 200);

    // The session lives on: the new token rotates as usual...
    let next = app
        .call(auth::refresh, refresh_request(str_of(&retried.body, "refreshToken")))
        .await;
    assert_eq!(next.status, 200, "{}", next.body);
    // ...and once it has, the original is two rotations old: reuse, which ends the session.
    let reused = app.call(auth::refresh, refresh_request(&original)).await;
    reused.assert_error(401, "unauthorized");
    assert!(str_of(&reused.body["error"], "message").contains("already used"));
    app.call(auth::refresh, refresh_request(str_of(&next.body, "refreshToken")))
        .await
        .assert_error(401, "unauthorized");
}

/// Two tries of one refresh racing each other (the retry sent before the first answer came back): both
/// get the same pair, whichever rotated the session.
#[tokio::test]
async fn concurrent_tries_of_one_refresh_get_the_same_pair() {
    let app = TestApp::new().await;
    let first = app.register("racer").await;
    let original = str_of(&first, "refreshToken").to_owned();
    let (a, b) = tokio::join!(
        app.call(auth::refresh, refresh_request(&original)),
        app.call(auth::refresh, refresh_request(&original))
    );
    assert_eq!((a.status, b.status), (200, 200), "{} {}", a.body, b.body);
    assert_eq!(a.body["refreshToken"], b.body["refreshToken"]);
    assert_eq!(a.body["accessToken"], b.body["accessToken"]);
    let next = app
        .call(auth::refresh, refresh_request(str_of(&a.body, "refreshToken")))
        .await;
    assert_eq!(next.status, 200, "the session lives on: {}", next.body);
}

/// After the grace the just-rotated token is reuse like any other.
#[tokio::test]
async fn a_refresh_retried_after_the_grace_revokes_the_session() {
    let app = TestApp::new().await;
    let strict = app.another_container(&[("REFRESH_RETRY_GRACE_MS", "0")]).await;
    let refresh_on =
        |token: String| async move { parley_tests::call_on(strict, auth::refresh, refresh_request(&token)).await };
    let first = app.register("late").await;
    let original = str_of(&first, "refreshToken").to_owned();
    let rotated = refresh_on(original.clone()).await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let reused = refresh_on(original).await;
    reused.assert_error(401, "unauthorized");
    assert!(str_of(&reused.body["error"], "message").contains("already used"));
    refresh_on(str_of(&rotated.body, "refreshToken").to_owned())
        .await
        .assert_error(401, "unauthorized");
}

#[tokio::test]
async fn garbage_refresh_tokens_are_401_without_revoking() {
    let app = TestApp::new().await;
    let signed_in = app.register("niaj").await;
    let token = str_of(&signed_in, "refreshToken");
    let (head, _) = token.rsplit_once('.').unwrap();
    let wrong_secret = format!("{head}.{}", "A".repeat(43));
    for bad in ["", "garbage", "rt1.x.0.y", wrong_secret.as_str()] {
        app.call(auth::refresh, refresh_request(bad))
            .await
            .assert_error(401, "unauthorized");
    }
    assert_eq!(
        app.call(auth::refresh, refresh_request(token)).await.status,
        200,
        "a forged secret does not end the session"
    );
    let wrong_type = TestRequest::new("POST", "/auth/refresh").json(json!({ "refreshToken": 12 }));
    app.call(auth::refresh, wrong_type)
        .await
        .assert_error(400, "validation_failed");
}

#[tokio::test]
async fn logout_revokes_the_sessions_refresh_token() {
    let app = TestApp::new().await;
    let signed_in = app.register("olivia").await;
    let access = str_of(&signed_in, "accessToken");
    let refresh = str_of(&signed_in, "refreshToken");

    let logout = app
        .call(auth::logout, TestRequest::new("POST", "/auth/logout").bearer(access))
        .await;
    assert_eq!(logout.status, 204);
    assert_eq!(logout.body, Value::Null);
    app.call(auth::refresh, refresh_request(refresh))
        .await
        .assert_error(401, "unauthorized");

    let again = app
        .call(auth::logout, TestRequest::new("POST", "/auth/logout").bearer(access))
        .await;
    assert_eq!(again.status, 204, "logging out twice is harmless");
    app.call(auth::logout, TestRequest::new("POST", "/auth/logout"))
        .await
        .assert_error(401, "unauthorized");
}

/// The same deployment (table) after its token secret was rotated to `current`, as Secrets Manager
/// hands it over: `TOKEN_SECRET` and `TOKEN_SECRET_PREVIOUS`.
fn rotated(app: &TestApp, current: &str, previous: &str) -> TestApp {
    let config = Config::from_lookup(|name| match name {
        "TABLE_NAME" => Some(app.table.clone()),
        "TOKEN_SECRET" => Some(current.to_owned()),
        "TOKEN_SECRET_PREVIOUS" => Some(previous.to_owned()),
        "ATTACHMENTS_BUCKET" => Some("test-attachments".to_owned()),
        "LISTING_GRANULARITY_MS" => Some("0".to_owned()),
        _ => None,
    })
    .expect("the rotated configuration");
    TestApp {
        // Leaked like every test context: handlers take it as 'static.
        context: Box::leak(Box::new(AppContext::new(config, &app.context.sdk))),
        client: app.client.clone(),
        table: app.table.clone(),
    }
}

#[tokio::test]
async fn rotating_the_token_secret_signs_nobody_out() {
    const B: &str = "parley-test-secret-b-0123456789abcdef";
    const C: &str = "parley-test-secret-c-0123456789abcdef";
    let ttl = Duration::from_secs(900);
    let app = TestApp::new().await;
    let signed_in = app.register("rotor").await;
    let access_a = str_of(&signed_in, "accessToken").to_owned();
    let refresh_a = str_of(&signed_in, "refreshToken").to_owned();
    let other = app.call(auth::login, login_request("rotor", "password-rotor")).await;
    assert_eq!(other.status, 200, "{}", other.body);
    let other_refresh_a = str_of(&other.body, "refreshToken").to_owned();
    // A third session stays idle through both rotations.
    let idle = app.call(auth::login, login_request("rotor", "password-rotor")).await;
    assert_eq!(idle.status, 200, "{}", idle.body);
    let idle_refresh_a = str_of(&idle.body, "refreshToken").to_owned();

    // A is rotated to B: what A made still works.
    let b = rotated(&app, B, TEST_TOKEN_SECRET);
    assert_eq!(
        b.call(users::get_me, me(&access_a)).await.status,
        200,
        "A's access token"
    );
    let refreshed = b.call(auth::refresh, refresh_request(&refresh_a)).await;
    assert_eq!(refreshed.status, 200, "A's refresh token: {}", refreshed.body);
    let access_b = str_of(&refreshed.body, "accessToken").to_owned();
    let refresh_b = str_of(&refreshed.body, "refreshToken").to_owned();
    assert!(
        TokenKeys::new(B.as_bytes(), ttl).verify(&access_b).is_ok(),
        "signed with B"
    );
    assert!(
        TokenKeys::new(TEST_TOKEN_SECRET.as_bytes(), ttl)
            .verify(&access_b)
            .is_err(),
        "not with A"
    );
    assert_eq!(b.call(users::get_me, me(&access_b)).await.status, 200);

    // Reuse of a generation A made is still detected, and still ends its session.
    let other_b = b.call(auth::refresh, refresh_request(&other_refresh_a)).await;
    assert_eq!(other_b.status, 200, "{}", other_b.body);
    // Once more, so the reuse below is not a retry of the last rotation (which its grace answers again).
    let other_b2 = b
        .call(auth::refresh, refresh_request(str_of(&other_b.body, "refreshToken")))
        .await;
    assert_eq!(other_b2.status, 200, "{}", other_b2.body);
    let reused = b.call(auth::refresh, refresh_request(&other_refresh_a)).await;
    reused.assert_error(401, "unauthorized");
    assert!(
        reused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already used"),
        "{}",
        reused.body
    );
    b.call(auth::refresh, refresh_request(str_of(&other_b2.body, "refreshToken")))
        .await
        .assert_error(401, "unauthorized");

    // B is rotated to C, dropping A: the session refreshed under B still works...
    let c = rotated(&app, C, B);
    assert_eq!(
        c.call(users::get_me, me(&access_b)).await.status,
        200,
        "B's access token"
    );
    let refreshed = c.call(auth::refresh, refresh_request(&refresh_b)).await;
    assert_eq!(refreshed.status, 200, "B's refresh token: {}", refreshed.body);
    let access_c = str_of(&refreshed.body, "accessToken").to_owned();
    let refresh_c = str_of(&refreshed.body, "refreshToken").to_owned();
    assert!(
        TokenKeys::new(C.as_bytes(), ttl).verify(&access_c).is_ok(),
        "signed with C"
    );
    assert_eq!(c.call(users::get_me, me(&access_c)).await.status, 200);

    // ...what only A made is refused...
    c.call(users::get_me, me(&access_a))
        .await
        .assert_error(401, "unauthorized");
    let user_id = signed_in["user"]["id"].as_str().unwrap();
    let session_id = refresh_a.split('.').nth(1).unwrap();
    let fresh_a = TokenKeys::new(TEST_TOKEN_SECRET.as_bytes(), ttl)
        .issue(user_id, session_id, SystemTime::now())
        .unwrap();
    c.call(users::get_me, me(&fresh_a))
        .await
        .assert_error(401, "unauthorized");
    // ...and A's rotated-away refresh token no longer verifies, so it revokes nothing.
    let stale = c.call(auth::refresh, refresh_request(&refresh_a)).await;
    stale.assert_error(401, "unauthorized");
    assert!(
        !stale.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already used"),
        "{}",
        stale.body
    );
    assert_eq!(
        c.call(auth::refresh, refresh_request(&refresh_c)).await.status,
        200,
        "the session lives on"
    );
    // The idle session's token was made with A, which C no longer holds: it signs in again.
    c.call(auth::refresh, refresh_request(&idle_refresh_a))
        .await
        .assert_error(401, "unauthorized");
    // B's generation was derived with B, so, rotated away, its reuse is still caught under C.
    let reused = c.call(auth::refresh, refresh_request(&refresh_b)).await;
    reused.assert_error(401, "unauthorized");
    assert!(
        reused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already used"),
        "{}",
        reused.body
    );
}

fn login_from(username: &str, password: &str, source_ip: &str) -> Value {
    let mut event = login_request(username, password).to_event();
    event["requestContext"]["http"]["sourceIp"] = json!(source_ip);
    event
}

/// Twenty wrong guesses at once from one address: each is counted by a conditional write before its
/// password is checked, so only the first `LOGIN_BACKOFF_AFTER` reach a password check (401) and the
/// rest are refused (429), as if they had come one after another. The back-off holds the guesser's
/// address only: the owner signs in from theirs.
#[tokio::test]
async fn parallel_guesses_are_counted_before_any_password_is_checked() {
    use parley::domain::accounts::LOGIN_BACKOFF_AFTER;
    let app = TestApp::new().await;
    let registered = app
        .call(
            auth::register,
            register_request(json!({ "username": "guessed", "password": "the right one" })),
        )
        .await;
    assert_eq!(registered.status, 201, "{}", registered.body);
    let guesses: Vec<Value> = (0..20)
        .map(|_| login_from("guessed", "wrong guess", "203.0.113.9"))
        .collect();
    let answers = futures_util::future::join_all(guesses.iter().map(|event| app.call_event(auth::login, event))).await;
    let checked = answers.iter().filter(|a| a.status == 401).count();
    let refused: Vec<_> = answers.iter().filter(|a| a.status == 429).collect();
    assert_eq!(
        checked as u64, LOGIN_BACKOFF_AFTER,
        "password checks let through at once"
    );
    assert_eq!(checked + refused.len(), 20);
    for answer in &refused {
        answer.assert_error(429, "rate_limited");
    }
    // The right password from the guesser's address waits too; from another address it signs in.
    app.call_event(auth::login, &login_from("guessed", "the right one", "203.0.113.9"))
        .await
        .assert_error(429, "rate_limited");
    let owner = app
        .call_event(auth::login, &login_from("guessed", "the right one", "198.51.100.7"))
        .await;
    assert_eq!(owner.status, 200, "{}", owner.body);
}

/// The session check is a stage of the pipeline (`http::handle`), not something a handler may forget:
/// a valid token reaching `authenticate` on a request whose session was never checked is refused
/// (fail closed), and accepted once the check ran; a revoked session's token is refused either way.
#[tokio::test]
async fn a_token_whose_session_was_never_checked_is_refused() {
    let app = TestApp::new().await;
    let alice = app.user("unchecked").await;
    let event = TestRequest::route("GET", "/users/me", &[])
        .bearer(&alice.token)
        .to_event();
    let request = || {
        parley::http::ApiRequest::from_lambda(
            lambda_http::request::from_str(&event.to_string()).expect("an API Gateway v2 event"),
        )
    };
    let unchecked = request();
    assert!(
        matches!(unchecked.authenticate(app.context), Err(parley::ApiError::Internal(_))),
        "an unchecked session must not pass"
    );
    let checked = request();
    checked.check_session(app.context).await;
    assert_eq!(checked.authenticate(app.context).unwrap().sub, alice.id);
    // Through the pipeline the same request passes.
    assert_eq!(app.call(users::get_me, me(&alice.token)).await.status, 200);
}
