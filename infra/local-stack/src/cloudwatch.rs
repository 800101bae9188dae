//! A local stand-in for the CloudWatch metrics API, answering from the datapoints the functions' EMF
//! lines left in the metric store (metrics.rs), so `aws-sdk-cloudwatch` with
//! `AWS_ENDPOINT_URL_CLOUDWATCH` pointed at the gateway gets real answers.
//!
//! The protocol is the one the SDK speaks: Smithy RPC v2 CBOR, `POST
//! /service/GraniteServiceVersion20100801/operation/<Operation>` with `smithy-protocol: rpc-v2-cbor`,
//! a CBOR map each way, timestamps as tag 1 around epoch seconds. Errors are CBOR maps with `__type` and
//! `message` and a non-2xx status; CloudWatch is an awsQuery-compatible service, so modeled errors also
//! carry `x-amzn-query-error: <code>;Sender`, from which the SDK takes the code it matches on.
//!
//! Served: ListMetrics, GetMetricData (MetricStat queries; expressions are answered per query with
//! StatusCode `InternalError` and a message saying so) and GetMetricStatistics. Anything else is a 404
//! `UnknownOperationException`. No pagination: every answer is whole and carries no NextToken.

use std::collections::HashSet;
use std::time::SystemTime;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};

use crate::cbor::{self, Value};
use crate::ids;
use crate::metrics::{self, ListFilter, MetricStore, SeriesKey, Statistic};

/// The Smithy service shape name in every operation path.
pub const SERVICE: &str = "GraniteServiceVersion20100801";
const MAX_REQUEST_BYTES: usize = 1024 * 1024;
const MAX_QUERIES: usize = 500;

type HttpResponse = Response<Full<Bytes>>;

/// Whether a request on the gateway's management port is for this API.
pub fn serves(path: &str) -> bool {
    path.starts_with("/service/")
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    status: StatusCode,
    /// The Smithy shape name, sent namespaced in `__type`.
    shape: &'static str,
    /// The awsQuery error code, for modeled errors.
    query_code: Option<&'static str>,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, shape: &'static str, query_code: Option<&'static str>, message: String) -> Self {
        ApiError {
            status,
            shape,
            query_code,
            message,
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValueException",
            Some("InvalidParameterValue"),
            message.into(),
        )
    }

    fn missing(parameter: &str) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "MissingRequiredParameterException",
            Some("MissingParameter"),
            format!("The parameter {parameter} is required."),
        )
    }

    fn combination(message: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidParameterCombinationException",
            Some("InvalidParameterCombination"),
            message.into(),
        )
    }

    fn serialization(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "SerializationException", None, message.into())
    }

    fn response(&self) -> HttpResponse {
        let body = Value::map([
            (
                "__type",
                Value::text(format!("com.amazonaws.cloudwatch#{}", self.shape)),
            ),
            ("message", Value::text(&self.message)),
        ]);
        let mut response = cbor_response(self.status, &body);
        if let Some(value) = self.query_code.and_then(|code| format!("{code};Sender").parse().ok()) {
            response.headers_mut().insert("x-amzn-query-error", value);
        }
        response
    }
}

