//! The DynamoDB stream event source mappings of tests/fixtures/streams-template.yaml, over DynamoDB Local's
//! real stream: `fixture-stream-worker` functions, each reading its own key prefix through
//! FilterCriteria, choose their outcome by each item's `behaviour`. One stack (one DynamoDB Local) serves
//! every test of this file; each test writes items under a tag of its own.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::AttributeValue;
use local_stack::{LocalStack, Options};
use serde_json::Value;

// The SQS tests' helpers; these tests use only some of them.
#[allow(dead_code)]
use crate::sqs_support::{assert_refused, eventually};

const TABLE: &str = "StreamTable";

struct Shared {
    stack: LocalStack,
    /// The stack's tasks run here, outliving each test's own runtime.
    _runtime: tokio::runtime::Runtime,
}

static SHARED: OnceLock<Shared> = OnceLock::new();

/// This test process's stack, started by the first test that asks.
async fn stack() -> &'static LocalStack {
    tokio::task::spawn_blocking(|| {
        &SHARED
            .get_or_init(|| {
                std::thread::spawn(|| {
                    let runtime = tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(2)
                        .enable_all()
                        .build()
                        .unwrap();
                    let template =
                        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/streams-template.yaml");
                    let stack = runtime
                        .block_on(LocalStack::start(Options::for_tests(template)))
                        .expect("the streams fixture stack starts");
                    Shared {
                        stack,
                        _runtime: runtime,
                    }
                })
                .join()
                .unwrap()
            })
            .stack
    })
    .await
    .unwrap()
}

async fn table(stack: &LocalStack) -> aws_sdk_dynamodb::Client {
    let sdk = dynamodb_local::sdk_config(stack.dynamodb_endpoint().expect("the stack runs DynamoDB Local")).await;
    aws_sdk_dynamodb::Client::new(&sdk)
}

/// A tag no other test uses, for the keys of one test's items.
fn tag(name: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{name}-{nanos}")
}

fn now_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()
}

async fn put(db: &aws_sdk_dynamodb::Client, pk: &str, sk: &str, behaviour: Option<&str>) {
    let mut request = db
        .put_item()
        .table_name(TABLE)
        .item("PK", AttributeValue::S(pk.to_owned()))
        .item("SK", AttributeValue::S(sk.to_owned()))
        .item("n", AttributeValue::N("1".to_owned()));
    if let Some(behaviour) = behaviour {
        request = request.item("behaviour", AttributeValue::S(behaviour.to_owned()));
    }
    request.send().await.expect("PutItem");
}

async fn idle(stack: &LocalStack) {
    tokio::time::timeout(Duration::from_secs(60), stack.streams_idle())
        .await
        .expect("the stream mappings catch up within a minute");
}

/// One record as the worker logged it.
#[derive(Debug, Clone, PartialEq)]
struct Record {
    event_name: String,
    sequence: String,
    pk: String,
    sk: String,
    new_image: Value,
    old_image: Value,
}

/// One invocation of the worker, as it logged it.
#[derive(Debug, Clone)]
struct Batch {
    records: Vec<Record>,
    at_ms: u128,
    stream_arn: String,
    event: Value,
}

impl Batch {
    fn sks(&self) -> Vec<&str> {
        self.records.iter().map(|r| r.sk.as_str()).collect()
    }
}

/// The invocations of `function` whose records have `tag` in their partition key, in order.
fn batches(stack: &LocalStack, function: &str, tag: &str) -> Vec<Batch> {
    stack
        .logs()
        .iter()
        .filter(|line| line.source == "fixture-stream-worker")
        .filter_map(|line| serde_json::from_str::<Value>(&line.text).ok())
        .filter(|doc| doc["message"] == "stream batch" && doc["function"] == function)
        .map(|doc| Batch {
            records: doc["records"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| {
                    let text = |key: &str| r[key].as_str().unwrap_or_default().to_owned();
                    Record {
                        event_name: text("eventName"),
                        sequence: text("sequenceNumber"),
                        pk: text("pk"),
                        sk: text("sk"),
                        new_image: r["newImage"].clone(),
                        old_image: r["oldImage"].clone(),
                    }
                })
                .collect(),
            at_ms: doc["atMs"].as_u64().unwrap_or_default() as u128,
            stream_arn: doc["streamArn"].as_str().unwrap_or_default().to_owned(),
            event: doc["event"].clone(),
        })
        .filter(|batch| batch.records.iter().any(|r| r.pk.contains(tag)))
        .collect()
}

