//! The alarm responder: each CloudWatch alarm notification from the alarm topic (SNS) becomes a
//! structured incident record in the logs and a readable message in the operators' conversation, with
//! the alarm's recent datapoints and the other alarms firing at the same time. Nothing a notification
//! carries can make it fail: a malformed one is logged and skipped, so SNS never retries into a loop.

use std::time::{Duration, SystemTime};

use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, StateValue};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::context::AppContext;
use crate::domain::messages::{self, NewMessage};
use crate::realtime::Skip;

/// A CloudWatch alarm notification, as CloudWatch publishes it to SNS.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AlarmNotification {
    pub alarm_name: String,
    #[serde(default)]
    pub alarm_description: Option<String>,
    pub new_state_value: String,
    #[serde(default)]
    pub old_state_value: Option<String>,
    #[serde(default)]
    pub new_state_reason: Option<String>,
    #[serde(default)]
    pub state_change_time: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub trigger: Option<Trigger>,
    /// Composite alarms carry their rule instead of a trigger.
    #[serde(default)]
    pub alarm_rule: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Trigger {
    #[serde(default)]
    pub metric_name: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub statistic: Option<String>,
    #[serde(default)]
    pub extended_statistic: Option<String>,
    #[serde(default)]
    pub dimensions: Vec<TriggerDimension>,
    #[serde(default)]
    pub period: Option<i32>,
    #[serde(default)]
    pub threshold: Option<f64>,
    #[serde(default)]
    pub comparison_operator: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TriggerDimension {
    pub name: String,
    pub value: String,
}

/// What CloudWatch adds to a notification.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlarmContext {
    /// Recent values of the alarm's metric, oldest first: (time, value).
    pub datapoints: Vec<(String, f64)>,
    /// Other alarms in ALARM now.
    pub firing: Vec<String>,
    /// Whether CloudWatch knows the alarm (false: deleted or renamed since).
    pub known: bool,
    /// Why CloudWatch could not be asked, if it could not.
    pub unavailable: Option<String>,
}

pub fn parse(message: &str) -> Result<AlarmNotification, String> {
    serde_json::from_str(message).map_err(|e| format!("not a CloudWatch alarm notification: {e}"))
}

/// Asks CloudWatch for the alarm, its recent datapoints and the alarms firing with it.
pub struct CloudWatchContext {
    client: aws_sdk_cloudwatch::Client,
}

const HISTORY: Duration = Duration::from_secs(30 * 60);

impl CloudWatchContext {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        CloudWatchContext {
            client: aws_sdk_cloudwatch::Client::new(sdk),
        }
    }

    pub async fn lookup(&self, alarm: &AlarmNotification) -> AlarmContext {
        let mut context = AlarmContext::default();
        let described = self
            .client
            .describe_alarms()
            .alarm_names(&alarm.alarm_name)
            .send()
            .await;
        match described {
            Ok(out) => context.known = !out.metric_alarms().is_empty() || !out.composite_alarms().is_empty(),
            Err(e) => {
                context.unavailable = Some(aws_sdk_cloudwatch::error::DisplayErrorContext(&e).to_string());
                return context;
            }
        }
        if let Ok(out) = self
            .client
            .describe_alarms()
            .state_value(StateValue::Alarm)
            .send()
            .await
        {
            context.firing = out
                .metric_alarms()
                .iter()
                .filter_map(|a| a.alarm_name())
                .chain(out.composite_alarms().iter().filter_map(|a| a.alarm_name()))
                .filter(|name| *name != alarm.alarm_name)
                .map(str::to_owned)
                .collect();
        }
        if let Some(trigger) = &alarm.trigger {
            if let (Some(metric), Some(namespace)) = (&trigger.metric_name, &trigger.namespace) {
                let dimensions: Vec<Dimension> = trigger
                    .dimensions
                    .iter()
                    .map(|d| Dimension::builder().name(&d.name).value(&d.value).build())
                    .collect();
                let stat = trigger
                    .extended_statistic
                    .clone()
                    .or_else(|| trigger.statistic.as_ref().map(|s| capitalise(s)))
                    .unwrap_or_else(|| "Average".to_owned());
                let query = MetricDataQuery::builder()
                    .id("m")
                    .metric_stat(
                        MetricStat::builder()
                            .metric(
                                Metric::builder()
                                    .namespace(namespace)
                                    .metric_name(metric)
                                    .set_dimensions(Some(dimensions))
                                    .build(),
                            )
                            .period(trigger.period.unwrap_or(60))
                            .stat(stat)
                            .build(),
                    )
                    .build();
                let now = SystemTime::now();
                let result = self
                    .client
                    .get_metric_data()
                    .metric_data_queries(query)
                    .start_time(aws_sdk_cloudwatch::primitives::DateTime::from(now - HISTORY))
                    .end_time(aws_sdk_cloudwatch::primitives::DateTime::from(now))
                    .send()
                    .await;
                if let Ok(out) = result {
                    if let Some(series) = out.metric_data_results().first() {
                        let mut points: Vec<(String, f64)> = series
                            .timestamps()
                            .iter()
                            .zip(series.values())
                            .map(|(at, value)| (at.to_string(), *value))
                            .collect();
                        points.sort_by(|a, b| a.0.cmp(&b.0));
                        context.datapoints = points;
                    }
                }
            }
        }
        context
    }
}

