//! `GET /users/me/push-subscriptions`
#[tokio::main]
async fn main() -> Result<(), parley::http::LambdaError> {
    parley::http::serve(parley::api::push::list).await
}
