//! The search indexer: the table's stream records of message items (the template's filter lets
//! through only `SK` beginning `MSG#`), turned into index writes (`search::indexer`).
//!
//! The records of one message are taken together, in stream order: its one index item is put with
//! what its last image says, or deleted when that has no words and an earlier image (or the record
//! before the batch, through the first record's old image) had some. The batch's writes (at most one
//! per message) go 25 to a BatchWriteItem, a few calls at once: a batch of 100 records is at most 4
//! calls. A call that fails is reported by the lowest first-record sequence number of its messages,
//! and Lambda retries from the lowest one reported (what comes after is done again, which the writes
//! allow: they are idempotent).

use std::collections::HashMap;

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use futures_util::stream::{self, StreamExt};

use crate::context::AppContext;
use crate::search::indexer::{self, Indexed};
use crate::store::{keys, IndexWrite, INDEX_WRITES_PER_CALL};

/// BatchWriteItem calls of one batch in flight at once.
const CONCURRENT_CALLS: usize = 4;

fn key_of(record: &EventRecord, name: &str) -> Option<String> {
    match record.change.keys.get(name) {
        Some(serde_dynamo::AttributeValue::S(s)) => Some(s.clone()),
        _ => None,
    }
}

/// `(conversationId, messageId)` of a message item's record; `None` for any other item (an item
/// whose sort key merely starts with `MSG#`).
fn message_of(record: &EventRecord) -> Option<(String, String)> {
    let conversation = key_of(record, "PK")?.strip_prefix("CONV#")?.to_owned();
    let message = key_of(record, "SK")?.strip_prefix(keys::MESSAGE_PREFIX)?.to_owned();
    (!message.is_empty() && !message.contains('#')).then_some((conversation, message))
}

/// One message's records in the batch.
struct Work {
    conversation_id: String,
    message_id: String,
    first_sequence: String,
    /// Every image before the last: the first record's old image (no words for an INSERT: there was
    /// no item before it), then each record's new image but the last one's.
    before: Vec<Indexed>,
    after: Indexed,
}

/// Handles one batch of stream records; the lowest failed record (if any) is reported.
pub async fn handle(context: &AppContext, event: Event) -> DynamoDbEventResponse {
    let mut work: Vec<Work> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for record in &event.records {
        let Some((conversation_id, message_id)) = message_of(record) else {
            continue;
        };
        // No old image (an INSERT): nothing was indexed before, as for an image without words.
        let old = Indexed::of_image(&record.change.old_image);
        let new = match record.event_name.as_str() {
            "REMOVE" => Indexed::default(),
            _ => Indexed::of_image(&record.change.new_image),
        };
        match index.get(&message_id) {
            Some(&slot) => {
                let entry = &mut work[slot];
                let previous = std::mem::replace(&mut entry.after, new);
                entry.before.push(previous);
                entry.before.push(old);
            }
            None => {
                index.insert(message_id.clone(), work.len());
                work.push(Work {
                    conversation_id,
                    message_id,
                    first_sequence: crate::batch_worker::sequence_number(record),
                    before: vec![old],
                    after: new,
                });
            }
        }
    }
    // One write at most per message, with the sequence number to retry it from.
    let mut writes: Vec<(String, IndexWrite)> = work
        .into_iter()
        .filter_map(|w| {
            indexer::change(&w.conversation_id, &w.message_id, &w.before, &w.after)
                .map(|write| (w.first_sequence, write))
        })
        .collect();
    let mut calls: Vec<(Vec<String>, Vec<IndexWrite>)> = Vec::new();
    while !writes.is_empty() {
        let rest = writes.split_off(writes.len().min(INDEX_WRITES_PER_CALL));
        calls.push(std::mem::replace(&mut writes, rest).into_iter().unzip());
    }
    let failed: Vec<Vec<String>> = stream::iter(calls)
        .map(|(sequences, writes)| async move {
            match indexer::apply(context, &writes).await {
                Ok(()) => Vec::new(),
                Err(e) => {
                    tracing::warn!(messages = writes.len(), error = %e, "indexing failed; the records will be retried");
                    sequences
                }
            }
        })
        .buffer_unordered(CONCURRENT_CALLS)
        .collect()
        .await;
    let failed: Vec<String> = failed.into_iter().flatten().collect();
    crate::batch_worker::retry_from_lowest(failed)
}

/// The attributes of a message image the index reads; the rest is dropped before the event is read,
/// so no other attribute's shape (or one a later version adds) can make a batch unreadable, and a
/// message's reactions and mentions cost no parsing here.
const READ_ATTRIBUTES: [&str; 5] = ["PK", "SK", "body", "encrypted", "deleted"];

/// Lambda's stream event as JSON, with every image cut down to [`READ_ATTRIBUTES`].
pub fn read_event(mut payload: serde_json::Value) -> Result<Event, serde_json::Error> {
    if let Some(records) = payload.get_mut("Records").and_then(serde_json::Value::as_array_mut) {
        for record in records {
            for image in ["/dynamodb/NewImage", "/dynamodb/OldImage"] {
                if let Some(attributes) = record.pointer_mut(image).and_then(serde_json::Value::as_object_mut) {
                    attributes.retain(|name, _| READ_ATTRIBUTES.contains(&name.as_str()));
                }
            }
        }
    }
    serde_json::from_value(payload)
}

/// Runs the indexer as this process's Lambda function.
pub async fn serve() -> Result<(), lambda_runtime::Error> {
    crate::batch_worker::serve(
        "DynamoDB ChatTable stream (search index)",
        |context, payload: serde_json::Value| async move {
            // An unreadable batch fails the invocation: Lambda retries it, then parks it.
            let event = read_event(payload).map_err(|e| {
                tracing::error!(error = %e, "unreadable stream batch");
                lambda_runtime::Error::from(format!("unreadable stream batch: {e}"))
            })?;
            Ok(handle(context, event).await)
        },
    )
    .await
}