/// CloudWatch notifications write statistics in capitals (`AVERAGE`); GetMetricData wants `Average`.
fn capitalise(statistic: &str) -> String {
    match statistic.to_ascii_uppercase().as_str() {
        "SAMPLE_COUNT" | "SAMPLECOUNT" => "SampleCount".to_owned(),
        other => {
            let lower = other.to_ascii_lowercase();
            let mut chars = lower.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        }
    }
}

/// The structured incident record logged for every notification.
pub fn incident(alarm: &AlarmNotification, context: &AlarmContext) -> Value {
    json!({
        "incident": alarm.alarm_name,
        "state": alarm.new_state_value,
        "previousState": alarm.old_state_value,
        "reason": alarm.new_state_reason,
        "at": alarm.state_change_time,
        "region": alarm.region,
        "metric": alarm.trigger.as_ref().and_then(|t| t.metric_name.clone()),
        "rule": alarm.alarm_rule,
        "datapoints": context.datapoints.iter().map(|(at, v)| json!({ "at": at, "value": v })).collect::<Vec<_>>(),
        "alsoFiring": context.firing,
        "knownToCloudWatch": context.known,
        "contextUnavailable": context.unavailable,
    })
}

/// The chat message the operators read.
pub fn render(alarm: &AlarmNotification, context: &AlarmContext) -> String {
    let headline = match alarm.new_state_value.as_str() {
        "ALARM" => format!("🔴 ALARM: {}", alarm.alarm_name),
        "OK" => format!("✅ Resolved: {}", alarm.alarm_name),
        other => format!("⚠️ {other}: {}", alarm.alarm_name),
    };
    let mut lines = vec![headline];
    if let Some(description) = &alarm.alarm_description {
        lines.push(description.clone());
    }
    if let Some(reason) = &alarm.new_state_reason {
        lines.push(format!("Why: {reason}"));
    }
    if let Some(rule) = &alarm.alarm_rule {
        lines.push(format!("Rule: {rule}"));
    }
    if let Some(trigger) = &alarm.trigger {
        if let (Some(metric), Some(threshold)) = (&trigger.metric_name, trigger.threshold) {
            lines.push(format!(
                "Metric: {} {metric} {} {threshold}",
                trigger.namespace.as_deref().unwrap_or(""),
                trigger.comparison_operator.as_deref().unwrap_or("vs")
            ));
        }
    }
    if !context.datapoints.is_empty() {
        let recent: Vec<String> = context
            .datapoints
            .iter()
            .rev()
            .take(6)
            .rev()
            .map(|(at, v)| format!("{} {v:.1}", &at[at.len().min(11)..]))
            .collect();
        lines.push(format!("Recent values: {}", recent.join(", ")));
    }
    if !context.firing.is_empty() {
        lines.push(format!("Also firing: {}", context.firing.join(", ")));
    }
    if !context.known && context.unavailable.is_none() {
        lines.push("(CloudWatch no longer knows this alarm.)".to_owned());
    }
    if let Some(why) = &context.unavailable {
        lines.push(format!(
            "(No CloudWatch context: {})",
            why.chars().take(200).collect::<String>()
        ));
    }
    if let Some(at) = &alarm.state_change_time {
        lines.push(format!(
            "At {at}{}",
            alarm.region.as_deref().map(|r| format!(" in {r}")).unwrap_or_default()
        ));
    }
    let text = lines.join("\n");
    text.chars().take(messages::BODY_LEN.end() - 1).collect()
}

