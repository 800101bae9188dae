//! A ban that lands between an add's check of the bans and its write: the write itself checks each
//! new member's ban in its transaction, so the banned user is not let in (and nobody else of that add
//! is). Raced deterministically here: the ban is written straight to the store, and the store's add
//! is called as the domain calls it after its own check.

use parley::store::{BanRecord, MemberRecord};
use parley_tests::TestApp;

async fn race(members: usize) {
    let app = TestApp::new().await;
    let owner = app.user("owner").await;
    let group = app.group(&owner, "raced", &[]).await;
    let conversation = app.context.store.get_conversation(&group).await.unwrap().unwrap();
    let now = parley::time::rfc3339(parley::time::now());
    let newcomers: Vec<MemberRecord> = (0..members)
        .map(|_| {
            MemberRecord::new(
                &conversation,
                &ulid::Ulid::generate().to_string(),
                parley::kinds::MemberRole::Member,
                &now,
            )
        })
        .collect();
    let banned = newcomers.last().unwrap().user_id.clone();
    let ban = BanRecord {
        user_id: banned.clone(),
        banned_by: owner.id.clone(),
        reason: None,
        created_at: now.clone(),
    };
    assert!(app.context.store.put_ban(&group, &ban).await.unwrap());
    let outcome = app.context.store.add_members(&group, &newcomers, 1000, &now).await;
    let error = outcome.expect_err("the add fails on the ban");
    assert_eq!(error.status(), 403, "{error}");
    let ids: Vec<String> = newcomers.iter().map(|m| m.user_id.clone()).collect();
    let written = app.context.store.members_of(&group, &ids).await.unwrap();
    let after = app.context.store.get_conversation(&group).await.unwrap().unwrap();
    assert!(
        written.iter().all(|m| !after.admits(m)),
        "nobody of the add is a member: {} items admitted",
        written.iter().filter(|m| after.admits(m)).count()
    );
    assert_eq!(after.member_count, 1);
}

#[tokio::test]
async fn a_small_add_racing_a_ban_lets_nobody_in() {
    race(3).await;
}

#[tokio::test]
async fn a_large_add_racing_a_ban_lets_nobody_in() {
    race(120).await;
}
