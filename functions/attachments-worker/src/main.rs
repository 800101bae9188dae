//! DynamoDB stream: the objects of deleted messages and of expired uploads deleted
#[tokio::main]
async fn main() -> Result<(), parley::http::LambdaError> {
    parley::api::attachments::serve_worker().await
}
