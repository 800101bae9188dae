//! SNS: CloudWatch alarm notifications from the alarm topic
#[tokio::main]
async fn main() -> Result<(), parley::http::LambdaError> {
    parley::ops::alarms::serve().await
}
