//! Lambda's SQS event source mappings, from the functions' `Type: SQS` events: pollers that take
//! batches of visible messages from the local queues and invoke the function with an SQS event, then
//! delete what succeeded.
//!
//! As Lambda does it: a batch holds up to `BatchSize` messages (and at most 6 MB of event); with
//! `MaximumBatchingWindowInSeconds: 0` it is whatever is visible when the poller looks (a poller waiting
//! on an empty queue is woken by the send itself, so there is no polling delay), with a window the
//! poller keeps gathering until the batch is full or the window has passed. Batches run concurrently
//! up to `ScalingConfig.MaximumConcurrency` (and the function's instance cap). The batch's messages
//! stay invisible for the queue's visibility timeout while it runs. Then: a response without
//! `ReportBatchItemFailures` deletes the whole batch; with it, everything but the reported
//! `batchItemFailures` is deleted, and a response Lambda cannot read (not JSON, an item identifier that
//! is empty or not in the batch) fails the whole batch; a function error, crash or timeout deletes
//! nothing. Failed messages come back when their visibility timeout ends, with their receive count
//! raised, and the queue's redrive policy moves them to the dead-letter queue after `maxReceiveCount`.
//!
//! From a FIFO queue, a batch is what one receive hands out (see `sqs`): messages of one or more
//! message groups, each group's in order, never a group that another batch still holds. So batches
//! of different groups run concurrently while each group is worked through one batch at a time, and a
//! message that failed holds its group back until it is received again or moved to the dead-letter
//! queue. Lambda has no batching window for FIFO queues (the template check refuses one).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parley_template::{FunctionDefinition, QueueEvent};
use serde_json::{json, Value};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::logs::LogBook;
use crate::runtime::{FunctionPool, InvokeError};
use crate::sqs::{self, Queue, Received, Sqs};
use crate::StackError;

/// Lambda's synchronous invocation payload limit, which bounds a batch.
const MAX_EVENT_BYTES: usize = 6 * 1024 * 1024;

/// The running mappings; pausing them lets messages pile up in the queues.
pub struct EventSources {
    paused: watch::Sender<bool>,
}

impl EventSources {
    pub fn pause(&self, paused: bool) {
        self.paused.send_replace(paused);
    }
}

struct Mapping {
    function: String,
    pool: Arc<FunctionPool>,
    queue: Arc<Queue>,
    sqs: Arc<Sqs>,
    event: QueueEvent,
    slots: Arc<Semaphore>,
    logs: Arc<LogBook>,
}

/// Starts a poller for every enabled SQS event of every function.
///
/// Lambda refuses a mapping whose queue's visibility timeout is shorter than the function's timeout
/// (a batch could come back while it still runs), and so does this, unless the visibility timeout was
/// overridden for a test: then it is only remarked upon.
pub fn start(
    functions: &[FunctionDefinition],
    pools: &HashMap<String, Arc<FunctionPool>>,
    sqs: &Arc<Sqs>,
    max_instances: usize,
    visibility_overridden: bool,
    shutdown: watch::Receiver<bool>,
    logs: &Arc<LogBook>,
) -> Result<EventSources, StackError> {
    let (paused, paused_rx) = watch::channel(false);
    let mut mappings = Vec::new();
    for function in functions {
        for event in &function.queue_events {
            let resource = |problem: String| StackError::Resource {
                resource: function.logical_id.clone(),
                problem: format!("event {}: {problem}", event.name),
            };
            let pool = pools
                .get(&function.logical_id)
                .ok_or_else(|| resource("the function has no instances".to_owned()))?;
            let queue = sqs
                .queue(&event.queue)
                .ok_or_else(|| resource(format!("{} is not a queue of the template", event.queue)))?;
            let visibility = queue.config.visibility_timeout;
            if visibility < pool.spec.timeout {
                let problem = format!(
                    "the visibility timeout of {} ({visibility:?}) is shorter than the function's timeout ({:?})",
                    event.queue, pool.spec.timeout
                );
                if !visibility_overridden {
                    return Err(resource(format!("{problem}, which Lambda refuses")));
                }
                logs.gateway(&format!(
                    "{}: {problem} (overridden for this run): a batch still running may be delivered again",
                    function.logical_id
                ));
            }
            if !event.enabled {
                logs.gateway(&format!(
                    "event source mapping {} -> {} is disabled (Enabled: false)",
                    event.queue, function.logical_id
                ));
                continue;
            }
            let concurrency = event
                .maximum_concurrency
                .map_or(max_instances, |c| (c as usize).min(max_instances))
                .max(1);
            let batching = match queue.config.fifo {
                Some(_) => "FIFO, in order within each message group".to_owned(),
                None => format!("window {} s", event.maximum_batching_window_secs),
            };
            logs.gateway(&format!(
                "event source mapping {} -> {}: batches of up to {}, {batching}, {}, up to {concurrency} at once",
                event.queue,
                function.logical_id,
                event.batch_size,
                if event.report_batch_item_failures {
                    "ReportBatchItemFailures"
                } else {
                    "whole-batch results"
                },
            ));
            mappings.push(Arc::new(Mapping {
                function: function.logical_id.clone(),
                pool: Arc::clone(pool),
                queue: Arc::clone(queue),
                sqs: Arc::clone(sqs),
                event: event.clone(),
                slots: Arc::new(Semaphore::new(concurrency)),
                logs: Arc::clone(logs),
            }));
        }
    }
    for mapping in mappings {
        tokio::spawn(mapping.poll(paused_rx.clone(), shutdown.clone()));
    }
    Ok(EventSources { paused })
}

