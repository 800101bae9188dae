//! Messages: idempotent send, history in both directions, edits by the sender, deletes by the sender or
//! a group's owner or admins.

use std::collections::BTreeMap;

use serde::Serialize;

use super::conversations::{membership, not_found, Page};
use crate::context::AppContext;
use crate::error::ApiError;
use crate::kinds::{ConversationKind, MemberRole};
use crate::realtime::{events, Outgoing, Published, Skip};
use crate::store::{ConversationRecord, HistoryBound, MessageRecord, Position, SendOutcome};
use crate::time::{now, rfc3339};
use crate::validate;

pub const BODY_LEN: std::ops::RangeInclusive<usize> = 1..=4000;

/// The API's `message` (openapi.yaml `Message`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: String,
    pub conversation_id: String,
    /// Position in the conversation: 1, 2, 3, ... in commit order, agreeing with the id order.
    pub seq: u64,
    pub sender_id: String,
    pub client_message_id: String,
    pub body: String,
    pub encrypted: bool,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<String>,
    pub deleted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_message_id: Option<String>,
    pub reply_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_reply_at: Option<String>,
    pub mentions: Vec<String>,
    pub reactions: BTreeMap<String, u64>,
    /// The reader's own reactions: on what a caller reads (`decorate`), absent from events, which
    /// go to every member alike.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub my_reactions: Option<Vec<String>>,
    /// Attached uploads (docs/API-GUIDE.md "Attachments"), each with a download `url` when read; `[]`
    /// when none, as openapi.yaml requires the field on every message.
    pub attachments: Vec<super::attachments::Attachment>,
}

