//! asyncapi.yaml, the machine-readable WebSocket contract, is valid (the official AsyncAPI parser,
//! pinned by infra/contract-checks/package-lock.json), agrees with template.yaml's WebSocket routes and
//! with the event types the code can emit, and its frame check (`parley_tests::contract_ws`) accepts
//! what the code's own event constructors build and refuses broken frames. The end-to-end tests run
//! that check on every frame they read (tests/src/realtime.rs).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use parley::domain::conversations::Conversation;
use parley::domain::messages::Message;
use parley::domain::users::User;
use parley::realtime::events;
use parley::store::AttachmentRef;
use parley::ApiError;
use parley_tests::contract_ws::{contract, contract_paths, payload_types, resolve_local, ws_frame_problems};
use serde_json::{json, Value};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap()
}

// ---------------------------------------------------------------------------------------------
// The official parser.

/// infra/contract-checks with its pinned packages installed (npm ci, once).
fn contract_checks() -> PathBuf {
    let dir = workspace().join("infra/contract-checks");
    let installed = || {
        std::fs::read_to_string(dir.join("node_modules/@asyncapi/parser/package.json"))
            .ok()
            .and_then(|text| serde_json::from_str::<Value>(&text).ok())
            .is_some_and(|package| package["version"] == "3.6.6")
    };
    local_process::npm_ci(&dir, installed).unwrap_or_else(|e| panic!("npm ci in {}: {e}", dir.display()));
    assert!(
        installed(),
        "npm ci finished but @asyncapi/parser 3.6.6 is not installed"
    );
    dir
}

/// Runs validate-asyncapi.mjs on `document`: whether it passed, and what it printed.
fn parse(document: &Path) -> (bool, String) {
    let dir = contract_checks();
    let output = Command::new("node")
        .arg(dir.join("validate-asyncapi.mjs"))
        .arg(document)
        .current_dir(&dir)
        .output()
        .expect("node runs");
    parley_tests::tools::outcome(&output)
}

#[test]
fn the_asyncapi_parser_accepts_the_document() {
    let (asyncapi, _) = contract_paths();
    let (ok, report) = parse(&asyncapi);
    assert!(ok, "asyncapi.yaml is refused by @asyncapi/parser:\n{report}");
    assert!(
        !report.lines().any(|line| line.starts_with("error")),
        "error diagnostics:\n{report}"
    );
}

/// A scratch folder with a copy of openapi.yaml (so relative refs resolve) and `document` as
/// asyncapi.yaml (JSON is YAML); removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn with(name: &str, document: &Value) -> Scratch {
        let dir = std::env::temp_dir().join(format!("parley-asyncapi-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (_, openapi) = contract_paths();
        std::fs::copy(&openapi, dir.join("openapi.yaml")).expect("openapi.yaml is there to copy");
        std::fs::write(
            dir.join("asyncapi.yaml"),
            serde_json::to_string_pretty(document).unwrap(),
        )
        .unwrap();
        Scratch(dir)
    }

    fn document(&self) -> PathBuf {
        self.0.join("asyncapi.yaml")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn the_parser_refuses_broken_copies() {
    let good = contract().asyncapi.clone();

    // The copy as it is passes, so what fails below is the breakage.
    let same = Scratch::with("same", &good);
    let (ok, report) = parse(&same.document());
    assert!(ok, "the unchanged copy is refused:\n{report}");

    // An operation on a channel that does not exist.
    let mut broken = good.clone();
    broken["operations"]["ping"]["channel"]["$ref"] = json!("#/channels/nowhere");
    let scratch = Scratch::with("channel", &broken);
    let (ok, report) = parse(&scratch.document());
    assert!(!ok, "an operation on a missing channel is accepted:\n{report}");
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("error") && l.contains("operations.ping")),
        "{report}"
    );

    // A reference to a schema openapi.yaml does not have.
    let mut broken = good.clone();
    broken["components"]["messages"]["sendMessageAck"]["payload"]["properties"]["message"]["$ref"] =
        json!("./openapi.yaml#/components/schemas/NoSuchSchema");
    let scratch = Scratch::with("ref", &broken);
    let (ok, report) = parse(&scratch.document());
    assert!(!ok, "a dangling ref into openapi.yaml is accepted:\n{report}");
    assert!(report.contains("NoSuchSchema"), "{report}");

    // Not AsyncAPI 3 at all: an operation without its `action`.
    let mut broken = good;
    broken["operations"]["sendMessage"]
        .as_object_mut()
        .unwrap()
        .remove("action");
    let scratch = Scratch::with("action", &broken);
    let (ok, report) = parse(&scratch.document());
    assert!(!ok, "an operation without an action is accepted:\n{report}");
}

