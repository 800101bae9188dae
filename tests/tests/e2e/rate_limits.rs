//! The hourly per-user limit end to end, counted in per-container batches (`parley::rate_limit`): on a
//! stack of its own with a small budget, one user's reads, spread over three functions and many of
//! their instances at once, are all served up to the limit, and past it refused with `429
//! rate_limited` and `Retry-After`, admitting no more than the stated overshoot: one batch
//! (`floor(limit / 100)`) per instance but one. And the limit on new groups per user and hour, exact.

use std::sync::OnceLock;
use std::time::Duration;

use futures_util::StreamExt;
use parley::rate_limit::{max_batch, worst_case_admitted};
use parley_tests::{start_stack, Stack};
use serde_json::{json, Value};

/// Requests per user and hour: large enough to be counted in batches (4 at a time, 1 % of it).
const USER_PER_HOUR: u64 = 400;
/// Requests in flight at once: enough for several instances of each function.
const IN_FLIGHT: usize = 12;
/// The functions (binaries) and the read routes they serve.
const ROUTES: [(&str, &str); 3] = [
    ("users-me-get", "/users/me"),
    ("conversations-list", "/conversations"),
    ("users-blocks-list", "/users/me/blocks"),
];

fn stack() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(|| {
        start_stack(&[
            ("RateLimitSensitivePerMinute", "0"),
            ("RateLimitIpPerHour", "0"),
            ("RateLimitUserPerHour", "400"),
            ("RateLimitGroupsPerHour", "2"),
        ])
    })
}

/// Sends `count` reads as `token`, `IN_FLIGHT` at a time, round the routes; returns every answer's
/// status, `Retry-After` and body.
async fn reads(token: &str, count: usize) -> Vec<(u16, Option<u64>, Value)> {
    futures_util::stream::iter(0..count)
        .map(|n| async move {
            let answer = stack().call("GET", ROUTES[n % ROUTES.len()].1, Some(token), None).await;
            let retry_after = answer.headers.get("retry-after").map(|v| {
                v.to_str()
                    .unwrap()
                    .parse::<u64>()
                    .expect("Retry-After is whole seconds")
            });
            (answer.status, retry_after, answer.body)
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await
}

fn instances() -> u64 {
    ROUTES
        .iter()
        .map(|(function, _)| stack().stats(function).map_or(0, |s| s.cold_starts))
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_users_requests_are_refused_past_the_limit_within_the_overshoot_never_before() {
    stack();
    // The hourly window must not roll over in the middle.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if now % 3600 > 3540 {
        tokio::time::sleep(Duration::from_secs(3600 - now % 3600 + 1)).await;
    }
    let username = format!("budget{}", &ulid::Ulid::generate().to_string()[16..].to_lowercase());
    let registered = stack()
        .call(
            "POST",
            "/auth/register",
            None,
            Some(json!({ "username": username, "password": "a budget of its own" })),
        )
        .await;
    assert_eq!(registered.status, 201, "{}", registered.body);
    let token = registered.body["accessToken"].as_str().unwrap().to_owned();

    // Up to the limit: every request served, whichever instance it reached.
    let within = reads(&token, USER_PER_HOUR as usize).await;
    for (status, _, body) in &within {
        assert_eq!(*status, 200, "refused before the limit: {body}");
    }

    // Past it: refused, but for at most one batch per instance but one.
    let past = reads(&token, USER_PER_HOUR as usize / 2).await;
    let containers = instances();
    assert!(
        containers > ROUTES.len() as u64,
        "several instances per function served: {containers}"
    );
    let overshoot = worst_case_admitted(USER_PER_HOUR, containers, false) - USER_PER_HOUR;
    assert_eq!(overshoot, (containers - 1) * max_batch(USER_PER_HOUR));
    let over: Vec<_> = past.iter().filter(|(status, ..)| *status == 200).collect();
    assert!(
        over.len() as u64 <= overshoot,
        "{} admitted past {USER_PER_HOUR}; {containers} instances allow {overshoot}",
        over.len()
    );
    for (status, retry_after, body) in past.iter().filter(|(status, ..)| *status != 200) {
        assert_eq!(*status, 429, "{body}");
        assert_eq!(body["error"]["code"], "rate_limited", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with("Too many requests: at most 400 per hour. Retry in "),
            "{message}"
        );
        let retry_after = retry_after.expect("429 carries Retry-After");
        assert!((1..=3600).contains(&retry_after), "Retry-After {retry_after}");
    }

    // Every instance that served has learnt the window is full, or has at most its batch left.
    let last = reads(&token, 3 * containers as usize).await;
    let late = last.iter().filter(|(status, ..)| *status == 200).count();
    let containers = instances();
    let overshoot = worst_case_admitted(USER_PER_HOUR, containers, false) - USER_PER_HOUR;
    let admitted_past = (over.len() + late) as u64;
    assert!(
        admitted_past <= overshoot,
        "{admitted_past} admitted past {USER_PER_HOUR} in all; {containers} instances allow {overshoot}"
    );
    assert!(last.iter().any(|(status, ..)| *status == 429));
    println!("limit {USER_PER_HOUR}: {containers} instances; {admitted_past} admitted past it, {overshoot} allowed");
}

async fn register(prefix: &str) -> (String, String) {
    let username = format!("{prefix}{}", &ulid::Ulid::generate().to_string()[16..].to_lowercase());
    let answer = stack()
        .call(
            "POST",
            "/auth/register",
            None,
            Some(json!({ "username": username, "password": "a budget of its own" })),
        )
        .await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    (
        answer.body["user"]["id"].as_str().unwrap().to_owned(),
        answer.body["accessToken"].as_str().unwrap().to_owned(),
    )
}

/// A user creates at most `RateLimitGroupsPerHour` groups an hour (2 on this stack): the next is `429`
/// with `Retry-After`, creates nothing, and touches neither direct conversations nor other users.
#[tokio::test(flavor = "multi_thread")]
async fn new_groups_past_the_hourly_limit_are_refused_and_nothing_is_created() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if now % 3600 > 3590 {
        tokio::time::sleep(Duration::from_secs(3600 - now % 3600 + 1)).await;
    }
    let (_, token) = register("groups").await;
    let (other_id, other_token) = register("groups").await;
    let group = |token: String, name: &'static str| async move {
        stack()
            .call(
                "POST",
                "/conversations",
                Some(&token),
                Some(json!({ "type": "group", "name": name, "memberIds": [] })),
            )
            .await
    };
    for name in ["first", "second"] {
        let created = group(token.clone(), name).await;
        assert_eq!(created.status, 201, "{}", created.body);
    }
    let refused = group(token.clone(), "third").await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(refused.body["error"]["code"], "rate_limited");
    let message = refused.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("Too many new groups") && message.contains("at most 2"),
        "{message}"
    );
    let retry_after: u64 = refused.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry_after), "Retry-After {retry_after}");

    let listed = stack()
        .call("GET", "/conversations?limit=100", Some(&token), None)
        .await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let mut names: Vec<&str> = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    names.sort();
    assert_eq!(names, ["first", "second"], "the refused group was not created");

    let direct = stack()
        .call(
            "POST",
            "/conversations",
            Some(&token),
            Some(json!({ "type": "direct", "memberIds": [other_id] })),
        )
        .await;
    assert_eq!(
        direct.status, 201,
        "direct conversations are not counted: {}",
        direct.body
    );
    let theirs = group(other_token, "theirs").await;
    assert_eq!(
        theirs.status, 201,
        "another user's budget is their own: {}",
        theirs.body
    );
}
