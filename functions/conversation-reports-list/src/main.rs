//! `GET /conversations/{conversationId}/reports`
#[tokio::main]
async fn main() -> Result<(), parley::http::LambdaError> {
    parley::http::serve(parley::api::reports::list).await
}
