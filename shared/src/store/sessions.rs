//! Sign-in sessions: one item per session, holding the hash of the current refresh token.

use aws_sdk_dynamodb::types::ReturnValue;
use serde::{Deserialize, Serialize};

use super::{is_condition_failure, item_with_key, key, keys, n, s, Store};
use crate::error::ApiError;

/// A session as stored under `SESSION#<id>` / `SESSION`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRecord {
    pub id: String,
    pub user_id: String,
    /// Bumped by every refresh; a token of an older generation is a reused one.
    pub generation: u64,
    pub token_hash: String,
    pub created_at: String,
    /// TTL: epoch seconds when the current refresh token stops working.
    pub expires_at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_reason: Option<String>,
}

impl Store {
    pub async fn put_session(&self, session: &SessionRecord) -> Result<(), ApiError> {
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item_with_key(keys::session(&session.id), keys::SESSION, session)?))
            .condition_expression("attribute_not_exists(PK)")
            .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
            .send()
            .await?;
        self.usage.record(true, out.consumed_capacity());
        Ok(())
    }

    pub async fn get_session(&self, session_id: &str) -> Result<Option<SessionRecord>, ApiError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::session(session_id), keys::SESSION)))
            .consistent_read(true)
            .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
            .send()
            .await?;
        self.usage.record(false, out.consumed_capacity());
        Ok(out.item.map(serde_dynamo::from_item).transpose()?)
    }

    /// Moves the session from `(generation, old_hash)` to `(generation + 1, new_hash)`, only if it is
    /// still at that generation and not revoked. `Ok(false)`: somebody rotated or revoked it first.
    pub async fn rotate_session(
        &self,
        session: &SessionRecord,
        new_hash: &str,
        new_expires_at: u64,
    ) -> Result<bool, ApiError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::session(&session.id), keys::SESSION)))
            .update_expression("SET generation = :next, tokenHash = :newHash, expiresAt = :expiresAt")
            .condition_expression("generation = :current AND tokenHash = :oldHash AND attribute_not_exists(revokedAt)")
            .expression_attribute_values(":next", n(session.generation + 1))
            .expression_attribute_values(":current", n(session.generation))
            .expression_attribute_values(":newHash", s(new_hash))
            .expression_attribute_values(":oldHash", s(&session.token_hash))
            .expression_attribute_values(":expiresAt", n(new_expires_at))
            .return_values(ReturnValue::None)
            .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
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

    /// Marks the session revoked (idempotent; the first reason is kept).
    pub async fn revoke_session(&self, session_id: &str, reason: &str, at: &str) -> Result<(), ApiError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::session(session_id), keys::SESSION)))
            .update_expression("SET revokedAt = :at, revokedReason = :reason")
            .condition_expression("attribute_exists(PK) AND attribute_not_exists(revokedAt)")
            .expression_attribute_values(":at", s(at))
            .expression_attribute_values(":reason", s(reason))
            .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
            .send()
            .await;
        if let Ok(out) = &result {
            self.usage.record(true, out.consumed_capacity());
        }
        match result {
            Ok(_) => Ok(()),
            Err(err) if is_condition_failure(&err) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }
}
