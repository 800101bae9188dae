//! WebSocket $connect authorizer
#[tokio::main]
async fn main() -> Result<(), parley::http::LambdaError> {
    parley::ws::serve_authorizer().await
}
