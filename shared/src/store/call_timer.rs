//! Times every DynamoDB call attempt (an SDK interceptor, so no call site can forget): the total goes
//! into the store's [`UsageMeter`] for the per-invocation latency metric, and an attempt slower than the
//! threshold is logged with its operation and key. Only key attributes (`PK`, `SK`, index keys) are
//! ever logged, never an item's other attributes.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::interceptors::{BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use serde_json::Value;

use super::UsageMeter;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug)]
pub(crate) struct CallTimer {
    meter: UsageMeter,
    slow: Duration,
}

impl CallTimer {
    pub(crate) fn new(meter: UsageMeter, slow: Duration) -> Self {
        CallTimer { meter, slow }
    }
}

/// What an attempt carries from before its transmission to after it.
#[derive(Debug)]
struct AttemptStart {
    at: Instant,
    operation: String,
    /// A clone of the request body (a reference count, not a copy), read only if the call was slow.
    body: Option<SdkBody>,
}

impl Storable for AttemptStart {
    type Storer = StoreReplace<Self>;
}

impl Intercept for CallTimer {
    fn name(&self) -> &'static str {
        "ParleyDynamoDbCallTimer"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        let operation = request
            .headers()
            .get("x-amz-target")
            .and_then(|target| target.rsplit('.').next())
            .unwrap_or("unknown")
            .to_owned();
        cfg.interceptor_state().store_put(AttemptStart {
            at: Instant::now(),
            operation,
            body: request.body().try_clone(),
        });
        Ok(())
    }

    fn read_after_attempt(
        &self,
        _context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(start) = cfg.load::<AttemptStart>() else {
            return Ok(());
        };
        let elapsed = start.at.elapsed();
        self.meter.record_latency(elapsed);
        if elapsed >= self.slow {
            let keys = start
                .body
                .as_ref()
                .and_then(SdkBody::bytes)
                .and_then(|bytes| serde_json::from_slice::<Value>(bytes).ok())
                .map(|body| keys_of(&body))
                .unwrap_or_default();
            tracing::warn!(
                operation = %start.operation,
                durationMs = elapsed.as_secs_f64() * 1000.0,
                thresholdMs = self.slow.as_millis() as u64,
                keys = %keys,
                "slow DynamoDB call"
            );
        }
        Ok(())
    }
}

/// How many keys a batch or transaction names before the log says "and N more".
const KEYS_SHOWN: usize = 5;

/// The keys a DynamoDB request body names, as `PK=..,SK=..; ...`: `Key` of single-item calls, the key
/// attributes of a put item, the keys of batches and transactions, a query's key condition and index.
pub(crate) fn keys_of(body: &Value) -> String {
    let mut keys: Vec<String> = Vec::new();
    let mut note_key = |key: &Value| {
        if let Some(rendered) = render_key(key) {
            keys.push(rendered);
        }
    };
    if let Some(key) = body.get("Key") {
        note_key(key);
    }
    if let Some(item) = body.get("Item") {
        note_key(item);
    }
    if let Some(requests) = body.get("RequestItems").and_then(Value::as_object) {
        for request in requests.values() {
            // BatchGetItem: {Keys: [...]}; BatchWriteItem: [{PutRequest: {Item}} | {DeleteRequest: {Key}}].
            for key in request.get("Keys").and_then(Value::as_array).into_iter().flatten() {
                note_key(key);
            }
            for write in request.as_array().into_iter().flatten() {
                if let Some(key) = write
                    .pointer("/PutRequest/Item")
                    .or_else(|| write.pointer("/DeleteRequest/Key"))
                {
                    note_key(key);
                }
            }
        }
    }
    for item in body
        .get("TransactItems")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for (operation, target) in ["Put", "Update", "Delete", "ConditionCheck", "Get"]
            .iter()
            .filter_map(|op| item.get(*op).map(|t| (*op, t)))
        {
            if let Some(key) = if operation == "Put" {
                target.get("Item")
            } else {
                target.get("Key")
            } {
                note_key(key);
            }
        }
    }
    if let Some(condition) = body.get("KeyConditionExpression").and_then(Value::as_str) {
        // A query's key condition names its partition (and maybe sort) key values through placeholders.
        let values = body.get("ExpressionAttributeValues");
        let resolved: Vec<String> = condition
            .split(|c: char| !(c.is_alphanumeric() || c == ':' || c == '_'))
            .filter(|token| token.starts_with(':'))
            .filter_map(|placeholder| {
                values
                    .and_then(|v| v.get(placeholder))
                    .and_then(scalar)
                    .map(|value| format!("{placeholder}={value}"))
            })
            .collect();
        let index = body
            .get("IndexName")
            .and_then(Value::as_str)
            .map(|i| format!(" on {i}"))
            .unwrap_or_default();
        keys.push(format!("{condition}{index} [{}]", resolved.join(",")));
    }
    let total = keys.len();
    let mut shown: Vec<String> = keys.into_iter().take(KEYS_SHOWN).collect();
    if total > KEYS_SHOWN {
        shown.push(format!("and {} more", total - KEYS_SHOWN));
    }
    shown.join("; ")
}

