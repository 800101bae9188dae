//! What the fuzzer (contract_fuzz.rs) found, one test per finding: the exact request it reported, over
//! HTTP to the shared stack, and the answer the contract gives; for a finding that was the document's,
//! also that the request is one openapi.yaml allows.

use parley_tests::contract::schema_errors;
use parley_tests::{eventually, stack};
use serde_json::{json, Value};

const PASSWORD: &str = "fuzz findings";

fn unique(prefix: &str) -> String {
    format!("{prefix}{}", &ulid::Ulid::generate().to_string()[16..].to_lowercase())
}

/// The request body schema of an operation of openapi.yaml, as a JSON pointer.
fn request_schema(path: &str, method: &str) -> String {
    format!(
        "/paths/{}/{method}/requestBody/content/application~1json/schema",
        path.replace('~', "~0").replace('/', "~1")
    )
}

fn assert_documented(path: &str, method: &str, body: &Value) {
    let errors = schema_errors(&request_schema(path, method), body);
    assert!(
        errors.is_empty(),
        "openapi.yaml refuses {method} {path} {body}, which the API accepts: {errors:?}"
    );
}

async fn register(username: &str) -> (String, Value) {
    let answer = stack()
        .call(
            "POST",
            "/auth/register",
            None,
            Some(json!({ "username": username, "password": PASSWORD })),
        )
        .await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    (
        answer.body["accessToken"].as_str().unwrap().to_owned(),
        answer.body["user"].clone(),
    )
}

/// Found as `PATCH /users/me {"displayName": "0", "status": null, "statusText": ""}` answered 200 though
/// the document's `status` had no `null`. The API reads a `null` `status` (and `displayName`) as not
/// sent, as it reads every optional field; openapi.yaml now says so.
#[tokio::test(flavor = "multi_thread")]
async fn a_null_status_in_a_profile_change_leaves_the_status_as_it_was() {
    let (token, _) = register(&unique("nullstatus")).await;
    let busy = stack()
        .call(
            "PATCH",
            "/users/me",
            Some(&token),
            Some(json!({ "status": "busy", "statusText": "in a meeting" })),
        )
        .await;
    assert_eq!(busy.status, 200, "{}", busy.body);

    let found = json!({ "displayName": "0", "status": null, "statusText": "" });
    assert_documented("/users/me", "patch", &found);
    let changed = stack().call("PATCH", "/users/me", Some(&token), Some(found)).await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_eq!(changed.body["displayName"], "0");
    assert_eq!(changed.body["status"], "busy", "a null status is no change");
    assert!(
        changed.body.get("statusText").is_none(),
        "blank text clears it: {}",
        changed.body
    );

    let display_name_null = json!({ "displayName": null, "status": "away" });
    assert_documented("/users/me", "patch", &display_name_null);
    let changed = stack()
        .call("PATCH", "/users/me", Some(&token), Some(display_name_null))
        .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_eq!(
        (changed.body["displayName"].as_str(), changed.body["status"].as_str()),
        (Some("0"), Some("away"))
    );
}

/// Found as `POST /auth/register {"username": "000", "password": ..., "displayName": null}` answered 201
/// though the document's `displayName` had no `null`: a `null` display name is one not given, so the
/// username stands in for it.
#[tokio::test(flavor = "multi_thread")]
async fn a_null_display_name_at_sign_up_is_the_username() {
    let username = unique("nulldisplay");
    let found = json!({ "username": username, "password": PASSWORD, "displayName": null });
    assert_documented("/auth/register", "post", &found);
    let answer = stack().call("POST", "/auth/register", None, Some(found)).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(answer.body["user"]["displayName"], username.as_str());
}

async fn ok(method: &str, path: &str, token: &str, body: Option<Value>) -> Value {
    let answer = stack().call(method, path, Some(token), body).await;
    assert!(
        (200..300).contains(&answer.status),
        "{method} {path}: {} {}",
        answer.status,
        answer.body
    );
    answer.body
}

/// Waits until the conversation's `lastMessage` is `message_id`: the conversation worker records it
/// from the table's stream, a moment after the send's answer.
async fn until_last_message(token: &str, conversation: &str, message_id: &str) {
    let seen = eventually(&Value::from(message_id), || async {
        ok("GET", &format!("/conversations/{conversation}"), token, None).await["lastMessage"]["id"].clone()
    })
    .await;
    assert_eq!(seen, message_id, "the last message of {conversation}");
}

