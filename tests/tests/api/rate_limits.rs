//! The rate limiter against DynamoDB Local (see `parley::rate_limit`): containers that share one table
//! refuse within the stated bound, never before the limit; read requests below the batch size write
//! nothing; the exact limits cost one conditional write per admitted request.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parley::rate_limit::{max_batch, worst_case_admitted, Allowances, Limit};
use parley::ApiError;
use parley_tests::{TestApp, TestRequest};

/// A time in the middle of the current hour, so no window rolls over during a test.
fn mid_window() -> u64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    now - now % 3600 + 1800
}

fn hourly(subject: &str, max_requests: u64) -> Limit {
    Limit {
        subject: subject.to_owned(),
        window_secs: 3600,
        max_requests,
        exact: false,
        what: "requests",
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}{}", ulid::Ulid::generate())
}

async fn admitted(container: &Allowances, app: &TestApp, limit: &Limit, now: u64) -> bool {
    match container.admit(&app.context.store, limit, now).await {
        Ok(()) => true,
        Err(ApiError::RateLimited { retry_after_secs, .. }) => {
            assert_eq!(retry_after_secs, 1800);
            false
        }
        Err(other) => panic!("the counter answers: {other:?}"),
    }
}

/// The shared counter as the table holds it.
async fn counter_hits(app: &TestApp, limit: &Limit, now: u64) -> u64 {
    app.context
        .store
        .rate_hits(&limit.subject, now - now % limit.window_secs)
        .await
        .expect("the counter reads")
}

/// Two containers (two allowances on one table) take turns in bursts; returns how many they admitted
/// before both had refused ten times in a row.
async fn two_containers(app: &TestApp, limit: &Limit, now: u64) -> u64 {
    let fleet = [Allowances::new(), Allowances::new()];
    let (mut total, mut refusals_in_a_row, mut turn) = (0, 0, 0usize);
    // Bursts of 1, 4, 7, ... requests, so the containers' knowledge goes stale unevenly.
    while refusals_in_a_row < 20 {
        let container = &fleet[turn % 2];
        for _ in 0..1 + 3 * (turn % 5) {
            if admitted(container, app, limit, now).await {
                total += 1;
                refusals_in_a_row = 0;
            } else {
                assert!(
                    total >= limit.max_requests,
                    "refused at {total} of {}",
                    limit.max_requests
                );
                refusals_in_a_row += 1;
            }
        }
        turn += 1;
    }
    total
}

#[tokio::test]
async fn two_containers_sharing_a_table_refuse_within_the_bound() {
    let app = TestApp::new().await;
    let now = mid_window();

    // Batched: at most one batch (10 at 1,000) over the limit per other container.
    let limit = hourly(&unique("user#"), 1_000);
    let before = app.context.store.usage();
    let total = two_containers(&app, &limit, now).await;
    let used = app.context.store.usage() - before;
    let bound = worst_case_admitted(limit.max_requests, 2, false);
    assert_eq!(bound, 1_000 + max_batch(1_000));
    assert!((1_000..=bound).contains(&total), "admitted {total}, bound {bound}");
    let hits = counter_hits(&app, &limit, now).await;
    assert!(
        hits <= total && total - hits < 2 * max_batch(1_000),
        "the counter holds all but the containers' pending: {hits} of {total}"
    );
    // About one write per batch of 10 far from the limit; no reads.
    assert!(used.write_units <= 200.0, "{used:?}");
    println!(
        "two containers, limit 1,000: admitted {total}; {} calls, {:.1} RCU, {:.1} WCU",
        used.calls, used.read_units, used.write_units
    );

    // Under 200 every admission is a conditional write: exact across containers.
    let small = hourly(&unique("user#"), 40);
    assert_eq!(two_containers(&app, &small, now).await, 40);
    assert_eq!(counter_hits(&app, &small, now).await, 40);

    // So is the sign-in routes' per-minute limit, at any size.
    let sensitive = Limit {
        subject: unique("sensitive#"),
        window_secs: 60,
        max_requests: 500,
        exact: true,
        what: "requests",
    };
    let minute_now = now - now % 60 + 30;
    let fleet = [Allowances::new(), Allowances::new()];
    let before = app.context.store.usage();
    let mut total = 0;
    for n in 0..520 {
        if fleet[n % 2]
            .admit(&app.context.store, &sensitive, minute_now)
            .await
            .is_ok()
        {
            total += 1;
        }
    }
    let used = app.context.store.usage() - before;
    assert_eq!(total, 500);
    assert_eq!(counter_hits(&app, &sensitive, minute_now).await, 500);
    // One UpdateItem per admitted attempt (the store's meter records no call for a failed condition:
    // one per container that did not make the 500th, after which it refuses without a call).
    assert_eq!(used.calls, 500, "{used:?}");
    assert_eq!(used.write_units, 500.0, "{used:?}");
}

#[tokio::test]
async fn read_requests_below_the_batch_size_write_nothing() {
    // The hour must not roll over in the middle.
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    if now % 3600 > 3540 {
        tokio::time::sleep(Duration::from_secs(3600 - now % 3600 + 1)).await;
    }
    let app = TestApp::new().await;
    let user = app.user("quietreader").await;
    let me = || TestRequest::new("GET", "/users/me").bearer(&user.token);
    // The default 10,000 an hour: batches of 100.
    let batch = max_batch(app.context.config.rate_limits.user_per_hour);
    assert_eq!(batch, 100);

    let before = app.context.store.usage();
    for _ in 1..batch {
        let answer = app.call(parley::api::users::get_me, me()).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    let reads = app.context.store.usage() - before;
    assert_eq!(reads.write_units, 0.0, "99 reads write nothing: {reads:?}");
    let limit = hourly(&format!("user#{}", user.id), 10_000);
    let now = parley::time::epoch_secs(SystemTime::now());
    assert_eq!(counter_hits(&app, &limit, now).await, 0, "nothing added yet");

    // The hundredth adds the batch: one UpdateItem, 1 WCU, for 100 requests.
    let before = app.context.store.usage();
    assert_eq!(app.call(parley::api::users::get_me, me()).await.status, 200);
    let crossing = app.context.store.usage() - before;
    assert_eq!(crossing.write_units, 1.0, "{crossing:?}");
    assert_eq!(counter_hits(&app, &limit, now).await, 100);
    println!(
        "{} reads: 0 WCU, then one write of {:.1} WCU; {:.3} WCU per request",
        batch - 1,
        crossing.write_units,
        crossing.write_units / batch as f64
    );
}
