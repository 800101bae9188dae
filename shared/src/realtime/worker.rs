//! The delivery worker: SQS batches of [`Envelope`]s in, frames to connections out.
//!
//! Per batch: every record's recipients are resolved (a piece of members from the cached member list,
//! or named users, or named connections), minus the skipped ones; the events of all records bound for
//! one connection are merged in order and posted as frames of up to [`FRAME_EVENTS`] (a `batch` frame
//! when there are several), which is how events from different requests are coalesced. Then:
//! - a 410 removed the connection; nothing more to do;
//! - a connection whose post failed (after the SDK's own retries) is queued again on its own, with a
//!   delay that doubles per attempt, and after [`DELIVERY_ATTEMPTS`] attempts parked in the dead-letter
//!   queue, whose depth raises an alarm;
//! - a record whose recipients could not be read (DynamoDB failing) is reported as a batch item
//!   failure: SQS gives it back after the visibility timeout, and redrives it to the dead-letter queue
//!   after `maxReceiveCount` receives.
//!
//! Idempotent: a record processed twice posts its events twice, which at-least-once allows and clients
//! absorb by deduplicating on ids; no state changes but the removal of gone connections.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use serde_json::Value;

use super::fanout::{Connection, Posted};
use super::publisher::{piece_of, Envelope, Target};
use super::{events, Delivery, Skip, FRAME_EVENTS};
use crate::error::ApiError;
use crate::AppContext;

/// Attempts per connection before its events are parked in the dead-letter queue.
pub const DELIVERY_ATTEMPTS: u32 = 4;

/// The delay before attempt `attempt` (1-based retries): 1 s, 2 s, 4 s, ...
fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(1 << attempt.saturating_sub(1).min(9))
}

/// Handles one SQS batch; the records to retry are reported, the rest are done.
pub async fn handle(context: &AppContext, event: SqsEvent) -> SqsBatchResponse {
    let mut envelopes = Vec::with_capacity(event.records.len());
    let mut failures = Vec::new();
    // FIFO: a record that fails holds back the rest of its message group in this batch, so they go back
    // with it and come again in order (Lambda requires this of FIFO batch item failures).
    let groups: Vec<(String, Option<String>)> = event
        .records
        .iter()
        .map(|r| {
            (
                r.message_id.clone().unwrap_or_default(),
                r.attributes.get("MessageGroupId").cloned(),
            )
        })
        .collect();
    for record in event.records {
        let id = record.message_id.unwrap_or_default();
        match record.body.as_deref().map(serde_json::from_str::<Envelope>) {
            Some(Ok(envelope)) => envelopes.push((id, envelope)),
            other => {
                // Not ours, or from a newer version: let SQS park it in the dead-letter queue.
                tracing::error!(messageId = %id, problem = ?other.map(|r| r.err().map(|e| e.to_string())), "unreadable delivery record");
                failures.push(id);
            }
        }
    }
    failures.extend(deliver(context, envelopes).await);
    let mut held_back = Vec::new();
    for (index, (id, group)) in groups.iter().enumerate() {
        if failures.contains(id) {
            if let Some(group) = group {
                held_back.extend(
                    groups[index + 1..]
                        .iter()
                        .filter(|(_, g)| g.as_ref() == Some(group))
                        .map(|(later, _)| later.clone()),
                );
            }
        }
    }
    failures.extend(held_back);
    failures.sort();
    failures.dedup();
    crate::batch_worker::sqs_failures(failures)
}

/// Delivers envelopes in this process (no queue configured): retries are not possible here, so what
/// fails is logged and counted.
pub async fn deliver_now(context: &AppContext, envelopes: Vec<Envelope>) {
    let keyed = envelopes
        .into_iter()
        .enumerate()
        .map(|(i, e)| (i.to_string(), e))
        .collect();
    let failed = deliver(context, keyed).await;
    if !failed.is_empty() {
        tracing::warn!(
            envelopes = failed.len(),
            "in-process delivery could not read the recipients"
        );
    }
}

