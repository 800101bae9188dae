//! `cargo bench -p parley-tests --bench capacity`: DynamoDB calls and capacity units per send, per
//! history page and per conversation-list page, for conversations of 2, 100 and 1000 members, as
//! DynamoDB Local reports them (ReturnConsumedCapacity=TOTAL on every call).

use parley::api::{conversations, messages};
use parley::store::Usage;
use parley_tests::{TestApp, TestRequest, TestUser};
use serde_json::json;

async fn measure<F: std::future::Future<Output = u16>>(app: &TestApp, action: F) -> Usage {
    let before = app.context.store.usage();
    let status = action.await;
    assert!((200..300).contains(&status), "status {status}");
    app.context.store.usage() - before
}

async fn silent_users(app: &TestApp, count: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(count);
    for i in 0..count {
        ids.push(parley_tests::silent_user(&app.context.store, &format!("member{i}")).await);
    }
    ids
}

fn row(what: &str, members: usize, usage: Usage) {
    println!(
        "| {what} | {members} | {} | {:.1} | {:.1} |",
        usage.calls, usage.read_units, usage.write_units
    );
}

#[tokio::main]
async fn main() {
    println!("| operation | members | DynamoDB calls | read units | write units |");
    println!("|---|---|---|---|---|");
    for members in [2usize, 100, 1000] {
        let app = TestApp::new().await;
        let me: TestUser = app.user("benchowner").await;
        let pool = silent_users(&app, (members - 1).max(20)).await;
        let others = &pool[..members - 1];
        let conversation = if members == 2 {
            let other = TestUser {
                id: others[0].clone(),
                token: String::new(),
            };
            app.direct(&me, &other).await
        } else {
            let response = app
                .call(
                    conversations::create,
                    TestRequest::new("POST", "/conversations")
                        .bearer(&me.token)
                        .json(json!({ "type": "group", "name": "bench", "memberIds": others })),
                )
                .await;
            assert_eq!(response.status, 201, "{}", response.body);
            response.body["id"].as_str().unwrap().to_owned()
        };
        // Some history, and a few other conversations in the owner's list.
        for i in 0..60 {
            app.send(
                &me,
                &conversation,
                &format!("warm{i}"),
                &format!("message number {i} with a little text"),
            )
            .await;
        }
        for other in pool.iter().skip(if members == 2 { 1 } else { 0 }).take(20) {
            let other = TestUser {
                id: other.clone(),
                token: String::new(),
            };
            app.direct(&me, &other).await;
        }
        let route = [("conversationId", conversation.as_str())];
        let send = measure(&app, async {
            let request = TestRequest::route("POST", "/conversations/{conversationId}/messages", &route)
                .bearer(&me.token)
                .json(json!({ "clientMessageId": "measured", "body": "a typical chat message of a few words" }));
            app.call(messages::send, request).await.status
        })
        .await;
        row("send a message", members, send);
        let page = measure(&app, async {
            let request = TestRequest::route("GET", "/conversations/{conversationId}/messages", &route)
                .bearer(&me.token)
                .query("limit", "50");
            app.call(messages::history, request).await.status
        })
        .await;
        row("history page (50 messages)", members, page);
        let list = measure(&app, async {
            let request = TestRequest::new("GET", "/conversations")
                .bearer(&me.token)
                .query("limit", "50");
            app.call(conversations::list, request).await.status
        })
        .await;
        row("conversation list page (this conversation + 20 directs)", members, list);
    }
}