// ---------------------------------------------------------------------------------------------
// The document against template.yaml and the code.

/// The messages of an operation (or of its reply), resolved.
fn messages_of<'a>(document: &'a Value, operation: &'a Value) -> Vec<&'a Value> {
    operation["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| resolve_local(document, m))
        .collect()
}

/// The `action` a client message's payload names: `Some(action)` for a `const`, or the actions it
/// excludes for the catch-all (`not: {properties: {action: {enum}}}`).
enum ActionOf {
    Route(String),
    AllBut(BTreeSet<String>),
}

fn action_of(document: &Value, message: &Value) -> ActionOf {
    let payload = resolve_local(document, &message["payload"]);
    if let Some(action) = payload.pointer("/properties/action/const").and_then(Value::as_str) {
        return ActionOf::Route(action.to_owned());
    }
    let excluded = payload
        .pointer("/not/properties/action/enum")
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("a client message names no action: {payload}"));
    ActionOf::AllBut(excluded.iter().filter_map(Value::as_str).map(str::to_owned).collect())
}

#[test]
fn every_websocket_route_is_an_operation_and_every_operation_a_route() {
    let template = parley_template::Template::load(&parley_template::workspace_template_path()).unwrap();
    let apis = template.websocket_apis().unwrap();
    assert_eq!(apis.len(), 1, "one WebSocket API");
    let api = &apis[0];
    assert_eq!(api.route_selection_expression, "$request.body.action");
    let routes: BTreeSet<&str> = api.routes.iter().map(|r| r.route_key.as_str()).collect();
    let actions: BTreeSet<String> = routes
        .iter()
        .filter(|r| !r.starts_with('$'))
        .map(|r| (*r).to_owned())
        .collect();

    let document = &contract().asyncapi;
    let mut documented = BTreeSet::new();
    let mut catch_all = Vec::new();
    let operations = document["operations"].as_object().unwrap();
    for (id, operation) in operations.iter().filter(|(_, o)| o["action"] == "send") {
        let messages = messages_of(document, operation);
        assert!(!messages.is_empty(), "send operation {id} has no message");
        let replies: Vec<&Value> = messages_of(document, &operation["reply"]);
        // Anything that is not an error is a route response: only routes with one answer on success.
        let answers_on_success = replies
            .iter()
            .any(|m| payload_types(document, m).iter().any(|t| t != "error"));
        for message in messages {
            match action_of(document, message) {
                ActionOf::Route(action) => {
                    let route = api.routes.iter().find(|r| r.route_key == action).unwrap_or_else(|| {
                        panic!("operation {id} sends action {action}, which is no route of template.yaml")
                    });
                    assert_eq!(
                        route.has_response, answers_on_success,
                        "operation {id}: the route {action} has a route response: {}, the document replies on success: {answers_on_success}",
                        route.has_response
                    );
                    assert!(
                        documented.insert(action.clone()),
                        "action {action} is sent by two operations"
                    );
                }
                ActionOf::AllBut(excluded) => {
                    assert_eq!(
                        excluded, actions,
                        "operation {id} (`$default`) must exclude exactly the routed actions"
                    );
                    let default = api.routes.iter().find(|r| r.route_key == "$default");
                    assert!(default.is_some_and(|r| r.has_response), "$default answers with a frame");
                    assert!(!answers_on_success, "$default only ever answers with an error");
                    catch_all.push(id.clone());
                }
            }
        }
        assert!(
            replies.iter().any(|m| payload_types(document, m) == ["error"]),
            "operation {id}: a refused frame is answered with an error frame"
        );
    }
    assert_eq!(documented, actions, "the document's actions and template.yaml's routes");
    assert_eq!(
        catch_all.len(),
        1,
        "one catch-all (`$default`) operation: {catch_all:?}"
    );
    assert!(routes.contains("$default"), "template.yaml has $default");

    // `$connect`: the token query parameter, which the authorizer reads.
    let connect = api
        .routes
        .iter()
        .find(|r| r.route_key == "$connect")
        .expect("template.yaml has $connect");
    let authorizer = connect.authorizer.as_ref().expect("$connect has the authorizer");
    assert_eq!(authorizer.identity_sources, ["route.request.querystring.token"]);
    let channels = document["channels"].as_object().unwrap();
    assert_eq!(channels.len(), 1, "one channel: the socket");
    let channel = channels.values().next().unwrap();
    assert_eq!(
        channel.pointer("/bindings/ws/query/required"),
        Some(&json!(["token"])),
        "the channel's ws binding requires the token query parameter"
    );
    let schemes = document.pointer("/components/securitySchemes").unwrap();
    assert!(
        schemes
            .as_object()
            .unwrap()
            .values()
            .any(|s| s["type"] == "httpApiKey" && s["in"] == "query" && s["name"] == "token"),
        "a query-parameter security scheme named token"
    );
    let text = channel["description"].as_str().unwrap_or_default();
    for refusal in ["401", "429", "20", "$disconnect"] {
        assert!(text.contains(refusal), "the channel describes {refusal}: {text}");
    }
    assert!(routes.contains("$disconnect"), "template.yaml has $disconnect");
    let unknown: Vec<&&str> = routes
        .iter()
        .filter(|r| r.starts_with('$') && !["$connect", "$disconnect", "$default"].contains(*r))
        .collect();
    assert!(
        unknown.is_empty(),
        "routes the document knows no meaning of: {unknown:?}"
    );
}

