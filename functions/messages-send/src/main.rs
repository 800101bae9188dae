//! `POST /conversations/{conversationId}/messages`
#[tokio::main]
async fn main() -> Result<(), parley::http::LambdaError> {
    parley::http::serve(parley::api::messages::send).await
}
