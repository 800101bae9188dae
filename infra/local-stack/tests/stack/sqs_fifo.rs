//! The SQS stand-in's FIFO queues, driven by the real aws-sdk-sqs client, and Lambda's event source
//! mapping for FIFO queues: tests/fixtures/template.yaml's FifoWorkQueue (set up as the project's
//! DeliveryQueue) feeds `fixture-queue-worker` as FifoWorkerFunction, in batches of two, and moves what
//! failed twice to the FIFO FifoDeadLetterQueue; FifoClientQueue (content-based deduplication) is read
//! only by the tests.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry};
use local_stack::LocalStack;

use crate::sqs_support::{assert_refused, client, eventually, start, url};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
struct Record {
    body: String,
    receive_count: String,
    group: String,
    sequence: u128,
}

/// One invocation of the fixture worker, as it logged it: when it started and, if it got that far,
/// when it was done (the fixture's wall clock, in milliseconds).
#[derive(Debug, Clone, PartialEq)]
struct Batch {
    request_id: String,
    started_ms: u128,
    done_ms: Option<u128>,
    records: Vec<Record>,
}

impl Batch {
    fn bodies(&self) -> Vec<&str> {
        self.records.iter().map(|r| r.body.as_str()).collect()
    }
}

/// The worker's invocations whose records include a body containing `tag`, in the order they started.
fn batches(stack: &LocalStack, tag: &str) -> Vec<Batch> {
    let docs: Vec<Value> = stack
        .logs()
        .iter()
        .filter(|line| line.source == "fixture-queue-worker")
        .filter_map(|line| serde_json::from_str::<Value>(&line.text).ok())
        .collect();
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let millis = |v: &Value| v.as_u64().map(u128::from);
    let done: HashMap<String, u128> = docs
        .iter()
        .filter(|doc| doc["message"] == "batch done")
        .filter_map(|doc| Some((text(&doc["requestId"]), millis(&doc["atMs"])?)))
        .collect();
    let mut found: Vec<Batch> = docs
        .iter()
        .filter(|doc| doc["message"] == "batch")
        .map(|doc| Batch {
            request_id: text(&doc["requestId"]),
            started_ms: millis(&doc["atMs"]).unwrap_or_default(),
            done_ms: done.get(&text(&doc["requestId"])).copied(),
            records: doc["records"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| Record {
                    body: text(&r["body"]),
                    receive_count: text(&r["receiveCount"]),
                    group: text(&r["groupId"]),
                    sequence: r["sequenceNumber"]
                        .as_str()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or_default(),
                })
                .collect(),
        })
        .filter(|batch| batch.records.iter().any(|r| r.body.contains(tag)))
        .collect();
    found.sort_by_key(|b| b.started_ms);
    found
}

fn gateway_said(stack: &LocalStack, needle: &str) -> bool {
    stack
        .logs()
        .iter()
        .any(|line| line.source == "gateway" && line.text.contains(needle))
}

async fn send(sqs: &aws_sdk_sqs::Client, queue: &str, group: &str, dedup: &str, body: &str) -> (String, u128) {
    let sent = sqs
        .send_message()
        .queue_url(queue)
        .message_body(body)
        .message_group_id(group)
        .message_deduplication_id(dedup)
        .send()
        .await
        .unwrap();
    let sequence = sent
        .sequence_number()
        .expect("a FIFO send answers with a SequenceNumber");
    (sent.message_id().unwrap().to_owned(), sequence.parse().unwrap())
}

