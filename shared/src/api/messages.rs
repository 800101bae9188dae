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
