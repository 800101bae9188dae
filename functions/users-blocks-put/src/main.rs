//! `PUT /users/me/blocks/{userId}`
#[tokio::main]
async fn main() -> Result<(), parley::http::LambdaError> {
    parley::http::serve(parley::api::users::block).await
}
