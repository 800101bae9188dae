//! SQS: the delivery queue's batches of events, posted to the members' connections
#[tokio::main]
async fn main() -> Result<(), parley::http::LambdaError> {
    parley::realtime::worker::serve().await
}