impl From<MessageRecord> for Message {
    fn from(record: MessageRecord) -> Self {
        // A deleted message keeps its place and nothing of its content (docs/API-GUIDE.md "Messages").
        let (mentions, reactions, attachments) = if record.deleted {
            (Vec::new(), BTreeMap::new(), Vec::new())
        } else {
            (
                record.mentions,
                record.reactions.into_iter().filter(|(_, count)| *count > 0).collect(),
                record.attachments,
            )
        };
        Message {
            id: record.id,
            conversation_id: record.conversation_id,
            seq: record.seq,
            sender_id: record.sender_id,
            client_message_id: record.client_message_id,
            body: record.body,
            encrypted: record.encrypted,
            created_at: record.created_at,
            edited_at: record.edited_at,
            deleted: record.deleted,
            parent_message_id: record.parent_message_id,
            reply_count: record.reply_count,
            last_reply_at: record.last_reply_at,
            mentions,
            reactions,
            my_reactions: None,
            attachments,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct NewMessage {
    pub client_message_id: String,
    pub body: String,
    pub encrypted: bool,
    /// A thread reply's parent (a message of the same conversation that is no reply itself).
    pub parent_message_id: Option<String>,
    /// Members the message mentions (at most [`MAX_MENTIONS`]).
    pub mentions: Vec<String>,
    /// Uploads of the sender's in this conversation to attach (at most 10; see `domain::attachments`).
    pub attachment_ids: Vec<String>,
}

/// `mentions` max 50 (docs/API-GUIDE.md "Limits").
pub const MAX_MENTIONS: usize = 50;

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

/// `mentions`: distinct ids, at most [`MAX_MENTIONS`].
fn mention_ids(raw: &[String]) -> Result<Vec<String>, ApiError> {
    if raw.len() > MAX_MENTIONS {
        return Err(ApiError::invalid(
            "mentions",
            format!("a message mentions at most {MAX_MENTIONS} members"),
        ));
    }
    let mut ids: Vec<String> = Vec::with_capacity(raw.len());
    for id in raw {
        let id = validate::ulid("mentions", id)?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// Every mentioned user must be a member now (their member items came with the send's read); those
/// who are not are named.
fn require_members(
    conversation: &ConversationRecord,
    members: &[crate::store::MemberRecord],
    mentioned: &[String],
) -> Result<(), ApiError> {
    let missing: Vec<&str> = mentioned
        .iter()
        .filter(|id| !members.iter().any(|m| m.user_id == **id && conversation.admits(m)))
        .map(String::as_str)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(ApiError::invalid(
        "mentions",
        format!("not members of this conversation: {}", missing.join(", ")),
    ))
}

/// What a send did.
pub struct Sent {
    pub message: Message,
    /// False when this sender already sent this `clientMessageId` here: `message` is the original.
    pub created: bool,
}

/// Stores the message once, at the conversation's next position, and returns its `message.new` for
/// every member's connections but `skip`. A repeat of the same `clientMessageId` stores nothing, makes
/// sure everything after the original's commit happened, and returns its `message.new` again: a send
/// whose answer was lost is delivered when the client retries (at-least-once).
///
/// Three sequential DynamoDB round trips whatever the conversation's size: one read (conversation,
/// membership, the `clientMessageId` claim, a reply's parent, mentioned members), one position
/// reservation, one transaction (the message and its claim). What follows a stored message (the
/// conversation's `lastMessage`, the sender's read marker, list keys, threads, mentions) is the
/// conversation worker's, from the message's stream record (`upkeep::record_sent`). Every attempt of one send carries the same token, so a repeat in flight, or
/// the retry of an attempt that died after reserving, finds that position in the register and stores
/// there: concurrent repeats take one position, and no step is an optimistic retry loop.
pub async fn send(
    context: &AppContext,
    me: &str,
    conversation_id: &str,
    input: NewMessage,
    skip: Skip,
) -> Result<Published<Sent>, ApiError> {
    let mut problems = validate::Problems::default();
    let client_id = problems.check(client_message_id(&input.client_message_id));
    let attachment_ids = problems.check(super::attachments::ids(&input.attachment_ids));
    // A message with attachments may have an empty body.
    let text = problems.check(match attachment_ids.as_ref().is_some_and(|ids| !ids.is_empty()) {
        true => validate::text("body", &input.body, 0..=*BODY_LEN.end()),
        false => body(&input.body),
    });
    let parent_id = problems.check(
        input
            .parent_message_id
            .as_deref()
            .map(|p| validate::ulid("parentMessageId", p))
            .transpose(),
    );
    let mentioned = problems.check(mention_ids(&input.mentions));
    problems.finish()?;
    let (client_id, text) = (client_id.unwrap_or_default(), text.unwrap_or_default());
    let (parent_id, mentioned) = (parent_id.unwrap_or_default(), mentioned.unwrap_or_default());
    let found = context
        .store
        .send_context(conversation_id, me, &client_id, parent_id.as_deref(), &mentioned)
        .await?;
    let (Some(conversation), Some(member)) = (found.conversation, found.member) else {
        return Err(not_found());
    };
    if !conversation.admits(&member) {
        return Err(not_found());
    }
    if conversation.blocked_by.iter().any(|blocker| blocker != me) {
        return Err(ApiError::Forbidden(
            "The other member of this direct conversation has blocked you, so you cannot send here.".to_owned(),
        ));
    }
    super::mutes::refuse_if_muted(context, &member)?;
    if let Some(parent_id) = &parent_id {
        match &found.parent {
            None => {
                return Err(ApiError::invalid(
                    "parentMessageId",
                    format!("there is no message {parent_id} in this conversation"),
                ))
            }
            Some(parent) if parent.parent_message_id.is_some() => {
                return Err(ApiError::invalid(
                    "parentMessageId",
                    "names a reply: threads are one level deep, so reply to the thread's first message",
                ))
            }
            Some(_) => {}
        }
    }
    require_members(&conversation, &found.mentioned, &mentioned)?;
    if let Some(original) = found.claim.and_then(|claim| claim.message_id) {
        return resend(context, &conversation, &original, skip).await;
    }
    // Slow mode holds back a plain member's next new message (a repeat, answered above, is not one);
    // one conditional write, only in a conversation in slow mode.
    if conversation.slow_mode_seconds > 0 && member.role == MemberRole::Member {
        let interval_ms = conversation.slow_mode_seconds * 1000;
        if let Err(wait_ms) = context
            .store
            .admit_slow_send(&conversation.id, me, context.now_ms(), interval_ms)
            .await?
        {
            let retry_after_secs = wait_ms.div_ceil(1000);
            return Err(ApiError::RateLimited {
                message: format!(
                    "This conversation is in slow mode: one message every {} s. Retry in {retry_after_secs} s.",
                    conversation.slow_mode_seconds
                ),
                retry_after_secs,
            });
        }
    }
    // After a repeat has been answered (its attachments are its own already), before anything is written.
    let attached =
        super::attachments::check_for_send(context, me, &conversation.id, &attachment_ids.unwrap_or_default()).await?;
    let token = send_token(&conversation.id, me, &client_id);
    let mut again = false;
    loop {
        let reserved = context
            .store
            .reserve_position(&conversation.id, conversation.last_seq, context.now_ms(), &token, again)
            .await?;
        let position = reserved.position();
        let id = message_id(&position, &token);
        let record = MessageRecord {
            id: id.clone(),
            conversation_id: conversation.id.clone(),
            sender_id: me.to_owned(),
            client_message_id: client_id.clone(),
            body: text.clone(),
            encrypted: input.encrypted,
            created_at: rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_millis(position.clock_ms)),
            edited_at: None,
            deleted: false,
            seq: position.seq,
            parent_message_id: parent_id.clone(),
            mentions: mentioned.clone(),
            thread_pk: parent_id.as_deref().map(crate::store::keys::thread),
            thread_sk: parent_id.as_ref().map(|_| id.clone()),
            attachments: attached.clone(),
            ..MessageRecord::default()
        };
        let attempt = ulid::Ulid::generate().to_string();
        let outcome = context.store.commit_message(&record, &attempt).await;
        match outcome {
            Ok(SendOutcome::Stored) => {
                super::attachments::keep_attached(context, &conversation.id, &record.attachments).await;
                let mut message = Message::from(record);
                let event =
                    Outgoing::to_conversation(&conversation, events::message("message.new", &message)).skipping(skip);
                super::attachments::with_urls(context, &mut message.attachments).await?;
                return Ok(Published::new(Sent { message, created: true }, vec![event]));
            }
            Ok(SendOutcome::Duplicate(original)) => return resend(context, &conversation, &original, skip).await,
            // An earlier attempt gave this position up (filled it with a placeholder): once, a new one.
            Ok(SendOutcome::PositionFilled) if !again => again = true,
            // Its new position filled too (a concurrent repeat gave it up): the client's retry decides.
            Ok(SendOutcome::PositionFilled) => return Err(busy_with_same_message()),
            Ok(SendOutcome::ParentGone) => {
                fill_position(context, &conversation, &record).await;
                return Err(ApiError::invalid(
                    "parentMessageId",
                    format!(
                        "there is no message {} in this conversation",
                        parent_id.unwrap_or_default()
                    ),
                ));
            }
            Ok(SendOutcome::AttachmentsTaken) => {
                fill_position(context, &conversation, &record).await;
                return Err(ApiError::invalid(
                    "attachmentIds",
                    "an attachment was attached to another message meanwhile",
                ));
            }
            // The position stays reserved for this token: the client's retry stores its message there
            // (or, if a placeholder got there first, takes a new one), so `seq` stays dense either way.
            // The placeholder is for a client that never retries.
            Err(e) => {
                fill_position(context, &conversation, &record).await;
                return Err(e);
            }
        }
    }
}

/// The token of every attempt to send `client_message_id` from `sender_id` in `conversation_id`:
/// the same for all of them, so the position register recognises a repeat, and unguessable from the
/// message id it yields (only 80 bits of its hash are used there). 16 characters keep the register
/// under one write unit.
pub fn send_token(conversation_id: &str, sender_id: &str, client_message_id: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{conversation_id}\n{sender_id}\n{client_message_id}").as_bytes());
    hex::encode(&digest[..8])
}

fn busy_with_same_message() -> ApiError {
    ApiError::Unavailable {
        message: "The same message is being sent by another request; please retry.".to_owned(),
        retry_after_secs: 1,
    }
}

/// The original of a repeated send, its `message.new` published again (its follow-ups are the stream's:
/// the stored message's record is there whatever happened to the first attempt).
async fn resend(
    context: &AppContext,
    conversation: &ConversationRecord,
    original_id: &str,
    skip: Skip,
) -> Result<Published<Sent>, ApiError> {
    let original = context
        .store
        .get_message(&conversation.id, original_id)
        .await?
        .ok_or_else(|| ApiError::internal("client message claim without its message"))?;
    let event = Outgoing::to_conversation(
        conversation,
        events::message("message.new", &Message::from(original.clone())),
    )
    .skipping(skip);
    // The same message as the first answer gave (and as the event carries), with download links.
    let mut message = Message::from(original);
    super::attachments::with_urls(context, &mut message.attachments).await?;
    Ok(Published::new(
        Sent {
            message,
            created: false,
        },
        vec![event],
    ))
}

/// The id of the message an attempt stores at its reserved position: the position's clock, and 80 bits
/// of the attempt's (random, never shown) token. Derived, not drawn, so that a later attempt that finds
/// the position abandoned and fills it writes the very id the first attempt would, and at most one of
/// the two is ever stored (both are conditional puts of that id).
fn message_id(position: &Position, token: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(token.as_bytes());
    let mut random = [0u8; 16];
    random[..10].copy_from_slice(&digest[..10]);
    ulid::Ulid::from_parts(position.clock_ms, u128::from_le_bytes(random)).to_string()
}

/// A reserved position whose send did not complete becomes a deleted message, and the members hear of
/// it, so nobody waits for a `seq` that never comes. Best effort: if DynamoDB refuses even this, the
/// position stays empty (logged).
async fn fill_position(context: &AppContext, conversation: &ConversationRecord, reserved: &MessageRecord) -> bool {
    let placeholder = MessageRecord {
        client_message_id: String::new(),
        body: String::new(),
        deleted: true,
        ..reserved.clone()
    };
    if let Err(e) = context.store.fill_position(&placeholder).await {
        tracing::error!(conversationId = %conversation.id, seq = reserved.seq, error = %e, "a reserved position is still empty; the claim's next holder fills it");
        return false;
    }
    let event = events::message("message.deleted", &Message::from(placeholder));
    if let Err(e) = context.publish(&[Outgoing::to_conversation(conversation, event)]).await {
        tracing::warn!(error = %e, "the filled position's event was not queued");
    }
    true
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
        let position = context.cursors().open(&scope, raw, field)?;
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
                .cursors()
                .seal(&format!("MESSAGES#{conversation_id}"), &format!("{direction}:{}", m.id))
        })
    } else {
        None
    };
    Ok(Page {
        items: decorate_range(context, me, conversation_id, records).await?,
        next_cursor,
    })
}

pub(crate) fn message_not_found() -> ApiError {
    ApiError::NotFound("There is no message with that id in this conversation.".to_owned())
}

pub async fn edit(
    context: &AppContext,
    me: &str,
    conversation_id: &str,
    message_id: &str,
    raw_body: &str,
) -> Result<Published<Message>, ApiError> {
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
    let event = events::message("message.updated", &Message::from(edited.clone()));
    let message = decorate(context, me, vec![edited]).await?.remove(0);
    Ok(Published::new(
        message,
        vec![Outgoing::to_conversation(&conversation, event)],
    ))
}

/// Deletes the message; its `message.deleted` only when it was deleted now (not when it already was).
pub async fn delete(
    context: &AppContext,
    me: &str,
    conversation_id: &str,
    message_id: &str,
) -> Result<Published<()>, ApiError> {
    let message_id = validate::ulid("messageId", message_id)?;
    let (conversation, member) = membership(context, conversation_id, me).await?;
    let existing = context
        .store
        .get_message(conversation_id, &message_id)
        .await?
        .ok_or_else(message_not_found)?;
    let moderator = conversation.kind == ConversationKind::Group && (member.role.moderates());
    if existing.sender_id != me && !moderator {
        return Err(ApiError::Forbidden(
            "Only the sender or a group's owner or admin can delete a message.".to_owned(),
        ));
    }
    if existing.deleted {
        return Ok(Published::quiet(()));
    }
    let Some(deleted) = context.store.delete_message(&existing).await? else {
        // Deleted meanwhile by someone else: no news from this request.
        return Ok(Published::quiet(()));
    };
    super::attachments::remove_now(context, conversation_id, &existing.attachments).await;
    context.store.refresh_last_message(&deleted).await?;
    let event = events::message("message.deleted", &Message::from(deleted));
    let mut outgoing = vec![Outgoing::to_conversation(&conversation, event)];
    outgoing.extend(super::pins::unpin_deleted(context, &conversation, &message_id).await?);
    Ok(Published::new((), outgoing))
}

/// Messages as `me` reads them: each with `me`'s own reactions (`myReactions`), read in one call for
/// the whole page (a BatchGetItem of scattered messages, or for a page of one conversation's history
/// one Query of the key range it spans), never one read per message.
pub async fn decorate(context: &AppContext, me: &str, records: Vec<MessageRecord>) -> Result<Vec<Message>, ApiError> {
    let keys: Vec<(String, String)> = records
        .iter()
        .filter(|r| !r.deleted)
        .map(|r| (r.conversation_id.clone(), r.id.clone()))
        .collect();
    let mine = context.store.own_reactions_of(me, &keys).await?;
    with_urls(context, with_own(records, mine)).await
}

/// [`decorate`] for records read together with `me`'s own reactions to them
/// (`Store::messages_with_own_reactions`).
pub(crate) async fn decorate_read(
    context: &AppContext,
    records: Vec<MessageRecord>,
    mine: std::collections::HashMap<String, Vec<String>>,
) -> Result<Vec<Message>, ApiError> {
    with_urls(context, with_own(records, mine)).await
}

/// [`decorate`] for a page of one conversation's history (ids contiguous in that conversation).
async fn decorate_range(
    context: &AppContext,
    me: &str,
    conversation_id: &str,
    records: Vec<MessageRecord>,
) -> Result<Vec<Message>, ApiError> {
    let (Some(low), Some(high)) = (records.iter().map(|r| &r.id).min(), records.iter().map(|r| &r.id).max()) else {
        return Ok(Vec::new());
    };
    let mine = context
        .store
        .own_reactions_between(conversation_id, me, low, high)
        .await?;
    with_urls(context, with_own(records, mine)).await
}

/// Download URLs on the attachments of messages a member reads.
async fn with_urls(context: &AppContext, mut messages: Vec<Message>) -> Result<Vec<Message>, ApiError> {
    for message in &mut messages {
        super::attachments::with_urls(context, &mut message.attachments).await?;
    }
    Ok(messages)
}

fn with_own(records: Vec<MessageRecord>, mut mine: std::collections::HashMap<String, Vec<String>>) -> Vec<Message> {
    records
        .into_iter()
        .map(|record| {
            let own = if record.deleted {
                Vec::new()
            } else {
                mine.remove(&record.id).unwrap_or_default()
            };
            let mut message = Message::from(record);
            // Only reactions that still count (a count is the truth; the own set can trail a moment).
            let own: Vec<String> = own.into_iter().filter(|r| message.reactions.contains_key(r)).collect();
            message.my_reactions = Some(own);
            message
        })
        .collect()
}

/// `GET .../messages/{messageId}`: one message, as the caller reads it.
pub async fn get_one(
    context: &AppContext,
    me: &str,
    conversation_id: &str,
    message_id: &str,
) -> Result<Message, ApiError> {
    let message_id = validate::ulid("messageId", message_id)?;
    membership(context, conversation_id, me).await?;
    let record = context
        .store
        .get_message(conversation_id, &message_id)
        .await?
        .ok_or_else(message_not_found)?;
    Ok(decorate(context, me, vec![record]).await?.remove(0))
}

/// `GET .../messages/{messageId}/replies`: the thread's replies, oldest first.
pub async fn replies(
    context: &AppContext,
    me: &str,
    conversation_id: &str,
    message_id: &str,
    limit: usize,
    cursor: Option<&str>,
) -> Result<Page<Message>, ApiError> {
    let parent_id = validate::ulid("messageId", message_id)?;
    membership(context, conversation_id, me).await?;
    let scope = format!("REPLIES#{parent_id}");
    let after = cursor
        .map(|c| context.cursors().open(&scope, c, "cursor"))
        .transpose()?;
    context
        .store
        .get_message(conversation_id, &parent_id)
        .await?
        .ok_or_else(message_not_found)?;
    let (records, more) = context.store.replies_page(&parent_id, after.as_deref(), limit).await?;
    // The thread index is a GSI: what it lists is checked to belong here (it always does: ids are unique).
    let records: Vec<MessageRecord> = records
        .into_iter()
        .filter(|r| r.conversation_id == conversation_id)
        .collect();
    let next_cursor = match (more, records.last()) {
        (true, Some(last)) => Some(context.cursors().seal(&scope, &last.id)),
        _ => None,
    };
    Ok(Page {
        items: decorate(context, me, records).await?,
        next_cursor,
    })
}
