//! `PATCH /conversations/{conversationId}/members/{userId}`
#[tokio::main]
async fn main() -> Result<(), parley::http::LambdaError> {
    parley::http::serve(parley::api::conversations::set_role).await
}
