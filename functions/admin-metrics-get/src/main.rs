//! `GET /admin/metrics`
#[tokio::main]
async fn main() -> Result<(), parley::http::LambdaError> {
    parley::http::serve(parley::api::admin::metrics).await
}