fn gateway_said(stack: &LocalStack, needle: &str) -> bool {
    stack
        .logs()
        .iter()
        .any(|line| line.source == "gateway" && line.text.contains(needle))
}

/// The failure queue's invocation records about `tag`'s records, whose sequence numbers `of` lists.
fn discarded(stack: &LocalStack, queue: &str, of: &[&Record]) -> Vec<Value> {
    stack
        .queue_messages(queue)
        .iter()
        .filter_map(|body| serde_json::from_str::<Value>(body).ok())
        .filter(|record| {
            let start = record["DDBStreamBatchInfo"]["startSequenceNumber"]
                .as_str()
                .unwrap_or_default();
            of.iter().any(|r| r.sequence == start)
        })
        .collect()
}

#[tokio::test]
async fn inserts_modifies_and_removes_arrive_in_order_with_their_images_as_lambda_shapes_them() {
    let stack = stack().await;
    let db = table(stack).await;
    let tag = tag("order");
    let (first, second) = (format!("order#{tag}#1"), format!("order#{tag}#2"));
    put(&db, &first, "META", None).await;
    db.update_item()
        .table_name(TABLE)
        .key("PK", AttributeValue::S(first.clone()))
        .key("SK", AttributeValue::S("META".into()))
        .update_expression("SET n = :n")
        .expression_attribute_values(":n", AttributeValue::N("2".into()))
        .send()
        .await
        .unwrap();
    db.delete_item()
        .table_name(TABLE)
        .key("PK", AttributeValue::S(first.clone()))
        .key("SK", AttributeValue::S("META".into()))
        .send()
        .await
        .unwrap();
    put(&db, &second, "META", None).await;
    idle(stack).await;

    let batches = batches(stack, "OrderedWorkerFunction", &tag);
    let records: Vec<&Record> = batches.iter().flat_map(|b| &b.records).collect();
    let seen: Vec<(&str, &str)> = records.iter().map(|r| (r.event_name.as_str(), r.pk.as_str())).collect();
    assert_eq!(
        seen,
        [
            ("INSERT", first.as_str()),
            ("MODIFY", first.as_str()),
            ("REMOVE", first.as_str()),
            ("INSERT", second.as_str()),
        ],
        "each record once, in the order written"
    );
    let n = |image: &Value| image["n"]["N"].as_str().map(str::to_owned);
    assert_eq!(
        (n(&records[0].old_image), n(&records[0].new_image)),
        (None, Some("1".into()))
    );
    assert_eq!(
        (n(&records[1].old_image), n(&records[1].new_image)),
        (Some("1".into()), Some("2".into()))
    );
    assert_eq!(
        (n(&records[2].old_image), n(&records[2].new_image)),
        (Some("2".into()), None)
    );
    assert!(
        records.windows(2).all(|w| w[0].sequence < w[1].sequence),
        "sequence numbers rise: {records:?}"
    );

    for batch in &batches {
        let event: aws_lambda_events::event::dynamodb::Event =
            serde_json::from_value(batch.event.clone()).expect("the event parses as aws_lambda_events' DynamoDB event");
        for record in &event.records {
            assert_eq!(record.event_source.as_deref(), Some("aws:dynamodb"));
            assert_eq!(record.event_version.as_deref(), Some("1.1"));
            assert_eq!(record.aws_region, "us-east-1");
            assert!(!record.event_id.is_empty());
            assert_eq!(
                record.event_source_arn.as_deref(),
                Some(batch.stream_arn.as_str()),
                "the ARN !GetAtt StreamTable.StreamArn gives the functions"
            );
            assert!(record.change.size_bytes > 0);
            assert!(record.change.approximate_creation_date_time.timestamp() > 1_700_000_000);
            assert!(record.change.keys.get("PK").is_some() && record.change.keys.get("SK").is_some());
        }
        let raw = &batch.event["Records"][0]["dynamodb"];
        assert!(raw["ApproximateCreationDateTime"].is_number(), "epoch seconds: {raw}");
        assert_eq!(raw["StreamViewType"], "NEW_AND_OLD_IMAGES");
    }
    assert!(batches[0]
        .stream_arn
        .starts_with("arn:aws:dynamodb:us-east-1:123456789012:table/StreamTable/stream/"));
    assert!(gateway_said(
        stack,
        "event source mapping StreamTable stream -> OrderedWorkerFunction: from TRIM_HORIZON"
    ));
}

