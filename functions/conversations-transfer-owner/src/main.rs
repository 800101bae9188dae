//! `POST /conversations/{conversationId}/owner`
#[tokio::main]
async fn main() -> Result<(), parley::http::LambdaError> {
    parley::http::serve(parley::api::conversations::transfer_ownership).await
}
