//! A post answered 410 removes the connection's records only when it was recorded long enough ago
//! that its `$connect` cannot still be running: API Gateway answers 410 for a connection whose
//! `$connect` has written its records but not yet returned, and removing them then left the socket
//! that opened a moment later without any event (seen as a flaky `e2e_sessions` run).

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use parley::realtime::fanout::CONNECT_GRACE;
use parley::store::ConnectionRecord;
use parley::time::{now, rfc3339};
use parley_tests::TestApp;

fn record(id: &str, connected_ago: Duration) -> ConnectionRecord {
    ConnectionRecord {
        connection_id: id.to_owned(),
        user_id: "u-gone".to_owned(),
        connected_at: rfc3339(now() - connected_ago),
        expires_at: 4_000_000_000,
        session_id: None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_410_removes_an_old_connection_but_not_one_whose_connect_may_still_be_running() {
    let app = TestApp::new().await;
    let store = &app.context.store;
    for connection in [
        record("connecting", Duration::ZERO),
        record("old", Duration::from_secs(120)),
    ] {
        assert!(store.put_connection(&connection, 20).await.unwrap());
    }
    let connected_before = rfc3339(now() - CONNECT_GRACE);
    assert!(!store
        .remove_gone_connection("u-gone", "connecting", &connected_before)
        .await
        .unwrap());
    assert!(store
        .remove_gone_connection("u-gone", "old", &connected_before)
        .await
        .unwrap());
    let left: Vec<(String, bool)> = store
        .user_connections("u-gone")
        .await
        .unwrap()
        .into_iter()
        .map(|(id, record)| (id, record.is_some()))
        .collect();
    assert_eq!(
        left,
        [("connecting".to_owned(), true)],
        "the connecting one keeps its item and set entry"
    );

    // An id whose item is already gone is taken out of the set, whatever its age.
    store.remove_connection("u-gone", "connecting").await.unwrap();
    assert!(store
        .put_connection(&record("again", Duration::ZERO), 20)
        .await
        .unwrap());
    app.client
        .delete_item()
        .table_name(&app.table)
        .key("PK", AttributeValue::S("CONN#again".to_owned()))
        .key("SK", AttributeValue::S("CONN".to_owned()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        store.user_connections("u-gone").await.unwrap(),
        [("again".to_owned(), None)]
    );
    assert!(store
        .remove_gone_connection("u-gone", "again", &connected_before)
        .await
        .unwrap());
    assert!(store.user_connections("u-gone").await.unwrap().is_empty());
}
