//! The server-to-client events of asyncapi.yaml (docs/API-GUIDE.md "Events").

use serde_json::{json, Value};

use crate::domain::conversations::Conversation;
use crate::domain::messages::Message;
use crate::domain::users::User;

/// `message.new`, `message.updated`, `message.deleted`.
pub fn message(kind: &str, message: &Message) -> Value {
    json!({ "type": kind, "message": message })
}

pub fn typing(conversation_id: &str, user_id: &str) -> Value {
    json!({ "type": "typing", "conversationId": conversation_id, "userId": user_id })
}

pub fn presence(user: &User) -> Value {
    let mut event = json!({
        "type": "presence",
        "userId": user.id,
        "status": user.status,
        "lastSeenAt": user.last_seen_at,
    });
    if let Some(text) = &user.status_text {
        event["statusText"] = json!(text);
    }
    event
}

/// `member.added`, `member.removed`.
pub fn members(kind: &str, conversation_id: &str, user_ids: &[String]) -> Value {
    json!({ "type": kind, "conversationId": conversation_id, "userIds": user_ids })
}

/// `reaction.added`, `reaction.removed`.
pub fn reaction(kind: &str, conversation_id: &str, message_id: &str, user_id: &str, reaction: &str) -> Value {
    json!({ "type": kind, "conversationId": conversation_id, "messageId": message_id, "userId": user_id, "reaction": reaction })
}

/// `member.banned`: the user is kept out of the group.
pub fn member_banned(conversation_id: &str, user_id: &str) -> Value {
    json!({ "type": "member.banned", "conversationId": conversation_id, "userId": user_id })
}

/// `member.muted` (with `until`) or, without it, `member.unmuted`.
pub fn member_muted(conversation_id: &str, user_id: &str, until: Option<&str>) -> Value {
    match until {
        Some(until) => {
            json!({ "type": "member.muted", "conversationId": conversation_id, "userId": user_id, "until": until })
        }
        None => json!({ "type": "member.unmuted", "conversationId": conversation_id, "userId": user_id }),
    }
}

/// `message.pinned` / `message.unpinned`.
pub fn pin(kind: &str, conversation_id: &str, message_id: &str) -> Value {
    json!({ "type": kind, "conversationId": conversation_id, "messageId": message_id })
}

/// `member.role`: a member's role changed.
pub fn member_role(conversation_id: &str, user_id: &str, role: &str) -> Value {
    json!({ "type": "member.role", "conversationId": conversation_id, "userId": user_id, "role": role })
}

/// `conversation.created` with the recipient's own view (their role, nothing unread).
pub fn conversation_created(conversation: &Conversation) -> Value {
    json!({ "type": "conversation.created", "conversation": conversation })
}

/// `conversation.updated`: one event goes to every member, so it carries only what is the same for
/// all of them; the fields that differ per member (`myRole`, `readSeq`, `unreadCount`) are left out
/// and the client keeps its own.
pub fn conversation_updated(conversation: &Conversation) -> Value {
    json!({ "type": "conversation.updated", "conversation": shared_conversation(conversation) })
}

/// A conversation as every member sees it alike (`SharedConversation`): without the per-member fields.
pub fn shared_conversation(conversation: &Conversation) -> Value {
    let mut shared = json!(conversation);
    if let Some(fields) = shared.as_object_mut() {
        for per_member in ["myRole", "readSeq", "unreadCount", "mentionCount", "invited"] {
            fields.remove(per_member);
        }
    }
    shared
}

/// `invitation.new`, to the invitee only.
pub fn invitation_new(invitation: &crate::domain::invitations::Invitation) -> Value {
    json!({ "type": "invitation.new", "invitation": invitation })
}

pub fn conversation_deleted(conversation_id: &str) -> Value {
    json!({ "type": "conversation.deleted", "conversationId": conversation_id })
}

pub fn read(conversation_id: &str, user_id: &str, message_id: &str, seq: u64) -> Value {
    json!({ "type": "read", "conversationId": conversation_id, "userId": user_id, "messageId": message_id, "seq": seq })
}

/// Several events for one connection, sent as one frame.
pub fn batch(events: &[Value]) -> Value {
    json!({ "type": "batch", "events": events })
}

/// The one frame that carries `events` to a connection.
pub fn frame(events: &[Value]) -> Value {
    match events {
        [single] => single.clone(),
        many => batch(many),
    }
}
