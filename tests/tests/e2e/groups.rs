//! Group governance end to end over real HTTP and WebSocket connections on the local stack: roles,
//! passing ownership, who may remove whom, the owner who cannot leave, the last member whose leaving
//! deletes the conversation and everything under it, the `member.role` and `conversation.*` events,
//! joiners who start with nothing unread, and every bad input of the new routes answered with
//! the API's error codes and nothing changed.

use std::time::Duration;

use parley_tests::realtime::{events_of_kind, silent, Clients, Socket, User};
use parley_tests::{eventually, stack};
use serde_json::{json, Value};

fn rt() -> Clients {
    Clients { stack: stack() }
}

async fn next_of(socket: &mut Socket, kind: &str) -> Value {
    events_of_kind(socket, kind, 1).await.remove(0)
}

/// `{userId: role}` of the group, as a member sees it.
async fn roles(viewer: &User, group: &str) -> Vec<(String, String)> {
    let (status, page) = rt()
        .call(
            "GET",
            &format!("/conversations/{group}/members"),
            Some(&viewer.token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let mut roles: Vec<(String, String)> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["userId"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    roles.sort();
    roles
}

fn role_of<'a>(roles: &'a [(String, String)], user: &User) -> &'a str {
    roles
        .iter()
        .find(|(id, _)| *id == user.id)
        .map(|(_, role)| role.as_str())
        .unwrap_or("none")
}

fn assert_error(answer: &(u16, Value), status: u16, code: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["error"]["code"], code, "{}", answer.1);
    assert!(
        answer.1["error"]["message"].as_str().is_some_and(|m| m.len() > 10),
        "a message a person understands: {}",
        answer.1
    );
}

async fn set_role(by: &User, group: &str, target: &str, role: Value) -> (u16, Value) {
    rt().call(
        "PATCH",
        &format!("/conversations/{group}/members/{target}"),
        Some(&by.token),
        Some(json!({ "role": role })),
    )
    .await
}

async fn transfer(by: &User, group: &str, target: &str) -> (u16, Value) {
    rt().call(
        "POST",
        &format!("/conversations/{group}/owner"),
        Some(&by.token),
        Some(json!({ "userId": target })),
    )
    .await
}

