//! Open WebSocket connections: one item per connection (with an expiry past API Gateway's 2 hour limit,
//! so a connection whose `$disconnect` never came still goes), and per user one string set of
//! connection ids, which fan-out reads 100 users at a time.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity, ReturnValue};
use serde::{Deserialize, Serialize};

use super::{key, keys, s, Store};
use crate::error::ApiError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionRecord {
    pub connection_id: String,
    pub user_id: String,
    pub connected_at: String,
    /// TTL, epoch seconds.
    pub expires_at: u64,
}

impl Store {
    /// Records the connection and adds it to its user's set.
    pub async fn put_connection(&self, connection: &ConnectionRecord) -> Result<(), ApiError> {
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(super::item_with_key(
                keys::connection(&connection.connection_id),
                keys::CONN,
                connection,
            )?))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await?;
        self.usage.record(true, out.consumed_capacity());
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::user(&connection.user_id), keys::CONNS)))
            .update_expression("ADD connectionIds :id")
            .expression_attribute_values(":id", AttributeValue::Ss(vec![connection.connection_id.clone()]))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await?;
        self.usage.record(true, out.consumed_capacity());
        Ok(())
    }

    /// Forgets a connection; returns the user it belonged to, if it was known.
    pub async fn delete_connection(&self, connection_id: &str) -> Result<Option<String>, ApiError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::connection(connection_id), keys::CONN)))
            .return_values(ReturnValue::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await?;
        self.usage.record(true, out.consumed_capacity());
        let Some(old) = out.attributes else { return Ok(None) };
        let record: ConnectionRecord = serde_dynamo::from_item(old)?;
        self.remove_from_user_set(&record.user_id, connection_id).await?;
        Ok(Some(record.user_id))
    }

    /// Removes a connection API Gateway says is gone, knowing its user.
    pub async fn remove_connection(&self, user_id: &str, connection_id: &str) -> Result<(), ApiError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::connection(connection_id), keys::CONN)))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await?;
        self.usage.record(true, out.consumed_capacity());
        self.remove_from_user_set(user_id, connection_id).await
    }

    async fn remove_from_user_set(&self, user_id: &str, connection_id: &str) -> Result<(), ApiError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::user(user_id), keys::CONNS)))
            .update_expression("DELETE connectionIds :id")
            .expression_attribute_values(":id", AttributeValue::Ss(vec![connection_id.to_owned()]))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await?;
        self.usage.record(true, out.consumed_capacity());
        Ok(())
    }

    /// The open connection ids of each user (users without any are left out), 100 users a call.
    pub async fn connection_sets(&self, user_ids: &[String]) -> Result<HashMap<String, Vec<String>>, ApiError> {
        let keys_wanted = user_ids.iter().map(|u| key(keys::user(u), keys::CONNS)).collect();
        let mut sets = HashMap::new();
        for item in self.batch_get(keys_wanted, false).await? {
            let user = item
                .get("PK")
                .and_then(|v| v.as_s().ok())
                .and_then(|pk| pk.strip_prefix("USER#"))
                .map(str::to_owned);
            let ids = item
                .get("connectionIds")
                .and_then(|v| v.as_ss().ok())
                .cloned()
                .unwrap_or_default();
            if let (Some(user), false) = (user, ids.is_empty()) {
                sets.insert(user, ids);
            }
        }
        Ok(sets)
    }

    /// Every member's user id, for the fan-out's member cache.
    pub async fn member_ids(&self, conversation_id: &str) -> Result<Vec<String>, ApiError> {
        let mut ids = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
                .expression_attribute_values(":pk", s(keys::conversation(conversation_id)))
                .expression_attribute_values(":prefix", s(keys::MEMBER_PREFIX))
                .projection_expression("userId")
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await?;
            self.usage.record(false, out.consumed_capacity());
            for item in out.items.unwrap_or_default() {
                if let Some(id) = item.get("userId").and_then(|v| v.as_s().ok()) {
                    ids.push(id.clone());
                }
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(ids);
            }
        }
    }
}
