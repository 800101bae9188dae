//! `/users*` routes.

use serde::{Deserialize, Deserializer};

use crate::cursor::page_limit;
use crate::domain::blocks;
use crate::domain::users::{self, Presence, ProfileChange};
use crate::error::ApiError;
use crate::http::{ApiRequest, Reply};
use crate::validate;
use crate::AppContext;

/// `GET /users?ids=` takes 1..=100 ids (docs/API-GUIDE.md "Limits").
const MAX_IDS: usize = 100;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PatchBody {
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    status: Option<Presence>,
    /// Absent: unchanged; `null` or `""`: cleared.
    #[serde(default, deserialize_with = "present")]
    status_text: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::not_null")]
    who_can_add_me: Option<String>,
}

/// Tells a field sent as `null` (`Some(None)`) from a field not sent (`None`, through `default`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// `GET /users/me`
pub async fn get_me(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let claims = request.authenticate(context)?;
    Reply::ok(&users::own(context, &claims.sub).await?)
}

/// `PATCH /users/me`
pub async fn update_me(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let claims = request.authenticate(context)?;
    let body: PatchBody = request.json()?;
    let presence_changed = body.status.is_some() || body.status_text.is_some();
    let change = ProfileChange {
        display_name: body.display_name,
        status: body.status,
        status_text: body.status_text,
        who_can_add_me: body.who_can_add_me,
    };
    let user = users::update_own_profile(context, &claims.sub, change).await?;
    if presence_changed {
        // Presence is best effort: the profile change stands even when its event cannot go out.
        // Never to anyone who blocked the caller (docs/API-GUIDE.md, blocks); when that cannot be read, no
        // presence goes out at all rather than one that might reach a blocker.
        if let Err(e) = crate::domain::presence::announce(context, &user).await {
            tracing::warn!(error = %e, "presence skipped: co-members, blockers or its throttle unreadable, or not queued");
        }
    }
    Reply::ok(&user)
}

/// `GET /users/{userId}`
pub async fn get_user(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let claims = request.authenticate(context)?;
    let user_id = validate::ulid("userId", request.path_param("userId")?)?;
    if user_id == claims.sub {
        return Reply::ok(&users::own(context, &user_id).await?);
    }
    Reply::ok(&users::get_cached(context, &user_id).await?)
}

/// `GET /users?ids=a,b,c` or `GET /users?username=alice`: exactly one of the two.
pub async fn batch_get(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    request.authenticate(context)?;
    let raw = match (request.query("ids"), request.query("username")) {
        (Some(_), Some(_)) => return Err(ApiError::invalid("query", "give either ids or username, not both")),
        (None, None) => {
            return Err(ApiError::invalid(
                "query",
                "give ids (a comma-separated list of user ids) or username",
            ))
        }
        (None, Some(username)) => {
            let items: Vec<users::User> = users::find_by_username(context, username).await?.into_iter().collect();
            return Reply::ok(&serde_json::json!({ "items": items }));
        }
        (Some(ids), None) => ids,
    };
    let ids = raw
        .split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(|id| validate::ulid("ids", id))
        .collect::<Result<Vec<_>, _>>()?;
    if ids.is_empty() || ids.len() > MAX_IDS {
        return Err(ApiError::invalid("ids", format!("must list 1 to {MAX_IDS} user ids")));
    }
    let items = users::get_many(context, &ids).await?;
    Reply::ok(&serde_json::json!({ "items": items }))
}

/// The `{userId}` of a blocks route, as a canonical ULID.
fn block_target(request: &ApiRequest) -> Result<String, ApiError> {
    validate::ulid("userId", request.path_param("userId")?)
}

/// `PUT /users/me/blocks/{userId}`
pub async fn block(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let me = request.authenticate(context)?.sub;
    blocks::block(context, &me, &block_target(&request)?).await?;
    Ok(Reply::no_content())
}

/// `DELETE /users/me/blocks/{userId}`
pub async fn unblock(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let me = request.authenticate(context)?.sub;
    blocks::unblock(context, &me, &block_target(&request)?).await?;
    Ok(Reply::no_content())
}

/// `GET /users/me/blocks?limit&cursor`
pub async fn list_blocks(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let me = request.authenticate(context)?.sub;
    let limit = page_limit(request.query("limit"))?;
    Reply::ok(&blocks::list(context, &me, limit, request.query("cursor")).await?)
}