/// The code of a Rust file without its unit tests.
fn without_tests(text: &str) -> &str {
    text.find("\n#[cfg(test)]").map_or(text, |at| &text[..at])
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The string literal `text` starts with (after whitespace), if it does.
fn literal_at(text: &str) -> Option<&str> {
    let rest = text.trim_start().strip_prefix('"')?;
    rest.find('"').map(|end| &rest[..end])
}

/// Every frame `type` the shared crate can send: `"type": "<literal>"` anywhere in its code, and the
/// literal first argument of every call of an event constructor of realtime/events.rs that takes the
/// type as its `kind`. Anything the scan cannot read (a `type` from a variable outside those
/// constructors, a constructor called with a variable) fails the test, so the list cannot go stale
/// quietly.
fn code_frame_types() -> BTreeSet<String> {
    let shared = workspace().join("shared/src");
    let events_rs = shared.join("realtime/events.rs");
    let events_code = std::fs::read_to_string(&events_rs).unwrap();
    let kind_constructors: Vec<String> = without_tests(&events_code)
        .match_indices("pub fn ")
        .filter_map(|(at, _)| {
            let signature = &events_code[at + "pub fn ".len()..];
            let (name, rest) = signature.split_once('(')?;
            rest.starts_with("kind: &str").then(|| name.to_owned())
        })
        .collect();
    assert!(
        kind_constructors.contains(&"message".to_owned()),
        "events::message(kind, ...) is found: {kind_constructors:?}"
    );
    let mut files = Vec::new();
    rust_files(&shared, &mut files);
    let mut types = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let code = without_tests(&text);
        let name = file.strip_prefix(&shared).unwrap().display().to_string();
        for (at, pattern) in code.match_indices("\"type\":") {
            let after = &code[at + pattern.len()..];
            match literal_at(after) {
                Some(kind) => {
                    types.insert(kind.to_owned());
                }
                None if file == events_rs && after.trim_start().starts_with("kind") => {}
                None => panic!(
                    "{name}: a frame type the test cannot read: {}",
                    &after[..after.len().min(60)]
                ),
            }
        }
        for constructor in &kind_constructors {
            let call = format!("events::{constructor}(");
            for (at, _) in code.match_indices(&call) {
                let after = &code[at + call.len()..];
                let kind = literal_at(after).unwrap_or_else(|| {
                    panic!(
                        "{name}: {call} without a literal type: {}",
                        &after[..after.len().min(60)]
                    )
                });
                types.insert(kind.to_owned());
            }
        }
    }
    types
}