fn error_code<E: ProvideErrorMetadata, R>(error: SdkError<E, R>) -> String {
    error.code().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn fifo_queues_are_named_and_described_as_sqs_does() {
    let stack = start(None).await;
    let sqs = client(&stack);
    let queue = url(&stack, "FifoWorkQueue");
    assert_eq!(
        queue,
        format!("{}/123456789012/FifoWorkQueue.fifo", stack.sqs_url()),
        "CloudFormation names an unnamed FIFO queue with the .fifo suffix"
    );
    assert_eq!(stack.queue_name("FifoWorkQueue").as_deref(), Some("FifoWorkQueue.fifo"));
    assert_eq!(stack.queue_name("ClientQueue").as_deref(), Some("ClientQueue"));
    let found = sqs
        .get_queue_url()
        .queue_name("FifoClientQueue.fifo")
        .send()
        .await
        .unwrap();
    assert_eq!(found.queue_url(), Some(url(&stack, "FifoClientQueue").as_str()));

    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&queue)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .unwrap();
    let attributes = attributes.attributes().unwrap();
    assert_eq!(attributes[&QueueAttributeName::FifoQueue], "true");
    assert_eq!(attributes[&QueueAttributeName::ContentBasedDeduplication], "false");
    assert_eq!(attributes[&QueueAttributeName::DeduplicationScope], "messageGroup");
    assert_eq!(
        attributes[&QueueAttributeName::FifoThroughputLimit],
        "perMessageGroupId"
    );
    let policy: Value = serde_json::from_str(&attributes[&QueueAttributeName::RedrivePolicy]).unwrap();
    assert_eq!(
        policy["deadLetterTargetArn"],
        "arn:aws:sqs:us-east-1:123456789012:FifoDeadLetterQueue.fifo"
    );
    let client_queue = sqs
        .get_queue_attributes()
        .queue_url(url(&stack, "FifoClientQueue"))
        .attribute_names(QueueAttributeName::ContentBasedDeduplication)
        .attribute_names(QueueAttributeName::DeduplicationScope)
        .send()
        .await
        .unwrap();
    let client_queue = client_queue.attributes().unwrap();
    assert_eq!(client_queue[&QueueAttributeName::ContentBasedDeduplication], "true");
    assert_eq!(client_queue[&QueueAttributeName::DeduplicationScope], "queue");
    let standard = sqs
        .get_queue_attributes()
        .queue_url(url(&stack, "ClientQueue"))
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .unwrap();
    assert!(!standard
        .attributes()
        .unwrap()
        .contains_key(&QueueAttributeName::FifoQueue));
    stack.stop().await;
}

#[tokio::test]
async fn fifo_sends_need_a_group_and_a_deduplication_id_and_take_no_delay() {
    let stack = start(None).await;
    stack.pause_event_sources(true);
    let sqs = client(&stack);
    let queue = url(&stack, "FifoWorkQueue");

    let no_group = sqs
        .send_message()
        .queue_url(&queue)
        .message_body("ok")
        .message_deduplication_id("d")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(no_group), "MissingParameter");
    let no_dedup = sqs
        .send_message()
        .queue_url(&queue)
        .message_body("ok")
        .message_group_id("g")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error_code(no_dedup),
        "InvalidParameterValue",
        "no content-based deduplication"
    );
    let delayed = sqs
        .send_message()
        .queue_url(&queue)
        .message_body("ok")
        .message_group_id("g")
        .message_deduplication_id("d")
        .delay_seconds(5)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error_code(delayed),
        "InvalidParameterValue",
        "no per-message delay in FIFO"
    );
    let bad_group = sqs
        .send_message()
        .queue_url(&queue)
        .message_body("ok")
        .message_group_id("no spaces")
        .message_deduplication_id("d")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(bad_group), "InvalidParameterValue");
    assert_eq!(
        stack.queue_depth("FifoWorkQueue"),
        (0, 0, 0),
        "nothing refused was queued"
    );

    // SQS takes an explicit zero delay from a FIFO sender.
    sqs.send_message()
        .queue_url(&queue)
        .message_body("ok-zero-delay")
        .message_group_id("g")
        .message_deduplication_id("zero")
        .delay_seconds(0)
        .send()
        .await
        .unwrap();
    let entry = |id: &str, group: Option<&str>| {
        SendMessageBatchRequestEntry::builder()
            .id(id)
            .message_body(format!("ok-batch-{id}"))
            .set_message_group_id(group.map(str::to_owned))
            .message_deduplication_id(id)
            .build()
            .unwrap()
    };
    let batch = sqs
        .send_message_batch()
        .queue_url(&queue)
        .entries(entry("a", Some("g")))
        .entries(entry("b", None))
        .entries(entry("c", Some("g")))
        .send()
        .await
        .unwrap();
    let ok: Vec<&str> = batch.successful().iter().map(|e| e.id()).collect();
    assert_eq!(ok, ["a", "c"]);
    assert_eq!(
        (batch.failed()[0].id(), batch.failed()[0].code()),
        ("b", "MissingParameter")
    );
    let sequences: Vec<u128> = batch
        .successful()
        .iter()
        .map(|e| e.sequence_number().unwrap().parse().unwrap())
        .collect();
    assert!(sequences[0] < sequences[1], "{sequences:?}");
    assert_eq!(
        stack.queue_messages("FifoWorkQueue"),
        ["ok-zero-delay", "ok-batch-a", "ok-batch-c"]
    );

    // And a standard queue has no deduplication ids.
    let standard = sqs
        .send_message()
        .queue_url(url(&stack, "ClientQueue"))
        .message_body("x")
        .message_deduplication_id("d")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(standard), "InvalidParameterValue");
    stack.stop().await;
}

