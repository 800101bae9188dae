//! `GET /conversations/{conversationId}/messages/{messageId}/replies`
#[tokio::main]
async fn main() -> Result<(), parley::http::LambdaError> {
    parley::http::serve(parley::api::messages::replies).await
}