/// The envelopes without those a later presence change superseded (one consistent GetItem per user
/// with a delayed presence among them); a record whose check cannot be read is to be retried.
async fn current(context: &AppContext, envelopes: Vec<(String, Envelope)>) -> (Vec<(String, Envelope)>, Vec<String>) {
    let users: std::collections::BTreeSet<&str> = envelopes
        .iter()
        .filter_map(|(_, e)| e.presence_version.as_ref().map(|p| p.user_id.as_str()))
        .collect();
    if users.is_empty() {
        return (envelopes, Vec::new());
    }
    let versions: BTreeMap<String, Result<u64, ApiError>> =
        futures_util::future::join_all(users.into_iter().map(|user| async move {
            let state = context.store.presence_state(user).await;
            (user.to_owned(), state.map(|s| s.map_or(0, |s| s.version)))
        }))
        .await
        .into_iter()
        .collect();
    let mut kept = Vec::with_capacity(envelopes.len());
    let mut failed = Vec::new();
    for (id, envelope) in envelopes {
        match &envelope.presence_version {
            None => kept.push((id, envelope)),
            Some(gate) => match &versions[&gate.user_id] {
                Ok(version) if *version == gate.version => kept.push((id, envelope)),
                Ok(_) => {} // superseded: a later change went (or goes) out instead
                Err(e) => {
                    tracing::warn!(messageId = %id, error = %e, "could not read the presence version; the record will be retried");
                    failed.push(id);
                }
            },
        }
    }
    (kept, failed)
}

/// Delivers the envelopes (keyed by record id); returns the ids of records to retry whole.
async fn deliver(context: &AppContext, envelopes: Vec<(String, Envelope)>) -> Vec<String> {
    let (envelopes, mut failed_records) = current(context, envelopes).await;
    let mut delivery = Delivery::default();
    // Per connection: its events in arrival order, and the records they came from.
    let mut outbox: BTreeMap<Connection, (Vec<Value>, Vec<usize>, u32)> = BTreeMap::new();
    // Each conversation's member list once (its pieces would otherwise all miss the cache together),
    // then every record's recipients at once: a 1000-member message is 10 pieces, often in one batch,
    // and their connection-set reads need not wait for each other.
    let mut conversations: BTreeMap<&str, u64> = BTreeMap::new();
    for (_, envelope) in &envelopes {
        if let Target::Piece {
            conversation_id,
            members_version,
            ..
        } = &envelope.to
        {
            let version = conversations.entry(conversation_id).or_default();
            *version = (*version).max(*members_version);
        }
    }
    // A failure here is met again, and reported per record, below.
    let _ = futures_util::future::join_all(
        conversations
            .iter()
            .map(|(id, version)| context.fanout.members(&context.store, id, *version)),
    )
    .await;
    let resolved = futures_util::future::join_all(envelopes.iter().map(|(_, e)| recipients(context, e))).await;
    // Per envelope, the users it was for: those none of whose connections took a new message are
    // pushed (see `push`).
    let mut audiences: Vec<Vec<String>> = vec![Vec::new(); envelopes.len()];
    for (index, ((id, envelope), found)) in envelopes.iter().zip(resolved).enumerate() {
        let (members, connections) = match found {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(messageId = %id, error = %e, "could not read the recipients; the record will be retried");
                failed_records.push(id.clone());
                continue;
            }
        };
        delivery.members += members.len();
        audiences[index] = members;
        for connection in connections {
            let skipped = match &envelope.skip {
                Skip::Nobody => false,
                Skip::Connection(c) => *c == connection.connection_id,
                Skip::User(u) => *u == connection.user_id,
                Skip::Users(users) => users.contains(&connection.user_id),
            };
            if skipped {
                continue;
            }
            let (events, sources, attempt) = outbox.entry(connection).or_default();
            for event in &envelope.events {
                // The same event twice in one batch (a retried send's and the original's) goes out once.
                if !events.contains(event) {
                    events.push(event.clone());
                }
            }
            sources.push(index);
            *attempt = (*attempt).max(envelope.attempt);
        }
    }
    delivery.connections = outbox.len();

    let frames: Vec<(Connection, Value)> = outbox
        .iter()
        .flat_map(|(connection, (events, _, _))| {
            events
                .chunks(FRAME_EVENTS)
                .map(|chunk| (connection.clone(), events::frame(chunk)))
                .collect::<Vec<_>>()
        })
        .collect();
    let outcomes = context.fanout.post_all(&context.store, frames).await;
    let mut worst: BTreeMap<Connection, Posted> = BTreeMap::new();
    for (connection, posted) in outcomes {
        let entry = worst.entry(connection).or_insert(Posted::Delivered);
        *entry = match (*entry, posted) {
            (Posted::Gone, _) | (_, Posted::Gone) => Posted::Gone,
            (Posted::Failed, _) | (_, Posted::Failed) => Posted::Failed,
            _ => Posted::Delivered,
        };
    }
    push_offline(context, &envelopes, &audiences, &worst).await;

    // Connections to try again, grouped by the events they still need.
    let mut retries: BTreeMap<(String, u32), Vec<Connection>> = BTreeMap::new();
    let mut retry_sources: BTreeMap<(String, u32), Vec<usize>> = BTreeMap::new();
    for (connection, posted) in worst {
        match posted {
            Posted::Delivered => delivery.delivered += 1,
            Posted::Gone => delivery.gone += 1,
            Posted::Failed => {
                delivery.failed += 1;
                let (events, sources, attempt) = &outbox[&connection];
                let key = (Value::Array(events.clone()).to_string(), attempt + 1);
                retry_sources.entry(key.clone()).or_default().extend(sources);
                retries.entry(key).or_default().push(connection);
            }
        }
    }
    if !retries.is_empty() {
        failed_records.extend(retry(context, retries, retry_sources, &envelopes).await);
    }
    let kinds: Vec<&str> = envelopes
        .iter()
        .flat_map(|(_, e)| e.events.iter().filter_map(|v| v["type"].as_str()))
        .collect();
    tracing::info!(records = envelopes.len(), events = ?kinds, delivery = ?delivery, "delivery");
    crate::metrics::fanout(&delivery);
    failed_records.sort();
    failed_records.dedup();
    failed_records
}

