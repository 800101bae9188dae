//! Attachments end to end (docs/API-GUIDE.md "Attachments") over real HTTP on the local stack: an upload with the
//! presigned URL to the local S3 server (s3rver, behind the launcher's SigV4 check), attached on send, read back with a download URL whose
//! bytes and headers are checked; members only; every bad input refused with nothing half-written; an
//! abandoned upload's clean-up with a short TTL; a deleted message's objects gone when the delete
//! answers; an upload URL that creates its object once; the per-user quota.

use std::time::Duration;

use parley_tests::realtime::{events_of, next, send_frame, Clients, User};
use parley_tests::{stack, start_stack, Stack};
use serde_json::{json, Value};

fn rt() -> Clients {
    Clients { stack: stack() }
}

fn assert_error(answer: &(u16, Value), status: u16, code: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["error"]["code"], code, "{}", answer.1);
}

async fn reserve(clients: &Clients, user: &User, conversation: &str, body: Value) -> (u16, Value) {
    clients
        .call(
            "POST",
            &format!("/conversations/{conversation}/attachments"),
            Some(&user.token),
            Some(body),
        )
        .await
}

/// `PUT`s `bytes` to a reservation's `uploadUrl` with its `uploadHeaders` (overridden by `headers`).
async fn upload(reserved: &Value, bytes: &[u8], headers: &[(&str, &str)]) -> u16 {
    let mut request = reqwest::Client::new().put(reserved["uploadUrl"].as_str().unwrap());
    let mut sent: Vec<(String, String)> = reserved["uploadHeaders"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str().unwrap().to_owned()))
        .collect();
    for (name, value) in headers {
        sent.retain(|(k, _)| k != name);
        sent.push(((*name).to_owned(), (*value).to_owned()));
    }
    for (name, value) in sent.iter().filter(|(k, _)| k != "content-length") {
        request = request.header(name, value);
    }
    request
        .body(bytes.to_vec())
        .send()
        .await
        .expect("the S3 server answers")
        .status()
        .as_u16()
}

async fn send(clients: &Clients, user: &User, conversation: &str, body: Value) -> (u16, Value) {
    clients
        .call(
            "POST",
            &format!("/conversations/{conversation}/messages"),
            Some(&user.token),
            Some(body),
        )
        .await
}

async fn download(url: &str) -> reqwest::Response {
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    reqwest::get(url).await.expect("the S3 server answers")
}

