//! Profiles: reading one, many (batched) and one's own; changing one's own. Against DynamoDB Local.

use parley::api::users;
use parley_tests::{TestApp, TestRequest};
use serde_json::{json, Value};

fn token(signed_in: &Value) -> &str {
    signed_in["accessToken"].as_str().unwrap()
}

fn id(signed_in: &Value) -> &str {
    signed_in["user"]["id"].as_str().unwrap()
}

fn get_user(token: &str, user_id: &str) -> TestRequest {
    TestRequest::route("GET", "/users/{userId}", &[("userId", user_id)]).bearer(token)
}

fn patch_me(token: &str, body: Value) -> TestRequest {
    TestRequest::new("PATCH", "/users/me").bearer(token).json(body)
}

#[tokio::test]
async fn a_user_is_read_by_id_with_public_fields_only() {
    let app = TestApp::new().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;

    let read = app.call(users::get_user, get_user(token(&alice), id(&bob))).await;
    assert_eq!(read.status, 200);
    // Bob's own answer carries his privacy setting; nobody else sees it.
    let mut public = bob["user"].clone();
    assert_eq!(public["whoCanAddMe"], "everyone");
    public.as_object_mut().unwrap().remove("whoCanAddMe");
    assert_eq!(read.body, public);
    assert!(read.body.get("passwordHash").is_none());
    assert!(read.body.get("whoCanAddMe").is_none());

    let lower = id(&bob).to_lowercase();
    assert_eq!(
        app.call(users::get_user, get_user(token(&alice), &lower)).await.body["id"],
        id(&bob)
    );

    let unknown = ulid::Ulid::generate().to_string();
    app.call(users::get_user, get_user(token(&alice), &unknown))
        .await
        .assert_error(404, "not_found");
    app.call(users::get_user, get_user(token(&alice), "not-an-id"))
        .await
        .assert_error(400, "validation_failed");
    let anonymous = TestRequest::route("GET", "/users/{userId}", &[("userId", id(&bob))]);
    app.call(users::get_user, anonymous)
        .await
        .assert_error(401, "unauthorized");
}

#[tokio::test]
async fn many_users_come_back_in_the_order_asked_with_unknown_ids_left_out() {
    let app = TestApp::new().await;
    let carol = app.register("carol").await;
    let dave = app.register("dave").await;
    let unknown = ulid::Ulid::generate().to_string();
    let ids = format!("{},{unknown},{},{}", id(&dave), id(&carol), id(&dave));
    let response = app
        .call(
            users::batch_get,
            TestRequest::new("GET", "/users")
                .bearer(token(&carol))
                .query("ids", &ids),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.body);
    let got: Vec<&str> = response.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, [id(&dave), id(&carol)]);
    assert!(response.body["items"][0].get("passwordHash").is_none());
}

#[tokio::test]
async fn batch_reads_check_their_ids() {
    let app = TestApp::new().await;
    let erin = app.register("erin").await;
    let request = |ids: Option<&str>| {
        let request = TestRequest::new("GET", "/users").bearer(token(&erin));
        match ids {
            Some(ids) => request.query("ids", ids),
            None => request,
        }
    };
    let too_many = (0..101)
        .map(|_| ulid::Ulid::generate().to_string())
        .collect::<Vec<_>>()
        .join(",");
    let hundred = (0..100)
        .map(|_| ulid::Ulid::generate().to_string())
        .collect::<Vec<_>>()
        .join(",");
    for bad in [None, Some(""), Some(",,"), Some("abc"), Some(too_many.as_str())] {
        app.call(users::batch_get, request(bad))
            .await
            .assert_error(400, "validation_failed");
    }
    let full = app.call(users::batch_get, request(Some(&hundred))).await;
    assert_eq!(full.status, 200);
    assert_eq!(full.body["items"], json!([]));
    let anonymous = TestRequest::new("GET", "/users").query("ids", id(&erin));
    app.call(users::batch_get, anonymous)
        .await
        .assert_error(401, "unauthorized");
}