/// `lastMessage` as the caller reads it, which the writes' answers must carry as `GET` does.
fn assert_read_view(conversation: &Value, reactions: &[&str], with_attachment: bool, what: &str) {
    let last = &conversation["lastMessage"];
    let mine: Vec<&str> = last["myReactions"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: lastMessage without myReactions: {conversation}"))
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert_eq!(mine, reactions, "{what}: {conversation}");
    if with_attachment {
        assert!(
            last["attachments"][0]["url"].is_string(),
            "{what}: the last message's attachment has no download link: {conversation}"
        );
    }
}

/// Found as `PATCH /conversations/{id} {"name": "000…0"}` (100 characters), `POST
/// /conversations/{id}/owner {"": [], "userId": ...}` and `POST /conversations {"type": "direct", ...}`
/// for a pair that had one already, each answered 200 with a `lastMessage` that had no `myReactions` and
/// attachments without `url`: the META's copy, not the message as the caller reads it (`GET` gave both).
#[tokio::test(flavor = "multi_thread")]
async fn conversations_answered_after_a_write_carry_the_last_message_as_the_caller_reads_it() {
    let (owner, owner_user) = register(&unique("lastowner")).await;
    let (_, member_user) = register(&unique("lastmember")).await;
    let member_id = member_user["id"].as_str().unwrap();
    let group = ok(
        "POST",
        "/conversations",
        &owner,
        Some(json!({ "type": "group", "name": "last message", "memberIds": [member_id] })),
    )
    .await;
    let group = group["id"].as_str().unwrap();

    let reserved = ok(
        "POST",
        &format!("/conversations/{group}/attachments"),
        &owner,
        Some(json!({ "fileName": "a.txt", "contentType": "text/plain", "size": 3 })),
    )
    .await;
    let mut upload = reqwest::Client::new().put(reserved["uploadUrl"].as_str().unwrap());
    for (name, value) in reserved["uploadHeaders"].as_object().unwrap() {
        if !name.eq_ignore_ascii_case("content-length") {
            upload = upload.header(name, value.as_str().unwrap());
        }
    }
    assert!(upload.body("abc").send().await.unwrap().status().is_success());
    let message = ok(
        "POST",
        &format!("/conversations/{group}/messages"),
        &owner,
        Some(json!({ "clientMessageId": "with-file", "body": "", "attachmentIds": [reserved["attachment"]["id"]] })),
    )
    .await;
    let message = message["id"].as_str().unwrap();
    until_last_message(&owner, group, message).await;
    ok(
        "PUT",
        &format!("/conversations/{group}/messages/{message}/reactions/+1"),
        &owner,
        None,
    )
    .await;

    let renamed = ok(
        "PATCH",
        &format!("/conversations/{group}"),
        &owner,
        Some(json!({ "name": "0".repeat(100) })),
    )
    .await;
    assert_read_view(&renamed, &["+1"], true, "PATCH /conversations/{id}");
    let transferred = ok(
        "POST",
        &format!("/conversations/{group}/owner"),
        &owner,
        Some(json!({ "": [], "userId": member_id })),
    )
    .await;
    assert_read_view(&transferred, &["+1"], true, "POST /conversations/{id}/owner");

    let direct = json!({ "type": "direct", "memberIds": [member_id] });
    let opened = ok("POST", "/conversations", &owner, Some(direct.clone())).await;
    let direct_id = opened["id"].as_str().unwrap();
    let sent = ok(
        "POST",
        &format!("/conversations/{direct_id}/messages"),
        &owner,
        Some(json!({ "clientMessageId": "hello", "body": "hello" })),
    )
    .await;
    until_last_message(&owner, direct_id, sent["id"].as_str().unwrap()).await;
    ok(
        "PUT",
        &format!(
            "/conversations/{direct_id}/messages/{}/reactions/tada",
            sent["id"].as_str().unwrap()
        ),
        &owner,
        None,
    )
    .await;
    let again = stack().call("POST", "/conversations", Some(&owner), Some(direct)).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_read_view(
        &again.body,
        &["tada"],
        false,
        "POST /conversations (the existing direct one)",
    );
    assert_eq!(owner_user["id"], again.body["createdBy"]);
}
