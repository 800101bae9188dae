//! Conversations, their members, and the direct-pair claims.
//!
//! How the conversation list stays ordered by activity with a bounded number of reads per page:
//! every member item (direct or group) sits in GSI1 under `USER#<userId>` with
//! `<activity>#<conversationId>` as its sort key, so a page is one Query of `limit` member items plus
//! one BatchGetItem of their METAs, whatever the number of conversations the caller is in.
//!
//! Keeping those keys current without making a send cost grow with the group: the conversation worker,
//! fed by the table's stream (`domain::upkeep`), moves the META's `activity` and each sender's own key
//! (and, in a direct conversation, the other member's too) off the send's path; the other members of a
//! group get theirs at most once per [`crate::config::Config::listing_granularity_ms`] per conversation.
//!
//! Member adds of more than 99 users cannot be one transaction (DynamoDB's limit is 100 items). They
//! are written as *pending* members (`pendingAdd` = the add's id, listed in the META's `pendingAdds`
//! set) and made real by one META update that removes the id from the set and moves the count and the
//! members version: every reader judges a member item against the META it reads with it
//! ([`ConversationRecord::admits`]), so the new members appear everywhere at once or not at all.

use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, ConsumedCapacity, Delete, DeleteRequest, Put, ReturnConsumedCapacity,
    TransactWriteItem, Update, WriteRequest,
};
use serde::{Deserialize, Serialize};

