//! Bans (docs/API-GUIDE.md "Bans"): a group's owner and admins ban a user, who is removed if they are a
//! member and kept out: nobody can add them back until the ban is lifted (`403`). The owner cannot be
//! banned, an admin only by the owner, and nobody bans themself. The members hear of it
//! (`member.removed` when the user was a member, then `member.banned`); the list of bans is the owner's
//! and admins'.

use serde::Serialize;

use super::conversations::{is_admin, membership};
use crate::context::AppContext;
use crate::error::ApiError;
use crate::kinds::{ConversationKind, MemberRole};
use crate::realtime::{events, Outgoing, Published};
use crate::store::{BanRecord, ConversationRecord, MemberRecord};
use crate::validate;

/// A ban's `reason`, in characters.
pub const REASON_LEN: std::ops::RangeInclusive<usize> = 1..=500;

/// `GET .../bans`' answer.
#[derive(Debug, Clone, Serialize)]
pub struct Bans {
    pub items: Vec<BanRecord>,
}

/// The caller's membership, if they may manage the group's bans.
async fn as_moderator(
    context: &AppContext,
    me: &str,
    conversation_id: &str,
) -> Result<(ConversationRecord, MemberRecord), ApiError> {
    let (conversation, mine) = membership(context, conversation_id, me).await?;
    if conversation.kind != ConversationKind::Group {
        return Err(ApiError::Forbidden("Bans are for groups.".to_owned()));
    }
    if !is_admin(&mine) {
        return Err(ApiError::Forbidden(
            "Only the group's owner and admins can ban, unban and see bans.".to_owned(),
        ));
    }
    Ok((conversation, mine))
}

/// `PUT /conversations/{id}/bans/{userId}` `{reason?}`: idempotent (a repeat keeps the first ban).
pub async fn ban(
    context: &AppContext,
    me: &str,
    conversation_id: &str,
    target: &str,
    reason: Option<&str>,
) -> Result<Published<()>, ApiError> {
    let target = validate::ulid("userId", target)?;
    let reason = reason.map(|r| validate::name("reason", r, REASON_LEN)).transpose()?;
    let (conversation, mine) = as_moderator(context, me, conversation_id).await?;
    if target == me {
        return Err(ApiError::Forbidden("Nobody bans themself.".to_owned()));
    }
    let mut changed = conversation.clone();
    let mut outgoing = Vec::new();
    let member_of = |conversation: &ConversationRecord| {
        let conversation = conversation.clone();
        let target = target.clone();
        async move {
            Ok::<_, ApiError>(
                context
                    .store
                    .members_of(conversation_id, std::slice::from_ref(&target))
                    .await?
                    .into_iter()
                    .find(|m| conversation.admits(m)),
            )
        }
    };
    match member_of(&conversation).await? {
        Some(member) if member.role == MemberRole::Owner => {
            return Err(ApiError::Forbidden("The group's owner cannot be banned.".to_owned()));
        }
        Some(member) if member.role == MemberRole::Admin && mine.role != MemberRole::Owner => {
            return Err(ApiError::Forbidden("Only the owner can ban an admin.".to_owned()));
        }
        Some(_) => {}
        None if context.store.get_user(&target).await?.is_none() => {
            return Err(ApiError::NotFound("There is no user with that id.".to_owned()));
        }
        None => {}
    }
    // The ban first, then the membership read again: every way in checks the ban in its own
    // transaction, so once it is written nobody can join, and a join that committed before it is
    // seen by the read after it (strongly consistent) and removed.
    let record = BanRecord {
        user_id: target.clone(),
        banned_by: me.to_owned(),
        reason,
        created_at: crate::time::rfc3339(context.now()),
    };
    let newly_banned = context.store.put_ban(conversation_id, &record).await?;
    if let Some(member) = member_of(&conversation).await? {
        if member.role == MemberRole::Owner || (member.role == MemberRole::Admin && mine.role != MemberRole::Owner) {
            // Promoted meanwhile: the ban stands (they cannot come back after leaving), the
            // membership is for someone with the rank to end.
            tracing::warn!(conversationId = %conversation_id, "a banned user's role rose meanwhile; not removed");
        } else {
            let removed = context
                .store
                .remove_member(
                    conversation_id,
                    &target,
                    Some((me, mine.role)),
                    &crate::time::rfc3339(context.now()),
                )
                .await?;
            if !removed {
                return Err(ApiError::Conflict(
                    "The group's members or roles changed meanwhile; please retry.".to_owned(),
                ));
            }
            changed.members_version += 1;
            changed.member_count = changed.member_count.saturating_sub(1);
            let event = events::members("member.removed", conversation_id, std::slice::from_ref(&target));
            outgoing.push(Outgoing::to_conversation(&changed, event.clone()));
            outgoing.push(Outgoing::to_users(vec![target.clone()], event));
        }
    }
    if newly_banned {
        outgoing.push(Outgoing::to_conversation(
            &changed,
            events::member_banned(conversation_id, &target),
        ));
    }
    Ok(Published::new((), outgoing))
}

/// `DELETE /conversations/{id}/bans/{userId}`: idempotent; they can be added again.
pub async fn unban(context: &AppContext, me: &str, conversation_id: &str, target: &str) -> Result<(), ApiError> {
    let target = validate::ulid("userId", target)?;
    as_moderator(context, me, conversation_id).await?;
    context.store.delete_ban(conversation_id, &target).await
}

/// `GET /conversations/{id}/bans`.
pub async fn list(context: &AppContext, me: &str, conversation_id: &str) -> Result<Bans, ApiError> {
    as_moderator(context, me, conversation_id).await?;
    Ok(Bans {
        items: context.store.bans(conversation_id).await?,
    })
}

/// `403` naming those of `user_ids` banned from the conversation: before anyone is added.
pub async fn refuse_banned(context: &AppContext, conversation_id: &str, user_ids: &[String]) -> Result<(), ApiError> {
    let banned = context.store.bans_of(conversation_id, user_ids).await?;
    if banned.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = banned.iter().map(|b| b.user_id.as_str()).collect();
    Err(ApiError::Forbidden(format!(
        "Banned from this group, so they cannot be added: {}.",
        names.join(", ")
    )))
}
