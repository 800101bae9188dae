//! `/conversations/{conversationId}/mutes/{userId}` routes (`domain::mutes`).

use serde::Deserialize;

use super::conversations::conversation_id;
use crate::domain::mutes as domain;
use crate::error::ApiError;
use crate::http::{ApiRequest, Reply};
use crate::AppContext;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MuteBody {
    #[serde(default, deserialize_with = "super::not_null")]
    duration_seconds: Option<u64>,
}

/// `PUT /conversations/{conversationId}/mutes/{userId}`: `200 {userId, until}`.
pub async fn put(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let me = request.authenticate(context)?.sub;
    let id = conversation_id(&request)?;
    let body: MuteBody = request.json()?;
    let muted = domain::mute(context, &me, &id, request.path_param("userId")?, body.duration_seconds).await?;
    Reply::ok(&super::deliver(context, muted).await?)
}

/// `DELETE /conversations/{conversationId}/mutes/{userId}`: 204, idempotent.
pub async fn delete(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let me = request.authenticate(context)?.sub;
    let id = conversation_id(&request)?;
    let unmuted = domain::unmute(context, &me, &id, request.path_param("userId")?).await?;
    super::deliver(context, unmuted).await?;
    Ok(Reply::no_content())
}
