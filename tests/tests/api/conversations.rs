//! Direct conversations and groups, the activity-ordered list, members and read markers, against
//! DynamoDB Local.

use parley::api::{conversations as routes, messages};
use parley_tests::{TestApp, TestRequest, TestResponse, TestUser};
use serde_json::{json, Value};

fn create(user: &TestUser, body: Value) -> TestRequest {
    TestRequest::new("POST", "/conversations")
        .bearer(&user.token)
        .json(body)
}

fn on(method: &str, route: &str, conversation: &str, user: &TestUser) -> TestRequest {
    TestRequest::route(method, route, &[("conversationId", conversation)]).bearer(&user.token)
}

fn list(user: &TestUser) -> TestRequest {
    TestRequest::new("GET", "/conversations").bearer(&user.token)
}

fn ids(response: &TestResponse) -> Vec<String> {
    response.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn one_direct_conversation_per_pair() {
    let app = TestApp::new().await;
    let (ann, ben) = (app.user("ann").await, app.user("ben").await);
    let first = app
        .call(
            routes::create,
            create(&ann, json!({ "type": "direct", "memberIds": [ben.id] })),
        )
        .await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert_eq!(first.body["type"], "direct");
    assert_eq!(first.body["memberCount"], 2);
    assert_eq!(first.body["myRole"], "member");
    assert_eq!(first.body["unreadCount"], 0);
    assert!(first.body.get("name").is_none());

    let again = app
        .call(
            routes::create,
            create(&ann, json!({ "type": "direct", "memberIds": [ben.id] })),
        )
        .await;
    let reverse = app
        .call(
            routes::create,
            create(&ben, json!({ "type": "direct", "memberIds": [ann.id.to_lowercase()] })),
        )
        .await;
    assert_eq!((again.status, reverse.status), (200, 200));
    assert_eq!(again.body["id"], first.body["id"]);
    assert_eq!(reverse.body["id"], first.body["id"]);
    assert_eq!(app.count_items("META").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_opens_of_a_pair_make_one_conversation() {
    let app = TestApp::new().await;
    let (cat, dan) = (app.user("cat").await, app.user("dan").await);
    let context = app.context;
    let open = |me: TestUser, other: TestUser| {
        tokio::spawn(async move {
            let request = create(&me, json!({ "type": "direct", "memberIds": [other.id] })).to_event();
            let request = lambda_http::request::from_str(&request.to_string()).unwrap();
            TestResponse::from(parley::http::handle(context, routes::create, request).await)
        })
    };
    let tasks = vec![
        open(cat.clone(), dan.clone()),
        open(dan.clone(), cat.clone()),
        open(cat.clone(), dan.clone()),
        open(dan.clone(), cat.clone()),
    ];
    let mut seen = std::collections::BTreeSet::new();
    for task in tasks {
        let response = task.await.unwrap();
        assert!(matches!(response.status, 200 | 201), "{}", response.body);
        seen.insert(response.body["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(app.count_items("META").await, 1);
    assert_eq!(app.count_items("MEMBER#").await, 2);
}

#[tokio::test]
async fn bad_conversation_requests_write_nothing() {
    let app = TestApp::new().await;
    let (eve, fay) = (app.user("eve").await, app.user("fay").await);
    let before = app.all_keys().await;
    let unknown = ulid::Ulid::generate().to_string();
    let thousand: Vec<String> = (0..1000).map(|_| ulid::Ulid::generate().to_string()).collect();
    for (body, field) in [
        (json!({ "type": "direct", "memberIds": [eve.id] }), "memberIds"),
        (json!({ "type": "direct", "memberIds": [unknown] }), "memberIds"),
        (json!({ "type": "direct", "memberIds": [fay.id, unknown] }), "memberIds"),
        (json!({ "type": "direct", "memberIds": ["not-an-id"] }), "memberIds"),
        (json!({ "type": "group", "memberIds": [fay.id] }), "name"),
        (json!({ "type": "group", "name": "  ", "memberIds": [fay.id] }), "name"),
        (
            json!({ "type": "group", "name": "x".repeat(101), "memberIds": [fay.id] }),
            "name",
        ),
        (
            json!({ "type": "group", "name": "bad\u{1b}name", "memberIds": [fay.id] }),
            "name",
        ),
        (
            json!({ "type": "group", "name": "ok", "memberIds": [fay.id, unknown] }),
            "memberIds",
        ),
        (
            json!({ "type": "group", "name": "too big", "memberIds": thousand }),
            "memberIds",
        ),
        (json!({ "type": "channel", "memberIds": [fay.id] }), "type"),
        (
            json!({ "type": "group", "name": "ok", "memberIds": "fay" }),
            "memberIds",
        ),
    ] {
        let response = app.call(routes::create, create(&eve, body.clone())).await;
        response.assert_error(400, "validation_failed");
        let details = response.body["error"]["details"].to_string();
        assert!(details.contains(field), "{body}: {details}");
    }
    assert_eq!(app.all_keys().await, before, "nothing half-written");
    let anonymous = TestRequest::new("POST", "/conversations").json(json!({ "type": "direct", "memberIds": [fay.id] }));
    app.call(routes::create, anonymous)
        .await
        .assert_error(401, "unauthorized");
}

#[tokio::test]
async fn groups_have_an_owner_and_members() {
    let app = TestApp::new().await;
    let (gus, hal, ivy) = (app.user("gus").await, app.user("hal").await, app.user("ivy").await);
    let response = app
        .call(
            routes::create,
            create(
                &gus,
                json!({ "type": "group", "name": " Book club ", "memberIds": [hal.id, hal.id, gus.id] }),
            ),
        )
        .await;
    assert_eq!(response.status, 201);
    assert_eq!(response.body["name"], "Book club");
    assert_eq!(response.body["myRole"], "owner");
    assert_eq!(
        response.body["memberCount"], 2,
        "duplicates and the creator are counted once"
    );
    let group = response.body["id"].as_str().unwrap();

    let seen_by_hal = app
        .call(routes::get, on("GET", "/conversations/{conversationId}", group, &hal))
        .await;
    assert_eq!(
        (seen_by_hal.status, seen_by_hal.body["myRole"].as_str()),
        (200, Some("member"))
    );
    let outsider = app
        .call(routes::get, on("GET", "/conversations/{conversationId}", group, &ivy))
        .await;
    outsider.assert_error(404, "not_found");
    let garbage = app
        .call(routes::get, on("GET", "/conversations/{conversationId}", "nope", &gus))
        .await;
    garbage.assert_error(400, "validation_failed");

    let renamed = app
        .call(
            routes::rename,
            on("PATCH", "/conversations/{conversationId}", group, &gus).json(json!({ "name": "Books" })),
        )
        .await;
    assert_eq!((renamed.status, renamed.body["name"].as_str()), (200, Some("Books")));
    app.call(
        routes::rename,
        on("PATCH", "/conversations/{conversationId}", group, &hal).json(json!({ "name": "Mine" })),
    )
    .await
    .assert_error(403, "forbidden");
    app.call(
        routes::rename,
        on("PATCH", "/conversations/{conversationId}", group, &gus).json(json!({ "name": "" })),
    )
    .await
    .assert_error(400, "validation_failed");
    let direct = app.direct(&gus, &hal).await;
    app.call(
        routes::rename,
        on("PATCH", "/conversations/{conversationId}", &direct, &gus).json(json!({ "name": "x" })),
    )
    .await
    .assert_error(400, "validation_failed");
}

#[tokio::test]
async fn members_are_added_listed_removed_and_leave() {
    let app = TestApp::new().await;
    let owner = app.user("jan").await;
    let others: Vec<TestUser> = futures_users(&app, &["kim", "lee", "max", "ned"]).await;
    let group = app.group(&owner, "team", &[&others[0]]).await;
    let members_route = "/conversations/{conversationId}/members";

    let added = app
        .call(
            routes::add_members,
            on("POST", members_route, &group, &owner)
                .json(json!({ "userIds": [others[0].id, others[1].id, others[2].id] })),
        )
        .await;
    assert_eq!(added.status, 200, "{}", added.body);
    assert_eq!(
        added.body["added"],
        json!([others[1].id, others[2].id]),
        "already-members are ignored"
    );

    let by_member = app
        .call(
            routes::add_members,
            on("POST", members_route, &group, &others[0]).json(json!({ "userIds": [others[3].id] })),
        )
        .await;
    by_member.assert_error(403, "forbidden");
    let unknown = ulid::Ulid::generate().to_string();
    let before = app.all_keys().await;
    app.call(
        routes::add_members,
        on("POST", members_route, &group, &owner).json(json!({ "userIds": [others[3].id, unknown] })),
    )
    .await
    .assert_error(400, "validation_failed");
    app.call(
        routes::add_members,
        on("POST", members_route, &group, &owner).json(json!({ "userIds": [] })),
    )
    .await
    .assert_error(400, "validation_failed");
    assert_eq!(app.all_keys().await, before, "an unknown user adds nobody");

    // Page through the members two at a time.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut request = on("GET", members_route, &group, &others[1]).query("limit", "2");
        if let Some(c) = &cursor {
            request = request.query("cursor", c);
        }
        let page = app.call(routes::members, request).await;
        assert_eq!(page.status, 200, "{}", page.body);
        for item in page.body["items"].as_array().unwrap() {
            seen.push((
                item["userId"].as_str().unwrap().to_owned(),
                item["role"].as_str().unwrap().to_owned(),
            ));
            assert!(item["joinedAt"].is_string());
        }
        match page.body["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 4);
    assert!(seen.contains(&(owner.id.clone(), "owner".to_owned())));
    let meta = app
        .call(
            routes::get,
            on("GET", "/conversations/{conversationId}", &group, &owner),
        )
        .await;
    assert_eq!(meta.body["memberCount"], 4);

    let member_route = "/conversations/{conversationId}/members/{userId}";
    let remove = |by: &TestUser, target: &TestUser| {
        TestRequest::route(
            "DELETE",
            member_route,
            &[("conversationId", &group), ("userId", &target.id)],
        )
        .bearer(&by.token)
    };
    app.call(routes::remove_member, remove(&others[0], &others[1]))
        .await
        .assert_error(403, "forbidden");
    app.call(routes::remove_member, remove(&others[0], &owner))
        .await
        .assert_error(403, "forbidden");
    assert_eq!(
        app.call(routes::remove_member, remove(&owner, &others[1])).await.status,
        204
    );
    assert_eq!(
        app.call(routes::remove_member, remove(&others[2], &others[2]))
            .await
            .status,
        204,
        "leaving"
    );
    app.call(routes::remove_member, remove(&owner, &others[1]))
        .await
        .assert_error(404, "not_found");
    let gone = app
        .call(
            routes::get,
            on("GET", "/conversations/{conversationId}", &group, &others[1]),
        )
        .await;
    gone.assert_error(404, "not_found");
    let meta = app
        .call(
            routes::get,
            on("GET", "/conversations/{conversationId}", &group, &owner),
        )
        .await;
    assert_eq!(meta.body["memberCount"], 2);

    let direct = app.direct(&owner, &others[0]).await;
    let from_direct = TestRequest::route(
        "DELETE",
        member_route,
        &[("conversationId", &direct), ("userId", &others[0].id)],
    )
    .bearer(&owner.token);
    app.call(routes::remove_member, from_direct)
        .await
        .assert_error(400, "validation_failed");
    app.call(
        routes::add_members,
        on("POST", members_route, &direct, &owner).json(json!({ "userIds": [others[3].id] })),
    )
    .await
    .assert_error(400, "validation_failed");
}

async fn futures_users(app: &TestApp, names: &[&str]) -> Vec<TestUser> {
    let mut users = Vec::new();
    for name in names {
        users.push(app.user(name).await);
    }
    users
}

#[tokio::test]
async fn the_list_is_ordered_by_activity_and_pages_with_cursors() {
    let app = TestApp::new().await;
    let me = app.user("olga").await;
    let friends = futures_users(&app, &["pat", "quinn", "ray"]).await;
    let direct_pat = app.direct(&me, &friends[0]).await;
    let group_a = app.group(&me, "a", &[&friends[1]]).await;
    let direct_ray = app.direct(&friends[2], &me).await;
    let group_b = app.group(&friends[1], "b", &[&me, &friends[2]]).await;

    // Newest first: by creation until someone writes.
    let all = app.call(routes::list, list(&me)).await;
    assert_eq!(
        ids(&all),
        [&group_b, &direct_ray, &group_a, &direct_pat].map(String::clone)
    );
    assert_eq!(all.body["nextCursor"], Value::Null);

    app.send(&friends[0], &direct_pat, "p1", "hi olga").await;
    app.send(&friends[1], &group_a, "q1", "hello group a").await;
    // What follows a send is the conversation worker's, from the table's stream (in process: settle).
    app.settle().await;
    // Someone else's message moves a group in my list once the conversation worker has run (twice
    // changes nothing more: it is idempotent).
    app.list_activity(&group_a).await;
    app.list_activity(&group_a).await;
    let all = app.call(routes::list, list(&me)).await;
    assert_eq!(
        ids(&all),
        [&group_a, &direct_pat, &group_b, &direct_ray].map(String::clone)
    );
    let first = &all.body["items"][0];
    assert_eq!(first["lastMessage"]["body"], "hello group a");
    assert_eq!(first["unreadCount"], 1);
    assert_eq!(first["memberCount"], 2);
    assert_eq!(all.body["items"][1]["unreadCount"], 1);

    // Pages of one.
    let mut walked = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut request = list(&me).query("limit", "1");
        if let Some(c) = &cursor {
            request = request.query("cursor", c);
        }
        let page = app.call(routes::list, request).await;
        assert_eq!(page.status, 200, "{}", page.body);
        walked.extend(ids(&page));
        match page.body["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(walked, ids(&all));

    // A cursor is only good for the list that gave it.
    let page = app.call(routes::list, list(&me).query("limit", "1")).await;
    let mine = page.body["nextCursor"].as_str().unwrap();
    app.call(routes::list, list(&friends[1]).query("cursor", mine))
        .await
        .assert_error(400, "validation_failed");
    app.call(routes::list, list(&me).query("cursor", "garbage"))
        .await
        .assert_error(400, "validation_failed");
    for bad in ["0", "-1", "abc", "1.5"] {
        app.call(routes::list, list(&me).query("limit", bad))
            .await
            .assert_error(400, "validation_failed");
    }
    assert_eq!(
        app.call(routes::list, list(&me).query("limit", "1000")).await.status,
        200,
        "clamped, not refused"
    );
    let selected = app.call(routes::list, list(&me).query("fields", "type")).await;
    assert_eq!(selected.body["items"][0], json!({ "id": group_a, "type": "group" }));
}

#[tokio::test]
async fn read_markers_only_move_forward_and_drive_unread_counts() {
    let app = TestApp::new().await;
    let (sam, tia) = (app.user("sam").await, app.user("tia").await);
    let direct = app.direct(&sam, &tia).await;
    let first = app.send(&sam, &direct, "s1", "one").await;
    let second = app.send(&sam, &direct, "s2", "two").await;
    app.send(&sam, &direct, "s3", "three").await;
    app.settle().await;
    let unread = |user: &TestUser| {
        let request = on("GET", "/conversations/{conversationId}", &direct, user);
        let app = &app;
        async move {
            app.call(routes::get, request).await.body["unreadCount"]
                .as_u64()
                .unwrap()
        }
    };
    assert_eq!(unread(&tia).await, 3);
    assert_eq!(unread(&sam).await, 0, "sending marks one's own messages read");

    let read = |user: &TestUser, message: &Value| {
        on("POST", "/conversations/{conversationId}/read", &direct, user).json(json!({ "messageId": message["id"] }))
    };
    assert_eq!(app.call(routes::mark_read, read(&tia, &second)).await.status, 204);
    assert_eq!(unread(&tia).await, 1);
    assert_eq!(app.call(routes::mark_read, read(&tia, &first)).await.status, 204);
    assert_eq!(unread(&tia).await, 1, "the marker does not move back");

    let unknown = json!({ "id": ulid::Ulid::generate().to_string() });
    app.call(routes::mark_read, read(&tia, &unknown))
        .await
        .assert_error(404, "not_found");
    let bad = on("POST", "/conversations/{conversationId}/read", &direct, &tia).json(json!({ "messageId": 5 }));
    app.call(routes::mark_read, bad)
        .await
        .assert_error(400, "validation_failed");
}

#[tokio::test]
async fn an_outsider_gets_404_on_every_route_of_someone_elses_conversation() {
    let app = TestApp::new().await;
    let (uma, vic, mallory) = (app.user("uma").await, app.user("vic").await, app.user("mallory").await);
    let group = app.group(&uma, "private", &[&vic]).await;
    let message = app.send(&uma, &group, "u1", "secret").await;
    let message_id = message["id"].as_str().unwrap();
    let before = app.all_keys().await;
    let base = "/conversations/{conversationId}";
    let msg = "/conversations/{conversationId}/messages/{messageId}";
    let with_message = |method: &str| {
        TestRequest::route(method, msg, &[("conversationId", &group), ("messageId", message_id)]).bearer(&mallory.token)
    };
    let member_route = "/conversations/{conversationId}/members/{userId}";
    let responses = vec![
        app.call(routes::get, on("GET", base, &group, &mallory)).await,
        app.call(
            routes::rename,
            on("PATCH", base, &group, &mallory).json(json!({ "name": "mine" })),
        )
        .await,
        app.call(routes::members, on("GET", &format!("{base}/members"), &group, &mallory))
            .await,
        app.call(
            routes::add_members,
            on("POST", &format!("{base}/members"), &group, &mallory).json(json!({ "userIds": [mallory.id] })),
        )
        .await,
        app.call(
            routes::remove_member,
            TestRequest::route(
                "DELETE",
                member_route,
                &[("conversationId", &group), ("userId", &vic.id)],
            )
            .bearer(&mallory.token),
        )
        .await,
        app.call(
            routes::mark_read,
            on("POST", &format!("{base}/read"), &group, &mallory).json(json!({ "messageId": message_id })),
        )
        .await,
        app.call(
            messages::send,
            on("POST", &format!("{base}/messages"), &group, &mallory)
                .json(json!({ "clientMessageId": "m1", "body": "hi" })),
        )
        .await,
        app.call(
            messages::history,
            on("GET", &format!("{base}/messages"), &group, &mallory),
        )
        .await,
        app.call(messages::edit, with_message("PATCH").json(json!({ "body": "edited" })))
            .await,
        app.call(messages::delete, with_message("DELETE")).await,
    ];
    for response in &responses {
        response.assert_error(404, "not_found");
    }
    assert_eq!(app.all_keys().await, before, "the outsider changed nothing");
    let listed = app.call(routes::list, list(&mallory)).await;
    assert_eq!(listed.body["items"], json!([]));
}

/// Every answer that is a conversation shows its `lastMessage` as `GET` does, as the caller reads it
/// now (current reactions, `myReactions`, download links), not the copy the conversation item keeps:
/// renaming, passing ownership, and opening a direct conversation that exists.
#[tokio::test]
async fn every_conversation_answer_shows_the_last_message_as_the_caller_reads_it() {
    let app = TestApp::new().await;
    let (ann, ben) = (app.user("ann").await, app.user("ben").await);
    let react = |conversation: &str, message: &str| {
        TestRequest::route(
            "PUT",
            "/conversations/{conversationId}/messages/{messageId}/reactions/{reaction}",
            &[
                ("conversationId", conversation),
                ("messageId", message),
                ("reaction", "pizza"),
            ],
        )
        .bearer(&ann.token)
    };
    let group = app.group(&ann, "lunch", &[&ben]).await;
    let sent = app.send(&ann, &group, "m-1", "pizza?").await;
    app.settle().await;
    let reacted = app
        .call(messages::react, react(&group, sent["id"].as_str().unwrap()))
        .await;
    assert_eq!(reacted.status, 204, "{}", reacted.body);
    let read = app
        .call(routes::get, on("GET", "/conversations/{conversationId}", &group, &ann))
        .await;
    let last = read.body["lastMessage"].clone();
    assert_eq!(
        (&last["reactions"], &last["myReactions"]),
        (&json!({ "pizza": 1 }), &json!(["pizza"]))
    );

    let renamed = app
        .call(
            routes::rename,
            on("PATCH", "/conversations/{conversationId}", &group, &ann).json(json!({ "name": "dinner" })),
        )
        .await;
    assert_eq!(
        (renamed.status, &renamed.body["lastMessage"]),
        (200, &last),
        "{}",
        renamed.body
    );
    let passed = app
        .call(
            routes::transfer_ownership,
            on("POST", "/conversations/{conversationId}/owner", &group, &ann).json(json!({ "userId": ben.id })),
        )
        .await;
    assert_eq!(
        (passed.status, &passed.body["lastMessage"]),
        (200, &last),
        "{}",
        passed.body
    );

    let direct = app.direct(&ann, &ben).await;
    let sent = app.send(&ann, &direct, "d-1", "pizza!").await;
    app.settle().await;
    app.call(messages::react, react(&direct, sent["id"].as_str().unwrap()))
        .await;
    let read = app
        .call(routes::get, on("GET", "/conversations/{conversationId}", &direct, &ann))
        .await;
    let again = app
        .call(
            routes::create,
            create(&ann, json!({ "type": "direct", "memberIds": [ben.id] })),
        )
        .await;
    assert_eq!(
        (again.status, &again.body["lastMessage"]),
        (200, &read.body["lastMessage"]),
        "{}",
        again.body
    );
    assert_eq!(again.body["lastMessage"]["myReactions"], json!(["pizza"]));
}
