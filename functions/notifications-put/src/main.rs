//! `PUT /conversations/{conversationId}/notifications`
#[tokio::main]
async fn main() -> Result<(), parley::http::LambdaError> {
    parley::http::serve(parley::api::push::put_notifications).await
}
