//! The conversation worker: the table's stream records of conversation METAs, purge markers, messages
//! (new and changed) and member items (added and removed) (the template's filter lets nothing else
//! through), turned into `domain::upkeep` steps. Every conversation a batch touched ends with its
//! `upkeep::record_changes` step, for `GET /sync`.
//!
//! Records of different conversations run concurrently; a record that fails is reported by its
//! sequence number, and Lambda retries from the lowest one reported (what comes after it is done again,
//! which the steps allow: they are idempotent). Of several changes to one conversation in a batch only
//! the newest matters for its listing.

use std::collections::HashMap;

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use futures_util::stream::{self, StreamExt};

use crate::context::AppContext;
use crate::domain::upkeep;
use crate::error::ApiError;
use crate::store::{keys, ConversationRecord, MessageRecord};

/// Conversations worked on at once.
const CONCURRENT_CONVERSATIONS: usize = 8;

enum Step {
    /// Stored messages of one conversation, in stream order: what follows their sends.
    Sent(Vec<MessageRecord>),
    List(Box<ConversationRecord>),
    Purge {
        round: u64,
    },
    /// What the batch changed in the conversation, for `GET /sync` (always its last step).
    Changes(upkeep::Changes),
}

/// What one record changed that `GET /sync` must find.
enum Change {
    Created(String),
    Message(String),
    Joined(String),
    Left(String),
    Conversation,
}

fn change(record: &EventRecord) -> Option<Change> {
    let sk = sort_key(record)?;
    conversation_id(record)?;
    let event = record.event_name.as_str();
    if let Some(message_id) = sk.strip_prefix(keys::MESSAGE_PREFIX) {
        return match event {
            "INSERT" => Some(Change::Created(message_id.to_owned())),
            "MODIFY" => Some(Change::Message(message_id.to_owned())),
            _ => None,
        };
    }
    if let Some(user_id) = sk.strip_prefix(keys::MEMBER_PREFIX) {
        return match event {
            "INSERT" => Some(Change::Joined(user_id.to_owned())),
            "REMOVE" => Some(Change::Left(user_id.to_owned())),
            _ => None,
        };
    }
    let changed = match event {
        "INSERT" => true,
        "MODIFY" => meta_changed(record),
        _ => false,
    };
    (sk == keys::META && changed).then_some(Change::Conversation)
}

/// META attributes that change with every message (the message's own record says so) or that only the
/// workers keep: a META write of these alone is no news for `GET /sync` (and the worker's own
/// `syncedUntil` write must not start another round).
const META_BOOKKEEPING: [&str; 7] = [
    "syncedUntil",
    "viewChangedAt",
    "listedActivity",
    "lastSeq",
    "lastMessage",
    "activity",
    "updatedAt",
];

fn meta_changed(record: &EventRecord) -> bool {
    let (old, new) = (&record.change.old_image, &record.change.new_image);
    let differs = |name: &String| !META_BOOKKEEPING.contains(&name.as_str()) && old.get(name) != new.get(name);
    old.keys().chain(new.keys()).any(differs)
}

fn sort_key(record: &EventRecord) -> Option<String> {
    record.change.keys.get("SK").and_then(|v| match v {
        serde_dynamo::AttributeValue::S(s) => Some(s.clone()),
        _ => None,
    })
}

fn conversation_id(record: &EventRecord) -> Option<String> {
    record.change.keys.get("PK").and_then(|v| match v {
        serde_dynamo::AttributeValue::S(s) => s.strip_prefix("CONV#").map(str::to_owned),
        _ => None,
    })
}

/// What one record asks for, if anything; `Err` for a record that cannot be read.
fn step(record: &EventRecord) -> Result<Option<Step>, ApiError> {
    let (Some(sk), Some(_)) = (sort_key(record), conversation_id(record)) else {
        return Ok(None);
    };
    match (sk.as_str(), record.event_name.as_str()) {
        (keys::META, "INSERT" | "MODIFY") => {
            let meta: ConversationRecord = serde_dynamo::from_item(record.change.new_image.clone())?;
            Ok(Some(Step::List(Box::new(meta))))
        }
        (sk, "INSERT") if sk.starts_with(keys::MESSAGE_PREFIX) => {
            let message: MessageRecord = serde_dynamo::from_item(record.change.new_image.clone())?;
            Ok(Some(Step::Sent(vec![message])))
        }
        (keys::META, "REMOVE") => Ok(Some(Step::Purge { round: 0 })),
        (keys::PURGE, "INSERT" | "MODIFY") => {
            let round = match record.change.new_image.get("round") {
                Some(serde_dynamo::AttributeValue::N(n)) => n.parse().unwrap_or(1),
                _ => 1,
            };
            Ok(Some(Step::Purge { round }))
        }
        _ => Ok(None),
    }
}