#[test]
fn every_frame_type_the_code_sends_is_in_the_document_and_the_reverse() {
    let code = code_frame_types();
    for expected in ["message.new", "reaction.removed", "batch", "ack", "pong", "error"] {
        assert!(code.contains(expected), "the scan finds {expected}: {code:?}");
    }
    let contract = contract();
    let documented: BTreeSet<String> = contract.frame_types().into_iter().map(str::to_owned).collect();
    assert_eq!(
        code, documented,
        "frame types the code sends (left) and asyncapi.yaml's messages (right)"
    );

    // Every event (what is not a reply to the sender) is received by an operation of its own kind.
    let document = &contract.asyncapi;
    let operations = document["operations"].as_object().unwrap();
    let received: BTreeSet<String> = operations
        .values()
        .filter(|o| o["action"] == "receive")
        .flat_map(|o| messages_of(document, o))
        .flat_map(|m| payload_types(document, m))
        .collect();
    let replies: BTreeSet<String> = operations
        .values()
        .filter(|o| o["action"] == "send")
        .flat_map(|o| messages_of(document, &o["reply"]))
        .flat_map(|m| payload_types(document, m))
        .collect();
    assert_eq!(
        replies,
        ["ack", "error", "pong"].map(str::to_owned).into(),
        "the replies to the sender"
    );
    let events: BTreeSet<String> = code.difference(&replies).cloned().collect();
    assert_eq!(
        received, events,
        "receive operations cover every event, and only events"
    );
}

// ---------------------------------------------------------------------------------------------
// The frame check itself, on what the code's constructors build.

const CONVERSATION: &str = "01JDQ3V6F7Y8Z9ABCDEFGHJKMN";
const USER: &str = "01JDQ3V6F7Y8Z9ABCDEFGHJKMP";
const OTHER: &str = "01JDQ3V6F7Y8Z9ABCDEFGHJKMQ";
const MESSAGE: &str = "01JDQ3V6F7Y8Z9ABCDEFGHJKMR";
const AT: &str = "2026-11-25T21:00:00.000Z";

fn message(deleted: bool) -> Message {
    Message {
        id: MESSAGE.into(),
        conversation_id: CONVERSATION.into(),
        seq: 3,
        sender_id: USER.into(),
        client_message_id: "c-1".into(),
        body: if deleted { String::new() } else { "hello".into() },
        encrypted: false,
        created_at: AT.into(),
        edited_at: (!deleted).then(|| AT.into()),
        deleted,
        parent_message_id: None,
        reply_count: 0,
        last_reply_at: None,
        mentions: if deleted { vec![] } else { vec![OTHER.into()] },
        reactions: if deleted {
            Default::default()
        } else {
            [("thumbsup".to_owned(), 2)].into()
        },
        my_reactions: None,
        attachments: if deleted {
            vec![]
        } else {
            vec![AttachmentRef {
                id: "01JDQ3V6F7Y8Z9ABCDEFGHJKMS".into(),
                conversation_id: CONVERSATION.into(),
                file_name: "plan.pdf".into(),
                content_type: "application/pdf".into(),
                size: 1234,
                created_at: AT.into(),
                url: None,
            }]
        },
    }
}

fn conversation() -> Conversation {
    Conversation {
        id: CONVERSATION.into(),
        kind: parley::kinds::ConversationKind::Group,
        name: Some("team".into()),
        created_by: USER.into(),
        created_at: AT.into(),
        updated_at: AT.into(),
        last_message: Some(message(false)),
        member_count: 2,
        last_seq: 3,
        unread_count: 0,
        mention_count: 0,
        read_seq: 3,
        my_role: parley::kinds::MemberRole::Owner,
        slow_mode_seconds: 0,
        invited: Vec::new(),
    }
}

