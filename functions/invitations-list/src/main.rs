//! `GET /users/me/invitations`
#[tokio::main]
async fn main() -> Result<(), parley::http::LambdaError> {
    parley::http::serve(parley::api::invitations::list).await
}