/// The table's and the index's key attributes, the only ones a log may show.
const KEY_ATTRIBUTES: &[&str] = &["PK", "SK", "GSI1PK", "GSI1SK"];

fn render_key(item: &Value) -> Option<String> {
    let parts: Vec<String> = KEY_ATTRIBUTES
        .iter()
        .filter_map(|name| item.get(*name).and_then(scalar).map(|v| format!("{name}={v}")))
        .collect();
    (!parts.is_empty()).then(|| parts.join(","))
}

/// The value of a string or number attribute in DynamoDB JSON (`{"S": "x"}`, `{"N": "1"}`).
fn scalar(attribute: &Value) -> Option<&str> {
    attribute
        .get("S")
        .or_else(|| attribute.get("N"))
        .and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_keys_and_never_other_attributes() {
        let put = json!({"TableName": "t", "Item": {
            "PK": {"S": "CONV#1"}, "SK": {"S": "MSG#2"}, "body": {"S": "secret words"}, "seq": {"N": "7"}
        }});
        assert_eq!(keys_of(&put), "PK=CONV#1,SK=MSG#2");
        let update = json!({"Key": {"PK": {"S": "USER#u"}, "SK": {"S": "PROFILE"}},
            "ExpressionAttributeValues": {":name": {"S": "secret name"}}});
        assert_eq!(keys_of(&update), "PK=USER#u,SK=PROFILE");
    }

    #[test]
    fn batches_transactions_and_queries() {
        let transaction = json!({"TransactItems": [
            {"Put": {"Item": {"PK": {"S": "A"}, "SK": {"S": "1"}, "body": {"S": "no"}}}},
            {"Update": {"Key": {"PK": {"S": "B"}, "SK": {"S": "2"}}}},
            {"ConditionCheck": {"Key": {"PK": {"S": "C"}, "SK": {"S": "3"}}}},
        ]});
        assert_eq!(keys_of(&transaction), "PK=A,SK=1; PK=B,SK=2; PK=C,SK=3");
        let keys: Vec<Value> = (0..8)
            .map(|i| json!({"PK": {"S": format!("USER#{i}")}, "SK": {"S": "CONNS"}}))
            .collect();
        let batch = json!({"RequestItems": {"t": {"Keys": keys}}});
        let logged = keys_of(&batch);
        assert!(logged.starts_with("PK=USER#0,SK=CONNS; PK=USER#1,SK=CONNS"), "{logged}");
        assert!(logged.ends_with("and 3 more"), "{logged}");
        let query = json!({"IndexName": "GSI1", "KeyConditionExpression": "GSI1PK = :pk AND GSI1SK < :before",
            "ExpressionAttributeValues": {":pk": {"S": "USER#u"}, ":before": {"S": "2026"}, ":body": {"S": "no"}}});
        assert_eq!(
            keys_of(&query),
            "GSI1PK = :pk AND GSI1SK < :before on GSI1 [:pk=USER#u,:before=2026]"
        );
    }
}
