//! `POST /conversations/{conversationId}/members`
#[tokio::main]
async fn main() -> Result<(), parley::http::LambdaError> {
    parley::http::serve(parley::api::conversations::add_members).await
}
