//! The search indexer: the table's stream records of message items (the template's filter lets
//! through only `SK` beginning `MSG#`), turned into index writes (`search::indexer`).
//!
//! The records of one message are taken together, in stream order: what its last image says is put,
//! and what any earlier image (or the record before the batch, through the first record's old image)
//! may have put and the last no longer has is deleted. Messages run concurrently; a message whose writes
//! fail is reported by its first record's sequence number, and Lambda retries from the lowest one
//! reported (what comes after is done again, which the writes allow: they are idempotent).

use std::collections::HashMap;

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use futures_util::stream::{self, StreamExt};

use crate::context::AppContext;
use crate::search::indexer::{self, Indexed};
use crate::store::keys;

/// Messages indexed at once.
const CONCURRENT_MESSAGES: usize = 8;

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
    /// Every image before the last: the first record's old image, then each record's new image but
    /// the last one's.
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
        let old = (!record.change.old_image.is_empty()).then(|| Indexed::of_image(&record.change.old_image));
        let new = match record.event_name.as_str() {
            "REMOVE" => Indexed::default(),
            _ => Indexed::of_image(&record.change.new_image),
        };
        match index.get(&message_id) {
            Some(&slot) => {
                let entry = &mut work[slot];
                let previous = std::mem::replace(&mut entry.after, new);
                entry.before.push(previous);
                entry.before.extend(old);
            }
            None => {
                index.insert(message_id.clone(), work.len());
                work.push(Work {
                    conversation_id,
                    message_id,
                    first_sequence: crate::batch_worker::sequence_number(record),
                    before: old.into_iter().collect(),
                    after: new,
                });
            }
        }
    }
    let failed: Vec<String> = stream::iter(work)
        .map(|w| async move {
            match indexer::apply(context, &w.conversation_id, &w.message_id, &w.before, &w.after).await {
                Ok(_) => None,
                Err(e) => {
                    tracing::warn!(conversationId = %w.conversation_id, messageId = %w.message_id, sequenceNumber = %w.first_sequence, error = %e, "indexing failed; the record will be retried");
                    Some(w.first_sequence)
                }
            }
        })
        .buffer_unordered(CONCURRENT_MESSAGES)
        .filter_map(|failed| async move { failed })
        .collect()
        .await;
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
