//! `/conversations*` routes (messages aside).

use serde::Deserialize;

use crate::cursor::page_limit;
use crate::domain::conversations::{self as domain};
use crate::error::ApiError;
use crate::http::{ApiRequest, Reply};
use crate::realtime::Skip;
use crate::validate;
use crate::AppContext;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateBody {
    #[serde(rename = "type")]
    kind: Kind,
    #[serde(default)]
    name: Option<String>,
    member_ids: Vec<String>,
}

#[derive(Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Direct,
    Group,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RenameBody {
    #[serde(default, deserialize_with = "super::not_null")]
    name: Option<String>,
    #[serde(default, deserialize_with = "super::not_null")]
    slow_mode_seconds: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AddBody {
    user_ids: Vec<String>,
}

#[derive(Deserialize)]
struct RoleBody {
    role: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OwnerBody {
    user_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReadBody {
    message_id: String,
}

/// The `{conversationId}` of the path, as a canonical ULID.
pub(crate) fn conversation_id(request: &ApiRequest) -> Result<String, ApiError> {
    validate::ulid("conversationId", request.path_param("conversationId")?)
}

/// `POST /conversations`
pub async fn create(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let me = request.authenticate(context)?.sub;
    let body: CreateBody = request.json()?;
    if body.kind == Kind::Direct {
        let opened = domain::open_direct(context, &me, &body.member_ids).await?;
        let (conversation, created) = super::deliver(context, opened).await?;
        let conversation = domain::as_read(context, &me, conversation).await?;
        return Reply::with_status(if created { 201 } else { 200 }, &conversation);
    }
    crate::rate_limit::admit_group_creation(context, &me).await?;
    let created = domain::create_group(context, &me, body.name.as_deref(), &body.member_ids).await?;
    Reply::created(&super::deliver(context, created).await?)
}

/// `GET /conversations`
pub async fn list(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let me = request.authenticate(context)?.sub;
    let limit = page_limit(request.query("limit"))?;
    Reply::ok(&domain::list(context, &me, limit, request.query("cursor")).await?)
}

/// `GET /conversations/{conversationId}`
pub async fn get(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let me = request.authenticate(context)?.sub;
    Reply::ok(&domain::get(context, &me, &conversation_id(&request)?).await?)
}

/// `PATCH /conversations/{conversationId}`
pub async fn rename(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let me = request.authenticate(context)?.sub;
    let id = conversation_id(&request)?;
    let body: RenameBody = request.json()?;
    let renamed = domain::rename(context, &me, &id, body.name.as_deref(), body.slow_mode_seconds).await?;
    let renamed = super::deliver(context, renamed).await?;
    Reply::ok(&domain::as_read(context, &me, renamed).await?)
}

/// `GET /conversations/{conversationId}/members`
pub async fn members(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let me = request.authenticate(context)?.sub;
    let id = conversation_id(&request)?;
    let limit = page_limit(request.query("limit"))?;
    Reply::ok(&domain::members(context, &me, &id, limit, request.query("cursor")).await?)
}

/// `POST /conversations/{conversationId}/members`
pub async fn add_members(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let me = request.authenticate(context)?.sub;
    let id = conversation_id(&request)?;
    let body: AddBody = request.json()?;
    let added = super::deliver(context, domain::add_members(context, &me, &id, &body.user_ids).await?).await?;
    Reply::ok(&added)
}

/// `DELETE /conversations/{conversationId}/members/{userId}`
pub async fn remove_member(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let me = request.authenticate(context)?.sub;
    let id = conversation_id(&request)?;
    let removed = domain::remove_member(context, &me, &id, request.path_param("userId")?).await?;
    super::deliver(context, removed).await?;
    Ok(Reply::no_content())
}

/// `POST /conversations/{conversationId}/read`
pub async fn mark_read(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let me = request.authenticate(context)?.sub;
    let id = conversation_id(&request)?;
    let body: ReadBody = request.json()?;
    let read = domain::mark_read(context, &me, &id, &body.message_id, Skip::Nobody).await?;
    super::deliver(context, read).await?;
    Ok(Reply::no_content())
}

/// `PATCH /conversations/{conversationId}/members/{userId}`
pub async fn set_role(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let me = request.authenticate(context)?.sub;
    let id = conversation_id(&request)?;
    let body: RoleBody = request.json()?;
    let changed = domain::set_role(context, &me, &id, request.path_param("userId")?, &body.role).await?;
    Reply::ok(&super::deliver(context, changed).await?)
}

/// `POST /conversations/{conversationId}/owner`
pub async fn transfer_ownership(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let me = request.authenticate(context)?.sub;
    let id = conversation_id(&request)?;
    let body: OwnerBody = request.json()?;
    let transferred = domain::transfer_ownership(context, &me, &id, &body.user_id).await?;
    let transferred = super::deliver(context, transferred).await?;
    Reply::ok(&domain::as_read(context, &me, transferred).await?)
}
