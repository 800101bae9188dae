//! `GET /auth/sessions`
#[tokio::main]
async fn main() -> Result<(), parley::http::LambdaError> {
    parley::http::serve(parley::api::auth::sessions_list).await
}
