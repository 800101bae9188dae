//! The alarm responder with real SNS alarm notifications (events/alarm-responder*.json): incident
//! messages in the operators' conversation, once per notification, and no failure on bad input.

use parley::api::messages as message_routes;
use parley::ops::alarms::{self, AlarmContext, CloudWatchContext, Operators, Outcome};
use parley_tests::{TestApp, TestRequest};
use serde_json::Value;

fn sample(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../events")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn notification(event: &Value) -> alarms::AlarmNotification {
    alarms::parse(event["Records"][0]["Sns"]["Message"].as_str().unwrap()).unwrap()
}

/// CloudWatch that cannot be reached: the responder must post without its context.
async fn unreachable_cloudwatch() -> CloudWatchContext {
    let sdk = dynamodb_local::sdk_config("http://127.0.0.1:1").await;
    CloudWatchContext::new(&sdk)
}

#[test]
fn messages_read_well_for_each_kind_of_notification() {
    let firing = notification(&sample("alarm-responder.json"));
    let context = AlarmContext {
        datapoints: vec![
            ("2026-11-25T20:12:00Z".into(), 412.0),
            ("2026-11-25T20:13:00Z".into(), 389.5),
        ],
        firing: vec!["parley-prod-ChatDegradedAlarm-5ASDFGH67890".into()],
        known: true,
        unavailable: None,
    };
    let text = alarms::render(&firing, &context);
    assert!(text.starts_with("🔴 ALARM: parley-prod-ApiLatencyP95Alarm"), "{text}");
    assert!(text.contains("Why: Threshold Crossed"));
    assert!(text.contains("Metric: AWS/ApiGateway Latency GreaterThanThreshold 300"));
    assert!(
        text.contains("Recent values: 20:12:00Z 412.0, 20:13:00Z 389.5"),
        "{text}"
    );
    assert!(text.contains("Also firing: parley-prod-ChatDegradedAlarm"));

    let resolved = alarms::render(
        &notification(&sample("alarm-responder/ok.json")),
        &AlarmContext {
            known: true,
            ..Default::default()
        },
    );
    assert!(
        resolved.starts_with("✅ Resolved: parley-prod-ApiLatencyP95Alarm"),
        "{resolved}"
    );

    let composite = alarms::render(
        &notification(&sample("alarm-responder/composite.json")),
        &AlarmContext::default(),
    );
    assert!(
        composite.contains("Rule: ALARM(\"parley-prod-ApiLatencyP95Alarm"),
        "{composite}"
    );
    assert!(
        composite.contains("CloudWatch no longer knows this alarm"),
        "an unknown alarm is said to be unknown"
    );

    let record = alarms::incident(&firing, &context);
    assert_eq!(record["state"], "ALARM");
    assert_eq!(record["metric"], "Latency");
    assert_eq!(record["datapoints"][0]["value"], 412.0);
    assert!(alarms::parse("not json").is_err());
    assert!(alarms::parse(r#"{"AlarmName": 5}"#).is_err());
}

#[tokio::test]
async fn notifications_become_one_message_each_in_the_operators_conversation() {
    let app = TestApp::new().await;
    let bot = app.user("opsbot").await;
    let human = app.user("oncall").await;
    let ops = app.group(&bot, "operators", &[&human]).await;
    let operators = Operators {
        user_id: bot.id.clone(),
        conversation_id: ops.clone(),
    };
    let cloudwatch = unreachable_cloudwatch().await;

    let firing = sample("alarm-responder.json");
    let outcomes = alarms::respond(app.context, &cloudwatch, Some(&operators), &firing).await;
    assert!(matches!(outcomes.as_slice(), [Outcome::Posted { .. }]), "{outcomes:?}");
    // SNS delivers at least once: the same notification again is the same message.
    let again = alarms::respond(app.context, &cloudwatch, Some(&operators), &firing).await;
    assert_eq!(again, outcomes);
    let ok = alarms::respond(
        app.context,
        &cloudwatch,
        Some(&operators),
        &sample("alarm-responder/ok.json"),
    )
    .await;
    assert!(matches!(ok.as_slice(), [Outcome::Posted { .. }]));

    let history = app
        .call(
            message_routes::history,
            TestRequest::route(
                "GET",
                "/conversations/{conversationId}/messages",
                &[("conversationId", &ops)],
            )
            .bearer(&human.token),
        )
        .await;
    let bodies: Vec<&str> = history.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    assert!(bodies[0].starts_with("✅ Resolved"), "newest first: {bodies:?}");
    assert!(
        bodies[1].starts_with("🔴 ALARM") && bodies[1].contains("No CloudWatch context"),
        "{bodies:?}"
    );
    assert_eq!(history.body["items"][1]["senderId"], bot.id.as_str());
}

#[tokio::test]
async fn bad_notifications_are_skipped_and_never_fail() {
    let app = TestApp::new().await;
    let bot = app.user("opsbot2").await;
    let ops = app.group(&bot, "operators", &[]).await;
    let operators = Operators {
        user_id: bot.id.clone(),
        conversation_id: ops.clone(),
    };
    let cloudwatch = unreachable_cloudwatch().await;
    let before = app.count_items("MSG#").await;
    let malformed = alarms::respond(
        app.context,
        &cloudwatch,
        Some(&operators),
        &sample("alarm-responder/malformed.json"),
    )
    .await;
    assert!(matches!(malformed.as_slice(), [Outcome::Skipped(_)]), "{malformed:?}");
    let not_sns = alarms::respond(
        app.context,
        &cloudwatch,
        Some(&operators),
        &serde_json::json!({ "hello": "world" }),
    )
    .await;
    assert!(matches!(not_sns.as_slice(), [Outcome::Skipped(_)]));
    assert_eq!(app.count_items("MSG#").await, before, "nothing posted");

    // No operators' conversation configured: the incident is logged only.
    let logged = alarms::respond(app.context, &cloudwatch, None, &sample("alarm-responder.json")).await;
    assert_eq!(logged, [Outcome::Logged]);
    // An operator user that is not in the conversation: logged, not failed.
    let stranger = Operators {
        user_id: app.user("notops").await.id,
        conversation_id: ops,
    };
    let refused = alarms::respond(
        app.context,
        &cloudwatch,
        Some(&stranger),
        &sample("alarm-responder.json"),
    )
    .await;
    assert_eq!(refused, [Outcome::Logged]);
}
