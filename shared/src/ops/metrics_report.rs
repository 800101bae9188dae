//! The numbers behind `GET /admin/metrics`: per function, over a recent window, from the metrics the
//! functions publish as EMF lines (see `metrics.rs`). In AWS they come from CloudWatch; locally the
//! gateway collects the same lines and answers the same CloudWatch API (`AWS_ENDPOINT_URL_CLOUDWATCH`),
//! so this code has one path.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{DimensionFilter, Metric, MetricDataQuery, MetricStat};
use aws_sdk_cloudwatch::Client;
use serde::Serialize;

use crate::error::ApiError;
use crate::metrics::NAMESPACE;

/// One statistic of one metric, as a GetMetricData query asks for it.
struct Wanted {
    key: &'static str,
    metric: &'static str,
    stat: &'static str,
}

const WANTED: &[Wanted] = &[
    Wanted {
        key: "p50",
        metric: "Latency",
        stat: "p50",
    },
    Wanted {
        key: "p95",
        metric: "Latency",
        stat: "p95",
    },
    Wanted {
        key: "p99",
        metric: "Latency",
        stat: "p99",
    },
    Wanted {
        key: "invocations",
        metric: "Latency",
        stat: "SampleCount",
    },
    Wanted {
        key: "errors4xx",
        metric: "Errors4xx",
        stat: "Sum",
    },
    Wanted {
        key: "errors5xx",
        metric: "Errors5xx",
        stat: "Sum",
    },
    Wanted {
        key: "coldStarts",
        metric: "ColdStart",
        stat: "Sum",
    },
    Wanted {
        key: "rcu",
        metric: "ReadCapacityUnits",
        stat: "Sum",
    },
    Wanted {
        key: "wcu",
        metric: "WriteCapacityUnits",
        stat: "Sum",
    },
    Wanted {
        key: "dynamodbMs",
        metric: "DynamoDBLatency",
        stat: "Average",
    },
    Wanted {
        key: "cacheHits",
        metric: "CacheHits",
        stat: "Sum",
    },
    Wanted {
        key: "cacheMisses",
        metric: "CacheMisses",
        stat: "Sum",
    },
];

