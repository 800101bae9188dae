//! `GET /health`: is the service able to serve? One cheap DynamoDB read decides.

use std::time::Duration;

use serde_json::json;

use crate::error::ApiError;
use crate::http::{ApiRequest, Reply};
use crate::AppContext;

/// Longer than a healthy read by far, shorter than a load balancer's patience.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// `200 {status: "ok", checks: {dynamodb: "ok"}, version}`, or `503` naming the failing check.
pub async fn health(context: &'static AppContext, _request: ApiRequest) -> Result<Reply, ApiError> {
    let dynamodb = match tokio::time::timeout(CHECK_TIMEOUT, context.store.ping()).await {
        Ok(Ok(())) => "ok",
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health check: DynamoDB failed");
            "failing"
        }
        Err(_) => "timed out",
    };
    let healthy = dynamodb == "ok";
    Reply::with_status(
        if healthy { 200 } else { 503 },
        &json!({
            "status": if healthy { "ok" } else { "unavailable" },
            "checks": { "dynamodb": dynamodb },
            "version": context.config.version,
        }),
    )
}
