//! Messages: idempotent send, history in both directions, edits by the sender, deletes by the sender or
//! a group's owner or admins.

use serde::Serialize;

use super::conversations::{membership, Page};
use crate::context::AppContext;
use crate::error::ApiError;
use crate::store::{ConversationRecord, HistoryBound, MessageRecord, SendError};
use crate::time::{now, rfc3339};
use crate::validate;

pub const BODY_LEN: std::ops::RangeInclusive<usize> = 1..=4000;

/// API.md's `message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: String,
    pub conversation_id: String,
    pub sender_id: String,
    pub client_message_id: String,
    pub body: String,
    pub encrypted: bool,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<String>,
    pub deleted: bool,
}

impl From<MessageRecord> for Message {
    fn from(record: MessageRecord) -> Self {
        Message {
            id: record.id,
            conversation_id: record.conversation_id,
            sender_id: record.sender_id,
            client_message_id: record.client_message_id,
            body: record.body,
            encrypted: record.encrypted,
            created_at: record.created_at,
            edited_at: record.edited_at,
            deleted: record.deleted,
        }
    }
}

pub struct NewMessage {
    pub client_message_id: String,
    pub body: String,
    pub encrypted: bool,
}

pub fn body(raw: &str) -> Result<String, ApiError> {
    validate::text("body", raw, BODY_LEN)
}

pub fn client_message_id(raw: &str) -> Result<String, ApiError> {
    let ok = (1..=64).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !ok {
        return Err(ApiError::invalid(
            "clientMessageId",
            "must be 1 to 64 of A-Z, a-z, 0-9, '_' and '-'",
        ));
    }
    Ok(raw.to_owned())
}

/// How many times a send re-reads the conversation after losing the race for the next position.
const SEND_ATTEMPTS: u32 = 8;

/// What a send did, with the conversation as it was read (for the fan-out).
pub struct Sent {
    pub message: Message,
    /// False when this sender already sent this `clientMessageId` here: `message` is the original.
    pub created: bool,
    pub conversation: ConversationRecord,
}

/// Stores the message once.
pub async fn send(context: &AppContext, me: &str, conversation_id: &str, input: NewMessage) -> Result<Sent, ApiError> {
    let mut problems = validate::Problems::default();
    let client_id = problems.check(client_message_id(&input.client_message_id));
    let text = problems.check(body(&input.body));
    problems.finish()?;
    let (client_id, text) = (client_id.unwrap_or_default(), text.unwrap_or_default());
    for attempt in 0..SEND_ATTEMPTS {
        let (conversation, _) = membership(context, conversation_id, me).await?;
        let message = MessageRecord {
            id: ulid::Ulid::generate().to_string(),
            conversation_id: conversation.id.clone(),
            sender_id: me.to_owned(),
            client_message_id: client_id.clone(),
            body: text.clone(),
            encrypted: input.encrypted,
            created_at: rfc3339(now()),
            edited_at: None,
            deleted: false,
            seq: conversation.last_seq + 1,
        };
        match context
            .store
            .put_message(&conversation, &message, &conversation.direct_members)
            .await
        {
            Ok(()) => {
                return Ok(Sent {
                    message: message.into(),
                    created: true,
                    conversation,
                })
            }
            Err(SendError::Duplicate) => {
                let original = context
                    .store
                    .message_by_client_id(conversation_id, me, &client_id)
                    .await?
                    .ok_or_else(|| ApiError::internal("client message claim without its message"))?;
                return Ok(Sent {
                    message: original.into(),
                    created: false,
                    conversation,
                });
            }
            Err(SendError::NotMember) => {
                return Err(ApiError::NotFound(
                    "There is no conversation with that id among yours.".to_owned(),
                ))
            }
            Err(SendError::Raced) => {
                // Spread the retries of senders that collided.
                let jitter = u64::from(crate::auth::random_bytes::<1>()[0]) % 20;
                tokio::time::sleep(std::time::Duration::from_millis(5 * u64::from(attempt + 1) + jitter)).await;
            }
            Err(SendError::Store(e)) => return Err(e),
        }
    }
    Err(ApiError::Unavailable {
        message: "This conversation is very busy; please retry.".to_owned(),
        retry_after_secs: 1,
    })
}