fn user() -> User {
    User {
        id: USER.into(),
        username: "ann".into(),
        display_name: "Ann".into(),
        wallet_address: None,
        status: "busy".into(),
        status_text: Some("in a meeting".into()),
        last_seen_at: Some(AT.into()),
        created_at: AT.into(),
        who_can_add_me: None,
    }
}

/// One frame of every type, as the code builds them.
fn every_frame() -> Vec<Value> {
    let mut direct = conversation();
    direct.kind = parley::kinds::ConversationKind::Direct;
    direct.name = None;
    direct.last_message = None;
    direct.my_role = parley::kinds::MemberRole::Member;
    let mut plain = user();
    plain.status_text = None;
    let mut ack_message = message(false);
    ack_message.attachments[0].url = Some("https://bucket.example/uploads/x?X-Amz-Signature=1".into());
    let mut reply = message(false);
    reply.parent_message_id = Some(OTHER.into());
    let mut parent = message(false);
    parent.reply_count = 1;
    parent.last_reply_at = Some(AT.into());
    let events = vec![
        events::message("message.new", &message(false)),
        events::message("message.new", &reply),
        events::message("message.updated", &parent),
        events::message("message.deleted", &message(true)),
        events::typing(CONVERSATION, USER),
        events::presence(&user()),
        events::presence(&plain),
        events::members("member.added", CONVERSATION, &[USER.to_owned(), OTHER.to_owned()]),
        events::members("member.removed", CONVERSATION, &[OTHER.to_owned()]),
        events::member_role(CONVERSATION, OTHER, "admin"),
        events::conversation_created(&conversation()),
        events::conversation_created(&direct),
        events::conversation_updated(&conversation()),
        events::conversation_updated(&direct),
        events::conversation_deleted(CONVERSATION),
        events::read(CONVERSATION, USER, MESSAGE, 3),
        events::reaction("reaction.added", CONVERSATION, MESSAGE, USER, "thumbsup"),
        events::reaction("reaction.removed", CONVERSATION, MESSAGE, USER, "👍🏽"),
        events::pin("message.pinned", CONVERSATION, MESSAGE),
        events::pin("message.unpinned", CONVERSATION, MESSAGE),
        events::member_muted(CONVERSATION, OTHER, Some("2026-12-07T18:00:00.000Z")),
        events::member_muted(CONVERSATION, OTHER, None),
        events::member_banned(CONVERSATION, OTHER),
        events::invitation_new(&parley::domain::invitations::Invitation {
            id: "4f2a9c1e7b3d5a8f0e6c2b9d1a7f3e5c".into(),
            conversation: events::shared_conversation(&conversation()),
            invited_by: OTHER.into(),
            created_at: AT.into(),
        }),
    ];
    let mut frames = events.clone();
    frames.push(events::frame(&events[..2]));
    frames.extend(events[2..].chunks(parley::realtime::FRAME_EVENTS).map(events::frame));
    frames.push(json!({ "type": "ack", "clientMessageId": "c-1", "message": ack_message }));
    frames.push(json!({ "type": "ack", "action": "markRead", "conversationId": CONVERSATION, "messageId": MESSAGE }));
    frames.push(json!({ "type": "pong", "at": AT }));
    frames.push(parley::ws::error_frame(
        &ApiError::invalid("action", "\"dance\" is not an action"),
        "req-1",
    ));
    frames.push(parley::ws::error_frame(
        &ApiError::NotFound("No such conversation.".into()),
        "req-2",
    ));
    frames
}

#[test]
fn frames_as_the_code_builds_them_pass() {
    let frames = every_frame();
    let kinds: BTreeSet<&str> = frames.iter().filter_map(|f| f["type"].as_str()).collect();
    let documented: BTreeSet<&str> = contract().frame_types().into_iter().collect();
    assert_eq!(kinds, documented, "the fixture has a frame of every type");
    for frame in &frames {
        if let Err(report) = ws_frame_problems(frame) {
            panic!("{report}");
        }
        parley_tests::contract_ws::check_ws_frame(frame);
    }
}