impl Mapping {
    async fn poll(self: Arc<Self>, mut paused: watch::Receiver<bool>, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                running = paused.wait_for(|paused| !*paused) => if running.is_err() { return },
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
            // A slot first: messages stay in the queue, visible, while every batch slot is busy.
            let slot = tokio::select! {
                slot = Arc::clone(&self.slots).acquire_owned() => match slot {
                    Ok(slot) => slot,
                    Err(_) => return,
                },
                _ = shutdown.wait_for(|stop| *stop) => return,
            };
            let batch = tokio::select! {
                batch = self.gather(&mut paused) => batch,
                _ = shutdown.wait_for(|stop| *stop) => return,
            };
            if let Some(batch) = batch {
                tokio::spawn(Arc::clone(&self).deliver(batch, slot));
            }
        }
    }

    /// The next batch, or None when paused before anything was taken.
    async fn gather(&self, paused: &mut watch::Receiver<bool>) -> Option<Vec<Received>> {
        let batch_size = self.event.batch_size as usize;
        let window = match self.queue.config.fifo {
            Some(_) => Duration::ZERO,
            None => Duration::from_secs(self.event.maximum_batching_window_secs),
        };
        let visibility = self.queue.config.visibility_timeout;
        let mut ready = self.queue.subscribe();
        let mut batch: Vec<Received> = Vec::new();
        let mut bytes = 0;
        let mut window_ends: Option<Instant> = None;
        loop {
            ready.borrow_and_update();
            let room = MAX_EVENT_BYTES.saturating_sub(bytes);
            let outcome = self
                .sqs
                .receive(&self.queue, batch_size - batch.len(), visibility, room);
            bytes += outcome
                .messages
                .iter()
                .map(|m| m.size + sqs::RECORD_OVERHEAD)
                .sum::<usize>();
            for message in outcome.messages {
                // A visibility timeout shorter than the window lets a gathered message come round
                // again: the newer receipt is the one that can delete it.
                match batch.iter_mut().find(|m| m.message_id == message.message_id) {
                    Some(older) => *older = message,
                    None => batch.push(message),
                }
            }
            if !batch.is_empty() {
                let full = batch.len() >= batch_size || outcome.bytes_limited;
                let ends = *window_ends.get_or_insert_with(|| Instant::now() + window);
                if full || Instant::now() >= ends {
                    return Some(batch);
                }
            }
            let wake = [outcome.next_visible, window_ends].into_iter().flatten().min();
            tokio::select! {
                _ = ready.changed() => {}
                _ = sleep_until(wake) => {}
                _ = paused.wait_for(|paused| *paused) => return (!batch.is_empty()).then_some(batch),
            }
        }
    }

    async fn deliver(self: Arc<Self>, batch: Vec<Received>, slot: OwnedSemaphorePermit) {
        let arn = &self.queue.config.arn;
        let records: Vec<Value> = batch.iter().map(|m| sqs::event_record(m, arn)).collect();
        let event = json!({ "Records": records });
        let result = self.pool.invoke(Bytes::from(event.to_string())).await;
        let what = format!("{} (SQS {})", self.function, self.queue.config.name);
        let count = batch.len();
        let failed: HashSet<String> = match result {
            Err(error) => {
                // The pool has already logged the error itself.
                let why = match error {
                    InvokeError::Timeout => "the function timed out".to_owned(),
                    InvokeError::Function(_) => "the function returned an error".to_owned(),
                    InvokeError::Crashed(why) => format!("the instance failed: {why}"),
                    // Lambda's poller backs off; the messages' receive count has still grown, so a
                    // queue whose function is throttled for long sends them to its dead-letter queue.
                    InvokeError::Throttled => "the function was throttled".to_owned(),
                    error @ InvokeError::PayloadTooLarge => error.to_string(),
                };
                self.logs.gateway(&format!(
                    "{what}: the batch of {count} failed ({why}); its messages return after the visibility timeout"
                ));
                return;
            }
            Ok(_) if !self.event.report_batch_item_failures => HashSet::new(),
            Ok(response) => match batch_item_failures(&response, &batch) {
                Ok(failed) => failed,
                Err(problem) => {
                    self.logs.gateway(&format!(
                        "{what}: {problem}, so the whole batch of {count} counts as failed; its messages return \
                         after the visibility timeout"
                    ));
                    return;
                }
            },
        };
        if !failed.is_empty() {
            self.logs.gateway(&format!(
                "{what}: {} of {count} records reported as batch item failures; they return after the visibility \
                 timeout, the other {} are deleted",
                failed.len(),
                count - failed.len()
            ));
        }
        for message in batch.iter().filter(|m| !failed.contains(&m.message_id)) {
            // A handle made stale by a later receive deletes nothing, as in SQS.
            let _ = self.sqs.delete(&self.queue, &message.receipt_handle);
        }
        drop(slot);
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The message ids a ReportBatchItemFailures response names, or why Lambda would fail the whole batch.
/// An empty or null response, or an empty or null `batchItemFailures`, is complete success.
fn batch_item_failures(response: &[u8], batch: &[Received]) -> Result<HashSet<String>, String> {
    if response.iter().all(u8::is_ascii_whitespace) {
        return Ok(HashSet::new());
    }
    let value: Value =
        serde_json::from_slice(response).map_err(|_| "the function's response is not JSON".to_owned())?;
    let failures = match &value {
        Value::Null => return Ok(HashSet::new()),
        Value::Object(object) => match object.get("batchItemFailures") {
            None | Some(Value::Null) => return Ok(HashSet::new()),
            Some(Value::Array(items)) => items,
            Some(_) => return Err("batchItemFailures in the function's response is not a list".to_owned()),
        },
        _ => return Err("the function's response is not a batch item failures object".to_owned()),
    };
    let in_batch: HashSet<&str> = batch.iter().map(|m| m.message_id.as_str()).collect();
    let mut failed = HashSet::new();
    for item in failures {
        match item.get("itemIdentifier") {
            Some(Value::String(id)) if in_batch.contains(id.as_str()) => {
                failed.insert(id.clone());
            }
            Some(Value::String(id)) if !id.is_empty() => {
                return Err(format!("the batch item failure {id:?} is not a message of the batch"))
            }
            _ => return Err("a batch item failure has no itemIdentifier".to_owned()),
        }
    }
    Ok(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(id: &str) -> Received {
        Received {
            message_id: id.into(),
            receipt_handle: String::new(),
            body: String::new(),
            md5_of_body: String::new(),
            attributes: Vec::new(),
            receive_count: 1,
            sent_ms: 0,
            first_receive_ms: 0,
            trace_header: None,
            group_id: None,
            dedup_id: None,
            sequence_number: None,
            dead_letter_source: None,
            size: 0,
        }
    }

    #[test]
    fn batch_item_failures_follow_lambdas_rules() {
        let batch = [received("a"), received("b")];
        let ok = |text: &str| batch_item_failures(text.as_bytes(), &batch);
        for success in [
            "",
            "null",
            "{}",
            r#"{"batchItemFailures":[]}"#,
            r#"{"batchItemFailures":null}"#,
        ] {
            assert_eq!(ok(success), Ok(HashSet::new()), "{success}");
        }
        assert_eq!(
            ok(r#"{"batchItemFailures":[{"itemIdentifier":"b"}]}"#),
            Ok(HashSet::from(["b".to_owned()]))
        );
        for failure in [
            "not json",
            r#""a string""#,
            r#"{"batchItemFailures":"b"}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":"c"}]}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":""}]}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":null}]}"#,
            r#"{"batchItemFailures":[{"id":"a"}]}"#,
        ] {
            assert!(ok(failure).is_err(), "{failure}");
        }
    }
}
