//! Messages: the idempotent send transaction, history pages, edits and deletes.

use aws_sdk_dynamodb::types::{ConditionCheck, ReturnConsumedCapacity, TransactWriteItem, Update};
use serde::Deserialize;

use super::conversations::{ConversationRecord, MemberRecord, MessageRecord};
use super::{is_condition_failure, item_with_key, key, keys, n, records, s, Store, WriteConflict};
use crate::error::ApiError;

/// What a send's commit found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// The message is stored at its position.
    Stored,
    /// The sender already sent this `clientMessageId` here: the original message's id.
    Duplicate(String),
    /// The sender is no longer a member.
    NotMember,
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

/// A sender's claim on a `clientMessageId` in a conversation, written before the position is reserved,
/// so that concurrent repeats of one send wait for the first instead of each taking a position.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientClaim {
    /// The attempt that holds the claim.
    pub token: String,
    /// Epoch milliseconds of the claim: an attempt that died leaves it, and a later one takes it over.
    #[serde(default)]
    pub claimed_at: u64,
    /// Set in the transaction that stores the message.
    #[serde(default)]
    pub message_id: Option<String>,
}

/// How a send's claim on its `clientMessageId` went.
#[derive(Debug)]
pub enum Claimed {
    /// This attempt holds it.
    Mine,
    /// Another attempt does: as found.
    Theirs(ClientClaim),
}

/// What a send reads before it writes, in one BatchGetItem.
pub struct SendContext {
    pub conversation: Option<ConversationRecord>,
    pub member: Option<MemberRecord>,
    /// The claim of an earlier attempt with this `clientMessageId`, if any.
    pub claim: Option<ClientClaim>,
    /// The message a reply names as its parent, if it is in this conversation.
    pub parent: Option<MessageRecord>,
}

impl Store {
    /// The conversation, the sender's membership, the `clientMessageId` claim and a reply's parent, in
    /// one read.
    pub async fn send_context(
        &self,
        conversation_id: &str,
        sender_id: &str,
        client_message_id: &str,
        parent_id: Option<&str>,
    ) -> Result<SendContext, ApiError> {
        let pk = keys::conversation(conversation_id);
        let claim_sk = keys::client_message(sender_id, client_message_id);
        let mut wanted = vec![
            key(pk.clone(), keys::META),
            key(pk.clone(), keys::member(sender_id)),
            key(pk.clone(), claim_sk.clone()),
        ];
        if let Some(parent) = parent_id {
            wanted.push(key(pk, keys::message(parent)));
        }
        let items = self.batch_get(wanted, true).await?;
        let mut found = SendContext {
            conversation: None,
            member: None,
            claim: None,
            parent: None,
        };
        for item in items {
            match item.get("SK").and_then(|v| v.as_s().ok()).map(String::as_str) {
                Some(keys::META) => found.conversation = Some(serde_dynamo::from_item(item)?),
                Some(sk) if sk == claim_sk => found.claim = Some(serde_dynamo::from_item(item)?),
                Some(sk) if sk.starts_with(keys::MESSAGE_PREFIX) => found.parent = Some(serde_dynamo::from_item(item)?),
                Some(_) => found.member = Some(serde_dynamo::from_item(item)?),
                None => {}
            }
        }
        Ok(found)
    }

