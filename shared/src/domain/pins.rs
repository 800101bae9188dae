//! Pinned messages (docs/API-GUIDE.md "Pins"): in a group the owner and admins pin and unpin, in a
//! direct conversation either member; at most [`MAX_PINS`] per conversation; only live messages. Pin
//! and unpin are idempotent, and the members hear of each change (`message.pinned`,
//! `message.unpinned`). Deleting a pinned message unpins it.

use super::conversations::{is_admin, membership};
use super::messages::{decorate_read, message_not_found, Message};
use crate::context::AppContext;
use crate::error::ApiError;
use crate::kinds::ConversationKind;
use crate::realtime::{events, Outgoing, Published};
use crate::store::{ConversationRecord, MemberRecord, PinRecord, Pinned};
use crate::time::{now, rfc3339};
use crate::validate;

/// Pins per conversation at most.
pub const MAX_PINS: u64 = 50;

fn may_pin(conversation: &ConversationRecord, member: &MemberRecord) -> Result<(), ApiError> {
    if conversation.kind == ConversationKind::Group && !is_admin(member) {
        return Err(ApiError::Forbidden(
            "Only the group's owner and admins can pin and unpin messages.".to_owned(),
        ));
    }
    Ok(())
}

/// `PUT /conversations/{id}/pins/{messageId}`
pub async fn pin(
    context: &AppContext,
    me: &str,
    conversation_id: &str,
    message_id: &str,
) -> Result<Published<()>, ApiError> {
    let message_id = validate::ulid("messageId", message_id)?;
    let (conversation, member) = membership(context, conversation_id, me).await?;
    may_pin(&conversation, &member)?;
    let record = PinRecord {
        message_id: message_id.clone(),
        pinned_by: me.to_owned(),
        pinned_at: rfc3339(now()),
    };
    match context.store.pin(conversation_id, &record, MAX_PINS).await? {
        Pinned::Pinned => {
            let event = events::pin("message.pinned", conversation_id, &message_id);
            Ok(Published::new(
                (),
                vec![Outgoing::to_conversation(&conversation, event)],
            ))
        }
        Pinned::Already => Ok(Published::quiet(())),
        Pinned::Full => Err(ApiError::Conflict(format!(
            "This conversation has {MAX_PINS} pinned messages, the most it may have: unpin one first."
        ))),
        Pinned::NoMessage => match context.store.get_message(conversation_id, &message_id).await? {
            Some(_) => Err(ApiError::Conflict("A deleted message cannot be pinned.".to_owned())),
            None => Err(message_not_found()),
        },
    }
}

/// `DELETE /conversations/{id}/pins/{messageId}`: idempotent.
pub async fn unpin(
    context: &AppContext,
    me: &str,
    conversation_id: &str,
    message_id: &str,
) -> Result<Published<()>, ApiError> {
    let message_id = validate::ulid("messageId", message_id)?;
    let (conversation, member) = membership(context, conversation_id, me).await?;
    may_pin(&conversation, &member)?;
    if !context.store.unpin(conversation_id, &message_id).await? {
        return Ok(Published::quiet(()));
    }
    let event = events::pin("message.unpinned", conversation_id, &message_id);
    Ok(Published::new(
        (),
        vec![Outgoing::to_conversation(&conversation, event)],
    ))
}

/// After a message was deleted: its pin goes too, and the members hear of it (no call at all in a
/// conversation without pins).
pub async fn unpin_deleted(
    context: &AppContext,
    conversation: &ConversationRecord,
    message_id: &str,
) -> Result<Vec<Outgoing>, ApiError> {
    if conversation.pin_count == 0 || !context.store.unpin(&conversation.id, message_id).await? {
        return Ok(Vec::new());
    }
    let event = events::pin("message.unpinned", &conversation.id, message_id);
    Ok(vec![Outgoing::to_conversation(conversation, event)])
}

/// `GET /conversations/{id}/pins`: the pinned messages as the caller reads them, newest pin first.
pub async fn list(context: &AppContext, me: &str, conversation_id: &str) -> Result<Vec<Message>, ApiError> {
    membership(context, conversation_id, me).await?;
    let mut pins = context.store.pins(conversation_id).await?;
    pins.sort_by(|a, b| b.pinned_at.cmp(&a.pinned_at).then(b.message_id.cmp(&a.message_id)));
    let keys: Vec<(String, String)> = pins
        .iter()
        .map(|p| (conversation_id.to_owned(), p.message_id.clone()))
        .collect();
    let (records, mine) = context.store.messages_with_own_reactions(me, &keys).await?;
    let mut messages = decorate_read(context, records, mine).await?;
    let order = |id: &str| pins.iter().position(|p| p.message_id == id).unwrap_or(usize::MAX);
    messages.sort_by_key(|m| order(&m.id));
    Ok(messages)
}
