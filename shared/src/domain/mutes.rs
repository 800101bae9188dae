//! Mutes (docs/API-GUIDE.md "Mutes"): a group's owner and admins mute plain members, and
//! the owner mutes admins too, for 1 second to 30 days. While the mute lasts the member's sends,
//! reactions and typing are refused (`403`, saying until when); they still read everything. The
//! members hear of it (`member.muted`, `member.unmuted`). A mute ends by itself when its time is up,
//! and can be lifted earlier.

use serde::Serialize;

use super::conversations::membership;
use crate::context::AppContext;
use crate::error::ApiError;
use crate::kinds::ConversationKind;
use crate::realtime::{events, Outgoing, Published};
use crate::store::{ConversationRecord, MemberRecord};
use crate::time::{now, rfc3339};
use crate::validate;

/// The longest mute: 30 days.
pub const MAX_MUTE_SECS: u64 = 30 * 24 * 3600;

/// `PUT .../mutes/{userId}`'s answer.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Muted {
    pub user_id: String,
    pub until: String,
}

fn until_text(until_ms: u64) -> String {
    rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_millis(until_ms))
}

/// `403` while `member` is muted: the writes a mute holds back call this first.
pub fn refuse_if_muted(context: &AppContext, member: &MemberRecord) -> Result<(), ApiError> {
    match member.muted_until {
        Some(until) if until > context.now_ms() => Err(ApiError::Forbidden(format!(
            "You are muted in this conversation until {}.",
            until_text(until)
        ))),
        _ => Ok(()),
    }
}

/// The caller's and the target's membership, if the caller may mute the target.
async fn moderate(
    context: &AppContext,
    me: &str,
    conversation_id: &str,
    target: &str,
) -> Result<(ConversationRecord, MemberRecord), ApiError> {
    let target = validate::ulid("userId", target)?;
    let (conversation, mine) = membership(context, conversation_id, me).await?;
    if conversation.kind != ConversationKind::Group {
        return Err(ApiError::Forbidden("Mutes are for groups.".to_owned()));
    }
    if !mine.role.moderates() {
        return Err(ApiError::Forbidden(
            "Only the group's owner and admins can mute members.".to_owned(),
        ));
    }
    let not_member = || ApiError::NotFound("That user is not a member of this conversation.".to_owned());
    let member = context
        .store
        .members_of(conversation_id, std::slice::from_ref(&target))
        .await?
        .into_iter()
        .find(|m| conversation.admits(m))
        .ok_or_else(not_member)?;
    if target == me || member.role >= mine.role {
        return Err(ApiError::Forbidden(
            "Admins can mute plain members, and the owner can mute admins too; nobody mutes the owner or themself."
                .to_owned(),
        ));
    }
    Ok((conversation, member))
}

/// `PUT /conversations/{id}/mutes/{userId}` `{durationSeconds}`.
pub async fn mute(
    context: &AppContext,
    me: &str,
    conversation_id: &str,
    target: &str,
    duration_secs: Option<u64>,
) -> Result<Published<Muted>, ApiError> {
    let duration = match duration_secs {
        Some(secs) if (1..=MAX_MUTE_SECS).contains(&secs) => secs,
        Some(_) => {
            return Err(ApiError::invalid(
                "durationSeconds",
                format!("must be 1 to {MAX_MUTE_SECS} (30 days)"),
            ))
        }
        None => return Err(ApiError::invalid("durationSeconds", "is required")),
    };
    let (conversation, member) = moderate(context, me, conversation_id, target).await?;
    let until = crate::time::epoch_ms(now()) + duration * 1000;
    if !context.store.mute(conversation_id, &member.user_id, until).await? {
        return Err(ApiError::NotFound(
            "That user is not a member of this conversation.".to_owned(),
        ));
    }
    let muted = Muted {
        user_id: member.user_id.clone(),
        until: until_text(until),
    };
    let event = events::member_muted(conversation_id, &member.user_id, Some(&muted.until));
    Ok(Published::new(
        muted,
        vec![Outgoing::to_conversation(&conversation, event)],
    ))
}

/// `DELETE /conversations/{id}/mutes/{userId}`: idempotent.
pub async fn unmute(
    context: &AppContext,
    me: &str,
    conversation_id: &str,
    target: &str,
) -> Result<Published<()>, ApiError> {
    let (conversation, member) = moderate(context, me, conversation_id, target).await?;
    if !context.store.unmute(conversation_id, &member.user_id).await? {
        return Ok(Published::quiet(()));
    }
    let event = events::member_muted(conversation_id, &member.user_id, None);
    Ok(Published::new(
        (),
        vec![Outgoing::to_conversation(&conversation, event)],
    ))
}
