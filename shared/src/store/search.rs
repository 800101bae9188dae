//! The search index's items (see `crate::search` for the key design and its cost): one per indexed
//! message, `PK = SRCH#<conversationId>`, `SK = <messageId>`, and `words`, the message's distinct
//! normalised words between single spaces (`" see you tomorrow "`), absent when they do not fit the
//! item's budget (then only the message's own text can tell).

use aws_sdk_dynamodb::types::{DeleteRequest, PutRequest, ReturnConsumedCapacity, WriteRequest};
use futures_util::stream::{self, StreamExt, TryStreamExt};

use super::{key, keys, s, ConversationRecord, Item, MemberRecord, MessageRecord, Store};
use crate::error::ApiError;

/// DynamoDB's BatchWriteItem limit: index writes go 25 to a call.
pub const INDEX_WRITES_PER_CALL: usize = 25;
/// BatchWriteItem calls of one [`Store::write_index`] in flight at once.
const CONCURRENT_WRITES: usize = 4;
/// The index item's attribute holding the words.
const WORDS: &str = "words";

/// One write of an index change: the message's item put (with its words, or without when they did
/// not fit: "check the text") or deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexWrite {
    Put {
        conversation_id: String,
        message_id: String,
        /// `" word word "`, or `None`: the message matches whatever the query, its text decides.
        words: Option<String>,
    },
    Delete {
        conversation_id: String,
        message_id: String,
    },
}

impl IndexWrite {
    fn request(&self) -> Result<WriteRequest, ApiError> {
        Ok(match self {
            IndexWrite::Put {
                conversation_id,
                message_id,
                words,
            } => {
                let mut item = key(keys::search_index(conversation_id), message_id.as_str());
                if let Some(words) = words {
                    item.insert(WORDS.to_owned(), s(words.as_str()));
                }
                let put = PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map_err(ApiError::internal)?;
                WriteRequest::builder().put_request(put).build()
            }
            IndexWrite::Delete {
                conversation_id,
                message_id,
            } => {
                let delete = DeleteRequest::builder()
                    .set_key(Some(key(keys::search_index(conversation_id), message_id.as_str())))
                    .build()
                    .map_err(ApiError::internal)?;
                WriteRequest::builder().delete_request(delete).build()
            }
        })
    }
}

/// The FilterExpression that keeps an index item when every term starts one of its words
/// (`contains(words, " <term>")`: the stored list has a space before every word), or when it carries
/// no words (a message too long for its list: the query checks its text). The terms are normalised
/// and cut to the stored words' length by the caller; `None` when there are none (no filter).
pub fn words_filter(terms: &[String]) -> Option<(String, Vec<(String, String)>)> {
    if terms.is_empty() {
        return None;
    }
    let values: Vec<(String, String)> = terms
        .iter()
        .enumerate()
        .map(|(i, term)| (format!(":t{i}"), format!(" {term}")))
        .collect();
    let all = values
        .iter()
        .map(|(name, _)| format!("contains(#w, {name})"))
        .collect::<Vec<_>>()
        .join(" AND ");
    Some((format!("attribute_not_exists(#w) OR ({all})"), values))
}

/// One page of a conversation's index read by [`Store::search_page`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchPage {
    /// The ids of the items that passed the filter, newest first.
    pub message_ids: Vec<String>,
    /// The id of the last item read (matching or not) when the partition may go on below it: every
    /// item from the page's start down to it has been judged.
    pub floor: Option<String>,
}