/// A reservation and a matching upload; the reservation's body.
async fn uploaded(clients: &Clients, user: &User, conversation: &str, name: &str, kind: &str, bytes: &[u8]) -> Value {
    let (status, reserved) = reserve(
        clients,
        user,
        conversation,
        json!({ "fileName": name, "contentType": kind, "size": bytes.len() }),
    )
    .await;
    assert_eq!(status, 201, "{reserved}");
    assert_eq!(upload(&reserved, bytes, &[]).await, 200);
    reserved
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_is_attached_read_back_and_downloaded_by_members_only() {
    let (ann, bob, cid) = (rt().user("ann").await, rt().user("bob").await, rt().user("cid").await);
    let group = rt().group(&ann, &[&bob, &cid]).await;
    let bytes: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    let reserved = uploaded(&rt(), &ann, &group, "Straße plan.png", "image/png", &bytes).await;
    let attachment = &reserved["attachment"];
    let id = attachment["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (
            attachment["fileName"].as_str(),
            attachment["contentType"].as_str(),
            attachment["size"].as_u64()
        ),
        (Some("Straße plan.png"), Some("image/png"), Some(bytes.len() as u64))
    );
    assert_eq!(attachment["conversationId"], json!(group));
    assert!(reserved["expiresAt"].as_str().unwrap().ends_with('Z'));

    // An upload nobody attached is its uploader's alone.
    let path = format!("/conversations/{group}/attachments/{id}");
    assert_error(&rt().call("GET", &path, Some(&bob.token), None).await, 404, "not_found");

    // Attached with an empty body.
    let (status, message) = send(
        &rt(),
        &ann,
        &group,
        json!({ "clientMessageId": "pic", "body": "", "attachmentIds": [id] }),
    )
    .await;
    assert_eq!(status, 201, "{message}");
    assert_eq!(message["attachments"][0]["id"], json!(id));
    let message_id = message["id"].as_str().unwrap().to_owned();

    // Bob reads the message and downloads the bytes: exact, as an attachment, with the stored type.
    let (status, read) = rt()
        .call(
            "GET",
            &format!("/conversations/{group}/messages/{message_id}"),
            Some(&bob.token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{read}");
    let listed = &read["attachments"][0];
    assert_eq!(
        (listed["fileName"].as_str(), listed["size"].as_u64()),
        (Some("Straße plan.png"), Some(70_000))
    );
    let response = download(listed["url"].as_str().unwrap()).await;
    assert_eq!(response.status(), 200);
    let disposition = response.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert!(disposition.starts_with("attachment;"), "{disposition}");
    assert_eq!(response.headers()["content-type"], "image/png");
    assert_eq!(response.bytes().await.unwrap().as_ref(), bytes.as_slice());

    // And through GET .../attachments/{id}.
    let (status, got) = rt().call("GET", &path, Some(&bob.token), None).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(
        download(got["url"].as_str().unwrap())
            .await
            .bytes()
            .await
            .unwrap()
            .len(),
        70_000
    );

    // Cid, removed, gets 404; so does a stranger.
    let (status, body) = rt()
        .call(
            "DELETE",
            &format!("/conversations/{group}/members/{}", cid.id),
            Some(&ann.token),
            None,
        )
        .await;
    assert_eq!(status, 204, "{body}");
    assert_error(&rt().call("GET", &path, Some(&cid.token), None).await, 404, "not_found");
    let stranger = rt().user("dee").await;
    assert_error(
        &rt().call("GET", &path, Some(&stranger.token), None).await,
        404,
        "not_found",
    );

    // An HTML upload downloads as an attachment with its own type, never inline.
    let html = uploaded(
        &rt(),
        &ann,
        &group,
        "page.html",
        "text/html",
        b"<script>alert(1)</script>",
    )
    .await;
    let html_id = html["attachment"]["id"].as_str().unwrap().to_owned();
    let (status, _) = send(
        &rt(),
        &ann,
        &group,
        json!({ "clientMessageId": "html", "body": "see", "attachmentIds": [html_id] }),
    )
    .await;
    assert_eq!(status, 201);
    let (_, got) = rt()
        .call(
            "GET",
            &format!("/conversations/{group}/attachments/{html_id}"),
            Some(&bob.token),
            None,
        )
        .await;
    let response = download(got["url"].as_str().unwrap()).await;
    assert!(response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    assert_eq!(response.headers()["content-type"], "text/html");

    // Deleting the message deletes its object and record before the delete answers: a download URL
    // handed out before stops working at once (the attachments worker would follow within seconds).
    let url = got["url"].as_str().unwrap().to_owned();
    let picture_url = listed["url"].as_str().unwrap().to_owned();
    let (status, _) = rt()
        .call(
            "DELETE",
            &format!("/conversations/{group}/messages/{message_id}"),
            Some(&ann.token),
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        download(&picture_url).await.status(),
        404,
        "the deleted message's object is gone when the delete answers"
    );
    assert_error(&rt().call("GET", &path, Some(&bob.token), None).await, 404, "not_found");
    // The other message's object stays.
    assert_eq!(download(&url).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_reservations_are_refused_and_write_nothing() {
    let ann = rt().user("ann").await;
    let group = rt().group(&ann, &[]).await;
    let ok = json!({ "fileName": "a.png", "contentType": "image/png", "size": 10 });
    let with = |field: &str, value: Value| {
        let mut body = ok.clone();
        body[field] = value;
        body
    };
    let cases = [
        (with("size", json!(0)), 400, "validation_failed"),
        (with("size", json!(26_214_401u64)), 413, "payload_too_large"),
        (with("fileName", json!("dir/a.png")), 400, "validation_failed"),
        (with("fileName", json!("dir\\a.png")), 400, "validation_failed"),
        (with("fileName", json!("a\u{7}.png")), 400, "validation_failed"),
        (with("fileName", json!("x".repeat(256))), 400, "validation_failed"),
        (with("fileName", json!("")), 400, "validation_failed"),
        (with("contentType", json!("")), 400, "validation_failed"),
        (json!({ "fileName": "a.png", "size": 10 }), 400, "validation_failed"),
        (with("contentType", json!("not a type")), 400, "validation_failed"),
    ];
    for (body, status, code) in cases {
        let answer = reserve(&rt(), &ann, &group, body.clone()).await;
        assert_error(&answer, status, code);
        assert!(
            answer.1["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
    }
    // 25 MiB exactly is fine; a stranger's conversation is 404.
    assert_eq!(
        reserve(&rt(), &ann, &group, with("size", json!(26_214_400u64))).await.0,
        201
    );
    let stranger = rt().user("dee").await;
    assert_error(&reserve(&rt(), &stranger, &group, ok).await, 404, "not_found");
}

#[tokio::test(flavor = "multi_thread")]
async fn sends_with_bad_attachments_are_refused_and_attach_nothing() {
    let (ann, bob) = (rt().user("ann").await, rt().user("bob").await);
    let group = rt().group(&ann, &[&bob]).await;
    let other = rt().group(&ann, &[&bob]).await;
    let never = reserve(
        &rt(),
        &ann,
        &group,
        json!({ "fileName": "n.txt", "contentType": "text/plain", "size": 3 }),
    )
    .await
    .1;
    let bobs = uploaded(&rt(), &bob, &group, "b.txt", "text/plain", b"bob").await;
    let elsewhere = uploaded(&rt(), &ann, &other, "e.txt", "text/plain", b"else").await;
    // Uploads of another size or type than declared, or with a tampered signature: the storage
    // refuses them (403), as S3 does; and nothing was uploaded, so the send refuses to attach them.
    let declared = json!({ "fileName": "s.txt", "contentType": "text/plain", "size": 3 });
    let (_, bigger) = reserve(&rt(), &ann, &group, declared.clone()).await;
    assert_eq!(upload(&bigger, b"longer", &[]).await, 403);
    let (_, retyped) = reserve(&rt(), &ann, &group, declared.clone()).await;
    assert_eq!(upload(&retyped, b"abc", &[("content-type", "text/html")]).await, 403);
    let (_, mut tampered) = reserve(&rt(), &ann, &group, declared).await;
    let url = tampered["uploadUrl"].as_str().unwrap();
    let forged = format!(
        "{}{}",
        &url[..url.len() - 4],
        if url.ends_with("0000") { "1111" } else { "0000" }
    );
    tampered["uploadUrl"] = json!(forged);
    assert_eq!(upload(&tampered, b"abc", &[]).await, 403);
    let good = uploaded(&rt(), &ann, &group, "g.txt", "text/plain", b"abc").await;
    let id = |v: &Value| v["attachment"]["id"].as_str().unwrap().to_owned();
    let cases = vec![
        (vec![id(&never)], "never uploaded"),
        (vec![id(&bigger)], "never uploaded"),
        (vec![id(&retyped)], "never uploaded"),
        (vec![id(&tampered)], "never uploaded"),
        (vec![id(&bobs)], "not an upload of yours"),
        (vec![id(&elsewhere)], "not an upload of yours"),
        (vec![ulid::Ulid::generate().to_string()], "not an upload of yours"),
    ];
    for (n, (ids, why)) in cases.into_iter().enumerate() {
        let mut with_good = ids.clone();
        with_good.push(id(&good));
        let answer = send(
            &rt(),
            &ann,
            &group,
            json!({ "clientMessageId": format!("bad-{n}"), "body": "x", "attachmentIds": with_good }),
        )
        .await;
        assert_error(&answer, 400, "validation_failed");
        let message = answer.1["error"]["message"].as_str().unwrap();
        assert!(message.contains(&ids[0]) && message.contains(why), "{message}");
        assert!(!message.contains(&id(&good)), "only the bad ids are named: {message}");
    }
    let eleven: Vec<String> = (0..11).map(|_| ulid::Ulid::generate().to_string()).collect();
    assert_error(
        &send(
            &rt(),
            &ann,
            &group,
            json!({ "clientMessageId": "many", "body": "x", "attachmentIds": eleven }),
        )
        .await,
        400,
        "validation_failed",
    );
    // An empty body needs attachments.
    assert_error(
        &send(&rt(), &ann, &group, json!({ "clientMessageId": "empty", "body": "" })).await,
        400,
        "validation_failed",
    );

    // Nothing was attached or stored by any of them: the good one still attaches, once.
    let (status, history) = rt()
        .call(
            "GET",
            &format!("/conversations/{group}/messages"),
            Some(&ann.token),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        history["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["attachments"] == json!([])),
        "{history}"
    );
    let (status, sent) = send(
        &rt(),
        &ann,
        &group,
        json!({ "clientMessageId": "good", "body": "", "attachmentIds": [id(&good)] }),
    )
    .await;
    assert_eq!(status, 201, "{sent}");
    // A repeat of the same send is the same message, not a second attaching.
    let (status, again) = send(
        &rt(),
        &ann,
        &group,
        json!({ "clientMessageId": "good", "body": "", "attachmentIds": [id(&good)] }),
    )
    .await;
    assert_eq!((status, &again["id"]), (200, &sent["id"]), "{again}");
    let answer = send(
        &rt(),
        &ann,
        &group,
        json!({ "clientMessageId": "again", "body": "x", "attachmentIds": [id(&good)] }),
    )
    .await;
    assert_error(&answer, 400, "validation_failed");
    assert!(answer.1["error"]["message"]
        .as_str()
        .unwrap()
        .contains("attached to another message"));
}

fn short_lived() -> &'static Stack {
    static STACK: std::sync::OnceLock<Stack> = std::sync::OnceLock::new();
    STACK.get_or_init(|| {
        start_stack(&[
            ("RateLimitIpPerHour", "0"),
            ("RateLimitUserPerHour", "0"),
            ("RateLimitSensitivePerMinute", "0"),
            ("AttachmentUploadTtlSeconds", "6"),
            ("AttachmentUploadUrlSeconds", "3"),
        ])
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_upload_urls_are_refused_and_abandoned_uploads_are_gone() {
    let clients = Clients { stack: short_lived() };
    let ann = clients.user("ann").await;
    let group = clients.group(&ann, &[]).await;
    let body = json!({ "fileName": "late.txt", "contentType": "text/plain", "size": 4 });
    let (status, late) = reserve(&clients, &ann, &group, body.clone()).await;
    assert_eq!(status, 201, "{late}");
    let (status, abandoned) = reserve(&clients, &ann, &group, body).await;
    assert_eq!(status, 201);
    assert_eq!(upload(&abandoned, b"left", &[]).await, 200);
    // Its uploader may read it back meanwhile.
    let id = abandoned["attachment"]["id"].as_str().unwrap().to_owned();
    let path = format!("/conversations/{group}/attachments/{id}");
    let (status, fresh) = clients.call("GET", &path, Some(&ann.token), None).await;
    assert_eq!(status, 200, "{fresh}");
    let object_url = fresh["url"].as_str().unwrap().to_owned();
    assert_eq!(download(&object_url).await.status(), 200);
    // Past the URL's expiry (3 s) the storage refuses the upload.
    let expires_at = humantime::parse_rfc3339(late["expiresAt"].as_str().unwrap()).expect("expiresAt");
    let wait = expires_at
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    tokio::time::sleep(wait + Duration::from_millis(1500)).await;
    assert_eq!(upload(&late, b"late", &[]).await, 403);
    // Past the record's TTL (6 s) the abandoned upload is gone for every route.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let answer = clients.call("GET", &path, Some(&ann.token), None).await;
        if answer.0 == 404 {
            assert_error(&answer, 404, "not_found");
            break;
        }
        assert_eq!(answer.0, 200, "{}", answer.1);
        assert!(tokio::time::Instant::now() < deadline, "still there past its TTL");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let answer = send(
        &clients,
        &ann,
        &group,
        json!({ "clientMessageId": "late", "body": "x", "attachmentIds": [id] }),
    )
    .await;
    assert_error(&answer, 400, "validation_failed");

    // DynamoDB deletes the expired record (TTL; DynamoDB Local does not, so its stream record is
    // handed to the worker here as Lambda would), and the worker deletes the object; twice is the
    // same as once.
    let record = json!({ "Records": [{
        "eventID": "ttl-1", "eventName": "REMOVE", "eventVersion": "1.1", "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "userIdentity": { "type": "Service", "principalId": "dynamodb.amazonaws.com" },
        "dynamodb": {
            "Keys": { "PK": { "S": format!("CONV#{group}") }, "SK": { "S": format!("ATTACH#{id}") } },
            "OldImage": {
                "PK": { "S": format!("CONV#{group}") }, "SK": { "S": format!("ATTACH#{id}") },
                "id": { "S": id }, "conversationId": { "S": group }, "uploaderId": { "S": ann.id },
                "fileName": { "S": "late.txt" }, "contentType": { "S": "text/plain" }, "size": { "N": "4" },
                "createdAt": { "S": "2026-12-01T00:00:00.000Z" }, "expiresAt": { "N": "1" }
            },
            "SequenceNumber": "100", "SizeBytes": 100, "StreamViewType": "NEW_AND_OLD_IMAGES"
        },
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/ChatTable/stream/2026-12-01T00:00:00.000"
    }]});
    for _ in 0..2 {
        let stack = short_lived();
        let record = record.clone();
        let answer = tokio::task::spawn_blocking(move || stack.invoke("attachments-worker", record))
            .await
            .unwrap()
            .expect("the worker answers");
        assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
        assert_eq!(download(&object_url).await.status(), 404);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_websocket_send_attaches_uploads_too() {
    let ann = rt().user("ann").await;
    let group = rt().group(&ann, &[]).await;
    let reserved = uploaded(&rt(), &ann, &group, "voice.ogg", "audio/ogg", b"OggS....").await;
    let id = reserved["attachment"]["id"].as_str().unwrap().to_owned();
    let mut socket = rt().connect(&ann).await;
    send_frame(
        &mut socket,
        json!({ "action": "sendMessage", "conversationId": group, "clientMessageId": "ws-1", "body": "", "attachmentIds": [id] }),
    )
    .await;
    let ack = loop {
        let frame = next(&mut socket).await;
        if let Some(ack) = events_of(frame).into_iter().find(|e| e["type"] == "ack") {
            break ack;
        }
    };
    let attachment = &ack["message"]["attachments"][0];
    assert_eq!(attachment["id"], json!(id), "{ack}");
    let response = download(attachment["url"].as_str().unwrap()).await;
    assert_eq!(response.bytes().await.unwrap().as_ref(), b"OggS....");
    // Too many over the WebSocket: an error frame, nothing stored.
    let eleven: Vec<String> = (0..11).map(|_| ulid::Ulid::generate().to_string()).collect();
    send_frame(
        &mut socket,
        json!({ "action": "sendMessage", "conversationId": group, "clientMessageId": "ws-2", "body": "x", "attachmentIds": eleven }),
    )
    .await;
    let error = loop {
        let frame = next(&mut socket).await;
        if let Some(error) = events_of(frame).into_iter().find(|e| e["type"] == "error") {
            break error;
        }
    };
    assert_eq!(error["error"]["code"], "validation_failed", "{error}");
}

/// Each user may have 1 GiB of attachments stored, counted by declared size from the reservation
/// until the attachment is removed: beyond it a reservation is `403 quota_exceeded` and writes
/// nothing; another user is not affected; deleting a message gives its attachments' bytes back (the
/// attachments worker, once the records are gone).
#[tokio::test(flavor = "multi_thread")]
async fn attachments_count_against_a_quota_of_one_gib_per_user() {
    const MIB: u64 = 1 << 20;
    let (ann, bob) = (rt().user("quotaann").await, rt().user("quotabob").await);
    let group = rt().group(&ann, &[&bob]).await;
    let declare = |size: u64, n: usize| json!({ "fileName": format!("big-{n}.bin"), "contentType": "application/octet-stream", "size": size });
    // 975 MiB reserved (never uploaded: the declared size counts), then a real 1 KiB one, sent.
    for n in 0..39 {
        let (status, body) = reserve(&rt(), &ann, &group, declare(25 * MIB, n)).await;
        assert_eq!(status, 201, "reservation {n}: {body}");
    }
    let small = uploaded(&rt(), &ann, &group, "small.txt", "text/plain", &[b'x'; 1024]).await;
    let small_id = small["attachment"]["id"].as_str().unwrap();
    let (status, sent) = rt()
        .call(
            "POST",
            &format!("/conversations/{group}/messages"),
            Some(&ann.token),
            Some(json!({ "clientMessageId": "quota-small", "body": "small", "attachmentIds": [small_id] })),
        )
        .await;
    assert_eq!(status, 201, "{sent}");
    // Up to exactly 1 GiB is fine.
    assert_eq!(reserve(&rt(), &ann, &group, declare(25 * MIB, 100)).await.0, 201);
    assert_eq!(reserve(&rt(), &ann, &group, declare(24 * MIB - 1024, 101)).await.0, 201);
    let over = reserve(&rt(), &ann, &group, declare(1024, 102)).await;
    assert_error(&over, 403, "quota_exceeded");
    assert!(
        over.1["error"]["message"].as_str().unwrap().contains("1024 MiB"),
        "{}",
        over.1
    );
    // Bob's quota is his own.
    assert_eq!(reserve(&rt(), &bob, &group, declare(25 * MIB, 103)).await.0, 201);

    // Deleting the message gives its 1 KiB back.
    let (status, body) = rt()
        .call(
            "DELETE",
            &format!("/conversations/{group}/messages/{}", sent["id"].as_str().unwrap()),
            Some(&ann.token),
            None,
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let deadline = std::time::Instant::now() + parley_tests::FOLLOW_UP_WITHIN;
    let mut last = over;
    while std::time::Instant::now() < deadline {
        last = reserve(&rt(), &ann, &group, declare(1024, 104)).await;
        if last.0 == 201 {
            break;
        }
        assert_error(&last, 403, "quota_exceeded");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(last.0, 201, "the deleted message's bytes came back: {}", last.1);
    assert_error(
        &reserve(&rt(), &ann, &group, declare(1, 105)).await,
        403,
        "quota_exceeded",
    );
}

/// An upload URL creates its object once: a second `PUT` through it (to replace the bytes after a
/// check, or after the send) is refused with 412, and the sent attachment keeps the first bytes.
#[tokio::test(flavor = "multi_thread")]
async fn an_upload_url_cannot_replace_its_object() {
    let (ann, bob) = (rt().user("onceann").await, rt().user("oncebob").await);
    let group = rt().group(&ann, &[&bob]).await;
    let first = b"the bytes that were checked".to_vec();
    let reserved = uploaded(&rt(), &ann, &group, "once.txt", "text/plain", &first).await;
    assert!(
        reserved["uploadHeaders"]
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.eq_ignore_ascii_case("if-none-match")),
        "the URL is signed for a create-only PUT: {reserved}"
    );
    let same_size = b"the bytes that replace it!!".to_vec();
    assert_eq!(same_size.len(), first.len());
    assert_eq!(upload(&reserved, &same_size, &[]).await, 412, "before the send");
    let id = reserved["attachment"]["id"].as_str().unwrap();
    let (status, message) = send(
        &rt(),
        &ann,
        &group,
        json!({ "clientMessageId": "once", "body": "", "attachmentIds": [id] }),
    )
    .await;
    assert_eq!(status, 201, "{message}");
    assert_eq!(upload(&reserved, &same_size, &[]).await, 412, "after the send");
    let url = message["attachments"][0]["url"].as_str().unwrap();
    assert_eq!(download(url).await.bytes().await.unwrap().to_vec(), first);
}
