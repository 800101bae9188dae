//! The gateway's SQS stand-in, driven by the real aws-sdk-sqs client, and the SQS event source mappings
//! of tests/fixtures/template.yaml: `fixture-queue-worker` (QueueWorkerFunction on WorkQueue with
//! ReportBatchItemFailures, WholeBatchWorkerFunction on WholeBatchQueue without) chooses its outcome by
//! each message's body.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_sqs::primitives::Blob;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName,
    SendMessageBatchRequestEntry,
};
use local_stack::LocalStack;

use crate::sqs_support::{assert_refused, client, eventually, start, url};
use serde_json::{json, Value};

const WORKER: &str = "QueueWorkerFunction";

/// One invocation of the fixture worker, as it logged it.
#[derive(Debug, Clone, PartialEq)]
struct Batch {
    function: String,
    /// (message id, body, ApproximateReceiveCount).
    records: Vec<(String, String, String)>,
}

impl Batch {
    fn bodies(&self) -> Vec<&str> {
        self.records.iter().map(|(_, body, _)| body.as_str()).collect()
    }
}

/// The worker's invocations whose records include a body starting with `tag`, in order.
fn batches(stack: &LocalStack, tag: &str) -> Vec<Batch> {
    stack
        .logs()
        .iter()
        .filter(|line| line.source == "fixture-queue-worker")
        .filter_map(|line| serde_json::from_str::<Value>(&line.text).ok())
        .filter(|doc| doc["message"] == "batch")
        .map(|doc| Batch {
            function: doc["function"].as_str().unwrap_or_default().to_owned(),
            records: doc["records"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| {
                    let text = |key: &str| r[key].as_str().unwrap_or_default().to_owned();
                    (text("messageId"), text("body"), text("receiveCount"))
                })
                .collect(),
        })
        .filter(|batch| batch.records.iter().any(|(_, body, _)| body.contains(tag)))
        .collect()
}

fn gateway_said(stack: &LocalStack, needle: &str) -> bool {
    stack
        .logs()
        .iter()
        .any(|line| line.source == "gateway" && line.text.contains(needle))
}

fn entry(id: &str, body: &str) -> SendMessageBatchRequestEntry {
    SendMessageBatchRequestEntry::builder()
        .id(id)
        .message_body(body)
        .build()
        .unwrap()
}

