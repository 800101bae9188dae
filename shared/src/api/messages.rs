//! `/conversations/{conversationId}/messages*` routes.

use serde::Deserialize;

use super::conversations::conversation_id;
use crate::cursor::page_limit;
use crate::domain::messages::{self as domain, NewMessage};
use crate::error::ApiError;
use crate::http::{ApiRequest, Reply};
use crate::realtime::Skip;
use crate::AppContext;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SendBody {
    client_message_id: String,
    body: String,
    #[serde(default)]
    encrypted: bool,
    #[serde(default)]
    parent_message_id: Option<String>,
    #[serde(default)]
    mentions: Vec<String>,
    #[serde(default)]
    attachment_ids: Vec<String>,
}

#[derive(Deserialize)]
struct EditBody {
    body: String,
}

/// `POST /conversations/{conversationId}/messages`: 201 when stored, 200 with the original on a retry.
pub async fn send(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let me = request.authenticate(context)?.sub;
    let id = conversation_id(&request)?;
    let body: SendBody = request.json()?;
    let input = NewMessage {
        client_message_id: body.client_message_id,
        body: body.body,
        encrypted: body.encrypted,
        parent_message_id: body.parent_message_id,
        mentions: body.mentions,
        attachment_ids: body.attachment_ids,
    };
    let sent = super::deliver(context, domain::send(context, &me, &id, input, Skip::Nobody).await?).await?;
    Reply::with_status(if sent.created { 201 } else { 200 }, &sent.message)
}

/// `GET /conversations/{conversationId}/messages`
pub async fn history(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let me = request.authenticate(context)?.sub;
    let id = conversation_id(&request)?;
    let limit = page_limit(request.query("limit"))?;
    let bound = domain::history_bound(
        context,
        &id,
        request.query("cursor"),
        request.query("before"),
        request.query("after"),
    )?;
    Reply::ok(&domain::history(context, &me, &id, bound, limit).await?)
}

/// `PATCH /conversations/{conversationId}/messages/{messageId}`
pub async fn edit(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let me = request.authenticate(context)?.sub;
    let id = conversation_id(&request)?;
    let body: EditBody = request.json()?;
    let edited = domain::edit(context, &me, &id, request.path_param("messageId")?, &body.body).await?;
    Reply::ok(&super::deliver(context, edited).await?)
}

/// `DELETE /conversations/{conversationId}/messages/{messageId}`
pub async fn delete(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let me = request.authenticate(context)?.sub;
    let id = conversation_id(&request)?;
    let deleted = domain::delete(context, &me, &id, request.path_param("messageId")?).await?;
    super::deliver(context, deleted).await?;
    Ok(Reply::no_content())
}

/// `GET /conversations/{conversationId}/messages/{messageId}`
pub async fn get(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let me = request.authenticate(context)?.sub;
    let id = conversation_id(&request)?;
    Reply::ok(&domain::get_one(context, &me, &id, request.path_param("messageId")?).await?)
}

/// `GET /conversations/{conversationId}/messages/{messageId}/replies`
pub async fn replies(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let me = request.authenticate(context)?.sub;
    let id = conversation_id(&request)?;
    let limit = page_limit(request.query("limit"))?;
    let page = domain::replies(
        context,
        &me,
        &id,
        request.path_param("messageId")?,
        limit,
        request.query("cursor"),
    )
    .await?;
    Reply::ok(&page)
}

/// `PUT /conversations/{conversationId}/messages/{messageId}/reactions/{reaction}`
pub async fn react(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let me = request.authenticate(context)?.sub;
    let id = conversation_id(&request)?;
    let added = crate::domain::reactions::add(
        context,
        &me,
        &id,
        request.path_param("messageId")?,
        request.path_param("reaction")?,
    )
    .await?;
    super::deliver(context, added).await?;
    Ok(Reply::no_content())
}

/// `DELETE /conversations/{conversationId}/messages/{messageId}/reactions/{reaction}`
pub async fn unreact(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let me = request.authenticate(context)?.sub;
    let id = conversation_id(&request)?;
    let removed = crate::domain::reactions::remove(
        context,
        &me,
        &id,
        request.path_param("messageId")?,
        request.path_param("reaction")?,
    )
    .await?;
    super::deliver(context, removed).await?;
    Ok(Reply::no_content())
}
