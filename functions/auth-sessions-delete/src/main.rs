//! `DELETE /auth/sessions/{sessionId}`
#[tokio::main]
async fn main() -> Result<(), parley::http::LambdaError> {
    parley::http::serve(parley::api::auth::sessions_delete).await
}
