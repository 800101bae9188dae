//! A user's presence throttle (`domain::presence`): `USER#<userId>` / `PRESENCE` holds when the last
//! `presence` went out, or when the next one is due, and the version of the newest change. Every
//! change claims it with a write conditional on the version it read, so concurrent changes of one user
//! are ordered; a delayed `presence` is delivered only if its version is still the newest then.

use serde::Deserialize;

use super::{key, keys, n, Store};
use crate::error::ApiError;

/// How long the item outlives its last change: longer than any window it governs.
const PRESENCE_ITEM_SECS: u64 = 24 * 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PresenceState {
    /// Epoch ms: when the last `presence` went out, or, when later than now, when the next is due.
    pub sent_at: u64,
    /// The newest change's version (1, 2, 3, ...).
    pub version: u64,
}

impl Store {
    /// The user's presence throttle, if any (one strongly consistent GetItem).
    pub async fn presence_state(&self, user_id: &str) -> Result<Option<PresenceState>, ApiError> {
        self.get_record(keys::user(user_id), keys::PRESENCE.to_owned()).await
    }

    /// Moves the throttle from `read` (what the caller saw) to `next`; `false` when another change
    /// moved it first (read again and retry).
    pub async fn claim_presence(
        &self,
        user_id: &str,
        read: Option<PresenceState>,
        next: PresenceState,
    ) -> Result<bool, ApiError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::user(user_id), keys::PRESENCE)))
            .update_expression("SET sentAt = :at, version = :version, expiresAt = :expires")
            .expression_attribute_values(":at", n(next.sent_at))
            .expression_attribute_values(":version", n(next.version))
            .expression_attribute_values(":expires", n(next.sent_at / 1000 + PRESENCE_ITEM_SECS));
        let update = match read {
            None => update.condition_expression("attribute_not_exists(version)"),
            Some(state) => update
                .condition_expression("version = :read")
                .expression_attribute_values(":read", n(state.version)),
        };
        self.update_if(update).await
    }
}
