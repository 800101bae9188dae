//! `/conversations/{conversationId}/bans` routes (`domain::bans`).

use serde::Deserialize;

use super::conversations::conversation_id;
use crate::domain::bans as domain;
use crate::error::ApiError;
use crate::http::{ApiRequest, Reply};
use crate::AppContext;

#[derive(Deserialize, Default)]
struct BanBody {
    #[serde(default, deserialize_with = "super::not_null")]
    reason: Option<String>,
}

/// `PUT /conversations/{conversationId}/bans/{userId}` `{reason?}` (a body is optional): 204.
pub async fn put(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let me = request.authenticate(context)?.sub;
    let id = conversation_id(&request)?;
    let body: BanBody = if request.has_body() {
        request.json()?
    } else {
        BanBody::default()
    };
    let banned = domain::ban(context, &me, &id, request.path_param("userId")?, body.reason.as_deref()).await?;
    super::deliver(context, banned).await?;
    Ok(Reply::no_content())
}

/// `DELETE /conversations/{conversationId}/bans/{userId}`: 204, idempotent.
pub async fn delete(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let me = request.authenticate(context)?.sub;
    let id = conversation_id(&request)?;
    domain::unban(context, &me, &id, request.path_param("userId")?).await?;
    Ok(Reply::no_content())
}

/// `GET /conversations/{conversationId}/bans`: `{items: [{userId, bannedBy, reason?, createdAt}]}`.
pub async fn list(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let me = request.authenticate(context)?.sub;
    let id = conversation_id(&request)?;
    Reply::ok(&domain::list(context, &me, &id).await?)
}
