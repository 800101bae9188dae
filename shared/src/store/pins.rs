//! Pinned messages: `CONV#<id>` / `PIN#<messageId>` (who pinned it, when), counted on the META
//! (`pinCount`) in the same transaction, so a conversation never holds more than its limit however many
//! pins race.

use aws_sdk_dynamodb::types::{ConditionCheck, Delete, ReturnConsumedCapacity, TransactWriteItem, Update};
use serde::Deserialize;

use super::{item_with_key, key, keys, n, records, s, Store, WriteConflict};
use crate::error::ApiError;

/// One pin as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PinRecord {
    pub message_id: String,
    pub pinned_by: String,
    pub pinned_at: String,
}

/// What [`Store::pin`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pinned {
    Pinned,
    /// It was pinned already: nothing changed.
    Already,
    /// The conversation holds the most pins it may.
    Full,
    /// The message is not there, or is deleted.
    NoMessage,
}

impl Store {
    /// Pins a live message, if the conversation has fewer than `max` pins: one transaction of the pin
    /// (new), the META's `pinCount` (below `max`) and a check that the message exists undeleted.
    pub async fn pin(&self, conversation_id: &str, pin: &PinRecord, max: u64) -> Result<Pinned, ApiError> {
        let item = item_with_key(keys::conversation(conversation_id), &keys::pin(&pin.message_id), pin)?;
        let count = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(keys::conversation(conversation_id), keys::META)))
            .update_expression("ADD pinCount :one")
            .condition_expression("attribute_exists(PK) AND (attribute_not_exists(pinCount) OR pinCount < :max)")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":max", n(max))
            .build()
            .map_err(ApiError::internal)?;
        let live = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::conversation(conversation_id),
                keys::message(&pin.message_id),
            )))
            .condition_expression("attribute_exists(PK) AND deleted = :no")
            .expression_attribute_values(":no", aws_sdk_dynamodb::types::AttributeValue::Bool(false))
            .build()
            .map_err(ApiError::internal)?;
        let writes = vec![
            self.put_if_absent(item)?,
            TransactWriteItem::builder().update(count).build(),
            TransactWriteItem::builder().condition_check(live).build(),
        ];
        match self.transact(writes).await {
            Ok(()) => Ok(Pinned::Pinned),
            Err(WriteConflict::Conditions(failed)) if failed.contains(&0) => Ok(Pinned::Already),
            Err(WriteConflict::Conditions(failed)) if failed.contains(&2) => Ok(Pinned::NoMessage),
            Err(WriteConflict::Conditions(_)) => Ok(Pinned::Full),
            Err(WriteConflict::Other(e)) => Err(e),
        }
    }

    /// Unpins the message; `false` when it was not pinned.
    pub async fn unpin(&self, conversation_id: &str, message_id: &str) -> Result<bool, ApiError> {
        let pin = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(keys::conversation(conversation_id), keys::pin(message_id))))
            .condition_expression("attribute_exists(PK)")
            .build()
            .map_err(ApiError::internal)?;
        let count = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(keys::conversation(conversation_id), keys::META)))
            .update_expression("ADD pinCount :minus")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":minus", n(-1))
            .build()
            .map_err(ApiError::internal)?;
        self.transact_if(vec![
            TransactWriteItem::builder().delete(pin).build(),
            TransactWriteItem::builder().update(count).build(),
        ])
        .await
    }

    /// The conversation's pins (at most a page of 100; the limit is 50), one Query.
    pub async fn pins(&self, conversation_id: &str) -> Result<Vec<PinRecord>, ApiError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
            .expression_attribute_values(":pk", s(keys::conversation(conversation_id)))
            .expression_attribute_values(":prefix", s(keys::PIN_PREFIX))
            .consistent_read(true)
            .limit(100)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await?;
        self.usage.record(false, out.consumed_capacity());
        records(out.items.unwrap_or_default())
    }
}
