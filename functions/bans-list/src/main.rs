//! `GET /conversations/{conversationId}/bans`
#[tokio::main]
async fn main() -> Result<(), parley::http::LambdaError> {
    parley::http::serve(parley::api::bans::list).await
}