/// GetMetricData takes at most 500 queries a call.
const QUERIES_PER_CALL: usize = 500;

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LatencyPercentiles {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FunctionMetrics {
    pub function: String,
    pub invocations: u64,
    pub latency_ms: LatencyPercentiles,
    pub errors4xx: u64,
    pub errors5xx: u64,
    /// 5xx responses per invocation: the seeds' error budget is 1 %.
    pub error_rate: Option<f64>,
    pub client_error_rate: Option<f64>,
    pub cold_starts: u64,
    pub read_capacity_units: f64,
    pub write_capacity_units: f64,
    /// Mean time spent in DynamoDB per invocation.
    pub dynamodb_ms_mean: Option<f64>,
    pub cache_hit_ratio: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MetricsReport {
    pub from: String,
    pub to: String,
    pub minutes: u64,
    pub functions: Vec<FunctionMetrics>,
}

fn unavailable(what: &str, error: impl std::fmt::Display) -> ApiError {
    tracing::warn!(error = %error, "CloudWatch {what} failed");
    ApiError::Unavailable {
        message: "Metrics are unavailable right now; please retry shortly.".to_owned(),
        retry_after_secs: 5,
    }
}

/// The functions that published metrics lately: those with a `Latency` series under the `Function`
/// dimension alone.
async fn functions_with_metrics(client: &Client) -> Result<Vec<String>, ApiError> {
    let mut functions = Vec::new();
    let mut next_token: Option<String> = None;
    loop {
        let out = client
            .list_metrics()
            .namespace(NAMESPACE)
            .metric_name("Latency")
            .dimensions(DimensionFilter::builder().name("Function").build())
            .set_next_token(next_token.take())
            .send()
            .await
            .map_err(|e| unavailable("ListMetrics", aws_sdk_cloudwatch::error::DisplayErrorContext(e)))?;
        for metric in out.metrics() {
            if let [only] = metric.dimensions() {
                if only.name() == Some("Function") {
                    if let Some(function) = only.value() {
                        functions.push(function.to_owned());
                    }
                }
            }
        }
        next_token = out.next_token().map(str::to_owned);
        if next_token.is_none() {
            break;
        }
    }
    functions.sort();
    functions.dedup();
    Ok(functions)
}

/// Latency, errors, cold starts, capacity and cache use per function over the last `window`.
pub async fn report(client: &Client, window: Duration, now: SystemTime) -> Result<MetricsReport, ApiError> {
    let functions = functions_with_metrics(client).await?;
    let period = i32::try_from(window.as_secs()).unwrap_or(i32::MAX);
    let queries: Vec<MetricDataQuery> = functions
        .iter()
        .enumerate()
        .flat_map(|(index, function)| {
            WANTED.iter().map(move |wanted| {
                let dimension = aws_sdk_cloudwatch::types::Dimension::builder()
                    .name("Function")
                    .value(function)
                    .build();
                MetricDataQuery::builder()
                    .id(format!("f{index}_{}", wanted.key))
                    .metric_stat(
                        MetricStat::builder()
                            .metric(
                                Metric::builder()
                                    .namespace(NAMESPACE)
                                    .metric_name(wanted.metric)
                                    .dimensions(dimension)
                                    .build(),
                            )
                            .period(period)
                            .stat(wanted.stat)
                            .build(),
                    )
                    .return_data(true)
                    .build()
            })
        })
        .collect();
    // CloudWatch starts periods at StartTime rounded down to the minute: a window that ends on a minute
    // boundary is then exactly one period, and percentiles need that (they cannot be summed).
    let end = crate::time::from_epoch_secs(crate::time::epoch_secs(now).div_ceil(60) * 60);
    let start = end - window;
    let mut values: BTreeMap<String, f64> = BTreeMap::new();
    for chunk in queries.chunks(QUERIES_PER_CALL) {
        let mut next_token: Option<String> = None;
        loop {
            let out = client
                .get_metric_data()
                .set_metric_data_queries(Some(chunk.to_vec()))
                .start_time(DateTime::from(start))
                .end_time(DateTime::from(end))
                .set_next_token(next_token.take())
                .send()
                .await
                .map_err(|e| unavailable("GetMetricData", aws_sdk_cloudwatch::error::DisplayErrorContext(e)))?;
            for result in out.metric_data_results() {
                // One period covers the aligned window: one value per query.
                if let (Some(id), Some(value)) = (result.id(), result.values().first()) {
                    values.insert(id.to_owned(), *value);
                }
            }
            next_token = out.next_token().map(str::to_owned);
            if next_token.is_none() {
                break;
            }
        }
    }
    let functions = functions
        .into_iter()
        .enumerate()
        .map(|(index, function)| {
            let get = |key: &str| values.get(&format!("f{index}_{key}")).copied();
            let count = |key: &str| get(key).unwrap_or(0.0).round() as u64;
            let invocations = count("invocations");
            let per_invocation = |n: u64| (invocations > 0).then(|| n as f64 / invocations as f64);
            let (hits, misses) = (count("cacheHits"), count("cacheMisses"));
            FunctionMetrics {
                function,
                invocations,
                latency_ms: LatencyPercentiles {
                    p50: get("p50"),
                    p95: get("p95"),
                    p99: get("p99"),
                },
                errors4xx: count("errors4xx"),
                errors5xx: count("errors5xx"),
                error_rate: per_invocation(count("errors5xx")),
                client_error_rate: per_invocation(count("errors4xx")),
                cold_starts: count("coldStarts"),
                read_capacity_units: get("rcu").unwrap_or(0.0),
                write_capacity_units: get("wcu").unwrap_or(0.0),
                dynamodb_ms_mean: get("dynamodbMs"),
                cache_hit_ratio: (hits + misses > 0).then(|| hits as f64 / (hits + misses) as f64),
            }
        })
        .collect();
    Ok(MetricsReport {
        from: crate::time::rfc3339(start),
        to: crate::time::rfc3339(end),
        minutes: window.as_secs() / 60,
        functions,
    })
}
