//! Names people see refuse Unicode's bidirectional controls, end to end over HTTP: a display name (at
//! sign-up and in `PATCH /users/me`), a group's name (at creation and renamed) and an attachment's file
//! name. `invoice<U+202E>fdp.exe` would show as `invoiceexe.pdf`; each is a 400 `validation_failed` that
//! names the field, and nothing changes. Right-to-left names are accepted as they are.

use parley_tests::realtime::{Clients, User};
use parley_tests::stack;
use serde_json::{json, Value};

const SPOOFED: &str = "invoice\u{202E}fdp.exe";

fn rt() -> Clients {
    Clients { stack: stack() }
}

fn assert_refused(answer: &(u16, Value), field: &str) {
    assert_eq!(answer.0, 400, "{}", answer.1);
    let error = &answer.1["error"];
    assert_eq!(error["code"], "validation_failed", "{}", answer.1);
    assert_eq!(error["details"][0]["field"], field, "{}", answer.1);
    let message = error["details"][0]["problem"].as_str().unwrap_or_default();
    assert!(
        message.contains("bidirectional") && message.contains("U+202E"),
        "a message that says what is wrong: {}",
        answer.1
    );
}

async fn me(user: &User) -> Value {
    let (status, body) = rt().call("GET", "/users/me", Some(&user.token), None).await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn display_names_with_bidirectional_controls_are_refused_and_nothing_changes() {
    let username = format!("bidi{}", &ulid::Ulid::generate().to_string()[18..].to_lowercase());
    let signup = rt()
        .call(
            "POST",
            "/auth/register",
            None,
            Some(json!({ "username": username, "password": "real time!", "displayName": SPOOFED })),
        )
        .await;
    assert_refused(&signup, "displayName");
    let login = rt()
        .call(
            "POST",
            "/auth/login",
            None,
            Some(json!({ "username": username, "password": "real time!" })),
        )
        .await;
    assert_eq!(login.0, 401, "no account was made: {}", login.1);

    let user = rt().user("bidi").await;
    let before = me(&user).await;
    let update = rt()
        .call(
            "PATCH",
            "/users/me",
            Some(&user.token),
            Some(json!({ "displayName": SPOOFED })),
        )
        .await;
    assert_refused(&update, "displayName");
    assert_eq!(me(&user).await["displayName"], before["displayName"]);

    let hebrew = rt()
        .call(
            "PATCH",
            "/users/me",
            Some(&user.token),
            Some(json!({ "displayName": "שלום עולם" })),
        )
        .await;
    assert_eq!(hebrew.0, 200, "{}", hebrew.1);
    assert_eq!(me(&user).await["displayName"], "שלום עולם");
}

#[tokio::test]
async fn group_and_file_names_with_bidirectional_controls_are_refused_and_nothing_changes() {
    let (owner, member) = (rt().user("bidi").await, rt().user("bidi").await);
    let create = rt()
        .call(
            "POST",
            "/conversations",
            Some(&owner.token),
            Some(json!({ "type": "group", "name": SPOOFED, "memberIds": [member.id] })),
        )
        .await;
    assert_refused(&create, "name");

    let group = rt().group(&owner, &[&member]).await;
    let rename = rt()
        .call(
            "PATCH",
            &format!("/conversations/{group}"),
            Some(&owner.token),
            Some(json!({ "name": SPOOFED })),
        )
        .await;
    assert_refused(&rename, "name");
    let (status, conversation) = rt()
        .call("GET", &format!("/conversations/{group}"), Some(&member.token), None)
        .await;
    assert_eq!(status, 200, "{conversation}");
    assert_eq!(conversation["name"], "rt", "the name is unchanged");

    let reserve = rt()
        .call(
            "POST",
            &format!("/conversations/{group}/attachments"),
            Some(&owner.token),
            Some(json!({ "fileName": SPOOFED, "contentType": "application/pdf", "size": 10 })),
        )
        .await;
    assert_refused(&reserve, "fileName");
    let plain = rt()
        .call(
            "POST",
            &format!("/conversations/{group}/attachments"),
            Some(&owner.token),
            Some(json!({ "fileName": "invoice.pdf", "contentType": "application/pdf", "size": 10 })),
        )
        .await;
    assert_eq!(plain.0, 201, "{}", plain.1);
}