fn cbor_response(status: StatusCode, body: &Value) -> HttpResponse {
    Response::builder()
        .status(status)
        .header("smithy-protocol", "rpc-v2-cbor")
        .header("content-type", "application/cbor")
        .header("x-amzn-requestid", ids::invocation_id())
        .body(Full::new(Bytes::from(cbor::encode(body))))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// IAM's check of a function's call. CloudWatch's metric actions have no resource-level permissions,
/// so the resource is `*`; PutMetricData (with its `cloudwatch:namespace` key) is not served here: the
/// functions' metrics are EMF log lines.
pub fn denial(role: &crate::iam::Role, path: &str, logs: &crate::logs::LogBook) -> Option<HttpResponse> {
    let operation = path
        .strip_prefix("/service/")
        .and_then(|rest| rest.strip_prefix(SERVICE))
        .and_then(|rest| rest.strip_prefix("/operation/"))?;
    let (message, log) = crate::iam::check(role, &format!("cloudwatch:{operation}"), "*", &[])?;
    logs.gateway(&log);
    Some(
        ApiError::new(
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            Some("AccessDenied"),
            message,
        )
        .response(),
    )
}

pub async fn handle(store: &MetricStore, request: Request<Incoming>) -> HttpResponse {
    let path = request.uri().path().to_owned();
    let operation = path
        .strip_prefix("/service/")
        .and_then(|rest| rest.strip_prefix(SERVICE))
        .and_then(|rest| rest.strip_prefix("/operation/"))
        .filter(|op| !op.is_empty() && !op.contains('/'))
        .map(str::to_owned);
    let Some(operation) = operation else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            None,
            format!("{path} is not a CloudWatch operation: the path is /service/{SERVICE}/operation/<Operation>"),
        )
        .response();
    };
    if request.method() != hyper::Method::POST {
        return ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowedException",
            None,
            format!("{operation} is called with POST"),
        )
        .response();
    }
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    if header("smithy-protocol").as_deref() != Some("rpc-v2-cbor") {
        return ApiError::serialization(
            "the request lacks the header `smithy-protocol: rpc-v2-cbor`: the local CloudWatch speaks only the \
             Smithy RPC v2 CBOR protocol, as aws-sdk-cloudwatch does",
        )
        .response();
    }
    if header("content-encoding").is_some_and(|e| !e.eq_ignore_ascii_case("identity")) {
        return ApiError::serialization("compressed request bodies are not accepted by the local CloudWatch")
            .response();
    }
    let body = match Limited::new(request.into_body(), MAX_REQUEST_BYTES).collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "SerializationException",
                None,
                format!("the request body is over {MAX_REQUEST_BYTES} bytes"),
            )
            .response()
        }
    };
    let input = if body.is_empty() {
        Value::Map(Vec::new())
    } else {
        match cbor::decode(&body) {
            Ok(value @ Value::Map(_)) => value,
            Ok(_) => return ApiError::serialization("the request body is not a CBOR map").response(),
            Err(problem) => return ApiError::serialization(problem).response(),
        }
    };
    let now_ms = ids::epoch_millis(SystemTime::now()) as i64;
    let result = match operation.as_str() {
        "ListMetrics" => list_metrics(store, &input, now_ms),
        "GetMetricData" => get_metric_data(store, &input, now_ms),
        "GetMetricStatistics" => get_metric_statistics(store, &input, now_ms),
        other => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            None,
            format!(
                "the local stack's CloudWatch does not implement {other}: it answers ListMetrics, GetMetricData \
                 and GetMetricStatistics from the functions' EMF metric lines"
            ),
        )),
    };
    match result {
        Ok(output) => cbor_response(StatusCode::OK, &output),
        Err(error) => error.response(),
    }
}

// ---- reading the input ----

fn optional_str<'a>(input: &'a Value, member: &str) -> Result<Option<&'a str>, ApiError> {
    match input.get(member) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Text(text)) => Ok(Some(text)),
        Some(_) => Err(ApiError::serialization(format!("{member} must be a string"))),
    }
}

fn required_str<'a>(input: &'a Value, member: &str) -> Result<&'a str, ApiError> {
    optional_str(input, member)?.ok_or_else(|| ApiError::missing(member))
}

fn optional_list<'a>(input: &'a Value, member: &str) -> Result<&'a [Value], ApiError> {
    match input.get(member) {
        None | Some(Value::Null) => Ok(&[]),
        Some(value) => value
            .as_array()
            .ok_or_else(|| ApiError::serialization(format!("{member} must be a list"))),
    }
}

fn optional_int(input: &Value, member: &str) -> Result<Option<i64>, ApiError> {
    match input.get(member) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_i64()
            .map(Some)
            .ok_or_else(|| ApiError::serialization(format!("{member} must be an integer"))),
    }
}

fn required_time(input: &Value, member: &str) -> Result<i64, ApiError> {
    match input.get(member) {
        None | Some(Value::Null) => Err(ApiError::missing(member)),
        Some(value) => value
            .as_timestamp_millis()
            .ok_or_else(|| ApiError::serialization(format!("{member} must be a timestamp (CBOR tag 1)"))),
    }
}

fn optional_unit(input: &Value) -> Result<Option<&'static str>, ApiError> {
    optional_str(input, "Unit")?
        .map(|unit| {
            metrics::unit(unit)
                .ok_or_else(|| ApiError::invalid(format!("The parameter Unit has an invalid value: {unit}")))
        })
        .transpose()
}

/// A metric's dimensions, each with a name and a value.
fn dimensions(input: &Value) -> Result<Vec<(String, String)>, ApiError> {
    let mut dimensions: Vec<(String, String)> = Vec::new();
    for dimension in optional_list(input, "Dimensions")? {
        let name = required_str(dimension, "Name")?;
        let value = required_str(dimension, "Value")?;
        if dimensions.iter().any(|(n, _)| n == name) {
            return Err(ApiError::invalid(format!("The dimension {name} is given twice.")));
        }
        dimensions.push((name.to_owned(), value.to_owned()));
    }
    if dimensions.len() > 30 {
        return Err(ApiError::invalid("A metric has at most 30 dimensions."));
    }
    Ok(dimensions)
}