    /// Claims `clientMessageId` for the attempt `token`: a new claim, or (`stale`) one taken over from an
    /// attempt that held it too long.
    pub async fn claim_send(
        &self,
        conversation_id: &str,
        sender_id: &str,
        client_message_id: &str,
        token: &str,
        now_ms: u64,
        stale: Option<&ClientClaim>,
    ) -> Result<Claimed, ApiError> {
        let claim_key = key(
            keys::conversation(conversation_id),
            keys::client_message(sender_id, client_message_id),
        );
        let attempt = self
            .retrying(|| async {
                let mut request = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(claim_key.clone()))
                    .update_expression("SET #token = :token, claimedAt = :now")
                    .expression_attribute_names("#token", "token")
                    .expression_attribute_values(":token", s(token))
                    .expression_attribute_values(":now", n(now_ms))
                    .return_consumed_capacity(ReturnConsumedCapacity::Total);
                request = match stale {
                    None => request.condition_expression("attribute_not_exists(PK) OR #token = :token"),
                    Some(old) => request
                        .condition_expression("(#token = :old OR #token = :token) AND attribute_not_exists(messageId)")
                        .expression_attribute_values(":old", s(&old.token)),
                };
                match request.send().await {
                    Ok(out) => {
                        self.usage.record(true, out.consumed_capacity());
                        Ok(true)
                    }
                    Err(err) if is_condition_failure(&err) => Ok(false),
                    Err(err) => Err(err.into()),
                }
            })
            .await?;
        if attempt {
            return Ok(Claimed::Mine);
        }
        let current = self
            .client_claim(conversation_id, sender_id, client_message_id)
            .await?
            .ok_or_else(|| ApiError::Unavailable {
                message: "The same message is being sent by another request; please retry.".to_owned(),
                retry_after_secs: 1,
            })?;
        Ok(Claimed::Theirs(current))
    }

    /// Gives up this attempt's claim (its send failed before storing anything), so a retry starts afresh.
    pub async fn release_claim(&self, conversation_id: &str, sender_id: &str, client_message_id: &str, token: &str) {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::conversation(conversation_id),
                keys::client_message(sender_id, client_message_id),
            )))
            .condition_expression("#token = :token AND attribute_not_exists(messageId)")
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":token", s(token))
            .send()
            .await;
        if let Err(err) = result {
            if !is_condition_failure(&err) {
                tracing::warn!(error = %aws_sdk_dynamodb::error::DisplayErrorContext(&err), "a send claim was not released; it goes stale");
            }
        }
    }

    /// Stores `message` at its reserved position, in one transaction with the completion of this
    /// attempt's claim and a check that the sender is still a member: one item written and one updated
    /// whatever the conversation's size, and none that other senders write (so concurrent sends do not
    /// conflict). Retried inside the retry budget with the message id as the request token, so a lost
    /// answer is not a second message.
    pub async fn commit_message(&self, message: &MessageRecord, token: &str) -> Result<SendOutcome, ApiError> {
        let pk = keys::conversation(&message.conversation_id);
        let claim = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(
                pk.clone(),
                keys::client_message(&message.sender_id, &message.client_message_id),
            )))
            .update_expression("SET messageId = :id, seq = :seq")
            .condition_expression("#token = :token AND attribute_not_exists(messageId)")
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":token", s(token))
            .expression_attribute_values(":id", s(&message.id))
            .expression_attribute_values(":seq", n(message.seq))
            .build()
            .map_err(ApiError::internal)?;
        let member_check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk.clone(), keys::member(&message.sender_id))))
            .condition_expression("attribute_exists(PK)")
            .build()
            .map_err(ApiError::internal)?;
        let mut writes = vec![
            self.put_item(
                item_with_key(pk.clone(), &keys::message(&message.id), message)?,
                Some("attribute_not_exists(PK)"),
            )?,
            TransactWriteItem::builder().update(claim).build(),
            TransactWriteItem::builder().condition_check(member_check).build(),
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
        match self.transact_with_token(writes, Some(&message.id)).await {
            Ok(()) => Ok(SendOutcome::Stored),
            // The message's id is already taken (our own applied attempt, or a later attempt that took the
            // claim over and filled our position) or the claim is no longer ours: the claim says which.
            Err(WriteConflict::Conditions(failed)) if failed.contains(&0) || failed.contains(&1) => {
                let claim = self
                    .client_claim(&message.conversation_id, &message.sender_id, &message.client_message_id)
                    .await?;
                match claim.and_then(|c| c.message_id) {
                    // Our own earlier attempt, applied although its answer was lost, is no duplicate.
                    Some(id) if id == message.id => Ok(SendOutcome::Stored),
                    Some(id) => Ok(SendOutcome::Duplicate(id)),
                    None => Err(ApiError::Unavailable {
                        message: "The same message is being sent by another request; please retry.".to_owned(),
                        retry_after_secs: 1,
                    }),
                }
            }
            Err(WriteConflict::Conditions(failed))
                if !failed.contains(&2) && failed.iter().any(|i| *i >= first_attachment) =>
            {
                Ok(SendOutcome::AttachmentsTaken)
            }
            Err(WriteConflict::Conditions(_)) => Ok(SendOutcome::NotMember),
            Err(WriteConflict::Other(e)) => Err(e),
        }
    }

    /// Puts a deleted message at a reserved position whose send did not complete (a duplicate that lost,
    /// a sender no longer a member, DynamoDB failing past the budget), so `seq` stays dense: clients see
    /// a deleted message there, as API.md describes one.
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

    /// What follows a stored message, each write conditional so it only ever moves forward and may be
    /// repeated (a retried send repeats it): the conversation's `lastSeq`, `lastMessage` and activity,
    /// the sender's read marker, and a direct conversation's two activity keys. Concurrent, and a
    /// constant number of writes.
    pub async fn record_sent(
        &self,
        conversation: &ConversationRecord,
        message: &MessageRecord,
    ) -> Result<(), ApiError> {
        let meta = self.update_if(
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(keys::conversation(&conversation.id), keys::META)))
                .update_expression("SET lastSeq = :seq, lastMessage = :message, activity = :activity, updatedAt = :now")
                .condition_expression("attribute_exists(PK) AND (attribute_not_exists(lastSeq) OR lastSeq < :seq)")
                .expression_attribute_values(":seq", n(message.seq))
                .expression_attribute_values(":message", serde_dynamo::to_attribute_value(message)?)
                .expression_attribute_values(":activity", s(&message.id))
                .expression_attribute_values(":now", s(&message.created_at)),
        );
        let read = self.advance_read_marker(&conversation.id, &message.sender_id, message.seq, &message.id);
        // The members whose list keys a send moves itself: both of a direct conversation, the sender
        // of a group (the others' follow from the conversation worker; see `store::conversations`).
        let listed: Vec<&str> = if conversation.direct_members.is_empty() {
            vec![message.sender_id.as_str()]
        } else {
            conversation.direct_members.iter().map(String::as_str).collect()
        };
        let listings = futures_util::future::try_join_all(
            listed
                .into_iter()
                .map(|member| self.advance_listing(&conversation.id, member, &message.id)),
        );
        // A reply moves its parent's `lastReplyAt` (forward only); a mention adds the message's `seq` to
        // each mentioned member's set (a set: a repeat adds nothing).
        let thread = async {
            match &message.parent_message_id {
                Some(parent) => {
                    self.advance_last_reply(&conversation.id, parent, &message.created_at)
                        .await
                }
                None => Ok(false),
            }
        };
        let mentions = futures_util::future::try_join_all(
            message
                .mentions
                .iter()
                .filter(|m| **m != message.sender_id)
                .map(|member| self.add_mention(&conversation.id, member, message.seq)),
        );
        futures_util::future::try_join5(meta, read, listings, thread, mentions).await?;
        Ok(())
    }

    async fn advance_last_reply(&self, conversation_id: &str, parent_id: &str, at: &str) -> Result<bool, ApiError> {
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

    async fn add_mention(&self, conversation_id: &str, user_id: &str, seq: u64) -> Result<bool, ApiError> {
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
