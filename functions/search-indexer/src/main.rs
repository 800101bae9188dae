//! DynamoDB stream: message items into the search index
#[tokio::main]
async fn main() -> Result<(), parley::http::LambdaError> {
    parley::api::search_indexer::serve().await
}
