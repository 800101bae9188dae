//! Conversations, their members, and the direct-pair claims.
//!
//! How the conversation list stays ordered by activity without one write per member per message:
//! - a direct conversation never changes members, so its two member items carry the activity key in
//!   GSI1 (`USER#<id>` / `<activity>#<conversationId>`); a message updates those two items: constant;
//! - a group keeps its activity on its META item only (one write per message whatever its size); its
//!   member items sit in GSI1 under `USERGROUPS#<id>`, and a list page merges the user's groups in by
//!   reading their METAs in batches.
//!
//! A page therefore reads `limit` direct memberships plus the user's group memberships and METAs: it is
//! bounded by the page size and the number of groups the user is in, and never by message traffic or
//! group sizes.

use aws_sdk_dynamodb::types::{ConsumedCapacity, Delete, Put, ReturnConsumedCapacity, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};

use super::{classify_transaction_error, item_with_key, key, keys, n, records, s, Item, Store, WriteConflict};
use crate::error::ApiError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageRecord {
    pub id: String,
    pub conversation_id: String,
    pub sender_id: String,
    pub client_message_id: String,
    pub body: String,
    pub encrypted: bool,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<String>,
    pub deleted: bool,
    /// Position in the conversation, 1-based: what unread counts subtract.
    pub seq: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationRecord {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
    pub member_count: u64,
    /// Bumped by every membership change: the key of per-container member caches.
    pub members_version: u64,
    /// The `seq` of the newest message (0: none yet).
    pub last_seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_message: Option<MessageRecord>,
    /// A ULID that grows with activity: the newest message's id, or the conversation's own id.
    pub activity: String,
    /// The two members of a direct conversation (which never change), so a send needs no extra read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub direct_members: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberRecord {
    pub conversation_id: String,
    pub user_id: String,
    pub role: String,
    pub joined_at: String,
    /// The `seq` of the newest message this member has read.
    #[serde(default)]
    pub read_seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_read_message_id: Option<String>,
    #[serde(rename = "GSI1PK")]
    pub gsi1_pk: String,
    #[serde(rename = "GSI1SK")]
    pub gsi1_sk: String,
}

impl MemberRecord {
    pub fn new(conversation: &ConversationRecord, user_id: &str, role: &str, joined_at: &str) -> Self {
        let (gsi1_pk, gsi1_sk) = if conversation.kind == "direct" {
            (
                keys::user_directs(user_id),
                direct_activity_key(&conversation.activity, &conversation.id),
            )
        } else {
            (keys::user_groups(user_id), keys::conversation(&conversation.id))
        };
        MemberRecord {
            conversation_id: conversation.id.clone(),
            user_id: user_id.to_owned(),
            role: role.to_owned(),
            joined_at: joined_at.to_owned(),
            read_seq: 0,
            last_read_message_id: None,
            gsi1_pk,
            gsi1_sk,
        }
    }
}

pub fn direct_activity_key(activity: &str, conversation_id: &str) -> String {
    format!("{activity}#{conversation_id}")
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PairClaim {
    conversation_id: String,
}

#[derive(Debug)]
pub enum CreateConversationError {
    /// The direct pair already has a conversation.
    DirectExists,
    Store(ApiError),
}

/// DynamoDB's TransactWriteItems limit.
const TRANSACTION_MAX: usize = 100;

impl Store {
    pub(crate) fn put_item(&self, item: Item, condition: Option<&str>) -> Result<TransactWriteItem, ApiError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_owned))
            .build()
            .map_err(ApiError::internal)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    pub(crate) async fn transact(&self, writes: Vec<TransactWriteItem>) -> Result<(), WriteConflict> {
        self.transact_with_token(writes, None).await
    }

    /// A transaction, retried on conflicts, throttling and 5xx inside the retry budget. With `token`
    /// (a `ClientRequestToken`), DynamoDB treats a retry of an attempt that was applied but whose answer
    /// was lost as the same request.
    pub(crate) async fn transact_with_token(
        &self,
        writes: Vec<TransactWriteItem>,
        token: Option<&str>,
    ) -> Result<(), WriteConflict> {
        let outcome = self
            .retrying(|| async {
                let result = self
                    .client
                    .transact_write_items()
                    .set_transact_items(Some(writes.clone()))
                    .set_client_request_token(token.map(str::to_owned))
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
                    .await;
                match result {
                    Ok(out) => {
                        self.usage.record(true, out.consumed_capacity());
                        Ok(Ok(()))
                    }
                    Err(err) => {
                        self.usage.record(true, None::<&ConsumedCapacity>);
                        match classify_transaction_error(err) {
                            WriteConflict::Conditions(failed) => Ok(Err(failed)),
                            WriteConflict::Other(e) => Err(e),
                        }
                    }
                }
            })
            .await;
        match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(failed)) => Err(WriteConflict::Conditions(failed)),
            Err(e) => Err(WriteConflict::Other(e)),
        }
    }

    /// The META, the pair claim and both member items, all or nothing.
    pub async fn create_direct(
        &self,
        conversation: &ConversationRecord,
        members: &[MemberRecord; 2],
    ) -> Result<(), CreateConversationError> {
        let claim = serde_json::json!({ "conversationId": conversation.id });
        let items = (|| -> Result<Vec<TransactWriteItem>, ApiError> {
            let pair = keys::direct_pair(&members[0].user_id, &members[1].user_id);
            Ok(vec![
                self.put_item(
                    item_with_key(pair, keys::CLAIM, &claim)?,
                    Some("attribute_not_exists(PK)"),
                )?,
                self.put_item(
                    item_with_key(keys::conversation(&conversation.id), keys::META, conversation)?,
                    Some("attribute_not_exists(PK)"),
                )?,
                self.put_item(
                    item_with_key(
                        keys::conversation(&conversation.id),
                        &keys::member(&members[0].user_id),
                        &members[0],
                    )?,
                    None,
                )?,
                self.put_item(
                    item_with_key(
                        keys::conversation(&conversation.id),
                        &keys::member(&members[1].user_id),
                        &members[1],
                    )?,
                    None,
                )?,
            ])
        })()
        .map_err(CreateConversationError::Store)?;
        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err(WriteConflict::Conditions(failed)) if failed.contains(&0) => Err(CreateConversationError::DirectExists),
            Err(WriteConflict::Conditions(_)) => Err(CreateConversationError::Store(ApiError::internal(
                "conversation id collision",
            ))),
            Err(WriteConflict::Other(e)) => Err(CreateConversationError::Store(e)),
        }
    }

    pub async fn direct_conversation_id(&self, a: &str, b: &str) -> Result<Option<String>, ApiError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::direct_pair(a, b), keys::CLAIM)))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await?;
        self.usage.record(false, out.consumed_capacity());
        Ok(out
            .item
            .map(serde_dynamo::from_item::<_, PairClaim>)
            .transpose()?
            .map(|c| c.conversation_id))
    }

    /// The META and the member items; groups over 99 members take several transactions, the META last,
    /// and what was written is removed again if one fails.
    pub async fn create_group(
        &self,
        conversation: &ConversationRecord,
        members: &[MemberRecord],
    ) -> Result<(), ApiError> {
        let pk = keys::conversation(&conversation.id);
        let mut member_items = Vec::with_capacity(members.len());
        for member in members {
            member_items.push(self.put_item(item_with_key(pk.clone(), &keys::member(&member.user_id), member)?, None)?);
        }
        let meta = self.put_item(
            item_with_key(pk.clone(), keys::META, conversation)?,
            Some("attribute_not_exists(PK)"),
        )?;
        let mut chunks: Vec<Vec<TransactWriteItem>> = Vec::new();
        let last_room = TRANSACTION_MAX - 1;
        let split = member_items.len().saturating_sub(last_room);
        let (early, last) = member_items.split_at(split);
        for chunk in early.chunks(TRANSACTION_MAX) {
            chunks.push(chunk.to_vec());
        }
        let mut final_chunk = last.to_vec();
        final_chunk.push(meta);
        chunks.push(final_chunk);
        let mut written = 0;
        for chunk in chunks {
            let size = chunk.len();
            if let Err(conflict) = self.transact(chunk).await {
                for member in &members[..written.min(members.len())] {
                    let _ = self
                        .client
                        .delete_item()
                        .table_name(&self.table)
                        .set_key(Some(key(pk.clone(), keys::member(&member.user_id))))
                        .send()
                        .await;
                }
                return Err(match conflict {
                    WriteConflict::Other(e) => e,
                    WriteConflict::Conditions(_) => ApiError::internal("conversation id collision"),
                });
            }
            written += size;
        }
        Ok(())
    }

    pub async fn get_conversation(&self, conversation_id: &str) -> Result<Option<ConversationRecord>, ApiError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::conversation(conversation_id), keys::META)))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await?;
        self.usage.record(false, out.consumed_capacity());
        Ok(out.item.map(serde_dynamo::from_item).transpose()?)
    }

    /// The conversation and the caller's member item, in one strongly consistent batch read.
    pub async fn conversation_with_member(
        &self,
        conversation_id: &str,
        user_id: &str,
    ) -> Result<(Option<ConversationRecord>, Option<MemberRecord>), ApiError> {
        let pk = keys::conversation(conversation_id);
        let items = self
            .batch_get(vec![key(pk.clone(), keys::META), key(pk, keys::member(user_id))], true)
            .await?;
        let mut conversation = None;
        let mut member = None;
        for item in items {
            match item.get("SK").and_then(|v| v.as_s().ok()).map(String::as_str) {
                Some(keys::META) => conversation = Some(serde_dynamo::from_item(item)?),
                Some(_) => member = Some(serde_dynamo::from_item(item)?),
                None => {}
            }
        }
        Ok((conversation, member))
    }

    pub async fn batch_get_conversations(&self, ids: &[String]) -> Result<Vec<ConversationRecord>, ApiError> {
        let keys_wanted = ids.iter().map(|id| key(keys::conversation(id), keys::META)).collect();
        records(self.batch_get(keys_wanted, false).await?)
    }

    /// A page of the user's direct conversations, most recent activity first, after `before` (an
    /// activity key). `true` when more may follow.
    pub async fn direct_memberships(
        &self,
        user_id: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<MemberRecord>, bool), ApiError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("GSI1")
            .scan_index_forward(false)
            .limit(limit as i32)
            .expression_attribute_values(":pk", s(keys::user_directs(user_id)))
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        query = match before {
            Some(before) => query
                .key_condition_expression("GSI1PK = :pk AND GSI1SK < :before")
                .expression_attribute_values(":before", s(before)),
            None => query.key_condition_expression("GSI1PK = :pk"),
        };
        let out = query.send().await?;
        self.usage.record(false, out.consumed_capacity());
        let more = out.last_evaluated_key.is_some();
        Ok((records(out.items.unwrap_or_default())?, more))
    }

    /// All of the user's group memberships.
    pub async fn group_memberships(&self, user_id: &str) -> Result<Vec<MemberRecord>, ApiError> {
        let mut members = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name("GSI1")
                .key_condition_expression("GSI1PK = :pk")
                .expression_attribute_values(":pk", s(keys::user_groups(user_id)))
                .set_exclusive_start_key(start)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await?;
            self.usage.record(false, out.consumed_capacity());
            for item in out.items.unwrap_or_default() {
                members.push(serde_dynamo::from_item(item)?);
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(members);
            }
        }
    }

    /// A page of a conversation's members in user-id order, after `after`.
    pub async fn members_page(
        &self,
        conversation_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<MemberRecord>, bool), ApiError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .limit(limit as i32)
            .expression_attribute_values(":pk", s(keys::conversation(conversation_id)))
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        query = match after {
            Some(after) => query
                .key_condition_expression("PK = :pk AND SK BETWEEN :from AND :to")
                .expression_attribute_values(":from", s(format!("{}\u{0}", keys::member(after))))
                .expression_attribute_values(":to", s(format!("{}\u{ffff}", keys::MEMBER_PREFIX))),
            None => query
                .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
                .expression_attribute_values(":prefix", s(keys::MEMBER_PREFIX)),
        };
        let out = query.send().await?;
        self.usage.record(false, out.consumed_capacity());
        let more = out.last_evaluated_key.is_some();
        Ok((records(out.items.unwrap_or_default())?, more))
    }

    /// The member items of these users in one conversation (those that exist).
    pub async fn members_of(&self, conversation_id: &str, user_ids: &[String]) -> Result<Vec<MemberRecord>, ApiError> {
        let pk = keys::conversation(conversation_id);
        let keys_wanted = user_ids.iter().map(|u| key(pk.clone(), keys::member(u))).collect();
        records(self.batch_get(keys_wanted, true).await?)
    }

    pub async fn rename_conversation(
        &self,
        conversation_id: &str,
        name: &str,
        now: &str,
    ) -> Result<Option<ConversationRecord>, ApiError> {
        self.conditional_update(
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(keys::conversation(conversation_id), keys::META)))
                .update_expression("SET #name = :name, updatedAt = :now")
                .condition_expression("attribute_exists(PK)")
                .expression_attribute_names("#name", "name")
                .expression_attribute_values(":name", s(name))
                .expression_attribute_values(":now", s(now)),
        )
        .await
    }

    /// Adds members (none of them members yet) and bumps the count and version, refusing to pass
    /// `max_members`. `Ok(false)`: the limit would be passed.
    pub async fn add_members(
        &self,
        conversation_id: &str,
        members: &[MemberRecord],
        max_members: u64,
        now: &str,
    ) -> Result<bool, ApiError> {
        let pk = keys::conversation(conversation_id);
        let added = members.len() as u64;
        let meta = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk.clone(), keys::META)))
            .update_expression(
                "SET memberCount = memberCount + :added, membersVersion = membersVersion + :one, updatedAt = :now",
            )
            .condition_expression("attribute_exists(PK) AND memberCount <= :room")
            .expression_attribute_values(":added", n(added))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", s(now))
            .expression_attribute_values(":room", n(max_members.saturating_sub(added)))
            .build()
            .map_err(ApiError::internal)?;
        let mut writes = vec![TransactWriteItem::builder().update(meta).build()];
        for member in members {
            writes.push(self.put_item(
                item_with_key(pk.clone(), &keys::member(&member.user_id), member)?,
                Some("attribute_not_exists(PK)"),
            )?);
        }
        let mut chunks = writes.chunks(TRANSACTION_MAX).map(<[_]>::to_vec);
        // The META update and the first members go together; a later chunk failing leaves the count
        // ahead of the members actually written, which the next change corrects by recounting.
        if let Some(first) = chunks.next() {
            match self.transact(first).await {
                Ok(()) => {}
                Err(WriteConflict::Conditions(failed)) if failed.contains(&0) => return Ok(false),
                Err(WriteConflict::Conditions(_)) => {
                    return Err(ApiError::Conflict(
                        "The members changed meanwhile; please retry.".to_owned(),
                    ))
                }
                Err(WriteConflict::Other(e)) => return Err(e),
            }
        }
        for chunk in chunks {
            self.transact(chunk).await.map_err(|c| match c {
                WriteConflict::Other(e) => e,
                WriteConflict::Conditions(_) => {
                    ApiError::Conflict("The members changed meanwhile; please retry.".to_owned())
                }
            })?;
        }
        Ok(true)
    }

    /// Removes one member and bumps the count and version. `Ok(false)`: not a member.
    pub async fn remove_member(&self, conversation_id: &str, user_id: &str, now: &str) -> Result<bool, ApiError> {
        let pk = keys::conversation(conversation_id);
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk.clone(), keys::member(user_id))))
            .condition_expression("attribute_exists(PK)")
            .build()
            .map_err(ApiError::internal)?;
        let meta = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk, keys::META)))
            .update_expression(
                "SET memberCount = memberCount - :one, membersVersion = membersVersion + :one, updatedAt = :now",
            )
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", s(now))
            .build()
            .map_err(ApiError::internal)?;
        match self
            .transact(vec![
                TransactWriteItem::builder().delete(delete).build(),
                TransactWriteItem::builder().update(meta).build(),
            ])
            .await
        {
            Ok(()) => Ok(true),
            Err(WriteConflict::Conditions(_)) => Ok(false),
            Err(WriteConflict::Other(e)) => Err(e),
        }
    }

    /// Moves the member's read marker forward to `seq`; a marker already there or further stays.
    pub async fn advance_read_marker(
        &self,
        conversation_id: &str,
        user_id: &str,
        seq: u64,
        message_id: &str,
    ) -> Result<bool, ApiError> {
        self.update_if(
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(keys::conversation(conversation_id), keys::member(user_id))))
                .update_expression("SET readSeq = :seq, lastReadMessageId = :id")
                .condition_expression("attribute_exists(PK) AND (attribute_not_exists(readSeq) OR readSeq < :seq)")
                .expression_attribute_values(":seq", n(seq))
                .expression_attribute_values(":id", s(message_id)),
        )
        .await
    }
}
