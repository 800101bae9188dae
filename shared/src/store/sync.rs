//! What `GET /sync` reads, and what the conversation worker writes so that it can (the design is in
//! docs/ARCHITECTURE.md, "Sync").
//!
//! - Sync keys: a member item's `GSI2PK` / `GSI2SK` = `SYNC#<userId>` / `<stamp>#<conversationId>`.
//!   The worker moves every member's key forward to the end of a window (`stamp` = now + the
//!   window) when the conversation changes after its previous window ended, and records that end
//!   on the META (`syncedUntil`): changes inside a window cost no key writes, and a key always
//!   says a time at or after the newest change it covers. Finding a user's changed conversations is
//!   one Query of their `SYNC#` partition from the token's time: it reads the changed ones only.
//! - Left items: `USER#<userId>` / `LEFT#<conversationId>`, in the same GSI2 partition, written when
//!   a member item is removed (left, removed, the conversation deleted); they expire after the
//!   tokens that could need them (31 days).
//! - Change items: `CONV#<id>` / `CHANGE#<stamp>#<ulid>`, the ids of the messages one worker batch
//!   saw created or changed (edited, deleted, reacted to, replied to), stamped after the batch's
//!   key writes. A conversation's changed messages since a time are one Query of its `CHANGE#` range
//!   and one BatchGetItem of the messages. They expire like left items.
//!
//! Every stamp is taken by the writer just before its write, after what it covers was committed,
//! so a reader that starts from a little before its previous read's time (`SYNC_OVERLAP_MS`) misses
//! nothing that was committed meanwhile.

use std::collections::BTreeSet;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity};

use super::{key, keys, n, records, s, MemberRecord, Store};
use crate::error::ApiError;

/// How long left items and change items are kept: longer than a sync token is accepted (30 days).
pub const SYNC_RECORD_DAYS: u64 = 31;

/// One entry of a user's sync partition.
#[derive(Debug, Clone)]
pub enum SyncEntry {
    /// A conversation the user is a member of, whose key is in the range read.
    Member(Box<MemberRecord>),
    /// A conversation the user left (or was removed from, or that was deleted); `key` its GSI2SK.
    Left { conversation_id: String, key: String },
}

impl SyncEntry {
    pub fn conversation_id(&self) -> &str {
        match self {
            SyncEntry::Member(member) => &member.conversation_id,
            SyncEntry::Left { conversation_id, .. } => conversation_id,
        }
    }

    /// Its GSI2 sort key: where a read that stops after it continues.
    pub fn key(&self) -> &str {
        match self {
            SyncEntry::Member(member) => member.gsi2_sk.as_deref().unwrap_or_default(),
            SyncEntry::Left { key, .. } => key,
        }
    }
}

fn expires_at(stamp_ms: u64) -> u64 {
    stamp_ms / 1000 + SYNC_RECORD_DAYS * 24 * 3600
}