#[tokio::test]
async fn the_sdk_sends_receives_changes_visibility_and_deletes() {
    let stack = start(None).await;
    let sqs = client(&stack);
    let queue = url(&stack, "ClientQueue");
    assert_eq!(
        queue,
        format!("{}/123456789012/ClientQueue", stack.sqs_url()),
        "!Ref gives the local URL"
    );

    let found = sqs.get_queue_url().queue_name("ClientQueue").send().await.unwrap();
    assert_eq!(found.queue_url(), Some(queue.as_str()));
    let missing = sqs.get_queue_url().queue_name("NoSuchQueue").send().await.unwrap_err();
    assert!(missing.into_service_error().is_queue_does_not_exist());
    let elsewhere = sqs
        .send_message()
        .queue_url(format!("{}/123456789012/NoSuchQueue", stack.sqs_url()))
        .message_body("x")
        .send()
        .await
        .unwrap_err();
    assert!(elsewhere.into_service_error().is_queue_does_not_exist());

    let sent = sqs
        .send_message()
        .queue_url(&queue)
        .message_body("hello")
        .message_attributes(
            "kind",
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value("greeting")
                .build()
                .unwrap(),
        )
        .message_attributes(
            "blob",
            MessageAttributeValue::builder()
                .data_type("Binary")
                .binary_value(Blob::new(vec![0u8, 1, 2, 255]))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(sent.md5_of_message_body(), Some("5d41402abc4b2a76b9719d911017c592"));
    let sent_id = sent.message_id().unwrap().to_owned();
    assert_eq!(stack.queue_depth("ClientQueue"), (1, 0, 0));
    assert_eq!(stack.queue_messages("ClientQueue"), ["hello"]);

    let received = sqs
        .receive_message()
        .queue_url(&queue)
        .max_number_of_messages(10)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .send()
        .await
        .unwrap();
    let [message] = received.messages() else {
        panic!("one message: {received:?}")
    };
    assert_eq!(message.message_id(), Some(sent_id.as_str()));
    assert_eq!(message.body(), Some("hello"));
    assert_eq!(message.md5_of_body(), sent.md5_of_message_body());
    assert_eq!(message.md5_of_message_attributes(), sent.md5_of_message_attributes());
    let system = message.attributes().unwrap();
    assert_eq!(system[&MessageSystemAttributeName::ApproximateReceiveCount], "1");
    let sent_at: u64 = system[&MessageSystemAttributeName::SentTimestamp].parse().unwrap();
    assert!(sent_at > 1_700_000_000_000);
    let attributes = message.message_attributes().unwrap();
    assert_eq!(attributes["kind"].string_value(), Some("greeting"));
    assert_eq!(attributes["blob"].binary_value().unwrap().as_ref(), &[0u8, 1, 2, 255]);
    assert_eq!(stack.queue_depth("ClientQueue"), (0, 1, 0), "in flight");
    let first_handle = message.receipt_handle().unwrap().to_owned();

    let nothing = sqs.receive_message().queue_url(&queue).send().await.unwrap();
    assert!(nothing.messages().is_empty(), "an in-flight message is not handed out");

    sqs.change_message_visibility()
        .queue_url(&queue)
        .receipt_handle(&first_handle)
        .visibility_timeout(0)
        .send()
        .await
        .unwrap();
    assert_eq!(stack.queue_depth("ClientQueue"), (1, 0, 0), "visible again at once");
    let again = sqs
        .receive_message()
        .queue_url(&queue)
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .send()
        .await
        .unwrap();
    let second = &again.messages()[0];
    assert_eq!(
        second.attributes().unwrap()[&MessageSystemAttributeName::ApproximateReceiveCount],
        "2"
    );
    assert!(second.message_attributes().is_none(), "attributes only when asked for");
    let second_handle = second.receipt_handle().unwrap().to_owned();
    assert_ne!(first_handle, second_handle);

    sqs.delete_message()
        .queue_url(&queue)
        .receipt_handle(&first_handle)
        .send()
        .await
        .unwrap();
    assert_eq!(
        stack.queue_depth("ClientQueue"),
        (0, 1, 0),
        "an older receipt handle deletes nothing"
    );
    sqs.delete_message()
        .queue_url(&queue)
        .receipt_handle(&second_handle)
        .send()
        .await
        .unwrap();
    assert_eq!(stack.queue_depth("ClientQueue"), (0, 0, 0));
    let stale = sqs
        .change_message_visibility()
        .queue_url(&queue)
        .receipt_handle(&second_handle)
        .visibility_timeout(5)
        .send()
        .await
        .unwrap_err();
    assert!(stale.into_service_error().is_receipt_handle_is_invalid());
    let garbage = sqs
        .delete_message()
        .queue_url(&queue)
        .receipt_handle("not-a-receipt-handle")
        .send()
        .await
        .unwrap_err();
    assert!(garbage.into_service_error().is_receipt_handle_is_invalid());

    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&queue)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .unwrap();
    let attributes = attributes.attributes().unwrap();
    assert_eq!(
        attributes[&QueueAttributeName::QueueArn],
        "arn:aws:sqs:us-east-1:123456789012:ClientQueue"
    );
    assert_eq!(attributes[&QueueAttributeName::VisibilityTimeout], "10");
    assert_eq!(attributes[&QueueAttributeName::MaximumMessageSize], "2048");
    assert_eq!(attributes[&QueueAttributeName::ApproximateNumberOfMessages], "0");
    assert!(!attributes.contains_key(&QueueAttributeName::RedrivePolicy));
    let work = sqs
        .get_queue_attributes()
        .queue_url(url(&stack, "WorkQueue"))
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .unwrap();
    let policy: Value = serde_json::from_str(&work.attributes().unwrap()[&QueueAttributeName::RedrivePolicy]).unwrap();
    assert_eq!(
        policy,
        json!({ "deadLetterTargetArn": "arn:aws:sqs:us-east-1:123456789012:WorkDeadLetterQueue", "maxReceiveCount": 2 })
    );
    stack.stop().await;
}

