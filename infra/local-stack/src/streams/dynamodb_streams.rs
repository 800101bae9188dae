//! The few calls of the DynamoDB Streams API that an event source mapping makes (DescribeStream,
//! GetShardIterator, GetRecords) and the DescribeTable that finds the stream, spoken as the AWS JSON 1.0
//! protocol to DynamoDB Local, which serves both APIs on its one endpoint. The records stay JSON: they
//! are nearly the shape Lambda hands the function.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE};
use hyper::Request;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

/// GetRecords' own limit on records per call.
pub const MAX_RECORDS_PER_CALL: usize = 1_000;

/// DynamoDB Local answers in milliseconds; a call that takes this long has gone wrong.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// DynamoDB Local wants a SigV4-shaped Authorization header naming an access key; it checks no signature.
const AUTHORIZATION_VALUE: &str =
    "AWS4-HMAC-SHA256 Credential=local/20250101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The iterator is older than the 15 minutes an iterator lives.
    ExpiredIterator,
    /// The position is before the oldest record the stream keeps.
    TrimmedData,
    /// The stream or shard is gone.
    NotFound(String),
    /// Anything else: a refused call, or DynamoDB Local unreachable.
    Other(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::ExpiredIterator => write!(f, "the shard iterator expired"),
            CallError::TrimmedData => write!(f, "the records at that position were trimmed from the stream"),
            CallError::NotFound(what) => write!(f, "not found: {what}"),
            CallError::Other(what) => write!(f, "{what}"),
        }
    }
}

/// One shard as DescribeStream lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    pub id: String,
    pub parent: Option<String>,
    /// A closed shard takes no more records (it has an ending sequence number).
    pub closed: bool,
}

/// Where GetShardIterator points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    TrimHorizon,
    Latest,
    After(String),
    At(String),
}

/// How many calls of each kind the stack has made to DynamoDB Local's streams API (and the DescribeTable
/// that finds the stream): what the local stand-ins cost DynamoDB Local.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StreamCalls {
    pub describe_table: u64,
    pub describe_stream: u64,
    pub get_shard_iterator: u64,
    pub get_records: u64,
}

#[derive(Default)]
struct Counters {
    describe_table: AtomicU64,
    describe_stream: AtomicU64,
    get_shard_iterator: AtomicU64,
    get_records: AtomicU64,
}

pub struct Records {
    pub records: Vec<Value>,
    /// None: the shard is closed and every record of it has been read.
    pub next_iterator: Option<String>,
}

pub struct StreamsApi {
    endpoint: String,
    client: Client<HttpConnector, Full<Bytes>>,
    counters: Counters,
}

impl StreamsApi {
    pub fn new(endpoint: &str) -> Self {
        StreamsApi {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            client: Client::builder(TokioExecutor::new()).build_http(),
            counters: Counters::default(),
        }
    }

    /// The calls made so far.
    pub fn calls(&self) -> StreamCalls {
        let c = &self.counters;
        StreamCalls {
            describe_table: c.describe_table.load(Ordering::Relaxed),
            describe_stream: c.describe_stream.load(Ordering::Relaxed),
            get_shard_iterator: c.get_shard_iterator.load(Ordering::Relaxed),
            get_records: c.get_records.load(Ordering::Relaxed),
        }
    }