impl Store {
    /// Applies index writes with BatchWriteItem, [`INDEX_WRITES_PER_CALL`] a call (a few calls at
    /// once), retrying unprocessed items with backoff. Puts and deletes of fixed keys: applying them
    /// twice is applying them once. The writes must name distinct messages.
    pub async fn write_index(&self, writes: &[IndexWrite]) -> Result<(), ApiError> {
        let mut chunks = Vec::new();
        for chunk in writes.chunks(INDEX_WRITES_PER_CALL) {
            chunks.push(chunk.iter().map(IndexWrite::request).collect::<Result<Vec<_>, _>>()?);
        }
        stream::iter(chunks)
            .map(|requests| self.batch_write(requests))
            .buffer_unordered(CONCURRENT_WRITES)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    /// Reads up to `limit` index items of the conversation, newest message first, older than `before`
    /// (a message id) when given, and returns those whose words start with every one of `terms` (or
    /// that carry no words). DynamoDB applies `Limit` before the filter: the read, and its capacity,
    /// is `limit` items at most however few match. Only the sort keys come back. Eventually
    /// consistent: the index itself lags the messages anyway.
    pub async fn search_page(
        &self,
        conversation_id: &str,
        terms: &[String],
        before: Option<&str>,
        limit: usize,
    ) -> Result<SearchPage, ApiError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .scan_index_forward(false)
            .limit(limit.clamp(1, i32::MAX as usize) as i32)
            .expression_attribute_values(":pk", s(keys::search_index(conversation_id)))
            .projection_expression("SK")
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        if let Some((filter, values)) = words_filter(terms) {
            query = query.filter_expression(filter).expression_attribute_names("#w", WORDS);
            for (name, value) in values {
                query = query.expression_attribute_values(name, s(value));
            }
        }
        query = match before {
            Some(before) => query
                .key_condition_expression("PK = :pk AND SK < :before")
                .expression_attribute_values(":before", s(before)),
            None => query.key_condition_expression("PK = :pk"),
        };
        let out = query.send().await?;
        self.usage.record(false, out.consumed_capacity());
        let sort_key = |item: &Item| item.get("SK").and_then(|v| v.as_s().ok()).cloned();
        let floor = out.last_evaluated_key.as_ref().and_then(sort_key);
        let message_ids = out.items.unwrap_or_default().iter().filter_map(sort_key).collect();
        Ok(SearchPage { message_ids, floor })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_ands_word_starts_and_lets_unlisted_items_through() {
        let terms = ["tomo".to_owned(), "cafe".to_owned()];
        let (filter, values) = words_filter(&terms).unwrap();
        assert_eq!(
            filter,
            "attribute_not_exists(#w) OR (contains(#w, :t0) AND contains(#w, :t1))"
        );
        assert_eq!(
            values,
            [
                (":t0".to_owned(), " tomo".to_owned()),
                (":t1".to_owned(), " cafe".to_owned())
            ]
        );
        // What DynamoDB's contains() does with those values on a stored list:
        let stored = " see you at the cafe tomorrow ";
        assert!(values.iter().all(|(_, v)| stored.contains(v.as_str())));
        assert!(!stored.contains(" morrow"), "the start of a word only");
        assert_eq!(words_filter(&[]), None);
    }

    #[test]
    fn writes_name_the_message_item_of_its_conversation() {
        let put = IndexWrite::Put {
            conversation_id: "C".to_owned(),
            message_id: "M".to_owned(),
            words: Some(" a b ".to_owned()),
        }
        .request()
        .unwrap();
        let item = put.put_request().unwrap().item();
        assert_eq!(item["PK"].as_s().unwrap(), "SRCH#C");
        assert_eq!(item["SK"].as_s().unwrap(), "M");
        assert_eq!(item[WORDS].as_s().unwrap(), " a b ");
        assert_eq!(item.len(), 3, "nothing else: the item stays small");
        let unlisted = IndexWrite::Put {
            conversation_id: "C".to_owned(),
            message_id: "M".to_owned(),
            words: None,
        }
        .request()
        .unwrap();
        assert!(!unlisted.put_request().unwrap().item().contains_key(WORDS));
        let delete = IndexWrite::Delete {
            conversation_id: "C".to_owned(),
            message_id: "M".to_owned(),
        }
        .request()
        .unwrap();
        let key = delete.delete_request().unwrap().key();
        assert_eq!(
            (key["PK"].as_s().unwrap().as_str(), key["SK"].as_s().unwrap().as_str()),
            ("SRCH#C", "M")
        );
    }
}