/// `check_ws_frame` panics on `frame`; the panic's text.
fn refused(frame: Value) -> String {
    let outcome = std::panic::catch_unwind(|| parley_tests::contract_ws::check_ws_frame(&frame));
    let panic = outcome.expect_err(&format!("accepted: {frame}"));
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

#[test]
fn broken_frames_panic_with_their_errors() {
    // Fill the contract first, so its loading is not what a panic below comes from.
    assert!(!contract().frame_types().is_empty());

    let mut missing = events::typing(CONVERSATION, USER);
    missing.as_object_mut().unwrap().remove("userId");
    let report = refused(missing);
    assert!(
        report.contains("`typing` frame") && report.contains("userId"),
        "{report}"
    );

    let mut wrong_type = events::read(CONVERSATION, USER, MESSAGE, 3);
    wrong_type["seq"] = json!("3");
    let report = refused(wrong_type);
    assert!(report.contains("/seq"), "the instance path is shown: {report}");

    let report = refused(json!({ "type": "message.exploded", "message": {} }));
    assert!(
        report.contains("message.exploded") && report.contains("not a frame type"),
        "{report}"
    );

    let report = refused(json!({ "message": "Internal server error", "connectionId": "x=", "requestId": "y" }));
    assert!(report.contains("API Gateway"), "{report}");

    let mut bad_id = events::conversation_deleted(CONVERSATION);
    bad_id["conversationId"] = json!("not-a-ulid");
    refused(bad_id);

    // The shared models are openapi.yaml's: a message without its sender, a member's unknown role.
    let mut senderless = events::message("message.new", &message(false));
    senderless["message"].as_object_mut().unwrap().remove("senderId");
    let report = refused(senderless);
    assert!(report.contains("senderId"), "{report}");
    let mut stranger = events::conversation_created(&conversation());
    stranger["conversation"]["myRole"] = json!("king");
    let report = refused(stranger);
    assert!(report.contains("/conversation/myRole"), "{report}");
    refused(events::member_role(CONVERSATION, OTHER, "king"));

    // Per-member fields in the one event every member gets.
    let mut per_member = events::conversation_updated(&conversation());
    per_member["conversation"]["myRole"] = json!("owner");
    let report = refused(per_member);
    assert!(report.contains("/conversation"), "{report}");

    // The reader's own reactions never travel in an event, nor download links.
    let mut mine = message(false);
    mine.my_reactions = Some(vec!["thumbsup".into()]);
    refused(events::message("message.new", &mine));
    let mut linked = message(false);
    linked.attachments[0].url = Some("https://bucket.example/x".into());
    refused(events::message("message.updated", &linked));

    // Something extra, in an event and in a reply.
    let mut extra = events::typing(CONVERSATION, USER);
    extra["secret"] = json!(1);
    refused(extra);
    refused(json!({ "type": "pong", "at": AT, "debug": true }));
    refused(json!({ "type": "pong", "at": "yesterday" }));
    refused(json!({ "type": "error", "error": { "code": "not_found" }, "requestId": "r" }));

    // A batch is checked event by event: one broken event fails it, and says which.
    let mut broken = events::typing(CONVERSATION, USER);
    broken["userId"] = json!(42);
    let report = refused(events::batch(&[events::conversation_deleted(CONVERSATION), broken]));
    assert!(report.contains("/events/1/userId"), "{report}");
    // A batch of one, of too many, of replies, or of batches is not what the worker sends.
    refused(events::batch(&[events::conversation_deleted(CONVERSATION)]));
    refused(events::batch(&vec![events::conversation_deleted(CONVERSATION); 11]));
    refused(events::batch(&[
        json!({ "type": "pong", "at": AT }),
        events::conversation_deleted(CONVERSATION),
    ]));
    refused(events::batch(&[
        events::batch(&[
            events::conversation_deleted(CONVERSATION),
            events::typing(CONVERSATION, USER),
        ]),
        events::typing(CONVERSATION, USER),
    ]));

    // The report truncates a huge frame.
    let mut huge = events::typing(CONVERSATION, USER);
    huge["pad"] = json!("x".repeat(100_000));
    let report = refused(huge);
    assert!(report.len() < 10_000, "{} bytes of report", report.len());
}
