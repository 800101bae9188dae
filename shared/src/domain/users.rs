//! Profiles: what a user looks like to others, and the changes a user may make to their own.

use serde::{Deserialize, Serialize};

use crate::auth::wallet::Address;
use crate::context::AppContext;
use crate::error::ApiError;
use crate::store::{ProfilePatch, UserRecord};
use crate::validate;

/// The API's `user` (openapi.yaml `User`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub username: String,
    pub display_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wallet_address: Option<String>,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen_at: Option<String>,
    pub created_at: String,
    /// Only in the user's own profile ([`own`]); `None` in every view of someone else.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub who_can_add_me: Option<String>,
}

impl From<UserRecord> for User {
    fn from(record: UserRecord) -> Self {
        User {
            id: record.id,
            username: record.username,
            display_name: record.display_name,
            // Stored lowercase for lookups; shown with its EIP-55 checksum.
            wallet_address: record
                .wallet_address
                .map(|a| Address::parse(&a).map(|a| a.checksummed()).unwrap_or(a)),
            status: record.status,
            status_text: record.status_text,
            last_seen_at: record.last_seen_at,
            created_at: record.created_at,
            who_can_add_me: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Presence {
    Online,
    Away,
    Busy,
    Offline,
}

impl Presence {
    pub fn as_str(self) -> &'static str {
        match self {
            Presence::Online => "online",
            Presence::Away => "away",
            Presence::Busy => "busy",
            Presence::Offline => "offline",
        }
    }
}

/// A change to one's own profile. `status_text: Some(None)` (or an empty text) clears it.
#[derive(Debug, Default, Clone)]
pub struct ProfileChange {
    pub display_name: Option<String>,
    pub status: Option<Presence>,
    pub status_text: Option<Option<String>>,
    /// `everyone` or `nobody` (`domain::invitations`).
    pub who_can_add_me: Option<String>,
}

/// The platform role of operators (`role` on a profile, set by hand: no API grants it): who reads the
/// service metrics and every conversation's reports.
pub const ADMIN_ROLE: &str = "admin";

/// How long another container's profile change may go unseen here. Profiles are read far more often
/// than they change, and the real-time `presence` events carry status changes as they happen.
pub const PROFILE_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(10);
pub const PROFILE_CACHE_USERS: usize = 5_000;

/// A profile read from the table (and remembered for [`get_cached`]): what a user sees of themself,
/// right after their own change.
pub async fn get(context: &AppContext, user_id: &str) -> Result<User, ApiError> {
    let user = context
        .store
        .get_user(user_id)
        .await?
        .map(User::from)
        .ok_or_else(|| ApiError::NotFound("There is no user with that id.".to_owned()))?;
    context.profiles.insert(user.id.clone(), user.clone());
    Ok(user)
}

/// Someone else's profile, from this container's cache when it is younger than [`PROFILE_CACHE_TTL`].
pub async fn get_cached(context: &AppContext, user_id: &str) -> Result<User, ApiError> {
    match context.profiles.get(user_id) {
        Some(user) => Ok(user),
        None => get(context, user_id).await,
    }
}

/// Up to 100 users in the order asked for, unknown ids left out: the cached ones from the cache, the
/// rest in one batched read.
pub async fn get_many(context: &AppContext, ids: &[String]) -> Result<Vec<User>, ApiError> {
    let mut unique: Vec<String> = Vec::with_capacity(ids.len());
    for id in ids {
        if !unique.contains(id) {
            unique.push(id.clone());
        }
    }
    let mut found: Vec<User> = Vec::with_capacity(unique.len());
    let mut missing: Vec<String> = Vec::new();
    for id in &unique {
        match context.profiles.get(id) {
            Some(user) => found.push(user),
            None => missing.push(id.clone()),
        }
    }
    if !missing.is_empty() {
        for user in context
            .store
            .batch_get_users(&missing)
            .await?
            .into_iter()
            .map(User::from)
        {
            context.profiles.insert(user.id.clone(), user.clone());
            found.push(user);
        }
    }
    found.sort_by_key(|u| unique.iter().position(|id| *id == u.id));
    Ok(found)
}

/// The user whose username is `raw` once case-folded, or `None`: one strongly consistent read of the
/// `USERNAME#<name>` claim, then the profile as [`get_many`] reads it (public fields only). A name that
/// no user can have (the `username` rule, docs/API-GUIDE.md "Signing in") is `validation_failed`, as a
/// malformed id is for `ids`.
pub async fn find_by_username(context: &AppContext, raw: &str) -> Result<Option<User>, ApiError> {
    let name = validate::username(raw.trim())?;
    let Some(user_id) = context.store.user_id_by_username(&name).await? else {
        return Ok(None);
    };
    Ok(get_many(context, &[user_id]).await?.into_iter().next())
}

/// The caller's own profile, read fresh: with `whoCanAddMe`, which nobody else sees.
pub async fn own(context: &AppContext, user_id: &str) -> Result<User, ApiError> {
    let record = context
        .store
        .get_user(user_id)
        .await?
        .ok_or_else(|| ApiError::NotFound("There is no user with that id.".to_owned()))?;
    Ok(own_view(context, record))
}

/// A profile as its owner sees it; the cache keeps the public view.
fn own_view(context: &AppContext, record: UserRecord) -> User {
    let own = as_own(record);
    let public = User {
        who_can_add_me: None,
        ..own.clone()
    };
    context.profiles.insert(public.id.clone(), public);
    own
}

/// A profile as its owner sees it (what the sign-in answers carry too): with `whoCanAddMe`.
pub fn as_own(record: UserRecord) -> User {
    let who = record
        .who_can_add_me
        .clone()
        .unwrap_or_else(|| crate::domain::invitations::ADD_EVERYONE.to_owned());
    User {
        who_can_add_me: Some(who),
        ..User::from(record)
    }
}

pub async fn update_own_profile(context: &AppContext, user_id: &str, change: ProfileChange) -> Result<User, ApiError> {
    if change.display_name.is_none()
        && change.status.is_none()
        && change.status_text.is_none()
        && change.who_can_add_me.is_none()
    {
        return Err(ApiError::invalid(
            "body",
            "give at least one of displayName, status, statusText, whoCanAddMe",
        ));
    }
    let mut problems = validate::Problems::default();
    let display_name = change
        .display_name
        .and_then(|name| problems.check(validate::display_name(&name)));
    let status_text = match change.status_text {
        Some(Some(text)) if !text.trim().is_empty() => problems
            .check(validate::text("statusText", &text, 1..=validate::STATUS_TEXT_MAX))
            .map(Some),
        Some(_) => Some(None),
        None => None,
    };
    let who_can_add_me = change.who_can_add_me.and_then(|who| {
        problems.check(match who.as_str() {
            crate::domain::invitations::ADD_EVERYONE | crate::domain::invitations::ADD_NOBODY => Ok(who),
            _ => Err(ApiError::invalid("whoCanAddMe", "must be everyone or nobody")),
        })
    });
    problems.finish()?;
    let patch = ProfilePatch {
        display_name,
        status: change.status.map(|s| s.as_str().to_owned()),
        status_text,
        who_can_add_me,
    };
    let record = context
        .store
        .update_profile(user_id, &patch)
        .await?
        .ok_or_else(|| ApiError::NotFound("Your account no longer exists.".to_owned()))?;
    Ok(own_view(context, record))
}