async fn remove(by: &User, group: &str, target: &str) -> (u16, Value) {
    rt().call(
        "DELETE",
        &format!("/conversations/{group}/members/{target}"),
        Some(&by.token),
        None,
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_owner_grants_and_takes_back_admin_and_the_members_hear_of_it() {
    let (owner, ann, bob) = (rt().user("own").await, rt().user("ann").await, rt().user("bob").await);
    let group = rt().group(&owner, &[&ann, &bob]).await;
    let mut bobs = rt().connect(&bob).await;

    let (status, member) = set_role(&owner, &group, &ann.id, json!("admin")).await;
    assert_eq!(status, 200, "{member}");
    assert_eq!(
        (member["userId"].as_str(), member["role"].as_str()),
        (Some(ann.id.as_str()), Some("admin"))
    );
    assert!(member["joinedAt"].is_string() && member["readSeq"].is_u64(), "{member}");
    let event = next_of(&mut bobs, "member.role").await;
    assert_eq!(
        event,
        json!({ "type": "member.role", "conversationId": group, "userId": ann.id, "role": "admin" })
    );
    assert_eq!(role_of(&roles(&bob, &group).await, &ann), "admin");

    // The same role again changes nothing and announces nothing.
    let (status, _) = set_role(&owner, &group, &ann.id, json!("admin")).await;
    assert_eq!(status, 200);
    silent(&mut bobs, 600).await;

    let (status, member) = set_role(&owner, &group, &ann.id, json!("member")).await;
    assert_eq!((status, member["role"].as_str()), (200, Some("member")));
    assert_eq!(next_of(&mut bobs, "member.role").await["role"], "member");
}

#[tokio::test(flavor = "multi_thread")]
async fn role_changes_refuse_every_bad_input_and_change_nothing() {
    let (owner, admin, plain, outsider) = (
        rt().user("own").await,
        rt().user("adm").await,
        rt().user("pln").await,
        rt().user("out").await,
    );
    let group = rt().group(&owner, &[&admin, &plain]).await;
    assert_eq!(set_role(&owner, &group, &admin.id, json!("admin")).await.0, 200);
    let before = roles(&owner, &group).await;

    assert_error(
        &set_role(&admin, &group, &plain.id, json!("admin")).await,
        403,
        "forbidden",
    );
    assert_error(
        &set_role(&plain, &group, &admin.id, json!("member")).await,
        403,
        "forbidden",
    );
    assert_error(
        &set_role(&owner, &group, &owner.id, json!("admin")).await,
        400,
        "validation_failed",
    );
    assert_error(
        &set_role(&owner, &group, &plain.id, json!("owner")).await,
        400,
        "validation_failed",
    );
    assert_error(
        &set_role(&owner, &group, &plain.id, json!("king")).await,
        400,
        "validation_failed",
    );
    assert_error(
        &set_role(&owner, &group, &plain.id, json!(7)).await,
        400,
        "validation_failed",
    );
    assert_error(
        &set_role(&owner, &group, &outsider.id, json!("admin")).await,
        404,
        "not_found",
    );
    assert_error(
        &set_role(&owner, &group, "not-a-ulid", json!("admin")).await,
        400,
        "validation_failed",
    );
    assert_error(
        &set_role(&outsider, &group, &plain.id, json!("admin")).await,
        404,
        "not_found",
    );
    let missing_body = rt()
        .call(
            "PATCH",
            &format!("/conversations/{group}/members/{}", plain.id),
            Some(&owner.token),
            Some(json!({})),
        )
        .await;
    assert_error(&missing_body, 400, "validation_failed");
    let no_token = rt()
        .call(
            "PATCH",
            &format!("/conversations/{group}/members/{}", plain.id),
            None,
            Some(json!({ "role": "admin" })),
        )
        .await;
    assert_error(&no_token, 401, "unauthorized");
    let (status, direct) = rt()
        .call(
            "POST",
            "/conversations",
            Some(&owner.token),
            Some(json!({ "type": "direct", "memberIds": [plain.id] })),
        )
        .await;
    assert_eq!(status, 201, "{direct}");
    let direct = direct["id"].as_str().unwrap();
    assert_error(
        &set_role(&owner, direct, &plain.id, json!("admin")).await,
        400,
        "validation_failed",
    );
    assert_error(&transfer(&owner, direct, &plain.id).await, 400, "validation_failed");

    assert_eq!(roles(&owner, &group).await, before, "nothing changed");
}

#[tokio::test(flavor = "multi_thread")]
async fn ownership_passes_to_a_member_and_the_old_owner_becomes_an_admin() {
    let (owner, ann, bob, outsider) = (
        rt().user("own").await,
        rt().user("ann").await,
        rt().user("bob").await,
        rt().user("out").await,
    );
    let group = rt().group(&owner, &[&ann, &bob]).await;
    let mut bobs = rt().connect(&bob).await;

    // Bad input first: nothing moves.
    assert_error(&transfer(&ann, &group, &bob.id).await, 403, "forbidden");
    assert_error(&transfer(&owner, &group, &owner.id).await, 400, "validation_failed");
    assert_error(&transfer(&owner, &group, &outsider.id).await, 404, "not_found");
    assert_error(&transfer(&owner, &group, "nope").await, 400, "validation_failed");
    assert_error(&transfer(&outsider, &group, &ann.id).await, 404, "not_found");
    let garbage = rt()
        .call(
            "POST",
            &format!("/conversations/{group}/owner"),
            Some(&owner.token),
            Some(json!("ann")),
        )
        .await;
    assert_error(&garbage, 400, "validation_failed");
    let roles_before = roles(&owner, &group).await;
    assert_eq!(role_of(&roles_before, &owner), "owner");

    let (status, conversation) = transfer(&owner, &group, &ann.id).await;
    assert_eq!(status, 200, "{conversation}");
    assert_eq!(
        (conversation["id"].as_str(), conversation["myRole"].as_str()),
        (Some(group.as_str()), Some("admin"))
    );
    let mut announced: Vec<(String, String)> = events_of_kind(&mut bobs, "member.role", 2)
        .await
        .iter()
        .map(|e| {
            (
                e["userId"].as_str().unwrap().to_owned(),
                e["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    announced.sort();
    let mut expected = vec![
        (ann.id.clone(), "owner".to_owned()),
        (owner.id.clone(), "admin".to_owned()),
    ];
    expected.sort();
    assert_eq!(announced, expected);

    let after = roles(&bob, &group).await;
    assert_eq!((role_of(&after, &ann), role_of(&after, &owner)), ("owner", "admin"));
    assert_eq!(
        after.iter().filter(|(_, r)| r == "owner").count(),
        1,
        "exactly one owner"
    );
    // The old owner's powers went with it.
    assert_error(
        &set_role(&owner, &group, &bob.id, json!("admin")).await,
        403,
        "forbidden",
    );
    assert_error(&transfer(&owner, &group, &bob.id).await, 403, "forbidden");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_owner_cannot_leave_while_others_remain_and_admins_cannot_remove_the_owner_or_admins() {
    let (owner, first_admin, second_admin, plain) = (
        rt().user("own").await,
        rt().user("ad1").await,
        rt().user("ad2").await,
        rt().user("pln").await,
    );
    let group = rt().group(&owner, &[&first_admin, &second_admin, &plain]).await;
    for admin in [&first_admin, &second_admin] {
        assert_eq!(set_role(&owner, &group, &admin.id, json!("admin")).await.0, 200);
    }
    let before = roles(&owner, &group).await;

    // The exploit as written: the owner left and the group was ownerless for ever.
    let leave = remove(&owner, &group, &owner.id).await;
    assert_error(&leave, 409, "conflict");
    assert!(
        leave.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("transfer ownership"),
        "{}",
        leave.1
    );
    assert_error(&remove(&first_admin, &group, &owner.id).await, 403, "forbidden");
    assert_error(&remove(&first_admin, &group, &second_admin.id).await, 403, "forbidden");
    assert_error(&remove(&plain, &group, &first_admin.id).await, 403, "forbidden");
    assert_eq!(roles(&owner, &group).await, before, "nothing changed");

    // An admin removes a plain member; the owner removes an admin; an admin leaves.
    assert_eq!(remove(&first_admin, &group, &plain.id).await.0, 204);
    assert_eq!(remove(&owner, &group, &second_admin.id).await.0, 204);
    assert_eq!(remove(&first_admin, &group, &first_admin.id).await.0, 204);
    let after = roles(&owner, &group).await;
    assert_eq!(after, vec![(owner.id.clone(), "owner".to_owned())]);
    let (_, meta) = rt()
        .call("GET", &format!("/conversations/{group}"), Some(&owner.token), None)
        .await;
    assert_eq!(meta["memberCount"], 1, "{meta}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_last_member_leaving_deletes_the_conversation_and_everything_under_it() {
    let (owner, ann) = (rt().user("own").await, rt().user("ann").await);
    let group = rt().group(&owner, &[&ann]).await;
    for i in 0..5 {
        rt().http_send(&owner, &group, &format!("last-{i}"), "soon gone").await;
    }
    assert_eq!(remove(&ann, &group, &ann.id).await.0, 204);
    let mut owners = rt().connect(&owner).await;
    assert_eq!(remove(&owner, &group, &owner.id).await.0, 204);
    let event = next_of(&mut owners, "conversation.deleted").await;
    assert_eq!(
        event,
        json!({ "type": "conversation.deleted", "conversationId": group })
    );

    let (status, _) = rt()
        .call("GET", &format!("/conversations/{group}"), Some(&owner.token), None)
        .await;
    assert_eq!(status, 404);
    let (status, _) = rt()
        .call(
            "GET",
            &format!("/conversations/{group}/messages"),
            Some(&owner.token),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (_, list) = rt().call("GET", "/conversations", Some(&owner.token), None).await;
    assert!(
        list["items"].as_array().unwrap().iter().all(|c| c["id"] != group),
        "{list}"
    );

    // The conversation worker purges what hangs off it (messages, send claims, the position counter).
    let sdk = dynamodb_local::sdk_config(&stack().dynamodb_endpoint).await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let left = client
            .query()
            .table_name("ChatTable")
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(
                ":pk",
                aws_sdk_dynamodb::types::AttributeValue::S(format!("CONV#{group}")),
            )
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .count;
        if left == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{left} items are still under CONV#{group}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn creating_opening_and_renaming_announce_the_conversation_to_its_members() {
    let (owner, ann, bob) = (rt().user("own").await, rt().user("ann").await, rt().user("bob").await);
    let (mut owners, mut anns) = (rt().connect(&owner).await, rt().connect(&ann).await);

    let group = rt().group(&owner, &[&ann]).await;
    let mine = next_of(&mut owners, "conversation.created").await;
    let theirs = next_of(&mut anns, "conversation.created").await;
    assert_eq!(
        (
            mine["conversation"]["id"].as_str(),
            theirs["conversation"]["id"].as_str()
        ),
        (Some(group.as_str()), Some(group.as_str()))
    );
    assert_eq!(
        (
            mine["conversation"]["myRole"].as_str(),
            theirs["conversation"]["myRole"].as_str()
        ),
        (Some("owner"), Some("member"))
    );
    assert_eq!(theirs["conversation"]["unreadCount"], 0);
    assert_eq!(theirs["conversation"]["memberCount"], 2);

    let (status, renamed) = rt()
        .call(
            "PATCH",
            &format!("/conversations/{group}"),
            Some(&owner.token),
            Some(json!({ "name": "New name" })),
        )
        .await;
    assert_eq!(status, 200, "{renamed}");
    for socket in [&mut owners, &mut anns] {
        let event = next_of(socket, "conversation.updated").await;
        assert_eq!(event["conversation"]["name"], "New name");
        assert_eq!(event["conversation"]["id"], group.as_str());
        assert!(
            event["conversation"].get("myRole").is_none(),
            "per-member fields stay out: {event}"
        );
    }

    let mut bobs = rt().connect(&bob).await;
    let (status, direct) = rt()
        .call(
            "POST",
            "/conversations",
            Some(&ann.token),
            Some(json!({ "type": "direct", "memberIds": [bob.id] })),
        )
        .await;
    assert_eq!(status, 201, "{direct}");
    for socket in [&mut anns, &mut bobs] {
        let event = next_of(socket, "conversation.created").await;
        assert_eq!(
            (
                event["conversation"]["id"].clone(),
                event["conversation"]["type"].clone()
            ),
            (direct["id"].clone(), json!("direct"))
        );
    }
    // Opening it again is no news.
    let (status, _) = rt()
        .call(
            "POST",
            "/conversations",
            Some(&bob.token),
            Some(json!({ "type": "direct", "memberIds": [ann.id] })),
        )
        .await;
    assert_eq!(status, 200);
    silent(&mut bobs, 600).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_who_joins_starts_with_nothing_unread() {
    let (owner, ann, late) = (rt().user("own").await, rt().user("ann").await, rt().user("lat").await);
    let group = rt().group(&owner, &[&ann]).await;
    for i in 0..3 {
        rt().http_send(&ann, &group, &format!("before-{i}"), "old news").await;
    }
    let (status, added) = rt()
        .call(
            "POST",
            &format!("/conversations/{group}/members"),
            Some(&owner.token),
            Some(json!({ "userIds": [late.id] })),
        )
        .await;
    assert_eq!((status, added["added"].clone()), (200, json!([late.id])));
    let (_, conversation) = rt()
        .call("GET", &format!("/conversations/{group}"), Some(&late.token), None)
        .await;
    assert_eq!(
        (
            conversation["lastSeq"].as_u64(),
            conversation["readSeq"].as_u64(),
            conversation["unreadCount"].as_u64()
        ),
        (Some(3), Some(3), Some(0)),
        "{conversation}"
    );
    rt().http_send(&ann, &group, "after", "new").await;
    // The count follows from the conversation worker, a moment after the send's answer.
    let unread = eventually(&Some(1), || async {
        let (_, conversation) = rt()
            .call("GET", &format!("/conversations/{group}"), Some(&late.token), None)
            .await;
        conversation["unreadCount"].as_u64()
    })
    .await;
    assert_eq!(unread, Some(1));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_event_goes_out_only_when_the_marker_moved() {
    let (ann, bob) = (rt().user("ann").await, rt().user("bob").await);
    let group = rt().group(&ann, &[&bob]).await;
    let first = rt().http_send(&ann, &group, "r1", "one").await;
    let second = rt().http_send(&ann, &group, "r2", "two").await;
    let mut anns = rt().connect(&ann).await;
    let read = |id: &Value| {
        let id = id.as_str().unwrap().to_owned();
        let group = group.clone();
        let token = bob.token.clone();
        async move {
            rt().call(
                "POST",
                &format!("/conversations/{group}/read"),
                Some(&token),
                Some(json!({ "messageId": id })),
            )
            .await
            .0
        }
    };
    assert_eq!(read(&second["id"]).await, 204);
    assert_eq!(next_of(&mut anns, "read").await["seq"], 2);
    // Again, and back to an older message: 204, and no event (the marker did not move).
    assert_eq!(read(&second["id"]).await, 204);
    assert_eq!(read(&first["id"]).await, 204);
    silent(&mut anns, 800).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edit_racing_a_delete_never_brings_the_deleted_text_back() {
    let (ann, bob) = (rt().user("ann").await, rt().user("bob").await);
    let group = rt().group(&ann, &[&bob]).await;
    for round in 0..12 {
        let message = rt().http_send(&ann, &group, &format!("race-{round}"), "secret").await;
        let id = message["id"].as_str().unwrap().to_owned();
        let path = format!("/conversations/{group}/messages/{id}");
        let edits: Vec<_> = (0..3)
            .map(|i| {
                let (path, token) = (path.clone(), ann.token.clone());
                tokio::spawn(async move {
                    rt().call(
                        "PATCH",
                        &path,
                        Some(&token),
                        Some(json!({ "body": format!("edited secret {i}") })),
                    )
                    .await
                    .0
                })
            })
            .collect();
        let (status, _) = rt().call("DELETE", &path, Some(&ann.token), None).await;
        assert_eq!(status, 204);
        for edit in edits {
            let status = edit.await.unwrap();
            assert!(status == 200 || status == 409, "an edit answered {status}");
        }
        let (_, conversation) = rt()
            .call("GET", &format!("/conversations/{group}"), Some(&bob.token), None)
            .await;
        let last = &conversation["lastMessage"];
        assert_eq!(last["id"], id.as_str(), "{conversation}");
        assert_eq!(
            (last["deleted"].as_bool(), last["body"].as_str()),
            (Some(true), Some("")),
            "round {round}: {last}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn typing_reaches_the_others_at_most_once_every_three_seconds() {
    let (ann, bob) = (rt().user("ann").await, rt().user("bob").await);
    let group = rt().group(&ann, &[&bob]).await;
    let mut anns = rt().connect(&ann).await;
    let mut bobs = rt().connect(&bob).await;
    let typing = json!({ "action": "typing", "conversationId": group });
    for _ in 0..5 {
        parley_tests::realtime::send_frame(&mut anns, typing.clone()).await;
    }
    let event = next_of(&mut bobs, "typing").await;
    assert_eq!(event["userId"], ann.id.as_str());
    // The other four frames of the burst are dropped silently (and the typist hears nothing back).
    silent(&mut bobs, 1500).await;
    silent(&mut anns, 100).await;
    tokio::time::sleep(Duration::from_millis(1700)).await;
    parley_tests::realtime::send_frame(&mut anns, typing).await;
    assert_eq!(next_of(&mut bobs, "typing").await["userId"], ann.id.as_str());
}
