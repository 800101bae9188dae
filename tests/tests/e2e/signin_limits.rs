//! Sign-in limits end to end (docs/API-GUIDE.md "Rate limits and Retry-After": "Sign-in routes are limited per source IP and per
//! username (failed logins back off), whatever token a request carries"):
//! - on a stack of its own with a small per-IP budget, a valid bearer token does not move sign-in
//!   requests to a per-user budget;
//! - on the shared stack (rate limits off: the username back-off is always on), wrong passwords for one
//!   username back off with 429 and `Retry-After`, even for the right password, and nobody else's.

use std::sync::OnceLock;
use std::time::Duration;

use parley_tests::{start_stack, Stack};
use serde_json::{json, Value};

/// Requests per source IP and hour on the limited stack (the per-minute and per-user limits are off).
const IP_PER_HOUR: u64 = 8;

fn limited() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(|| {
        start_stack(&[
            ("RateLimitSensitivePerMinute", "0"),
            ("RateLimitIpPerHour", "8"),
            ("RateLimitUserPerHour", "0"),
        ])
    })
}

struct Answer {
    status: u16,
    retry_after: Option<u64>,
    body: Value,
}

async fn call(stack: &Stack, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Answer {
    let answer = stack.call(method, path, token, body).await;
    Answer {
        status: answer.status,
        retry_after: answer
            .headers
            .get("retry-after")
            .map(|v| v.to_str().unwrap().parse().expect("Retry-After is whole seconds")),
        body: answer.body,
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}{}", &ulid::Ulid::generate().to_string()[18..].to_lowercase())
}

fn login_body(username: &str, password: &str) -> Option<Value> {
    Some(json!({ "username": username, "password": password }))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_valid_token_does_not_move_sign_in_requests_to_a_per_user_budget() {
    let stack = limited();
    // The hourly window must not roll over in the middle.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if now % 3600 > 3580 {
        tokio::time::sleep(Duration::from_secs(3600 - now % 3600 + 1)).await;
    }
    let username = unique("iplimit");
    let registered = call(
        stack,
        "POST",
        "/auth/register",
        None,
        login_body(&username, "per ip budget"),
    )
    .await;
    assert_eq!(registered.status, 201, "{}", registered.body);
    let token = registered.body["accessToken"].as_str().unwrap().to_owned();
    let refresh_token = registered.body["refreshToken"].as_str().unwrap().to_owned();

    // Every sign-in request carries the valid token; they still spend the address's budget.
    for n in 2..IP_PER_HOUR {
        let answer = call(
            stack,
            "POST",
            "/auth/login",
            Some(&token),
            login_body(&username, "per ip budget"),
        )
        .await;
        assert_eq!(answer.status, 200, "login {n} of {IP_PER_HOUR}: {}", answer.body);
    }
    let answer = call(
        stack,
        "POST",
        "/auth/refresh",
        Some(&token),
        Some(json!({ "refreshToken": refresh_token })),
    )
    .await;
    assert_eq!(answer.status, 200, "the last one of the budget: {}", answer.body);

    for (path, body) in [
        ("/auth/login", login_body(&username, "per ip budget")),
        ("/auth/register", login_body(&unique("iplimitx"), "per ip budget")),
        ("/auth/refresh", Some(json!({ "refreshToken": "rt1.x.0.y" }))),
        (
            "/auth/wallet/challenge",
            Some(json!({ "address": "0x2c7536e3605d9c16a7a3d7b1898e529396a65c23" })),
        ),
    ] {
        let refused = call(stack, "POST", path, Some(&token), body).await;
        assert_eq!(refused.status, 429, "{path} with a valid token: {}", refused.body);
        assert_eq!(refused.body["error"]["code"], "rate_limited", "{path}");
        let retry_after = refused.retry_after.expect("429 carries Retry-After");
        assert!((1..=3600).contains(&retry_after), "{path}: Retry-After {retry_after}");
    }

    // Routes that use the token still count per user (off here): the address's budget is not theirs.
    let me = call(stack, "GET", "/users/me", Some(&token), None).await;
    assert_eq!(me.status, 200, "{}", me.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_logins_back_off_per_username() {
    let stack = parley_tests::stack();
    let (victim, bystander) = (unique("backoff"), unique("bystander"));
    for name in [&victim, &bystander] {
        let registered = call(stack, "POST", "/auth/register", None, login_body(name, "the right one")).await;
        assert_eq!(registered.status, 201, "{}", registered.body);
    }

    let fails = parley::domain::accounts::LOGIN_BACKOFF_AFTER;
    for n in 1..=fails {
        let wrong = call(stack, "POST", "/auth/login", None, login_body(&victim, "a wrong guess")).await;
        assert_eq!(wrong.status, 401, "guess {n}: {}", wrong.body);
        assert_eq!(wrong.body["error"]["code"], "unauthorized");
    }
    // Now even the right password waits, and says for how long.
    for password in ["the right one", "a wrong guess"] {
        let refused = call(stack, "POST", "/auth/login", None, login_body(&victim, password)).await;
        assert_eq!(refused.status, 429, "{}", refused.body);
        assert_eq!(refused.body["error"]["code"], "rate_limited");
        let retry_after = refused.retry_after.expect("429 carries Retry-After");
        let first = parley::domain::accounts::LOGIN_BACKOFF_FIRST.as_secs();
        assert!((1..=first).contains(&retry_after), "Retry-After {retry_after}");
        assert!(refused.body["requestId"].is_string());
    }
    // Usernames are case-folded: the same account, the same back-off.
    let upper = call(
        stack,
        "POST",
        "/auth/login",
        None,
        login_body(&victim.to_uppercase(), "the right one"),
    )
    .await;
    assert_eq!(upper.status, 429, "{}", upper.body);

    // Another username is not affected; a success ends its own (shorter) streak.
    for _ in 1..fails {
        let wrong = call(stack, "POST", "/auth/login", None, login_body(&bystander, "oops")).await;
        assert_eq!(wrong.status, 401, "{}", wrong.body);
    }
    let ok = call(
        stack,
        "POST",
        "/auth/login",
        None,
        login_body(&bystander, "the right one"),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    for _ in 1..fails {
        let wrong = call(stack, "POST", "/auth/login", None, login_body(&bystander, "oops")).await;
        assert_eq!(wrong.status, 401, "the streak started over: {}", wrong.body);
    }
    let ok = call(
        stack,
        "POST",
        "/auth/login",
        None,
        login_body(&bystander, "the right one"),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);

    // Unknown usernames back off the same way: the 429 tells nothing about which names exist.
    let nobody = unique("nobody");
    for _ in 1..=fails {
        assert_eq!(
            call(stack, "POST", "/auth/login", None, login_body(&nobody, "whatever"))
                .await
                .status,
            401
        );
    }
    assert_eq!(
        call(stack, "POST", "/auth/login", None, login_body(&nobody, "whatever"))
            .await
            .status,
        429
    );
}