#[tokio::test]
async fn a_deduplication_id_seen_in_the_interval_is_accepted_but_not_queued_again() {
    let stack = start(None).await;
    stack.pause_event_sources(true);
    let sqs = client(&stack);

    // FifoWorkQueue: explicit ids, unique per message group.
    let queue = url(&stack, "FifoWorkQueue");
    let (first, first_sequence) = send(&sqs, &queue, "g1", "d1", "ok-dedup-first").await;
    let (again, again_sequence) = send(&sqs, &queue, "g1", "d1", "ok-dedup-again").await;
    assert_eq!(
        (again.as_str(), again_sequence),
        (first.as_str(), first_sequence),
        "answered as the first send was"
    );
    let (other_group, _) = send(&sqs, &queue, "g2", "d1", "ok-dedup-other-group").await;
    assert_ne!(other_group, first, "the scope is the message group");
    assert_eq!(
        stack.queue_messages("FifoWorkQueue"),
        ["ok-dedup-first", "ok-dedup-other-group"]
    );

    // Received and deleted, the first message still deduplicates its id for the interval.
    let received = sqs
        .receive_message()
        .queue_url(&queue)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    for message in received.messages() {
        sqs.delete_message()
            .queue_url(&queue)
            .receipt_handle(message.receipt_handle().unwrap())
            .send()
            .await
            .unwrap();
    }
    assert_eq!(stack.queue_depth("FifoWorkQueue"), (0, 0, 0));
    let (after_delete, _) = send(&sqs, &queue, "g1", "d1", "ok-dedup-after-delete").await;
    assert_eq!(after_delete, first);
    assert_eq!(stack.queue_depth("FifoWorkQueue"), (0, 0, 0));

    // FifoClientQueue: content-based, unique in the whole queue.
    let client_queue = url(&stack, "FifoClientQueue");
    let send_body = |group: &'static str, body: &'static str| {
        let sqs = sqs.clone();
        let client_queue = client_queue.clone();
        async move {
            let sent = sqs
                .send_message()
                .queue_url(&client_queue)
                .message_group_id(group)
                .message_body(body)
                .send()
                .await
                .unwrap();
            sent.message_id().unwrap().to_owned()
        }
    };
    let same = send_body("a", "same body").await;
    assert_eq!(send_body("b", "same body").await, same, "the scope is the queue");
    assert_ne!(send_body("a", "another body").await, same);
    let explicit = sqs
        .send_message()
        .queue_url(&client_queue)
        .message_group_id("a")
        .message_body("same body")
        .message_deduplication_id("explicit")
        .send()
        .await
        .unwrap();
    assert_ne!(
        explicit.message_id(),
        Some(same.as_str()),
        "an explicit id overrides the body's"
    );
    assert_eq!(
        stack.queue_messages("FifoClientQueue"),
        ["same body", "another body", "same body"]
    );
    let received = sqs
        .receive_message()
        .queue_url(&client_queue)
        .message_system_attribute_names(MessageSystemAttributeName::MessageDeduplicationId)
        .send()
        .await
        .unwrap();
    assert_eq!(
        received.messages()[0].attributes().unwrap()[&MessageSystemAttributeName::MessageDeduplicationId],
        // SHA-256 of "same body".
        "8f6372a8b1509601faa57ff3a292cfcccb95aa2325c18b8e50b0c035ea1648fe"
    );
    stack.stop().await;
}

