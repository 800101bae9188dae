//! Sign-in sessions: one item per session, holding the hash of the current refresh token.
//!
//! A live session is also in GSI1 under `USERSESSIONS#<userId>` / `<sessionId>`, so a user's sessions are
//! one Query (no Scan); revoking removes those two attributes, so the index holds live (or merely
//! expired, not yet deleted by TTL) sessions only.

use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity, ReturnValue};
use serde::{Deserialize, Serialize};

use super::{is_condition_failure, item_with_key, key, keys, n, records, s, Store};
use crate::error::ApiError;

/// A session as stored under `SESSION#<id>` / `SESSION`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRecord {
    pub id: String,
    pub user_id: String,
    /// Bumped by every refresh; a token of an older generation is a reused one (once its secret verifies).
    pub generation: u64,
    pub token_hash: String,
    /// The per-session salt every generation's refresh secret is derived with (see `auth::refresh`).
    /// Sessions from before salts get one at their next rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
    pub created_at: String,
    /// When the session last signed in or refreshed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<String>,
    /// The client's User-Agent at sign-in, at most 256 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// TTL: epoch seconds when the current refresh token stops working.
    pub expires_at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_reason: Option<String>,
}

impl SessionRecord {
    /// Not revoked and its refresh token not expired at `now_secs`.
    pub fn is_live(&self, now_secs: u64) -> bool {
        self.revoked_at.is_none() && self.expires_at > now_secs
    }
}

/// At most this many sessions are listed (newest first); older live ones still work.
pub const MAX_LISTED_SESSIONS: usize = 100;

impl Store {
    pub async fn put_session(&self, session: &SessionRecord) -> Result<(), ApiError> {
        let mut item = item_with_key(keys::session(&session.id), keys::SESSION, session)?;
        item.insert("GSI1PK".to_owned(), s(keys::user_sessions(&session.user_id)));
        item.insert("GSI1SK".to_owned(), s(&session.id));
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await?;
        self.usage.record(true, out.consumed_capacity());
        Ok(())
    }

    pub async fn get_session(&self, session_id: &str) -> Result<Option<SessionRecord>, ApiError> {
        self.get_record(keys::session(session_id), keys::SESSION.to_owned())
            .await
    }

    /// Whether the session is live: one strongly consistent GetItem of two small attributes (1 RCU
    /// for a session item under 4 KB: a projection does not make a read cheaper, and only an
    /// eventually consistent one costs half). `None` when no such session item exists.
    pub async fn session_state(&self, session_id: &str, now_secs: u64) -> Result<Option<bool>, ApiError> {
        let request = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::session(session_id), keys::SESSION)))
            .projection_expression("revokedAt, expiresAt")
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        let out = self
            .retrying(|| async { request.clone().send().await.map_err(ApiError::from) })
            .await?;
        self.usage.record(false, out.consumed_capacity());
        Ok(out.item.map(|item| {
            let revoked = item.contains_key("revokedAt");
            let expires_at = item
                .get("expiresAt")
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            !revoked && expires_at > now_secs
        }))
    }

    /// Moves the session from `(generation, old_hash)` to `(generation + 1, new_hash)`, only if it is
    /// still at that generation and not revoked. `Ok(false)`: somebody rotated or revoked it first.
    /// Also records `lastUsedAt`, and the session's salt when it had none yet.
    pub async fn rotate_session(
        &self,
        session: &SessionRecord,
        new_hash: &str,
        salt: &str,
        new_expires_at: u64,
        used_at: &str,
    ) -> Result<bool, ApiError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::session(&session.id), keys::SESSION)))
            .update_expression(
                "SET generation = :next, tokenHash = :newHash, expiresAt = :expiresAt, lastUsedAt = :usedAt, salt = if_not_exists(salt, :salt)",
            )
            .condition_expression("generation = :current AND tokenHash = :oldHash AND attribute_not_exists(revokedAt)")
            .expression_attribute_values(":next", n(session.generation + 1))
            .expression_attribute_values(":current", n(session.generation))
            .expression_attribute_values(":newHash", s(new_hash))
            .expression_attribute_values(":oldHash", s(&session.token_hash))
            .expression_attribute_values(":expiresAt", n(new_expires_at))
            .expression_attribute_values(":usedAt", s(used_at))
            .expression_attribute_values(":salt", s(salt))
            .return_values(ReturnValue::None)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        if let Ok(out) = &result {
            self.usage.record(true, out.consumed_capacity());
        }
        match result {
            Ok(_) => Ok(true),
            Err(err) if is_condition_failure(&err) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }

    /// Marks the session revoked and takes it out of its user's session index (idempotent; the first
    /// reason is kept). Returns the session as it now is, or `None` when there is no such session.
    pub async fn revoke_session(
        &self,
        session_id: &str,
        reason: &str,
        at: &str,
    ) -> Result<Option<SessionRecord>, ApiError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::session(session_id), keys::SESSION)))
            .update_expression("SET revokedAt = :at, revokedReason = :reason REMOVE GSI1PK, GSI1SK")
            .condition_expression("attribute_exists(PK) AND attribute_not_exists(revokedAt)")
            .expression_attribute_values(":at", s(at))
            .expression_attribute_values(":reason", s(reason))
            .return_values(ReturnValue::AllNew)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match result {
            Ok(out) => {
                self.usage.record(true, out.consumed_capacity());
                Ok(out.attributes.map(serde_dynamo::from_item).transpose()?)
            }
            // Already revoked, or unknown: read which.
            Err(err) if is_condition_failure(&err) => self.get_session(session_id).await,
            Err(err) => Err(err.into()),
        }
    }

    /// The user's live sessions, newest first, at most [`MAX_LISTED_SESSIONS`]: Query pages of GSI1
    /// (revoked sessions are not in it; expired ones are skipped here until TTL deletes them).
    pub async fn user_sessions(&self, user_id: &str, now_secs: u64) -> Result<Vec<SessionRecord>, ApiError> {
        let mut sessions = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name("GSI1")
                .key_condition_expression("GSI1PK = :pk")
                .expression_attribute_values(":pk", AttributeValue::S(keys::user_sessions(user_id)))
                .scan_index_forward(false)
                .limit(MAX_LISTED_SESSIONS as i32)
                .set_exclusive_start_key(start)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await?;
            self.usage.record(false, out.consumed_capacity());
            let page: Vec<SessionRecord> = records(out.items.unwrap_or_default())?;
            sessions.extend(page.into_iter().filter(|session| session.is_live(now_secs)));
            start = out.last_evaluated_key;
            if start.is_none() || sessions.len() >= MAX_LISTED_SESSIONS {
                sessions.truncate(MAX_LISTED_SESSIONS);
                return Ok(sessions);
            }
        }
    }
}
