//! `GET /sync`: everything that changed in the caller's conversations since a token (`domain::sync`).

use crate::cursor::page_limit;
use crate::domain::sync as domain;
use crate::error::ApiError;
use crate::http::{ApiRequest, Reply};
use crate::AppContext;

/// `GET /sync?since=&limit=`
pub async fn get(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let me = request.authenticate(context)?.sub;
    let limit = page_limit(request.query("limit"))?;
    Reply::ok(&domain::sync(context, &me, request.query("since"), limit).await?)
}
