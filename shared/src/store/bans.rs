//! Bans: `CONV#<id>` / `BAN#<userId>` (who banned them, why, when), read before anyone is added to
//! the group (`domain::bans`).

use aws_sdk_dynamodb::types::ReturnConsumedCapacity;
use serde::{Deserialize, Serialize};

use super::{item_with_key, key, keys, records, Store};
use crate::error::ApiError;

/// One ban as stored, and as `GET .../bans` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BanRecord {
    pub user_id: String,
    pub banned_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub created_at: String,
}

impl Store {
    /// Records the ban unless one is there (a repeat keeps the first); `false` when it was there.
    pub async fn put_ban(&self, conversation_id: &str, ban: &BanRecord) -> Result<bool, ApiError> {
        let item = item_with_key(keys::conversation(conversation_id), &keys::ban(&ban.user_id), ban)?;
        self.put_if(
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(PK)"),
        )
        .await
    }

    pub async fn delete_ban(&self, conversation_id: &str, user_id: &str) -> Result<(), ApiError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::conversation(conversation_id), keys::ban(user_id))))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await?;
        self.usage.record(true, out.consumed_capacity());
        Ok(())
    }

    /// The bans among `user_ids` (one BatchGetItem per 100, strongly consistent).
    pub async fn bans_of(&self, conversation_id: &str, user_ids: &[String]) -> Result<Vec<BanRecord>, ApiError> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        let wanted = user_ids
            .iter()
            .map(|id| key(keys::conversation(conversation_id), keys::ban(id)))
            .collect();
        records(self.batch_get(wanted, true).await?)
    }

    /// Every ban of the conversation, in user-id order (one Query a page of 1 MB).
    pub async fn bans(&self, conversation_id: &str) -> Result<Vec<BanRecord>, ApiError> {
        let mut all = Vec::new();
        self.query_prefix(
            keys::conversation(conversation_id),
            keys::BAN_PREFIX,
            false,
            None,
            |items| {
                all.extend(records::<BanRecord>(items)?);
                Ok(true)
            },
        )
        .await?;
        Ok(all)
    }
}
