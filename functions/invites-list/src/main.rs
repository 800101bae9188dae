//! `GET /conversations/{conversationId}/invites`
#[tokio::main]
async fn main() -> Result<(), parley::http::LambdaError> {
    parley::http::serve(parley::api::invitations::list_invites).await
}
