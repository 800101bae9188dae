//! Mutes: a member item's `mutedUntil` (epoch ms), set and removed by `domain::mutes`.

use super::{key, keys, n, Store};
use crate::error::ApiError;

impl Store {
    /// Mutes the member until `until_ms`; `false` when they are no longer a member.
    pub async fn mute(&self, conversation_id: &str, user_id: &str, until_ms: u64) -> Result<bool, ApiError> {
        self.update_if(
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(keys::conversation(conversation_id), keys::member(user_id))))
                .update_expression("SET mutedUntil = :until")
                .condition_expression("attribute_exists(PK)")
                .expression_attribute_values(":until", n(until_ms)),
        )
        .await
    }

    /// Lifts the member's mute; `false` when they were not muted (or are no longer a member).
    pub async fn unmute(&self, conversation_id: &str, user_id: &str) -> Result<bool, ApiError> {
        self.update_if(
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(keys::conversation(conversation_id), keys::member(user_id))))
                .update_expression("REMOVE mutedUntil")
                .condition_expression("attribute_exists(mutedUntil)"),
        )
        .await
    }
}