/// Where alarm messages go: a Parley user (the bot) and a conversation it is a member of.
#[derive(Debug, Clone)]
pub struct Operators {
    pub user_id: String,
    pub conversation_id: String,
}

impl Operators {
    pub fn from_env() -> Option<Self> {
        let user_id = std::env::var("OPERATOR_USER_ID").ok().filter(|v| !v.is_empty())?;
        let conversation_id = std::env::var("OPERATORS_CONVERSATION_ID")
            .ok()
            .filter(|v| !v.is_empty())?;
        Some(Operators {
            user_id,
            conversation_id,
        })
    }
}

/// What became of one SNS record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Posted { message_id: String },
    Logged,
    Skipped(String),
}

/// Handles one SNS event (any number of records); never fails.
pub async fn respond(
    context: &AppContext,
    cloudwatch: &CloudWatchContext,
    operators: Option<&Operators>,
    event: &Value,
) -> Vec<Outcome> {
    let Some(records) = event.get("Records").and_then(Value::as_array) else {
        tracing::warn!("alarm responder got an event without SNS records");
        return vec![Outcome::Skipped("no SNS records".to_owned())];
    };
    let mut outcomes = Vec::new();
    for record in records {
        let sns = &record["Sns"];
        let sns_id = sns["MessageId"].as_str().unwrap_or("unknown").to_owned();
        let alarm = match sns["Message"]
            .as_str()
            .ok_or("no Message")
            .map_err(str::to_owned)
            .and_then(parse)
        {
            Ok(alarm) => alarm,
            Err(problem) => {
                tracing::warn!(snsMessageId = %sns_id, problem = %problem, "skipping a notification that is not an alarm");
                outcomes.push(Outcome::Skipped(problem));
                continue;
            }
        };
        let lookup = cloudwatch.lookup(&alarm).await;
        tracing::info!(record = %incident(&alarm, &lookup), "incident");
        let Some(operators) = operators else {
            outcomes.push(Outcome::Logged);
            continue;
        };
        // The SNS message id makes a redelivered notification the same message, not a second one.
        let client_id: String = format!("alarm-{sns_id}")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .take(64)
            .collect();
        let input = NewMessage {
            client_message_id: client_id,
            body: render(&alarm, &lookup),
            encrypted: false,
            ..NewMessage::default()
        };
        let sent = match messages::send(
            context,
            &operators.user_id,
            &operators.conversation_id,
            input,
            Skip::Nobody,
        )
        .await
        {
            Ok(published) => crate::realtime::deliver(context, published).await,
            Err(e) => Err(e),
        };
        match sent {
            Ok(sent) => {
                outcomes.push(Outcome::Posted {
                    message_id: sent.message.id,
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not post the alarm to the operators' conversation");
                outcomes.push(Outcome::Logged);
            }
        }
    }
    outcomes
}

/// Runs the responder as this process's Lambda function.
pub async fn serve() -> Result<(), crate::http::LambdaError> {
    crate::logging::init();
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let context: &'static AppContext = Box::leak(Box::new(AppContext::new(crate::config::Config::from_env()?, &sdk)));
    let cloudwatch: &'static CloudWatchContext = Box::leak(Box::new(CloudWatchContext::new(&sdk)));
    let operators: &'static Option<Operators> = Box::leak(Box::new(Operators::from_env()));
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<Value>| {
            let future: futures_util::future::BoxFuture<'static, Result<Value, crate::http::LambdaError>> =
                Box::pin(async move {
                    let outcomes = respond(context, cloudwatch, operators.as_ref(), &event.payload).await;
                    Ok(json!({ "handled": outcomes.len() }))
                });
            future
        },
    ))
    .await
}