/// CloudWatch's periods: 1, 5, 10, 20 and 30 seconds for high-resolution data, else multiples of 60.
fn period_seconds(period: Option<i64>, member: &str) -> Result<i64, ApiError> {
    let period = period.ok_or_else(|| ApiError::missing(member))?;
    // A Smithy Integer: bounding it also keeps period arithmetic in milliseconds from overflowing.
    let in_range = period > 0 && period <= i64::from(i32::MAX);
    if [1, 5, 10, 20, 30].contains(&period) || (in_range && period % 60 == 0) {
        Ok(period)
    } else {
        Err(ApiError::invalid(format!(
            "The parameter {member} must be 1, 5, 10, 20, 30 or a multiple of 60, not {period}."
        )))
    }
}

/// Where CloudWatch starts the first period: StartTime rounded down, to the period for sub-minute
/// periods, else to the minute (to 5 minutes past 15 days back, to the hour past 63 days).
fn period_origin(start_ms: i64, period_s: i64, now_ms: i64) -> i64 {
    const DAY_MS: i64 = 24 * 3600 * 1000;
    let age = now_ms - start_ms;
    let granularity_ms = if period_s < 60 {
        period_s * 1000
    } else if age > 63 * DAY_MS {
        3600 * 1000
    } else if age > 15 * DAY_MS {
        300 * 1000
    } else {
        60 * 1000
    };
    start_ms.div_euclid(granularity_ms) * granularity_ms
}

fn time_range(input: &Value) -> Result<(i64, i64), ApiError> {
    let start = required_time(input, "StartTime")?;
    let end = required_time(input, "EndTime")?;
    if start >= end {
        return Err(ApiError::invalid(
            "The parameter StartTime must be less than the parameter EndTime.",
        ));
    }
    Ok((start, end))
}

// ---- the operations ----

fn list_metrics(store: &MetricStore, input: &Value, now_ms: i64) -> Result<Value, ApiError> {
    if optional_str(input, "NextToken")?.is_some() {
        return Err(ApiError::invalid(
            "The NextToken is not valid: the local CloudWatch never paginates, so it never hands one out.",
        ));
    }
    let active_since_ms = match optional_str(input, "RecentlyActive")? {
        None => None,
        Some("PT3H") => Some(now_ms - 3 * 3600 * 1000),
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "The parameter RecentlyActive must be PT3H, not {other}."
            )))
        }
    };
    let mut filter = ListFilter {
        namespace: optional_str(input, "Namespace")?.map(str::to_owned),
        name: optional_str(input, "MetricName")?.map(str::to_owned),
        dimensions: Vec::new(),
        active_since_ms,
    };
    for dimension in optional_list(input, "Dimensions")? {
        let name = required_str(dimension, "Name")?.to_owned();
        let value = optional_str(dimension, "Value")?.map(str::to_owned);
        filter.dimensions.push((name, value));
    }
    if filter.dimensions.len() > 10 {
        return Err(ApiError::invalid("ListMetrics takes at most 10 dimension filters."));
    }
    let metrics: Vec<Value> = store.list(&filter, now_ms).iter().map(metric_value).collect();
    Ok(Value::map([("Metrics", Value::Array(metrics))]))
}

fn metric_value(key: &SeriesKey) -> Value {
    let dimensions = key
        .dimensions
        .iter()
        .map(|(name, value)| Value::map([("Name", Value::text(name)), ("Value", Value::text(value))]))
        .collect();
    Value::map([
        ("Namespace", Value::text(&key.namespace)),
        ("MetricName", Value::text(&key.name)),
        ("Dimensions", Value::Array(dimensions)),
    ])
}

/// One GetMetricData query, read and checked.
enum Query<'a> {
    Stat {
        id: &'a str,
        label: Option<&'a str>,
        key: SeriesKey,
        period_s: i64,
        stat: Statistic,
        unit: Option<&'static str>,
        return_data: bool,
    },
    Expression {
        id: &'a str,
        label: Option<&'a str>,
        expression: &'a str,
        return_data: bool,
    },
}

