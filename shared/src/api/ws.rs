//! WebSocket routes (asyncapi.yaml; docs/API-GUIDE.md "Real time over the WebSocket"): connect and
//! disconnect, `sendMessage`, `typing`, `markRead`, `ping`, and `$default` for everything else.

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use crate::domain::conversations;
use crate::domain::messages::{self, NewMessage};
use crate::error::ApiError;
use crate::realtime::Skip;
use crate::store::ConnectionRecord;
use crate::time::{epoch_secs, now, rfc3339};
use crate::validate;
use crate::ws::{WsReply, WsRequest};
use crate::AppContext;

/// Past API Gateway's 2 hour connection limit, so a connection whose `$disconnect` never arrived expires.
const CONNECTION_TTL: Duration = Duration::from_secs(2 * 3600 + 15 * 60);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SendFrame {
    conversation_id: String,
    client_message_id: String,
    body: String,
    #[serde(default)]
    encrypted: bool,
    #[serde(default)]
    parent_message_id: Option<String>,
    #[serde(default)]
    mentions: Vec<String>,
    #[serde(default)]
    attachment_ids: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypingFrame {
    conversation_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReadFrame {
    conversation_id: String,
    message_id: String,
}

/// Open connections one user may hold (docs/API-GUIDE.md "Limits").
pub const MAX_CONNECTIONS_PER_USER: usize = 20;

/// A connection younger than this is not probed when the user's set is full: it may still be in its own
/// `$connect`, where API Gateway does not know it yet.
const PROBE_AFTER: Duration = Duration::from_secs(30);

/// `$connect` (after the authorizer): remember the connection for its user and session, unless the
/// user already holds [`MAX_CONNECTIONS_PER_USER`] connections (then 429 on the upgrade, after dropping
/// any that are in fact gone), and refuse it if the session was revoked meanwhile.
pub async fn connect(context: &'static AppContext, request: WsRequest) -> Result<WsReply, ApiError> {
    let user = request.user()?.to_owned();
    let connected = now();
    let record = ConnectionRecord {
        connection_id: request.connection_id.clone(),
        user_id: user.clone(),
        connected_at: rfc3339(connected),
        expires_at: epoch_secs(connected + CONNECTION_TTL),
        session_id: request.session_id.clone(),
    };
    let mut admitted = context.store.put_connection(&record, MAX_CONNECTIONS_PER_USER).await?;
    if !admitted && drop_gone_connections(context, &user).await? > 0 {
        admitted = context.store.put_connection(&record, MAX_CONNECTIONS_PER_USER).await?;
    }
    if !admitted {
        return Err(ApiError::RateLimited {
            message: format!(
                "At most {MAX_CONNECTIONS_PER_USER} WebSocket connections per user are open at once; close one first."
            ),
            retry_after_secs: 5,
        });
    }
    // Read after the connection is recorded, strongly consistent: a revocation either sees this
    // connection (and closes it) or has already marked the session, which this read then sees.
    if let Some(session_id) = &request.session_id {
        if context.store.session_state(session_id, epoch_secs(connected)).await? == Some(false) {
            crate::auth::session_state::remember(session_id, false);
            context.store.remove_connection(&user, &request.connection_id).await?;
            return Err(crate::auth::session_state::revoked());
        }
    }
    Ok(WsReply::Status(200))
}

/// When a user's set is full: drops the entries that are no longer connections (an id whose item is
/// gone; an older connection API Gateway answers 410 for, closed without a `$disconnect`). Costs one
/// GetItem and one BatchGetItem, and a `GetConnection` per connection older than [`PROBE_AFTER`], all at
/// once; only ever on a connect that finds the set full. Returns how many were dropped.
async fn drop_gone_connections(context: &'static AppContext, user: &str) -> Result<usize, ApiError> {
    let probe_before = rfc3339(now() - PROBE_AFTER);
    let entries = context.store.user_connections(user).await?;
    let checks = entries.into_iter().map(|(connection_id, record)| {
        let probe_before = probe_before.clone();
        async move {
            let gone = match &record {
                None => true,
                Some(record) if record.connected_at < probe_before => {
                    context.fanout.connection_is_gone(&connection_id).await
                }
                Some(_) => false,
            };
            if !gone {
                return Ok(false);
            }
            match record {
                None => context.store.forget_connection_id(user, &connection_id).await?,
                Some(_) => context.store.remove_connection(user, &connection_id).await?,
            }
            Ok::<bool, ApiError>(true)
        }
    });
    let mut dropped = 0;
    for outcome in futures_util::future::join_all(checks).await {
        dropped += usize::from(outcome?);
    }
    if dropped > 0 {
        tracing::info!(userId = %user, dropped, "dropped gone connections from a full set");
    }
    Ok(dropped)
}

/// `$disconnect`: forget the connection (best effort; expiry and 410s cover a missing disconnect).
pub async fn disconnect(context: &'static AppContext, request: WsRequest) -> Result<WsReply, ApiError> {
    context.store.delete_connection(&request.connection_id).await?;
    Ok(WsReply::Status(200))
}

/// `sendMessage`: the HTTP send's path and idempotency; an `ack` to the sender, `message.new` to every
/// other connection of every member.
pub async fn send_message(context: &'static AppContext, request: WsRequest) -> Result<WsReply, ApiError> {
    let me = request.user()?.to_owned();
    let frame: SendFrame = request.frame()?;
    let conversation_id = validate::ulid("conversationId", &frame.conversation_id)?;
    let input = NewMessage {
        client_message_id: frame.client_message_id,
        body: frame.body,
        encrypted: frame.encrypted,
        parent_message_id: frame.parent_message_id,
        mentions: frame.mentions,
        attachment_ids: frame.attachment_ids,
    };
    let skip = Skip::Connection(request.connection_id.clone());
    let sent = super::deliver(
        context,
        messages::send(context, &me, &conversation_id, input, skip).await?,
    )
    .await?;
    Ok(WsReply::Frame(json!({
        "type": "ack",
        "clientMessageId": sent.message.client_message_id,
        "message": sent.message,
    })))
}

/// `typing`: the other members see it; nothing comes back.
pub async fn typing(context: &'static AppContext, request: WsRequest) -> Result<WsReply, ApiError> {
    let me = request.user()?.to_owned();
    let frame: TypingFrame = request.frame()?;
    let conversation_id = validate::ulid("conversationId", &frame.conversation_id)?;
    let typing = conversations::typing(context, &me, &conversation_id).await?;
    // Typing is ephemeral: if it cannot be queued now, the next keystroke sends another.
    if let Err(e) = super::deliver(context, typing).await {
        tracing::debug!(error = %e, "typing not queued");
    }
    Ok(WsReply::Nothing)
}

/// `markRead`: moves the read marker forward; the members (and the reader's other devices) get `read`.
pub async fn mark_read(context: &'static AppContext, request: WsRequest) -> Result<WsReply, ApiError> {
    let me = request.user()?.to_owned();
    let frame: ReadFrame = request.frame()?;
    let conversation_id = validate::ulid("conversationId", &frame.conversation_id)?;
    let skip = Skip::Connection(request.connection_id.clone());
    let read = conversations::mark_read(context, &me, &conversation_id, &frame.message_id, skip).await?;
    let message_id = super::deliver(context, read).await?;
    Ok(WsReply::Frame(json!({
        "type": "ack",
        "action": "markRead",
        "conversationId": conversation_id,
        "messageId": message_id,
    })))
}

/// `ping`
pub async fn ping(_context: &'static AppContext, _request: WsRequest) -> Result<WsReply, ApiError> {
    Ok(WsReply::Frame(json!({ "type": "pong", "at": rfc3339(now()) })))
}

/// `$default`: a frame that is not JSON, has no `action`, or an action nobody serves.
pub async fn unknown(_context: &'static AppContext, request: WsRequest) -> Result<WsReply, ApiError> {
    #[derive(Deserialize)]
    struct Action {
        #[serde(default)]
        action: Option<serde_json::Value>,
    }
    let frame: Action = request.frame().map_err(|e| match e {
        ApiError::InvalidJson(_) => ApiError::InvalidJson("Frames must be JSON objects with an \"action\".".to_owned()),
        other => other,
    })?;
    Err(match frame.action {
        None => ApiError::invalid("action", "is missing; use sendMessage, typing, markRead or ping"),
        Some(action) => ApiError::invalid(
            "action",
            format!("{action} is not an action; use sendMessage, typing, markRead or ping"),
        ),
    })
}
