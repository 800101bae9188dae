//! The gateway's CloudWatch metrics API, driven by the real aws-sdk-cloudwatch client, over the EMF lines
//! the fixture function `fixture-metrics` prints (tests/fixtures/template.yaml: MetricsAlphaFunction and
//! MetricsBetaFunction are that one binary under two names).

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_cloudwatch::error::ProvideErrorMetadata;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{
    Dimension, DimensionFilter, Metric, MetricDataQuery, MetricDataResult, MetricStat, RecentlyActive, ScanBy,
    StandardUnit, Statistic, StatusCode,
};
use local_stack::{LocalStack, Options};
use serde_json::{json, Value};

const ALPHA: &str = "MetricsAlphaFunction";
const BETA: &str = "MetricsBetaFunction";

async fn start() -> LocalStack {
    let template = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/template.yaml");
    let mut options = Options::for_tests(template);
    options.parameters.insert("FixtureSecret".into(), "s3cret".into());
    LocalStack::start(options).await.expect("the fixture stack starts")
}

fn client(endpoint: &str) -> aws_sdk_cloudwatch::Client {
    let config = aws_sdk_cloudwatch::Config::builder()
        .behavior_version(aws_sdk_cloudwatch::config::BehaviorVersion::latest())
        .region(aws_sdk_cloudwatch::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_cloudwatch::config::Credentials::new(
            "local", "local", None, None, "tests",
        ))
        .endpoint_url(endpoint)
        .build();
    aws_sdk_cloudwatch::Client::from_conf(config)
}

/// Invokes a metrics fixture; returns the CloudWatch endpoint it was given.
async fn record(stack: &LocalStack, function: &str, payload: Value) -> String {
    let answer = stack.invoke(function, &payload).await.expect("the fixture answers");
    answer["endpoint"]
        .as_str()
        .expect("AWS_ENDPOINT_URL_CLOUDWATCH is set")
        .to_owned()
}

fn dimension(name: &str, value: &str) -> Dimension {
    Dimension::builder().name(name).value(value).build()
}

fn latency_of(dimensions: &[Dimension]) -> Metric {
    Metric::builder()
        .namespace("Parley")
        .metric_name("Latency")
        .set_dimensions(Some(dimensions.to_vec()))
        .build()
}

fn query(id: &str, metric: Metric, period: i32, stat: &str) -> MetricDataQuery {
    MetricDataQuery::builder()
        .id(id)
        .metric_stat(MetricStat::builder().metric(metric).period(period).stat(stat).build())
        .build()
}

fn minutes_ago(minutes: u64) -> DateTime {
    DateTime::from(SystemTime::now() - Duration::from_secs(minutes * 60))
}

fn in_minutes(minutes: u64) -> DateTime {
    DateTime::from(SystemTime::now() + Duration::from_secs(minutes * 60))
}