fn read_query(query: &Value) -> Result<Query<'_>, ApiError> {
    let id = required_str(query, "Id")?;
    let valid_id = id.len() <= 255
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_id {
        return Err(ApiError::invalid(format!(
            "The value {id} for parameter MetricDataQueries.member.Id is invalid: it must start with a lowercase \
             letter and hold only letters, digits and underscores."
        )));
    }
    let label = optional_str(query, "Label")?;
    let return_data = match query.get("ReturnData") {
        None | Some(Value::Null) => true,
        Some(value) => value
            .as_bool()
            .ok_or_else(|| ApiError::serialization("ReturnData must be a boolean"))?,
    };
    let expression = optional_str(query, "Expression")?;
    let metric_stat = query.get("MetricStat").filter(|v| **v != Value::Null);
    match (metric_stat, expression) {
        (Some(_), Some(_)) | (None, None) => Err(ApiError::invalid(format!(
            "The query {id} must have exactly one of MetricStat and Expression."
        ))),
        (None, Some(expression)) => Ok(Query::Expression {
            id,
            label,
            expression,
            return_data,
        }),
        (Some(metric_stat), None) => {
            let metric = metric_stat
                .get("Metric")
                .filter(|v| **v != Value::Null)
                .ok_or_else(|| ApiError::missing("MetricStat.Metric"))?;
            let key = SeriesKey::new(
                required_str(metric, "Namespace")?,
                required_str(metric, "MetricName")?,
                dimensions(metric)?,
            );
            Ok(Query::Stat {
                id,
                label,
                key,
                period_s: period_seconds(optional_int(metric_stat, "Period")?, "MetricStat.Period")?,
                stat: Statistic::parse(required_str(metric_stat, "Stat")?).map_err(ApiError::invalid)?,
                unit: optional_unit(metric_stat)?,
                return_data,
            })
        }
    }
}

fn get_metric_data(store: &MetricStore, input: &Value, now_ms: i64) -> Result<Value, ApiError> {
    if optional_str(input, "NextToken")?.is_some() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidNextToken",
            Some("InvalidNextToken"),
            "The NextToken is not valid: the local CloudWatch never paginates, so it never hands one out.".to_owned(),
        ));
    }
    let (start_ms, end_ms) = time_range(input)?;
    let descending = match optional_str(input, "ScanBy")? {
        None | Some("TimestampDescending") => true,
        Some("TimestampAscending") => false,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "The parameter ScanBy must be TimestampDescending or TimestampAscending, not {other}."
            )))
        }
    };
    let raw_queries = optional_list(input, "MetricDataQueries")?;
    if raw_queries.is_empty() {
        return Err(ApiError::missing("MetricDataQueries"));
    }
    if raw_queries.len() > MAX_QUERIES {
        return Err(ApiError::invalid(format!(
            "GetMetricData takes at most {MAX_QUERIES} queries."
        )));
    }
    let queries = raw_queries.iter().map(read_query).collect::<Result<Vec<_>, _>>()?;
    let mut seen = HashSet::new();
    for query in &queries {
        let (Query::Stat { id, .. } | Query::Expression { id, .. }) = query;
        if !seen.insert(*id) {
            return Err(ApiError::invalid(format!("The query id {id} is used twice.")));
        }
    }

    let mut results = Vec::new();
    for query in &queries {
        match query {
            Query::Stat { return_data: false, .. } | Query::Expression { return_data: false, .. } => {}
            Query::Stat {
                id,
                label,
                key,
                period_s,
                stat,
                unit,
                ..
            } => {
                let origin = period_origin(start_ms, *period_s, now_ms);
                let points = store.points(key, origin, end_ms, *unit);
                let mut series: Vec<(i64, f64)> = metrics::buckets(&points, origin, period_s * 1000)
                    .into_iter()
                    .map(|(at, mut values)| (at, stat.compute(&mut values)))
                    .collect();
                if descending {
                    series.reverse();
                }
                results.push(Value::map([
                    ("Id", Value::text(*id)),
                    ("Label", Value::text(label.unwrap_or(&key.name))),
                    (
                        "Timestamps",
                        Value::Array(series.iter().map(|(at, _)| Value::timestamp_millis(*at)).collect()),
                    ),
                    (
                        "Values",
                        Value::Array(series.iter().map(|(_, v)| Value::Float(*v)).collect()),
                    ),
                    ("StatusCode", Value::text("Complete")),
                ]));
            }
            Query::Expression {
                id, label, expression, ..
            } => {
                let message = format!(
                    "The local stack does not evaluate metric math or Metrics Insights expressions ({expression}); \
                     ask for each metric with a MetricStat query and combine the values yourself."
                );
                results.push(Value::map([
                    ("Id", Value::text(*id)),
                    ("Label", Value::text(label.unwrap_or(id))),
                    ("Timestamps", Value::Array(Vec::new())),
                    ("Values", Value::Array(Vec::new())),
                    ("StatusCode", Value::text("InternalError")),
                    (
                        "Messages",
                        Value::Array(vec![Value::map([
                            ("Code", Value::text("UnsupportedExpression")),
                            ("Value", Value::text(message)),
                        ])]),
                    ),
                ]));
            }
        }
    }
    Ok(Value::map([
        ("MetricDataResults", Value::Array(results)),
        ("Messages", Value::Array(Vec::new())),
    ]))
}

