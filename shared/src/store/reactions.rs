//! Reactions: a count per reaction on the message item (`reactions.<reaction>`, moved with `ADD`) and
//! each user's own reactions to a message in a small item beside it (`REACT#<userId>#<messageId>`, a
//! string set), written together in one transaction: the user item is the idempotency gate (a user has
//! each reaction at most once), the message's counts stay exact under any concurrency, and a caller's
//! own reactions to a page of messages are one read.
//!
//! Concurrent reactions to one message are transactions on one item: DynamoDB answers the losers
//! TransactionConflict, and they are retried with jitter inside the retry budget (`Store::retrying`).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity, TransactWriteItem, Update};
use serde::Deserialize;

use super::{key, keys, n, s, Store, WriteConflict};
use crate::error::ApiError;

/// What `PUT .../reactions/{reaction}` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reacted {
    Added,
    /// The user had this reaction already: nothing changed.
    Already,
    /// The message is not in this conversation, is deleted, or has `max_distinct` other reactions.
    Refused,
}

#[derive(Deserialize)]
struct OwnReactions {
    #[serde(rename = "SK")]
    sort_key: String,
    #[serde(default)]
    reactions: Vec<String>,
}

impl Store {
    /// Adds `user_id`'s `reaction` to the message, unless they have it already; refused (nothing
    /// changed) when the message is missing or deleted or would pass `max_distinct` reactions.
    pub async fn put_reaction(
        &self,
        conversation_id: &str,
        message_id: &str,
        user_id: &str,
        reaction: &str,
        max_distinct: u64,
    ) -> Result<Reacted, ApiError> {
        let pk = keys::conversation(conversation_id);
        let own = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk.clone(), keys::reactions_of(user_id, message_id))))
            .update_expression("ADD reactions :set")
            .condition_expression("attribute_not_exists(reactions) OR NOT contains(reactions, :reaction)")
            .expression_attribute_values(":set", AttributeValue::Ss(vec![reaction.to_owned()]))
            .expression_attribute_values(":reaction", s(reaction))
            .build()
            .map_err(ApiError::internal)?;
        let count = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk, keys::message(message_id))))
            .update_expression("ADD reactions.#r :one")
            .condition_expression(
                "attribute_exists(PK) AND deleted = :false AND (attribute_exists(reactions.#r) OR size(reactions) < :max)",
            )
            .expression_attribute_names("#r", reaction)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_values(":max", n(max_distinct))
            .build()
            .map_err(ApiError::internal)?;
        match self
            .transact(vec![
                TransactWriteItem::builder().update(own).build(),
                TransactWriteItem::builder().update(count).build(),
            ])
            .await
        {
            Ok(()) => Ok(Reacted::Added),
            Err(WriteConflict::Conditions(failed)) if failed.contains(&1) => Ok(Reacted::Refused),
            Err(WriteConflict::Conditions(_)) => Ok(Reacted::Already),
            Err(WriteConflict::Other(e)) => Err(e),
        }
    }

    /// Takes `user_id`'s `reaction` off the message. `false`: they did not have it.
    pub async fn remove_reaction(
        &self,
        conversation_id: &str,
        message_id: &str,
        user_id: &str,
        reaction: &str,
    ) -> Result<bool, ApiError> {
        let pk = keys::conversation(conversation_id);
        let own = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk.clone(), keys::reactions_of(user_id, message_id))))
            .update_expression("DELETE reactions :set")
            .condition_expression("contains(reactions, :reaction)")
            .expression_attribute_values(":set", AttributeValue::Ss(vec![reaction.to_owned()]))
            .expression_attribute_values(":reaction", s(reaction))
            .build()
            .map_err(ApiError::internal)?;
        let count = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk.clone(), keys::message(message_id))))
            .update_expression("ADD reactions.#r :minus")
            .condition_expression("attribute_exists(reactions.#r)")
            .expression_attribute_names("#r", reaction)
            .expression_attribute_values(":minus", n(-1))
            .build()
            .map_err(ApiError::internal)?;
        let removed = match self
            .transact(vec![
                TransactWriteItem::builder().update(own).build(),
                TransactWriteItem::builder().update(count).build(),
            ])
            .await
        {
            Ok(()) => true,
            Err(WriteConflict::Conditions(_)) => false,
            Err(WriteConflict::Other(e)) => return Err(e),
        };
        if removed {
            // A count that reached 0 leaves the map, so it no longer counts towards the distinct limit
            // (a reaction added meanwhile makes the condition fail, and the count stays).
            self.update_if(
                self.client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(key(pk, keys::message(message_id))))
                    .update_expression("REMOVE reactions.#r")
                    .condition_expression("reactions.#r <= :zero")
                    .expression_attribute_names("#r", reaction)
                    .expression_attribute_values(":zero", n(0)),
            )
            .await?;
        }
        Ok(removed)
    }

    /// `user_id`'s reactions to the messages of one conversation with ids in `from..=to` (a history
    /// page): one Query of that key range, however many messages it spans. By message id.
    pub async fn own_reactions_between(
        &self,
        conversation_id: &str,
        user_id: &str,
        from: &str,
        to: &str,
    ) -> Result<HashMap<String, Vec<String>>, ApiError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND SK BETWEEN :from AND :to")
            .expression_attribute_values(":pk", s(keys::conversation(conversation_id)))
            .expression_attribute_values(":from", s(keys::reactions_of(user_id, from)))
            .expression_attribute_values(":to", s(keys::reactions_of(user_id, to)))
            .projection_expression("SK, reactions")
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await?;
        self.usage.record(false, out.consumed_capacity());
        own_by_message(user_id, out.items.unwrap_or_default())
    }

    /// `user_id`'s reactions to scattered messages (`(conversationId, messageId)`): one BatchGetItem of
    /// at most 100 keys a call. By message id.
    pub async fn own_reactions_of(
        &self,
        user_id: &str,
        messages: &[(String, String)],
    ) -> Result<HashMap<String, Vec<String>>, ApiError> {
        if messages.is_empty() {
            return Ok(HashMap::new());
        }
        let wanted = messages
            .iter()
            .map(|(conversation, message)| key(keys::conversation(conversation), keys::reactions_of(user_id, message)))
            .collect();
        let items = self
            .batch_get_projected(wanted, false, Some(("SK, reactions", &[])))
            .await?;
        own_by_message(user_id, items)
    }
}

