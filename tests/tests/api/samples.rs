//! The sample events in events/ (one per function, shaped as API Gateway sends them) go through their
//! handlers and succeed; and functions/, template.yaml and events/ list the same functions.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use k256::ecdsa::SigningKey;
use parley::api::{auth, conversations, messages, users};
use parley::auth::wallet::personal_sign;
use parley_template::{workspace_template_path, Template};
use parley_tests::{TestApp, TestRequest, TestResponse, TestUser};
use serde_json::{json, Value};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn names_in(dir: &str, keep: impl Fn(&Path) -> Option<String>) -> BTreeSet<String> {
    std::fs::read_dir(workspace().join(dir))
        .unwrap_or_else(|e| panic!("read {dir}: {e}"))
        .filter_map(|entry| keep(&entry.ok()?.path()))
        .collect()
}

fn template_binaries() -> BTreeSet<String> {
    let functions = Template::load(&workspace_template_path()).unwrap().functions().unwrap();
    let binaries: Vec<String> = functions.iter().map(|f| f.binary.clone()).collect();
    let unique: BTreeSet<String> = binaries.iter().cloned().collect();
    assert_eq!(
        unique.len(),
        binaries.len(),
        "a crate has more than one template entry: {binaries:?}"
    );
    unique
}

#[test]
fn every_function_crate_has_one_template_entry_and_one_sample_event() {
    let crates = names_in("functions", |p| {
        p.join("Cargo.toml")
            .is_file()
            .then(|| p.file_name().unwrap().to_string_lossy().into_owned())
    });
    let events = names_in("events", |p| {
        (p.extension()? == "json").then(|| p.file_stem().unwrap().to_string_lossy().into_owned())
    });
    let template = template_binaries();
    assert_eq!(crates, template, "functions/ and template.yaml differ");
    assert_eq!(events, template, "events/ and template.yaml differ");
}

/// Function crates hold no tests (their logic is in parley-shared), so `cargo test --workspace` must not
/// link a test harness of each: 51 of them cost about 2.6 GB of disk and 51 links in every CI run.
#[test]
fn every_function_binary_is_left_out_of_cargo_test() {
    let missing = names_in("functions", |p| {
        let manifest = std::fs::read_to_string(p.join("Cargo.toml")).ok()?;
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let declared = manifest.contains(&format!(
            "[[bin]]\nname = \"{name}\"\npath = \"src/main.rs\"\ntest = false\n"
        ));
        (!declared).then_some(name)
    });
    assert!(
        missing.is_empty(),
        "these function crates do not declare their binary with `test = false`: {missing:?}"
    );
}

#[test]
fn every_sample_event_matches_its_template_route() {
    for function in Template::load(&workspace_template_path()).unwrap().functions().unwrap() {
        if function.http_routes.is_empty() {
            continue;
        }
        let event = load_event(&function.binary);
        let route_keys: Vec<String> = function
            .http_routes
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect();
        assert!(
            route_keys.contains(&event["routeKey"].as_str().unwrap().to_owned()),
            "events/{}.json has routeKey {} but the template routes {route_keys:?}",
            function.binary,
            event["routeKey"]
        );
        assert_eq!(event["version"], "2.0");
        assert_eq!(event["requestContext"]["routeKey"], event["routeKey"]);
    }
}