#[tokio::test]
async fn batches_are_checked_as_sqs_checks_them() {
    let stack = start(None).await;
    let sqs = client(&stack);
    let queue = url(&stack, "ClientQueue");

    let batch = sqs
        .send_message_batch()
        .queue_url(&queue)
        .entries(entry("a", "first"))
        .entries(entry("b", "second"))
        .entries(
            SendMessageBatchRequestEntry::builder()
                .id("big")
                .message_body("x".repeat(2049))
                .build()
                .unwrap(),
        )
        .entries(
            SendMessageBatchRequestEntry::builder()
                .id("later")
                .message_body("third")
                .delay_seconds(1)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let ok: Vec<&str> = batch.successful().iter().map(|e| e.id()).collect();
    assert_eq!(ok, ["a", "b", "later"]);
    assert!(batch.successful().iter().all(|e| e.md5_of_message_body().len() == 32));
    let [failed] = batch.failed() else {
        panic!("one failure: {batch:?}")
    };
    assert_eq!((failed.id(), failed.sender_fault()), ("big", true));
    assert!(failed.message().unwrap().contains("2048"), "{failed:?}");
    assert_eq!(stack.queue_depth("ClientQueue"), (2, 0, 1));

    let too_many = sqs
        .send_message_batch()
        .queue_url(&queue)
        .set_entries(Some((0..11).map(|i| entry(&format!("e{i}"), "x")).collect()))
        .send()
        .await
        .unwrap_err();
    assert!(too_many.into_service_error().is_too_many_entries_in_batch_request());
    let repeated = sqs
        .send_message_batch()
        .queue_url(&queue)
        .entries(entry("same", "x"))
        .entries(entry("same", "y"))
        .send()
        .await
        .unwrap_err();
    assert!(repeated.into_service_error().is_batch_entry_ids_not_distinct());
    let empty = sqs.send_message_batch().queue_url(&queue).send().await.unwrap_err();
    assert!(empty.into_service_error().is_empty_batch_request());
    let bad_id = sqs
        .send_message_batch()
        .queue_url(&queue)
        .entries(entry("no spaces", "x"))
        .send()
        .await
        .unwrap_err();
    assert!(bad_id.into_service_error().is_invalid_batch_entry_id());
    let too_long = sqs
        .send_message()
        .queue_url(&queue)
        .message_body("x".repeat(2049))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        too_long.into_service_error().meta().code(),
        Some("InvalidParameterValue")
    );

    let received = sqs
        .receive_message()
        .queue_url(&queue)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    let mut bodies: Vec<&str> = received.messages().iter().filter_map(|m| m.body()).collect();
    bodies.sort();
    assert_eq!(bodies, ["first", "second"], "the delayed one is not there yet");
    let mut entries: Vec<DeleteMessageBatchRequestEntry> = received
        .messages()
        .iter()
        .enumerate()
        .map(|(i, m)| {
            DeleteMessageBatchRequestEntry::builder()
                .id(format!("d{i}"))
                .receipt_handle(m.receipt_handle().unwrap())
                .build()
                .unwrap()
        })
        .collect();
    entries.push(
        DeleteMessageBatchRequestEntry::builder()
            .id("bogus")
            .receipt_handle("bogus")
            .build()
            .unwrap(),
    );
    let deleted = sqs
        .delete_message_batch()
        .queue_url(&queue)
        .set_entries(Some(entries))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.successful().len(), 2);
    assert_eq!(deleted.failed()[0].id(), "bogus");
    assert_eq!(deleted.failed()[0].code(), "ReceiptHandleIsInvalid");
    assert_eq!(stack.queue_depth("ClientQueue"), (0, 0, 1));

    // A long poll returns as soon as a message arrives, not at the end of its wait.
    let poller = {
        let sqs = sqs.clone();
        let queue = queue.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let answer = sqs
                .receive_message()
                .queue_url(&queue)
                .wait_time_seconds(10)
                .send()
                .await
                .unwrap();
            (answer, started.elapsed())
        })
    };
    let (answer, waited) = poller.await.unwrap();
    assert_eq!(
        answer.messages()[0].body(),
        Some("third"),
        "the delayed message, when due"
    );
    assert!(waited < Duration::from_secs(3), "{waited:?}");

    sqs.send_message()
        .queue_url(&queue)
        .message_body("doomed")
        .send()
        .await
        .unwrap();
    sqs.purge_queue().queue_url(&queue).send().await.unwrap();
    assert_eq!(stack.queue_depth("ClientQueue"), (0, 0, 0));
    let twice = sqs.purge_queue().queue_url(&queue).send().await.unwrap_err();
    assert!(twice.into_service_error().is_purge_queue_in_progress());
    stack.stop().await;
}

