//! Invite links' expiry and invitations' expiry, in process: a container whose clock runs ahead sees
//! them expired, as every container does once the time has come.

use parley::api::invitations;
use parley_tests::{call_on, TestApp, TestRequest};
use serde_json::json;

#[tokio::test]
async fn an_expired_link_is_gone_and_joins_nobody() {
    let app = TestApp::new().await;
    let (ada, bo) = (app.user("ada").await, app.user("bob").await);
    let group = app.group(&ada, "expiring", &[]).await;
    let created = app
        .call(
            invitations::create_invite,
            TestRequest::route(
                "POST",
                "/conversations/{conversationId}/invites",
                &[("conversationId", &group)],
            )
            .bearer(&ada.token)
            .json(json!({ "expiresInSeconds": 60 })),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let code = created.body["code"].as_str().unwrap().to_owned();
    // Two minutes later, as a container whose clock runs two minutes ahead sees it.
    let later = app.another_container(&[("CLOCK_SKEW_MS", "120000")]).await;
    let join = || TestRequest::route("POST", "/invites/{code}/join", &[("code", &code)]).bearer(&bo.token);
    let answer = call_on(later, invitations::join, join()).await;
    answer.assert_error(410, "gone");
    assert!(
        answer.body["error"]["message"].as_str().unwrap().contains("expired"),
        "{}",
        answer.body
    );
    let listed = call_on(
        later,
        invitations::list_invites,
        TestRequest::route(
            "GET",
            "/conversations/{conversationId}/invites",
            &[("conversationId", &group)],
        )
        .bearer(&ada.token),
    )
    .await;
    assert_eq!(listed.body["items"], json!([]), "an expired link is not listed");
    // Now, it still works: the link's own time decides, in the join's transaction too.
    let answer = app.call(invitations::join, join()).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
}

#[tokio::test]
async fn an_expired_invitation_cannot_be_accepted() {
    let app = TestApp::new().await;
    let (ada, bo) = (app.user("ada").await, app.user("bob").await);
    let private = app
        .call(
            parley::api::users::update_me,
            TestRequest::new("PATCH", "/users/me")
                .bearer(&bo.token)
                .json(json!({ "whoCanAddMe": "nobody" })),
        )
        .await;
    assert_eq!(private.status, 200, "{}", private.body);
    let created = app
        .call(
            parley::api::conversations::create,
            TestRequest::new("POST", "/conversations")
                .bearer(&ada.token)
                .json(json!({ "type": "group", "name": "week", "memberIds": [bo.id] })),
        )
        .await;
    assert_eq!(created.body["invited"], json!([bo.id]), "{}", created.body);
    let listed = app
        .call(
            invitations::list,
            TestRequest::new("GET", "/users/me/invitations").bearer(&bo.token),
        )
        .await;
    let id = listed.body["items"][0]["id"].as_str().unwrap().to_owned();
    // A week later the table's TTL removes it, some time after; until then reads ignore it. (A
    // container a week ahead would refuse the access token itself, so the invitation is aged instead.)
    let mut aged = app.context.store.invitations_of(&bo.id).await.unwrap().remove(0);
    let expired_at = aged.expires_at;
    aged.expires_at = parley::time::epoch_secs(parley::time::now()) - 1;
    app.context
        .store
        .put_invitations(&[(bo.id.clone(), aged.clone())])
        .await
        .unwrap();
    let accept =
        || TestRequest::route("POST", "/invitations/{invitationId}/accept", &[("invitationId", &id)]).bearer(&bo.token);
    let answer = app.call(invitations::accept, accept()).await;
    answer.assert_error(404, "not_found");
    let listed = app
        .call(
            invitations::list,
            TestRequest::new("GET", "/users/me/invitations").bearer(&bo.token),
        )
        .await;
    assert_eq!(listed.body["items"], json!([]));
    aged.expires_at = expired_at;
    app.context
        .store
        .put_invitations(&[(bo.id.clone(), aged)])
        .await
        .unwrap();
    let answer = app.call(invitations::accept, accept()).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
}