fn load_event(name: &str) -> Value {
    let path = workspace().join("events").join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Replaces the sample's placeholder credentials and ids with live ones from this test's table.
async fn prepare(app: &TestApp, name: &str, mut event: Value) -> Value {
    let body: Value = event["body"]
        .as_str()
        .map(|b| serde_json::from_str(b).unwrap())
        .unwrap_or(Value::Null);
    let needs_user = event["headers"].get("authorization").is_some() || matches!(name, "auth-login" | "auth-refresh");
    if needs_user {
        let username = body["username"].as_str().unwrap_or("sampleuser");
        let password = body["password"].as_str().unwrap_or("sample-password");
        let signed_in = app
            .call(
                auth::register,
                TestRequest::new("POST", "/auth/register").json(json!({ "username": username, "password": password })),
            )
            .await;
        assert_eq!(signed_in.status, 201, "{}", signed_in.body);
        let signed_in = signed_in.body;
        if event["headers"].get("authorization").is_some() {
            event["headers"]["authorization"] = json!(format!("Bearer {}", signed_in["accessToken"].as_str().unwrap()));
        }
        let user_id = signed_in["user"]["id"].as_str().unwrap();
        // A user route's `{userId}` is the caller, a block route's someone else; a member route's is
        // the other member (below).
        let member_route = ["members-", "conversations-", "mutes-", "bans-"]
            .iter()
            .any(|p| name.starts_with(p));
        let target = if name.starts_with("users-blocks-") {
            app.register("sampleblocked").await["user"]["id"]
                .as_str()
                .unwrap()
                .to_owned()
        } else {
            user_id.to_owned()
        };
        if let Some(sample_id) = event["pathParameters"]["userId"]
            .as_str()
            .filter(|_| !member_route)
            .map(str::to_owned)
        {
            event["pathParameters"]["userId"] = json!(target);
            let path = event["rawPath"].as_str().unwrap().replace(&sample_id, &target);
            event["rawPath"] = json!(path);
            event["requestContext"]["http"]["path"] = json!(path);
        }
        if let Some(ids) = event["queryStringParameters"]["ids"].as_str().map(str::to_owned) {
            let ids = ids.replacen(ids.split(',').next().unwrap(), user_id, 1);
            event["queryStringParameters"]["ids"] = json!(ids);
            event["rawQueryString"] = json!(format!("ids={}", ids.replace(',', "%2C")));
        }
        if name == "auth-refresh" {
            event["body"] = json!(json!({ "refreshToken": signed_in["refreshToken"] }).to_string());
        }
        if let Some(sample_id) = event["pathParameters"]["sessionId"].as_str().map(str::to_owned) {
            // Another session of the same user, to be revoked by the sample.
            let other = app
                .call(
                    auth::login,
                    TestRequest::new("POST", "/auth/login").json(json!({ "username": username, "password": password })),
                )
                .await;
            let other = app
                .context
                .tokens()
                .verify(other.body["accessToken"].as_str().unwrap())
                .unwrap()
                .sid;
            event["pathParameters"]["sessionId"] = json!(other);
            let path = event["rawPath"].as_str().unwrap().replace(&sample_id, &other);
            event["rawPath"] = json!(path);
            event["requestContext"]["http"]["path"] = json!(path);
        }
    }
    if [
        "conversations-",
        "members-",
        "messages-",
        "reactions-",
        "pins-",
        "notifications-",
        "invites-create",
        "invites-list",
        "invites-delete",
        "mutes-",
        "bans-",
        "attachments-",
    ]
    .iter()
    .any(|p| name.starts_with(p))
    {
        event = conversation_world(app, &event).await;
    }
    if name == "auth-wallet-verify" {
        // The address of the sample is that of this well-known test key; sign a live challenge with it.
        let key = SigningKey::from_slice(
            &hex::decode("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318").unwrap(),
        )
        .unwrap();
        let challenge = app
            .call(
                auth::wallet_challenge,
                TestRequest::new("POST", "/auth/wallet/challenge").json(json!({ "address": body["address"] })),
            )
            .await;
        let signature = personal_sign(&key, challenge.body["message"].as_str().unwrap());
        event["body"] = json!(json!({ "address": body["address"], "signature": signature }).to_string());
    }
    event
}

/// The ids the conversation samples use, replaced with those of a live group.
const SAMPLE_CONVERSATION: &str = "01JH3Z7Q2W8E4R6T8Y0V2J4K6P";
const SAMPLE_MESSAGE: &str = "01JH3Z9D1F3G5H7J9K1L3M5N7P";
const SAMPLE_OTHER_USER: &str = "01JH3Z5B7K2M9R4T6V8W0XYZAB";

/// A group owned by the sample's caller, with one other member and one message; the sample's ids are
/// swapped for live ones (for members-add, the other user is one not yet in the group).
async fn conversation_world(app: &TestApp, event: &Value) -> Value {
    let token = event["headers"]["authorization"]
        .as_str()
        .unwrap()
        .trim_start_matches("Bearer ")
        .to_owned();
    let member = app.register("samplemember").await["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let outsider = app.register("sampleoutsider").await["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let group = app
        .call(
            conversations::create,
            TestRequest::new("POST", "/conversations")
                .bearer(&token)
                .json(json!({ "type": "group", "name": "samples", "memberIds": [member] })),
        )
        .await;
    assert_eq!(group.status, 201, "{}", group.body);
    let conversation = group.body["id"].as_str().unwrap().to_owned();
    let sent = app
        .call(
            messages::send,
            TestRequest::route(
                "POST",
                "/conversations/{conversationId}/messages",
                &[("conversationId", &conversation)],
            )
            .bearer(&token)
            .json(json!({ "clientMessageId": "sample-1", "body": "hello" })),
        )
        .await;
    assert_eq!(sent.status, 201, "{}", sent.body);
    let message = sent.body["id"].as_str().unwrap();
    let other = if event["routeKey"] == "POST /conversations/{conversationId}/members" {
        &outsider
    } else {
        &member
    };
    let text = event
        .to_string()
        .replace(SAMPLE_CONVERSATION, &conversation)
        .replace(SAMPLE_MESSAGE, message)
        .replace(SAMPLE_OTHER_USER, other);
    serde_json::from_str(&text).unwrap()
}

/// `attachments-get`'s sample reads back an upload of the caller's, reserved first (presigning needs
/// no S3 server). Boxed: its future would make `run`'s too large for a test thread's stack.
async fn attachments_get(app: &TestApp, event: &Value) -> TestResponse {
    // An upload of the caller's to read back (presigning needs no S3 server).
    let mut event = event.clone();
    let token = event["headers"]["authorization"]
        .as_str()
        .unwrap()
        .trim_start_matches("Bearer ");
    let me = app.context.tokens().verify(token).unwrap().sub;
    let conversation = event["pathParameters"]["conversationId"].as_str().unwrap().to_owned();
    let input = parley::domain::attachments::NewAttachment {
        file_name: Some("holiday.jpg".to_owned()),
        content_type: Some("image/jpeg".to_owned()),
        size: Some(482_113),
    };
    let reserved = parley::domain::attachments::reserve(app.context, &me, &conversation, input)
        .await
        .unwrap();
    let sample_id = event["pathParameters"]["attachmentId"].as_str().unwrap().to_owned();
    let path = event["rawPath"]
        .as_str()
        .unwrap()
        .replace(&sample_id, &reserved.attachment.id);
    event["pathParameters"]["attachmentId"] = json!(reserved.attachment.id);
    event["rawPath"] = json!(path);
    event["requestContext"]["http"]["path"] = json!(path);
    app.call_event(parley::api::attachments::get, &event).await
}

async fn push_subscriptions_delete(app: &TestApp, event: &Value) -> TestResponse {
    // The create sample's subscription, registered for the caller, is what the sample removes.
    let mut event = event.clone();
    let token = event["headers"]["authorization"]
        .as_str()
        .unwrap()
        .trim_start_matches("Bearer ");
    let me = app.context.tokens().verify(token).unwrap().sub;
    let sample = load_event("push-subscriptions-create");
    let body: Value = serde_json::from_str(sample["body"].as_str().unwrap()).unwrap();
    let new = parley::domain::push::NewSubscription::WebPush {
        endpoint: body["endpoint"].as_str().unwrap().to_owned(),
        p256dh: body["keys"]["p256dh"].as_str().unwrap().to_owned(),
        auth: body["keys"]["auth"].as_str().unwrap().to_owned(),
    };
    let (subscription, _) = parley::domain::push::subscribe(app.context, &me, new).await.unwrap();
    let sample_id = event["pathParameters"]["subscriptionId"].as_str().unwrap().to_owned();
    let path = event["rawPath"].as_str().unwrap().replace(&sample_id, &subscription.id);
    event["pathParameters"]["subscriptionId"] = json!(subscription.id);
    event["rawPath"] = json!(path);
    event["requestContext"]["http"]["path"] = json!(path);
    app.call_event(parley::api::push::delete, &event).await
}

/// The caller's id from the sample's (live) token.
fn caller(app: &TestApp, event: &Value) -> String {
    let token = event["headers"]["authorization"]
        .as_str()
        .unwrap()
        .trim_start_matches("Bearer ");
    app.context.tokens().verify(token).unwrap().sub
}

/// Replaces a path parameter's sample value with a live one.
fn with_path_param(event: &Value, name: &str, live: &str) -> Value {
    let mut event = event.clone();
    let sample = event["pathParameters"][name].as_str().unwrap().to_owned();
    let path = event["rawPath"].as_str().unwrap().replace(&sample, live);
    event["pathParameters"][name] = json!(live);
    event["rawPath"] = json!(path);
    event["requestContext"]["http"]["path"] = json!(path);
    event
}

/// A live invite link of the sample conversation (made by its owner, the caller).
async fn invites_delete(app: &TestApp, event: &Value) -> TestResponse {
    let me = caller(app, event);
    let conversation = event["pathParameters"]["conversationId"].as_str().unwrap();
    let link = parley::domain::invitations::create_invite(app.context, &me, conversation, None, None)
        .await
        .unwrap();
    app.call_event(
        parley::api::invitations::revoke_invite,
        &with_path_param(event, "code", &link.code),
    )
    .await
}

/// A link to someone else's group, which the caller joins.
async fn invites_join(app: &TestApp, event: &Value) -> TestResponse {
    let owner = app.user("sampleowner").await;
    let group = app.group(&owner, "sample group", &[]).await;
    let link = parley::domain::invitations::create_invite(app.context, &owner.id, &group, Some(5), None)
        .await
        .unwrap();
    app.call_event(
        parley::api::invitations::join,
        &with_path_param(event, "code", &link.code),
    )
    .await
}

/// An invitation of the caller's (who accepts only invitations) to someone else's group.
async fn invitation_answer<H, Fut>(app: &TestApp, event: &Value, handler: H) -> TestResponse
where
    H: Fn(&'static parley::AppContext, parley::http::ApiRequest) -> Fut,
    Fut: std::future::Future<Output = Result<parley::http::Reply, parley::ApiError>>,
{
    let me = caller(app, event);
    let change = parley::domain::users::ProfileChange {
        who_can_add_me: Some("nobody".to_owned()),
        ..Default::default()
    };
    parley::domain::users::update_own_profile(app.context, &me, change)
        .await
        .unwrap();
    let owner = app.user("sampleinviter").await;
    let created = app
        .call(
            conversations::create,
            TestRequest::new("POST", "/conversations")
                .bearer(&owner.token)
                .json(json!({ "type": "group", "name": "sample invitation", "memberIds": [me] })),
        )
        .await;
    assert_eq!(created.body["invited"], json!([me]), "{}", created.body);
    let invitation = parley::domain::invitations::list(app.context, &me)
        .await
        .unwrap()
        .remove(0);
    app.call_event(handler, &with_path_param(event, "invitationId", &invitation.id))
        .await
}

/// A group of the caller's with two others, the first of whom sends a message: what the report
/// samples report (nobody reports their own message or themself).
async fn report_world(app: &TestApp, event: &Value) -> (String, TestUser, TestUser, String) {
    Box::pin(report_world_inner(app, event)).await
}

async fn report_world_inner(app: &TestApp, event: &Value) -> (String, TestUser, TestUser, String) {
    let me = caller(app, event);
    let token = event["headers"]["authorization"]
        .as_str()
        .unwrap()
        .trim_start_matches("Bearer ")
        .to_owned();
    let (sender, other) = (app.user("samplesender").await, app.user("sampleother").await);
    let owner = TestUser { id: me, token };
    let group = app.group(&owner, "sample reports", &[&sender, &other]).await;
    let message = app.send(&sender, &group, "sample-report", "buy cheap watches").await;
    (group, sender, other, message["id"].as_str().unwrap().to_owned())
}

async fn reports_create(app: &TestApp, event: &Value) -> TestResponse {
    let (group, _, _, message) = report_world(app, event).await;
    let mut event = event.clone();
    let body = event["body"]
        .as_str()
        .unwrap()
        .replace(SAMPLE_CONVERSATION, &group)
        .replace(SAMPLE_MESSAGE, &message);
    event["body"] = json!(body);
    app.call_event(parley::api::reports::create, &event).await
}

async fn conversation_reports(app: &TestApp, event: &Value, update: bool) -> TestResponse {
    let (group, sender, other, _) = report_world(app, event).await;
    let new = parley::domain::reports::NewReport {
        conversation_id: group.clone(),
        message_id: None,
        user_id: Some(other.id.clone()),
        reason: Some("abuse".to_owned()),
        note: None,
    };
    let report = Box::pin(parley::domain::reports::create(app.context, &sender.id, new))
        .await
        .unwrap();
    let event = with_path_param(event, "conversationId", &group);
    if update {
        let event = with_path_param(&event, "reportId", &report);
        Box::pin(app.call_event(parley::api::reports::update, &event)).await
    } else {
        Box::pin(app.call_event(parley::api::reports::list, &event)).await
    }
}

/// The caller made a platform admin, as an operator does by hand (no API grants the role).
async fn admin_reports(app: &TestApp, event: &Value) -> TestResponse {
    let me = caller(app, event);
    app.context
        .store
        .client()
        .update_item()
        .table_name(app.context.store.table())
        .key("PK", aws_sdk_dynamodb::types::AttributeValue::S(format!("USER#{me}")))
        .key("SK", aws_sdk_dynamodb::types::AttributeValue::S("PROFILE".into()))
        .update_expression("SET #role = :admin")
        .expression_attribute_names("#role", "role")
        .expression_attribute_values(":admin", aws_sdk_dynamodb::types::AttributeValue::S("admin".into()))
        .send()
        .await
        .unwrap();
    app.call_event(parley::api::reports::all, event).await
}

async fn run(app: &TestApp, name: &str, event: &Value) -> TestResponse {
    match name {
        "auth-register" => app.call_event(auth::register, event).await,
        "auth-login" => app.call_event(auth::login, event).await,
        "auth-refresh" => app.call_event(auth::refresh, event).await,
        "auth-logout" => app.call_event(auth::logout, event).await,
        "auth-sessions-list" => app.call_event(auth::sessions_list, event).await,
        "auth-sessions-delete" => app.call_event(auth::sessions_delete, event).await,
        "auth-wallet-challenge" => app.call_event(auth::wallet_challenge, event).await,
        "auth-wallet-verify" => app.call_event(auth::wallet_verify, event).await,
        "users-me-get" => app.call_event(users::get_me, event).await,
        "users-me-update" => app.call_event(users::update_me, event).await,
        "users-get" => app.call_event(users::get_user, event).await,
        "users-batch-get" => app.call_event(users::batch_get, event).await,
        "users-blocks-put" => app.call_event(users::block, event).await,
        "users-blocks-delete" => app.call_event(users::unblock, event).await,
        "users-blocks-list" => app.call_event(users::list_blocks, event).await,
        "health" => app.call_event(parley::api::health::health, event).await,
        "conversations-create" => app.call_event(conversations::create, event).await,
        "conversations-list" => app.call_event(conversations::list, event).await,
        "sync-get" => app.call_event(parley::api::sync::get, event).await,
        "conversations-get" => app.call_event(conversations::get, event).await,
        "conversations-update" => app.call_event(conversations::rename, event).await,
        "conversations-read" => app.call_event(conversations::mark_read, event).await,
        "members-list" => app.call_event(conversations::members, event).await,
        "members-add" => app.call_event(conversations::add_members, event).await,
        "members-remove" => app.call_event(conversations::remove_member, event).await,
        "members-update" => app.call_event(conversations::set_role, event).await,
        "conversations-transfer-owner" => app.call_event(conversations::transfer_ownership, event).await,
        "messages-send" => app.call_event(messages::send, event).await,
        "messages-list" => app.call_event(messages::history, event).await,
        "messages-update" => app.call_event(messages::edit, event).await,
        "messages-delete" => app.call_event(messages::delete, event).await,
        "search-messages" => app.call_event(parley::api::search::messages, event).await,
        "messages-get" => app.call_event(messages::get, event).await,
        "messages-replies" => app.call_event(messages::replies, event).await,
        "reactions-put" => app.call_event(messages::react, event).await,
        "bans-put" => app.call_event(parley::api::bans::put, event).await,
        "bans-delete" => app.call_event(parley::api::bans::delete, event).await,
        "bans-list" => app.call_event(parley::api::bans::list, event).await,
        "mutes-put" => app.call_event(parley::api::mutes::put, event).await,
        "mutes-delete" => app.call_event(parley::api::mutes::delete, event).await,
        "pins-put" => app.call_event(parley::api::pins::put, event).await,
        "pins-delete" => app.call_event(parley::api::pins::delete, event).await,
        "pins-list" => app.call_event(parley::api::pins::list, event).await,
        "push-vapid-key" => Box::pin(app.call_event(parley::api::push::vapid_public_key, event)).await,
        "push-subscriptions-create" => Box::pin(app.call_event(parley::api::push::create, event)).await,
        "push-subscriptions-list" => Box::pin(app.call_event(parley::api::push::list, event)).await,
        "push-subscriptions-delete" => Box::pin(push_subscriptions_delete(app, event)).await,
        "notifications-put" => Box::pin(app.call_event(parley::api::push::put_notifications, event)).await,
        "invitations-list" => Box::pin(app.call_event(parley::api::invitations::list, event)).await,
        "invitations-accept" => Box::pin(invitation_answer(app, event, parley::api::invitations::accept)).await,
        "invitations-decline" => Box::pin(invitation_answer(app, event, parley::api::invitations::decline)).await,
        "invites-create" => Box::pin(app.call_event(parley::api::invitations::create_invite, event)).await,
        "invites-list" => Box::pin(app.call_event(parley::api::invitations::list_invites, event)).await,
        "invites-delete" => Box::pin(invites_delete(app, event)).await,
        "invites-join" => Box::pin(invites_join(app, event)).await,
        "reports-create" => Box::pin(reports_create(app, event)).await,
        "conversation-reports-list" => Box::pin(conversation_reports(app, event, false)).await,
        "conversation-reports-update" => Box::pin(conversation_reports(app, event, true)).await,
        "admin-reports-list" => Box::pin(admin_reports(app, event)).await,
        "reactions-delete" => app.call_event(messages::unreact, event).await,
        "attachments-create" => app.call_event(parley::api::attachments::create, event).await,
        "attachments-get" => Box::pin(attachments_get(app, event)).await,
        other => panic!("no handler is known for events/{other}.json: add it here"),
    }
}

#[tokio::test]
async fn every_sample_event_succeeds_through_its_handler() {
    // The WebSocket samples and the alarm responder's have tests of their own (below, and alarms.rs);
    // the admin metrics route needs CloudWatch, which the local stack stands in for (e2e/admin.rs).
    for name in template_binaries().into_iter().filter(|n| {
        !n.starts_with("ws-")
            && ![
                "alarm-responder",
                "admin-metrics-get",
                "delivery-worker",
                "conversation-worker",
                "search-indexer",
                "attachments-worker",
                "push-worker",
            ]
            .contains(&n.as_str())
    }) {
        let app = TestApp::new().await;
        let event = Box::pin(prepare(&app, &name, load_event(&name))).await;
        let response = Box::pin(run(&app, &name, &event)).await;
        assert!(
            (200..300).contains(&response.status),
            "events/{name}.json answered {}: {}",
            response.status,
            response.body
        );
        if name == "users-batch-get" {
            assert_eq!(
                response.body["items"].as_array().unwrap().len(),
                1,
                "the live id is found, the sample one is not"
            );
        }
    }
}

#[tokio::test]
async fn the_samples_placeholder_token_is_refused() {
    let app = TestApp::new().await;
    let response = run(&app, "users-me-get", &load_event("users-me-get")).await;
    response.assert_error(401, "unauthorized");
}

/// The WebSocket samples: the authorizer lets the live user in; every route answers as API Gateway
/// expects, with the sample's user, conversation and message swapped for live ones.
#[tokio::test]
async fn every_websocket_sample_event_succeeds_through_its_handler() {
    use parley::api::ws;
    use parley::ws::handle;
    let app = TestApp::new().await;
    let me = app.user("wsowner").await;
    let other = app.user("wsother").await;
    let group = app.group(&me, "ws samples", &[&other]).await;
    let message = app.send(&other, &group, "w1", "hello").await;
    let my_session = app.context.tokens().verify(&me.token).unwrap().sid;
    let live = |name: &str| {
        let text = load_event(name)
            .to_string()
            .replace(SAMPLE_USER, &me.id)
            .replace(SAMPLE_CONVERSATION, &group)
            .replace(SAMPLE_MESSAGE, message["id"].as_str().unwrap())
            .replace(&sample_token(), &me.token)
            .replace(SAMPLE_SESSION, &my_session);
        serde_json::from_str::<Value>(&text).unwrap()
    };

    let policy = parley::ws::authorize(app.context, &live("ws-authorizer")).expect("the live token is allowed");
    assert_eq!(policy["policyDocument"]["Statement"][0]["Effect"], "Allow");
    assert_eq!(policy["context"]["userId"], me.id.as_str());
    assert!(
        parley::ws::authorize(app.context, &load_event("ws-authorizer")).is_err(),
        "the sample's own token is not"
    );

    let connected = handle(app.context, ws::connect, live("ws-connect")).await;
    assert_eq!(connected["statusCode"], 200);
    assert_eq!(
        app.count_items("CONN").await,
        2,
        "the connection item and the user's set"
    );

    let sent = handle(app.context, ws::send_message, live("ws-send-message")).await;
    let ack: Value = serde_json::from_str(sent["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        (ack["type"].as_str(), ack["message"]["body"].as_str()),
        (Some("ack"), Some("On my way!"))
    );

    assert_eq!(
        handle(app.context, ws::typing, live("ws-typing")).await,
        json!({ "statusCode": 200 })
    );
    let read = handle(app.context, ws::mark_read, live("ws-mark-read")).await;
    assert!(read["body"].as_str().unwrap().contains("\"ack\""));
    let pong = handle(app.context, ws::ping, live("ws-ping")).await;
    assert!(pong["body"].as_str().unwrap().contains("pong"));
    assert_eq!(
        handle(app.context, ws::unknown, live("ws-default")).await["statusCode"],
        200
    );

    let disconnected = handle(app.context, ws::disconnect, live("ws-disconnect")).await;
    assert_eq!(disconnected["statusCode"], 200);
    let sets = app
        .context
        .store
        .connection_sets(std::slice::from_ref(&me.id))
        .await
        .unwrap();
    assert!(sets.is_empty(), "the connection is forgotten: {sets:?}");
}

/// The delivery worker's sample (an SQS batch of one envelope for the sample conversation): handled
/// without a failure report; with a body that is no envelope, that record is reported for SQS to retry
/// and, in the end, park.
#[tokio::test]
async fn the_delivery_worker_sample_is_handled() {
    let app = TestApp::new().await;
    let event: aws_lambda_events::sqs::SqsEvent = serde_json::from_value(load_event("delivery-worker")).unwrap();
    let answer = parley::realtime::worker::handle(app.context, event.clone()).await;
    assert!(answer.batch_item_failures.is_empty(), "{answer:?}");

    let mut broken = event;
    broken.records[0].body = Some("{\"not\": \"an envelope\"}".to_owned());
    let answer = parley::realtime::worker::handle(app.context, broken).await;
    let failed: Vec<&str> = answer
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["5c1d0f2e-7b3a-4c9d-8e1f-2a3b4c5d6e7f"]);
}

/// The push worker's sample (a job for a member of a conversation this table does not hold): handled
/// without a failure report (nobody to push); an unreadable body is reported for SQS to retry.
#[tokio::test]
async fn the_push_worker_sample_is_handled() {
    let app = TestApp::new().await;
    let event: aws_lambda_events::sqs::SqsEvent = serde_json::from_value(load_event("push-worker")).unwrap();
    let answer = parley::push::worker::handle(app.context, event.clone()).await;
    assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
    let mut broken = event;
    broken.records[0].body = Some("{\"not\": \"a job\"}".to_owned());
    let answer = parley::push::worker::handle(app.context, broken).await;
    assert_eq!(answer.batch_item_failures.len(), 1);
}

/// The conversation worker's sample (a group's META changed, then removed): handled without a failure
/// report, on a table that does not hold that conversation too (a record of a conversation gone since
/// changes nothing); a record whose image is unreadable is skipped, not retried forever.
#[tokio::test]
async fn the_conversation_worker_sample_is_handled() {
    let app = TestApp::new().await;
    let event: aws_lambda_events::event::dynamodb::Event =
        serde_json::from_value(load_event("conversation-worker")).unwrap();
    assert_eq!(event.records.len(), 2);
    let answer = parley::api::conversation_worker::handle(app.context, event.clone()).await;
    assert!(answer.batch_item_failures.is_empty(), "{answer:?}");

    let mut broken = event;
    broken.records[0].change.new_image.remove("memberCount");
    let answer = parley::api::conversation_worker::handle(app.context, broken).await;
    assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
}

/// The search indexer's sample (a message sent, edited, then removed with its conversation): handled
/// without a failure report, leaving no index item; the send alone leaves the message's one item with
/// its words, and a batch seen twice changes nothing the second time.
#[tokio::test]
async fn the_search_indexer_sample_is_handled() {
    use parley::api::search_indexer::handle;
    let app = TestApp::new().await;
    // Read as the function reads it; an attribute the index does not read cannot spoil the batch
    // (DynamoDB Local's stream writes an empty map as `{}`).
    let mut raw = load_event("search-indexer");
    raw["Records"][0]["dynamodb"]["NewImage"]["reactions"] = json!({});
    let event = parley::api::search_indexer::read_event(raw).expect("the sample reads");
    let names: Vec<&str> = event.records.iter().map(|r| r.event_name.as_str()).collect();
    assert_eq!(names, ["INSERT", "MODIFY", "REMOVE"]);
    /// The index items: (PK, SK, words).
    async fn index_items(app: &TestApp) -> Vec<(String, String, String)> {
        let s =
            |item: &parley::store::Item, k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
        app.all_items()
            .await
            .iter()
            .filter(|item| s(item, "PK").starts_with("SRCH#"))
            .map(|item| (s(item, "PK"), s(item, "SK"), s(item, "words")))
            .collect()
    }
    let partition = format!("SRCH#{SAMPLE_CONVERSATION}");

    let mut sent = event.clone();
    sent.records.truncate(1);
    assert!(handle(app.context, sent.clone()).await.batch_item_failures.is_empty());
    let items = index_items(&app).await;
    assert_eq!(
        items,
        [(
            partition.clone(),
            SAMPLE_MESSAGE.to_owned(),
            " meet at the cafe tomorrow ".to_owned()
        )],
        "one item for the message"
    );
    assert!(handle(app.context, sent).await.batch_item_failures.is_empty());
    assert_eq!(index_items(&app).await, items, "a record seen twice changes nothing");

    let mut edited = event.clone();
    edited.records.drain(..1);
    edited.records.truncate(1);
    assert!(handle(app.context, edited).await.batch_item_failures.is_empty());
    let items = index_items(&app).await;
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!((&items[0].0, &items[0].1), (&partition, &SAMPLE_MESSAGE.to_owned()));
    assert!(items[0].2.contains(" today "), "{items:?}");
    assert!(!items[0].2.contains(" tomorrow "), "the edited-away word: {items:?}");

    for _ in 0..2 {
        let answer = handle(app.context, event.clone()).await;
        assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
        assert!(index_items(&app).await.is_empty(), "the removed message leaves no item");
    }
}

const SAMPLE_USER: &str = "01JH3Z4S0N8XQ3A4YGS6SFE0CW";
/// The session of the samples' access token (and of their WebSocket authorizer context).
const SAMPLE_SESSION: &str = "01JH3Z4S0XJWT7H5P6ZD1FV8YM";

fn sample_token() -> String {
    load_event("users-me-get")["headers"]["authorization"]
        .as_str()
        .unwrap()
        .trim_start_matches("Bearer ")
        .to_owned()
}