#[tokio::test]
async fn delay_seconds_hide_a_message_until_then() {
    let stack = start(None).await;
    let sqs = client(&stack);
    let queue = url(&stack, "ClientQueue");
    let sent_at = Instant::now();
    sqs.send_message()
        .queue_url(&queue)
        .message_body("delayed")
        .delay_seconds(2)
        .send()
        .await
        .unwrap();
    assert_eq!(stack.queue_depth("ClientQueue"), (0, 0, 1));
    assert_eq!(stack.queue_messages("ClientQueue"), ["delayed"]);
    let early = sqs.receive_message().queue_url(&queue).send().await.unwrap();
    assert!(early.messages().is_empty());
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&queue)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .unwrap();
    assert_eq!(
        attributes.attributes().unwrap()[&QueueAttributeName::ApproximateNumberOfMessagesDelayed],
        "1"
    );
    let late = sqs
        .receive_message()
        .queue_url(&queue)
        .wait_time_seconds(5)
        .send()
        .await
        .unwrap();
    assert_eq!(late.messages()[0].body(), Some("delayed"));
    let waited = sent_at.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(4),
        "{waited:?}"
    );

    // Through the event source too: the worker gets it when the delay is over, not before.
    let sent_at = Instant::now();
    sqs.send_message()
        .queue_url(url(&stack, "WorkQueue"))
        .message_body("ok-delayed")
        .delay_seconds(1)
        .send()
        .await
        .unwrap();
    eventually(
        "the delayed message is delivered",
        || batches(&stack, "ok-delayed"),
        |b| !b.is_empty(),
    )
    .await;
    let waited = sent_at.elapsed();
    assert!(waited >= Duration::from_secs(1), "{waited:?}");
    stack.stop().await;
}

