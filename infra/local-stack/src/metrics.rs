//! The metrics CloudWatch would hold: every Embedded Metric Format document the functions print is
//! turned into datapoints here, as CloudWatch Logs does with a Lambda function's log events, and the
//! CloudWatch API of the gateway (cloudwatch.rs) answers from them.
//!
//! Extraction follows the EMF specification: one datapoint per value (a metric's value may be an array)
//! per declared dimension set, so a metric declared with `[["Function","Route"],[]]` lands in the series
//! `{Function, Route}` and in the series with no dimensions. A directive that breaks the specification
//! (a missing or non-string dimension value, a non-numeric metric value, an unknown unit, no
//! `_aws.Timestamp`) records nothing, as CloudWatch drops it, so a mistake shows up locally first.
//!
//! Bounded, so a long local run or a benchmark cannot grow the gateway without limit: datapoints older
//! than a day (the longest window `GET /admin/metrics` asks for) are dropped, at most `MAX_DATAPOINTS`
//! are kept (the oldest go first; about 20 MB), and at most `MAX_SERIES` series exist at once (a
//! series goes with its last datapoint, so ListMetrics names only series with data).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

pub const RETENTION: Duration = Duration::from_secs(24 * 3600);
pub const MAX_DATAPOINTS: usize = 500_000;
pub const MAX_SERIES: usize = 10_000;
/// CloudWatch refuses metric timestamps further ahead than this.
const MAX_FUTURE: Duration = Duration::from_secs(2 * 3600);

/// The units CloudWatch accepts (MetricDatum.Unit).
pub const UNITS: [&str; 27] = [
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

pub fn unit(name: &str) -> Option<&'static str> {
    UNITS.iter().copied().find(|u| *u == name)
}

/// A metric's identity: namespace, name, and dimensions sorted by name (CloudWatch ignores their order).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    pub namespace: String,
    pub name: String,
    pub dimensions: Vec<(String, String)>,
}

