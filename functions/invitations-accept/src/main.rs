//! `POST /invitations/{invitationId}/accept`
#[tokio::main]
async fn main() -> Result<(), parley::http::LambdaError> {
    parley::http::serve(parley::api::invitations::accept).await
}
