//! `PATCH /users/me`
#[tokio::main]
async fn main() -> Result<(), parley::http::LambdaError> {
    parley::http::serve(parley::api::users::update_me).await
}