impl SeriesKey {
    pub fn new(namespace: &str, name: &str, dimensions: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut dimensions: Vec<(String, String)> = dimensions.into_iter().collect();
        dimensions.sort();
        SeriesKey {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            dimensions,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub timestamp_ms: i64,
    pub value: f64,
    pub unit: &'static str,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Datapoint {
    pub key: SeriesKey,
    pub point: Point,
}

const MAX_METRICS_PER_DIRECTIVE: usize = 100;
const MAX_DIMENSIONS_PER_SET: usize = 30;
const MAX_VALUES_PER_METRIC: usize = 100;

/// The datapoints of one log line, or none when it is not an EMF document (most lines are plain logs).
pub fn parse_emf(line: &str) -> Vec<Datapoint> {
    // Cheap refusal of ordinary log lines before any JSON parsing.
    let trimmed = line.trim();
    if !trimmed.starts_with('{') || !trimmed.contains("\"_aws\"") {
        return Vec::new();
    }
    let Ok(Value::Object(root)) = serde_json::from_str::<Value>(trimmed) else {
        return Vec::new();
    };
    let Some(aws) = root.get("_aws").and_then(Value::as_object) else {
        return Vec::new();
    };
    let Some(timestamp_ms) = aws.get("Timestamp").and_then(timestamp_millis) else {
        return Vec::new();
    };
    let Some(directives) = aws.get("CloudWatchMetrics").and_then(Value::as_array) else {
        return Vec::new();
    };
    directives
        .iter()
        .filter_map(|directive| directive_datapoints(&root, directive, timestamp_ms))
        .flatten()
        .collect()
}

fn timestamp_millis(value: &Value) -> Option<i64> {
    value
        .as_i64()
        .or_else(|| value.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
}

/// All or nothing: `None` when the directive breaks the specification.
fn directive_datapoints(
    root: &serde_json::Map<String, Value>,
    directive: &Value,
    timestamp_ms: i64,
) -> Option<Vec<Datapoint>> {
    let namespace = directive.get("Namespace")?.as_str().filter(|n| !n.is_empty())?;
    let dimension_sets = directive
        .get("Dimensions")?
        .as_array()
        .filter(|sets| !sets.is_empty())?;
    let definitions = directive.get("Metrics")?.as_array()?;
    if definitions.len() > MAX_METRICS_PER_DIRECTIVE {
        return None;
    }

    let mut sets: Vec<Vec<(String, String)>> = Vec::new();
    for set in dimension_sets {
        let names = set.as_array()?;
        if names.len() > MAX_DIMENSIONS_PER_SET {
            return None;
        }
        let mut dimensions = Vec::new();
        for name in names {
            let name = name.as_str()?;
            let value = root.get(name)?.as_str().filter(|v| !v.is_empty())?;
            if dimensions.iter().any(|(n, _)| n == name) {
                return None;
            }
            dimensions.push((name.to_owned(), value.to_owned()));
        }
        sets.push(dimensions);
    }

    let mut metrics: Vec<(&str, &'static str, Vec<f64>)> = Vec::new();
    for definition in definitions {
        let name = definition.get("Name")?.as_str().filter(|n| !n.is_empty())?;
        let unit = match definition.get("Unit") {
            None | Some(Value::Null) => "None",
            Some(u) => unit(u.as_str()?)?,
        };
        let values = match root.get(name)? {
            Value::Number(n) => vec![n.as_f64()?],
            Value::Array(items) if !items.is_empty() && items.len() <= MAX_VALUES_PER_METRIC => {
                items.iter().map(Value::as_f64).collect::<Option<Vec<f64>>>()?
            }
            _ => return None,
        };
        metrics.push((name, unit, values));
    }

    let mut datapoints = Vec::new();
    for dimensions in &sets {
        for (name, unit, values) in &metrics {
            let key = SeriesKey::new(namespace, name, dimensions.iter().cloned());
            for value in values {
                datapoints.push(Datapoint {
                    key: key.clone(),
                    point: Point {
                        timestamp_ms,
                        value: *value,
                        unit,
                    },
                });
            }
        }
    }
    Some(datapoints)
}

/// Which series ListMetrics names: every given field must match; a dimension filter without a value
/// only asks for the dimension to be there.
#[derive(Debug, Default, Clone)]
pub struct ListFilter {
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub dimensions: Vec<(String, Option<String>)>,
    /// Only series with a datapoint at or after this time (ListMetrics' `RecentlyActive`).
    pub active_since_ms: Option<i64>,
}

impl ListFilter {
    fn matches(&self, key: &SeriesKey) -> bool {
        self.namespace.as_ref().is_none_or(|n| *n == key.namespace)
            && self.name.as_ref().is_none_or(|n| *n == key.name)
            && self.dimensions.iter().all(|(name, value)| {
                key.dimensions
                    .iter()
                    .any(|(n, v)| n == name && value.as_ref().is_none_or(|wanted| wanted == v))
            })
    }
}

#[derive(Default)]
struct Inner {
    series: HashMap<Arc<SeriesKey>, VecDeque<Point>>,
    /// Every stored point's series, oldest arrival first: evicting the front of this queue and the
    /// front of that series removes exactly the oldest point, whatever series it is in.
    arrivals: VecDeque<Arc<SeriesKey>>,
    refused_series: u64,
}

impl Inner {
    fn evict_oldest(&mut self) {
        let Some(key) = self.arrivals.pop_front() else { return };
        if let Some(points) = self.series.get_mut(&key) {
            points.pop_front();
            if points.is_empty() {
                self.series.remove(&key);
            }
        }
    }

    fn expire(&mut self, now_ms: i64) {
        let cutoff = now_ms - RETENTION.as_millis() as i64;
        // Arrival order is nearly timestamp order; a late old point lingers until it reaches the front.
        while let Some(key) = self.arrivals.front() {
            let expired = self
                .series
                .get(key)
                .and_then(VecDeque::front)
                .is_none_or(|p| p.timestamp_ms < cutoff);
            if !expired {
                break;
            }
            self.evict_oldest();
        }
    }
}

/// What a store did with a batch of datapoints.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    pub stored: usize,
    /// Points not kept: too old, too far ahead, or of a new series beyond `MAX_SERIES`.
    pub refused: usize,
    /// True the first time a new series is refused for want of room, so the gateway says so once.
    pub first_series_refusal: bool,
}

pub struct MetricStore {
    inner: Mutex<Inner>,
    max_datapoints: usize,
    max_series: usize,
}

impl Default for MetricStore {
    fn default() -> Self {
        MetricStore::with_limits(MAX_DATAPOINTS, MAX_SERIES)
    }
}

impl MetricStore {
    pub fn with_limits(max_datapoints: usize, max_series: usize) -> Self {
        MetricStore {
            inner: Mutex::default(),
            max_datapoints: max_datapoints.max(1),
            max_series: max_series.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records the EMF datapoints of one log line, if it is an EMF document.
    pub fn ingest_line(&self, line: &str, now_ms: i64) -> Recorded {
        let datapoints = parse_emf(line);
        if datapoints.is_empty() {
            return Recorded::default();
        }
        self.record(datapoints, now_ms)
    }

    pub fn record(&self, datapoints: Vec<Datapoint>, now_ms: i64) -> Recorded {
        let oldest = now_ms - RETENTION.as_millis() as i64;
        let newest = now_ms + MAX_FUTURE.as_millis() as i64;
        let mut recorded = Recorded::default();
        let mut inner = self.lock();
        inner.expire(now_ms);
        for Datapoint { key, point } in datapoints {
            if point.timestamp_ms < oldest || point.timestamp_ms > newest {
                recorded.refused += 1;
                continue;
            }
            let key = match inner.series.get_key_value(&key) {
                Some((existing, _)) => Arc::clone(existing),
                None if inner.series.len() >= self.max_series => {
                    recorded.refused += 1;
                    inner.refused_series += 1;
                    recorded.first_series_refusal |= inner.refused_series == 1;
                    continue;
                }
                None => Arc::new(key),
            };
            inner.series.entry(Arc::clone(&key)).or_default().push_back(point);
            inner.arrivals.push_back(key);
            recorded.stored += 1;
            while inner.arrivals.len() > self.max_datapoints {
                inner.evict_oldest();
            }
        }
        recorded
    }

    /// Series with datapoints, sorted.
    pub fn list(&self, filter: &ListFilter, now_ms: i64) -> Vec<SeriesKey> {
        let mut inner = self.lock();
        inner.expire(now_ms);
        let mut keys: Vec<SeriesKey> = inner
            .series
            .iter()
            .filter(|(key, points)| {
                filter.matches(key)
                    && filter
                        .active_since_ms
                        .is_none_or(|since| points.iter().any(|p| p.timestamp_ms >= since))
            })
            .map(|(key, _)| (**key).clone())
            .collect();
        keys.sort();
        keys
    }

    /// The points of one series with `start_ms <= timestamp < end_ms`, of `unit` when given.
    pub fn points(&self, key: &SeriesKey, start_ms: i64, end_ms: i64, unit: Option<&str>) -> Vec<Point> {
        let inner = self.lock();
        inner
            .series
            .get(key)
            .map(|points| {
                points
                    .iter()
                    .filter(|p| p.timestamp_ms >= start_ms && p.timestamp_ms < end_ms)
                    .filter(|p| unit.is_none_or(|u| u == p.unit))
                    .copied()
                    .collect()
            })
            .unwrap_or_default()
    }

    #[cfg(test)]
    pub fn datapoint_count(&self) -> usize {
        self.lock().arrivals.len()
    }
}

/// A CloudWatch statistic, as GetMetricData's `Stat` and GetMetricStatistics name them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Statistic {
    SampleCount,
    Sum,
    Average,
    Minimum,
    Maximum,
    /// `p99`, `p99.9`: the percentile in 0..=100.
    Percentile(f64),
}

impl Statistic {
    pub fn parse(stat: &str) -> Result<Statistic, String> {
        Ok(match stat {
            "SampleCount" => Statistic::SampleCount,
            "Sum" => Statistic::Sum,
            "Average" => Statistic::Average,
            "Minimum" => Statistic::Minimum,
            "Maximum" => Statistic::Maximum,
            other => {
                let percentile = other
                    .strip_prefix('p')
                    .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
                    .and_then(|p| p.parse::<f64>().ok())
                    .filter(|p| (0.0..=100.0).contains(p));
                match percentile {
                    Some(p) => Statistic::Percentile(p),
                    None => {
                        return Err(format!(
                            "the statistic {other:?} is not supported locally: use SampleCount, Sum, Average, \
                             Minimum, Maximum or a percentile such as p99 or p99.9 (trimmed means, winsorized \
                             means and other extended statistics are not computed by the local stack)"
                        ))
                    }
                }
            }
        })
    }

    /// The statistic of `values`, which must not be empty; sorts them in place for percentiles.
    pub fn compute(&self, values: &mut [f64]) -> f64 {
        match self {
            Statistic::SampleCount => values.len() as f64,
            Statistic::Sum => values.iter().sum(),
            Statistic::Average => values.iter().sum::<f64>() / values.len() as f64,
            Statistic::Minimum => values.iter().copied().fold(f64::INFINITY, f64::min),
            Statistic::Maximum => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            Statistic::Percentile(p) => percentile(values, *p),
        }
    }
}

/// The nearest-rank percentile: the smallest value with at least `p` % of the values at or below it.
/// Always one of the values, as CloudWatch's percentiles of raw datapoints are; p0 is the minimum.
pub fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    // p is decimal (99.9 is not exact in binary): without the tolerance p99.9 of 1000 values would be
    // rank 1000.0000000000001, rounded up to the wrong value.
    let rank = (p / 100.0 * values.len() as f64 - 1e-9).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

/// The points grouped in `period_ms` buckets starting at `origin_ms`: (bucket start, values), oldest first.
pub fn buckets(points: &[Point], origin_ms: i64, period_ms: i64) -> BTreeMap<i64, Vec<f64>> {
    let mut buckets: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for point in points {
        let offset = (point.timestamp_ms - origin_ms).div_euclid(period_ms);
        buckets
            .entry(origin_ms + offset * period_ms)
            .or_default()
            .push(point.value);
    }
    buckets
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000_000;

    fn dims(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    fn emf(dimensions: Value, metrics: Value, extra: Value) -> String {
        let mut doc = json!({
            "_aws": {
                "Timestamp": NOW,
                "CloudWatchMetrics": [{ "Namespace": "Parley", "Dimensions": dimensions, "Metrics": metrics }],
            },
        });
        for (k, v) in extra.as_object().unwrap() {
            doc[k] = v.clone();
        }
        doc.to_string()
    }

    #[test]
    fn every_dimension_set_gets_every_value() {
        let line = emf(
            json!([["Function", "Route"], [], ["Function"]]),
            json!([{ "Name": "Latency", "Unit": "Milliseconds" }, { "Name": "Errors5xx", "Unit": "Count" }]),
            json!({ "Function": "F", "Route": "GET /x", "Latency": [12.5, 30], "Errors5xx": 1, "requestId": "r" }),
        );
        let points = parse_emf(&line);
        assert_eq!(points.len(), 3 * (2 + 1));
        let of = |name: &str, d: &[(&str, &str)]| -> Vec<f64> {
            points
                .iter()
                .filter(|p| p.key.name == name && p.key.dimensions == dims(d))
                .map(|p| p.point.value)
                .collect()
        };
        assert_eq!(of("Latency", &[("Function", "F"), ("Route", "GET /x")]), [12.5, 30.0]);
        assert_eq!(of("Latency", &[]), [12.5, 30.0]);
        assert_eq!(of("Latency", &[("Function", "F")]), [12.5, 30.0]);
        assert_eq!(of("Errors5xx", &[]), [1.0]);
        assert!(points
            .iter()
            .all(|p| p.point.timestamp_ms == NOW && p.key.namespace == "Parley"));
        assert_eq!(points[0].point.unit, "Milliseconds");
    }

    #[test]
    fn the_shared_crate_lines_parse() {
        // The shape shared/src/metrics.rs prints, verbatim.
        let line = r#"{"_aws":{"Timestamp":1800000000000,"CloudWatchMetrics":[{"Namespace":"Parley","Dimensions":[["Function","Route"],[]],"Metrics":[{"Name":"Latency","Unit":"Milliseconds"},{"Name":"ColdStart","Unit":"Count"}]}]},"Function":"AuthLoginFunction","Route":"POST /auth/login","Latency":3.25,"ColdStart":1.0,"statusCode":200,"errorCode":null,"requestId":"abc"}"#;
        let points = parse_emf(line);
        assert_eq!(points.len(), 4);
        assert_eq!(
            points[0].key,
            SeriesKey::new(
                "Parley",
                "Latency",
                dims(&[("Route", "POST /auth/login"), ("Function", "AuthLoginFunction")])
            )
        );
    }

    #[test]
    fn lines_that_break_the_specification_record_nothing() {
        let ok_metrics = json!([{ "Name": "M", "Unit": "Count" }]);
        let bad = [
            String::new(),
            "plain text".to_owned(),
            r#"{"level":"INFO","message":"no metrics here"}"#.to_owned(),
            r#"{"_aws": "not an object"}"#.to_owned(),
            r#"{"_aws": {"CloudWatchMetrics": []}, "M": 1"#.to_owned(),
            // No Timestamp.
            json!({ "_aws": { "CloudWatchMetrics": [{ "Namespace": "N", "Dimensions": [[]], "Metrics": ok_metrics }] }, "M": 1 }).to_string(),
            // A flat dimension list instead of a list of lists.
            emf(json!(["Function"]), ok_metrics.clone(), json!({ "Function": "F", "M": 1 })),
            // No dimension sets at all.
            emf(json!([]), ok_metrics.clone(), json!({ "M": 1 })),
            // A dimension value that is missing, not a string, or empty.
            emf(json!([["Function"]]), ok_metrics.clone(), json!({ "M": 1 })),
            emf(json!([["Function"]]), ok_metrics.clone(), json!({ "Function": 7, "M": 1 })),
            emf(json!([["Function"]]), ok_metrics.clone(), json!({ "Function": "", "M": 1 })),
            // A metric value that is missing, a string, nested, or an empty or mixed array.
            emf(json!([[]]), ok_metrics.clone(), json!({})),
            emf(json!([[]]), ok_metrics.clone(), json!({ "M": "1" })),
            emf(json!([[]]), ok_metrics.clone(), json!({ "M": { "v": 1 } })),
            emf(json!([[]]), ok_metrics.clone(), json!({ "M": [] })),
            emf(json!([[]]), ok_metrics.clone(), json!({ "M": [1, "2"] })),
            // An unknown unit.
            emf(json!([[]]), json!([{ "Name": "M", "Unit": "Furlongs" }]), json!({ "M": 1 })),
        ];
        for line in bad {
            assert_eq!(parse_emf(&line), [], "{line}");
        }
        // A valid directive still counts when its neighbour is broken; Unit defaults to None.
        let mixed = json!({
            "_aws": {
                "Timestamp": NOW,
                "CloudWatchMetrics": [
                    { "Namespace": "A", "Dimensions": [[]], "Metrics": [{ "Name": "Missing" }] },
                    { "Namespace": "B", "Dimensions": [[]], "Metrics": [{ "Name": "M" }] },
                ],
            },
            "M": 2,
        });
        let points = parse_emf(&mixed.to_string());
        assert_eq!(points.len(), 1);
        assert_eq!((points[0].key.namespace.as_str(), points[0].point.unit), ("B", "None"));
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut values: Vec<f64> = (1..=10).rev().map(f64::from).collect();
        assert_eq!(percentile(&mut values, 50.0), 5.0);
        assert_eq!(percentile(&mut values, 90.0), 9.0);
        assert_eq!(percentile(&mut values, 99.0), 10.0);
        assert_eq!(percentile(&mut values, 100.0), 10.0);
        assert_eq!(percentile(&mut values, 0.0), 1.0);
        assert_eq!(percentile(&mut values, 10.0), 1.0);
        assert_eq!(percentile(&mut values, 10.1), 2.0);
        let mut hundred: Vec<f64> = (1..=1000).map(f64::from).collect();
        assert_eq!(percentile(&mut hundred, 99.9), 999.0);
        assert_eq!(percentile(&mut [42.0], 99.0), 42.0);
        assert!(percentile(&mut [], 50.0).is_nan());
    }

    #[test]
    fn statistics_parse_and_compute() {
        let mut values = vec![4.0, 1.0, 3.0, 2.0];
        let compute = |s: &str, v: &mut Vec<f64>| Statistic::parse(s).unwrap().compute(v);
        assert_eq!(compute("SampleCount", &mut values), 4.0);
        assert_eq!(compute("Sum", &mut values), 10.0);
        assert_eq!(compute("Average", &mut values), 2.5);
        assert_eq!(compute("Minimum", &mut values), 1.0);
        assert_eq!(compute("Maximum", &mut values), 4.0);
        assert_eq!(compute("p50", &mut values), 2.0);
        assert_eq!(Statistic::parse("p99.9").unwrap(), Statistic::Percentile(99.9));
        for bad in ["average", "p", "p101", "tm99", "p-1", "IQM", "pNaN"] {
            assert!(Statistic::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn buckets_align_to_the_origin() {
        let point = |timestamp_ms, value| Point {
            timestamp_ms,
            value,
            unit: "Count",
        };
        let points = [point(1_000, 1.0), point(60_999, 2.0), point(61_000, 3.0), point(0, 4.0)];
        let grouped = buckets(&points, 1_000, 60_000);
        assert_eq!(
            grouped.into_iter().collect::<Vec<_>>(),
            [(-59_000, vec![4.0]), (1_000, vec![1.0, 2.0]), (61_000, vec![3.0])]
        );
    }

    fn datapoint(name: &str, d: &[(&str, &str)], timestamp_ms: i64, value: f64) -> Datapoint {
        Datapoint {
            key: SeriesKey::new("N", name, dims(d)),
            point: Point {
                timestamp_ms,
                value,
                unit: "Count",
            },
        }
    }

    #[test]
    fn the_store_lists_filters_and_selects() {
        let store = MetricStore::default();
        let recorded = store.record(
            vec![
                datapoint("A", &[("Function", "F"), ("Route", "R")], NOW, 1.0),
                datapoint("A", &[("Function", "G")], NOW, 2.0),
                datapoint("B", &[], NOW - 10, 3.0),
                datapoint("B", &[], NOW - RETENTION.as_millis() as i64 - 1, 3.0),
                datapoint("B", &[], NOW + MAX_FUTURE.as_millis() as i64 + 1, 3.0),
            ],
            NOW,
        );
        assert_eq!((recorded.stored, recorded.refused), (3, 2));
        assert_eq!(store.list(&ListFilter::default(), NOW).len(), 3);
        let by_function = ListFilter {
            dimensions: vec![("Function".into(), None)],
            ..ListFilter::default()
        };
        assert_eq!(store.list(&by_function, NOW).len(), 2);
        let recent = ListFilter {
            active_since_ms: Some(NOW - 5),
            ..ListFilter::default()
        };
        assert_eq!(store.list(&recent, NOW).len(), 2, "B's only point is 10 ms old");
        let by_value = ListFilter {
            name: Some("A".into()),
            dimensions: vec![("Function".into(), Some("F".into()))],
            ..ListFilter::default()
        };
        assert_eq!(
            store.list(&by_value, NOW),
            [SeriesKey::new("N", "A", dims(&[("Route", "R"), ("Function", "F")]))]
        );
        let b = SeriesKey::new("N", "B", []);
        assert_eq!(store.points(&b, NOW - 10, NOW, None).len(), 1);
        assert_eq!(store.points(&b, NOW - 9, NOW, None).len(), 0, "start is inclusive");
        assert_eq!(store.points(&b, NOW - 20, NOW - 10, None).len(), 0, "end is exclusive");
        assert_eq!(
            store.points(&b, NOW - 10, NOW, Some("Seconds")).len(),
            0,
            "units filter"
        );
    }

    #[test]
    fn the_store_is_bounded() {
        let store = MetricStore::with_limits(5, 2);
        for i in 0..4 {
            store.record(vec![datapoint("A", &[], NOW + i, i as f64)], NOW);
            store.record(vec![datapoint("B", &[], NOW + i, i as f64)], NOW);
        }
        assert_eq!(store.datapoint_count(), 5);
        let a = SeriesKey::new("N", "A", []);
        let b = SeriesKey::new("N", "B", []);
        let values = |key| -> Vec<f64> { store.points(key, 0, i64::MAX, None).iter().map(|p| p.value).collect() };
        assert_eq!(values(&a), [2.0, 3.0], "the oldest points go first");
        assert_eq!(values(&b), [1.0, 2.0, 3.0]);

        let refused = store.record(vec![datapoint("C", &[], NOW, 1.0)], NOW);
        assert_eq!((refused.stored, refused.first_series_refusal), (0, true));
        let again = store.record(vec![datapoint("D", &[], NOW, 1.0)], NOW);
        assert_eq!((again.stored, again.first_series_refusal), (0, false), "said once");

        // A day later everything has expired, and the series are gone with their points.
        let later = NOW + RETENTION.as_millis() as i64 + 10;
        assert!(store.list(&ListFilter::default(), later).is_empty());
        assert_eq!(store.datapoint_count(), 0);
        assert_eq!(store.record(vec![datapoint("C", &[], later, 1.0)], later).stored, 1);
    }
}
