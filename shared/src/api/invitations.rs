//! Invitation and invite-link routes (`domain::invitations`).

use serde::{Deserialize, Serialize};

use super::conversations::conversation_id;
use crate::domain::conversations::Conversation;
use crate::domain::invitations as domain;
use crate::error::ApiError;
use crate::http::{ApiRequest, Reply};
use crate::AppContext;

#[derive(Serialize)]
struct Items<T> {
    items: Vec<T>,
}

#[derive(Serialize)]
struct Joined {
    conversation: Conversation,
}

/// `GET /users/me/invitations`: `200 {items}`.
pub async fn list(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let me = request.authenticate(context)?.sub;
    Reply::ok(&Items {
        items: domain::list(context, &me).await?,
    })
}

/// `POST /invitations/{invitationId}/accept`: `200 {conversation}`.
pub async fn accept(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let me = request.authenticate(context)?.sub;
    let id = request.path_param("invitationId")?.to_owned();
    let conversation = super::deliver(context, domain::accept(context, &me, &id).await?).await?;
    Reply::ok(&Joined { conversation })
}

/// `DELETE /invitations/{invitationId}`: 204.
pub async fn decline(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let me = request.authenticate(context)?.sub;
    domain::decline(context, &me, request.path_param("invitationId")?).await?;
    Ok(Reply::no_content())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InviteBody {
    #[serde(default, deserialize_with = "super::not_null")]
    max_uses: Option<u64>,
    #[serde(default, deserialize_with = "super::not_null")]
    expires_in_seconds: Option<u64>,
}

/// `POST /conversations/{conversationId}/invites`: `201 {code, expiresAt, maxUses, uses, ...}`.
pub async fn create_invite(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let me = request.authenticate(context)?.sub;
    let id = conversation_id(&request)?;
    // The body is optional: no body is every default.
    let body: InviteBody = if request.has_body() {
        request.json()?
    } else {
        InviteBody {
            max_uses: None,
            expires_in_seconds: None,
        }
    };
    let link = domain::create_invite(context, &me, &id, body.max_uses, body.expires_in_seconds).await?;
    Reply::created(&link)
}

/// `GET /conversations/{conversationId}/invites`: `200 {items}`.
pub async fn list_invites(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let me = request.authenticate(context)?.sub;
    let id = conversation_id(&request)?;
    Reply::ok(&Items {
        items: domain::invites(context, &me, &id).await?,
    })
}

/// `DELETE /conversations/{conversationId}/invites/{code}`: 204.
pub async fn revoke_invite(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let me = request.authenticate(context)?.sub;
    let id = conversation_id(&request)?;
    domain::revoke_invite(context, &me, &id, request.path_param("code")?).await?;
    Ok(Reply::no_content())
}

/// `POST /invites/{code}/join`: `200 {conversation}`.
pub async fn join(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let me = request.authenticate(context)?.sub;
    let code = request.path_param("code")?.to_owned();
    let conversation = super::deliver(context, domain::join(context, &me, &code).await?).await?;
    Reply::ok(&Joined { conversation })
}
