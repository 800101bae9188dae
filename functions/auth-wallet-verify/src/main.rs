//! `POST /auth/wallet/verify`
#[tokio::main]
async fn main() -> Result<(), parley::http::LambdaError> {
    parley::http::serve(parley::api::auth::wallet_verify).await
}
