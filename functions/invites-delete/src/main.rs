//! `DELETE /conversations/{conversationId}/invites/{code}`
#[tokio::main]
async fn main() -> Result<(), parley::http::LambdaError> {
    parley::http::serve(parley::api::invitations::revoke_invite).await
}
