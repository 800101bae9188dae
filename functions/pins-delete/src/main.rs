//! `DELETE /conversations/{conversationId}/pins/{messageId}`
#[tokio::main]
async fn main() -> Result<(), parley::http::LambdaError> {
    parley::http::serve(parley::api::pins::delete).await
}
