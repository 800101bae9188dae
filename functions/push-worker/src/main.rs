//! SQS: the push queue's jobs, pushed to offline members' devices
#[tokio::main]
async fn main() -> Result<(), parley::http::LambdaError> {
    parley::push::worker::serve().await
}
