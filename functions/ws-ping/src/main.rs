//! WebSocket ping
#[tokio::main]
async fn main() -> Result<(), parley::http::LambdaError> {
    parley::ws::serve(parley::api::ws::ping).await
}
