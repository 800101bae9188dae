//! `DELETE /conversations/{conversationId}/messages/{messageId}/reactions/{reaction}`
#[tokio::main]
async fn main() -> Result<(), parley::http::LambdaError> {
    parley::http::serve(parley::api::messages::unreact).await
}
