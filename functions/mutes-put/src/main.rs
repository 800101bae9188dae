//! `PUT /conversations/{conversationId}/mutes/{userId}`
#[tokio::main]
async fn main() -> Result<(), parley::http::LambdaError> {
    parley::http::serve(parley::api::mutes::put).await
}
