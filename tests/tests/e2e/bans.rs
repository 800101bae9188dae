//! Bans (docs/API-GUIDE.md "Bans") end to end over real HTTP and WebSocket clients on the local stack:
//! a banned member is removed and kept out (adding them is refused, all or nothing), everyone hears of
//! it, a sync answers the group as removed for them, lifting the ban lets them be added again; who may
//! ban whom, and the refusals.

use parley_tests::realtime::{events_of, next, silent, until, Clients, User};
use parley_tests::{stack, FOLLOW_UP_WITHIN};
use serde_json::{json, Value};

fn rt() -> Clients {
    Clients { stack: stack() }
}

async fn call(method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    rt().call(method, path, token, body).await
}

async fn ban(by: &User, group: &str, target: &str, body: Option<Value>) -> (u16, Value) {
    call(
        "PUT",
        &format!("/conversations/{group}/bans/{target}"),
        Some(&by.token),
        body,
    )
    .await
}

async fn add(by: &User, group: &str, ids: &[&str]) -> (u16, Value) {
    call(
        "POST",
        &format!("/conversations/{group}/members"),
        Some(&by.token),
        Some(json!({ "userIds": ids })),
    )
    .await
}

fn assert_error(answer: &(u16, Value), status: u16, code: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["error"]["code"], code, "{}", answer.1);
    assert!(answer.1["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
}

async fn make_admin(owner: &User, group: &str, user: &User) {
    let (status, body) = call(
        "PATCH",
        &format!("/conversations/{group}/members/{}", user.id),
        Some(&owner.token),
        Some(json!({ "role": "admin" })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_banned_member_is_removed_and_kept_out_until_the_ban_is_lifted() {
    let (ann, adam, bob, cat, dan) = (
        rt().user("bana").await,
        rt().user("banb").await,
        rt().user("banc").await,
        rt().user("band").await,
        rt().user("bane").await,
    );
    let group = rt().group(&ann, &[&adam, &bob, &cat]).await;
    make_admin(&ann, &group, &adam).await;
    let (_, start) = call("GET", "/sync", Some(&bob.token), None).await;
    let (mut bob_ws, mut cat_ws) = (rt().connect(&bob).await, rt().connect(&cat).await);

    assert_eq!(
        ban(&adam, &group, &bob.id, Some(json!({ "reason": "spam links" })))
            .await
            .0,
        204
    );
    let removed = until(&mut bob_ws, |e| e["type"] == "member.removed").await;
    assert_eq!(removed["userIds"], json!([bob.id]));
    // The two may share a frame (a `batch`): every event of each frame counts.
    let mut seen: Vec<Value> = Vec::new();
    while !seen.iter().any(|e| e["type"] == "member.banned") {
        seen.extend(events_of(next(&mut cat_ws).await));
    }
    let removed = seen
        .iter()
        .find(|e| e["type"] == "member.removed")
        .expect("member.removed first");
    assert_eq!(removed["userIds"], json!([bob.id]));
    let banned = seen.iter().find(|e| e["type"] == "member.banned").unwrap();
    assert_eq!(
        *banned,
        json!({ "type": "member.banned", "conversationId": group, "userId": bob.id })
    );
    silent(&mut bob_ws, 300).await;
    assert_error(
        &call("GET", &format!("/conversations/{group}"), Some(&bob.token), None).await,
        404,
        "not_found",
    );

    // A sync answers the group as removed for them.
    let token = start["next"].as_str().unwrap();
    let deadline = std::time::Instant::now() + FOLLOW_UP_WITHIN;
    loop {
        let (status, answer) = call("GET", &format!("/sync?since={token}"), Some(&bob.token), None).await;
        assert_eq!(status, 200, "{answer}");
        if answer["removed"] == json!([group]) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the sync never said removed: {answer}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // Kept out: an add naming them is refused whole.
    let refused = add(&ann, &group, &[&bob.id, &dan.id]).await;
    assert_error(&refused, 403, "forbidden");
    assert!(refused.1["error"]["message"].as_str().unwrap().contains(&bob.id));
    let (_, members) = call(
        "GET",
        &format!("/conversations/{group}/members"),
        Some(&ann.token),
        None,
    )
    .await;
    let ids: Vec<&str> = members["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["userId"].as_str().unwrap())
        .collect();
    assert!(
        !ids.contains(&dan.id.as_str()) && !ids.contains(&bob.id.as_str()),
        "{members}"
    );

    // The list is the moderators'.
    let (status, bans) = call("GET", &format!("/conversations/{group}/bans"), Some(&adam.token), None).await;
    assert_eq!(status, 200, "{bans}");
    assert_eq!(bans["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        (
            bans["items"][0]["userId"].as_str(),
            bans["items"][0]["bannedBy"].as_str(),
            bans["items"][0]["reason"].as_str()
        ),
        (Some(bob.id.as_str()), Some(adam.id.as_str()), Some("spam links"))
    );
    assert_error(
        &call("GET", &format!("/conversations/{group}/bans"), Some(&cat.token), None).await,
        403,
        "forbidden",
    );
    assert_error(
        &call("GET", &format!("/conversations/{group}/bans"), Some(&bob.token), None).await,
        404,
        "not_found",
    );

    // A repeat changes nothing and tells nobody.
    assert_eq!(ban(&ann, &group, &bob.id, None).await.0, 204);
    silent(&mut cat_ws, 500).await;

    // Lifted: they can be added again.
    let (status, _) = call(
        "DELETE",
        &format!("/conversations/{group}/bans/{}", bob.id),
        Some(&ann.token),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = call(
        "DELETE",
        &format!("/conversations/{group}/bans/{}", bob.id),
        Some(&ann.token),
        None,
    )
    .await;
    assert_eq!(status, 204, "idempotent");
    let (status, added) = add(&ann, &group, &[&bob.id]).await;
    assert_eq!(status, 200, "{added}");
    assert_eq!(added["added"], json!([bob.id]));

    // Someone who never was a member can be banned ahead.
    assert_eq!(ban(&ann, &group, &dan.id, None).await.0, 204);
    assert_error(&add(&ann, &group, &[&dan.id]).await, 403, "forbidden");
}

#[tokio::test(flavor = "multi_thread")]
async fn owners_ban_admins_admins_ban_members_and_nobody_bans_the_owner_or_themself() {
    let (ann, adam, amy, bob) = (
        rt().user("banf").await,
        rt().user("bang").await,
        rt().user("banh").await,
        rt().user("bani").await,
    );
    let group = rt().group(&ann, &[&adam, &amy, &bob]).await;
    make_admin(&ann, &group, &adam).await;
    make_admin(&ann, &group, &amy).await;
    assert_error(&ban(&bob, &group, &adam.id, None).await, 403, "forbidden");
    assert_error(&ban(&adam, &group, &amy.id, None).await, 403, "forbidden");
    assert_error(&ban(&adam, &group, &ann.id, None).await, 403, "forbidden");
    assert_error(&ban(&ann, &group, &ann.id, None).await, 403, "forbidden");
    assert_error(&ban(&ann, &group, "not-a-ulid", None).await, 400, "validation_failed");
    assert_error(
        &ban(&ann, &group, "01ARZ3NDEKTSV4RRFFQ69G5FAV", None).await,
        404,
        "not_found",
    );
    let long = "x".repeat(501);
    assert_error(
        &ban(&ann, &group, &bob.id, Some(json!({ "reason": long }))).await,
        400,
        "validation_failed",
    );
    for reason in [json!(7), json!(null)] {
        assert_error(
            &ban(&ann, &group, &bob.id, Some(json!({ "reason": reason }))).await,
            400,
            "validation_failed",
        );
    }
    assert_eq!(ban(&ann, &group, &amy.id, None).await.0, 204, "the owner bans an admin");
    let (status, direct) = call(
        "POST",
        "/conversations",
        Some(&ann.token),
        Some(json!({ "type": "direct", "memberIds": [bob.id] })),
    )
    .await;
    assert!(status == 200 || status == 201, "{direct}");
    assert_error(
        &ban(&ann, direct["id"].as_str().unwrap(), &bob.id, None).await,
        403,
        "forbidden",
    );
}
