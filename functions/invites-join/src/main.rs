//! `POST /invites/{code}/join`
#[tokio::main]
async fn main() -> Result<(), parley::http::LambdaError> {
    parley::http::serve(parley::api::invitations::join).await
}
