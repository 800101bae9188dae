//! Reports end to end (docs/API-GUIDE.md "Reports"): members report messages and members to the
//! conversation's owner and admins, who close them; the platform's admins see every report; nobody
//! sees a report about themself.

use parley_tests::realtime::{Clients, User};
use parley_tests::stack;
use serde_json::{json, Value};

fn rt() -> Clients {
    Clients { stack: stack() }
}

async fn call(method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    rt().call(method, path, token, body).await
}

async fn report(user: &User, body: Value) -> (u16, Value) {
    call("POST", "/reports", Some(&user.token), Some(body)).await
}

fn ids(list: &Value) -> Vec<&str> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn a_report_reaches_the_owner_and_admins_never_the_reported_and_is_closed() {
    let (owner, admin, spammer, member) = (
        rt().user("repown").await,
        rt().user("repadm").await,
        rt().user("repspam").await,
        rt().user("repmem").await,
    );
    let group = rt().group(&owner, &[&admin, &spammer, &member]).await;
    for user in [&admin, &spammer] {
        let (status, _) = call(
            "PATCH",
            &format!("/conversations/{group}/members/{}", user.id),
            Some(&owner.token),
            Some(json!({ "role": "admin" })),
        )
        .await;
        assert_eq!(status, 200);
    }
    let spam = rt().http_send(&spammer, &group, "spam-1", "cheap watches here").await;
    let (status, created) = report(
        &member,
        json!({ "conversationId": group, "messageId": spam["id"], "reason": "spam", "note": "every group, every day" }),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "open");
    let id = created["id"].as_str().unwrap().to_owned();

    let path = format!("/conversations/{group}/reports");
    let (status, list) = call("GET", &format!("{path}?status=open"), Some(&owner.token), None).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(ids(&list), [id.as_str()]);
    let listed = &list["items"][0];
    assert_eq!(listed["userId"], spammer.id.as_str(), "about the message's sender");
    assert_eq!(listed["reporterId"], member.id.as_str());
    assert_eq!(listed["messageId"], spam["id"]);
    assert_eq!(listed["note"], "every group, every day");
    let (_, list) = call("GET", &path, Some(&admin.token), None).await;
    assert_eq!(ids(&list), [id.as_str()], "an admin sees it");
    let (status, list) = call("GET", &path, Some(&spammer.token), None).await;
    assert_eq!(
        (status, ids(&list).len()),
        (200, 0),
        "the reported admin does not see it: {list}"
    );
    let (status, _) = call(
        "PATCH",
        &format!("{path}/{id}"),
        Some(&spammer.token),
        Some(json!({ "status": "dismissed" })),
    )
    .await;
    assert_eq!(status, 404, "nor close it");
    let (status, body) = call("GET", &path, Some(&member.token), None).await;
    assert_eq!(status, 403, "a plain member does not see the queue: {body}");
    let (status, _) = call(
        "PATCH",
        &format!("{path}/{id}"),
        Some(&member.token),
        Some(json!({ "status": "dismissed" })),
    )
    .await;
    assert_eq!(status, 403);

    let (status, closed) = call(
        "PATCH",
        &format!("{path}/{id}"),
        Some(&admin.token),
        Some(json!({ "status": "actioned" })),
    )
    .await;
    assert_eq!(status, 200, "{closed}");
    assert_eq!(closed["report"]["status"], "actioned");
    assert_eq!(closed["report"]["handledBy"], admin.id.as_str());
    let (_, open) = call("GET", &format!("{path}?status=open"), Some(&owner.token), None).await;
    assert!(ids(&open).is_empty());
    let (_, actioned) = call("GET", &format!("{path}?status=actioned"), Some(&owner.token), None).await;
    assert_eq!(ids(&actioned), [id.as_str()]);
    for bad in ["?status=closed", "?status="] {
        let (status, _) = call("GET", &format!("{path}{bad}"), Some(&owner.token), None).await;
        assert_eq!(status, 400, "{bad}");
    }
    for bad in [
        json!({ "status": "open" }),
        json!({}),
        json!({ "status": 1 }),
        json!({ "status": null }),
    ] {
        let (status, _) = call("PATCH", &format!("{path}/{id}"), Some(&owner.token), Some(bad.clone())).await;
        assert_eq!(status, 400, "{bad}");
    }
    let (status, _) = call(
        "PATCH",
        &format!("{path}/01JH40A2B4C6D8E0F2G4H6J8K0"),
        Some(&owner.token),
        Some(json!({ "status": "dismissed" })),
    )
    .await;
    assert_eq!(status, 404, "unknown report");

    // Platform admins see every conversation's reports.
    let (status, _) = call("GET", "/admin/reports", Some(&owner.token), None).await;
    assert_eq!(status, 403, "the group's owner is no platform admin");
    let operator = rt().user("repops").await;
    stack().grant_admin(&operator.id).await;
    let (status, all) = call("GET", "/admin/reports?status=actioned", Some(&operator.token), None).await;
    assert_eq!(status, 200, "{all}");
    assert!(ids(&all).contains(&id.as_str()), "{all}");
    let (_, open) = call("GET", "/admin/reports?status=open", Some(&operator.token), None).await;
    assert!(!ids(&open).contains(&id.as_str()));
    let (_, every) = call("GET", "/admin/reports", Some(&operator.token), None).await;
    assert!(ids(&every).contains(&id.as_str()), "all states: {every}");
    let newest: Vec<&str> = ids(&every);
    let mut sorted = newest.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(newest, sorted, "newest first across states");
    // A platform admin never sees a report about themself either.
    let (status, _) = report(
        &member,
        json!({ "conversationId": group, "userId": operator.id, "reason": "other" }),
    )
    .await;
    assert_eq!(status, 201);
    let (_, every) = call("GET", "/admin/reports", Some(&operator.token), None).await;
    assert!(
        every["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["userId"] != operator.id.as_str()),
        "{every}"
    );
}

#[tokio::test]
async fn bad_reports_are_refused_and_write_nothing() {
    let (owner, member, outsider) = (
        rt().user("repbado").await,
        rt().user("repbadm").await,
        rt().user("repbadx").await,
    );
    let group = rt().group(&owner, &[&member]).await;
    let mine = rt().http_send(&member, &group, "mine-1", "my own words").await;
    let theirs = rt().http_send(&owner, &group, "theirs-1", "the owner's words").await;
    let cases: Vec<(Value, u16, &str)> = vec![
        (
            json!({ "conversationId": group, "messageId": mine["id"], "reason": "spam" }),
            400,
            "own message",
        ),
        (
            json!({ "conversationId": group, "userId": member.id, "reason": "abuse" }),
            400,
            "oneself",
        ),
        (
            json!({ "conversationId": group, "messageId": theirs["id"], "reason": "rude" }),
            400,
            "reason",
        ),
        (
            json!({ "conversationId": group, "messageId": theirs["id"] }),
            400,
            "no reason",
        ),
        (
            json!({ "conversationId": group, "messageId": theirs["id"], "reason": "other", "note": "x".repeat(1001) }),
            400,
            "long note",
        ),
        (
            json!({ "conversationId": group, "messageId": theirs["id"], "reason": "other", "note": "see \u{202e}fdp.exe" }),
            400,
            "bidi note",
        ),
        (
            json!({ "conversationId": group, "messageId": "not-an-id", "reason": "spam" }),
            400,
            "bad message id",
        ),
        (json!({ "conversationId": 7, "reason": "spam" }), 400, "wrong type"),
        (json!({ "reason": "spam" }), 400, "no conversation"),
        (
            json!({ "conversationId": group, "reason": "spam" }),
            400,
            "neither message nor user",
        ),
        (
            json!({ "conversationId": group, "messageId": "01JH40A2B4C6D8E0F2G4H6J8K0", "reason": "spam" }),
            404,
            "unknown message",
        ),
        (
            json!({ "conversationId": group, "userId": "01JH40A2B4C6D8E0F2G4H6J8K0", "reason": "spam" }),
            404,
            "unknown user",
        ),
    ];
    for (body, want, what) in cases {
        let (status, answer) = report(&member, body.clone()).await;
        assert_eq!(status, want, "{what}: {body} -> {answer}");
    }
    let (status, _) = report(
        &outsider,
        json!({ "conversationId": group, "messageId": theirs["id"], "reason": "spam" }),
    )
    .await;
    assert_eq!(status, 404, "an outsider cannot report into a conversation");
    let (status, _) = call(
        "POST",
        "/reports",
        None,
        Some(json!({ "conversationId": group, "reason": "spam" })),
    )
    .await;
    assert_eq!(status, 401);
    let (_, list) = call(
        "GET",
        &format!("/conversations/{group}/reports"),
        Some(&owner.token),
        None,
    )
    .await;
    assert!(ids(&list).is_empty(), "nothing was written: {list}");
    // A report about a member, without a message, is fine.
    let (status, _) = report(
        &member,
        json!({ "conversationId": group, "userId": owner.id, "reason": "other" }),
    )
    .await;
    assert_eq!(status, 201);
    let (_, list) = call(
        "GET",
        &format!("/conversations/{group}/reports"),
        Some(&owner.token),
        None,
    )
    .await;
    assert!(
        ids(&list).is_empty(),
        "the owner never sees a report about themself: {list}"
    );
}
