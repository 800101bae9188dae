//! `GET /conversations/{conversationId}/messages/{messageId}`
#[tokio::main]
async fn main() -> Result<(), parley::http::LambdaError> {
    parley::http::serve(parley::api::messages::get).await
}
