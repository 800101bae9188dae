//! `GET /users`
#[tokio::main]
async fn main() -> Result<(), parley::http::LambdaError> {
    parley::http::serve(parley::api::users::batch_get).await
}