fn get_metric_statistics(store: &MetricStore, input: &Value, now_ms: i64) -> Result<Value, ApiError> {
    let key = SeriesKey::new(
        required_str(input, "Namespace")?,
        required_str(input, "MetricName")?,
        dimensions(input)?,
    );
    let (start_ms, end_ms) = time_range(input)?;
    let period_s = period_seconds(optional_int(input, "Period")?, "Period")?;
    let unit = optional_unit(input)?;
    let mut statistics = Vec::new();
    for (member, extended) in [("Statistics", false), ("ExtendedStatistics", true)] {
        for name in optional_list(input, member)? {
            let name = name
                .as_str()
                .ok_or_else(|| ApiError::serialization(format!("{member} must be a list of strings")))?;
            let stat = Statistic::parse(name).map_err(ApiError::invalid)?;
            if extended != matches!(stat, Statistic::Percentile(_)) {
                return Err(ApiError::invalid(format!("{name} does not belong in {member}.")));
            }
            statistics.push((name, stat));
        }
    }
    let has_simple = statistics.iter().any(|(_, s)| !matches!(s, Statistic::Percentile(_)));
    let has_extended = statistics.iter().any(|(_, s)| matches!(s, Statistic::Percentile(_)));
    if statistics.is_empty() {
        return Err(ApiError::missing("Statistics or ExtendedStatistics"));
    }
    if has_simple && has_extended {
        return Err(ApiError::combination(
            "Give either Statistics or ExtendedStatistics, not both.",
        ));
    }
    if statistics.len() > 10 {
        return Err(ApiError::invalid("At most 10 statistics can be asked for."));
    }

    let origin = period_origin(start_ms, period_s, now_ms);
    let points = store.points(&key, origin, end_ms, unit);
    let mut datapoints = Vec::new();
    for (at, mut values) in metrics::buckets(&points, origin, period_s * 1000) {
        // Without a Unit filter, the bucket's datapoints say which unit they are in.
        let bucket_unit = unit
            .or_else(|| {
                points
                    .iter()
                    .find(|p| (at..at + period_s * 1000).contains(&p.timestamp_ms))
                    .map(|p| p.unit)
            })
            .unwrap_or("None");
        let mut entries = vec![
            ("Timestamp".to_owned(), Value::timestamp_millis(at)),
            ("Unit".to_owned(), Value::text(bucket_unit)),
        ];
        let mut extended = Vec::new();
        for (name, stat) in &statistics {
            let value = Value::Float(stat.compute(&mut values));
            match stat {
                Statistic::Percentile(_) => extended.push(((*name).to_owned(), value)),
                _ => entries.push(((*name).to_owned(), value)),
            }
        }
        if !extended.is_empty() {
            entries.push(("ExtendedStatistics".to_owned(), Value::map(extended)));
        }
        datapoints.push(Value::map(entries));
    }
    Ok(Value::map([
        ("Label", Value::text(&key.name)),
        ("Datapoints", Value::Array(datapoints)),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_and_their_origins() {
        assert!(period_seconds(Some(60), "P").is_ok());
        assert!(period_seconds(Some(3600), "P").is_ok());
        assert!(period_seconds(Some(5), "P").is_ok());
        for bad in [Some(0), Some(-60), Some(7), Some(90), Some(i64::MAX / 60 * 60), None] {
            assert!(period_seconds(bad, "P").is_err(), "{bad:?}");
        }
        let now = 1_800_000_000_000;
        // 12:32:34 -> 12:32:00 for minute periods; to the 10 s for a 10 s period.
        let start = now - 34_567;
        assert_eq!(period_origin(start, 300, now) % 60_000, 0);
        assert!(period_origin(start, 300, now) <= start && start - period_origin(start, 300, now) < 60_000);
        assert_eq!(period_origin(start, 10, now) % 10_000, 0);
        assert!(start - period_origin(start, 10, now) < 10_000);
        let old = now - 20 * 24 * 3600 * 1000 - 1;
        assert_eq!(period_origin(old, 60, now) % 300_000, 0);
    }

    #[test]
    fn errors_are_cbor_maps_with_a_type_and_the_query_code() {
        let response = ApiError::invalid("bad").response();
        assert_eq!(response.status(), 400);
        assert_eq!(response.headers()["smithy-protocol"], "rpc-v2-cbor");
        assert_eq!(response.headers()["x-amzn-query-error"], "InvalidParameterValue;Sender");
    }
}
