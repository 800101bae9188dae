//! DynamoDB stream: group activity onto the members' list keys, and deleted conversations purged
#[tokio::main]
async fn main() -> Result<(), parley::http::LambdaError> {
    parley::api::conversation_worker::serve().await
}