#[tokio::test]
async fn a_batching_window_gathers_records_written_apart() {
    let stack = stack().await;
    let db = table(stack).await;
    let tag = tag("window");
    let started = now_ms();
    for sk in ["a", "b", "c"] {
        put(&db, &format!("window#{tag}"), sk, None).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    idle(stack).await;
    let batches = batches(stack, "WindowedWorkerFunction", &tag);
    assert_eq!(batches.len(), 1, "one batch for the window: {batches:?}");
    assert_eq!(batches[0].sks(), ["a", "b", "c"]);
    assert!(
        batches[0].at_ms >= started + 950,
        "delivered when the one-second window ended ({} ms after the first write)",
        batches[0].at_ms - started
    );
}

#[tokio::test]
async fn records_no_filter_matches_never_reach_the_function() {
    let stack = stack().await;
    let db = table(stack).await;
    let tag = tag("filter");
    let pk = format!("filter#{tag}");
    put(&db, &pk, "META", None).await;
    put(&db, &pk, "MSG#1", None).await;
    db.update_item()
        .table_name(TABLE)
        .key("PK", AttributeValue::S(pk.clone()))
        .key("SK", AttributeValue::S("MSG#1".into()))
        .update_expression("SET n = :n")
        .expression_attribute_values(":n", AttributeValue::N("2".into()))
        .send()
        .await
        .unwrap();
    db.delete_item()
        .table_name(TABLE)
        .key("PK", AttributeValue::S(pk.clone()))
        .key("SK", AttributeValue::S("MSG#1".into()))
        .send()
        .await
        .unwrap();
    put(&db, &pk, "META#2", None).await;
    idle(stack).await;
    let records: Vec<(String, String)> = batches(stack, "FilteredWorkerFunction", &tag)
        .iter()
        .flat_map(|b| &b.records)
        .map(|r| (r.event_name.clone(), r.sk.clone()))
        .collect();
    assert_eq!(
        records,
        [
            ("INSERT".to_owned(), "META".to_owned()),
            ("REMOVE".to_owned(), "MSG#1".to_owned()),
            ("INSERT".to_owned(), "META#2".to_owned()),
        ],
        "META items by the first filter, the removal by the second, nothing else"
    );
    assert!(
        batches(stack, "OrderedWorkerFunction", &tag).is_empty(),
        "another prefix's worker sees none of it"
    );
}

#[tokio::test]
async fn a_failing_batch_is_bisected_and_retried_then_discarded_to_the_queue_and_the_shard_moves_on() {
    let stack = stack().await;
    let db = table(stack).await;
    let tag = tag("bisect");
    let pk = format!("bisect#{tag}");
    for (sk, behaviour) in [("a", None), ("b", None), ("c", Some("error")), ("d", None)] {
        put(&db, &pk, sk, behaviour).await;
    }
    idle(stack).await;
    put(&db, &pk, "e", None).await;
    idle(stack).await;

    let batches = batches(stack, "BisectWorkerFunction", &tag);
    let invocations: Vec<Vec<&str>> = batches.iter().map(Batch::sks).collect();
    assert_eq!(
        invocations,
        [
            vec!["a", "b", "c", "d"],
            vec!["a", "b"],
            vec!["c", "d"],
            vec!["c"],
            vec!["c"],
            vec!["d"],
            vec!["e"],
        ],
        "halves until the failing record is alone, then its one retry, then on"
    );
    let poison = &batches[3].records[0];
    let records = discarded(stack, "BisectFailureQueue", &[poison]);
    assert_eq!(records.len(), 1, "{records:?}");
    let record = &records[0];
    assert_eq!(record["version"], "1.0");
    assert_eq!(record["requestContext"]["condition"], "RetryAttemptsExhausted");
    assert_eq!(record["requestContext"]["approximateInvokeCount"], 4);
    assert_eq!(
        record["requestContext"]["functionArn"],
        "arn:aws:lambda:us-east-1:123456789012:function:BisectWorkerFunction"
    );
    assert_eq!(record["responseContext"]["functionError"], "Unhandled");
    assert_eq!(record["responseContext"]["statusCode"], 200);
    let info = &record["DDBStreamBatchInfo"];
    assert_eq!(info["startSequenceNumber"], poison.sequence.as_str());
    assert_eq!(info["endSequenceNumber"], poison.sequence.as_str());
    assert_eq!(info["batchSize"], 1);
    assert_eq!(info["streamArn"], batches[0].stream_arn.as_str());
    assert!(
        info["shardId"].as_str().is_some_and(|s| s.starts_with("shardId-")),
        "{info}"
    );
    for key in ["approximateArrivalOfFirstRecord", "approximateArrivalOfLastRecord"] {
        let at = info[key].as_str().unwrap_or_default();
        assert!(humantime::parse_rfc3339(at).is_ok() && at.ends_with('Z'), "{key}: {at}");
    }
    assert!(gateway_said(stack, "bisected into batches of 2 and 2"));
}

#[tokio::test]
async fn reported_item_failures_retry_from_the_lowest_then_go_to_the_queue() {
    let stack = stack().await;
    let db = table(stack).await;
    let tag = tag("partial");
    let pk = format!("partial#{tag}");
    for (sk, behaviour) in [
        ("a", None),
        ("b", Some("fail-item")),
        ("c", Some("fail-item")),
        ("d", None),
    ] {
        put(&db, &pk, sk, behaviour).await;
    }
    idle(stack).await;
    put(&db, &pk, "e", None).await;
    idle(stack).await;

    let batches = batches(stack, "PartialWorkerFunction", &tag);
    let invocations: Vec<Vec<&str>> = batches.iter().map(Batch::sks).collect();
    assert_eq!(
        invocations,
        [
            vec!["a", "b", "c", "d"],
            vec!["b", "c", "d"],
            vec!["b", "c", "d"],
            vec!["e"],
        ],
        "checkpointed before the lowest failure, retried twice from there, then on"
    );
    let (b, d) = (&batches[0].records[1], &batches[0].records[3]);
    let records = discarded(stack, "PartialFailureQueue", &[b]);
    assert_eq!(records.len(), 1, "{records:?}");
    let record = &records[0];
    assert_eq!(record["requestContext"]["condition"], "RetryAttemptsExhausted");
    assert_eq!(record["requestContext"]["approximateInvokeCount"], 3);
    assert_eq!(
        record["responseContext"]["functionError"],
        Value::Null,
        "the function itself succeeded"
    );
    let info = &record["DDBStreamBatchInfo"];
    assert_eq!(
        (
            info["startSequenceNumber"].as_str(),
            info["endSequenceNumber"].as_str(),
            info["batchSize"].as_u64()
        ),
        (Some(b.sequence.as_str()), Some(d.sequence.as_str()), Some(3))
    );
}

#[tokio::test]
async fn a_failing_function_is_retried_until_it_succeeds_and_later_records_wait_their_turn() {
    let stack = stack().await;
    let db = table(stack).await;
    let tag = tag("retry");
    let pk = format!("retry#{tag}");
    let until = now_ms() + 800;
    put(&db, &pk, "a", Some(&format!("error-until:{until}"))).await;
    put(&db, &pk, "b", None).await;
    idle(stack).await;

    let batches = batches(stack, "RetryWorkerFunction", &tag);
    let with = |sk: &str| -> Vec<usize> {
        (0..batches.len())
            .filter(|i| batches[*i].records.iter().any(|r| r.sk == sk))
            .collect()
    };
    let (with_a, with_b) = (with("a"), with("b"));
    assert!(with_a.len() >= 2, "retried: {batches:?}");
    assert!(
        batches[*with_a.last().unwrap()].at_ms >= until,
        "delivered again until the function succeeded"
    );
    for index in &with_b {
        assert!(
            with_a.contains(index) || with_a.iter().all(|a| a < index),
            "b never goes ahead of a: {batches:?}"
        );
    }
    assert!(gateway_said(stack, "RetryWorkerFunction (StreamTable stream, shardId-"));
}

#[tokio::test]
async fn a_latest_mapping_sees_what_is_written_once_the_stack_has_started() {
    let stack = stack().await;
    let db = table(stack).await;
    let tag = tag("latest");
    put(&db, &format!("latest#{tag}"), "a", None).await;
    let batches = eventually(
        "the LATEST worker's batch",
        || batches(stack, "LatestWorkerFunction", &tag),
        |batches| !batches.is_empty(),
    )
    .await;
    assert_eq!(batches[0].sks(), ["a"]);
}

#[tokio::test]
async fn stream_events_the_stack_cannot_run_are_refused() {
    let dir = std::env::temp_dir().join(format!("parley-streams-refusals-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let template = |properties: &str| {
        format!(
            "Resources:
  T:
    Type: AWS::DynamoDB::Table
    Properties:
      AttributeDefinitions: [{{AttributeName: PK, AttributeType: S}}]
      KeySchema: [{{AttributeName: PK, KeyType: HASH}}]
      StreamSpecification: {{ StreamViewType: NEW_AND_OLD_IMAGES }}
  Topic:
    Type: AWS::SNS::Topic
  W:
    Type: AWS::Serverless::Function
    Metadata: {{ BuildProperties: {{ Binary: fixture-stream-worker }} }}
    Properties:
      Events:
        Changes:
          Type: DynamoDB
          Properties:
            Stream: !GetAtt T.StreamArn
{properties}
"
        )
    };
    for (properties, expected) in [
        ("            StartingPosition: AT_TIMESTAMP", vec!["resource W", "event Changes", "AT_TIMESTAMP"]),
        (
            "            StartingPosition: LATEST\n            ParallelizationFactor: 2",
            vec!["ParallelizationFactor 2", "one batch per shard"],
        ),
        (
            "            StartingPosition: LATEST\n            BatchSize: 10001",
            vec!["BatchSize must be a whole number from 1 to 10000"],
        ),
        (
            "            StartingPosition: LATEST\n            DestinationConfig: { OnFailure: { Destination: !Ref Topic } }",
            vec!["SNS destinations are not supported"],
        ),
        (
            "            StartingPosition: LATEST\n            FilterCriteria: { Filters: [ { Pattern: '{\"a\": [{\"wildcard\": \"x*\"}]}' } ] }",
            vec!["resource W", "event Changes", "Filters[0].Pattern", "\"wildcard\" operator is not supported"],
        ),
        (
            "            StartingPosition: LATEST\n            FilterCriteria: { Filters: [ { Pattern: '{oops' } ] }",
            vec!["Filters[0].Pattern is not valid JSON"],
        ),
    ] {
        assert_refused(&dir, &template(properties), &expected).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_restart_on_kept_data_carries_on_after_the_last_record_done() {
    let dir = std::env::temp_dir().join(format!("parley-streams-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let start = || {
        let template = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/streams-template.yaml");
        let mut options = Options::for_tests(template);
        options.storage = local_stack::Storage::Directory(dir.clone());
        LocalStack::start(options)
    };
    let tag = tag("restart");
    let delivered = |stack: &LocalStack, function: &str| -> Vec<String> {
        batches(stack, function, &tag)
            .iter()
            .flat_map(|b| &b.records)
            .map(|r| r.pk.clone())
            .collect()
    };

    let first = start().await.expect("the first run starts");
    let db = table(&first).await;
    put(&db, &format!("order#{tag}#1"), "META", None).await;
    put(&db, &format!("latest#{tag}#1"), "META", None).await;
    idle(&first).await;
    assert_eq!(delivered(&first, "OrderedWorkerFunction"), [format!("order#{tag}#1")]);
    assert_eq!(delivered(&first, "LatestWorkerFunction"), [format!("latest#{tag}#1")]);
    first.stop().await;
    let kept = std::fs::read_to_string(dir.join("stream-checkpoints.json")).expect("checkpoints kept");
    assert!(kept.contains("OrderedWorkerFunction/Ordered"), "{kept}");

    let second = start().await.expect("the second run starts on the same data");
    let db = table(&second).await;
    put(&db, &format!("order#{tag}#2"), "META", None).await;
    put(&db, &format!("latest#{tag}#2"), "META", None).await;
    idle(&second).await;
    assert_eq!(
        delivered(&second, "OrderedWorkerFunction"),
        [format!("order#{tag}#2")],
        "TRIM_HORIZON went back to nothing already done"
    );
    assert_eq!(delivered(&second, "LatestWorkerFunction"), [format!("latest#{tag}#2")]);
    second.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The stream's open shards, from DynamoDB Local itself (DescribeTable, DescribeStream).
async fn open_shards(stack: &LocalStack) -> usize {
    let endpoint = stack.dynamodb_endpoint().expect("the stack runs DynamoDB Local");
    let client = reqwest::Client::new();
    let call = |target: &'static str, body: Value| {
        let request = client
            .post(endpoint)
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-target", target)
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=local/20250101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, \
                 Signature=0",
            )
            .body(body.to_string());
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let table = call(
        "DynamoDB_20120810.DescribeTable",
        serde_json::json!({ "TableName": TABLE }),
    )
    .await;
    let arn = table["Table"]["LatestStreamArn"]
        .as_str()
        .expect("the table has a stream")
        .to_owned();
    let stream = call(
        "DynamoDBStreams_20120810.DescribeStream",
        serde_json::json!({ "StreamArn": arn }),
    )
    .await;
    stream["StreamDescription"]["Shards"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|shard| shard["SequenceNumberRange"]["EndingSequenceNumber"].is_null())
        .count()
}

/// What the seven mappings cost DynamoDB Local, on a stack of their own (the other tests would be
/// traffic): (near) no call while nothing happens, at most four GetRecords a second per shard in all
/// while records are written, and each record with its worker within about a quarter of a second.
#[tokio::test]
async fn polling_costs_nothing_when_idle_and_four_reads_a_second_per_shard_under_writes() {
    let template = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/streams-template.yaml");
    let stack = LocalStack::start(Options::for_tests(template))
        .await
        .expect("the streams fixture stack starts");
    let db = table(&stack).await;
    let tag = tag("cost");
    // Every mapping past its start: a LATEST mapping has seen a record written after it started.
    put(&db, &format!("latest#{tag}"), "0", None).await;
    put(&db, &format!("order#{tag}"), "0", None).await;
    idle(&stack).await;
    let shards = open_shards(&stack).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let before = stack.stream_calls();
    let idle_for = Duration::from_secs(5);
    tokio::time::sleep(idle_for).await;
    let after_idle = stack.stream_calls();

    // One write after the quiet spell: how long until its worker has it.
    let written = now_ms();
    put(&db, &format!("order#{tag}"), "wake", None).await;
    let woken = eventually(
        "the record written after the quiet spell",
        || batches(&stack, "OrderedWorkerFunction", &tag),
        |batches| batches.iter().any(|b| b.sks().contains(&"wake")),
    )
    .await;
    let wake_ms = woken.iter().find(|b| b.sks().contains(&"wake")).unwrap().at_ms - written;

    // Records written for a while, 40 a second: the reads while they flow, and each one's delay.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let start = stack.stream_calls();
    let started = std::time::Instant::now();
    let mut written_at = Vec::new();
    let mut n = 0;
    while started.elapsed() < Duration::from_secs(5) {
        written_at.push((format!("w{n:04}"), now_ms()));
        put(&db, &format!("order#{tag}"), &format!("w{n:04}"), None).await;
        n += 1;
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let busy_for = started.elapsed();
    let end = stack.stream_calls();
    idle(&stack).await;
    let delivered = batches(&stack, "OrderedWorkerFunction", &tag);
    let mut delays: Vec<u128> = written_at
        .iter()
        .map(|(sk, at)| {
            let batch = delivered
                .iter()
                .find(|b| b.sks().contains(&sk.as_str()))
                .unwrap_or_else(|| panic!("{sk} was delivered"));
            batch.at_ms.saturating_sub(*at)
        })
        .collect();
    delays.sort_unstable();
    let idle_reads = after_idle.get_records - before.get_records;
    let idle_other = (after_idle.describe_stream + after_idle.get_shard_iterator + after_idle.describe_table)
        - (before.describe_stream + before.get_shard_iterator + before.describe_table);
    let busy_reads = end.get_records - start.get_records;
    let per_second = |calls: u64, over: Duration| calls as f64 / over.as_secs_f64();
    println!(
        "stream calls: {shards} open shard(s), 7 mappings; idle {:.2} GetRecords/s and {:.2} other calls/s over \
         {idle_for:?}; {n} writes in {busy_for:.1?}: {:.2} GetRecords/s, {:.2} DescribeStream/s, {:.2} \
         GetShardIterator/s; write to worker p50 {} ms, max {} ms; after the quiet spell {wake_ms} ms; totals {end:?}",
        per_second(idle_reads, idle_for),
        per_second(idle_other, idle_for),
        per_second(busy_reads, busy_for),
        per_second(end.describe_stream - start.describe_stream, busy_for),
        per_second(end.get_shard_iterator - start.get_shard_iterator, busy_for),
        delays[delays.len() / 2],
        delays[delays.len() - 1],
    );
    assert!(idle_reads <= 1, "{idle_reads} GetRecords in {idle_for:?} of quiet");
    assert!(
        idle_other <= 1,
        "{idle_other} other stream calls in {idle_for:?} of quiet"
    );
    let allowed = 4.0 * shards as f64 * busy_for.as_secs_f64() + 2.0;
    assert!(
        busy_reads as f64 <= allowed,
        "{busy_reads} GetRecords in {busy_for:?} on {shards} shard(s)"
    );
    assert!(wake_ms < 1_000, "the record after the quiet spell took {wake_ms} ms");
    assert!(
        delays[delays.len() / 2] < 500,
        "write to worker, median {} ms",
        delays[delays.len() / 2]
    );
    stack.stop().await;
}
