//! The per-user attachment quota's bookkeeping against DynamoDB Local: a reservation charges its
//! declared size with its record (all or nothing), and a removed attachment's bytes come back once
//! however often the attachments worker sees its removal.

use parley::store::{AttachmentRecord, Reservation};
use parley_tests::TestApp;

fn upload(id: &str, size: u64) -> AttachmentRecord {
    AttachmentRecord {
        id: id.to_owned(),
        conversation_id: "01JCONVERSATION0000000000".to_owned(),
        uploader_id: "01JUPLOADER00000000000000".to_owned(),
        file_name: "f.bin".to_owned(),
        content_type: "application/octet-stream".to_owned(),
        size,
        created_at: "2026-12-07T00:00:00.000Z".to_owned(),
        message_id: None,
        expires_at: None,
    }
}

#[tokio::test]
async fn reservations_charge_the_quota_and_removals_release_it_once() {
    let app = TestApp::new().await;
    let store = &app.context.store;
    let uploader = "01JUPLOADER00000000000000";
    assert_eq!(
        store.reserve_attachment(&upload("A1", 600), 1000).await.unwrap(),
        Reservation::Stored
    );
    assert_eq!(
        store.reserve_attachment(&upload("A2", 400), 1000).await.unwrap(),
        Reservation::Stored
    );
    // Over the quota: neither the charge nor the record is written.
    assert_eq!(
        store.reserve_attachment(&upload("A3", 1), 1000).await.unwrap(),
        Reservation::OverQuota
    );
    assert_eq!(app.count_items("ATTACH#A3").await, 0);
    assert_eq!(store.stored_attachment_bytes(uploader).await.unwrap(), 1000);
    // A size above the whole quota never fits.
    assert_eq!(
        store.reserve_attachment(&upload("A4", 5000), 1000).await.unwrap(),
        Reservation::OverQuota
    );

    assert!(store.release_attachment(uploader, "A1", 600).await.unwrap());
    assert!(
        !store.release_attachment(uploader, "A1", 600).await.unwrap(),
        "a replayed removal releases nothing"
    );
    assert_eq!(store.stored_attachment_bytes(uploader).await.unwrap(), 400);
    assert_eq!(
        store.reserve_attachment(&upload("A3", 600), 1000).await.unwrap(),
        Reservation::Stored
    );
}