impl Store {
    /// Messages (`(conversationId, messageId)`) as they are now, with `user_id`'s own reactions to
    /// them: one BatchGetItem for both (for a conversation list's `lastMessage`s, whose copies on the
    /// METAs do not follow reactions and replies).
    pub async fn messages_with_own_reactions(
        &self,
        user_id: &str,
        messages: &[(String, String)],
    ) -> Result<(Vec<super::MessageRecord>, HashMap<String, Vec<String>>), ApiError> {
        if messages.is_empty() {
            return Ok((Vec::new(), HashMap::new()));
        }
        let mut wanted = Vec::with_capacity(messages.len() * 2);
        for (conversation, message) in messages {
            wanted.push(key(keys::conversation(conversation), keys::message(message)));
            wanted.push(key(
                keys::conversation(conversation),
                keys::reactions_of(user_id, message),
            ));
        }
        let (mut found, mut own) = (Vec::new(), Vec::new());
        for item in self.batch_get(wanted, false).await? {
            let is_message = item
                .get("SK")
                .and_then(|v| v.as_s().ok())
                .is_some_and(|sk| sk.starts_with(keys::MESSAGE_PREFIX));
            if is_message {
                found.push(serde_dynamo::from_item(item)?);
            } else {
                own.push(item);
            }
        }
        Ok((found, own_by_message(user_id, own)?))
    }
}

fn own_by_message(user_id: &str, items: Vec<super::Item>) -> Result<HashMap<String, Vec<String>>, ApiError> {
    let prefix = keys::reactions_of(user_id, "");
    let mut mine = HashMap::new();
    for item in items {
        let own: OwnReactions = serde_dynamo::from_item(item)?;
        if let Some(message_id) = own.sort_key.strip_prefix(&prefix) {
            let mut reactions = own.reactions;
            reactions.sort();
            mine.insert(message_id.to_owned(), reactions);
        }
    }
    Ok(mine)
}