impl Store {
    /// Moves the member's sync key forward to `stamp` (never back); `false` when it already said a
    /// later time or the member is gone.
    pub async fn advance_sync_key(
        &self,
        conversation_id: &str,
        user_id: &str,
        stamp_ms: u64,
    ) -> Result<bool, ApiError> {
        self.update_if(
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(keys::conversation(conversation_id), keys::member(user_id))))
                .update_expression("SET GSI2PK = :pk, GSI2SK = :key")
                .condition_expression("attribute_exists(PK) AND (attribute_not_exists(GSI2SK) OR GSI2SK < :key)")
                .expression_attribute_values(":pk", s(keys::user_sync(user_id)))
                .expression_attribute_values(":key", s(keys::sync_key(stamp_ms, conversation_id))),
        )
        .await
    }

    /// Records on the META that every member's sync key says `until`, and that its own view changed
    /// at `view_changed` (each forward only; nothing to write when neither is given).
    pub async fn mark_synced(
        &self,
        conversation_id: &str,
        until_ms: Option<u64>,
        view_changed_ms: Option<u64>,
    ) -> Result<bool, ApiError> {
        let mut sets = Vec::new();
        let mut conditions = vec!["attribute_exists(PK)"];
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::conversation(conversation_id), keys::META)));
        if let Some(until) = until_ms {
            sets.push("syncedUntil = :until");
            conditions.push("(attribute_not_exists(syncedUntil) OR syncedUntil < :until)");
            update = update.expression_attribute_values(":until", n(until));
        }
        if let Some(at) = view_changed_ms {
            sets.push("viewChangedAt = :at");
            conditions.push("(attribute_not_exists(viewChangedAt) OR viewChangedAt < :at)");
            update = update.expression_attribute_values(":at", n(at));
        }
        if sets.is_empty() {
            return Ok(true);
        }
        self.update_if(
            update
                .update_expression(format!("SET {}", sets.join(", ")))
                .condition_expression(conditions.join(" AND ")),
        )
        .await
    }

    /// That `user_id` is no longer a member of the conversation, as of `stamp` (a later leave moves it).
    pub async fn record_left(&self, user_id: &str, conversation_id: &str, stamp_ms: u64) -> Result<bool, ApiError> {
        self.update_if(
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(keys::user(user_id), keys::left(conversation_id))))
                .update_expression(
                    "SET GSI2PK = :pk, GSI2SK = :key, conversationId = :conversation, expiresAt = :expires",
                )
                .condition_expression("attribute_not_exists(GSI2SK) OR GSI2SK < :key")
                .expression_attribute_values(":pk", s(keys::user_sync(user_id)))
                .expression_attribute_values(":key", s(keys::sync_key(stamp_ms, conversation_id)))
                .expression_attribute_values(":conversation", s(conversation_id))
                .expression_attribute_values(":expires", n(expires_at(stamp_ms))),
        )
        .await
    }

    /// One change item: `message_ids` (at most a few hundred: one worker batch) created or changed
    /// before `stamp`.
    pub async fn record_changes(
        &self,
        conversation_id: &str,
        stamp_ms: u64,
        message_ids: &BTreeSet<String>,
    ) -> Result<(), ApiError> {
        if message_ids.is_empty() {
            return Ok(());
        }
        let unique = ulid::Ulid::generate().to_string();
        let ids = AttributeValue::Ss(message_ids.iter().cloned().collect());
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::conversation(conversation_id),
                keys::change(stamp_ms, &unique),
            )))
            .update_expression("SET messageIds = :ids, expiresAt = :expires")
            .expression_attribute_values(":ids", ids)
            .expression_attribute_values(":expires", n(expires_at(stamp_ms)))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await?;
        self.usage.record(true, out.consumed_capacity());
        Ok(())
    }

    /// The user's sync entries whose key sorts after `after` (a GSI2SK), oldest first, at most
    /// `limit`; `true` when more follow.
    pub async fn sync_entries(
        &self,
        user_id: &str,
        after: &str,
        limit: usize,
    ) -> Result<(Vec<SyncEntry>, bool), ApiError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("GSI2")
            .key_condition_expression("GSI2PK = :pk AND GSI2SK > :after")
            .expression_attribute_values(":pk", s(keys::user_sync(user_id)))
            .expression_attribute_values(":after", s(after))
            .limit(limit as i32)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await?;
        self.usage.record(false, out.consumed_capacity());
        let more = out.last_evaluated_key.is_some();
        let mut entries = Vec::new();
        for item in out.items.unwrap_or_default() {
            let sk = match item.get("SK") {
                Some(AttributeValue::S(sk)) => sk.clone(),
                _ => continue,
            };
            if sk.starts_with(keys::MEMBER_PREFIX) {
                let member: Vec<MemberRecord> = records([item])?;
                entries.extend(member.into_iter().map(|m| SyncEntry::Member(Box::new(m))));
            } else if let Some(conversation_id) = sk.strip_prefix("LEFT#") {
                let key = match item.get("GSI2SK") {
                    Some(AttributeValue::S(key)) => key.clone(),
                    _ => continue,
                };
                entries.push(SyncEntry::Left {
                    conversation_id: conversation_id.to_owned(),
                    key,
                });
            }
        }
        Ok((entries, more))
    }

    /// The ids of the conversation's messages created or changed at or after `from` (epoch ms), read
    /// until `cap` ids are known (strongly consistent); `true` when the range held more than that.
    pub async fn changed_message_ids(
        &self,
        conversation_id: &str,
        from_ms: u64,
        cap: usize,
    ) -> Result<(BTreeSet<String>, bool), ApiError> {
        let mut ids = BTreeSet::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("PK = :pk AND SK BETWEEN :from AND :to")
                .expression_attribute_values(":pk", s(keys::conversation(conversation_id)))
                .expression_attribute_values(":from", s(keys::change(from_ms, "")))
                .expression_attribute_values(":to", s(format!("{}~", keys::CHANGE_PREFIX)))
                .projection_expression("messageIds")
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await?;
            self.usage.record(false, out.consumed_capacity());
            for item in out.items.unwrap_or_default() {
                if let Some(AttributeValue::Ss(batch)) = item.get("messageIds") {
                    ids.extend(batch.iter().cloned());
                }
            }
            if ids.len() > cap {
                return Ok((ids, true));
            }
            match out.last_evaluated_key {
                Some(last) => start = Some(last),
                None => return Ok((ids, false)),
            }
        }
    }
}
