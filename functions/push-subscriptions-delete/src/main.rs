//! `DELETE /users/me/push-subscriptions/{subscriptionId}`
#[tokio::main]
async fn main() -> Result<(), parley::http::LambdaError> {
    parley::http::serve(parley::api::push::delete).await
}
