//! `/auth/*` routes.

use serde::Deserialize;

use crate::domain::accounts::{self, Registration};
use crate::error::ApiError;
use crate::http::{ApiRequest, Reply};
use crate::validate;
use crate::AppContext;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegisterBody {
    username: String,
    password: String,
    #[serde(default)]
    display_name: Option<String>,
}

#[derive(Deserialize)]
struct LoginBody {
    username: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RefreshBody {
    refresh_token: String,
}

#[derive(Deserialize)]
struct ChallengeBody {
    address: String,
}

#[derive(Deserialize)]
struct VerifyBody {
    address: String,
    signature: String,
    /// The challenge's message as signed: picks that challenge among the address's pending ones.
    #[serde(default, deserialize_with = "super::not_null")]
    message: Option<String>,
}

/// `POST /auth/register`
pub async fn register(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let body: RegisterBody = request.json()?;
    let signed_in = accounts::register(
        context,
        Registration {
            username: body.username,
            password: body.password,
            display_name: body.display_name,
            user_agent: request.user_agent(),
        },
    )
    .await?;
    Reply::created(&signed_in)
}

/// `POST /auth/login`
pub async fn login(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let body: LoginBody = request.json()?;
    Reply::ok(
        &accounts::login(
            context,
            &body.username,
            &body.password,
            request.source_ip.as_deref(),
            request.user_agent(),
        )
        .await?,
    )
}

/// `POST /auth/refresh`
pub async fn refresh(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let body: RefreshBody = request.json()?;
    Reply::ok(&accounts::refresh(context, &body.refresh_token).await?)
}

/// `POST /auth/logout`: revokes the session of the access token presented (and closes its WebSocket
/// connections). The token's signature is checked, not its session: logging out of a session that is
/// already revoked is a harmless 204.
pub async fn logout(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let claims = request.bearer_claims(context)?;
    accounts::logout(context, &claims).await?;
    Ok(Reply::no_content())
}

/// `POST /auth/wallet/challenge`
pub async fn wallet_challenge(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let body: ChallengeBody = request.json()?;
    Reply::ok(&accounts::wallet_challenge(context, &body.address).await?)
}

/// `POST /auth/wallet/verify`
pub async fn wallet_verify(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let body: VerifyBody = request.json()?;
    Reply::ok(
        &accounts::wallet_verify(
            context,
            &body.address,
            &body.signature,
            body.message.as_deref(),
            request.user_agent(),
        )
        .await?,
    )
}

/// `GET /auth/sessions`: the caller's live sessions, newest first; `current` marks the one asking.
pub async fn sessions_list(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let claims = request.authenticate(context)?;
    Reply::ok(&accounts::list_sessions(context, &claims).await?)
}

/// `DELETE /auth/sessions/{sessionId}`: revokes one of the caller's sessions. A malformed id is 400
/// `validation_failed` (as every malformed id in a path); another user's or an unknown one, 404.
pub async fn sessions_delete(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let claims = request.authenticate(context)?;
    let session_id = validate::ulid("sessionId", request.path_param("sessionId")?)?;
    accounts::delete_session(context, &claims, &session_id).await?;
    Ok(Reply::no_content())
}
