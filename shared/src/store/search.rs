//! The search index's items (see `crate::search` for the key design and its cost):
//! `PK = IDX#<conversationId>#<prefix>`, `SK = <messageId>`, and `words`, the message's normalised
//! words joined by spaces (absent when they do not fit the item's budget).

use aws_sdk_dynamodb::types::{DeleteRequest, PutRequest, ReturnConsumedCapacity, WriteRequest};
use futures_util::stream::{self, StreamExt, TryStreamExt};

use super::{key, keys, s, ConversationRecord, Item, MemberRecord, MessageRecord, Store};
use crate::error::ApiError;

/// DynamoDB's BatchWriteItem limit.
const BATCH_WRITE_MAX: usize = 25;
/// BatchWriteItem calls of one index change in flight at once.
const CONCURRENT_WRITES: usize = 8;

/// One index item as a query reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    pub message_id: String,
    /// The message's normalised words (each cut to `search::STORED_WORD_MAX` characters), or `None`
    /// when they were too many to store: then only the message itself can tell.
    pub words: Option<Vec<String>>,
}

/// One write of an index change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexWrite {
    Put {
        conversation_id: String,
        prefix: String,
        message_id: String,
        words: Option<String>,
    },
    Delete {
        conversation_id: String,
        prefix: String,
        message_id: String,
    },
}

impl IndexWrite {
    fn request(&self) -> Result<WriteRequest, ApiError> {
        Ok(match self {
            IndexWrite::Put {
                conversation_id,
                prefix,
                message_id,
                words,
            } => {
                let mut item = key(keys::search_index(conversation_id, prefix), message_id.as_str());
                if let Some(words) = words {
                    item.insert("words".to_owned(), s(words.as_str()));
                }
                let put = PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map_err(ApiError::internal)?;
                WriteRequest::builder().put_request(put).build()
            }
            IndexWrite::Delete {
                conversation_id,
                prefix,
                message_id,
            } => {
                let delete = DeleteRequest::builder()
                    .set_key(Some(key(
                        keys::search_index(conversation_id, prefix),
                        message_id.as_str(),
                    )))
                    .build()
                    .map_err(ApiError::internal)?;
                WriteRequest::builder().delete_request(delete).build()
            }
        })
    }
}

impl Store {
    /// Applies index writes with BatchWriteItem, 25 a call (a few calls at once), retrying
    /// unprocessed items with backoff. Puts and deletes of fixed keys: applying them twice is applying
    /// them once. The writes must name distinct keys.
    pub async fn write_index(&self, writes: &[IndexWrite]) -> Result<(), ApiError> {
        let mut chunks = Vec::new();
        for chunk in writes.chunks(BATCH_WRITE_MAX) {
            chunks.push(chunk.iter().map(IndexWrite::request).collect::<Result<Vec<_>, _>>()?);
        }
        stream::iter(chunks)
            .map(|requests| self.batch_write(requests))
            .buffer_unordered(CONCURRENT_WRITES)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    /// Up to `limit` index entries of the conversation under `prefix`, newest message first, older
    /// than `before` (a message id) when given. `true` when more may follow (the last entry's id is
    /// where to go on). Eventually consistent: the index itself lags the messages anyway.
    pub async fn index_page(
        &self,
        conversation_id: &str,
        prefix: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<IndexEntry>, bool), ApiError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .scan_index_forward(false)
            .limit(limit as i32)
            .expression_attribute_values(":pk", s(keys::search_index(conversation_id, prefix)))
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        query = match before {
            Some(before) => query
                .key_condition_expression("PK = :pk AND SK < :before")
                .expression_attribute_values(":before", s(before)),
            None => query.key_condition_expression("PK = :pk"),
        };
        let out = query.send().await?;
        self.usage.record(false, out.consumed_capacity());
        let more = out.last_evaluated_key.is_some();
        let entries = out
            .items
            .unwrap_or_default()
            .into_iter()
            .filter_map(|item: Item| {
                let message_id = item.get("SK")?.as_s().ok()?.clone();
                let words = item
                    .get("words")
                    .and_then(|v| v.as_s().ok())
                    .map(|joined| joined.split(' ').filter(|w| !w.is_empty()).map(str::to_owned).collect());
                Some(IndexEntry { message_id, words })
            })
            .collect();
        Ok((entries, more))
    }

    /// The messages named by `(conversationId, messageId)`, the caller's member items of
    /// `members_of` and the METAs of `metas_of` (for a membership check at the moment of reading), in
    /// one strongly consistent BatchGetItem (more than one only past 100 keys).
    pub async fn search_hits(
        &self,
        messages: &[(String, String)],
        user_id: &str,
        members_of: &[String],
        metas_of: &[String],
    ) -> Result<SearchHits, ApiError> {
        let mut wanted: Vec<Item> = messages
            .iter()
            .map(|(conversation, id)| key(keys::conversation(conversation), keys::message(id)))
            .collect();
        wanted.extend(
            members_of
                .iter()
                .map(|conversation| key(keys::conversation(conversation), keys::member(user_id))),
        );
        wanted.extend(
            metas_of
                .iter()
                .map(|conversation| key(keys::conversation(conversation), keys::META)),
        );
        let mut hits = SearchHits::default();
        for item in self.batch_get(wanted, true).await? {
            match item.get("SK").and_then(|v| v.as_s().ok()).map(String::as_str) {
                Some(sk) if sk.starts_with(keys::MESSAGE_PREFIX) => hits.messages.push(serde_dynamo::from_item(item)?),
                Some(sk) if sk.starts_with(keys::MEMBER_PREFIX) => hits.members.push(serde_dynamo::from_item(item)?),
                Some(keys::META) => hits.metas.push(serde_dynamo::from_item(item)?),
                _ => {}
            }
        }
        Ok(hits)
    }
}

/// What [`Store::search_hits`] found.
#[derive(Debug, Default)]
pub struct SearchHits {
    pub messages: Vec<MessageRecord>,
    pub members: Vec<MemberRecord>,
    pub metas: Vec<ConversationRecord>,
}
