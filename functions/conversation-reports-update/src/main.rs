//! `PATCH /conversations/{conversationId}/reports/{reportId}`
#[tokio::main]
async fn main() -> Result<(), parley::http::LambdaError> {
    parley::http::serve(parley::api::reports::update).await
}