#[tokio::test]
async fn one_changes_ones_own_profile() {
    let app = TestApp::new().await;
    let frank = app.register("frank").await;
    let t = token(&frank);

    let renamed = app
        .call(
            users::update_me,
            patch_me(t, json!({ "displayName": "  Frank Zappa " })),
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    assert_eq!(renamed.body["displayName"], "Frank Zappa");
    assert_eq!(renamed.body["status"], "online");

    let away = app
        .call(
            users::update_me,
            patch_me(t, json!({ "status": "away", "statusText": "at lunch" })),
        )
        .await;
    assert_eq!(
        (away.body["status"].as_str(), away.body["statusText"].as_str()),
        (Some("away"), Some("at lunch"))
    );
    assert_eq!(away.body["displayName"], "Frank Zappa", "fields not sent are kept");

    let cleared = app
        .call(users::update_me, patch_me(t, json!({ "statusText": null })))
        .await;
    assert_eq!(cleared.status, 200);
    assert!(
        cleared.body.get("statusText").is_none(),
        "null clears: {}",
        cleared.body
    );

    let me = app
        .call(users::get_me, TestRequest::new("GET", "/users/me").bearer(t))
        .await;
    assert_eq!(me.body, cleared.body, "the change was stored");
}

#[tokio::test]
async fn bad_profile_changes_are_refused_and_change_nothing() {
    let app = TestApp::new().await;
    let grace = app.register("grace").await;
    let t = token(&grace);
    let before = app
        .call(users::get_me, TestRequest::new("GET", "/users/me").bearer(t))
        .await
        .body;
    for body in [
        json!({}),
        json!({ "status": "sleeping" }),
        json!({ "status": 3 }),
        json!({ "displayName": "" }),
        json!({ "displayName": "x".repeat(65) }),
        json!({ "displayName": "tab\tok but bell\u{7} is not" }),
        json!({ "displayName": "fine", "statusText": "y".repeat(141) }),
    ] {
        let response = app.call(users::update_me, patch_me(t, body.clone())).await;
        response.assert_error(400, "validation_failed");
    }
    let not_json = TestRequest::new("PATCH", "/users/me")
        .bearer(t)
        .header("content-type", "application/json")
        .raw_body("{displayName: x}");
    app.call(users::update_me, not_json)
        .await
        .assert_error(400, "invalid_json");
    let after = app
        .call(users::get_me, TestRequest::new("GET", "/users/me").bearer(t))
        .await
        .body;
    assert_eq!(before, after);
    app.call(
        users::update_me,
        TestRequest::new("PATCH", "/users/me").json(json!({ "status": "away" })),
    )
    .await
    .assert_error(401, "unauthorized");
}

#[tokio::test]
async fn fields_selects_top_level_fields_and_always_keeps_id() {
    let app = TestApp::new().await;
    let heidi = app.register("heidi").await;
    let t = token(&heidi);
    let selected = app
        .call(
            users::get_me,
            TestRequest::new("GET", "/users/me")
                .bearer(t)
                .query("fields", "username,status"),
        )
        .await;
    assert_eq!(
        selected.body,
        json!({ "id": id(&heidi), "username": "heidi", "status": "online" })
    );

    let many = app
        .call(
            users::batch_get,
            TestRequest::new("GET", "/users")
                .bearer(t)
                .query("ids", id(&heidi))
                .query("fields", "displayName"),
        )
        .await;
    assert_eq!(
        many.body["items"],
        json!([{ "id": id(&heidi), "displayName": "heidi" }])
    );

    for bad in ["", "a b", "user-name"] {
        let response = app
            .call(
                users::get_me,
                TestRequest::new("GET", "/users/me").bearer(t).query("fields", bad),
            )
            .await;
        response.assert_error(400, "validation_failed");
    }
}

#[tokio::test]
async fn unchanged_resources_answer_304_to_if_none_match() {
    let app = TestApp::new().await;
    let ivan = app.register("ivan").await;
    let t = token(&ivan);
    let me = || TestRequest::new("GET", "/users/me").bearer(t);
    let first = app.call(users::get_me, me()).await;
    let tag = first.headers["etag"].to_str().unwrap().to_owned();
    assert!(tag.starts_with('"') && tag.len() > 10, "{tag}");

    let again = app.call(users::get_me, me().header("if-none-match", &tag)).await;
    assert_eq!(again.status, 304);
    assert_eq!(again.body, Value::Null, "no body with a 304");
    assert_eq!(again.headers["etag"].to_str().unwrap(), tag);
    let weak = app
        .call(
            users::get_me,
            me().header("if-none-match", &format!("\"other\", W/{tag}")),
        )
        .await;
    assert_eq!(weak.status, 304, "a list, and a weak validator, still match");

    app.call(
        users::update_me,
        patch_me(t, json!({ "displayName": "Ivan the Changed" })),
    )
    .await;
    let changed = app.call(users::get_me, me().header("if-none-match", &tag)).await;
    assert_eq!(changed.status, 200, "a changed resource is sent again");
    assert_ne!(changed.headers["etag"].to_str().unwrap(), tag);
    assert_eq!(changed.body["displayName"], "Ivan the Changed");

    let patched = app
        .call(
            users::update_me,
            patch_me(t, json!({ "status": "busy" })).header("if-none-match", "*"),
        )
        .await;
    assert_eq!(patched.status, 200, "only GETs are conditional");
}
