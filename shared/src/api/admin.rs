//! `GET /admin/metrics`: recent latency percentiles, error rates, cold starts and capacity per function,
//! for users with the `admin` role.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use crate::error::ApiError;
use crate::http::{ApiRequest, Reply};
use crate::ops::metrics_report;
use crate::AppContext;

pub use crate::domain::users::ADMIN_ROLE;

const DEFAULT_MINUTES: u64 = 60;
/// CloudWatch keeps one-minute data for 15 days; a day is what an operator looks back on here.
const MAX_MINUTES: u64 = 24 * 60;

/// Built once per container, from the same AWS configuration as the other clients.
fn cloudwatch(context: &AppContext) -> &'static aws_sdk_cloudwatch::Client {
    static CLIENT: OnceLock<aws_sdk_cloudwatch::Client> = OnceLock::new();
    CLIENT.get_or_init(|| aws_sdk_cloudwatch::Client::new(&context.sdk))
}

/// `GET /admin/metrics?minutes=60`
pub async fn metrics(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let claims = request.authenticate(context)?;
    let minutes = match request.query("minutes") {
        None => DEFAULT_MINUTES,
        Some(raw) => raw
            .parse::<u64>()
            .ok()
            .filter(|m| (1..=MAX_MINUTES).contains(m))
            .ok_or_else(|| ApiError::invalid("minutes", format!("must be a whole number from 1 to {MAX_MINUTES}")))?,
    };
    // Read fresh, not from the profile cache: a revoked role takes effect at once.
    let caller = context.store.get_user(&claims.sub).await?;
    if caller.and_then(|user| user.role).as_deref() != Some(ADMIN_ROLE) {
        return Err(ApiError::Forbidden(
            "Only administrators may read the service metrics.".to_owned(),
        ));
    }
    let report = metrics_report::report(
        cloudwatch(context),
        Duration::from_secs(minutes * 60),
        SystemTime::now(),
    )
    .await?;
    Reply::ok(&report)
}