    async fn call(&self, target: &str, body: Value) -> Result<Value, CallError> {
        let counter = match target.rsplit('.').next() {
            Some("DescribeTable") => &self.counters.describe_table,
            Some("DescribeStream") => &self.counters.describe_stream,
            Some("GetShardIterator") => &self.counters.get_shard_iterator,
            _ => &self.counters.get_records,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let request = Request::post(format!("{}/", self.endpoint))
            .header(CONTENT_TYPE, "application/x-amz-json-1.0")
            .header("x-amz-target", target)
            .header(AUTHORIZATION, AUTHORIZATION_VALUE)
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| CallError::Other(e.to_string()))?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| CallError::Other(format!("DynamoDB Local is unreachable: {e}")))?;
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| CallError::Other(format!("reading DynamoDB Local's answer: {e}")))?
                .to_bytes();
            Ok::<_, CallError>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(CALL_TIMEOUT, exchange)
            .await
            .map_err(|_| CallError::Other(format!("{target} took over {CALL_TIMEOUT:?}")))??;
        let answer: Value = serde_json::from_slice(&bytes)
            .map_err(|_| CallError::Other(format!("{target}: DynamoDB Local answered {status} with no JSON")))?;
        if status.is_success() {
            return Ok(answer);
        }
        let kind = answer["__type"].as_str().unwrap_or_default();
        let kind = kind.rsplit('#').next().unwrap_or(kind);
        let message = answer["Message"]
            .as_str()
            .or(answer["message"].as_str())
            .unwrap_or_default()
            .to_owned();
        Err(match kind {
            "ExpiredIteratorException" => CallError::ExpiredIterator,
            "TrimmedDataAccessException" => CallError::TrimmedData,
            "ResourceNotFoundException" => CallError::NotFound(message),
            _ => CallError::Other(format!("{target}: {kind}: {message}")),
        })
    }

    /// The ARN DynamoDB Local gave the table's current stream, and its label (the creation time).
    pub async fn latest_stream(&self, table: &str) -> Result<(String, String), CallError> {
        let answer = self
            .call("DynamoDB_20120810.DescribeTable", json!({ "TableName": table }))
            .await?;
        let table = &answer["Table"];
        match (table["LatestStreamArn"].as_str(), table["LatestStreamLabel"].as_str()) {
            (Some(arn), Some(label)) => Ok((arn.to_owned(), label.to_owned())),
            _ => Err(CallError::NotFound(format!(
                "the table has no stream (StreamSpecification): {answer}"
            ))),
        }
    }

    /// Every shard of the stream, parents before children as DynamoDB lists them.
    pub async fn shards(&self, stream_arn: &str) -> Result<Vec<Shard>, CallError> {
        let mut shards = Vec::new();
        let mut start: Option<String> = None;
        loop {
            let mut request = json!({ "StreamArn": stream_arn });
            if let Some(start) = &start {
                request["ExclusiveStartShardId"] = json!(start);
            }
            let answer = self.call("DynamoDBStreams_20120810.DescribeStream", request).await?;
            let description = &answer["StreamDescription"];
            for shard in description["Shards"].as_array().into_iter().flatten() {
                let Some(id) = shard["ShardId"].as_str() else { continue };
                shards.push(Shard {
                    id: id.to_owned(),
                    parent: shard["ParentShardId"].as_str().map(str::to_owned),
                    closed: shard["SequenceNumberRange"]["EndingSequenceNumber"].is_string(),
                });
            }
            match description["LastEvaluatedShardId"].as_str() {
                Some(last) => start = Some(last.to_owned()),
                None => return Ok(shards),
            }
        }
    }

    pub async fn iterator(&self, stream_arn: &str, shard: &str, position: &Position) -> Result<String, CallError> {
        let mut request = json!({ "StreamArn": stream_arn, "ShardId": shard });
        match position {
            Position::TrimHorizon => request["ShardIteratorType"] = json!("TRIM_HORIZON"),
            Position::Latest => request["ShardIteratorType"] = json!("LATEST"),
            Position::After(sequence) => {
                request["ShardIteratorType"] = json!("AFTER_SEQUENCE_NUMBER");
                request["SequenceNumber"] = json!(sequence);
            }
            Position::At(sequence) => {
                request["ShardIteratorType"] = json!("AT_SEQUENCE_NUMBER");
                request["SequenceNumber"] = json!(sequence);
            }
        }
        let answer = self.call("DynamoDBStreams_20120810.GetShardIterator", request).await?;
        answer["ShardIterator"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| CallError::Other(format!("GetShardIterator answered no iterator: {answer}")))
    }

    pub async fn records(&self, iterator: &str, limit: usize) -> Result<Records, CallError> {
        let limit = limit.clamp(1, MAX_RECORDS_PER_CALL);
        let answer = self
            .call(
                "DynamoDBStreams_20120810.GetRecords",
                json!({ "ShardIterator": iterator, "Limit": limit }),
            )
            .await?;
        let mut records = match &answer["Records"] {
            Value::Array(records) => records.clone(),
            _ => Vec::new(),
        };
        for record in &mut records {
            for image in ["/dynamodb/Keys", "/dynamodb/NewImage", "/dynamodb/OldImage"] {
                if let Some(Value::Object(attributes)) = record.pointer_mut(image) {
                    attributes.values_mut().for_each(restore_empty_maps);
                }
            }
        }
        Ok(Records {
            records,
            next_iterator: answer["NextShardIterator"].as_str().map(str::to_owned),
        })
    }
}

/// DynamoDB Local's stream writes an empty map attribute as `{}` where DynamoDB (and its own GetItem)
/// writes `{"M": {}}`, and an attribute value without its type is unreadable to Lambda's event types:
/// the record is given its type back, at any depth.
fn restore_empty_maps(value: &mut Value) {
    let Value::Object(typed) = value else {
        return;
    };
    if typed.is_empty() {
        typed.insert("M".to_owned(), Value::Object(serde_json::Map::new()));
        return;
    }
    match typed.get_mut("M") {
        Some(Value::Object(fields)) => fields.values_mut().for_each(restore_empty_maps),
        _ => {
            if let Some(Value::Array(items)) = typed.get_mut("L") {
                items.iter_mut().for_each(restore_empty_maps);
            }
        }
    }
}

#[cfg(test)]
mod empty_map_tests {
    use super::*;

    #[test]
    fn an_untyped_empty_map_gets_its_type_back_at_any_depth() {
        let mut value = json!({ "M": { "reactions": {}, "list": { "L": [{}, { "S": "x" }] }, "kept": { "M": {} } } });
        restore_empty_maps(&mut value);
        assert_eq!(
            value,
            json!({ "M": { "reactions": { "M": {} }, "list": { "L": [{ "M": {} }, { "S": "x" }] }, "kept": { "M": {} } } })
        );
        let mut top = json!({});
        restore_empty_maps(&mut top);
        assert_eq!(top, json!({ "M": {} }));
    }
}
