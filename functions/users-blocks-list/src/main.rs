//! `GET /users/me/blocks`
#[tokio::main]
async fn main() -> Result<(), parley::http::LambdaError> {
    parley::http::serve(parley::api::users::list_blocks).await
}
