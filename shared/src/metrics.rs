//! Metrics as CloudWatch Embedded Metric Format lines on stdout: CloudWatch Logs turns them into metrics
//! with no PutMetricData call on the request path, and the local stack reads them from the functions'
//! output.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use crate::cache::CacheStats;
use crate::store::Usage;

pub const NAMESPACE: &str = "Parley";

static COLD: AtomicBool = AtomicBool::new(true);

fn function_name() -> String {
    std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "local".to_owned())
}

/// One EMF document: `metrics` as (name, unit, value), `dimensions` as (name, value), and extra
/// properties that are searchable in Logs Insights but are not metrics. Each metric is published under
/// every leading run of the dimensions: `[Function, Route]` gives per route, per function (what
/// `/admin/metrics` reads) and the service-wide totals (what the alarms read).
pub fn document(dimensions: &[(&str, &str)], metrics: &[(&str, &str, f64)], properties: &[(&str, Value)]) -> Value {
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as u64;
    let mut root = Map::new();
    root.insert(
        "_aws".to_owned(),
        json!({
            "Timestamp": timestamp,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": (0..=dimensions.len())
                    .rev()
                    .map(|n| dimensions[..n].iter().map(|(name, _)| *name).collect::<Vec<_>>())
                    .collect::<Vec<_>>(),
                "Metrics": metrics.iter().map(|(name, unit, _)| json!({ "Name": name, "Unit": unit })).collect::<Vec<_>>(),
            }],
        }),
    );
    for (name, value) in dimensions {
        root.insert((*name).to_owned(), json!(value));
    }
    for (name, _, value) in metrics {
        root.insert((*name).to_owned(), json!(value));
    }
    for (name, value) in properties {
        root.insert((*name).to_owned(), value.clone());
    }
    Value::Object(root)
}

/// What one invocation did, as the edge measured it.
pub struct Invocation<'a> {
    pub route: &'a str,
    pub status: u16,
    pub elapsed: Duration,
    pub usage: Usage,
    pub cache: CacheStats,
    pub error_code: Option<&'a str>,
    pub request_id: &'a str,
}

/// Per invocation: latency, cold start, status class, DynamoDB calls, capacity and latency, cache hits.
pub fn invocation(invocation: &Invocation<'_>) {
    let Invocation {
        route,
        status,
        elapsed,
        usage,
        cache,
        error_code,
        request_id,
    } = *invocation;
    let cold = COLD.swap(false, Ordering::SeqCst);
    let function = function_name();
    let line = document(
        &[("Function", &function), ("Route", route)],
        &[
            ("Latency", "Milliseconds", elapsed.as_secs_f64() * 1000.0),
            ("ColdStart", "Count", if cold { 1.0 } else { 0.0 }),
            (
                "Errors4xx",
                "Count",
                if (400..500).contains(&status) { 1.0 } else { 0.0 },
            ),
            ("Errors5xx", "Count", if status >= 500 { 1.0 } else { 0.0 }),
            ("DynamoDBCalls", "Count", usage.calls as f64),
            ("ReadCapacityUnits", "Count", usage.read_units),
            ("WriteCapacityUnits", "Count", usage.write_units),
            ("DynamoDBLatency", "Milliseconds", usage.latency.as_secs_f64() * 1000.0),
            ("CacheHits", "Count", cache.hits as f64),
            ("CacheMisses", "Count", cache.misses as f64),
        ],
        &[
            ("statusCode", json!(status)),
            ("errorCode", json!(error_code)),
            ("requestId", json!(request_id)),
        ],
    );
    println!("{line}");
    if let Some(code) = error_code {
        // Errors by API error code, as their own series: which refusals surge is what an operator asks first.
        println!(
            "{}",
            document(
                &[("Function", &function), ("ErrorCode", code)],
                &[("Errors", "Count", 1.0)],
                &[("requestId", json!(request_id))],
            )
        );
    }
}

/// What one fan-out did: members reached for, their connections, and the posts delivered, gone (410)
/// or failed. Defined here, where it is reported, so that metrics depend on no layer above them
/// (`realtime` re-exports it).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub members: usize,
    pub connections: usize,
    pub delivered: usize,
    pub gone: usize,
    pub failed: usize,
}

/// Per fan-out: how many connections, delivered, gone (410) and failed posts.
pub fn fanout(delivery: &Delivery) {
    let function = function_name();
    let line = document(
        &[("Function", &function)],
        &[
            ("FanoutMembers", "Count", delivery.members as f64),
            ("FanoutConnections", "Count", delivery.connections as f64),
            (
                "FanoutPosts",
                "Count",
                (delivery.delivered + delivery.gone + delivery.failed) as f64,
            ),
            ("FanoutDelivered", "Count", delivery.delivered as f64),
            ("StaleConnections", "Count", delivery.gone as f64),
            ("FanoutFailures", "Count", delivery.failed as f64),
        ],
        &[],
    );
    println!("{line}");
}

/// One count of something that happened (per function and in total), e.g. `DeliveriesParked`.
pub fn count(metric: &str, value: f64) {
    let function = function_name();
    let line = document(&[("Function", &function)], &[(metric, "Count", value)], &[]);
    println!("{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_follow_the_embedded_metric_format() {
        let doc = document(
            &[("Function", "f"), ("Route", "GET /x")],
            &[("Latency", "Milliseconds", 12.5)],
            &[("requestId", json!("r"))],
        );
        let spec = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(spec["Namespace"], NAMESPACE);
        assert_eq!(spec["Dimensions"], json!([["Function", "Route"], ["Function"], []]));
        assert_eq!(spec["Metrics"], json!([{ "Name": "Latency", "Unit": "Milliseconds" }]));
        assert_eq!(
            (doc["Function"].as_str(), doc["Route"].as_str(), doc["Latency"].as_f64()),
            (Some("f"), Some("GET /x"), Some(12.5))
        );
        assert!(doc["_aws"]["Timestamp"].as_u64().unwrap() > 1_700_000_000_000);
        assert_eq!(doc["requestId"], "r");
    }
}
