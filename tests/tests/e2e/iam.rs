//! IAM enforced by the local stack (`Options::iam_enforcement`, on by default): a function whose role
//! lacks a statement it needs fails locally as it would once deployed, and the gateway log names the
//! function, the action and the resource. The real template's roles allow everything its functions do.

use std::time::Duration;

use parley_tests::realtime::{next_within, send_frame, Clients};
use parley_tests::{stack, start_stack_with, Stack};
use serde_json::{json, Value};

const TABLE_ARN: &str = "arn:aws:dynamodb:us-east-1:123456789012:table/ChatTable";

/// `template` with `line` (exact, indentation included) replaced in the resource `resource`.
fn edited(template: &str, resource: &str, line: &str, replacement: Option<&str>) -> String {
    let start = template
        .find(&format!("\n  {resource}:\n"))
        .unwrap_or_else(|| panic!("{resource} is in the template"));
    // The resource ends where the next one begins (a line indented by exactly two spaces).
    let body_start = start + resource.len() + 5;
    let end = template[body_start..]
        .match_indices("\n  ")
        .map(|(at, _)| body_start + at)
        .find(|&at| {
            template
                .as_bytes()
                .get(at + 3)
                .is_some_and(|b| *b != b' ' && *b != b'#')
        })
        .unwrap_or(template.len());
    let block = &template[start..end];
    let needle = format!("\n{line}\n");
    assert_eq!(
        block.matches(&needle).count(),
        1,
        "{resource} has the line {line:?} once"
    );
    let replaced = match replacement {
        Some(other) => block.replacen(&needle, &format!("\n{other}\n"), 1),
        None => block.replacen(&needle, "\n", 1),
    };
    format!("{}{replaced}{}", &template[..start], &template[end..])
}

/// A stack on a copy of template.yaml without the send function's `dynamodb:PutItem`, and with the
/// delivery worker's @connections statement, the profile update's queue statement and two functions'
/// `s3:GetObject` granting other actions.
fn broken_stack() -> &'static Stack {
    static STACK: std::sync::OnceLock<Stack> = std::sync::OnceLock::new();
    STACK.get_or_init(|| {
        let original = std::fs::read_to_string(local_stack::workspace_template()).unwrap();
        let template = edited(
            &original,
            "MessagesSendFunction",
            "                - dynamodb:PutItem",
            None,
        );
        let template = edited(
            &template,
            "DeliveryWorkerFunction",
            "              Action: execute-api:ManageConnections",
            Some("              Action: execute-api:Invoke"),
        );
        let template = edited(
            &template,
            "UsersMeUpdateFunction",
            "              Action: sqs:SendMessage",
            Some("              Action: sqs:ReceiveMessage"),
        );
        // S3: the WebSocket send's HeadObject of an attachment, and the download URLs the attachment
        // route signs (a presigned URL carries its signer's rights).
        let template = edited(
            &template,
            "WsSendMessageFunction",
            "                - s3:GetObject",
            Some("                - s3:GetObjectAcl"),
        );
        let template = edited(
            &template,
            "AttachmentsGetFunction",
            "                - s3:GetObject",
            Some("                - s3:GetObjectAcl"),
        );
        // Inside the workspace, so the stack finds the function binaries beside it.
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-iam");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("template.yaml");
        std::fs::write(&path, template).unwrap();
        let mut parameters = parley_tests::RATE_LIMITS_OFF.to_vec();
        parameters.push(("ListingGranularityMs", "0"));
        start_stack_with(&parameters, move |options| options.template = path)
    })
}