/// Asks until `done` holds: the gateway reads the functions' output asynchronously, as CloudWatch Logs
/// does, so a metric line can arrive a moment after the invocation returned.
async fn eventually<T, F, Fut>(what: &str, mut ask: F, done: impl Fn(&T) -> bool) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
    T: std::fmt::Debug,
{
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let answer = ask().await;
        if done(&answer) {
            return answer;
        }
        assert!(Instant::now() < deadline, "{what}: still {answer:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn single_value(result: &MetricDataResult) -> f64 {
    assert_eq!(result.status_code(), Some(&StatusCode::Complete), "{result:?}");
    assert_eq!(result.values().len(), 1, "one period holds everything: {result:?}");
    assert_eq!(result.timestamps().len(), 1);
    result.values()[0]
}

#[tokio::test]
async fn metrics_from_emf_lines_are_listed_and_aggregated_per_function() {
    let stack = start().await;
    // Alpha: 1..=100 ms, the first ten as one EMF array, the rest one line each; Beta: 1000 and 2000 ms.
    let endpoint = record(
        &stack,
        ALPHA,
        json!({ "route": "GET /a", "latencies": (1..=10).collect::<Vec<_>>(), "asArray": true }),
    )
    .await;
    assert_eq!(
        endpoint,
        stack.cloudwatch_url(),
        "the functions are pointed at the gateway"
    );
    for chunk in (11..=100).collect::<Vec<u32>>().chunks(30) {
        record(&stack, ALPHA, json!({ "route": "GET /a", "latencies": chunk })).await;
    }
    record(&stack, BETA, json!({ "route": "POST /b", "latencies": [2000, 1000] })).await;
    let cloudwatch = client(&endpoint);

    let list = || async {
        let listed = cloudwatch
            .list_metrics()
            .namespace("Parley")
            .metric_name("Latency")
            .send()
            .await
            .expect("ListMetrics");
        assert!(listed.next_token().is_none());
        let mut series: Vec<Vec<(String, String)>> = listed
            .metrics()
            .iter()
            .map(|m| {
                assert_eq!((m.namespace(), m.metric_name()), (Some("Parley"), Some("Latency")));
                m.dimensions()
                    .iter()
                    .map(|d| (d.name().unwrap().to_owned(), d.value().unwrap().to_owned()))
                    .collect()
            })
            .collect();
        series.sort();
        series
    };
    let series = eventually("ListMetrics", list, |s: &Vec<_>| s.len() == 3).await;
    let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    assert_eq!(
        series,
        [
            vec![],
            vec![pair("Function", ALPHA), pair("Route", "GET /a")],
            vec![pair("Function", BETA), pair("Route", "POST /b")],
        ],
        "one series per dimension set, and no more: the malformed lines count nothing"
    );

    let alpha = [dimension("Function", ALPHA), dimension("Route", "GET /a")];
    let beta = [dimension("Route", "POST /b"), dimension("Function", BETA)];
    let stats = [
        "SampleCount",
        "Sum",
        "Average",
        "Minimum",
        "Maximum",
        "p50",
        "p99",
        "p99.9",
    ];
    let mut queries = Vec::new();
    for (prefix, dimensions) in [("alpha", &alpha[..]), ("beta", &beta[..]), ("all", &[][..])] {
        for stat in stats {
            let id = format!("{prefix}_{}", stat.replace('.', "_").to_lowercase());
            queries.push(query(&id, latency_of(dimensions), 3600, stat));
        }
    }
    let ask = || {
        cloudwatch
            .get_metric_data()
            .set_metric_data_queries(Some(queries.clone()))
            .start_time(minutes_ago(10))
            .end_time(in_minutes(5))
            .send()
    };
    let out = eventually(
        "GetMetricData",
        || async { ask().await.expect("GetMetricData") },
        |out| {
            let all = out
                .metric_data_results()
                .iter()
                .find(|r| r.id() == Some("all_samplecount"));
            all.is_some_and(|r| r.values() == [102.0])
        },
    )
    .await;
    assert!(out.messages().is_empty());
    assert!(out.next_token().is_none());
    let value = |id: &str| {
        let result = out
            .metric_data_results()
            .iter()
            .find(|r| r.id() == Some(id))
            .unwrap_or_else(|| panic!("no result {id}"));
        assert_eq!(result.label(), Some("Latency"), "the default label is the metric name");
        single_value(result)
    };
    assert_eq!(out.metric_data_results().len(), 24, "results in query order, one each");
    assert_eq!(out.metric_data_results()[0].id(), Some("alpha_samplecount"));
    let expected = [
        ("alpha_samplecount", 100.0),
        ("alpha_sum", 5050.0),
        ("alpha_average", 50.5),
        ("alpha_minimum", 1.0),
        ("alpha_maximum", 100.0),
        ("alpha_p50", 50.0),
        ("alpha_p99", 99.0),
        ("alpha_p99_9", 100.0),
        ("beta_samplecount", 2.0),
        ("beta_sum", 3000.0),
        ("beta_average", 1500.0),
        ("beta_minimum", 1000.0),
        ("beta_maximum", 2000.0),
        ("beta_p50", 1000.0),
        ("beta_p99", 2000.0),
        ("all_samplecount", 102.0),
        ("all_sum", 8050.0),
        ("all_minimum", 1.0),
        ("all_maximum", 2000.0),
        ("all_p50", 51.0),
        ("all_p99", 1000.0),
    ];
    for (id, wanted) in expected {
        assert_eq!(value(id), wanted, "{id}");
    }

    // The Requests count of the same lines, by function: an array line counted its ten at once.
    let requests = |function: &str, route: &str| {
        query(
            &format!("requests_{}", function.to_lowercase()),
            Metric::builder()
                .namespace("Parley")
                .metric_name("Requests")
                .dimensions(dimension("Function", function))
                .dimensions(dimension("Route", route))
                .build(),
            60,
            "Sum",
        )
    };
    let out = cloudwatch
        .get_metric_data()
        .metric_data_queries(requests(ALPHA, "GET /a"))
        .metric_data_queries(requests(BETA, "POST /b"))
        .start_time(minutes_ago(10))
        .end_time(in_minutes(5))
        .send()
        .await
        .unwrap();
    let sums: Vec<f64> = out
        .metric_data_results()
        .iter()
        .map(|r| r.values().iter().sum())
        .collect();
    assert_eq!(sums, [100.0, 2.0]);

    // GetMetricStatistics, the older call, over the same data.
    let statistics = cloudwatch
        .get_metric_statistics()
        .namespace("Parley")
        .metric_name("Latency")
        .set_dimensions(Some(beta.to_vec()))
        .start_time(minutes_ago(10))
        .end_time(in_minutes(5))
        .period(3600)
        .statistics(Statistic::SampleCount)
        .statistics(Statistic::Maximum)
        .send()
        .await
        .unwrap();
    assert_eq!(statistics.label(), Some("Latency"));
    let [datapoint] = statistics.datapoints() else {
        panic!("one datapoint: {statistics:?}")
    };
    assert_eq!(datapoint.sample_count(), Some(2.0));
    assert_eq!(datapoint.maximum(), Some(2000.0));
    assert_eq!(datapoint.unit(), Some(&StandardUnit::Milliseconds));
    let extended = cloudwatch
        .get_metric_statistics()
        .namespace("Parley")
        .metric_name("Latency")
        .start_time(minutes_ago(10))
        .end_time(in_minutes(5))
        .period(3600)
        .extended_statistics("p99")
        .send()
        .await
        .unwrap();
    assert_eq!(
        extended.datapoints()[0].extended_statistics().unwrap().get("p99"),
        Some(&1000.0)
    );
    stack.stop().await;
}

#[tokio::test]
async fn periods_are_buckets_newest_first_and_filters_narrow_the_list() {
    let stack = start().await;
    // Mid-minute, five and two minutes back: the periods they fall in do not depend on when this runs.
    let now_ms = DateTime::from(SystemTime::now()).to_millis().unwrap();
    let older_ms = now_ms - now_ms % 60_000 - 5 * 60_000 + 30_000;
    let endpoint = record(
        &stack,
        ALPHA,
        json!({ "route": "GET /old", "latencies": [7, 3], "atMs": older_ms }),
    )
    .await;
    record(
        &stack,
        ALPHA,
        json!({ "route": "GET /old", "latencies": [9], "atMs": older_ms + 3 * 60_000 }),
    )
    .await;
    record(&stack, BETA, json!({ "route": "GET /old", "latencies": [4] })).await;
    let four_hours_ago = now_ms - 4 * 3600 * 1000;
    record(
        &stack,
        ALPHA,
        json!({ "route": "GET /ancient", "latencies": [1], "atMs": four_hours_ago }),
    )
    .await;
    let cloudwatch = client(&endpoint);

    let alpha_old = latency_of(&[dimension("Function", ALPHA), dimension("Route", "GET /old")]);
    let ask = |scan_by: ScanBy| {
        cloudwatch
            .get_metric_data()
            .metric_data_queries(query("m", alpha_old.clone(), 60, "Sum"))
            .start_time(minutes_ago(30))
            .end_time(in_minutes(1))
            .scan_by(scan_by)
            .send()
    };
    let out = eventually(
        "the three Alpha points",
        || async { ask(ScanBy::TimestampDescending).await.unwrap() },
        |out| out.metric_data_results()[0].values().len() == 2,
    )
    .await;
    let result = &out.metric_data_results()[0];
    assert_eq!(
        result.values(),
        [9.0, 10.0],
        "newest period first, the two older points summed"
    );
    let [newer, older] = result.timestamps() else {
        panic!("two timestamps")
    };
    assert_eq!(
        (older.to_millis().unwrap(), newer.to_millis().unwrap()),
        (older_ms - 30_000, older_ms - 30_000 + 180_000),
        "periods start on whole minutes"
    );

    let ascending = ask(ScanBy::TimestampAscending).await.unwrap();
    assert_eq!(ascending.metric_data_results()[0].values(), [10.0, 9.0]);

    // A window that starts after the older points leaves them out; one before them all finds nothing.
    let recent = cloudwatch
        .get_metric_data()
        .metric_data_queries(query("m", alpha_old.clone(), 60, "SampleCount"))
        .start_time(minutes_ago(3))
        .end_time(in_minutes(1))
        .send()
        .await
        .unwrap();
    assert_eq!(recent.metric_data_results()[0].values(), [1.0]);
    let before = cloudwatch
        .get_metric_data()
        .metric_data_queries(query("m", alpha_old.clone(), 60, "SampleCount"))
        .start_time(minutes_ago(60))
        .end_time(minutes_ago(30))
        .send()
        .await
        .unwrap();
    assert_eq!(
        before.metric_data_results()[0].status_code(),
        Some(&StatusCode::Complete)
    );
    assert!(before.metric_data_results()[0].values().is_empty());

    // Beta's point may still be on its way when Alpha's are in.
    let by_function = |function: &'static str| {
        let cloudwatch = &cloudwatch;
        move || async move {
            cloudwatch
                .list_metrics()
                .dimensions(DimensionFilter::builder().name("Function").value(function).build())
                .send()
                .await
                .unwrap()
                .metrics()
                .iter()
                .map(|m| m.metric_name().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    let beta = eventually("Beta's metrics", by_function(BETA), |names| names.len() == 2).await;
    assert_eq!(beta, ["Latency", "Requests"]);
    let with_route = |recently_active: Option<RecentlyActive>| {
        let cloudwatch = &cloudwatch;
        move || {
            let recently_active = recently_active.clone();
            async move {
                cloudwatch
                    .list_metrics()
                    .dimensions(DimensionFilter::builder().name("Route").build())
                    .set_recently_active(recently_active)
                    .send()
                    .await
                    .unwrap()
                    .metrics()
                    .len()
            }
        }
    };
    eventually("the four-hour-old point", with_route(None), |n| *n == 6).await;
    assert_eq!(
        with_route(Some(RecentlyActive::Pt3H))().await,
        4,
        "Latency and Requests of Alpha and Beta on GET /old, not GET /ancient"
    );
    let nothing = cloudwatch.list_metrics().namespace("AWS/Lambda").send().await.unwrap();
    assert!(nothing.metrics().is_empty());
    stack.stop().await;
}

#[tokio::test]
async fn what_the_local_cloudwatch_does_not_do_is_a_clear_error() {
    let stack = start().await;
    let cloudwatch = client(&stack.cloudwatch_url());

    let unknown = cloudwatch.describe_alarms().send().await.unwrap_err();
    assert_eq!(unknown.code(), Some("UnknownOperationException"), "{unknown:?}");
    assert!(unknown.message().unwrap().contains("DescribeAlarms"));

    let bad_stat = cloudwatch
        .get_metric_data()
        .metric_data_queries(query("m", latency_of(&[]), 60, "tm90"))
        .start_time(minutes_ago(10))
        .end_time(in_minutes(1))
        .send()
        .await
        .unwrap_err();
    assert_eq!(bad_stat.code(), Some("InvalidParameterValue"), "{bad_stat:?}");
    assert!(bad_stat.message().unwrap().contains("tm90"));

    let backwards = cloudwatch
        .get_metric_data()
        .metric_data_queries(query("m", latency_of(&[]), 60, "Sum"))
        .start_time(in_minutes(1))
        .end_time(minutes_ago(10))
        .send()
        .await
        .unwrap_err();
    assert_eq!(backwards.code(), Some("InvalidParameterValue"));

    let token = cloudwatch.list_metrics().next_token("x").send().await.unwrap_err();
    assert!(
        token.as_service_error().unwrap().is_invalid_parameter_value_exception(),
        "{token:?}"
    );

    let expression = cloudwatch
        .get_metric_data()
        .metric_data_queries(query("m", latency_of(&[]), 60, "Sum"))
        .metric_data_queries(MetricDataQuery::builder().id("rate").expression("m / 60").build())
        .start_time(minutes_ago(10))
        .end_time(in_minutes(1))
        .send()
        .await
        .unwrap();
    let results = expression.metric_data_results();
    assert_eq!(results[0].status_code(), Some(&StatusCode::Complete));
    assert_eq!(results[1].status_code(), Some(&StatusCode::InternalError));
    assert!(results[1].messages()[0].value().unwrap().contains("expressions"));

    // Below the SDK: the wire protocol's own refusals are CBOR errors too.
    let http = reqwest::Client::new();
    let url = format!(
        "{}/service/GraniteServiceVersion20100801/operation/ListMetrics",
        stack.cloudwatch_url()
    );
    let cases = [
        (
            http.post(&url)
                .header("smithy-protocol", "rpc-v2-cbor")
                .body(vec![0xa1, 0x61]),
            400,
            "SerializationException",
        ),
        (http.post(&url).body(vec![0xa0]), 400, "SerializationException"),
        (
            http.get(&url).header("smithy-protocol", "rpc-v2-cbor"),
            405,
            "MethodNotAllowedException",
        ),
        (
            http.post(format!("{}/service/Other/operation/X", stack.cloudwatch_url()))
                .header("smithy-protocol", "rpc-v2-cbor"),
            404,
            "UnknownOperationException",
        ),
    ];
    for (request, status, error) in cases {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status);
        assert_eq!(response.headers()["smithy-protocol"], "rpc-v2-cbor");
        assert_eq!(response.headers()["content-type"], "application/cbor");
        let body = response.bytes().await.unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("__type") && text.contains(error), "{text}");
    }
    // An empty body is an empty input; the WebSocket API still answers on the same port.
    let empty = http
        .post(&url)
        .header("smithy-protocol", "rpc-v2-cbor")
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), 200);
    let not_upgrade = http
        .get(stack.ws_url().replace("ws://", "http://"))
        .send()
        .await
        .unwrap();
    assert_eq!(not_upgrade.status(), 426);
    stack.stop().await;
}