/// Runs one step; `meta` carries the META a step read to a later step of the same conversation in
/// this batch (one read instead of two).
async fn run(
    context: &AppContext,
    conversation_id: &str,
    step: &Step,
    meta: &mut Option<ConversationRecord>,
) -> Result<(), ApiError> {
    match step {
        Step::Sent(messages) => {
            *meta = upkeep::record_sent(context, conversation_id, messages).await?;
            Ok(())
        }
        Step::List(record) => upkeep::list_activity(context, record).await,
        Step::Purge { round } => {
            *meta = None;
            upkeep::purge(context, conversation_id, *round).await
        }
        Step::Changes(changes) => upkeep::record_changes(context, conversation_id, changes, meta.take()).await,
    }
}

/// Handles one batch of stream records; the lowest failed record (if any) is reported.
pub async fn handle(context: &AppContext, event: Event) -> DynamoDbEventResponse {
    // Per conversation, in stream order; a newer listing replaces an older one not yet run.
    let mut work: Vec<(String, Vec<(String, Step)>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    // Per conversation: what the batch changed, with the first record's sequence number.
    let mut changes: HashMap<String, (String, upkeep::Changes)> = HashMap::new();
    for record in &event.records {
        let seq = crate::batch_worker::sequence_number(record);
        if let Some(change) = change(record) {
            let id = conversation_id(record).unwrap_or_default();
            let (_, into) = changes
                .entry(id)
                .or_insert_with(|| (seq.clone(), upkeep::Changes::default()));
            match change {
                Change::Created(message_id) => {
                    into.created.insert(message_id);
                }
                Change::Message(message_id) => {
                    into.message_ids.insert(message_id);
                }
                Change::Joined(user_id) => {
                    into.left.remove(&user_id);
                    into.joined.insert(user_id);
                }
                Change::Left(user_id) => {
                    into.joined.remove(&user_id);
                    into.left.insert(user_id);
                }
                Change::Conversation => into.conversation = true,
            }
        }
        match step(record) {
            Ok(None) => {}
            Ok(Some(step)) => {
                let id = conversation_id(record).unwrap_or_default();
                let slot = *index.entry(id.clone()).or_insert_with(|| {
                    work.push((id, Vec::new()));
                    work.len() - 1
                });
                let steps = &mut work[slot].1;
                if matches!(step, Step::List(_)) && matches!(steps.last(), Some((_, Step::List(_)))) {
                    steps.pop();
                }
                // Consecutive messages are one step (keeping the first's sequence number: a failure
                // retries from there).
                match (step, steps.last_mut()) {
                    (Step::Sent(new), Some((_, Step::Sent(earlier)))) => earlier.extend(new),
                    (step, _) => steps.push((seq, step)),
                }
            }
            Err(e) => {
                // Not a shape this version knows: retrying cannot help, so it is logged and skipped.
                tracing::error!(sequenceNumber = %seq, error = %e, "unreadable stream record");
            }
        }
    }
    for (id, (seq, changed)) in changes {
        let slot = *index.entry(id.clone()).or_insert_with(|| {
            work.push((id, Vec::new()));
            work.len() - 1
        });
        work[slot].1.push((seq, Step::Changes(changed)));
    }
    let failed: Vec<String> = stream::iter(work)
        .map(|(conversation_id, steps)| async move {
            let mut meta = None;
            for (seq, step) in &steps {
                if let Err(e) = run(context, &conversation_id, step, &mut meta).await {
                    tracing::warn!(conversationId = %conversation_id, sequenceNumber = %seq, error = %e, "conversation upkeep failed; the record will be retried");
                    return Some(seq.clone());
                }
            }
            None
        })
        .buffer_unordered(CONCURRENT_CONVERSATIONS)
        .filter_map(|failed| async move { failed })
        .collect()
        .await;
    crate::batch_worker::retry_from_lowest(failed)
}

/// Runs the worker as this process's Lambda function.
pub async fn serve() -> Result<(), lambda_runtime::Error> {
    crate::batch_worker::serve("DynamoDB ChatTable stream", |context, event: Event| async move {
        Ok(handle(context, event).await)
    })
    .await
}