/// Where a history page starts, from the `cursor`, `before` or `after` parameters.
pub fn history_bound(
    context: &AppContext,
    conversation_id: &str,
    cursor: Option<&str>,
    before: Option<&str>,
    after: Option<&str>,
) -> Result<HistoryBound, ApiError> {
    let scope = format!("MESSAGES#{conversation_id}");
    let parse = |field: &str, raw: &str| -> Result<HistoryBound, ApiError> {
        // A raw message id, or a cursor this list gave out.
        if let Ok(id) = validate::ulid(field, raw) {
            return Ok(if field == "after" {
                HistoryBound::After(id)
            } else {
                HistoryBound::Before(id)
            });
        }
        let position = context.cursors.open(&scope, raw, field)?;
        match position.split_once(':') {
            Some(("before", id)) if field != "after" => Ok(HistoryBound::Before(id.to_owned())),
            Some(("after", id)) if field != "before" => Ok(HistoryBound::After(id.to_owned())),
            _ => Err(ApiError::invalid(field, "is a cursor of the other direction")),
        }
    };
    match (cursor, before, after) {
        (None, None, None) => Ok(HistoryBound::Newest),
        (Some(c), None, None) => parse("cursor", c),
        (None, Some(b), None) => parse("before", b),
        (None, None, Some(a)) => parse("after", a),
        _ => Err(ApiError::invalid(
            "cursor",
            "give at most one of cursor, before and after",
        )),
    }
}

pub async fn history(
    context: &AppContext,
    me: &str,
    conversation_id: &str,
    bound: HistoryBound,
    limit: usize,
) -> Result<Page<Message>, ApiError> {
    membership(context, conversation_id, me).await?;
    let (records, more) = context.store.messages_page(conversation_id, &bound, limit).await?;
    let direction = if matches!(bound, HistoryBound::After(_)) {
        "after"
    } else {
        "before"
    };
    let next_cursor = if more {
        records.last().map(|m| {
            context
                .cursors
                .seal(&format!("MESSAGES#{conversation_id}"), &format!("{direction}:{}", m.id))
        })
    } else {
        None
    };
    Ok(Page {
        items: records.into_iter().map(Message::from).collect(),
        next_cursor,
    })
}

fn message_not_found() -> ApiError {
    ApiError::NotFound("There is no message with that id in this conversation.".to_owned())
}

pub async fn edit(
    context: &AppContext,
    me: &str,
    conversation_id: &str,
    message_id: &str,
    raw_body: &str,
) -> Result<(Message, ConversationRecord), ApiError> {
    let message_id = validate::ulid("messageId", message_id)?;
    let text = body(raw_body)?;
    let (conversation, _) = membership(context, conversation_id, me).await?;
    let edited = context
        .store
        .edit_message(conversation_id, &message_id, me, &text, &rfc3339(now()))
        .await?;
    let Some(edited) = edited else {
        let existing = context
            .store
            .get_message(conversation_id, &message_id)
            .await?
            .ok_or_else(message_not_found)?;
        return Err(if existing.sender_id != me {
            ApiError::Forbidden("Only the sender can edit a message.".to_owned())
        } else {
            ApiError::Conflict("A deleted message cannot be edited.".to_owned())
        });
    };
    context.store.refresh_last_message(&edited).await?;
    Ok((edited.into(), conversation))
}

/// `Some` when the message was deleted now (`None`: it already was).
pub async fn delete(
    context: &AppContext,
    me: &str,
    conversation_id: &str,
    message_id: &str,
) -> Result<Option<(Message, ConversationRecord)>, ApiError> {
    let message_id = validate::ulid("messageId", message_id)?;
    let (conversation, member) = membership(context, conversation_id, me).await?;
    let existing = context
        .store
        .get_message(conversation_id, &message_id)
        .await?
        .ok_or_else(message_not_found)?;
    let moderator = conversation.kind == "group" && (member.role == "owner" || member.role == "admin");
    if existing.sender_id != me && !moderator {
        return Err(ApiError::Forbidden(
            "Only the sender or a group's owner or admin can delete a message.".to_owned(),
        ));
    }
    if existing.deleted {
        return Ok(None);
    }
    let deleted = context
        .store
        .delete_message(conversation_id, &message_id)
        .await?
        .ok_or_else(message_not_found)?;
    context.store.refresh_last_message(&deleted).await?;
    Ok(Some((deleted.into(), conversation)))
}
