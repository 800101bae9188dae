//! Messages: the idempotent send transaction, history pages, edits and deletes.

use aws_sdk_dynamodb::types::{ReturnConsumedCapacity, TransactWriteItem, Update};
use serde::Deserialize;

use super::conversations::{direct_activity_key, ConversationRecord, MessageRecord};
use super::{is_condition_failure, item_with_key, key, keys, n, records, s, Store, WriteConflict};
use crate::error::ApiError;

/// Why a send did not store the message.
#[derive(Debug)]
pub enum SendError {
    /// The sender already sent this `clientMessageId` here.
    Duplicate,
    /// Another message took the next `seq` first: read the conversation again and retry.
    Raced,
    /// The sender is no longer a member.
    NotMember,
    Store(ApiError),
}

/// Which way a history page runs from its bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryBound {
    Newest,
    Before(String),
    After(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClientClaim {
    message_id: String,
}

impl Store {
    /// Stores `message` as the conversation's next (`conversation.last_seq + 1`), in one transaction with
    /// its `clientMessageId` claim, the conversation's last message and activity, the sender's read
    /// marker, and (direct conversations only) both members' activity keys. A constant number of writes,
    /// whatever the conversation's size.
    pub async fn put_message(
        &self,
        conversation: &ConversationRecord,
        message: &MessageRecord,
        direct_members: &[String],
    ) -> Result<(), SendError> {
        let build = || -> Result<Vec<TransactWriteItem>, ApiError> {
            let pk = keys::conversation(&conversation.id);
            let meta = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(pk.clone(), keys::META)))
                .update_expression("SET lastSeq = :seq, lastMessage = :message, activity = :activity, updatedAt = :now")
                .condition_expression("lastSeq = :previous")
                .expression_attribute_values(":seq", n(message.seq))
                .expression_attribute_values(":previous", n(conversation.last_seq))
                .expression_attribute_values(":message", serde_dynamo::to_attribute_value(message)?)
                .expression_attribute_values(":activity", s(&message.id))
                .expression_attribute_values(":now", s(&message.created_at))
                .build()
                .map_err(ApiError::internal)?;
            let claim = serde_json::json!({ "messageId": message.id });
            let mut writes = vec![
                TransactWriteItem::builder().update(meta).build(),
                self.put_item(
                    item_with_key(pk.clone(), &keys::message(&message.id), message)?,
                    Some("attribute_not_exists(PK)"),
                )?,
                self.put_item(
                    item_with_key(
                        pk.clone(),
                        &keys::client_message(&message.sender_id, &message.client_message_id),
                        &claim,
                    )?,
                    Some("attribute_not_exists(PK)"),
                )?,
            ];
            let activity = direct_activity_key(&message.id, &conversation.id);
            let mut sender = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(pk.clone(), keys::member(&message.sender_id))))
                .condition_expression("attribute_exists(PK)")
                .expression_attribute_values(":seq", n(message.seq))
                .expression_attribute_values(":id", s(&message.id));
            if direct_members.is_empty() {
                sender = sender.update_expression("SET readSeq = :seq, lastReadMessageId = :id");
            } else {
                sender = sender
                    .update_expression("SET readSeq = :seq, lastReadMessageId = :id, GSI1SK = :activity")
                    .expression_attribute_values(":activity", s(&activity));
            }
            writes.push(
                TransactWriteItem::builder()
                    .update(sender.build().map_err(ApiError::internal)?)
                    .build(),
            );
            for other in direct_members.iter().filter(|m| **m != message.sender_id) {
                let update = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(pk.clone(), keys::member(other))))
                    .update_expression("SET GSI1SK = :activity")
                    .condition_expression("attribute_exists(PK)")
                    .expression_attribute_values(":activity", s(&activity))
                    .build()
                    .map_err(ApiError::internal)?;
                writes.push(TransactWriteItem::builder().update(update).build());
            }
            Ok(writes)
        };
        let writes = build().map_err(SendError::Store)?;
        match self.transact(writes).await {
            Ok(()) => Ok(()),
            Err(WriteConflict::Conditions(failed)) if failed.contains(&2) => Err(SendError::Duplicate),
            Err(WriteConflict::Conditions(failed)) if failed.contains(&3) => Err(SendError::NotMember),
            Err(WriteConflict::Conditions(_)) => Err(SendError::Raced),
            Err(WriteConflict::Other(ApiError::Unavailable { .. })) => Err(SendError::Raced),
            Err(WriteConflict::Other(e)) => Err(SendError::Store(e)),
        }
    }

    /// The message an earlier send with this `clientMessageId` stored.
    pub async fn message_by_client_id(
        &self,
        conversation_id: &str,
        sender_id: &str,
        client_message_id: &str,
    ) -> Result<Option<MessageRecord>, ApiError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::conversation(conversation_id),
                keys::client_message(sender_id, client_message_id),
            )))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await?;
        self.usage.record(false, out.consumed_capacity());
        let Some(claim) = out.item.map(serde_dynamo::from_item::<_, ClientClaim>).transpose()? else {
            return Ok(None);
        };
        self.get_message(conversation_id, &claim.message_id).await
    }

    pub async fn get_message(
        &self,
        conversation_id: &str,
        message_id: &str,
    ) -> Result<Option<MessageRecord>, ApiError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::conversation(conversation_id),
                keys::message(message_id),
            )))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await?;
        self.usage.record(false, out.consumed_capacity());
        Ok(out.item.map(serde_dynamo::from_item).transpose()?)
    }

    /// Up to `limit` messages from `bound`: newest first, except `After`, which runs oldest first.
    /// `true` when more may follow.
    pub async fn messages_page(
        &self,
        conversation_id: &str,
        bound: &HistoryBound,
        limit: usize,
    ) -> Result<(Vec<MessageRecord>, bool), ApiError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .expression_attribute_values(":pk", s(keys::conversation(conversation_id)))
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        // BETWEEN is inclusive: one extra item, and the bound itself is dropped below.
        let (exclude, fetch) = match bound {
            HistoryBound::Newest => {
                query = query
                    .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
                    .expression_attribute_values(":prefix", s(keys::MESSAGE_PREFIX))
                    .scan_index_forward(false);
                (None, limit)
            }
            HistoryBound::Before(id) => {
                query = query
                    .key_condition_expression("PK = :pk AND SK BETWEEN :low AND :high")
                    .expression_attribute_values(":low", s(keys::MESSAGE_PREFIX))
                    .expression_attribute_values(":high", s(keys::message(id)))
                    .scan_index_forward(false);
                (Some(id), limit + 1)
            }
            HistoryBound::After(id) => {
                query = query
                    .key_condition_expression("PK = :pk AND SK BETWEEN :low AND :high")
                    .expression_attribute_values(":low", s(keys::message(id)))
                    .expression_attribute_values(":high", s(format!("{}\u{ffff}", keys::MESSAGE_PREFIX)))
                    .scan_index_forward(true);
                (Some(id), limit + 1)
            }
        };
        let out = query.limit(fetch as i32).send().await?;
        self.usage.record(false, out.consumed_capacity());
        let more_in_table = out.last_evaluated_key.is_some();
        let mut messages: Vec<MessageRecord> = records(out.items.unwrap_or_default())?;
        if let Some(id) = exclude {
            messages.retain(|m| m.id != *id);
        }
        let more = more_in_table || messages.len() > limit;
        messages.truncate(limit);
        Ok((messages, more))
    }

    /// Replaces the body of the sender's own, undeleted message. `Ok(None)`: the conditions failed.
    pub async fn edit_message(
        &self,
        conversation_id: &str,
        message_id: &str,
        sender_id: &str,
        body: &str,
        now: &str,
    ) -> Result<Option<MessageRecord>, ApiError> {
        self.conditional_update(
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(
                    keys::conversation(conversation_id),
                    keys::message(message_id),
                )))
                .update_expression("SET body = :body, editedAt = :now")
                .condition_expression("attribute_exists(PK) AND senderId = :sender AND deleted = :false")
                .expression_attribute_values(":body", s(body))
                .expression_attribute_values(":now", s(now))
                .expression_attribute_values(":sender", s(sender_id))
                .expression_attribute_values(":false", aws_sdk_dynamodb::types::AttributeValue::Bool(false)),
        )
        .await
    }

    /// Marks the message deleted and drops its body; it keeps its id, time and place.
    pub async fn delete_message(
        &self,
        conversation_id: &str,
        message_id: &str,
    ) -> Result<Option<MessageRecord>, ApiError> {
        self.conditional_update(
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(
                    keys::conversation(conversation_id),
                    keys::message(message_id),
                )))
                .update_expression("SET deleted = :true, body = :empty")
                .condition_expression("attribute_exists(PK)")
                .expression_attribute_values(":true", aws_sdk_dynamodb::types::AttributeValue::Bool(true))
                .expression_attribute_values(":empty", s("")),
        )
        .await
    }

    /// Keeps the conversation's `lastMessage` in step with an edit or delete of that same message.
    pub async fn refresh_last_message(&self, message: &MessageRecord) -> Result<(), ApiError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::conversation(&message.conversation_id), keys::META)))
            .update_expression("SET lastMessage = :message")
            .condition_expression("lastMessage.id = :id")
            .expression_attribute_values(":message", serde_dynamo::to_attribute_value(message)?)
            .expression_attribute_values(":id", s(&message.id))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match result {
            Ok(out) => {
                self.usage.record(true, out.consumed_capacity());
                Ok(())
            }
            Err(err) if is_condition_failure(&err) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }
}
