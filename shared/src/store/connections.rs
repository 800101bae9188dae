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
    /// The sign-in session whose access token opened the connection: revoking the session closes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
}

impl Store {
    /// Records the connection and adds it to its user's set, unless the set already holds `max_per_user`
    /// ids: then the connection item is taken back and the answer is `false`. The cap is the set's own
    /// condition (`size(connectionIds) < :max`), so concurrent connects cannot overshoot it.
    pub async fn put_connection(&self, connection: &ConnectionRecord, max_per_user: usize) -> Result<bool, ApiError> {
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
        let added = self
            .update_if(
                self.client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(key(keys::user(&connection.user_id), keys::CONNS)))
                    .update_expression("ADD connectionIds :id")
                    .condition_expression(
                        "attribute_not_exists(connectionIds) OR size(connectionIds) < :max OR contains(connectionIds, :one)",
                    )
                    .expression_attribute_values(":id", AttributeValue::Ss(vec![connection.connection_id.clone()]))
                    .expression_attribute_values(":one", s(&connection.connection_id))
                    .expression_attribute_values(":max", super::n(max_per_user)),
            )
            .await?;
        if !added {
            let out = self
                .client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key(keys::connection(&connection.connection_id), keys::CONN)))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await?;
            self.usage.record(true, out.consumed_capacity());
        }
        Ok(added)
    }

    /// The user's connection set with each id's connection item (`None`: the set names an id whose item
    /// is gone, a leftover of a disconnect that did not finish): one GetItem and one BatchGetItem per
    /// 100 ids, both strongly consistent.
    pub async fn user_connections(&self, user_id: &str) -> Result<Vec<(String, Option<ConnectionRecord>)>, ApiError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::user(user_id), keys::CONNS)))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await?;
        self.usage.record(false, out.consumed_capacity());
        let ids: Vec<String> = out
            .item
            .and_then(|item| item.get("connectionIds").and_then(|v| v.as_ss().ok()).cloned())
            .unwrap_or_default();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let wanted = ids.iter().map(|id| key(keys::connection(id), keys::CONN)).collect();
        let mut found: HashMap<String, ConnectionRecord> =
            super::records::<ConnectionRecord>(self.batch_get(wanted, true).await?)?
                .into_iter()
                .map(|record| (record.connection_id.clone(), record))
                .collect();
        Ok(ids
            .into_iter()
            .map(|id| {
                let record = found.remove(&id);
                (id, record)
            })
            .collect())
    }

    /// The open connections of one session of `user_id` (from the user's set: no Scan).
    pub async fn session_connections(&self, user_id: &str, session_id: &str) -> Result<Vec<String>, ApiError> {
        Ok(self
            .user_connections(user_id)
            .await?
            .into_iter()
            .filter_map(|(id, record)| {
                record
                    .filter(|r| r.session_id.as_deref() == Some(session_id))
                    .map(|_| id)
            })
            .collect())
    }

    /// Takes an id out of its user's set (for a set entry whose connection item is already gone).
    pub async fn forget_connection_id(&self, user_id: &str, connection_id: &str) -> Result<(), ApiError> {
        self.remove_from_user_set(user_id, connection_id).await
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

    /// Removes a connection a post was answered 410 for, unless it was recorded at or after
    /// `connected_before`: API Gateway answers 410 for a connection whose `$connect` is still running,
    /// and its records are written by then; removing them would leave a socket that opens a moment
    /// later deaf to every event. A connection that really went in that window goes with its
    /// `$disconnect`, or with a later 410, or with its expiry. Returns whether it was removed.
    pub async fn remove_gone_connection(
        &self,
        user_id: &str,
        connection_id: &str,
        connected_before: &str,
    ) -> Result<bool, ApiError> {
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::connection(connection_id), keys::CONN)))
            .condition_expression("attribute_not_exists(connectedAt) OR connectedAt < :before")
            .expression_attribute_values(":before", s(connected_before))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match deleted {
            Ok(out) => self.usage.record(true, out.consumed_capacity()),
            Err(err) if super::is_condition_failure(&err) => return Ok(false),
            Err(err) => return Err(err.into()),
        }
        self.remove_from_user_set(user_id, connection_id).await?;
        Ok(true)
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
}