/// Queues failed connections again with backoff, or parks them; the records whose retries could not be
/// queued are returned, to be retried whole by SQS.
async fn retry(
    context: &AppContext,
    retries: BTreeMap<(String, u32), Vec<Connection>>,
    sources: BTreeMap<(String, u32), Vec<usize>>,
    envelopes: &[(String, Envelope)],
) -> Vec<String> {
    let mut unqueued = Vec::new();
    for ((events, attempt), connections) in retries {
        let events: Vec<Value> = serde_json::from_str(&events).unwrap_or_default();
        let envelope = Envelope {
            events,
            to: Target::Connections(connections),
            skip: Skip::Nobody,
            attempt,
            presence_version: None,
        };
        let outcome = if attempt >= DELIVERY_ATTEMPTS {
            tracing::error!(
                attempt,
                "delivery failed every attempt; parking it in the dead-letter queue"
            );
            crate::metrics::count("DeliveriesParked", 1.0);
            context.publisher.park(std::slice::from_ref(&envelope)).await
        } else {
            context
                .publisher
                .requeue(std::slice::from_ref(&envelope), backoff(attempt))
                .await
        };
        if let Err(e) = outcome {
            tracing::warn!(error = %e, "could not queue a retry; the records go back to SQS");
            let key = (Value::Array(envelope.events.clone()).to_string(), envelope.attempt);
            for index in sources.get(&key).into_iter().flatten() {
                unqueued.push(envelopes[*index].0.clone());
            }
        }
    }
    unqueued
}

/// Hands the push worker every new message of a first delivery, with the users it was for none of
/// whose connections took it (no connection, or only failed posts): they are offline.
async fn push_offline(
    context: &AppContext,
    envelopes: &[(String, Envelope)],
    audiences: &[Vec<String>],
    posted: &BTreeMap<Connection, Posted>,
) {
    if context.push.settings.queue_url.is_none() {
        return;
    }
    let online: std::collections::BTreeSet<&str> = posted
        .iter()
        .filter(|(_, p)| **p == Posted::Delivered)
        .map(|(c, _)| c.user_id.as_str())
        .collect();
    let jobs = push_jobs(envelopes, audiences, &online);
    if jobs.is_empty() {
        return;
    }
    if let Err(e) = crate::push::worker::queue(context, &jobs, Duration::ZERO).await {
        tracing::warn!(error = %e, jobs = jobs.len(), "could not queue push jobs; those pushes are lost");
    }
}

