//! `PUT /conversations/{conversationId}/bans/{userId}`
#[tokio::main]
async fn main() -> Result<(), parley::http::LambdaError> {
    parley::http::serve(parley::api::bans::put).await
}