#[tokio::test]
async fn a_receive_takes_a_group_in_order_and_none_of_it_while_a_message_is_in_flight() {
    let stack = start(None).await;
    let sqs = client(&stack);
    let queue = url(&stack, "FifoClientQueue");
    let send = |group: &'static str, body: &'static str| {
        let sqs = sqs.clone();
        let queue = queue.clone();
        async move {
            sqs.send_message()
                .queue_url(&queue)
                .message_group_id(group)
                .message_body(body)
                .send()
                .await
                .unwrap();
        }
    };
    let receive = |max: i32| {
        let sqs = sqs.clone();
        let queue = queue.clone();
        async move {
            sqs.receive_message()
                .queue_url(&queue)
                .max_number_of_messages(max)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send()
                .await
                .unwrap()
                .messages()
                .to_vec()
        }
    };
    let bodies = |messages: &[aws_sdk_sqs::types::Message]| -> Vec<String> {
        messages.iter().map(|m| m.body().unwrap().to_owned()).collect()
    };
    let delete = |message: aws_sdk_sqs::types::Message| {
        let sqs = sqs.clone();
        let queue = queue.clone();
        async move {
            sqs.delete_message()
                .queue_url(&queue)
                .receipt_handle(message.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    };
    let release = |message: &aws_sdk_sqs::types::Message| {
        let sqs = sqs.clone();
        let queue = queue.clone();
        let handle = message.receipt_handle().unwrap().to_owned();
        async move {
            sqs.change_message_visibility()
                .queue_url(&queue)
                .receipt_handle(handle)
                .visibility_timeout(0)
                .send()
                .await
                .unwrap();
        }
    };

    for body in ["one-1", "one-2", "one-3"] {
        send("one", body).await;
    }
    send("two", "two-1").await;
    let first = receive(1).await;
    assert_eq!(bodies(&first), ["one-1"]);
    let system = first[0].attributes().unwrap();
    assert_eq!(system[&MessageSystemAttributeName::MessageGroupId], "one");
    assert_eq!(system[&MessageSystemAttributeName::MessageDeduplicationId].len(), 64);
    let first_sequence: u128 = system[&MessageSystemAttributeName::SequenceNumber].parse().unwrap();
    assert_eq!(
        stack.queue_depth("FifoClientQueue"),
        (3, 1, 0),
        "held messages count as visible"
    );

    let others = receive(10).await;
    assert_eq!(bodies(&others), ["two-1"], "group one is held while one-1 is in flight");
    assert!(receive(10).await.is_empty());

    // A long poll waiting on a held group gets its next messages as soon as the holder is deleted.
    let poller = {
        let sqs = sqs.clone();
        let queue = queue.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let answer = sqs
                .receive_message()
                .queue_url(&queue)
                .max_number_of_messages(10)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .wait_time_seconds(10)
                .send()
                .await
                .unwrap();
            (answer.messages().to_vec(), started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    delete(first[0].clone()).await;
    let (rest, waited) = poller.await.unwrap();
    assert_eq!(bodies(&rest), ["one-2", "one-3"], "in send order");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    let sequences: Vec<u128> = rest
        .iter()
        .map(|m| {
            m.attributes().unwrap()[&MessageSystemAttributeName::SequenceNumber]
                .parse()
                .unwrap()
        })
        .collect();
    assert!(
        first_sequence < sequences[0] && sequences[0] < sequences[1],
        "{sequences:?}"
    );

    // Made visible again, one-2 still waits while one-3, though sent later, is in flight; and the other
    // way round.
    release(&rest[0]).await;
    assert!(receive(10).await.is_empty(), "one-3 holds its group");
    release(&rest[1]).await;
    let again = receive(10).await;
    assert_eq!(bodies(&again), ["one-2", "one-3"]);
    assert!(again
        .iter()
        .all(|m| m.attributes().unwrap()[&MessageSystemAttributeName::ApproximateReceiveCount] == "2"));
    release(&again[1]).await;
    assert!(receive(10).await.is_empty(), "one-2 holds its group");
    release(&again[0]).await;
    let again = receive(10).await;
    assert_eq!(bodies(&again), ["one-2", "one-3"]);
    for message in again.into_iter().chain(others) {
        delete(message).await;
    }
    assert_eq!(stack.queue_depth("FifoClientQueue"), (0, 0, 0));

    // One receive takes as much of one group as it can before turning to the next.
    send("three", "three-1").await;
    send("four", "four-1").await;
    send("three", "three-2").await;
    send("four", "four-2").await;
    assert_eq!(
        stack.queue_messages("FifoClientQueue"),
        ["three-1", "four-1", "three-2", "four-2"]
    );
    assert_eq!(bodies(&receive(3).await), ["three-1", "three-2", "four-1"]);
    assert_eq!(
        bodies(&receive(10).await),
        Vec::<String>::new(),
        "four-2 waits for four-1"
    );
    stack.stop().await;
}

#[tokio::test]
async fn the_event_source_runs_groups_side_by_side_and_each_group_in_order() {
    let stack = start(None).await;
    let sqs = client(&stack);
    let queue = url(&stack, "FifoWorkQueue");
    stack.pause_event_sources(true);
    for i in 0..4 {
        send(
            &sqs,
            &queue,
            "slow",
            &format!("slow-{i}"),
            &format!("sleep:300-fifo-slow-{i}"),
        )
        .await;
    }
    for i in 0..4 {
        send(&sqs, &queue, "fast", &format!("fast-{i}"), &format!("ok-fifo-fast-{i}")).await;
    }
    // Two groups of one message each: one batch takes both.
    send(&sqs, &queue, "x", "x", "ok-fifo-pair-x").await;
    send(&sqs, &queue, "y", "y", "ok-fifo-pair-y").await;
    stack.pause_event_sources(false);
    eventually(
        "every message is processed and deleted",
        || stack.queue_depth("FifoWorkQueue"),
        |d| *d == (0, 0, 0),
    )
    .await;
    let all = eventually(
        "every batch is done",
        || batches(&stack, "fifo-"),
        |b| b.iter().all(|batch| batch.done_ms.is_some()),
    )
    .await;

    for group in ["slow", "fast"] {
        let of_group: Vec<&Batch> = all
            .iter()
            .filter(|b| b.records.iter().any(|r| r.group == group))
            .collect();
        assert_eq!(of_group.len(), 2, "{group}: two batches of two: {all:#?}");
        let records: Vec<&Record> = of_group.iter().flat_map(|b| &b.records).collect();
        let bodies: Vec<&str> = records.iter().map(|r| r.body.as_str()).collect();
        let expected: Vec<String> = (0..4)
            .map(|i| match group {
                "slow" => format!("sleep:300-fifo-slow-{i}"),
                _ => format!("ok-fifo-fast-{i}"),
            })
            .collect();
        assert_eq!(bodies, expected, "{group}: in send order");
        assert!(
            records.windows(2).all(|w| w[0].sequence < w[1].sequence),
            "{group}: {records:?}"
        );
        assert!(records.iter().all(|r| r.receive_count == "1"), "{group}: {records:?}");
        assert!(
            of_group[1].started_ms >= of_group[0].done_ms.unwrap(),
            "{group}: one batch at a time: {of_group:#?}"
        );
    }
    let first_of = |group: &str| all.iter().find(|b| b.records.iter().any(|r| r.group == group)).unwrap();
    let (slow, fast) = (first_of("slow"), first_of("fast"));
    assert!(
        fast.started_ms < slow.done_ms.unwrap(),
        "the fast group does not wait for the slow one: {slow:?} {fast:?}"
    );
    let pair = all.iter().find(|b| b.bodies().contains(&"ok-fifo-pair-x")).unwrap();
    assert_eq!(
        pair.bodies(),
        ["ok-fifo-pair-x", "ok-fifo-pair-y"],
        "one batch, two groups"
    );
    assert!(
        gateway_said(&stack, "FIFO, in order within each message group"),
        "the mapping says how it batches"
    );
    stack.stop().await;
}

#[tokio::test]
async fn a_failed_message_holds_its_group_until_it_comes_back_then_goes_to_the_dead_letter_queue() {
    let stack = start(Some(Duration::from_secs(1))).await;
    let sqs = client(&stack);
    let queue = url(&stack, "FifoWorkQueue");
    let (failing, _) = send(&sqs, &queue, "held", "held-1", "fail-item-fifo-held").await;
    eventually(
        "the first attempt",
        || batches(&stack, "fail-item-fifo-held"),
        |b| !b.is_empty(),
    )
    .await;
    send(&sqs, &queue, "held", "held-2", "ok-fifo-held-after").await;
    send(&sqs, &queue, "free", "free-1", "ok-fifo-free").await;

    eventually(
        "the failing message reaches the dead-letter queue",
        || stack.queue_depth("FifoDeadLetterQueue"),
        |d| *d == (1, 0, 0),
    )
    .await;
    assert_eq!(stack.queue_messages("FifoDeadLetterQueue"), ["fail-item-fifo-held"]);
    assert!(gateway_said(
        &stack,
        "moved to the dead-letter queue FifoDeadLetterQueue.fifo"
    ));
    let attempts = batches(&stack, "fail-item-fifo-held");
    let counts: Vec<&str> = attempts.iter().map(|b| b.records[0].receive_count.as_str()).collect();
    assert_eq!(
        counts,
        ["1", "2"],
        "maxReceiveCount 2: two attempts, moved on the third receive"
    );
    let second_attempt = &attempts[1];

    let after = batches(&stack, "ok-fifo-held-after");
    assert_eq!(after.len(), 1, "processed once, then deleted: {after:#?}");
    assert!(
        after[0].started_ms >= second_attempt.started_ms,
        "the group waited for the failed message: {after:#?} {attempts:#?}"
    );
    if after[0].request_id == second_attempt.request_id {
        assert_eq!(
            after[0].bodies(),
            ["fail-item-fifo-held", "ok-fifo-held-after"],
            "behind the failed message"
        );
    }
    let free = batches(&stack, "ok-fifo-free");
    assert!(
        free[0].started_ms < second_attempt.started_ms,
        "another group is not held: {free:#?} {attempts:#?}"
    );

    // The group goes on once the failed message has moved.
    send(&sqs, &queue, "held", "held-3", "ok-fifo-held-later").await;
    eventually(
        "the group's next message",
        || batches(&stack, "ok-fifo-held-later"),
        |b| !b.is_empty(),
    )
    .await;
    eventually(
        "and deleted",
        || stack.queue_depth("FifoWorkQueue"),
        |d| *d == (0, 0, 0),
    )
    .await;

    let parked = sqs
        .receive_message()
        .queue_url(url(&stack, "FifoDeadLetterQueue"))
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .unwrap();
    let message = &parked.messages()[0];
    assert_eq!(message.message_id(), Some(failing.as_str()));
    let system = message.attributes().unwrap();
    assert_eq!(system[&MessageSystemAttributeName::MessageGroupId], "held");
    assert_eq!(system[&MessageSystemAttributeName::MessageDeduplicationId], "held-1");
    assert!(system.contains_key(&MessageSystemAttributeName::SequenceNumber));
    assert_eq!(
        system[&MessageSystemAttributeName::DeadLetterQueueSourceArn],
        "arn:aws:sqs:us-east-1:123456789012:FifoWorkQueue.fifo"
    );
    stack.stop().await;
}

#[tokio::test]
async fn fifo_mistakes_in_a_template_are_clear_errors() {
    // Under the workspace's target directory, so the stack finds the fixture binaries.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("bad-fifo-queues-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let template = |queue: &str, dead_letter: &str, event: &str| {
        format!(
            "Resources:\n  Q:\n    Type: AWS::SQS::Queue\n    Properties: {{ {queue}, RedrivePolicy: {{ \
             deadLetterTargetArn: !GetAtt D.Arn, maxReceiveCount: 2 }} }}\n  D:\n    Type: AWS::SQS::Queue\n    \
             Properties: {{ {dead_letter} }}\n  F:\n    Type: AWS::Serverless::Function\n    Metadata: {{ \
             BuildProperties: {{ Binary: fixture-queue-worker }} }}\n    Properties:\n      Timeout: 5\n      \
             Events:\n        Work:\n          Type: SQS\n          Properties: {{ Queue: !GetAtt Q.Arn{event} }}\n"
        )
    };
    let cases = [
        (
            template("FifoQueue: true", "MessageRetentionPeriod: 600", ""),
            vec![
                "resource Q",
                "a FIFO queue must be a FIFO queue too, and D is a standard queue",
            ],
        ),
        (
            template("VisibilityTimeout: 30", "FifoQueue: true", ""),
            vec![
                "resource Q",
                "a standard queue must be a standard queue too, and D is a FIFO queue",
            ],
        ),
        (
            template(
                "FifoQueue: true",
                "FifoQueue: true",
                ", MaximumBatchingWindowInSeconds: 5",
            ),
            vec!["resource F", "event Work", "no batching window for FIFO queues"],
        ),
    ];
    for (text, expected) in cases {
        assert_refused(&dir, &text, &expected).await;
    }
    std::fs::remove_dir_all(&dir).ok();
}