/// The push jobs of a delivery: for each new message of a first delivery, the users it was for who
/// are not `online` (none of their connections took it), never its sender.
fn push_jobs(
    envelopes: &[(String, Envelope)],
    audiences: &[Vec<String>],
    online: &std::collections::BTreeSet<&str>,
) -> Vec<crate::push::PushJob> {
    let mut jobs = Vec::new();
    for ((_, envelope), audience) in envelopes.iter().zip(audiences) {
        if envelope.attempt > 0 || matches!(envelope.to, Target::Connections(_)) {
            continue;
        }
        for event in envelope.events.iter().filter(|e| e["type"] == "message.new") {
            // The sender is never pushed, and a WebSocket send skips the sender's own connection, so
            // they would look offline here: left out before anything is queued.
            let sender = event["message"]["senderId"].as_str().unwrap_or_default();
            let users: Vec<String> = audience
                .iter()
                .filter(|u| !online.contains(u.as_str()) && *u != sender)
                .cloned()
                .collect();
            if users.is_empty() {
                continue;
            }
            if let Some(job) = crate::push::PushJob::for_new_message(&event["message"], users) {
                jobs.push(job);
            }
        }
    }
    jobs
}

/// The users an envelope is for (none for a retry's connections) and their open connections.
async fn recipients(context: &AppContext, envelope: &Envelope) -> Result<(Vec<String>, Vec<Connection>), ApiError> {
    match &envelope.to {
        Target::Connections(connections) => Ok((Vec::new(), connections.clone())),
        Target::Users(users) => Ok((users.clone(), context.fanout.connections(&context.store, users).await?)),
        Target::Piece {
            conversation_id,
            members_version,
            piece,
            pieces,
        } => {
            let members = context
                .fanout
                .members(&context.store, conversation_id, *members_version)
                .await?;
            let mine: Vec<String> = members
                .iter()
                .filter(|m| piece_of(m, *pieces) == *piece)
                .cloned()
                .collect();
            let connections = context.fanout.connections(&context.store, &mine).await?;
            Ok((mine, connections))
        }
    }
}

/// Runs the worker as this process's Lambda function.
pub async fn serve() -> Result<(), lambda_runtime::Error> {
    crate::batch_worker::serve("SQS DeliveryQueue", |context, event: SqsEvent| async move {
        Ok(handle(context, event).await)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_message(sender: &str) -> Envelope {
        Envelope {
            events: vec![serde_json::json!({"type": "message.new", "message": {
                "id": "m", "conversationId": "c", "seq": 1, "senderId": sender, "body": "hi"
            }})],
            to: Target::Users(vec![]),
            skip: Skip::Nobody,
            attempt: 0,
            presence_version: None,
        }
    }

    #[test]
    fn only_members_no_connection_took_it_are_pushed_never_the_sender() {
        let envelopes = vec![("1".to_owned(), new_message("alice"))];
        let audience = vec![vec!["alice".to_owned(), "bob".to_owned(), "carol".to_owned()]];
        let online = std::collections::BTreeSet::from(["carol"]);
        let jobs = push_jobs(&envelopes, &audience, &online);
        assert_eq!(jobs.len(), 1);
        match &jobs[0] {
            crate::push::PushJob::Message { users, .. } => assert_eq!(users, &["bob".to_owned()]),
            other => panic!("{other:?}"),
        }
        // Everyone else online: the sender alone (whose own connection a WebSocket send skips) queues nothing.
        let online = std::collections::BTreeSet::from(["bob", "carol"]);
        assert!(push_jobs(&envelopes, &audience, &online).is_empty());
        // A retry's envelope never pushes.
        let mut retry = new_message("alice");
        retry.attempt = 1;
        assert!(push_jobs(
            &[("2".to_owned(), retry)],
            &audience,
            &std::collections::BTreeSet::new()
        )
        .is_empty());
    }

    #[test]
    fn backoff_doubles() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(3), Duration::from_secs(4));
    }
}
