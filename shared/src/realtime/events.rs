//! The server-to-client events of API.md's WebSocket section.

use serde_json::{json, Value};

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
