//! `/conversations/{conversationId}/pins` routes (`domain::pins`).

use super::conversations::conversation_id;
use crate::domain::pins as domain;
use crate::error::ApiError;
use crate::http::{ApiRequest, Reply};
use crate::AppContext;

/// `PUT /conversations/{conversationId}/pins/{messageId}`: 204, idempotent.
pub async fn put(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let me = request.authenticate(context)?.sub;
    let id = conversation_id(&request)?;
    let pinned = domain::pin(context, &me, &id, request.path_param("messageId")?).await?;
    super::deliver(context, pinned).await?;
    Ok(Reply::no_content())
}

/// `DELETE /conversations/{conversationId}/pins/{messageId}`: 204, idempotent.
pub async fn delete(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let me = request.authenticate(context)?.sub;
    let id = conversation_id(&request)?;
    let unpinned = domain::unpin(context, &me, &id, request.path_param("messageId")?).await?;
    super::deliver(context, unpinned).await?;
    Ok(Reply::no_content())
}

/// `GET /conversations/{conversationId}/pins`: `{items: [message]}`, newest pin first.
pub async fn list(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let me = request.authenticate(context)?.sub;
    let id = conversation_id(&request)?;
    Reply::ok(&serde_json::json!({ "items": domain::list(context, &me, &id).await? }))
}
