//! `GET /conversations/{conversationId}/pins`
#[tokio::main]
async fn main() -> Result<(), parley::http::LambdaError> {
    parley::http::serve(parley::api::pins::list).await
}
