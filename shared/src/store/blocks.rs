//! Blocks between users (docs/API-GUIDE.md "Conversations and members").
//!
//! A block is two items, written and deleted together in one transaction so that neither ever exists
//! without the other:
//! - `USER#<blocker>` / `BLOCK#<blocked>` `{userId: blocked, createdAt}`: whom a user blocked (their
//!   list, in user-id order), and the key a point read asks "has X blocked me?" with;
//! - `USER#<blocked>` / `BLOCKEDBY#<blocker>` `{userId: blocker, createdAt}`: who blocked a user, so
//!   that leaving the blockers out of a fan-out (`typing`, `presence`) is one Query, not a Scan.
//!
//! Neither item carries GSI1 attributes, so they never show up in the conversation index that shares
//! the `USER#` partitions.

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Delete, ReturnConsumedCapacity, TransactWriteItem};
use serde::{Deserialize, Serialize};

use super::{item_with_key, key, keys, records, s, Item, Store, WriteConflict};
use crate::error::ApiError;

/// One side of a block: the other user, and when the block was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockRecord {
    pub user_id: String,
    pub created_at: String,
}

/// What [`Store::put_block`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockOutcome {
    Blocked,
    /// The block existed already; it keeps its first `createdAt`.
    AlreadyBlocked,
    /// There is no user with the blocked id; nothing was written.
    NoSuchUser,
}

impl Store {
    /// Writes both items of a block, on the condition that the blocked user exists, all or nothing.
    pub async fn put_block(&self, blocker: &str, blocked: &str, created_at: &str) -> Result<BlockOutcome, ApiError> {
        let forward = BlockRecord {
            user_id: blocked.to_owned(),
            created_at: created_at.to_owned(),
        };
        let mirror = BlockRecord {
            user_id: blocker.to_owned(),
            created_at: created_at.to_owned(),
        };
        let writes = vec![
            TransactWriteItem::builder()
                .condition_check(
                    ConditionCheck::builder()
                        .table_name(&self.table)
                        .set_key(Some(key(keys::user(blocked), keys::PROFILE)))
                        .condition_expression("attribute_exists(PK)")
                        .build()
                        .map_err(ApiError::internal)?,
                )
                .build(),
            self.put_if_absent(item_with_key(keys::user(blocker), &keys::block(blocked), &forward)?)?,
            self.put_if_absent(item_with_key(keys::user(blocked), &keys::blocked_by(blocker), &mirror)?)?,
        ];
        match self.transact(writes).await {
            Ok(()) => Ok(BlockOutcome::Blocked),
            Err(WriteConflict::Conditions(failed)) if failed.contains(&0) => Ok(BlockOutcome::NoSuchUser),
            // Both items are only ever written together, so either condition failing means both exist
            // (this is also what a retry of an applied attempt whose answer was lost finds).
            Err(WriteConflict::Conditions(_)) => Ok(BlockOutcome::AlreadyBlocked),
            Err(WriteConflict::Other(e)) => Err(e),
        }
    }

    /// Deletes both items of a block; deleting a block that does not exist changes nothing.
    pub async fn delete_block(&self, blocker: &str, blocked: &str) -> Result<(), ApiError> {
        let delete = |pk: String, sk: String| -> Result<TransactWriteItem, ApiError> {
            Ok(TransactWriteItem::builder()
                .delete(
                    Delete::builder()
                        .table_name(&self.table)
                        .set_key(Some(key(pk, sk)))
                        .build()
                        .map_err(ApiError::internal)?,
                )
                .build())
        };
        let writes = vec![
            delete(keys::user(blocker), keys::block(blocked))?,
            delete(keys::user(blocked), keys::blocked_by(blocker))?,
        ];
        match self.transact(writes).await {
            Ok(()) => Ok(()),
            Err(WriteConflict::Conditions(_)) => {
                Err(ApiError::internal("an unconditional delete failed its condition"))
            }
            Err(WriteConflict::Other(e)) => Err(e),
        }
    }

    /// A page of the users `blocker` blocked, in user-id order, after the user id `after`; `true` when
    /// more follow. Strongly consistent: a user sees their own block or unblock at once.
    pub async fn blocks_page(
        &self,
        blocker: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<BlockRecord>, bool), ApiError> {
        let pk = keys::user(blocker);
        // One more than asked for tells whether another page follows, so the last page says so.
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
            .expression_attribute_values(":pk", s(pk.clone()))
            .expression_attribute_values(":prefix", s(keys::BLOCK_PREFIX))
            .set_exclusive_start_key(after.map(|after| key(pk, keys::block(after))))
            .projection_expression("userId, createdAt")
            .consistent_read(true)
            .limit(limit as i32 + 1)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await?;
        self.usage.record(false, out.consumed_capacity());
        let mut page: Vec<BlockRecord> = records(out.items.unwrap_or_default())?;
        let more = page.len() > limit;
        page.truncate(limit);
        Ok((page, more))
    }

    /// Everyone who blocked `user_id` (every page), strongly consistent so a fresh block counts at once.
    pub async fn blockers_of(&self, user_id: &str) -> Result<Vec<String>, ApiError> {
        let mut blockers = Vec::new();
        self.query_prefix(
            keys::user(user_id),
            keys::BLOCKED_BY_PREFIX,
            false,
            Some("userId"),
            |items| {
                blockers.extend(items.into_iter().filter_map(|item| user_id_of(&item)));
                Ok(true)
            },
        )
        .await?;
        Ok(blockers)
    }

    /// Which of `others` have blocked `me`: one strongly consistent BatchGetItem of their
    /// `BLOCK#<me>` items (100 keys a call). In no particular order.
    pub async fn blocked_by(&self, me: &str, others: &[String]) -> Result<Vec<String>, ApiError> {
        let keys_wanted = others
            .iter()
            .map(|other| key(keys::user(other), keys::block(me)))
            .collect();
        Ok(self
            .batch_get(keys_wanted, true)
            .await?
            .iter()
            .filter_map(|item| {
                item.get("PK")
                    .and_then(|pk| pk.as_s().ok())
                    .and_then(|pk| pk.strip_prefix("USER#"))
                    .map(str::to_owned)
            })
            .collect())
    }

    /// True when either of `a` and `b` blocked the other: one BatchGetItem of both keys, strongly
    /// consistent.
    pub async fn block_between(&self, a: &str, b: &str) -> Result<bool, ApiError> {
        let keys_wanted = vec![key(keys::user(a), keys::block(b)), key(keys::user(b), keys::block(a))];
        Ok(!self.batch_get(keys_wanted, true).await?.is_empty())
    }
}

fn user_id_of(item: &Item) -> Option<String> {
    match item.get("userId") {
        Some(AttributeValue::S(id)) => Some(id.clone()),
        _ => None,
    }
}
