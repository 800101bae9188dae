//! `DELETE /conversations/{conversationId}/members/{userId}`
#[tokio::main]
async fn main() -> Result<(), parley::http::LambdaError> {
    parley::http::serve(parley::api::conversations::remove_member).await
}
