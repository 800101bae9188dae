//! Messages: the idempotent send transaction, history pages, edits and deletes.

use aws_sdk_dynamodb::types::{ReturnConsumedCapacity, TransactWriteItem, Update};
use serde::Deserialize;

use super::conversations::{ConversationRecord, MemberRecord, MessageRecord};
use super::{item_with_key, key, keys, n, records, s, Store, WriteConflict};
use crate::error::ApiError;

/// What a send's commit found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// The message is stored at its position.
    Stored,
    /// The sender already sent this `clientMessageId` here: the original message's id.
    Duplicate(String),
    /// The reserved position was filled with a deleted placeholder (an earlier attempt of this send
    /// gave up on it): nothing was stored; the send takes a new position.
    PositionFilled,
    /// A reply's parent is gone (its conversation is being purged): nothing was stored.
    ParentGone,
    /// An attachment's condition failed (attached meanwhile, expired): nothing was stored.
    AttachmentsTaken,
}

/// Which way a history page runs from its bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryBound {
    Newest,
    Before(String),
    After(String),
}

/// A sender's claim on a `clientMessageId` in a conversation, written in the same transaction as the
/// message it names: a claim names its message for ever (idempotent send), and a message that has no
/// claim is a placeholder.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientClaim {
    /// The message stored for this `clientMessageId`. Absent on claims of the earlier design, which an
    /// attempt wrote before storing anything: those are taken as no claim.
    #[serde(default)]
    pub message_id: Option<String>,
    /// The commit attempt that wrote the claim: how an attempt whose answer was lost recognises its
    /// own transaction.
    #[serde(default)]
    pub attempt: Option<String>,
}

/// What a send reads before it writes, in one BatchGetItem.
pub struct SendContext {
    pub conversation: Option<ConversationRecord>,
    pub member: Option<MemberRecord>,
    /// The claim of an earlier attempt with this `clientMessageId`, if any.
    pub claim: Option<ClientClaim>,
    /// The message a reply names as its parent, if it is in this conversation.
    pub parent: Option<MessageRecord>,
    /// The member items of the mentioned users that exist (the sender's among them if mentioned).
    pub mentioned: Vec<MemberRecord>,
}

impl Store {
    /// The conversation, the sender's membership, the `clientMessageId` claim, a reply's parent and the
    /// mentioned users' memberships, in one read (at most 4 + 50 keys: one BatchGetItem).
    pub async fn send_context(
        &self,
        conversation_id: &str,
        sender_id: &str,
        client_message_id: &str,
        parent_id: Option<&str>,
        mentioned: &[String],
    ) -> Result<SendContext, ApiError> {
        let pk = keys::conversation(conversation_id);
        let claim_sk = keys::client_message(sender_id, client_message_id);
        let mut wanted = vec![
            key(pk.clone(), keys::META),
            key(pk.clone(), keys::member(sender_id)),
            key(pk.clone(), claim_sk.clone()),
        ];
        if let Some(parent) = parent_id {
            wanted.push(key(pk.clone(), keys::message(parent)));
        }
        for user_id in mentioned.iter().filter(|m| m.as_str() != sender_id) {
            wanted.push(key(pk.clone(), keys::member(user_id)));
        }
        let items = self.batch_get(wanted, true).await?;
        let mut found = SendContext {
            conversation: None,
            member: None,
            claim: None,
            parent: None,
            mentioned: Vec::new(),
        };
        let sender_sk = keys::member(sender_id);
        for item in items {
            match item.get("SK").and_then(|v| v.as_s().ok()).map(String::as_str) {
                Some(keys::META) => found.conversation = Some(serde_dynamo::from_item(item)?),
                Some(sk) if sk == claim_sk => found.claim = Some(serde_dynamo::from_item(item)?),
                Some(sk) if sk.starts_with(keys::MESSAGE_PREFIX) => found.parent = Some(serde_dynamo::from_item(item)?),
                Some(sk) if sk == sender_sk => {
                    let member: MemberRecord = serde_dynamo::from_item(item)?;
                    if mentioned.contains(&member.user_id) {
                        found.mentioned.push(member.clone());
                    }
                    found.member = Some(member);
                }
                Some(_) => found.mentioned.push(serde_dynamo::from_item(item)?),
                None => {}
            }
        }
        Ok(found)
    }

