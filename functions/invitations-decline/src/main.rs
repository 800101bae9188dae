//! `DELETE /invitations/{invitationId}`
#[tokio::main]
async fn main() -> Result<(), parley::http::LambdaError> {
    parley::http::serve(parley::api::invitations::decline).await
}