use super::{
    classify_transaction_error, is_condition_failure, item_with_key, key, keys, n, records, s, Item, Store,
    WriteConflict,
};
use crate::error::ApiError;
use crate::kinds::{ConversationKind, MemberRole};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Bumped by every edit and the delete: which of two copies (the META's `lastMessage`) is newer.
    #[serde(default)]
    pub version: u64,
    /// A thread reply's parent (threads are one level deep).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_message_id: Option<String>,
    /// A parent's replies (moved in the reply's own transaction, so exact under concurrency).
    #[serde(default)]
    pub reply_count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reply_at: Option<String>,
    /// The members the message mentions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<String>,
    /// Count per reaction (always present, so a reaction is one `ADD reactions.#r`).
    #[serde(default)]
    pub reactions: std::collections::BTreeMap<String, u64>,
    /// A reply's place in its thread: GSI1 `THREAD#<parentId>` / its own id.
    #[serde(rename = "GSI1PK", default, skip_serializing_if = "Option::is_none")]
    pub thread_pk: Option<String>,
    #[serde(rename = "GSI1SK", default, skip_serializing_if = "Option::is_none")]
    pub thread_sk: Option<String>,
    /// Uploads attached at send (see `store::attachments`); dropped by the delete.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<super::AttachmentRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationRecord {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: ConversationKind,
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
    /// In a direct conversation, the members who blocked the other one (a string set, kept by
    /// `domain::blocks`): the one they blocked can no longer send here. In the META, which a send
    /// reads anyway, so the check costs nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocked_by: Vec<String>,
    /// The ids of member adds still being written (a string set): their members do not count yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_adds: Vec<String>,
    /// The activity last copied onto every member's list key by the conversation worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listed_activity: Option<String>,
    /// Until when (epoch milliseconds) every member's sync key already says "changed" (see
    /// `store::sync`): changes before then need no new key writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced_until: Option<u64>,
    /// When (epoch milliseconds) the conversation's own view last changed other than by its messages
    /// (a rename, a member joining or leaving): a sync answers a conversation whose key it finds only
    /// if this or one of its messages changed since the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view_changed_at: Option<u64>,
    /// Slow mode (`domain::slow_mode`): a plain member's sends at least this far apart (0: off).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub slow_mode_seconds: u64,
    /// Pinned messages (`store::pins`), so a delete need not try to unpin when there are none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pin_count: u64,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

impl ConversationRecord {
    /// Whether `member` is a member as of this META: not part of an add that is still being written.
    pub fn admits(&self, member: &MemberRecord) -> bool {
        member
            .pending_add
            .as_ref()
            .is_none_or(|add| !self.pending_adds.contains(add))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberRecord {
    pub conversation_id: String,
    pub user_id: String,
    pub role: MemberRole,
    pub joined_at: String,
    /// The `seq` of the newest message this member has read.
    #[serde(default)]
    pub read_seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_read_message_id: Option<String>,
    /// The `seq`s of messages that mention this member (a number set; those up to `readSeq` are
    /// read and trimmed as the marker moves).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mention_seqs: Vec<u64>,
    /// Set on members written by a large add: the add's id (see the module comment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_add: Option<String>,
    #[serde(rename = "GSI1PK")]
    pub gsi1_pk: String,
    #[serde(rename = "GSI1SK")]
    pub gsi1_sk: String,
    /// When (epoch ms) the member's last send under slow mode was admitted (`domain::slow_mode`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_sent_at: Option<u64>,
    /// Until when (epoch ms) the member is muted (`domain::mutes`): no sends, reactions or typing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub muted_until: Option<u64>,
    /// The member's push notification level for the conversation (`all` when absent) and when their
    /// own mute of it ends (epoch ms), set by `PUT .../notifications` (`domain::push`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_level: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_muted_until: Option<u64>,
    /// The member's sync key (`store::sync`), once the conversation worker wrote one.
    #[serde(rename = "GSI2PK", default, skip_serializing_if = "Option::is_none")]
    pub gsi2_pk: Option<String>,
    #[serde(rename = "GSI2SK", default, skip_serializing_if = "Option::is_none")]
    pub gsi2_sk: Option<String>,
}

impl MemberRecord {
    /// A member joining now: listed at the conversation's current activity, and with everything
    /// before it read (docs/API-GUIDE.md: a member who joins starts with `readSeq = lastSeq`).
    pub fn new(conversation: &ConversationRecord, user_id: &str, role: MemberRole, joined_at: &str) -> Self {
        MemberRecord {
            conversation_id: conversation.id.clone(),
            user_id: user_id.to_owned(),
            role,
            joined_at: joined_at.to_owned(),
            read_seq: conversation.last_seq,
            last_read_message_id: conversation.last_message.as_ref().map(|m| m.id.clone()),
            mention_seqs: Vec::new(),
            pending_add: None,
            gsi1_pk: keys::user_conversations(user_id),
            gsi1_sk: activity_key(&conversation.activity, &conversation.id),
            slow_sent_at: None,
            muted_until: None,
            notify_level: None,
            notify_muted_until: None,
            gsi2_pk: None,
            gsi2_sk: None,
        }
    }
}

/// A member item's GSI1 sort key: newest activity sorts last, the id breaks ties.
pub fn activity_key(activity: &str, conversation_id: &str) -> String {
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
                        self.usage.record_transaction(out.consumed_capacity(), &writes);
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

    /// Records in a direct conversation's META that `blocker` blocked the other member (`blocked`), or
    /// no longer does: `ADD`/`DELETE` on the `blockedBy` string set, so repeating either changes
    /// nothing. A conversation deleted meanwhile is left alone.
    pub async fn mark_direct_block(&self, conversation_id: &str, blocker: &str, blocked: bool) -> Result<(), ApiError> {
        let expression = if blocked {
            "ADD blockedBy :blocker"
        } else {
            "DELETE blockedBy :blocker"
        };
        self.update_if(
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(keys::conversation(conversation_id), keys::META)))
                .update_expression(expression)
                .condition_expression("attribute_exists(PK)")
                .expression_attribute_values(":blocker", AttributeValue::Ss(vec![blocker.to_owned()])),
        )
        .await?;
        Ok(())
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
        self.get_record(keys::conversation(conversation_id), keys::META.to_owned())
            .await
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

    /// A page of the user's member items, most recent activity first, after `before` (a GSI1 sort
    /// key). `true` when more may follow.
    pub async fn memberships(
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
            .expression_attribute_values(":pk", s(keys::user_conversations(user_id)))
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

    /// Every member item of the user (for `presence`, which goes to everyone they share a
    /// conversation with).
    pub async fn all_memberships(&self, user_id: &str) -> Result<Vec<MemberRecord>, ApiError> {
        let mut all = Vec::new();
        let mut before: Option<String> = None;
        loop {
            let (page, more) = self.memberships(user_id, before.as_deref(), 100).await?;
            let last = page.last().map(|m| m.gsi1_sk.clone());
            all.extend(page);
            match (more, last) {
                (true, Some(last)) => before = Some(last),
                _ => return Ok(all),
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

    /// Sets the group's name and/or slow mode (at least one is given); `None` when it is gone.
    pub async fn update_conversation(
        &self,
        conversation_id: &str,
        name: Option<&str>,
        slow_mode_seconds: Option<u64>,
        now: &str,
    ) -> Result<Option<ConversationRecord>, ApiError> {
        let mut sets = vec!["updatedAt = :now"];
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::conversation(conversation_id), keys::META)))
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":now", s(now));
        if let Some(name) = name {
            sets.push("#name = :name");
            update = update
                .expression_attribute_names("#name", "name")
                .expression_attribute_values(":name", s(name));
        }
        if let Some(seconds) = slow_mode_seconds {
            sets.push("slowModeSeconds = :slow");
            update = update.expression_attribute_values(":slow", n(seconds));
        }
        self.conditional_update(update.update_expression(format!("SET {}", sets.join(", "))))
            .await
    }

    /// Admits a send under slow mode: the member's last admitted send is at least `interval_ms` before
    /// `now_ms` (or there was none), and becomes `now_ms`. `Err(retry after ms)` when it is too soon.
    pub async fn admit_slow_send(
        &self,
        conversation_id: &str,
        user_id: &str,
        now_ms: u64,
        interval_ms: u64,
    ) -> Result<Result<(), u64>, ApiError> {
        let admitted = self
            .conditional_update::<MemberRecord>(
                self.client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(key(keys::conversation(conversation_id), keys::member(user_id))))
                    .update_expression("SET slowSentAt = :now")
                    .condition_expression(
                        "attribute_exists(PK) AND (attribute_not_exists(slowSentAt) OR slowSentAt <= :since)",
                    )
                    .expression_attribute_values(":now", n(now_ms))
                    .expression_attribute_values(":since", n(now_ms.saturating_sub(interval_ms))),
            )
            .await?;
        if admitted.is_some() {
            return Ok(Ok(()));
        }
        // Too soon (or gone, which the send finds out next): how long until the next one is admitted.
        let member: Option<MemberRecord> = self
            .get_record(keys::conversation(conversation_id), keys::member(user_id))
            .await?;
        let last = member.and_then(|m| m.slow_sent_at).unwrap_or(0);
        Ok(Err((last + interval_ms).saturating_sub(now_ms).max(1)))
    }

    /// Adds members (none of them members yet), moving the count and the members version, and refusing
    /// to pass `max_members`. Up to 99 go in one transaction with the META; more are written pending
    /// and committed by one META update (see the module comment). `Ok(false)`: the limit would be
    /// passed, and nothing changed.
    pub async fn add_members(
        &self,
        conversation_id: &str,
        members: &[MemberRecord],
        max_members: u64,
        now: &str,
    ) -> Result<bool, ApiError> {
        // Each member takes two items of a transaction: its put and the check that it is not banned.
        if members.len() * 2 < TRANSACTION_MAX {
            return self
                .add_members_at_once(conversation_id, members, max_members, now)
                .await;
        }
        self.add_members_pending(conversation_id, members, max_members, now)
            .await
    }

    fn member_put(&self, member: &MemberRecord) -> Result<TransactWriteItem, ApiError> {
        self.put_item(
            item_with_key(
                keys::conversation(&member.conversation_id),
                &keys::member(&member.user_id),
                member,
            )?,
            Some("attribute_not_exists(PK)"),
        )
    }

    /// The check, inside an add's transaction, that the user is not banned: a ban that lands between
    /// an add's read of the bans and its write fails the add rather than letting the user in.
    fn not_banned(&self, conversation_id: &str, user_id: &str) -> Result<TransactWriteItem, ApiError> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(keys::conversation(conversation_id), keys::ban(user_id))))
            .condition_expression("attribute_not_exists(PK)")
            .build()
            .map_err(ApiError::internal)?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    fn count_update(
        &self,
        conversation_id: &str,
        added: u64,
        max_members: u64,
        now: &str,
    ) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
        Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(keys::conversation(conversation_id), keys::META)))
            .update_expression(
                "SET memberCount = memberCount + :added, membersVersion = membersVersion + :one, updatedAt = :now",
            )
            .condition_expression("attribute_exists(PK) AND memberCount <= :room")
            .expression_attribute_values(":added", n(added))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", s(now))
            .expression_attribute_values(":room", n(max_members.saturating_sub(added)))
    }

    /// The writes that add one member: the META's count (index 0) and the member item (index 1), for
    /// a join's transaction (`store::invitations`).
    pub(crate) fn member_joins(
        &self,
        member: &MemberRecord,
        max_members: u64,
        now: &str,
    ) -> Result<Vec<TransactWriteItem>, ApiError> {
        let meta = self
            .count_update(&member.conversation_id, 1, max_members, now)
            .build()
            .map_err(ApiError::internal)?;
        Ok(vec![
            TransactWriteItem::builder().update(meta).build(),
            self.member_put(member)?,
        ])
    }

    async fn add_members_at_once(
        &self,
        conversation_id: &str,
        members: &[MemberRecord],
        max_members: u64,
        now: &str,
    ) -> Result<bool, ApiError> {
        let meta = self
            .count_update(conversation_id, members.len() as u64, max_members, now)
            .build()
            .map_err(ApiError::internal)?;
        let mut writes = vec![TransactWriteItem::builder().update(meta).build()];
        for member in members {
            writes.push(self.member_put(member)?);
        }
        for member in members {
            writes.push(self.not_banned(conversation_id, &member.user_id)?);
        }
        match self.transact(writes).await {
            Ok(()) => Ok(true),
            Err(WriteConflict::Conditions(failed)) if failed.contains(&0) => Ok(false),
            Err(WriteConflict::Conditions(failed)) if failed.iter().any(|i| *i > members.len()) => {
                Err(banned_meanwhile())
            }
            Err(WriteConflict::Conditions(_)) => Err(members_changed()),
            Err(WriteConflict::Other(e)) => Err(e),
        }
    }

    async fn add_members_pending(
        &self,
        conversation_id: &str,
        members: &[MemberRecord],
        max_members: u64,
        now: &str,
    ) -> Result<bool, ApiError> {
        let add_id = ulid::Ulid::generate().to_string();
        let pk = keys::conversation(conversation_id);
        let meta_key = key(pk.clone(), keys::META);
        let string_set = AttributeValue::Ss(vec![add_id.clone()]);
        // 1. Announce the add: from here on its members are invisible until it commits.
        let announced = self
            .update_if(
                self.client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(meta_key.clone()))
                    .update_expression("ADD pendingAdds :add")
                    .condition_expression("attribute_exists(PK) AND memberCount <= :room")
                    .expression_attribute_values(":add", string_set.clone())
                    .expression_attribute_values(":room", n(max_members.saturating_sub(members.len() as u64))),
            )
            .await?;
        if !announced {
            return Ok(false);
        }
        // 2. The members, pending, 100 a transaction.
        let pending: Vec<MemberRecord> = members
            .iter()
            .map(|m| MemberRecord {
                pending_add: Some(add_id.clone()),
                ..m.clone()
            })
            .collect();
        let mut written = 0;
        let mut failure = None;
        let mut full = false;
        for chunk in pending.chunks(TRANSACTION_MAX / 2) {
            let writes = match chunk
                .iter()
                .map(|m| self.member_put(m))
                .chain(chunk.iter().map(|m| self.not_banned(conversation_id, &m.user_id)))
                .collect::<Result<Vec<_>, _>>()
            {
                Ok(writes) => writes,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            };
            match self.transact(writes).await {
                Ok(()) => written += chunk.len(),
                Err(WriteConflict::Conditions(failed)) => {
                    failure = Some(if failed.iter().any(|i| *i >= chunk.len()) {
                        banned_meanwhile()
                    } else {
                        members_changed()
                    });
                    break;
                }
                Err(WriteConflict::Other(e)) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        // 3. Commit: count, version and the end of the pending state in one conditional update.
        if failure.is_none() {
            let committed = self
                .update_if(
                    self.client
                        .update_item()
                        .table_name(&self.table)
                        .set_key(Some(meta_key.clone()))
                        .update_expression(
                            "SET memberCount = memberCount + :added, membersVersion = membersVersion + :one, \
                             updatedAt = :now DELETE pendingAdds :add",
                        )
                        .condition_expression("contains(pendingAdds, :id) AND memberCount <= :room")
                        .expression_attribute_values(":added", n(members.len()))
                        .expression_attribute_values(":one", n(1))
                        .expression_attribute_values(":now", s(now))
                        .expression_attribute_values(":add", string_set.clone())
                        .expression_attribute_values(":id", s(&add_id))
                        .expression_attribute_values(":room", n(max_members.saturating_sub(members.len() as u64))),
                )
                .await;
            match committed {
                Ok(true) => return Ok(true),
                Ok(false) => full = true,
                Err(e) => failure = Some(e),
            }
        }
        // Undo: remove what was written, then the announcement. Until both are done the members stay
        // invisible, so a failed undo leaves unreachable items, never half an add.
        let undone = futures_util::future::join_all(pending[..written].iter().map(|m| {
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key(pk.clone(), keys::member(&m.user_id))))
                .condition_expression("pendingAdd = :id")
                .expression_attribute_values(":id", s(&add_id))
                .send()
        }))
        .await
        .into_iter()
        .all(|r| r.is_ok() || r.as_ref().is_err_and(is_condition_failure));
        if undone {
            let _ = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(meta_key))
                .update_expression("DELETE pendingAdds :add")
                .expression_attribute_values(":add", string_set)
                .send()
                .await;
        } else {
            tracing::warn!(conversationId = %conversation_id, addId = %add_id, "a failed member add left pending items");
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(!full),
        }
    }

    /// Removes one member (never the owner) and moves the count and version. With `remover`
    /// (someone else removing them), the remover must still be the owner, or an admin removing a
    /// plain member. `Ok(false)`: the member is not there, or the roles changed meanwhile.
    pub async fn remove_member(
        &self,
        conversation_id: &str,
        user_id: &str,
        remover: Option<(&str, MemberRole)>,
        now: &str,
    ) -> Result<bool, ApiError> {
        let pk = keys::conversation(conversation_id);
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk.clone(), keys::member(user_id))))
            .expression_attribute_names("#role", "role");
        // The owner (or the member leaving) may remove anyone but the owner; an admin only plain members.
        let delete = match remover {
            Some((_, MemberRole::Owner)) | None => delete
                .condition_expression("attribute_exists(PK) AND #role <> :owner")
                .expression_attribute_values(":owner", s(MemberRole::Owner.as_str())),
            Some(_) => delete
                .condition_expression("attribute_exists(PK) AND #role = :member")
                .expression_attribute_values(":member", s(MemberRole::Member.as_str())),
        };
        let meta = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk.clone(), keys::META)))
            .update_expression(
                "SET memberCount = memberCount - :one, membersVersion = membersVersion + :one, updatedAt = :now",
            )
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", s(now))
            .build()
            .map_err(ApiError::internal)?;
        let mut writes = vec![
            TransactWriteItem::builder()
                .delete(delete.build().map_err(ApiError::internal)?)
                .build(),
            TransactWriteItem::builder().update(meta).build(),
        ];
        if let Some((remover_id, role)) = remover {
            let check = ConditionCheck::builder()
                .table_name(&self.table)
                .set_key(Some(key(pk, keys::member(remover_id))))
                .condition_expression("#role = :role")
                .expression_attribute_names("#role", "role")
                .expression_attribute_values(":role", s(role.as_str()))
                .build()
                .map_err(ApiError::internal)?;
            writes.push(TransactWriteItem::builder().condition_check(check).build());
        }
        self.transact_if(writes).await
    }

    /// The last member leaves: their member item and the META go together, only while they are the
    /// only member. What else hangs off the conversation is purged afterwards (`domain::upkeep`).
    /// `Ok(false)`: someone else is (or became) a member.
    pub async fn delete_with_last_member(&self, conversation_id: &str, user_id: &str) -> Result<bool, ApiError> {
        let pk = keys::conversation(conversation_id);
        let member = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk.clone(), keys::member(user_id))))
            .condition_expression("attribute_exists(PK)")
            .build()
            .map_err(ApiError::internal)?;
        let meta = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk, keys::META)))
            .condition_expression("memberCount = :one")
            .expression_attribute_values(":one", n(1))
            .build()
            .map_err(ApiError::internal)?;
        self.transact_if(vec![
            TransactWriteItem::builder().delete(member).build(),
            TransactWriteItem::builder().delete(meta).build(),
        ])
        .await
    }

    /// Sets a member's role to `admin` or `member`, while `owner_id` is still the owner and the
    /// target is a member other than the owner. `Ok(None)`: one of those no longer holds.
    pub async fn set_member_role(
        &self,
        conversation_id: &str,
        owner_id: &str,
        user_id: &str,
        role: MemberRole,
    ) -> Result<Option<MemberRecord>, ApiError> {
        let pk = keys::conversation(conversation_id);
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk.clone(), keys::member(owner_id))))
            .condition_expression("#role = :owner")
            .expression_attribute_names("#role", "role")
            .expression_attribute_values(":owner", s(MemberRole::Owner.as_str()))
            .build()
            .map_err(ApiError::internal)?;
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk, keys::member(user_id))))
            .update_expression("SET #role = :role")
            .condition_expression("attribute_exists(PK) AND #role <> :owner")
            .expression_attribute_names("#role", "role")
            .expression_attribute_values(":role", s(role.as_str()))
            .expression_attribute_values(":owner", s(MemberRole::Owner.as_str()))
            .build()
            .map_err(ApiError::internal)?;
        match self
            .transact(vec![
                TransactWriteItem::builder().condition_check(check).build(),
                TransactWriteItem::builder().update(update).build(),
            ])
            .await
        {
            Ok(()) => Ok(self
                .members_of(conversation_id, &[user_id.to_owned()])
                .await?
                .into_iter()
                .next()),
            Err(WriteConflict::Conditions(_)) => Ok(None),
            Err(WriteConflict::Other(e)) => Err(e),
        }
    }

    /// Ownership passes from `from` (who becomes an admin) to `to`, in one transaction, only while
    /// `from` is the owner and `to` a member. `Ok(false)`: one of those no longer holds.
    pub async fn transfer_ownership(&self, conversation_id: &str, from: &str, to: &str) -> Result<bool, ApiError> {
        let pk = keys::conversation(conversation_id);
        let demote = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk.clone(), keys::member(from))))
            .update_expression("SET #role = :admin")
            .condition_expression("#role = :owner")
            .expression_attribute_names("#role", "role")
            .expression_attribute_values(":admin", s(MemberRole::Admin.as_str()))
            .expression_attribute_values(":owner", s(MemberRole::Owner.as_str()))
            .build()
            .map_err(ApiError::internal)?;
        let promote = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk, keys::member(to))))
            .update_expression("SET #role = :owner")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_names("#role", "role")
            .expression_attribute_values(":owner", s(MemberRole::Owner.as_str()))
            .build()
            .map_err(ApiError::internal)?;
        self.transact_if(vec![
            TransactWriteItem::builder().update(demote).build(),
            TransactWriteItem::builder().update(promote).build(),
        ])
        .await
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

    /// A sender's own read marker moved forward to its message (`seq`, `message_id`) and its list key to
    /// `activity`, in one write (they are on the same member item: one write unit instead of two) when
    /// both are behind; else each is moved on its own, forward only.
    pub async fn advance_sender(
        &self,
        conversation_id: &str,
        user_id: &str,
        seq: u64,
        message_id: &str,
        activity: &str,
    ) -> Result<(), ApiError> {
        let both = self
            .update_if(
                self.client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(key(keys::conversation(conversation_id), keys::member(user_id))))
                    .update_expression("SET readSeq = :seq, lastReadMessageId = :id, GSI1SK = :key")
                    .condition_expression(
                        "attribute_exists(PK) AND (attribute_not_exists(readSeq) OR readSeq < :seq) AND GSI1SK < :key",
                    )
                    .expression_attribute_values(":seq", n(seq))
                    .expression_attribute_values(":id", s(message_id))
                    .expression_attribute_values(":key", s(activity_key(activity, conversation_id))),
            )
            .await?;
        if !both {
            futures_util::future::try_join(
                self.advance_read_marker(conversation_id, user_id, seq, message_id),
                self.advance_listing(conversation_id, user_id, activity),
            )
            .await?;
        }
        Ok(())
    }

    /// Moves one member's list key forward to `activity` (never back; a repeat changes nothing).
    pub async fn advance_listing(
        &self,
        conversation_id: &str,
        user_id: &str,
        activity: &str,
    ) -> Result<bool, ApiError> {
        self.update_if(
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(keys::conversation(conversation_id), keys::member(user_id))))
                .update_expression("SET GSI1SK = :key")
                .condition_expression("attribute_exists(PK) AND GSI1SK < :key")
                .expression_attribute_values(":key", s(activity_key(activity, conversation_id))),
        )
        .await
    }

    /// Records on the META that every member's list key reached `activity` (forward only).
    pub async fn mark_listed(&self, conversation_id: &str, activity: &str) -> Result<bool, ApiError> {
        self.update_if(
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(keys::conversation(conversation_id), keys::META)))
                .update_expression("SET listedActivity = :activity")
                .condition_expression(
                    "attribute_exists(PK) AND (attribute_not_exists(listedActivity) OR listedActivity < :activity)",
                )
                .expression_attribute_values(":activity", s(activity)),
        )
        .await
    }

    /// The user ids of the conversation's members as of its META (pending adds left out): one
    /// strongly consistent Query over `MEMBER#..META`, which holds the member items and the META and
    /// nothing else (`MSG#` sorts after `META`).
    pub async fn admitted_member_ids(&self, conversation_id: &str) -> Result<Vec<String>, ApiError> {
        let mut members: Vec<MemberRecord> = Vec::new();
        let mut meta: Option<ConversationRecord> = None;
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("PK = :pk AND SK BETWEEN :from AND :to")
                .expression_attribute_values(":pk", s(keys::conversation(conversation_id)))
                .expression_attribute_values(":from", s(keys::MEMBER_PREFIX))
                .expression_attribute_values(":to", s(keys::META))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await?;
            self.usage.record(false, out.consumed_capacity());
            for item in out.items.unwrap_or_default() {
                if item.get("SK").and_then(|v| v.as_s().ok()).map(String::as_str) == Some(keys::META) {
                    meta = Some(serde_dynamo::from_item(item)?);
                } else {
                    members.push(serde_dynamo::from_item(item)?);
                }
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        let Some(meta) = meta else {
            return Ok(Vec::new());
        };
        Ok(members
            .into_iter()
            .filter(|m| meta.admits(m))
            .map(|m| m.user_id)
            .collect())
    }

    /// One round of a deleted conversation's clean-up: deletes up to `max_items` of the items left
    /// under `CONV#<id>` (not the purge marker). `true` when more remain.
    pub async fn purge_round(&self, conversation_id: &str, max_items: usize) -> Result<bool, ApiError> {
        let pk = keys::conversation(conversation_id);
        let mut doomed: Vec<Item> = Vec::new();
        let mut start = None;
        let more =
            loop {
                let out = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("PK = :pk")
                    .expression_attribute_values(":pk", s(pk.clone()))
                    .projection_expression("PK, SK")
                    .limit((max_items + 1 - doomed.len()).min(1000) as i32)
                    .set_exclusive_start_key(start)
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
                    .await?;
                self.usage.record(false, out.consumed_capacity());
                doomed.extend(out.items.unwrap_or_default().into_iter().filter(|item| {
                    item.get("SK").and_then(|v| v.as_s().ok()).map(String::as_str) != Some(keys::PURGE)
                }));
                start = out.last_evaluated_key;
                if doomed.len() > max_items {
                    doomed.truncate(max_items);
                    break true;
                }
                if start.is_none() {
                    break false;
                }
            };
        self.batch_delete(doomed).await?;
        Ok(more)
    }

    /// BatchWriteItem deletes, 25 a call.
    async fn batch_delete(&self, keys_doomed: Vec<Item>) -> Result<(), ApiError> {
        for chunk in keys_doomed.chunks(25) {
            let mut requests = Vec::with_capacity(chunk.len());
            for doomed in chunk {
                let delete = DeleteRequest::builder()
                    .set_key(Some(doomed.clone()))
                    .build()
                    .map_err(ApiError::internal)?;
                requests.push(WriteRequest::builder().delete_request(delete).build());
            }
            self.batch_write(requests).await?;
        }
        Ok(())
    }

    /// The purge marker: writing it (again) starts the next clean-up round.
    pub async fn mark_purge_round(&self, conversation_id: &str, round: u64) -> Result<(), ApiError> {
        self.update_if(
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(keys::conversation(conversation_id), keys::PURGE)))
                .update_expression("SET round = :round")
                .condition_expression("attribute_not_exists(round) OR round < :round")
                .expression_attribute_values(":round", n(round)),
        )
        .await?;
        Ok(())
    }

    pub async fn delete_purge_marker(&self, conversation_id: &str) -> Result<(), ApiError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::conversation(conversation_id), keys::PURGE)))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await?;
        self.usage.record(true, out.consumed_capacity());
        Ok(())
    }

    /// The typing throttle: `true` (and the time recorded) when the user's last delivered `typing` in
    /// this conversation is at least `interval_ms` old. One conditional write; the item expires.
    pub async fn claim_typing(
        &self,
        conversation_id: &str,
        user_id: &str,
        now_ms: u64,
        interval_ms: u64,
    ) -> Result<bool, ApiError> {
        self.update_if(
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(keys::conversation(conversation_id), keys::typing(user_id))))
                .update_expression("SET atMs = :now, expiresAt = :expires")
                .condition_expression("attribute_not_exists(atMs) OR atMs <= :since")
                .expression_attribute_values(":now", n(now_ms))
                .expression_attribute_values(":since", n(now_ms.saturating_sub(interval_ms)))
                .expression_attribute_values(":expires", n(now_ms / 1000 + 60)),
        )
        .await
    }
}

/// A ban landed between an add's check and its write.
fn banned_meanwhile() -> ApiError {
    ApiError::Forbidden("One of these users was banned from this group meanwhile; nobody was added.".to_owned())
}

fn members_changed() -> ApiError {
    ApiError::Conflict("The members changed meanwhile; please retry.".to_owned())
}