    /// Stores `message` at its reserved position, in one transaction with the sender's claim on its
    /// `clientMessageId`: two items written whatever the conversation's size (4 WCU for a message under
    /// 1 KB: a transaction bills each item twice), and none that other senders write (so concurrent
    /// sends do not conflict). The sender's membership is not checked again here: the send read it,
    /// strongly consistent, a round trip earlier, and a `ConditionCheck` would bill 2 WCU more on every
    /// message. What that trades: a removal that lands in those few milliseconds does not stop that one
    /// message (it is ordered as if sent just before the removal); the removed member gets no event
    /// after the removal either way, since delivery follows `membersVersion`.
    /// `attempt` is unique to this call: the transaction's request token (a lost answer retried inside
    /// the budget is not applied twice) and the claim's `attempt`, by which a retry recognises its own
    /// commit.
    pub async fn commit_message(&self, message: &MessageRecord, attempt: &str) -> Result<SendOutcome, ApiError> {
        let pk = keys::conversation(&message.conversation_id);
        let claim_sk = keys::client_message(&message.sender_id, &message.client_message_id);
        let mut claim = key(pk.clone(), claim_sk);
        claim.insert("messageId".to_owned(), s(&message.id));
        claim.insert("seq".to_owned(), n(message.seq));
        claim.insert("attempt".to_owned(), s(attempt));
        let mut writes = vec![
            self.put_item(
                item_with_key(pk.clone(), &keys::message(&message.id), message)?,
                Some("attribute_not_exists(PK)"),
            )?,
            self.put_item(claim, Some("attribute_not_exists(messageId)"))?,
        ];
        // A reply counts in its parent in the same transaction: exactly once, however often retried.
        if let Some(parent) = &message.parent_message_id {
            let count = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(pk.clone(), keys::message(parent))))
                .update_expression("ADD replyCount :one")
                .condition_expression("attribute_exists(PK)")
                .expression_attribute_values(":one", n(1))
                .build()
                .map_err(ApiError::internal)?;
            writes.push(TransactWriteItem::builder().update(count).build());
        }
        // Each attachment joins this message in the same transaction, or the send stores nothing.
        let first_attachment = writes.len();
        let now_secs = crate::time::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        for attachment in &message.attachments {
            writes.push(self.attach_write(
                &message.conversation_id,
                &attachment.id,
                &message.sender_id,
                &message.id,
                now_secs,
            )?);
        }
        match self.transact_with_token(writes, Some(attempt)).await {
            Ok(()) => Ok(SendOutcome::Stored),
            // The claim names a message already: an earlier attempt's (a duplicate), or this very
            // attempt's, applied although its answer was lost.
            Err(WriteConflict::Conditions(failed)) if failed.contains(&1) => {
                let claim = self
                    .client_claim(&message.conversation_id, &message.sender_id, &message.client_message_id)
                    .await?;
                match claim {
                    Some(ClientClaim { attempt: Some(a), .. }) if a == attempt => Ok(SendOutcome::Stored),
                    Some(ClientClaim {
                        message_id: Some(id), ..
                    }) => Ok(SendOutcome::Duplicate(id)),
                    _ => Err(ApiError::internal(
                        "a send claim's condition failed on a claim without its message",
                    )),
                }
            }
            // The message's id is taken but no claim names it: a placeholder fills the position.
            Err(WriteConflict::Conditions(failed)) if failed.contains(&0) => Ok(SendOutcome::PositionFilled),
            Err(WriteConflict::Conditions(failed)) if failed.iter().any(|i| *i >= first_attachment) => {
                Ok(SendOutcome::AttachmentsTaken)
            }
            // The reply's parent went away meanwhile (a conversation's purge): as a reply to nothing.
            Err(WriteConflict::Conditions(_)) => Ok(SendOutcome::ParentGone),
            Err(WriteConflict::Other(e)) => Err(e),
        }
    }

    /// Puts a deleted message at a reserved position whose send did not complete (a duplicate that lost,
    /// a sender no longer a member, DynamoDB failing past the budget), so `seq` stays dense: clients see
    /// a deleted message there, as docs/API-GUIDE.md "Messages" describes one.
    pub async fn fill_position(&self, placeholder: &MessageRecord) -> Result<(), ApiError> {
        debug_assert!(placeholder.deleted && placeholder.body.is_empty());
        let item = item_with_key(
            keys::conversation(&placeholder.conversation_id),
            &keys::message(&placeholder.id),
            placeholder,
        )?;
        // A failed condition: something is there already, so the send did complete after all.
        self.put_if(
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(PK)"),
        )
        .await?;
        Ok(())
    }

    /// Moves the conversation's `lastSeq`, `lastMessage` and activity forward to `message` (a message
    /// older than the one recorded changes nothing, so records may come twice or out of order).
    pub async fn advance_conversation(&self, message: &MessageRecord) -> Result<bool, ApiError> {
        self.update_if(
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(keys::conversation(&message.conversation_id), keys::META)))
                .update_expression("SET lastSeq = :seq, lastMessage = :message, activity = :activity, updatedAt = :now")
                .condition_expression("attribute_exists(PK) AND (attribute_not_exists(lastSeq) OR lastSeq < :seq)")
                .expression_attribute_values(":seq", n(message.seq))
                .expression_attribute_values(":message", serde_dynamo::to_attribute_value(message)?)
                .expression_attribute_values(":activity", s(&message.id))
                .expression_attribute_values(":now", s(&message.created_at)),
        )
        .await
    }

    /// Moves a thread's `lastReplyAt` forward to `at`.
    pub async fn advance_last_reply(&self, conversation_id: &str, parent_id: &str, at: &str) -> Result<bool, ApiError> {
        self.update_if(
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(keys::conversation(conversation_id), keys::message(parent_id))))
                .update_expression("SET lastReplyAt = :at")
                .condition_expression(
                    "attribute_exists(PK) AND (attribute_not_exists(lastReplyAt) OR lastReplyAt < :at)",
                )
                .expression_attribute_values(":at", s(at)),
        )
        .await
    }

    /// Adds `seq` to the member's set of unread mentions (a set: a repeat adds nothing).
    pub async fn add_mention(&self, conversation_id: &str, user_id: &str, seq: u64) -> Result<bool, ApiError> {
        self.update_if(
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(keys::conversation(conversation_id), keys::member(user_id))))
                .update_expression("ADD mentionSeqs :seq")
                .condition_expression("attribute_exists(PK)")
                .expression_attribute_values(
                    ":seq",
                    aws_sdk_dynamodb::types::AttributeValue::Ns(vec![seq.to_string()]),
                ),
        )
        .await
    }

    /// Takes the mentions up to the member's read position out of its set (they are read now).
    pub async fn trim_mentions(&self, conversation_id: &str, user_id: &str, read: &[u64]) -> Result<(), ApiError> {
        if read.is_empty() {
            return Ok(());
        }
        self.update_if(
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(keys::conversation(conversation_id), keys::member(user_id))))
                .update_expression("DELETE mentionSeqs :read")
                .condition_expression("attribute_exists(PK)")
                .expression_attribute_values(
                    ":read",
                    aws_sdk_dynamodb::types::AttributeValue::Ns(read.iter().map(u64::to_string).collect()),
                ),
        )
        .await?;
        Ok(())
    }

    pub async fn client_claim(
        &self,
        conversation_id: &str,
        sender_id: &str,
        client_message_id: &str,
    ) -> Result<Option<ClientClaim>, ApiError> {
        self.get_record(
            keys::conversation(conversation_id),
            keys::client_message(sender_id, client_message_id),
        )
        .await
    }

    pub async fn get_message(
        &self,
        conversation_id: &str,
        message_id: &str,
    ) -> Result<Option<MessageRecord>, ApiError> {
        self.get_record(keys::conversation(conversation_id), keys::message(message_id))
            .await
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
                .update_expression("SET body = :body, editedAt = :now, version = if_not_exists(version, :zero) + :one")
                .condition_expression("attribute_exists(PK) AND senderId = :sender AND deleted = :false")
                .expression_attribute_values(":body", s(body))
                .expression_attribute_values(":now", s(now))
                .expression_attribute_values(":sender", s(sender_id))
                .expression_attribute_values(":false", aws_sdk_dynamodb::types::AttributeValue::Bool(false))
                .expression_attribute_values(":zero", n(0))
                .expression_attribute_values(":one", n(1)),
        )
        .await
    }

    /// Marks the message deleted and drops its body; it keeps its id, time and place. A reply leaves
    /// its parent's `replyCount` in the same transaction. `Ok(None)`: no such message, or it was
    /// deleted already (so a reply is never taken off its parent twice).
    pub async fn delete_message(&self, message: &MessageRecord) -> Result<Option<MessageRecord>, ApiError> {
        let pk = keys::conversation(&message.conversation_id);
        let delete = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk.clone(), keys::message(&message.id))))
            .update_expression(
                "SET deleted = :true, body = :empty, version = if_not_exists(version, :zero) + :one REMOVE mentions, attachments",
            )
            .condition_expression("attribute_exists(PK) AND deleted = :false")
            .expression_attribute_values(":true", aws_sdk_dynamodb::types::AttributeValue::Bool(true))
            .expression_attribute_values(":false", aws_sdk_dynamodb::types::AttributeValue::Bool(false))
            .expression_attribute_values(":empty", s(""))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .build()
            .map_err(ApiError::internal)?;
        let mut writes = vec![TransactWriteItem::builder().update(delete).build()];
        if let Some(parent) = &message.parent_message_id {
            let uncount = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(pk, keys::message(parent))))
                .update_expression("ADD replyCount :minus")
                .condition_expression("attribute_exists(PK) AND replyCount > :zero")
                .expression_attribute_values(":minus", n(-1))
                .expression_attribute_values(":zero", n(0))
                .build()
                .map_err(ApiError::internal)?;
            writes.push(TransactWriteItem::builder().update(uncount).build());
        }
        match self.transact_with_token(writes, None).await {
            Ok(()) => self.get_message(&message.conversation_id, &message.id).await,
            Err(WriteConflict::Conditions(failed)) if failed.contains(&0) => Ok(None),
            // The parent is gone (or at 0): the reply is deleted all the same.
            Err(WriteConflict::Conditions(_)) => {
                let mut alone = message.clone();
                alone.parent_message_id = None;
                Box::pin(self.delete_message(&alone)).await
            }
            Err(WriteConflict::Other(e)) => Err(e),
        }
    }

    /// A page of a thread's replies, oldest first, after `after` (a reply id): one Query of GSI1
    /// (eventually consistent, as every GSI read). `true` when more may follow.
    pub async fn replies_page(
        &self,
        parent_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<MessageRecord>, bool), ApiError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("GSI1")
            .limit(limit as i32)
            .expression_attribute_values(":pk", s(keys::thread(parent_id)))
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        query = match after {
            Some(after) => query
                .key_condition_expression("GSI1PK = :pk AND GSI1SK > :after")
                .expression_attribute_values(":after", s(after)),
            None => query.key_condition_expression("GSI1PK = :pk"),
        };
        let out = query.send().await?;
        self.usage.record(false, out.consumed_capacity());
        let more = out.last_evaluated_key.is_some();
        Ok((records(out.items.unwrap_or_default())?, more))
    }

    /// Keeps the conversation's `lastMessage` in step with an edit or delete of that same message,
    /// so that an older version never replaces a newer one (an edit racing a delete cannot bring the
    /// deleted text back): when the message is the newest but its send has not recorded it yet, it is
    /// recorded as it is now (and the send's own, older write then finds `lastSeq` taken); when it is
    /// the last message, it replaces the copy there only if that copy is an older version.
    pub async fn refresh_last_message(&self, message: &MessageRecord) -> Result<(), ApiError> {
        let value: aws_sdk_dynamodb::types::AttributeValue = serde_dynamo::to_attribute_value(message)?;
        let recorded = self
            .update_if(
                self.client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(key(keys::conversation(&message.conversation_id), keys::META)))
                    .update_expression(
                        "SET lastSeq = :seq, lastMessage = :message, activity = :activity, updatedAt = :now",
                    )
                    .condition_expression("attribute_exists(PK) AND (attribute_not_exists(lastSeq) OR lastSeq < :seq)")
                    .expression_attribute_values(":seq", n(message.seq))
                    .expression_attribute_values(":message", value.clone())
                    .expression_attribute_values(":activity", s(&message.id))
                    .expression_attribute_values(":now", s(&message.created_at)),
            )
            .await?;
        if recorded {
            return Ok(());
        }
        self.update_if(
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(keys::conversation(&message.conversation_id), keys::META)))
                .update_expression("SET lastMessage = :message")
                .condition_expression(
                    "lastMessage.id = :id AND (attribute_not_exists(lastMessage.version) OR lastMessage.version < :version)",
                )
                .expression_attribute_values(":message", value)
                .expression_attribute_values(":id", s(&message.id))
                .expression_attribute_values(":version", n(message.version)),
        )
        .await?;
        Ok(())
    }
}
