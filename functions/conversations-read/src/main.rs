//! `POST /conversations/{conversationId}/read`
#[tokio::main]
async fn main() -> Result<(), parley::http::LambdaError> {
    parley::http::serve(parley::api::conversations::mark_read).await
}
