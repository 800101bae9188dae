//! Mutes (docs/API-GUIDE.md "Mutes") end to end over real HTTP and WebSocket clients on the local
//! stack: who may mute whom, the members' `member.muted` / `member.unmuted`, what a mute holds back
//! (sends over HTTP and the WebSocket, reactions, typing) and what it does not (reading), its end by
//! itself, and the refusals.

use parley_tests::realtime::{next, send_frame, silent, until, Clients, User};
use parley_tests::stack;
use serde_json::{json, Value};

fn rt() -> Clients {
    Clients { stack: stack() }
}

async fn call(method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    rt().call(method, path, token, body).await
}

async fn mute(by: &User, group: &str, target: &str, body: Value) -> (u16, Value) {
    call(
        "PUT",
        &format!("/conversations/{group}/mutes/{target}"),
        Some(&by.token),
        Some(body),
    )
    .await
}

async fn unmute(by: &User, group: &str, target: &str) -> (u16, Value) {
    call(
        "DELETE",
        &format!("/conversations/{group}/mutes/{target}"),
        Some(&by.token),
        None,
    )
    .await
}

async fn send(user: &User, conversation: &str, client_id: &str) -> (u16, Value) {
    call(
        "POST",
        &format!("/conversations/{conversation}/messages"),
        Some(&user.token),
        Some(json!({ "clientMessageId": client_id, "body": "hello" })),
    )
    .await
}

fn assert_error(answer: &(u16, Value), status: u16, code: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["error"]["code"], code, "{}", answer.1);
    assert!(answer.1["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_muted_member_reads_but_cannot_write_until_the_mute_ends() {
    let (ann, adam, bob, cat) = (
        rt().user("mua").await,
        rt().user("mub").await,
        rt().user("muc").await,
        rt().user("mud").await,
    );
    let group = rt().group(&ann, &[&adam, &bob, &cat]).await;
    let (status, body) = call(
        "PATCH",
        &format!("/conversations/{group}/members/{}", adam.id),
        Some(&ann.token),
        Some(json!({ "role": "admin" })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let message = rt().http_send(&cat, &group, "before", "before the mute").await;
    let message = message["id"].as_str().unwrap().to_owned();
    let (mut bob_ws, mut cat_ws) = (rt().connect(&bob).await, rt().connect(&cat).await);

    // An admin mutes a plain member; the members hear of it.
    let (status, muted) = mute(&adam, &group, &bob.id, json!({ "durationSeconds": 60 })).await;
    assert_eq!(status, 200, "{muted}");
    assert_eq!(muted["userId"], bob.id.as_str());
    let until_text = muted["until"].as_str().unwrap().to_owned();
    let event = until(&mut cat_ws, |e| e["type"] == "member.muted").await;
    assert_eq!(
        event,
        json!({ "type": "member.muted", "conversationId": group, "userId": bob.id, "until": until_text })
    );

    // Held back: sends (HTTP and WebSocket), reactions, typing; each says until when.
    let refused = send(&bob, &group, "muted-1").await;
    assert_error(&refused, 403, "forbidden");
    assert!(refused.1["error"]["message"].as_str().unwrap().contains(&until_text));
    let _ = until(&mut bob_ws, |e| e["type"] == "member.muted").await;
    send_frame(
        &mut bob_ws,
        json!({ "action": "sendMessage", "conversationId": group, "clientMessageId": "muted-2", "body": "hi" }),
    )
    .await;
    assert_eq!(next(&mut bob_ws).await["error"]["code"], "forbidden");
    let react = call(
        "PUT",
        &format!("/conversations/{group}/messages/{message}/reactions/tada"),
        Some(&bob.token),
        None,
    )
    .await;
    assert_error(&react, 403, "forbidden");
    send_frame(&mut bob_ws, json!({ "action": "typing", "conversationId": group })).await;
    assert_eq!(next(&mut bob_ws).await["error"]["code"], "forbidden");
    silent(&mut cat_ws, 300).await;
    // Not held back: reading.
    let (status, _) = call(
        "GET",
        &format!("/conversations/{group}/messages"),
        Some(&bob.token),
        None,
    )
    .await;
    assert_eq!(status, 200);

    // Lifted: the members hear of it once, and the member writes again.
    assert_eq!(unmute(&adam, &group, &bob.id).await.0, 204);
    let event = until(&mut cat_ws, |e| e["type"] == "member.unmuted").await;
    assert_eq!(
        event,
        json!({ "type": "member.unmuted", "conversationId": group, "userId": bob.id })
    );
    assert_eq!(unmute(&adam, &group, &bob.id).await.0, 204);
    assert_eq!(send(&bob, &group, "after").await.0, 201);
    let _ = until(&mut cat_ws, |e| e["type"] == "message.new").await;
    silent(&mut cat_ws, 300).await;

    // A mute ends by itself.
    assert_eq!(
        mute(&ann, &group, &cat.id, json!({ "durationSeconds": 1 })).await.0,
        200
    );
    assert_error(&send(&cat, &group, "soon").await, 403, "forbidden");
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    assert_eq!(send(&cat, &group, "later").await.0, 201);
}

#[tokio::test(flavor = "multi_thread")]
async fn only_owners_and_admins_mute_and_only_those_below_them() {
    let (ann, adam, amy, bob, outsider) = (
        rt().user("mue").await,
        rt().user("muf").await,
        rt().user("mug").await,
        rt().user("muh").await,
        rt().user("mui").await,
    );
    let group = rt().group(&ann, &[&adam, &amy, &bob]).await;
    for admin in [&adam, &amy] {
        let (status, body) = call(
            "PATCH",
            &format!("/conversations/{group}/members/{}", admin.id),
            Some(&ann.token),
            Some(json!({ "role": "admin" })),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let minute = json!({ "durationSeconds": 60 });
    assert_error(&mute(&bob, &group, &adam.id, minute.clone()).await, 403, "forbidden");
    assert_error(&mute(&adam, &group, &amy.id, minute.clone()).await, 403, "forbidden");
    assert_error(&mute(&adam, &group, &ann.id, minute.clone()).await, 403, "forbidden");
    assert_error(&mute(&ann, &group, &ann.id, minute.clone()).await, 403, "forbidden");
    assert_eq!(
        mute(&ann, &group, &adam.id, minute.clone()).await.0,
        200,
        "the owner mutes an admin"
    );
    assert_error(
        &mute(&outsider, &group, &bob.id, minute.clone()).await,
        404,
        "not_found",
    );
    assert_error(
        &mute(&ann, &group, &outsider.id, minute.clone()).await,
        404,
        "not_found",
    );
    for bad in [
        json!({ "durationSeconds": 0 }),
        json!({ "durationSeconds": 2_592_001 }),
        json!({}),
    ] {
        assert_error(&mute(&ann, &group, &bob.id, bad).await, 400, "validation_failed");
    }
    let wrong_type = mute(&ann, &group, &bob.id, json!({ "durationSeconds": "ten" })).await;
    assert_eq!(wrong_type.0, 400, "{}", wrong_type.1);
    assert_error(
        &mute(&ann, &group, "not-a-ulid", minute.clone()).await,
        400,
        "validation_failed",
    );
    // Not in a direct conversation.
    let (status, direct) = call(
        "POST",
        "/conversations",
        Some(&ann.token),
        Some(json!({ "type": "direct", "memberIds": [bob.id] })),
    )
    .await;
    assert!(status == 200 || status == 201, "{direct}");
    assert_error(
        &mute(&ann, direct["id"].as_str().unwrap(), &bob.id, minute).await,
        403,
        "forbidden",
    );
}
