//! Blocks (docs/API-GUIDE.md) and `GET /users?username=`, end to end: real HTTP and WebSocket clients
//! on the local stack (the real function binaries, DynamoDB Local). The batching of the block reads
//! past 100 users is checked against DynamoDB Local directly (through the handlers' edge), where
//! writing 150 users costs no argon2.
//!
//! What a block does (see shared/src/domain/blocks.rs): a user who blocked you cannot be put into a
//! direct conversation or a group by you (403), gets no `typing` or `presence` from you, and no longer
//! takes your sends in a direct conversation you already had (403); a blocker cannot open a direct
//! conversation with the user they blocked either; a block shows only in the blocker's own list.

use std::collections::BTreeSet;

use parley_tests::realtime::{next, send_frame, silent, until, Clients, User};
use parley_tests::{silent_user, stack, TestApp, TestRequest};
use serde_json::{json, Value};

fn rt() -> Clients {
    Clients { stack: stack() }
}

async fn call(method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    rt().call(method, path, token, body).await
}

async fn user(prefix: &str) -> User {
    rt().user(prefix).await
}

/// A user and the username they registered with.
async fn named_user(prefix: &str) -> (User, String) {
    let username = format!("{prefix}{}", &ulid::Ulid::generate().to_string()[16..].to_lowercase());
    let (status, body) = call(
        "POST",
        "/auth/register",
        None,
        Some(json!({ "username": username, "password": "blocks and names" })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let user = User {
        id: body["user"]["id"].as_str().unwrap().to_owned(),
        token: body["accessToken"].as_str().unwrap().to_owned(),
    };
    (user, username)
}

async fn block(me: &User, other: &str) -> (u16, Value) {
    call("PUT", &format!("/users/me/blocks/{other}"), Some(&me.token), None).await
}

async fn unblock(me: &User, other: &str) -> (u16, Value) {
    call("DELETE", &format!("/users/me/blocks/{other}"), Some(&me.token), None).await
}

async fn blocks_page(me: &User, query: &str) -> (u16, Value) {
    call("GET", &format!("/users/me/blocks{query}"), Some(&me.token), None).await
}

/// The whole block list, page by page.
async fn blocked_ids(me: &User) -> Vec<String> {
    let mut ids = Vec::new();
    let mut query = String::new();
    loop {
        let (status, page) = blocks_page(me, &query).await;
        assert_eq!(status, 200, "{page}");
        ids.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["userId"].as_str().unwrap().to_owned()),
        );
        match page["nextCursor"].as_str() {
            Some(cursor) => query = format!("?cursor={cursor}"),
            None => return ids,
        }
    }
}

fn assert_error(status: u16, body: &Value, want_status: u16, want_code: &str, what: &str) {
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (want_status, Some(want_code)),
        "{what}: {body}"
    );
    assert!(body["requestId"].is_string(), "{what}: {body}");
    assert!(body["error"]["message"].is_string(), "{what}: {body}");
}

