//! Consent to be added, invitations and invite links end to end (docs/API-GUIDE.md "Invitations and
//! invite links"): real HTTP and WebSocket clients on the local stack.

use std::time::Duration;

use parley_tests::realtime::{until, Clients, User};
use parley_tests::stack;
use serde_json::{json, Value};

fn rt() -> Clients {
    Clients { stack: stack() }
}

async fn call(method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    rt().call(method, path, token, body).await
}

async fn private_user(prefix: &str) -> User {
    let user = rt().user(prefix).await;
    let (status, me) = call(
        "PATCH",
        "/users/me",
        Some(&user.token),
        Some(json!({ "whoCanAddMe": "nobody" })),
    )
    .await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["whoCanAddMe"], "nobody");
    user
}

async fn member_ids(owner: &User, conversation: &str) -> Vec<String> {
    let (status, members) = call(
        "GET",
        &format!("/conversations/{conversation}/members"),
        Some(&owner.token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{members}");
    members["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["userId"].as_str().unwrap().to_owned())
        .collect()
}

async fn invitations(user: &User) -> Vec<Value> {
    let (status, list) = call("GET", "/users/me/invitations", Some(&user.token), None).await;
    assert_eq!(status, 200, "{list}");
    list["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn someone_who_said_nobody_is_invited_not_added_and_can_accept_or_decline() {
    let alice = rt().user("inva").await;
    let bob = private_user("invb").await;
    let carol = rt().user("invc").await;
    let (status, me) = call("GET", "/users/me", Some(&bob.token), None).await;
    assert_eq!((status, &me["whoCanAddMe"]), (200, &json!("nobody")), "{me}");
    let (status, other) = call("GET", &format!("/users/{}", bob.id), Some(&alice.token), None).await;
    assert_eq!(status, 200);
    assert!(
        other.get("whoCanAddMe").is_none(),
        "nobody else sees the setting: {other}"
    );

    let mut bobs_socket = rt().connect(&bob).await;
    let (status, group) = call(
        "POST",
        "/conversations",
        Some(&alice.token),
        Some(json!({ "type": "group", "name": "book club", "memberIds": [bob.id, carol.id] })),
    )
    .await;
    assert_eq!(status, 201, "{group}");
    assert_eq!(group["invited"], json!([bob.id]), "the answer lists who was invited");
    assert_eq!(group["memberCount"], 2, "alice and carol");
    let group_id = group["id"].as_str().unwrap().to_owned();
    assert!(
        !member_ids(&alice, &group_id).await.contains(&bob.id),
        "bob was not added"
    );
    let (status, _) = call("GET", &format!("/conversations/{group_id}"), Some(&bob.token), None).await;
    assert_eq!(status, 404, "bob is not a member");

    let event = until(&mut bobs_socket, |e| e["type"] == "invitation.new").await;
    assert_eq!(event["invitation"]["conversation"]["id"], group_id.as_str());
    assert_eq!(event["invitation"]["invitedBy"], alice.id.as_str());
    let pending = invitations(&bob).await;
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["conversation"]["name"], "book club");
    let id = pending[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(event["invitation"]["id"], id.as_str());

    // Ids no invitation has, however long or odd, are 404 (not a DynamoDB error).
    for bad in ["x".repeat(2000), "not-an-id".to_owned(), "A".repeat(32)] {
        let (status, body) = call("POST", &format!("/invitations/{bad}/accept"), Some(&bob.token), None).await;
        assert_eq!(status, 404, "{body}");
        let (status, body) = call("DELETE", &format!("/invitations/{bad}"), Some(&bob.token), None).await;
        assert_eq!(status, 404, "{body}");
    }
    // Another user cannot accept or decline bob's invitation.
    let (status, _) = call("POST", &format!("/invitations/{id}/accept"), Some(&carol.token), None).await;
    assert_eq!(status, 404);
    let (status, _) = call("DELETE", &format!("/invitations/{id}"), Some(&carol.token), None).await;
    assert_eq!(status, 404);

    let (status, joined) = call("POST", &format!("/invitations/{id}/accept"), Some(&bob.token), None).await;
    assert_eq!(status, 200, "{joined}");
    assert_eq!(joined["conversation"]["id"], group_id.as_str());
    assert_eq!(joined["conversation"]["myRole"], "member");
    assert!(member_ids(&alice, &group_id).await.contains(&bob.id));
    assert!(invitations(&bob).await.is_empty(), "accepted: gone");
    let (status, _) = call("POST", &format!("/invitations/{id}/accept"), Some(&bob.token), None).await;
    assert_eq!(status, 404, "an invitation is accepted once");

    // An add to another group, declined.
    let (status, other) = call(
        "POST",
        "/conversations",
        Some(&carol.token),
        Some(json!({ "type": "group", "name": "other", "memberIds": [alice.id] })),
    )
    .await;
    assert_eq!(status, 201, "{other}");
    let other_id = other["id"].as_str().unwrap().to_owned();
    let (status, added) = call(
        "POST",
        &format!("/conversations/{other_id}/members"),
        Some(&carol.token),
        Some(json!({ "userIds": [bob.id] })),
    )
    .await;
    assert_eq!(status, 200, "{added}");
    assert_eq!(added["added"], json!([]));
    assert_eq!(added["invited"], json!([bob.id]));
    let pending = invitations(&bob).await;
    assert_eq!(pending.len(), 1);
    let id = pending[0]["id"].as_str().unwrap();
    let (status, _) = call("DELETE", &format!("/invitations/{id}"), Some(&bob.token), None).await;
    assert_eq!(status, 204);
    assert!(invitations(&bob).await.is_empty());
    assert!(
        !member_ids(&carol, &other_id).await.contains(&bob.id),
        "declined: not a member"
    );

    // `everyone` again: added directly.
    let (status, _) = call(
        "PATCH",
        "/users/me",
        Some(&bob.token),
        Some(json!({ "whoCanAddMe": "everyone" })),
    )
    .await;
    assert_eq!(status, 200);
    let (status, added) = call(
        "POST",
        &format!("/conversations/{other_id}/members"),
        Some(&carol.token),
        Some(json!({ "userIds": [bob.id] })),
    )
    .await;
    assert_eq!((status, &added["added"]), (200, &json!([bob.id])), "{added}");
    for bad in [
        json!({ "whoCanAddMe": "friends" }),
        json!({ "whoCanAddMe": null }),
        json!({ "whoCanAddMe": 1 }),
    ] {
        let (status, answer) = call("PATCH", "/users/me", Some(&bob.token), Some(bad.clone())).await;
        assert_eq!(status, 400, "{bad}: {answer}");
    }
}

#[tokio::test]
async fn a_banned_user_cannot_come_back_by_invitation_or_link() {
    let alice = rt().user("invbana").await;
    let bob = rt().user("invbanb").await;
    let group = rt().group(&alice, &[&bob]).await;
    let (status, link) = call(
        "POST",
        &format!("/conversations/{group}/invites"),
        Some(&alice.token),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 201, "{link}");
    let code = link["code"].as_str().unwrap().to_owned();
    // An invitation made before the ban.
    let (status, _) = call(
        "PATCH",
        "/users/me",
        Some(&bob.token),
        Some(json!({ "whoCanAddMe": "nobody" })),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(
        "PUT",
        &format!("/conversations/{group}/bans/{}", bob.id),
        Some(&alice.token),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 204);
    let (status, body) = call("POST", &format!("/invites/{code}/join"), Some(&bob.token), None).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    let (status, body) = call(
        "POST",
        &format!("/conversations/{group}/members"),
        Some(&alice.token),
        Some(json!({ "userIds": [bob.id] })),
    )
    .await;
    assert_eq!(status, 403, "a banned user is not invited either: {body}");
    assert!(invitations(&bob).await.is_empty());
    assert!(!member_ids(&alice, &group).await.contains(&bob.id));
    let (_, link) = call(
        "GET",
        &format!("/conversations/{group}/invites"),
        Some(&alice.token),
        None,
    )
    .await;
    assert_eq!(link["items"][0]["uses"], 0, "the refused join took no use");

    // An invitation made before the ban does not let its invitee in after it.
    let carol = private_user("invbanc").await;
    let (status, added) = call(
        "POST",
        &format!("/conversations/{group}/members"),
        Some(&alice.token),
        Some(json!({ "userIds": [carol.id] })),
    )
    .await;
    assert_eq!((status, &added["invited"]), (200, &json!([carol.id])), "{added}");
    let (status, _) = call(
        "PUT",
        &format!("/conversations/{group}/bans/{}", carol.id),
        Some(&alice.token),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 204);
    let id = invitations(&carol).await[0]["id"].as_str().unwrap().to_owned();
    let (status, body) = call("POST", &format!("/invitations/{id}/accept"), Some(&carol.token), None).await;
    assert_eq!(status, 403, "{body}");
    assert!(!member_ids(&alice, &group).await.contains(&carol.id));
}

#[tokio::test]
async fn invite_links_join_expire_run_out_and_are_revoked() {
    let alice = rt().user("linka").await;
    let admin = rt().user("linkadm").await;
    let plain = rt().user("linkp").await;
    let group = rt().group(&alice, &[&admin, &plain]).await;
    let (status, _) = call(
        "PATCH",
        &format!("/conversations/{group}/members/{}", admin.id),
        Some(&alice.token),
        Some(json!({ "role": "admin" })),
    )
    .await;
    assert_eq!(status, 200);
    let path = format!("/conversations/{group}/invites");
    let (status, body) = call("POST", &path, Some(&plain.token), Some(json!({}))).await;
    assert_eq!(status, 403, "a plain member makes no links: {body}");
    let (status, link) = call(
        "POST",
        &path,
        Some(&admin.token),
        Some(json!({ "maxUses": 2, "expiresInSeconds": 3600 })),
    )
    .await;
    assert_eq!(status, 201, "{link}");
    assert_eq!((link["maxUses"].as_u64(), link["uses"].as_u64()), (Some(2), Some(0)));
    let code = link["code"].as_str().unwrap().to_owned();
    let (status, default) = call("POST", &path, Some(&alice.token), None).await;
    assert_eq!(status, 201, "no body: every default");
    assert_eq!(default["maxUses"], Value::Null);

    let mut alices_socket = rt().connect(&alice).await;
    let dan = rt().user("linkd").await;
    let (status, joined) = call("POST", &format!("/invites/{code}/join"), Some(&dan.token), None).await;
    assert_eq!(status, 200, "{joined}");
    assert_eq!(joined["conversation"]["id"], group.as_str());
    let event = until(&mut alices_socket, |e| e["type"] == "member.added").await;
    assert_eq!(event["userIds"], json!([dan.id]));
    let (status, again) = call("POST", &format!("/invites/{code}/join"), Some(&dan.token), None).await;
    assert_eq!(status, 200, "a member joining again: the group, no use taken: {again}");
    let (_, list) = call("GET", &path, Some(&alice.token), None).await;
    let listed = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["code"] == code.as_str())
        .unwrap()
        .clone();
    assert_eq!(listed["uses"], 1);

    let erin = rt().user("linke").await;
    let (status, _) = call("POST", &format!("/invites/{code}/join"), Some(&erin.token), None).await;
    assert_eq!(status, 200);
    let frank = rt().user("linkf").await;
    let (status, body) = call("POST", &format!("/invites/{code}/join"), Some(&frank.token), None).await;
    assert_eq!(status, 410, "used up: {body}");
    assert_eq!(body["error"]["code"], "gone");

    // Revoked.
    let (status, _) = call(
        "DELETE",
        &format!("{path}/{}", default["code"].as_str().unwrap()),
        Some(&plain.token),
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = call(
        "DELETE",
        &format!("{path}/{}", default["code"].as_str().unwrap()),
        Some(&admin.token),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, body) = call(
        "POST",
        &format!("/invites/{}/join", default["code"].as_str().unwrap()),
        Some(&frank.token),
        None,
    )
    .await;
    assert_eq!(status, 410, "revoked: {body}");
    let (_, list) = call("GET", &path, Some(&alice.token), None).await;
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["code"] != default["code"]),
        "revoked links are not listed"
    );

    // Expiry (the shortest lifetime is a minute) is tested in process, with a container whose clock
    // runs ahead (api/invitations.rs); here, the bounds.
    for bad in [
        json!({ "maxUses": 0 }),
        json!({ "maxUses": 1001 }),
        json!({ "maxUses": -1 }),
        json!({ "maxUses": null }),
        json!({ "expiresInSeconds": 59 }),
        json!({ "expiresInSeconds": 604801 }),
        json!({ "expiresInSeconds": "soon" }),
    ] {
        let (status, answer) = call("POST", &path, Some(&alice.token), Some(bad.clone())).await;
        assert_eq!(status, 400, "{bad}: {answer}");
    }
    let (status, _) = call("POST", "/invites/AAAAAAAAAAAA/join", Some(&frank.token), None).await;
    assert_eq!(status, 404, "unknown code");
    let (status, _) = call("POST", "/invites/bad!/join", Some(&frank.token), None).await;
    assert_eq!(status, 404);
    let (status, _) = call("POST", &format!("/invites/{code}/join"), None, None).await;
    assert_eq!(status, 401);
    let outsider = rt().user("linko").await;
    let (status, _) = call("GET", &path, Some(&outsider.token), None).await;
    assert_eq!(status, 404, "an outsider does not see the group's links");
}

#[tokio::test]
async fn concurrent_joins_never_pass_the_use_limit() {
    let alice = rt().user("linkrace").await;
    let group = rt().group(&alice, &[]).await;
    let (status, link) = call(
        "POST",
        &format!("/conversations/{group}/invites"),
        Some(&alice.token),
        Some(json!({ "maxUses": 3 })),
    )
    .await;
    assert_eq!(status, 201, "{link}");
    let code = link["code"].as_str().unwrap().to_owned();
    let mut joiners = Vec::new();
    for n in 0..10 {
        joiners.push(rt().user(&format!("race{n}")).await);
    }
    let answers = futures_util::future::join_all(joiners.iter().map(|user| {
        let code = code.clone();
        async move {
            call("POST", &format!("/invites/{code}/join"), Some(&user.token), None)
                .await
                .0
        }
    }))
    .await;
    let joined = answers.iter().filter(|s| **s == 200).count();
    assert_eq!(joined, 3, "exactly the limit joined: {answers:?}");
    assert!(answers.iter().all(|s| *s == 200 || *s == 410), "{answers:?}");
    let members = member_ids(&alice, &group).await;
    assert_eq!(members.len(), 4, "alice and three");
    let (_, list) = call(
        "GET",
        &format!("/conversations/{group}/invites"),
        Some(&alice.token),
        None,
    )
    .await;
    assert!(
        list["items"].as_array().unwrap().is_empty(),
        "a used-up link is not listed: {list}"
    );
    tokio::time::sleep(Duration::from_millis(10)).await;
}