#[tokio::test]
async fn an_event_source_delivers_a_batch_and_deletes_it() {
    let stack = start(Some(Duration::from_secs(1))).await;
    let sqs = client(&stack);

    // The worker's environment, resolved from the template.
    let answer = stack.invoke(WORKER, &json!({ "Records": [] })).await.unwrap();
    assert_eq!(answer["env"]["queueUrl"], url(&stack, "WorkQueue"));
    assert_eq!(
        answer["env"]["queueArn"],
        "arn:aws:sqs:us-east-1:123456789012:WorkQueue"
    );
    assert_eq!(answer["env"]["queueName"], "WorkQueue");
    assert_eq!(answer["env"]["sqsEndpoint"], stack.sqs_url());

    let sent = sqs
        .send_message_batch()
        .queue_url(url(&stack, "WorkQueue"))
        .entries(entry("1", "ok-deliver-1"))
        .entries(entry("2", "ok-deliver-2"))
        .entries(entry("3", "ok-deliver-3"))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.successful().len(), 3);
    let delivered = eventually(
        "the batch is delivered",
        || batches(&stack, "ok-deliver"),
        |b| !b.is_empty(),
    )
    .await;
    assert_eq!(
        delivered.len(),
        1,
        "one SendMessageBatch, one invocation: {delivered:?}"
    );
    let mut bodies = delivered[0].bodies();
    bodies.sort();
    assert_eq!(bodies, ["ok-deliver-1", "ok-deliver-2", "ok-deliver-3"]);
    assert_eq!(delivered[0].function, WORKER);
    assert!(delivered[0].records.iter().all(|(_, _, count)| count == "1"));
    let sent_ids: Vec<&str> = sent.successful().iter().map(|e| e.message_id()).collect();
    assert!(delivered[0]
        .records
        .iter()
        .all(|(id, _, _)| sent_ids.contains(&id.as_str())));
    eventually(
        "the batch is deleted",
        || stack.queue_depth("WorkQueue"),
        |d| *d == (0, 0, 0),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        batches(&stack, "ok-deliver").len(),
        1,
        "a deleted batch never comes back"
    );

    // Without ReportBatchItemFailures, a successful response deletes everything, reported failures too.
    sqs.send_message()
        .queue_url(url(&stack, "WholeBatchQueue"))
        .message_body("fail-item-whole")
        .send()
        .await
        .unwrap();
    let whole = eventually(
        "the whole batch is delivered",
        || batches(&stack, "fail-item-whole"),
        |b| !b.is_empty(),
    )
    .await;
    assert_eq!(whole[0].function, "WholeBatchWorkerFunction");
    eventually(
        "and deleted",
        || stack.queue_depth("WholeBatchQueue"),
        |d| *d == (0, 0, 0),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(batches(&stack, "fail-item-whole").len(), 1);
    stack.stop().await;
}

#[tokio::test]
async fn failed_items_come_back_with_a_higher_receive_count() {
    let stack = start(Some(Duration::from_secs(1))).await;
    let sqs = client(&stack);
    let queue = url(&stack, "WorkQueue");

    sqs.send_message_batch()
        .queue_url(&queue)
        .entries(entry("1", "ok-partial-1"))
        .entries(entry("2", "fail-item-partial-2"))
        .entries(entry("3", "ok-partial-3"))
        .send()
        .await
        .unwrap();
    let seen = eventually(
        "the failed item is redelivered",
        || batches(&stack, "partial"),
        |b| b.len() >= 2,
    )
    .await;
    assert_eq!(seen[0].records.len(), 3, "{seen:?}");
    assert_eq!(
        seen[1].bodies(),
        ["fail-item-partial-2"],
        "only the reported failure comes back"
    );
    assert_eq!(seen[1].records[0].2, "2", "ApproximateReceiveCount");
    assert_eq!(
        seen[0].records.iter().find(|r| r.1 == "fail-item-partial-2").unwrap().0,
        seen[1].records[0].0
    );
    assert!(gateway_said(&stack, "1 of 3 records reported as batch item failures"));

    // A function error, a crash and an unreadable response fail their whole batch: nothing is deleted.
    for (tag, outcome) in [
        ("error-whole", "the function returned an error"),
        ("crash-whole", "exited"),
        ("bad-identifier-whole", "is not a message of the batch"),
    ] {
        stack.pause_event_sources(true);
        sqs.send_message_batch()
            .queue_url(&queue)
            .entries(entry("a", &format!("ok-{tag}")))
            .entries(entry("b", tag))
            .send()
            .await
            .unwrap();
        stack.pause_event_sources(false);
        let seen = eventually(tag, || batches(&stack, tag), |b| b.len() >= 2).await;
        assert_eq!(seen[0].records.len(), 2, "{tag}: {seen:?}");
        assert_eq!(seen[1].records.len(), 2, "{tag}: the whole batch comes back: {seen:?}");
        assert!(seen[1].records.iter().all(|r| r.2 == "2"), "{tag}: {seen:?}");
        assert!(gateway_said(&stack, outcome), "{tag}: {:#?}", stack.logs());
    }
    stack.stop().await;
}

