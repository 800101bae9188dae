//! `/search/*` routes.

use crate::cursor::page_limit;
use crate::error::ApiError;
use crate::http::{ApiRequest, Reply};
use crate::search::query;
use crate::AppContext;

/// `GET /search/messages?q&conversationId&limit&cursor`
pub async fn messages(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let me = request.authenticate(context)?.sub;
    let limit = page_limit(request.query("limit"))?;
    let page = query::search(
        context,
        &me,
        request.query("q"),
        request.query("conversationId"),
        limit,
        request.query("cursor"),
    )
    .await?;
    Reply::ok(&page)
}