fn denials(stack: &Stack) -> Vec<String> {
    stack
        .logs_of("gateway")
        .into_iter()
        .filter(|line| line.starts_with("IAM:") && line.contains(" denied "))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_statement_fails_the_call_it_is_needed_for() {
    let stack = broken_stack();
    let clients = Clients { stack };
    let alice = clients.user("iamalice").await;
    let bob = clients.user("iambob").await;
    let group = clients.group(&alice, &[&bob]).await;
    let mut bob_socket = clients.connect(&bob).await;

    // The send stores its message with a transaction's Put: checked as dynamodb:PutItem on the table.
    let (status, body) = clients
        .call(
            "POST",
            &format!("/conversations/{group}/messages"),
            Some(&alice.token),
            Some(json!({ "clientMessageId": "denied-1", "body": "hello" })),
        )
        .await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"]["code"], "internal", "{body}");
    let logged = denials(stack);
    assert!(
        logged.iter().any(|l| l.starts_with(&format!(
            "IAM: MessagesSendFunction denied dynamodb:PutItem on {TABLE_ARN} dynamodb:leadingkeys=[\"CONV#{group}\"]"
        ))),
        "{logged:#?}"
    );
    // What the function was told is DynamoDB's own denial.
    let function_lines = stack.logs_of("messages-send");
    assert!(
        function_lines.iter().any(|l| l.contains("AccessDeniedException")
            && l.contains("assumed-role/MessagesSendFunctionRole/MessagesSendFunction is not authorized to perform: dynamodb:PutItem")),
        "{function_lines:#?}"
    );

    // A profile change fans presence out through the delivery queue, which SQS refuses this role.
    let (status, body) = clients
        .call(
            "PATCH",
            "/users/me",
            Some(&alice.token),
            Some(json!({ "status": "away" })),
        )
        .await;
    // Presence is best effort: the change stands, its event is not queued.
    assert_eq!(status, 200, "{body}");
    let logged = denials(stack);
    assert!(
        logged.iter().any(|l| {
            l.starts_with(
            "IAM: UsersMeUpdateFunction denied sqs:SendMessage on arn:aws:sqs:us-east-1:123456789012:DeliveryQueue.fifo"
        )
        }),
        "{status} {body} {logged:#?}"
    );

    // Over the WebSocket the message is stored (its own function may), but the delivery worker may not
    // post to Bob's connection: API Gateway refuses it, and Bob gets nothing.
    let mut alice_socket = clients.connect(&alice).await;
    send_frame(
        &mut alice_socket,
        json!({ "action": "sendMessage", "conversationId": group, "clientMessageId": "ws-1", "body": "over ws" }),
    )
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let logged = denials(stack);
        if logged.iter().any(|l| {
            l.starts_with("IAM: DeliveryWorkerFunction denied execute-api:ManageConnections on arn:aws:execute-api:us-east-1:123456789012:WebSocketApi/live/POST/@connections/")
        }) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{logged:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let frame = next_within(&mut bob_socket, Duration::from_millis(500)).await;
    assert!(
        frame.as_ref().is_none_or(|f| !f.to_string().contains("over ws")),
        "{frame:?}"
    );
}

/// S3 calls are checked too: a function's own (HeadObject, made by the WebSocket send to check an
/// attachment) and a browser's through a presigned URL, which S3 authorizes with its signer's rights.
#[tokio::test(flavor = "multi_thread")]
async fn a_missing_s3_statement_fails_the_functions_call_and_its_presigned_urls() {
    let stack = broken_stack();
    let clients = Clients { stack };
    let alice = clients.user("iams3alice").await;
    let bob = clients.user("iams3bob").await;
    let group = clients.group(&alice, &[&bob]).await;
    let bytes = b"GIF89a-not-really";
    let (status, reserved) = clients
        .call(
            "POST",
            &format!("/conversations/{group}/attachments"),
            Some(&alice.token),
            Some(json!({ "fileName": "a.gif", "contentType": "image/gif", "size": bytes.len() })),
        )
        .await;
    assert_eq!(status, 201, "{reserved}");
    // The upload function keeps its rights: its URL works (tagging on upload needs s3:PutObjectTagging).
    let mut upload = reqwest::Client::new().put(reserved["uploadUrl"].as_str().unwrap());
    for (name, value) in reserved["uploadHeaders"].as_object().unwrap() {
        if !name.eq_ignore_ascii_case("content-length") {
            upload = upload.header(name, value.as_str().unwrap());
        }
    }
    let uploaded = upload.body(bytes.to_vec()).send().await.unwrap();
    assert_eq!(uploaded.status(), 200, "{:?}", uploaded.text().await);
    let id = reserved["attachment"]["id"].as_str().unwrap().to_owned();
    let object = format!("arn:aws:s3:::AttachmentsBucket/uploads/{group}/{id}");

    // The attachment route signs a download URL it has no right to: S3 refuses it when used.
    let (status, got) = clients
        .call(
            "GET",
            &format!("/conversations/{group}/attachments/{id}"),
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{got}");
    let download = reqwest::get(got["url"].as_str().unwrap()).await.unwrap();
    assert_eq!(download.status(), 403);
    let text = download.text().await.unwrap();
    assert!(text.contains("<Code>AccessDenied</Code>"), "{text}");
    assert!(
        text.contains(&format!(
            "assumed-role/AttachmentsGetFunctionRole/AttachmentsGetFunction is not authorized to perform: \
             s3:GetObject on resource: \"{object}\" because no identity-based policy allows the s3:GetObject action"
        )),
        "{text}"
    );
    let logged = denials(stack);
    assert!(
        logged
            .iter()
            .any(|l| l.starts_with(&format!("IAM: AttachmentsGetFunction denied s3:GetObject on {object}"))),
        "{logged:#?}"
    );

    // The WebSocket send checks the object with HeadObject, which S3 refuses this role: the send is
    // refused as unavailable and nothing is stored.
    let mut socket = clients.connect(&alice).await;
    send_frame(
        &mut socket,
        json!({ "action": "sendMessage", "conversationId": group, "clientMessageId": "s3-1", "body": "pic", "attachmentIds": [id] }),
    )
    .await;
    let error = loop {
        let frame = next_within(&mut socket, Duration::from_secs(20))
            .await
            .expect("an answer");
        if let Some(error) = parley_tests::realtime::events_of(frame)
            .into_iter()
            .find(|e| e["type"] == "error")
        {
            break error;
        }
    };
    assert_eq!(error["error"]["code"], "unavailable", "{error}");
    let logged = denials(stack);
    assert!(
        logged
            .iter()
            .any(|l| l.starts_with(&format!("IAM: WsSendMessageFunction denied s3:GetObject on {object}"))),
        "{logged:#?}"
    );
    let (status, page) = clients
        .call(
            "GET",
            &format!("/conversations/{group}/messages"),
            Some(&bob.token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(!page.to_string().contains("s3-1"), "{page}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_templates_roles_allow_what_the_functions_do() {
    let clients = Clients { stack: stack() };
    let alice = clients.user("iamok").await;
    let bob = clients.user("iamokb").await;
    let group = clients.group(&alice, &[&bob]).await;
    let mut bob_socket = clients.connect(&bob).await;
    clients.http_send(&alice, &group, "allowed-1", "hello").await;
    let mut seen = false;
    for _ in 0..10 {
        match next_within(&mut bob_socket, Duration::from_secs(5)).await {
            Some(frame) if frame.to_string().contains("allowed-1") => {
                seen = true;
                break;
            }
            Some(_) => continue,
            None => break,
        }
    }
    assert!(seen, "Bob got the message");
    let logged = denials(stack());
    assert!(logged.is_empty(), "{logged:#?}");
}

/// The unauthenticated sign-in functions may touch only their own partitions (`dynamodb:LeadingKeys`):
/// every way in and out still works with those conditions enforced.
#[tokio::test(flavor = "multi_thread")]
async fn the_sign_in_functions_work_within_their_leading_keys() {
    use k256::ecdsa::SigningKey;
    use parley::auth::wallet::{address_of_key, personal_sign};

    let clients = Clients { stack: stack() };
    let username = format!("iamsign{}", &ulid::Ulid::generate().to_string()[18..].to_lowercase());
    let credentials = json!({ "username": username, "password": "least privilege" });
    let (status, registered) = clients
        .call("POST", "/auth/register", None, Some(credentials.clone()))
        .await;
    assert_eq!(status, 201, "{registered}");
    let (status, logged_in) = clients.call("POST", "/auth/login", None, Some(credentials)).await;
    assert_eq!(status, 200, "{logged_in}");
    let refresh = |token: Value| clients.call("POST", "/auth/refresh", None, Some(json!({ "refreshToken": token })));
    let (status, refreshed) = refresh(logged_in["refreshToken"].clone()).await;
    assert_eq!(status, 200, "{refreshed}");
    // Rotated once more, so that the first token is no longer the just-rotated one (whose retry the
    // grace answers again)...
    let (status, again) = refresh(refreshed["refreshToken"].clone()).await;
    assert_eq!(status, 200, "{again}");
    // ...and used a third time it is a reuse: the session is revoked.
    let (status, reused) = refresh(logged_in["refreshToken"].clone()).await;
    assert_eq!(status, 401, "{reused}");
    let access = registered["accessToken"].as_str().unwrap();
    let (status, body) = clients.call("POST", "/auth/logout", Some(access), None).await;
    assert_eq!(status, 204, "{body}");

    let seed: Vec<u8> = [ulid::Ulid::generate(), ulid::Ulid::generate()]
        .iter()
        .flat_map(|u| u.to_bytes())
        .collect();
    let wallet = SigningKey::from_slice(&seed).expect("a valid secp256k1 scalar");
    let address = address_of_key(&wallet).checksummed();
    let mut user_id = None;
    for _ in 0..2 {
        let (status, issued) = clients
            .call(
                "POST",
                "/auth/wallet/challenge",
                None,
                Some(json!({ "address": address })),
            )
            .await;
        assert_eq!(status, 200, "{issued}");
        let signature = personal_sign(&wallet, issued["message"].as_str().unwrap());
        let (status, signed_in) = clients
            .call(
                "POST",
                "/auth/wallet/verify",
                None,
                Some(json!({ "address": address, "signature": signature })),
            )
            .await;
        assert_eq!(status, 200, "{signed_in}");
        // The first sign-in creates the user, the second finds it.
        let id = signed_in["user"]["id"].clone();
        assert_eq!(user_id.get_or_insert(id.clone()), &id);
    }
    let logged = denials(stack());
    assert!(logged.is_empty(), "{logged:#?}");
}