#[tokio::test]
async fn a_message_failing_every_time_ends_in_the_dead_letter_queue() {
    let stack = start(Some(Duration::from_secs(1))).await;
    let sqs = client(&stack);
    let cloudwatch = {
        let config = aws_sdk_cloudwatch::Config::builder()
            .behavior_version(aws_sdk_cloudwatch::config::BehaviorVersion::latest())
            .region(aws_sdk_cloudwatch::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_cloudwatch::config::Credentials::new(
                "local", "local", None, None, "tests",
            ))
            .endpoint_url(stack.cloudwatch_url())
            .build();
        aws_sdk_cloudwatch::Client::from_conf(config)
    };
    let dead_letter_depth = || async {
        use aws_sdk_cloudwatch::primitives::DateTime;
        use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
        let metric = Metric::builder()
            .namespace("AWS/SQS")
            .metric_name("ApproximateNumberOfMessagesVisible")
            .dimensions(
                Dimension::builder()
                    .name("QueueName")
                    .value("WorkDeadLetterQueue")
                    .build(),
            )
            .build();
        let answer = cloudwatch
            .get_metric_data()
            .metric_data_queries(
                MetricDataQuery::builder()
                    .id("depth")
                    .metric_stat(MetricStat::builder().metric(metric).period(1).stat("Maximum").build())
                    .build(),
            )
            .start_time(DateTime::from(SystemTime::now() - Duration::from_secs(300)))
            .end_time(DateTime::from(SystemTime::now() + Duration::from_secs(60)))
            .send()
            .await
            .unwrap();
        // Newest first: the latest depth the queue published.
        answer.metric_data_results()[0].values().first().copied()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while dead_letter_depth().await.is_none() {
        assert!(
            Instant::now() < deadline,
            "the queues publish their metrics from the start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(dead_letter_depth().await, Some(0.0));

    let sent = sqs
        .send_message()
        .queue_url(url(&stack, "WorkQueue"))
        .message_body("fail-item-forever")
        .send()
        .await
        .unwrap();
    let id = sent.message_id().unwrap().to_owned();
    eventually(
        "the message reaches the dead-letter queue",
        || stack.queue_depth("WorkDeadLetterQueue"),
        |d| *d == (1, 0, 0),
    )
    .await;
    assert_eq!(stack.queue_depth("WorkQueue"), (0, 0, 0));
    assert_eq!(stack.queue_messages("WorkDeadLetterQueue"), ["fail-item-forever"]);
    let attempts = batches(&stack, "fail-item-forever");
    let counts: Vec<&str> = attempts.iter().map(|b| b.records[0].2.as_str()).collect();
    assert_eq!(
        counts,
        ["1", "2"],
        "maxReceiveCount 2: two attempts, moved on the third receive"
    );
    assert!(gateway_said(&stack, &format!("message {id} was received 2 times")));
    assert!(gateway_said(
        &stack,
        "moved to the dead-letter queue WorkDeadLetterQueue"
    ));

    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url(&stack, "WorkDeadLetterQueue"))
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap();
    assert_eq!(
        attributes.attributes().unwrap()[&QueueAttributeName::ApproximateNumberOfMessages],
        "1"
    );
    let parked = sqs
        .receive_message()
        .queue_url(url(&stack, "WorkDeadLetterQueue"))
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .unwrap();
    let message = &parked.messages()[0];
    assert_eq!(message.message_id(), Some(id.as_str()), "the message keeps its id");
    assert_eq!(
        message.attributes().unwrap()[&MessageSystemAttributeName::DeadLetterQueueSourceArn],
        "arn:aws:sqs:us-east-1:123456789012:WorkQueue"
    );

    let depth = eventually_async(dead_letter_depth, |v| *v == Some(1.0)).await;
    assert_eq!(depth, Some(1.0), "the depth metric moved");
    stack.stop().await;
}

async fn eventually_async<T, F, Fut>(mut ask: F, done: impl Fn(&T) -> bool) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
    T: std::fmt::Debug,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = ask().await;
        if done(&answer) {
            return answer;
        }
        assert!(Instant::now() < deadline, "still {answer:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn paused_event_sources_let_messages_pile_up_then_send_them_in_one_batch() {
    let stack = start(Some(Duration::from_secs(1))).await;
    let sqs = client(&stack);
    let queue = url(&stack, "WorkQueue");
    stack.pause_event_sources(true);
    for i in 0..5 {
        sqs.send_message()
            .queue_url(&queue)
            .message_body(format!("ok-paused-{i}"))
            .send()
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(stack.queue_depth("WorkQueue"), (5, 0, 0));
    assert!(batches(&stack, "ok-paused").is_empty());
    let mut piled = stack.queue_messages("WorkQueue");
    piled.sort();
    assert_eq!(piled, (0..5).map(|i| format!("ok-paused-{i}")).collect::<Vec<_>>());

    stack.pause_event_sources(false);
    let delivered = eventually(
        "the pile is delivered",
        || batches(&stack, "ok-paused"),
        |b| !b.is_empty(),
    )
    .await;
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].records.len(), 5, "{delivered:?}");
    eventually("and deleted", || stack.queue_depth("WorkQueue"), |d| *d == (0, 0, 0)).await;
    stack.stop().await;
}

#[tokio::test]
async fn a_batching_window_gathers_messages_sent_apart() {
    let stack = start(None).await;
    let sqs = client(&stack);
    let queue = url(&stack, "WindowQueue");
    let first_sent = Instant::now();
    for i in 0..3 {
        sqs.send_message()
            .queue_url(&queue)
            .message_body(format!("ok-window-{i}"))
            .send()
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let delivered = eventually("the window's batch", || batches(&stack, "ok-window"), |b| !b.is_empty()).await;
    let waited = first_sent.elapsed();
    assert_eq!(delivered[0].function, "WindowedWorkerFunction");
    assert_eq!(delivered[0].records.len(), 3, "one batch for the window: {delivered:?}");
    assert!(
        waited >= Duration::from_millis(900),
        "the window is waited out: {waited:?}"
    );
    stack.stop().await;
}

#[tokio::test]
async fn a_function_can_release_its_messages_early_with_change_message_visibility() {
    // The template's visibility timeout (10 s): without the release the message would come back later.
    let stack = start(None).await;
    let sqs = client(&stack);
    let sent_at = Instant::now();
    sqs.send_message()
        .queue_url(url(&stack, "WorkQueue"))
        .message_body("release-early")
        .send()
        .await
        .unwrap();
    let seen = eventually(
        "the released message comes back",
        || batches(&stack, "release-early"),
        |b| b.len() >= 2,
    )
    .await;
    assert_eq!(seen[1].records[0].2, "2");
    assert!(sent_at.elapsed() < Duration::from_secs(8), "{:?}", sent_at.elapsed());
    stack.stop().await;
}

#[tokio::test]
async fn queue_mistakes_in_a_template_are_clear_errors() {
    // Under the workspace's target directory, so the stack finds the fixture binaries.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("bad-queues-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let worker = |queue_properties: &str| {
        format!(
            "Resources:\n  Q:\n    Type: AWS::SQS::Queue\n    Properties: {{ {queue_properties} }}\n  F:\n    Type: \
             AWS::Serverless::Function\n    Metadata: {{ BuildProperties: {{ Binary: fixture-queue-worker }} }}\n    \
             Properties:\n      Timeout: 5\n      Events:\n        Work:\n          Type: SQS\n          Properties: \
             {{ Queue: !GetAtt Q.Arn }}\n"
        )
    };
    let cases = [
        (
            worker("ContentBasedDeduplication: true"),
            vec!["resource Q", "for FIFO queues only"],
        ),
        (
            worker("VisibilityTimeout: 2"),
            vec!["resource F", "event Work", "shorter than the function's timeout"],
        ),
    ];
    for (text, expected) in cases {
        assert_refused(&dir, &text, &expected).await;
    }
    std::fs::remove_dir_all(&dir).ok();
}
