//! `GET /push/vapid-public-key`
#[tokio::main]
async fn main() -> Result<(), parley::http::LambdaError> {
    parley::http::serve(parley::api::push::vapid_public_key).await
}
