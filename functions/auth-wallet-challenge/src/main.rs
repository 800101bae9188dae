//! `POST /auth/wallet/challenge`
#[tokio::main]
async fn main() -> Result<(), parley::http::LambdaError> {
    parley::http::serve(parley::api::auth::wallet_challenge).await
}