async fn conversation_ids(me: &User) -> Vec<String> {
    let (status, page) = call("GET", "/conversations", Some(&me.token), None).await;
    assert_eq!(status, 200, "{page}");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

fn sorted(ids: &[&User]) -> Vec<String> {
    let mut ids: Vec<String> = ids.iter().map(|u| u.id.clone()).collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn blocks_round_trip_with_pagination_and_idempotency() {
    let (ann, bob, cat, dan, eve) = (
        user("bla").await,
        user("blb").await,
        user("blc").await,
        user("bld").await,
        user("ble").await,
    );
    let (status, page) = blocks_page(&ann, "").await;
    assert_eq!((status, page), (200, json!({ "items": [], "nextCursor": null })));

    for other in [&bob, &cat, &dan] {
        let (status, body) = block(&ann, &other.id).await;
        assert_eq!(status, 204, "{body}");
    }
    let (_, first) = blocks_page(&ann, "").await;
    let bob_created = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["userId"] == bob.id.as_str())
        .unwrap()["createdAt"]
        .clone();
    assert!(bob_created.as_str().unwrap().ends_with('Z'), "{bob_created}");
    // Blocking again is a 204 that changes nothing, not even when the block was made; lower-case ids
    // are the same ids.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert_eq!(block(&ann, &bob.id).await.0, 204);
    assert_eq!(block(&ann, &bob.id.to_lowercase()).await.0, 204);

    // In user-id order, every item `{userId, createdAt}` and nothing else.
    let (status, all) = blocks_page(&ann, "").await;
    assert_eq!(status, 200);
    assert_eq!(all, first, "a repeated block changes nothing");
    let items = all["items"].as_array().unwrap();
    let ids: Vec<String> = items.iter().map(|b| b["userId"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids, sorted(&[&bob, &cat, &dan]));
    for item in items {
        let mut keys: Vec<&str> = item.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["createdAt", "userId"], "{item}");
    }
    assert!(all["nextCursor"].is_null());

    // Pages of two: a cursor after the second, none after the last.
    let (status, one) = blocks_page(&ann, "?limit=2").await;
    assert_eq!(status, 200);
    assert_eq!(one["items"].as_array().unwrap().as_slice(), &items[..2]);
    let cursor = one["nextCursor"].as_str().expect("a cursor to the rest");
    let (status, two) = blocks_page(&ann, &format!("?limit=2&cursor={cursor}")).await;
    assert_eq!(status, 200);
    assert_eq!(two["items"].as_array().unwrap().as_slice(), &items[2..]);
    assert!(two["nextCursor"].is_null(), "{two}");
    // Exactly a page's worth: no cursor to an empty page.
    let (_, exact) = blocks_page(&ann, "?limit=3").await;
    assert_eq!(
        (exact["items"].as_array().unwrap().len(), &exact["nextCursor"]),
        (3, &Value::Null)
    );
    // Above the maximum is clamped, not refused.
    let (status, clamped) = blocks_page(&ann, "?limit=1000").await;
    assert_eq!((status, clamped["items"].as_array().unwrap().len()), (200, 3));

    // Unblocking: 204, again 204, and someone never blocked 204.
    for _ in 0..2 {
        let (status, body) = unblock(&ann, &cat.id).await;
        assert_eq!(status, 204, "{body}");
    }
    assert_eq!(unblock(&ann, &eve.id).await.0, 204);
    assert_eq!(blocked_ids(&ann).await, sorted(&[&bob, &dan]));
    // A cursor stays usable after the block it points past is lifted.
    let (_, first_page) = blocks_page(&ann, "?limit=1").await;
    let cursor = first_page["nextCursor"].as_str().unwrap().to_owned();
    assert_eq!(
        unblock(&ann, first_page["items"][0]["userId"].as_str().unwrap())
            .await
            .0,
        204
    );
    let (status, rest) = blocks_page(&ann, &format!("?cursor={cursor}")).await;
    assert_eq!(status, 200, "{rest}");
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    // Blocked again later, a user is back with a new createdAt.
    assert_eq!(block(&ann, &cat.id).await.0, 204);
    let mut expected = vec![cat.id.clone(), rest["items"][0]["userId"].as_str().unwrap().to_owned()];
    expected.sort();
    assert_eq!(blocked_ids(&ann).await, expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_block_requests_are_refused_and_change_nothing() {
    let (ann, bob, cat) = (user("bba").await, user("bbb").await, user("bbc").await);
    assert_eq!(block(&ann, &bob.id).await.0, 204);
    assert_eq!(block(&ann, &cat.id).await.0, 204);
    assert_eq!(block(&bob, &cat.id).await.0, 204);
    assert_eq!(block(&bob, &ann.id).await.0, 204);
    let (_, before) = blocks_page(&ann, "").await;
    let (_, bobs) = blocks_page(&bob, "?limit=1").await;
    let foreign = bobs["nextCursor"].as_str().unwrap().to_owned();
    let (_, mine) = blocks_page(&ann, "?limit=1").await;
    let own = mine["nextCursor"].as_str().unwrap().to_owned();
    let tampered = format!("{}{}", if own.starts_with('A') { "B" } else { "A" }, &own[1..]);
    let unknown = ulid::Ulid::generate().to_string();

    for (method, path, status, code) in [
        (
            "PUT",
            "/users/me/blocks/not-a-ulid".to_owned(),
            400,
            "validation_failed",
        ),
        (
            "PUT",
            format!("/users/me/blocks/{}", &bob.id[..25]),
            400,
            "validation_failed",
        ),
        (
            "PUT",
            format!("/users/me/blocks/{}*", &bob.id[..25]),
            400,
            "validation_failed",
        ),
        (
            "DELETE",
            "/users/me/blocks/not-a-ulid".to_owned(),
            400,
            "validation_failed",
        ),
        ("PUT", format!("/users/me/blocks/{}", ann.id), 400, "validation_failed"),
        (
            "DELETE",
            format!("/users/me/blocks/{}", ann.id),
            400,
            "validation_failed",
        ),
        ("PUT", format!("/users/me/blocks/{unknown}"), 404, "not_found"),
        ("GET", "/users/me/blocks?limit=0".to_owned(), 400, "validation_failed"),
        ("GET", "/users/me/blocks?limit=-1".to_owned(), 400, "validation_failed"),
        (
            "GET",
            "/users/me/blocks?limit=many".to_owned(),
            400,
            "validation_failed",
        ),
        (
            "GET",
            format!("/users/me/blocks?cursor={tampered}"),
            400,
            "validation_failed",
        ),
        (
            "GET",
            "/users/me/blocks?cursor=garbage".to_owned(),
            400,
            "validation_failed",
        ),
        // Bob's cursor is for Bob's list only.
        (
            "GET",
            format!("/users/me/blocks?cursor={foreign}"),
            400,
            "validation_failed",
        ),
    ] {
        let (got, body) = call(method, &path, Some(&ann.token), None).await;
        assert_error(got, &body, status, code, &format!("{method} {path}"));
    }
    for (method, path) in [
        ("PUT", format!("/users/me/blocks/{}", bob.id)),
        ("DELETE", format!("/users/me/blocks/{}", bob.id)),
        ("GET", "/users/me/blocks".to_owned()),
    ] {
        let (got, body) = call(method, &path, None, None).await;
        assert_error(
            got,
            &body,
            401,
            "unauthorized",
            &format!("{method} {path} without a token"),
        );
        let (got, body) = call(method, &path, Some("not-a-token"), None).await;
        assert_error(
            got,
            &body,
            401,
            "unauthorized",
            &format!("{method} {path} with a bad token"),
        );
    }
    let (_, after) = blocks_page(&ann, "").await;
    assert_eq!(after, before, "the refused requests changed nothing");
    assert_eq!(blocked_ids(&bob).await, sorted(&[&ann, &cat]));
    // The unknown user was not half-blocked: nothing of it shows anywhere.
    assert!(!blocked_ids(&ann).await.contains(&unknown));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_block_shows_only_in_the_blockers_own_list() {
    let (ann, bob) = (user("bva").await, user("bvb").await);
    assert_eq!(block(&bob, &ann.id).await.0, 204);
    assert_eq!(blocked_ids(&bob).await, vec![ann.id.clone()]);
    assert!(
        blocked_ids(&ann).await.is_empty(),
        "ann cannot see that bob blocked her"
    );
    // Ann may block bob back; each list still shows only its owner's blocks.
    assert_eq!(block(&ann, &bob.id).await.0, 204);
    assert_eq!(blocked_ids(&ann).await, vec![bob.id.clone()]);
    assert_eq!(blocked_ids(&bob).await, vec![ann.id.clone()]);
    // Bob lifting his block leaves ann's.
    assert_eq!(unblock(&bob, &ann.id).await.0, 204);
    assert!(blocked_ids(&bob).await.is_empty());
    assert_eq!(blocked_ids(&ann).await, vec![bob.id.clone()]);
    // A blocked user still sees the blocker's public profile (blocks hide reachability, not existence).
    let (status, profile) = call("GET", &format!("/users/{}", bob.id), Some(&ann.token), None).await;
    assert_eq!((status, profile["id"].as_str()), (200, Some(bob.id.as_str())));
}

#[tokio::test(flavor = "multi_thread")]
async fn users_are_found_by_username_case_folded() {
    let (ann, ann_name) = named_user("una").await;
    let (bob, _) = named_user("unb").await;
    let (status, profile) = call("GET", &format!("/users/{}", ann.id), Some(&bob.token), None).await;
    assert_eq!(status, 200);

    for asked in [
        ann_name.clone(),
        ann_name.to_uppercase(),
        format!("{}{}", &ann_name[..1].to_uppercase(), &ann_name[1..]),
    ] {
        let (status, found) = call("GET", &format!("/users?username={asked}"), Some(&bob.token), None).await;
        assert_eq!(status, 200, "{asked}: {found}");
        assert_eq!(
            found,
            json!({ "items": [profile.clone()] }),
            "{asked}: public fields, as GET /users/{{id}}"
        );
        assert!(found["items"][0].get("passwordHash").is_none());
    }
    // One's own name works too.
    let (status, own) = call("GET", &format!("/users?username={ann_name}"), Some(&ann.token), None).await;
    assert_eq!((status, own["items"][0]["id"].as_str()), (200, Some(ann.id.as_str())));

    let (status, none) = call("GET", "/users?username=nobody_has_this_name", Some(&bob.token), None).await;
    assert_eq!((status, none), (200, json!({ "items": [] })));

    for query in [
        format!("ids={}&username={ann_name}", ann.id),
        String::new(),
        // Names no user can have: the API's rule is 3..=32 of [a-z0-9_.-].
        "username=".to_owned(),
        "username=ab".to_owned(),
        format!("username={}", "a".repeat(33)),
        "username=al%21ce".to_owned(),
        "username=al%20ice".to_owned(),
    ] {
        let (status, body) = call("GET", &format!("/users?{query}"), Some(&bob.token), None).await;
        assert_error(status, &body, 400, "validation_failed", &format!("GET /users?{query}"));
    }
    let (status, body) = call("GET", &format!("/users?username={ann_name}"), None, None).await;
    assert_error(status, &body, 401, "unauthorized", "username lookup without a token");
    // `ids=` still works as before.
    let (status, many) = call(
        "GET",
        &format!("/users?ids={},{}", ann.id, bob.id),
        Some(&bob.token),
        None,
    )
    .await;
    assert_eq!((status, many["items"].as_array().unwrap().len()), (200, 2));
}

#[tokio::test(flavor = "multi_thread")]
async fn presence_goes_to_co_members_but_not_to_blockers() {
    let (ann, bob, cat) = (user("bpa").await, user("bpb").await, user("bpc").await);
    rt().group(&ann, &[&bob, &cat]).await;
    assert_eq!(block(&bob, &ann.id).await.0, 204);
    let (mut bob_ws, mut cat_ws) = (rt().connect(&bob).await, rt().connect(&cat).await);
    let (status, _) = call(
        "PATCH",
        "/users/me",
        Some(&ann.token),
        Some(json!({ "status": "busy", "statusText": "focus" })),
    )
    .await;
    assert_eq!(status, 200);
    let presence = until(&mut cat_ws, |e| e["type"] == "presence").await;
    assert_eq!(
        (presence["userId"].as_str(), presence["status"].as_str()),
        (Some(ann.id.as_str()), Some("busy"))
    );
    silent(&mut bob_ws, 1_000).await;

    // Lifted, the block no longer holds presence back.
    assert_eq!(unblock(&bob, &ann.id).await.0, 204);
    let (status, _) = call(
        "PATCH",
        "/users/me",
        Some(&ann.token),
        Some(json!({ "status": "online" })),
    )
    .await;
    assert_eq!(status, 200);
    for socket in [&mut bob_ws, &mut cat_ws] {
        let presence = until(socket, |e| e["type"] == "presence").await;
        assert_eq!(presence["status"], "online");
    }
}

// ---- The effects below live in shared/src/domain/conversations.rs (blocked_by, blockers_of).

#[tokio::test(flavor = "multi_thread")]
async fn no_direct_conversation_between_a_blocker_and_the_user_they_blocked() {
    let (ann, bob) = (user("bda").await, user("bdb").await);
    assert_eq!(block(&bob, &ann.id).await.0, 204);
    let direct = |from: &User, to: &User| {
        let (token, to) = (from.token.clone(), to.id.clone());
        async move {
            call(
                "POST",
                "/conversations",
                Some(&token),
                Some(json!({ "type": "direct", "memberIds": [to] })),
            )
            .await
        }
    };
    // The blocked user cannot reach the blocker ...
    let (status, body) = direct(&ann, &bob).await;
    assert_error(
        status,
        &body,
        403,
        "forbidden",
        "ann opens a direct conversation with bob, who blocked her",
    );
    // ... and the blocker cannot open one with the user they blocked either (unblock first).
    let (status, body) = direct(&bob, &ann).await;
    assert_error(
        status,
        &body,
        403,
        "forbidden",
        "bob opens a direct conversation with ann, whom he blocked",
    );
    assert!(conversation_ids(&ann).await.is_empty(), "no conversation was created");
    assert!(conversation_ids(&bob).await.is_empty(), "no conversation was created");

    // Unblocked, the pair gets its conversation.
    assert_eq!(unblock(&bob, &ann.id).await.0, 204);
    let (status, body) = direct(&ann, &bob).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        conversation_ids(&bob).await,
        vec![body["id"].as_str().unwrap().to_owned()]
    );
}

/// In a direct conversation that already exists, the user the other member blocked can no longer send,
/// over HTTP or the WebSocket (`403 forbidden`, nothing stored); the blocker still can; unblocked, the
/// sends go through again.
#[tokio::test(flavor = "multi_thread")]
async fn the_blocked_user_can_no_longer_send_in_their_direct_conversation() {
    let (ann, bob) = (user("bsa").await, user("bsb").await);
    let (status, opened) = call(
        "POST",
        "/conversations",
        Some(&ann.token),
        Some(json!({ "type": "direct", "memberIds": [bob.id] })),
    )
    .await;
    assert_eq!(status, 201, "{opened}");
    let conversation = opened["id"].as_str().unwrap().to_owned();
    let send = |from: &User, client_id: &'static str| {
        let (token, path) = (from.token.clone(), format!("/conversations/{conversation}/messages"));
        async move {
            call(
                "POST",
                &path,
                Some(&token),
                Some(json!({ "clientMessageId": client_id, "body": format!("message {client_id}") })),
            )
            .await
        }
    };
    assert_eq!(send(&ann, "before").await.0, 201);

    assert_eq!(block(&bob, &ann.id).await.0, 204);
    let (status, body) = send(&ann, "blocked-http").await;
    assert_error(status, &body, 403, "forbidden", "ann sends to bob, who blocked her");
    assert!(body["error"]["message"].as_str().unwrap().contains("blocked"), "{body}");
    let mut socket = rt().connect(&ann).await;
    send_frame(
        &mut socket,
        json!({ "action": "sendMessage", "conversationId": conversation, "clientMessageId": "blocked-ws", "body": "hi" }),
    )
    .await;
    let refused = next(&mut socket).await;
    assert_eq!(
        (refused["type"].as_str(), refused["error"]["code"].as_str()),
        (Some("error"), Some("forbidden")),
        "{refused}"
    );
    assert_eq!(send(&bob, "blocker").await.0, 201, "the blocker can still send");
    // Blocking twice changes nothing; the refusal holds.
    assert_eq!(block(&bob, &ann.id).await.0, 204);
    assert_eq!(send(&ann, "blocked-again").await.0, 403);

    let (status, history) = call(
        "GET",
        &format!("/conversations/{conversation}/messages?limit=50"),
        Some(&bob.token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{history}");
    let mut bodies: Vec<&str> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    bodies.sort();
    assert_eq!(
        bodies,
        ["message before", "message blocker"],
        "nothing of ann's was stored"
    );

    assert_eq!(unblock(&bob, &ann.id).await.0, 204);
    assert_eq!(send(&ann, "after").await.0, 201, "unblocked, ann sends again");
}

#[tokio::test(flavor = "multi_thread")]
async fn adding_a_blocker_to_a_group_is_forbidden_and_adds_nobody() {
    let (ann, bob, cat, dan) = (
        user("bga").await,
        user("bgb").await,
        user("bgc").await,
        user("bgd").await,
    );
    let group = rt().group(&ann, &[&cat]).await;
    assert_eq!(block(&bob, &ann.id).await.0, 204);
    let (status, body) = call(
        "POST",
        &format!("/conversations/{group}/members"),
        Some(&ann.token),
        Some(json!({ "userIds": [dan.id, bob.id] })),
    )
    .await;
    assert_error(
        status,
        &body,
        403,
        "forbidden",
        "ann adds bob, who blocked her, with dan",
    );
    // All or nothing: dan was not added either.
    let (status, members) = call(
        "GET",
        &format!("/conversations/{group}/members"),
        Some(&ann.token),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let ids: BTreeSet<String> = members["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["userId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, BTreeSet::from([ann.id.clone(), cat.id.clone()]));
    let (_, conversation) = call("GET", &format!("/conversations/{group}"), Some(&ann.token), None).await;
    assert_eq!(conversation["memberCount"], 2);
    assert!(conversation_ids(&bob).await.is_empty());
    assert!(conversation_ids(&dan).await.is_empty());
    // Without the blocker, the same request adds dan.
    let (status, body) = call(
        "POST",
        &format!("/conversations/{group}/members"),
        Some(&ann.token),
        Some(json!({ "userIds": [dan.id] })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn creating_a_group_with_a_blocker_is_forbidden_and_creates_nothing() {
    let (ann, bob, cat) = (user("bca").await, user("bcb").await, user("bcc").await);
    assert_eq!(block(&bob, &ann.id).await.0, 204);
    let (status, body) = call(
        "POST",
        "/conversations",
        Some(&ann.token),
        Some(json!({ "type": "group", "name": "with a blocker", "memberIds": [cat.id, bob.id] })),
    )
    .await;
    assert_error(
        status,
        &body,
        403,
        "forbidden",
        "ann creates a group with bob, who blocked her",
    );
    for someone in [&ann, &bob, &cat] {
        assert!(conversation_ids(someone).await.is_empty(), "no group was created");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn typing_goes_to_members_but_not_to_blockers() {
    let (ann, bob, cat) = (user("bta").await, user("btb").await, user("btc").await);
    let group = rt().group(&ann, &[&bob, &cat]).await;
    assert_eq!(block(&bob, &ann.id).await.0, 204);
    let (mut ann_ws, mut bob_ws, mut cat_ws) = (
        rt().connect(&ann).await,
        rt().connect(&bob).await,
        rt().connect(&cat).await,
    );
    send_frame(&mut ann_ws, json!({ "action": "typing", "conversationId": group })).await;
    let typing = until(&mut cat_ws, |e| e["type"] == "typing").await;
    assert_eq!(
        typing,
        json!({ "type": "typing", "conversationId": group, "userId": ann.id })
    );
    silent(&mut bob_ws, 1_000).await;
    // Bob's own typing still reaches ann: a block mutes the blocked, not the blocker.
    send_frame(&mut bob_ws, json!({ "action": "typing", "conversationId": group })).await;
    let typing = until(&mut ann_ws, |e| e["type"] == "typing").await;
    assert_eq!(typing["userId"], bob.id.as_str());
}

// ---- The block reads past DynamoDB's 100-key batches, against DynamoDB Local through the handlers.

#[tokio::test(flavor = "multi_thread")]
async fn block_reads_go_past_a_hundred_users() {
    use parley::domain::blocks;
    let app = TestApp::new().await;
    let me = app.user("blockme").await;
    let mut others = Vec::new();
    for i in 0..150 {
        others.push(silent_user(&app.context.store, &format!("other{i:03}")).await);
    }
    let blockers: Vec<String> = [3usize, 99, 100, 149].iter().map(|&i| others[i].clone()).collect();
    for blocker in &blockers {
        blocks::block(app.context, blocker, &me.id).await.unwrap();
    }
    // Asked with repeats and the caller among them: each blocker once, in the order asked.
    let mut asked = others.clone();
    asked.push(me.id.clone());
    asked.extend(blockers.iter().cloned());
    assert_eq!(blocks::blocked_by(app.context, &me.id, &asked).await.unwrap(), blockers);
    assert!(blocks::blocked_by(app.context, &me.id, &[]).await.unwrap().is_empty());
    let found: BTreeSet<String> = blocks::blockers_of(app.context, &me.id)
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(found, blockers.iter().cloned().collect());
    assert!(blocks::either_blocked(app.context, &me.id, &blockers[0]).await.unwrap());
    assert!(blocks::either_blocked(app.context, &blockers[0], &me.id).await.unwrap());
    assert!(!blocks::either_blocked(app.context, &me.id, &others[0]).await.unwrap());
    blocks::unblock(app.context, &blockers[1], &me.id).await.unwrap();
    assert_eq!(
        blocks::blocked_by(app.context, &me.id, &others).await.unwrap(),
        vec![blockers[0].clone(), blockers[2].clone(), blockers[3].clone()]
    );
    assert_eq!(blocks::blockers_of(app.context, &me.id).await.unwrap().len(), 3);

    // My own list of 150 through the handler: 100 (the clamped maximum), then 50, then the end.
    for other in &others {
        blocks::block(app.context, &me.id, other).await.unwrap();
    }
    let first = list_blocks(&app, &me.token, &[("limit", "500")]).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["items"].as_array().unwrap().len(), 100);
    let cursor = first.body["nextCursor"].as_str().unwrap().to_owned();
    let second = list_blocks(&app, &me.token, &[("limit", "500"), ("cursor", &cursor)]).await;
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!(second.body["items"].as_array().unwrap().len(), 50);
    assert!(second.body["nextCursor"].is_null());
    let mut expected = others.clone();
    expected.sort();
    let listed: Vec<String> = first.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second.body["items"].as_array().unwrap())
        .map(|b| b["userId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, expected, "every block once, in user-id order");
    // The blocks of me by others are not in my list, and mine are items of exactly two kinds.
    assert_eq!(app.count_items("BLOCK#").await, 150 + 3);
    assert_eq!(app.count_items("BLOCKEDBY#").await, 150 + 3);
}

async fn list_blocks(app: &TestApp, token: &str, query: &[(&str, &str)]) -> parley_tests::TestResponse {
    let mut request = TestRequest::new("GET", "/users/me/blocks").bearer(token);
    for (name, value) in query {
        request = request.query(name, value);
    }
    app.call(parley::api::users::list_blocks, request).await
}

/// The samples in events/ for the block routes, with a live token and a live other user, answer 2xx
/// through their handlers (samples.rs runs every sample; this pins these three with a real target).
#[tokio::test(flavor = "multi_thread")]
async fn the_block_sample_events_succeed_through_their_handlers() {
    use parley::api::users;
    let app = TestApp::new().await;
    let me = app.user("samplecaller").await;
    let other = app.user("sampletarget").await;
    let events = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
    for name in ["users-blocks-put", "users-blocks-list", "users-blocks-delete"] {
        let path = events.join(format!("{name}.json"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut event: Value = serde_json::from_str(&text).unwrap();
        event["headers"]["authorization"] = json!(format!("Bearer {}", me.token));
        if let Some(sample) = event["pathParameters"]["userId"].as_str().map(str::to_owned) {
            let text = event.to_string().replace(&sample, &other.id);
            event = serde_json::from_str(&text).unwrap();
        }
        let response = match name {
            "users-blocks-put" => app.call_event(users::block, &event).await,
            "users-blocks-list" => app.call_event(users::list_blocks, &event).await,
            _ => app.call_event(users::unblock, &event).await,
        };
        assert!(
            (200..300).contains(&response.status),
            "events/{name}.json answered {}: {}",
            response.status,
            response.body
        );
        if name == "users-blocks-list" {
            assert_eq!(response.body["items"][0]["userId"], other.id.as_str());
        }
    }
}
