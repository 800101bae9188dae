//! A local stand-in for Amazon SQS, standard and FIFO queues: the template's `AWS::SQS::Queue`s,
//! created when the stack starts and kept in memory, served on the gateway's WebSocket port in the
//! protocol `aws-sdk-sqs` speaks, so the functions (through `AWS_ENDPOINT_URL_SQS`) and tests use the
//! real client.
//!
//! The protocol is AWS JSON 1.0: `POST /` with `X-Amz-Target: AmazonSQS.<Operation>` and
//! `Content-Type: application/x-amz-json-1.0`, a JSON object each way. SQS is an awsQuery-compatible
//! service: an error is a 400 with `{"__type": "com.amazonaws.sqs#<Shape>", "message": ...}` and the
//! header `x-amzn-query-error: <query code>;Sender`, and the SDK matches on the query code
//! (`AWS.SimpleQueueService.NonExistentQueue` is what makes `is_queue_does_not_exist()` true).
//!
//! Served: SendMessage, SendMessageBatch, ReceiveMessage (long polling included), DeleteMessage,
//! DeleteMessageBatch, ChangeMessageVisibility, ChangeMessageVisibilityBatch, GetQueueUrl,
//! GetQueueAttributes, ListQueues and PurgeQueue. Anything else (CreateQueue, SetQueueAttributes, tags,
//! permissions, message move tasks) is `UnsupportedOperation`: the queues are the template's.
//!
//! Semantics are SQS's: a received message is invisible for the visibility timeout and comes back
//! unless deleted; every receive gets a new receipt handle, and only the latest one deletes (an older
//! one "succeeds" and deletes nothing, as the SQS documentation says); `DelaySeconds` hides a new
//! message; a message whose receive count already reached a redrive policy's `maxReceiveCount` is moved
//! to the dead-letter queue by the next receive instead of being returned; messages older than the
//! retention period are dropped. Queue metrics go to the CloudWatch stand-in (`AWS/SQS`, `QueueName`).
//!
//! FIFO queues (named `<name>.fifo`) add SQS's FIFO rules: every message needs a `MessageGroupId`, and a
//! `MessageDeduplicationId` unless the queue has content-based deduplication (the SHA-256 of the body);
//! a deduplication id seen in the last five minutes (in the queue, or in the message group with
//! `DeduplicationScope: messageGroup`) is accepted and answered with the first message's id, but not
//! queued again; per-message delays are refused; every message gets an increasing `SequenceNumber`.
//! A receive hands out a group's messages in the order they were sent, and none of a group while any
//! of its messages is in flight; it takes as many as it can from the group whose next message is
//! oldest before it turns to the next group.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use md5::{Digest, Md5};
use parley_template::{DeduplicationScope, FifoSettings};
use serde_json::{json, Map, Value};
use sha2::Sha256;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use crate::ids::{self, ACCOUNT_ID};
use crate::logs::LogBook;
use crate::metrics::{Datapoint, Point, SeriesKey};

pub const TARGET_PREFIX: &str = "AmazonSQS.";
const CONTENT_TYPE: &str = "application/x-amz-json-1.0";
/// SendMessageBatch, DeleteMessageBatch, ChangeMessageVisibilityBatch.
pub const MAX_BATCH_ENTRIES: usize = 10;
/// The sum of a SendMessageBatch's message sizes.
pub const MAX_BATCH_BYTES: usize = 1_048_576;
/// A batch of 1 MiB with binary attributes in base64 and the JSON around it fits.
const MAX_REQUEST_BYTES: usize = 4 * 1_048_576;
const MAX_VISIBILITY_SECS: u64 = 43_200;
const MAX_DELAY_SECS: u64 = 900;
const MAX_WAIT_SECS: u64 = 20;
const MAX_MESSAGE_ATTRIBUTES: usize = 10;
/// What a message adds to a Lambda event beyond its body and attributes (ids, handle, attributes, ARN).
pub const RECORD_OVERHEAD: usize = 1024;
const PURGE_INTERVAL: Duration = Duration::from_secs(60);
/// How often the queue metrics are published when nothing changes (SQS: once a minute).
const METRICS_EVERY: Duration = Duration::from_secs(5);
/// At most one publication a second, however busy the queues.
const METRICS_AT_MOST_EVERY: Duration = Duration::from_secs(1);
/// Receives from someone not authenticated as a user: the local account's root.
const SENDER_ID: &str = ACCOUNT_ID;
/// How long a FIFO queue remembers a deduplication id.
const DEDUPLICATION_INTERVAL: Duration = Duration::from_secs(300);
/// `MessageGroupId` and `MessageDeduplicationId`: up to 128 ASCII letters, digits and punctuation.
const MAX_FIFO_ID_LENGTH: usize = 128;

type HttpResponse = Response<Full<Bytes>>;

/// Whether a request on the gateway's WebSocket port is for this API.
pub fn serves<B>(request: &Request<B>) -> bool {
    crate::is_aws_json_call(request, TARGET_PREFIX)
}

// ---- queues and messages ----

#[derive(Debug, Clone)]
pub struct Redrive {
    /// The dead-letter queue's name.
    pub target: String,
    pub target_arn: String,
    pub max_receive_count: u32,
}

#[derive(Debug, Clone)]
pub struct QueueConfig {
    pub logical_id: String,
    pub name: String,
    pub arn: String,
    pub url: String,
    pub visibility_timeout: Duration,
    pub delay: Duration,
    pub retention: Duration,
    pub maximum_message_size: usize,
    pub receive_wait: Duration,
    pub sqs_managed_sse: bool,
    pub redrive: Option<Redrive>,
    /// None for a standard queue.
    pub fifo: Option<FifoSettings>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributeData {
    /// `String` and `Number` types (and their `.custom` variants).
    Text(String),
    Binary(Vec<u8>),
}

/// A message attribute (or the one system attribute, `AWSTraceHeader`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub name: String,
    pub data_type: String,
    pub data: AttributeData,
}

impl Attribute {
    fn size(&self) -> usize {
        self.name.len()
            + self.data_type.len()
            + match &self.data {
                AttributeData::Text(text) => text.len(),
                AttributeData::Binary(bytes) => bytes.len(),
            }
    }
}

pub fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// SQS's digest of message attributes: for each attribute in name order, the length-prefixed (4 bytes,
/// big-endian) name and data type, a transport byte (1 text, 2 binary) and the length-prefixed value.
pub fn md5_of_attributes(attributes: &[Attribute]) -> Option<String> {
    if attributes.is_empty() {
        return None;
    }
    let mut sorted: Vec<&Attribute> = attributes.iter().collect();
    sorted.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    let mut buffer = Vec::new();
    let put = |bytes: &[u8], buffer: &mut Vec<u8>| {
        buffer.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        buffer.extend_from_slice(bytes);
    };
    for attribute in sorted {
        put(attribute.name.as_bytes(), &mut buffer);
        put(attribute.data_type.as_bytes(), &mut buffer);
        match &attribute.data {
            AttributeData::Text(text) => {
                buffer.push(1);
                put(text.as_bytes(), &mut buffer);
            }
            AttributeData::Binary(bytes) => {
                buffer.push(2);
                put(bytes, &mut buffer);
            }
        }
    }
    Some(md5_hex(&buffer))
}

#[derive(Debug, Clone)]
struct Message {
    id: String,
    body: String,
    md5_of_body: String,
    attributes: Vec<Attribute>,
    trace_header: Option<String>,
    group_id: Option<String>,
    dedup_id: Option<String>,
    /// A FIFO queue's `SequenceNumber`.
    sequence: Option<u128>,
    sent_ms: u64,
    sent_at: Instant,
    /// When it entered this queue (a dead-letter queue's age metric counts from the move).
    entered_at: Instant,
    visible_at: Instant,
    /// When the latest receive happened: ChangeMessageVisibility cannot reach past 12 hours from it.
    received_at: Option<Instant>,
    receive_count: u32,
    first_receive_ms: Option<u64>,
    receipt: Option<String>,
    dead_letter_source: Option<String>,
}

impl Message {
    fn size(&self) -> usize {
        self.body.len() + self.attributes.iter().map(Attribute::size).sum::<usize>()
    }

    /// Received, and neither deleted nor back to visible yet.
    fn in_flight(&self, now: Instant) -> bool {
        self.receipt.is_some() && self.visible_at > now
    }

    fn group(&self) -> &str {
        self.group_id.as_deref().unwrap_or_default()
    }
}

/// A message as one receive handed it out.
#[derive(Debug, Clone)]
pub struct Received {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
    pub md5_of_body: String,
    pub attributes: Vec<Attribute>,
    pub receive_count: u32,
    pub sent_ms: u64,
    pub first_receive_ms: u64,
    pub trace_header: Option<String>,
    pub group_id: Option<String>,
    pub dedup_id: Option<String>,
    pub sequence_number: Option<String>,
    pub dead_letter_source: Option<String>,
    /// The message's size (body and attributes), as SQS counts it.
    pub size: usize,
}

impl Received {
    /// The system attributes SQS can return, by name, as strings.
    pub fn system_attributes(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![
            ("ApproximateReceiveCount", self.receive_count.to_string()),
            ("SentTimestamp", self.sent_ms.to_string()),
            ("SenderId", SENDER_ID.to_owned()),
            ("ApproximateFirstReceiveTimestamp", self.first_receive_ms.to_string()),
        ];
        if let Some(trace) = &self.trace_header {
            out.push(("AWSTraceHeader", trace.clone()));
        }
        if let Some(group) = &self.group_id {
            out.push(("MessageGroupId", group.clone()));
        }
        if let Some(dedup) = &self.dedup_id {
            out.push(("MessageDeduplicationId", dedup.clone()));
        }
        if let Some(sequence) = &self.sequence_number {
            out.push(("SequenceNumber", sequence.clone()));
        }
        if let Some(source) = &self.dead_letter_source {
            out.push(("DeadLetterQueueSourceArn", source.clone()));
        }
        out
    }
}

/// A message to enqueue, checked.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub body: String,
    pub delay: Duration,
    pub attributes: Vec<Attribute>,
    pub trace_header: Option<String>,
    pub group_id: Option<String>,
    /// A FIFO queue's, given or from the body.
    pub dedup_id: Option<String>,
}

/// What SendMessage answers.
#[derive(Debug, Clone)]
pub struct Sent {
    pub message_id: String,
    pub md5_of_body: String,
    pub md5_of_attributes: Option<String>,
    pub md5_of_system_attributes: Option<String>,
    pub sequence_number: Option<String>,
}

/// Messages of a queue by state, as GetQueueAttributes counts them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Depth {
    pub visible: usize,
    pub in_flight: usize,
    pub delayed: usize,
}

#[derive(Debug, Default)]
struct Counters {
    sent: u64,
    received: u64,
    deleted: u64,
    empty_receives: u64,
}

/// A FIFO send that a later one with the same deduplication id is answered with.
#[derive(Debug, Clone)]
struct FirstSend {
    at: Instant,
    message_id: String,
    sequence: Option<u128>,
}

#[derive(Default)]
struct State {
    /// By arrival, oldest first: a receive hands out the oldest visible messages.
    messages: BTreeMap<u64, Message>,
    by_id: HashMap<String, u64>,
    next_seq: u64,
    counters: Counters,
    last_purge: Option<Instant>,
    /// A FIFO queue's deduplication ids of the last interval, by (message group, when the scope is the
    /// group; deduplication id).
    deduplication: HashMap<(Option<String>, String), FirstSend>,
    last_sequence: u128,
}

impl State {
    fn insert(&mut self, message: Message) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.by_id.insert(message.id.clone(), seq);
        self.messages.insert(seq, message);
    }

    fn remove(&mut self, id: &str) -> Option<Message> {
        let seq = self.by_id.remove(id)?;
        self.messages.remove(&seq)
    }

    fn find_mut(&mut self, id: &str) -> Option<&mut Message> {
        let seq = self.by_id.get(id)?;
        self.messages.get_mut(seq)
    }

    fn expire(&mut self, retention: Duration, now: Instant) {
        let expired: Vec<String> = self
            .messages
            .values()
            .filter(|m| now.duration_since(m.sent_at) >= retention)
            .map(|m| m.id.clone())
            .collect();
        for id in expired {
            self.remove(&id);
        }
    }

    fn depth(&self, now: Instant) -> Depth {
        let mut depth = Depth::default();
        for message in self.messages.values() {
            if message.visible_at <= now {
                depth.visible += 1;
            } else if message.receive_count == 0 {
                depth.delayed += 1;
            } else {
                depth.in_flight += 1;
            }
        }
        depth
    }

    /// Increasing in the queue and, like SQS's, not consecutive over time, so no client can take them
    /// for a count.
    fn next_sequence(&mut self, now_ms: u64) -> u128 {
        self.last_sequence = (self.last_sequence + 1).max(u128::from(now_ms) * 10_000_000);
        self.last_sequence
    }

    /// A FIFO queue's receivable messages in the order a receive takes them: group by group, the group
    /// whose next message is oldest first, each group's in send order up to its first hidden message;
    /// a group with a message in flight has none.
    fn fifo_candidates(&self, now: Instant) -> Vec<u64> {
        let mut held: HashSet<&str> = self
            .messages
            .values()
            .filter(|m| m.in_flight(now))
            .map(Message::group)
            .collect();
        let mut groups: Vec<Vec<u64>> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (seq, message) in &self.messages {
            let group = message.group();
            if held.contains(group) {
                continue;
            }
            if message.visible_at > now {
                // Delayed: the group's later messages wait behind it.
                held.insert(group);
                continue;
            }
            let at = *index.entry(group).or_insert_with(|| {
                groups.push(Vec::new());
                groups.len() - 1
            });
            groups[at].push(*seq);
        }
        groups.into_iter().flatten().collect()
    }

    fn groups_in_flight(&self, now: Instant) -> usize {
        self.messages
            .values()
            .filter(|m| m.in_flight(now))
            .map(Message::group)
            .collect::<HashSet<_>>()
            .len()
    }

    /// When the next hidden message (delayed or in flight) becomes visible.
    fn next_visible(&self, now: Instant) -> Option<Instant> {
        self.messages
            .values()
            .map(|m| m.visible_at)
            .filter(|at| *at > now)
            .min()
    }
}

pub struct Queue {
    pub config: QueueConfig,
    state: Mutex<State>,
    /// Bumped whenever a message may have become receivable sooner than a waiter computed.
    ready: watch::Sender<u64>,
    created_ms: u64,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wake(&self) {
        self.ready.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that sees every later wake-up; subscribe before looking at the queue.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.ready.subscribe()
    }

    pub fn depth(&self) -> Depth {
        let now = Instant::now();
        let mut state = self.lock();
        state.expire(self.config.retention, now);
        state.depth(now)
    }

    /// The bodies of every message in the queue (visible, in flight or delayed), oldest first.
    pub fn bodies(&self) -> Vec<String> {
        let now = Instant::now();
        let mut state = self.lock();
        state.expire(self.config.retention, now);
        state.messages.values().map(|m| m.body.clone()).collect()
    }
}

/// What one receive did.
pub struct ReceiveOutcome {
    pub messages: Vec<Received>,
    /// When the next message now hidden becomes visible, if any is.
    pub next_visible: Option<Instant>,
    /// True when `max_bytes` stopped the receive before `max` messages.
    pub bytes_limited: bool,
}

fn receipt_handle(queue: &str, message_id: &str) -> String {
    let mut token = [0u8; 16];
    getrandom::fill(&mut token).expect("the operating system's random source");
    let token: String = token.iter().map(|b| format!("{b:02x}")).collect();
    STANDARD.encode(format!("{queue}\n{message_id}\n{token}"))
}

/// The message id a receipt handle of `queue` is for.
fn handle_message_id(queue: &str, handle: &str) -> Option<String> {
    let decoded = String::from_utf8(STANDARD.decode(handle).ok()?).ok()?;
    let mut parts = decoded.split('\n');
    let (owner, id, token) = (parts.next()?, parts.next()?, parts.next()?);
    (owner == queue && !id.is_empty() && token.len() == 32 && parts.next().is_none()).then(|| id.to_owned())
}

/// The queues of one stack.
pub struct Sqs {
    queues: BTreeMap<String, Arc<Queue>>,
    logs: Arc<LogBook>,
    metrics_due: Notify,
}

impl Sqs {
    /// `visibility_timeout` overrides every queue's (tests use a short one).
    pub fn new(
        definitions: &[parley_template::QueueDefinition],
        visibility_timeout: Option<Duration>,
        endpoint: &str,
        logs: Arc<LogBook>,
    ) -> Arc<Self> {
        let name_of = |id: &str| {
            definitions
                .iter()
                .find(|q| q.logical_id == id)
                .map(parley_template::QueueDefinition::name)
                .unwrap_or_else(|| id.to_owned())
        };
        let created_ms = ids::epoch_millis(SystemTime::now());
        let queues = definitions
            .iter()
            .map(|definition| {
                let name = name_of(&definition.logical_id);
                let config = QueueConfig {
                    logical_id: definition.logical_id.clone(),
                    arn: ids::queue_arn(&name),
                    url: ids::queue_url(endpoint, &name),
                    visibility_timeout: visibility_timeout
                        .unwrap_or(Duration::from_secs(definition.visibility_timeout_secs)),
                    delay: Duration::from_secs(definition.delay_secs),
                    retention: Duration::from_secs(definition.retention_secs),
                    maximum_message_size: definition.maximum_message_size as usize,
                    receive_wait: Duration::from_secs(definition.receive_wait_secs),
                    sqs_managed_sse: definition.sqs_managed_sse,
                    redrive: definition.redrive.as_ref().map(|r| {
                        let target = name_of(&r.dead_letter_queue);
                        Redrive {
                            target_arn: ids::queue_arn(&target),
                            target,
                            max_receive_count: r.max_receive_count as u32,
                        }
                    }),
                    fifo: definition.fifo.clone(),
                    name: name.clone(),
                };
                let queue = Queue {
                    config,
                    state: Mutex::default(),
                    ready: watch::channel(0).0,
                    created_ms,
                };
                (name, Arc::new(queue))
            })
            .collect();
        Arc::new(Sqs {
            queues,
            logs,
            metrics_due: Notify::new(),
        })
    }

    pub fn queue(&self, logical_id: &str) -> Option<&Arc<Queue>> {
        self.queues.values().find(|q| q.config.logical_id == logical_id)
    }

    pub fn queues(&self) -> impl Iterator<Item = &Arc<Queue>> {
        self.queues.values()
    }

    fn changed(&self) {
        self.metrics_due.notify_one();
    }

    /// Enqueues checked messages together (one SendMessageBatch is one change of the queue). In a FIFO
    /// queue, a message whose deduplication id was sent in the interval is answered as the first one was,
    /// and not queued.
    pub fn send(&self, queue: &Queue, messages: Vec<NewMessage>) -> Vec<Sent> {
        let now = Instant::now();
        let now_ms = ids::epoch_millis(SystemTime::now());
        let mut sent = Vec::with_capacity(messages.len());
        let mut queued = 0;
        {
            let mut state = queue.lock();
            state.expire(queue.config.retention, now);
            state
                .deduplication
                .retain(|_, first| now.duration_since(first.at) < DEDUPLICATION_INTERVAL);
            for message in messages {
                let md5_of_body = md5_hex(message.body.as_bytes());
                let system: Vec<Attribute> = message
                    .trace_header
                    .iter()
                    .map(|trace| Attribute {
                        name: "AWSTraceHeader".to_owned(),
                        data_type: "String".to_owned(),
                        data: AttributeData::Text(trace.clone()),
                    })
                    .collect();
                let answer = |message_id: String, sequence: Option<u128>| Sent {
                    message_id,
                    md5_of_body: md5_of_body.clone(),
                    md5_of_attributes: md5_of_attributes(&message.attributes),
                    md5_of_system_attributes: md5_of_attributes(&system),
                    sequence_number: sequence.map(|n| n.to_string()),
                };
                let dedup_key = match (&queue.config.fifo, &message.dedup_id) {
                    (Some(fifo), Some(dedup_id)) => {
                        let group = (fifo.deduplication_scope == DeduplicationScope::MessageGroup)
                            .then(|| message.group_id.clone().unwrap_or_default());
                        Some((group, dedup_id.clone()))
                    }
                    _ => None,
                };
                if let Some(first) = dedup_key.as_ref().and_then(|key| state.deduplication.get(key)) {
                    sent.push(answer(first.message_id.clone(), first.sequence));
                    continue;
                }
                let id = ids::invocation_id();
                let sequence = queue.config.fifo.is_some().then(|| state.next_sequence(now_ms));
                sent.push(answer(id.clone(), sequence));
                if let Some(key) = dedup_key {
                    state.deduplication.insert(
                        key,
                        FirstSend {
                            at: now,
                            message_id: id.clone(),
                            sequence,
                        },
                    );
                }
                state.insert(Message {
                    id,
                    body: message.body,
                    md5_of_body,
                    attributes: message.attributes,
                    trace_header: message.trace_header,
                    group_id: message.group_id,
                    dedup_id: message.dedup_id,
                    sequence,
                    sent_ms: now_ms,
                    sent_at: now,
                    entered_at: now,
                    visible_at: now + message.delay,
                    received_at: None,
                    receive_count: 0,
                    first_receive_ms: None,
                    receipt: None,
                    dead_letter_source: None,
                });
                queued += 1;
            }
            state.counters.sent += queued;
        }
        if queued > 0 {
            queue.wake();
            self.changed();
        }
        sent
    }

    /// Takes up to `max` visible messages, oldest first (a FIFO queue's by its group rules), hiding each
    /// for `visibility`; stops before `max_bytes`, counting each message's size and `RECORD_OVERHEAD`.
    /// Messages already received `maxReceiveCount` times are moved to the dead-letter queue instead.
    pub fn receive(&self, queue: &Queue, max: usize, visibility: Duration, max_bytes: usize) -> ReceiveOutcome {
        let now = Instant::now();
        let now_ms = ids::epoch_millis(SystemTime::now());
        let mut moved = Vec::new();
        let mut messages = Vec::new();
        let mut bytes_limited = false;
        let next_visible;
        {
            let mut state = queue.lock();
            state.expire(queue.config.retention, now);
            let visible: Vec<u64> = if queue.config.fifo.is_some() {
                state.fifo_candidates(now)
            } else {
                state
                    .messages
                    .iter()
                    .filter(|(_, m)| m.visible_at <= now)
                    .map(|(seq, _)| *seq)
                    .collect()
            };
            let mut bytes: usize = 0;
            for seq in visible {
                if messages.len() >= max {
                    break;
                }
                let Some(message) = state.messages.get(&seq) else {
                    continue;
                };
                if let Some(redrive) = &queue.config.redrive {
                    if message.receive_count >= redrive.max_receive_count {
                        let id = message.id.clone();
                        moved.extend(state.remove(&id));
                        continue;
                    }
                }
                let size = message.size();
                if bytes.saturating_add(size + RECORD_OVERHEAD) > max_bytes {
                    bytes_limited = true;
                    break;
                }
                bytes += size + RECORD_OVERHEAD;
                let Some(message) = state.messages.get_mut(&seq) else {
                    continue;
                };
                message.receive_count += 1;
                let first_receive_ms = *message.first_receive_ms.get_or_insert(now_ms);
                let handle = receipt_handle(&queue.config.name, &message.id);
                message.receipt = Some(handle.clone());
                message.visible_at = now + visibility;
                message.received_at = Some(now);
                messages.push(Received {
                    message_id: message.id.clone(),
                    receipt_handle: handle,
                    body: message.body.clone(),
                    md5_of_body: message.md5_of_body.clone(),
                    attributes: message.attributes.clone(),
                    receive_count: message.receive_count,
                    sent_ms: message.sent_ms,
                    first_receive_ms,
                    trace_header: message.trace_header.clone(),
                    group_id: message.group_id.clone(),
                    dedup_id: message.dedup_id.clone(),
                    sequence_number: message.sequence.map(|n| n.to_string()),
                    dead_letter_source: message.dead_letter_source.clone(),
                    size,
                });
            }
            state.counters.received += messages.len() as u64;
            next_visible = state.next_visible(now);
        }
        if !moved.is_empty() {
            self.redrive(queue, moved, now);
        }
        if !messages.is_empty() {
            self.changed();
        }
        ReceiveOutcome {
            messages,
            next_visible,
            bytes_limited,
        }
    }

    fn redrive(&self, source: &Queue, moved: Vec<Message>, now: Instant) {
        let Some(redrive) = &source.config.redrive else { return };
        let Some(target) = self.queues.get(&redrive.target) else {
            return;
        };
        for message in &moved {
            self.logs.gateway(&format!(
                "SQS {}: message {} was received {} times (maxReceiveCount {}); moved to the dead-letter queue {}",
                source.config.name, message.id, message.receive_count, redrive.max_receive_count, redrive.target
            ));
        }
        let now_ms = ids::epoch_millis(SystemTime::now());
        {
            let mut state = target.lock();
            for mut message in moved {
                // A FIFO dead-letter queue orders what it receives by its own sequence.
                message.sequence = target.config.fifo.is_some().then(|| state.next_sequence(now_ms));
                // The id, body, attributes, receive count and the original sent time (which retention
                // counts from) travel with it, as SQS moves them.
                message.entered_at = now;
                message.visible_at = now;
                message.receipt = None;
                message.received_at = None;
                message.dead_letter_source = Some(source.config.arn.clone());
                state.insert(message);
            }
        }
        target.wake();
        self.changed();
    }

    /// Deletes the message a receipt handle is for, if that handle is the message's latest. Whether it
    /// deleted something; an error only for a handle that is not one of this queue's.
    pub fn delete(&self, queue: &Queue, handle: &str) -> Result<bool, ApiError> {
        let id = handle_message_id(&queue.config.name, handle).ok_or_else(|| ApiError::invalid_receipt(handle))?;
        let deleted = {
            let mut state = queue.lock();
            let current = state
                .find_mut(&id)
                .is_some_and(|m| m.receipt.as_deref() == Some(handle));
            if current {
                state.remove(&id);
                state.counters.deleted += 1;
            }
            current
        };
        if deleted {
            // The deleted message may have held its FIFO group back.
            if queue.config.fifo.is_some() {
                queue.wake();
            }
            self.changed();
        }
        Ok(deleted)
    }

    pub fn change_visibility(&self, queue: &Queue, handle: &str, timeout: Duration) -> Result<(), ApiError> {
        let id = handle_message_id(&queue.config.name, handle).ok_or_else(|| ApiError::invalid_receipt(handle))?;
        let now = Instant::now();
        {
            let mut state = queue.lock();
            let Some(message) = state.find_mut(&id).filter(|m| m.receipt.as_deref() == Some(handle)) else {
                return Err(ApiError::new(
                    "ReceiptHandleIsInvalid",
                    "ReceiptHandleIsInvalid",
                    format!("The receipt handle \"{handle}\" has expired: the message was deleted or received again."),
                ));
            };
            if message.visible_at <= now {
                return Err(ApiError::new(
                    "MessageNotInflight",
                    "AWS.SimpleQueueService.MessageNotInflight",
                    "Message does not exist or is not available for visibility timeout change.",
                ));
            }
            let received_at = message.received_at.unwrap_or(now);
            if (now + timeout).duration_since(received_at) > Duration::from_secs(MAX_VISIBILITY_SECS) {
                return Err(ApiError::invalid(format!(
                    "Value {} for parameter VisibilityTimeout is invalid. Reason: Total VisibilityTimeout for the \
                     message is beyond the limit [43200 seconds]",
                    timeout.as_secs()
                )));
            }
            message.visible_at = now + timeout;
        }
        queue.wake();
        self.changed();
        Ok(())
    }

    fn purge(&self, queue: &Queue) -> Result<(), ApiError> {
        let now = Instant::now();
        {
            let mut state = queue.lock();
            if state
                .last_purge
                .is_some_and(|at| now.duration_since(at) < PURGE_INTERVAL)
            {
                return Err(ApiError::new(
                    "PurgeQueueInProgress",
                    "AWS.SimpleQueueService.PurgeQueueInProgress",
                    format!(
                        "Only one PurgeQueue operation on {} is allowed every 60 seconds.",
                        queue.config.name
                    ),
                ));
            }
            state.last_purge = Some(now);
            state.messages.clear();
            state.by_id.clear();
        }
        self.logs.gateway(&format!("SQS {}: purged", queue.config.name));
        self.changed();
        Ok(())
    }

    fn by_url(&self, url: &str) -> Result<&Arc<Queue>, ApiError> {
        let path = url
            .split_once("://")
            .map(|(_, rest)| rest.split_once('/').map(|(_, path)| path).unwrap_or(""))
            .unwrap_or(url);
        let mut segments = path.trim_matches('/').split('/');
        let (Some(account), Some(name), None) = (segments.next(), segments.next(), segments.next()) else {
            return Err(ApiError::new(
                "InvalidAddress",
                "InvalidAddress",
                format!("The address {url} is not valid for this endpoint."),
            ));
        };
        if account != ACCOUNT_ID {
            return Err(ApiError::queue_does_not_exist());
        }
        self.queues.get(name).ok_or_else(ApiError::queue_does_not_exist)
    }

    // ---- metrics ----

    /// Publishes every queue's metrics now, every few seconds, and soon after each change.
    pub fn spawn_metrics(self: &Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let sqs = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                sqs.publish_metrics();
                tokio::select! {
                    _ = tokio::time::sleep(METRICS_EVERY) => {}
                    _ = sqs.metrics_due.notified() => {}
                    _ = shutdown.wait_for(|stop| *stop) => return,
                }
                tokio::select! {
                    _ = tokio::time::sleep(METRICS_AT_MOST_EVERY) => {}
                    _ = shutdown.wait_for(|stop| *stop) => return,
                }
            }
        });
    }

    fn publish_metrics(&self) {
        let now = Instant::now();
        let now_ms = ids::epoch_millis(SystemTime::now()) as i64;
        let mut datapoints = Vec::new();
        for queue in self.queues.values() {
            let (depth, oldest, counters, groups_in_flight) = {
                let mut state = queue.lock();
                state.expire(queue.config.retention, now);
                let depth = state.depth(now);
                let groups_in_flight = queue.config.fifo.is_some().then(|| state.groups_in_flight(now));
                let oldest = state
                    .messages
                    .values()
                    .filter(|m| m.receive_count > 0 || m.visible_at <= now)
                    .map(|m| now.duration_since(m.entered_at))
                    .max()
                    .unwrap_or_default();
                (depth, oldest, std::mem::take(&mut state.counters), groups_in_flight)
            };
            let mut point = |name: &str, value: f64, unit: &'static str| {
                datapoints.push(Datapoint {
                    key: SeriesKey::new("AWS/SQS", name, [("QueueName".to_owned(), queue.config.name.clone())]),
                    point: Point {
                        timestamp_ms: now_ms,
                        value,
                        unit,
                    },
                });
            };
            point("ApproximateNumberOfMessagesVisible", depth.visible as f64, "Count");
            point("ApproximateNumberOfMessagesNotVisible", depth.in_flight as f64, "Count");
            point("ApproximateNumberOfMessagesDelayed", depth.delayed as f64, "Count");
            point("ApproximateAgeOfOldestMessage", oldest.as_secs() as f64, "Seconds");
            point("NumberOfMessagesSent", counters.sent as f64, "Count");
            point("NumberOfMessagesReceived", counters.received as f64, "Count");
            point("NumberOfMessagesDeleted", counters.deleted as f64, "Count");
            point("NumberOfEmptyReceives", counters.empty_receives as f64, "Count");
            if let Some(groups) = groups_in_flight {
                point("ApproximateNumberOfGroupsWithInflightMessages", groups as f64, "Count");
            }
        }
        self.logs.metrics().record(datapoints, now_ms);
    }

    // ---- the HTTP API ----

    /// `caller`: the calling function's role when IAM is enforced (None: not checked).
    pub async fn handle(&self, request: Request<Incoming>, caller: Option<&crate::iam::Role>) -> HttpResponse {
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let operation = header("x-amz-target")
            .and_then(|t| t.strip_prefix(TARGET_PREFIX).map(str::to_owned))
            .unwrap_or_default();
        if !header("content-type").is_some_and(|t| t.starts_with(CONTENT_TYPE)) {
            return ApiError::serialization(format!(
                "the local SQS speaks only the AWS JSON 1.0 protocol (Content-Type: {CONTENT_TYPE}), as current \
                 aws-sdk-sqs versions do"
            ))
            .response();
        }
        let body = match Limited::new(request.into_body(), MAX_REQUEST_BYTES).collect().await {
            Ok(body) => body.to_bytes(),
            Err(_) => {
                return ApiError::serialization(format!("the request body is over {MAX_REQUEST_BYTES} bytes"))
                    .response()
            }
        };
        let input: Value = if body.is_empty() {
            json!({})
        } else {
            match serde_json::from_slice(&body) {
                Ok(value @ Value::Object(_)) => value,
                Ok(_) => return ApiError::serialization("the request body is not a JSON object").response(),
                Err(e) => return ApiError::serialization(format!("the request body is not JSON: {e}")).response(),
            }
        };
        if let Some(role) = caller {
            if let Some(denied) = self.denial(role, &operation, &input) {
                return denied.response();
            }
        }
        let result = match operation.as_str() {
            "SendMessage" => self.send_message(&input),
            "SendMessageBatch" => self.send_message_batch(&input),
            "ReceiveMessage" => self.receive_message(&input).await,
            "DeleteMessage" => self.delete_message(&input),
            "DeleteMessageBatch" => self.delete_message_batch(&input),
            "ChangeMessageVisibility" => self.change_message_visibility(&input),
            "ChangeMessageVisibilityBatch" => self.change_message_visibility_batch(&input),
            "GetQueueUrl" => self.get_queue_url(&input),
            "GetQueueAttributes" => self.get_queue_attributes(&input),
            "ListQueues" => self.list_queues(&input),
            "PurgeQueue" => self.purge_queue(&input),
            other => Err(ApiError::new(
                "UnsupportedOperation",
                "AWS.SimpleQueueService.UnsupportedOperation",
                format!(
                    "The local stack's SQS does not implement {other}: its queues are template.yaml's, created when \
                     the stack starts."
                ),
            )),
        };
        match result {
            Ok(output) => json_response(StatusCode::OK, &output, None),
            Err(error) => error.response(),
        }
    }

    fn send_message(&self, input: &Value) -> Result<Value, ApiError> {
        let queue = self.by_url(required_str(input, "QueueUrl")?)?;
        let message = read_new_message(input, &queue.config)?;
        let size = message.body.len() + message.attributes.iter().map(Attribute::size).sum::<usize>();
        check_size(size, &queue.config)?;
        let sent = self.send(queue, vec![message]).remove(0);
        Ok(sent_value(&sent, None))
    }

    fn send_message_batch(&self, input: &Value) -> Result<Value, ApiError> {
        let queue = self.by_url(required_str(input, "QueueUrl")?)?;
        let entries = batch_entries(input)?;
        let mut total = 0;
        let mut checked = Vec::new();
        let mut failed = Vec::new();
        for entry in entries {
            let id = required_str(entry, "Id")?;
            match read_new_message(entry, &queue.config).and_then(|message| {
                let size = message.body.len() + message.attributes.iter().map(Attribute::size).sum::<usize>();
                total += size;
                check_size(size, &queue.config).map(|()| message)
            }) {
                Ok(message) => checked.push((id, message)),
                Err(error) => failed.push(error.entry(id)),
            }
        }
        if total > MAX_BATCH_BYTES {
            return Err(ApiError::new(
                "BatchRequestTooLong",
                "AWS.SimpleQueueService.BatchRequestTooLong",
                format!("Batch requests cannot be longer than {MAX_BATCH_BYTES} bytes. You have sent {total} bytes."),
            ));
        }
        let (ids, messages): (Vec<&str>, Vec<NewMessage>) = checked.into_iter().unzip();
        let sent = if messages.is_empty() {
            Vec::new()
        } else {
            self.send(queue, messages)
        };
        let successful: Vec<Value> = ids.iter().zip(&sent).map(|(id, s)| sent_value(s, Some(id))).collect();
        Ok(json!({ "Successful": successful, "Failed": failed }))
    }

    async fn receive_message(&self, input: &Value) -> Result<Value, ApiError> {
        let queue = self.by_url(required_str(input, "QueueUrl")?)?;
        let max = optional_u64(input, "MaxNumberOfMessages")?.unwrap_or(1);
        if !(1..=10).contains(&max) {
            return Err(ApiError::invalid(format!(
                "Value {max} for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided."
            )));
        }
        let visibility = match optional_u64(input, "VisibilityTimeout")? {
            None => queue.config.visibility_timeout,
            Some(secs) if secs <= MAX_VISIBILITY_SECS => Duration::from_secs(secs),
            Some(secs) => {
                return Err(ApiError::invalid(format!(
                    "Value {secs} for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and 43200, if provided."
                )))
            }
        };
        let wait = match optional_u64(input, "WaitTimeSeconds")? {
            None => queue.config.receive_wait,
            Some(secs) if secs <= MAX_WAIT_SECS => Duration::from_secs(secs),
            Some(secs) => {
                return Err(ApiError::invalid(format!(
                "Value {secs} for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided."
            )))
            }
        };
        let mut system_names: Vec<&str> = string_list(input, "AttributeNames")?;
        system_names.extend(string_list(input, "MessageSystemAttributeNames")?);
        let attribute_names = string_list(input, "MessageAttributeNames")?;

        let deadline = Instant::now() + wait;
        let mut ready = queue.subscribe();
        let received = loop {
            ready.borrow_and_update();
            let outcome = self.receive(queue, max as usize, visibility, usize::MAX);
            if !outcome.messages.is_empty() || Instant::now() >= deadline {
                break outcome.messages;
            }
            let wake = outcome.next_visible.map_or(deadline, |at| at.min(deadline));
            tokio::select! {
                _ = ready.changed() => {}
                _ = tokio::time::sleep_until(wake) => {}
            }
        };
        if received.is_empty() {
            queue.lock().counters.empty_receives += 1;
            return Ok(json!({}));
        }
        let messages: Vec<Value> = received
            .iter()
            .map(|m| message_value(m, &system_names, &attribute_names))
            .collect();
        Ok(json!({ "Messages": messages }))
    }

    fn delete_message(&self, input: &Value) -> Result<Value, ApiError> {
        let queue = self.by_url(required_str(input, "QueueUrl")?)?;
        self.delete(queue, required_str(input, "ReceiptHandle")?)?;
        Ok(json!({}))
    }

    fn delete_message_batch(&self, input: &Value) -> Result<Value, ApiError> {
        let queue = self.by_url(required_str(input, "QueueUrl")?)?;
        let mut successful = Vec::new();
        let mut failed = Vec::new();
        for entry in batch_entries(input)? {
            let id = required_str(entry, "Id")?;
            match required_str(entry, "ReceiptHandle").and_then(|handle| self.delete(queue, handle)) {
                Ok(_) => successful.push(json!({ "Id": id })),
                Err(error) => failed.push(error.entry(id)),
            }
        }
        Ok(json!({ "Successful": successful, "Failed": failed }))
    }

    fn change_message_visibility(&self, input: &Value) -> Result<Value, ApiError> {
        let queue = self.by_url(required_str(input, "QueueUrl")?)?;
        let handle = required_str(input, "ReceiptHandle")?;
        let timeout = visibility_timeout(input)?;
        self.change_visibility(queue, handle, timeout)?;
        Ok(json!({}))
    }

    fn change_message_visibility_batch(&self, input: &Value) -> Result<Value, ApiError> {
        let queue = self.by_url(required_str(input, "QueueUrl")?)?;
        let mut successful = Vec::new();
        let mut failed = Vec::new();
        for entry in batch_entries(input)? {
            let id = required_str(entry, "Id")?;
            let result = required_str(entry, "ReceiptHandle").and_then(|handle| {
                let timeout = visibility_timeout(entry)?;
                self.change_visibility(queue, handle, timeout)
            });
            match result {
                Ok(()) => successful.push(json!({ "Id": id })),
                Err(error) => failed.push(error.entry(id)),
            }
        }
        Ok(json!({ "Successful": successful, "Failed": failed }))
    }

    fn purge_queue(&self, input: &Value) -> Result<Value, ApiError> {
        let queue = self.by_url(required_str(input, "QueueUrl")?)?;
        self.purge(queue)?;
        Ok(json!({}))
    }

    /// IAM's check of a function's call: the action on the queue's ARN. The batch operations need the
    /// single message's action, as in IAM (there is no `sqs:SendMessageBatch`).
    fn denial(&self, role: &crate::iam::Role, operation: &str, input: &Value) -> Option<ApiError> {
        let action = match operation {
            "SendMessageBatch" => "sqs:SendMessage".to_owned(),
            "DeleteMessageBatch" => "sqs:DeleteMessage".to_owned(),
            "ChangeMessageVisibilityBatch" => "sqs:ChangeMessageVisibility".to_owned(),
            other => format!("sqs:{other}"),
        };
        let resource = match (input.get("QueueUrl"), input.get("QueueName")) {
            (Some(Value::String(url)), _) => self.by_url(url).map(|q| q.config.arn.clone()).ok()?,
            (None, Some(Value::String(name))) => ids::queue_arn(name),
            _ => "*".to_owned(),
        };
        let (message, log) = crate::iam::check(role, &action, &resource, &[])?;
        self.logs.gateway(&log);
        // SQS names the action in lower case in its message (`sqs:sendmessage`).
        let message = message.replace(&action, &action.to_ascii_lowercase());
        Some(ApiError::new("AccessDeniedException", "AccessDenied", message))
    }

    fn get_queue_url(&self, input: &Value) -> Result<Value, ApiError> {
        let name = required_str(input, "QueueName")?;
        if optional_str(input, "QueueOwnerAWSAccountId")?.is_some_and(|owner| owner != ACCOUNT_ID) {
            return Err(ApiError::queue_does_not_exist());
        }
        let queue = self.queues.get(name).ok_or_else(ApiError::queue_does_not_exist)?;
        Ok(json!({ "QueueUrl": queue.config.url }))
    }

    fn list_queues(&self, input: &Value) -> Result<Value, ApiError> {
        let prefix = optional_str(input, "QueueNamePrefix")?.unwrap_or("");
        let max = optional_u64(input, "MaxResults")?.unwrap_or(1000);
        if !(1..=1000).contains(&max) {
            return Err(ApiError::invalid(
                "Value for parameter MaxResults is invalid. Reason: MaxResults must be an integer between 1 and 1000.",
            ));
        }
        let urls: Vec<&str> = self
            .queues
            .values()
            .filter(|q| q.config.name.starts_with(prefix))
            .take(max as usize)
            .map(|q| q.config.url.as_str())
            .collect();
        if urls.is_empty() {
            return Ok(json!({}));
        }
        Ok(json!({ "QueueUrls": urls }))
    }

    fn get_queue_attributes(&self, input: &Value) -> Result<Value, ApiError> {
        let queue = self.by_url(required_str(input, "QueueUrl")?)?;
        let config = &queue.config;
        let depth = queue.depth();
        let seconds = |d: Duration| d.as_secs_f64().ceil().to_string();
        let created = (queue.created_ms / 1000).to_string();
        let mut all: Vec<(&str, String)> = vec![
            ("QueueArn", config.arn.clone()),
            ("ApproximateNumberOfMessages", depth.visible.to_string()),
            ("ApproximateNumberOfMessagesNotVisible", depth.in_flight.to_string()),
            ("ApproximateNumberOfMessagesDelayed", depth.delayed.to_string()),
            ("CreatedTimestamp", created.clone()),
            ("LastModifiedTimestamp", created),
            ("VisibilityTimeout", seconds(config.visibility_timeout)),
            ("MaximumMessageSize", config.maximum_message_size.to_string()),
            ("MessageRetentionPeriod", seconds(config.retention)),
            ("DelaySeconds", seconds(config.delay)),
            ("ReceiveMessageWaitTimeSeconds", seconds(config.receive_wait)),
            ("SqsManagedSseEnabled", config.sqs_managed_sse.to_string()),
        ];
        if let Some(fifo) = &config.fifo {
            all.push(("FifoQueue", "true".to_owned()));
            all.push((
                "ContentBasedDeduplication",
                fifo.content_based_deduplication.to_string(),
            ));
            all.push(("DeduplicationScope", fifo.deduplication_scope.as_str().to_owned()));
            all.push(("FifoThroughputLimit", fifo.throughput_limit.as_str().to_owned()));
        }
        if let Some(redrive) = &config.redrive {
            all.push((
                "RedrivePolicy",
                json!({ "deadLetterTargetArn": redrive.target_arn, "maxReceiveCount": redrive.max_receive_count })
                    .to_string(),
            ));
        }
        const KNOWN: [&str; 22] = [
            "All",
            "Policy",
            "VisibilityTimeout",
            "MaximumMessageSize",
            "MessageRetentionPeriod",
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "CreatedTimestamp",
            "LastModifiedTimestamp",
            "QueueArn",
            "ApproximateNumberOfMessagesDelayed",
            "DelaySeconds",
            "ReceiveMessageWaitTimeSeconds",
            "RedrivePolicy",
            "FifoQueue",
            "ContentBasedDeduplication",
            "KmsMasterKeyId",
            "KmsDataKeyReusePeriodSeconds",
            "DeduplicationScope",
            "FifoThroughputLimit",
            "RedriveAllowPolicy",
            "SqsManagedSseEnabled",
        ];
        let wanted = string_list(input, "AttributeNames")?;
        if let Some(unknown) = wanted.iter().find(|name| !KNOWN.contains(name)) {
            return Err(ApiError::new(
                "InvalidAttributeName",
                "InvalidAttributeName",
                format!("Unknown Attribute {unknown}."),
            ));
        }
        let every = wanted.contains(&"All");
        let attributes: Map<String, Value> = all
            .into_iter()
            .filter(|(name, _)| every || wanted.contains(name))
            .map(|(name, value)| (name.to_owned(), Value::String(value)))
            .collect();
        if attributes.is_empty() {
            return Ok(json!({}));
        }
        Ok(json!({ "Attributes": attributes }))
    }
}

fn check_size(size: usize, config: &QueueConfig) -> Result<(), ApiError> {
    if size > config.maximum_message_size {
        return Err(ApiError::invalid(format!(
            "One or more parameters are invalid. Reason: Message must be shorter than {} bytes.",
            config.maximum_message_size
        )));
    }
    Ok(())
}

fn sent_value(sent: &Sent, id: Option<&str>) -> Value {
    let mut out = Map::new();
    if let Some(id) = id {
        out.insert("Id".into(), json!(id));
    }
    out.insert("MessageId".into(), json!(sent.message_id));
    out.insert("MD5OfMessageBody".into(), json!(sent.md5_of_body));
    if let Some(md5) = &sent.md5_of_attributes {
        out.insert("MD5OfMessageAttributes".into(), json!(md5));
    }
    if let Some(md5) = &sent.md5_of_system_attributes {
        out.insert("MD5OfMessageSystemAttributes".into(), json!(md5));
    }
    if let Some(sequence) = &sent.sequence_number {
        out.insert("SequenceNumber".into(), json!(sequence));
    }
    Value::Object(out)
}

/// Whether ReceiveMessage's `MessageAttributeNames` select an attribute: `All`, `.*`, `prefix.*` or
/// the exact name.
fn attribute_selected(name: &str, wanted: &[&str]) -> bool {
    wanted.iter().any(|w| {
        *w == "All"
            || *w == ".*"
            || *w == name
            || w.strip_suffix(".*")
                .is_some_and(|prefix| name.starts_with(&format!("{prefix}.")))
    })
}

fn attribute_json(attribute: &Attribute, camel_case: bool) -> Value {
    let (string_key, binary_key, type_key) = if camel_case {
        ("stringValue", "binaryValue", "dataType")
    } else {
        ("StringValue", "BinaryValue", "DataType")
    };
    let mut out = Map::new();
    match &attribute.data {
        AttributeData::Text(text) => out.insert(string_key.into(), json!(text)),
        AttributeData::Binary(bytes) => out.insert(binary_key.into(), json!(STANDARD.encode(bytes))),
    };
    if camel_case {
        // Lambda's records always carry the (reserved, unused) list members.
        out.insert("stringListValues".into(), json!([]));
        out.insert("binaryListValues".into(), json!([]));
    }
    out.insert(type_key.into(), json!(attribute.data_type));
    Value::Object(out)
}

/// A message as ReceiveMessage returns it, with the attributes asked for.
fn message_value(message: &Received, system_names: &[&str], attribute_names: &[&str]) -> Value {
    let mut out = Map::new();
    out.insert("MessageId".into(), json!(message.message_id));
    out.insert("ReceiptHandle".into(), json!(message.receipt_handle));
    out.insert("MD5OfBody".into(), json!(message.md5_of_body));
    out.insert("Body".into(), json!(message.body));
    let every = system_names.contains(&"All");
    let system: Map<String, Value> = message
        .system_attributes()
        .into_iter()
        .filter(|(name, _)| every || system_names.contains(name))
        .map(|(name, value)| (name.to_owned(), Value::String(value)))
        .collect();
    if !system.is_empty() {
        out.insert("Attributes".into(), Value::Object(system));
    }
    let selected: Vec<Attribute> = message
        .attributes
        .iter()
        .filter(|a| attribute_selected(&a.name, attribute_names))
        .cloned()
        .collect();
    if let Some(md5) = md5_of_attributes(&selected) {
        out.insert("MD5OfMessageAttributes".into(), json!(md5));
        let attributes: Map<String, Value> = selected
            .iter()
            .map(|a| (a.name.clone(), attribute_json(a, false)))
            .collect();
        out.insert("MessageAttributes".into(), Value::Object(attributes));
    }
    Value::Object(out)
}

/// One record of the event Lambda's SQS event source mapping sends (aws_lambda_events' `SqsMessage`).
pub fn event_record(message: &Received, queue_arn: &str) -> Value {
    let attributes: Map<String, Value> = message
        .system_attributes()
        .into_iter()
        .filter(|(name, _)| *name != "DeadLetterQueueSourceArn")
        .map(|(name, value)| (name.to_owned(), Value::String(value)))
        .collect();
    let message_attributes: Map<String, Value> = message
        .attributes
        .iter()
        .map(|a| (a.name.clone(), attribute_json(a, true)))
        .collect();
    let mut record = Map::new();
    record.insert("messageId".into(), json!(message.message_id));
    record.insert("receiptHandle".into(), json!(message.receipt_handle));
    record.insert("body".into(), json!(message.body));
    record.insert("attributes".into(), Value::Object(attributes));
    record.insert("messageAttributes".into(), Value::Object(message_attributes));
    record.insert("md5OfBody".into(), json!(message.md5_of_body));
    if let Some(md5) = md5_of_attributes(&message.attributes) {
        record.insert("md5OfMessageAttributes".into(), json!(md5));
    }
    record.insert("eventSource".into(), json!("aws:sqs"));
    record.insert("eventSourceARN".into(), json!(queue_arn));
    record.insert("awsRegion".into(), json!(ids::REGION));
    Value::Object(record)
}

// ---- reading the input ----

fn optional_str<'a>(input: &'a Value, member: &str) -> Result<Option<&'a str>, ApiError> {
    match input.get(member) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(ApiError::serialization(format!("{member} must be a string"))),
    }
}

fn required_str<'a>(input: &'a Value, member: &str) -> Result<&'a str, ApiError> {
    optional_str(input, member)?.ok_or_else(|| ApiError::missing(member))
}

fn optional_u64(input: &Value, member: &str) -> Result<Option<u64>, ApiError> {
    match input.get(member) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(v) if v >= 0 => Ok(Some(v as u64)),
            Some(v) => Err(ApiError::invalid(format!(
                "Value {v} for parameter {member} is invalid."
            ))),
            None => Err(ApiError::serialization(format!("{member} must be an integer"))),
        },
        Some(_) => Err(ApiError::serialization(format!("{member} must be an integer"))),
    }
}

fn string_list<'a>(input: &'a Value, member: &str) -> Result<Vec<&'a str>, ApiError> {
    match input.get(member) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .ok_or_else(|| ApiError::serialization(format!("{member} must be a list of strings")))
            })
            .collect(),
        Some(_) => Err(ApiError::serialization(format!("{member} must be a list of strings"))),
    }
}

fn visibility_timeout(input: &Value) -> Result<Duration, ApiError> {
    let secs = optional_u64(input, "VisibilityTimeout")?.ok_or_else(|| ApiError::missing("VisibilityTimeout"))?;
    if secs > MAX_VISIBILITY_SECS {
        return Err(ApiError::invalid(format!(
            "Value {secs} for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and 43200."
        )));
    }
    Ok(Duration::from_secs(secs))
}

/// A batch request's entries, with the checks SQS makes on the whole request.
fn batch_entries(input: &Value) -> Result<&[Value], ApiError> {
    let entries = match input.get("Entries") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(items)) => items.as_slice(),
        Some(_) => return Err(ApiError::serialization("Entries must be a list")),
    };
    if entries.is_empty() {
        return Err(ApiError::new(
            "EmptyBatchRequest",
            "AWS.SimpleQueueService.EmptyBatchRequest",
            "There should be at least one entry in the request.",
        ));
    }
    if entries.len() > MAX_BATCH_ENTRIES {
        return Err(ApiError::new(
            "TooManyEntriesInBatchRequest",
            "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
            format!(
                "Maximum number of entries per request are {MAX_BATCH_ENTRIES}. You have sent {}.",
                entries.len()
            ),
        ));
    }
    let mut seen = HashSet::new();
    for entry in entries {
        let id = required_str(entry, "Id")?;
        let valid =
            !id.is_empty() && id.len() <= 80 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(ApiError::new(
                "InvalidBatchEntryId",
                "AWS.SimpleQueueService.InvalidBatchEntryId",
                "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at \
                 most 80 letters long.",
            ));
        }
        if !seen.insert(id) {
            return Err(ApiError::new(
                "BatchEntryIdsNotDistinct",
                "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
                format!("Id {id} repeated."),
            ));
        }
    }
    Ok(entries)
}

/// SQS keeps only the XML character range; other characters become U+FFFD, and a body with none
/// left is refused.
fn clean_body(body: &str) -> Result<String, ApiError> {
    let allowed = |c: char| matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..);
    if !body.chars().any(allowed) {
        return Err(ApiError::new(
            "InvalidMessageContents",
            "InvalidMessageContents",
            "Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to \
             #xFFFD | #x10000 to #x10FFFF",
        ));
    }
    Ok(body.chars().map(|c| if allowed(c) { c } else { '\u{FFFD}' }).collect())
}

fn read_attribute(name: &str, value: &Value) -> Result<Attribute, ApiError> {
    let valid_name = !name.is_empty()
        && name.len() <= 256
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !name.contains("..");
    let lower = name.to_ascii_lowercase();
    if !valid_name || lower.starts_with("aws.") || lower.starts_with("amazon.") {
        return Err(ApiError::invalid(format!(
            "Message (user) attribute name '{name}' is invalid: it may hold letters, digits, '_', '-' and '.', \
             not start or end with '.', hold no '..', and not start with 'AWS.' or 'Amazon.'."
        )));
    }
    let data_type = required_str(value, "DataType")?;
    let base = data_type.split('.').next().unwrap_or_default();
    if !["String", "Number", "Binary"].contains(&base) || data_type.len() > 256 {
        return Err(ApiError::invalid(format!(
            "The type of message (user) attribute '{name}' is invalid. You must use only the following supported \
             type prefixes: Binary, Number, String."
        )));
    }
    let lists = ["StringListValues", "BinaryListValues"].iter().any(|member| {
        value
            .get(*member)
            .and_then(Value::as_array)
            .is_some_and(|l| !l.is_empty())
    });
    if lists {
        return Err(ApiError::invalid(
            "Message attribute list values in SendMessage operation are not supported.",
        ));
    }
    let empty = || {
        ApiError::invalid(format!(
            "The message attribute '{name}' must contain non-empty message attribute value for message attribute \
             type '{base}'."
        ))
    };
    let data = if base == "Binary" {
        let encoded = optional_str(value, "BinaryValue")?.ok_or_else(empty)?;
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|_| ApiError::serialization(format!("the BinaryValue of {name} is not base64")))?;
        if bytes.is_empty() {
            return Err(empty());
        }
        AttributeData::Binary(bytes)
    } else {
        let text = optional_str(value, "StringValue")?
            .filter(|t| !t.is_empty())
            .ok_or_else(empty)?;
        if base == "Number" && !text.trim().parse::<f64>().is_ok_and(f64::is_finite) {
            return Err(ApiError::invalid(format!(
                "Can't cast the value of message (user) attribute '{name}' to a number."
            )));
        }
        AttributeData::Text(clean_body(text)?)
    };
    Ok(Attribute {
        name: name.to_owned(),
        data_type: data_type.to_owned(),
        data,
    })
}

/// A SendMessage input, or one SendMessageBatch entry, checked (the size is checked by the caller).
fn read_new_message(input: &Value, config: &QueueConfig) -> Result<NewMessage, ApiError> {
    let body = optional_str(input, "MessageBody")?
        .filter(|b| !b.is_empty())
        .ok_or_else(|| ApiError::missing("MessageBody"))?;
    let body = clean_body(body)?;
    let delay = match optional_u64(input, "DelaySeconds")? {
        None => config.delay,
        // SQS takes an explicit 0 from a FIFO sender: it is no per-message delay.
        Some(0) if config.fifo.is_some() => config.delay,
        Some(secs) if config.fifo.is_some() => {
            return Err(ApiError::invalid(format!(
                "Value {secs} for parameter DelaySeconds is invalid. Reason: The request include parameter that is \
                 not valid for this queue type: FIFO queues have no per-message delay, only the queue's DelaySeconds."
            )))
        }
        Some(secs) if secs <= MAX_DELAY_SECS => Duration::from_secs(secs),
        Some(secs) => {
            return Err(ApiError::invalid(format!(
                "Value {secs} for parameter DelaySeconds is invalid. Reason: DelaySeconds must be >= 0 and <= 900."
            )))
        }
    };
    let group_id = optional_str(input, "MessageGroupId")?.map(str::to_owned);
    let given_dedup_id = optional_str(input, "MessageDeduplicationId")?;
    if config.fifo.is_none() && given_dedup_id.is_some() {
        return Err(ApiError::invalid(
            "The request includes a parameter that is not valid for this queue type: MessageDeduplicationId is for \
             FIFO queues.",
        ));
    }
    let dedup_id = match &config.fifo {
        Some(fifo) => Some(fifo_dedup_id(fifo, group_id.as_deref(), given_dedup_id, &body)?),
        None => None,
    };
    let mut attributes = Vec::new();
    match input.get("MessageAttributes") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            if map.len() > MAX_MESSAGE_ATTRIBUTES {
                return Err(ApiError::invalid(format!(
                    "Number of message attributes [{}] exceeds the allowed maximum [{MAX_MESSAGE_ATTRIBUTES}].",
                    map.len()
                )));
            }
            for (name, value) in map {
                attributes.push(read_attribute(name, value)?);
            }
        }
        Some(_) => return Err(ApiError::serialization("MessageAttributes must be a map")),
    }
    let mut trace_header = None;
    match input.get("MessageSystemAttributes") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (name, value) in map {
                if name != "AWSTraceHeader" {
                    return Err(ApiError::invalid(format!(
                        "Message system attribute name '{name}' is invalid: only AWSTraceHeader can be sent."
                    )));
                }
                let attribute = read_attribute("TraceHeader", value)?;
                match (attribute.data_type.as_str(), attribute.data) {
                    ("String", AttributeData::Text(text)) => trace_header = Some(text),
                    _ => {
                        return Err(ApiError::invalid(
                            "The AWSTraceHeader system attribute must be a String.",
                        ))
                    }
                }
            }
        }
        Some(_) => return Err(ApiError::serialization("MessageSystemAttributes must be a map")),
    }
    Ok(NewMessage {
        body,
        delay,
        attributes,
        trace_header,
        group_id,
        dedup_id,
    })
}

/// A FIFO message's deduplication id, once its group id is checked.
fn fifo_dedup_id(
    fifo: &FifoSettings,
    group_id: Option<&str>,
    given: Option<&str>,
    body: &str,
) -> Result<String, ApiError> {
    check_fifo_id(
        "MessageGroupId",
        group_id.ok_or_else(|| ApiError::missing("MessageGroupId"))?,
    )?;
    match given {
        Some(id) => check_fifo_id("MessageDeduplicationId", id).map(|()| id.to_owned()),
        None if fifo.content_based_deduplication => Ok(sha256_hex(body.as_bytes())),
        None => Err(ApiError::invalid(
            "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided \
             explicitly",
        )),
    }
}

fn check_fifo_id(parameter: &str, value: &str) -> Result<(), ApiError> {
    if value.is_empty() || value.len() > MAX_FIFO_ID_LENGTH || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::invalid(format!(
            "Value {value} for parameter {parameter} is invalid. Reason: it must be 1 to {MAX_FIFO_ID_LENGTH} \
             alphanumeric or punctuation characters."
        )));
    }
    Ok(())
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

// ---- errors ----

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The Smithy shape, sent namespaced in `__type`.
    shape: &'static str,
    /// The awsQuery error code the SDK matches on.
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(shape: &'static str, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            shape,
            code,
            message: message.into(),
        }
    }

    fn queue_does_not_exist() -> Self {
        ApiError::new(
            "QueueDoesNotExist",
            "AWS.SimpleQueueService.NonExistentQueue",
            "The specified queue does not exist.",
        )
    }

    fn invalid(message: impl Into<String>) -> Self {
        ApiError::new("InvalidParameterValueException", "InvalidParameterValue", message)
    }

    fn missing(parameter: &str) -> Self {
        ApiError::new(
            "MissingRequiredParameterException",
            "MissingParameter",
            format!("The request must contain the parameter {parameter}."),
        )
    }

    fn invalid_receipt(handle: &str) -> Self {
        ApiError::new(
            "ReceiptHandleIsInvalid",
            "ReceiptHandleIsInvalid",
            format!("The input receipt handle \"{handle}\" is not a valid receipt handle."),
        )
    }

    fn serialization(message: impl Into<String>) -> Self {
        ApiError::new("SerializationException", "", message)
    }

    /// A batch result's `Failed` entry.
    fn entry(&self, id: &str) -> Value {
        let code = if self.code.is_empty() { self.shape } else { self.code };
        json!({ "Id": id, "SenderFault": true, "Code": code, "Message": self.message })
    }

    fn response(&self) -> HttpResponse {
        let namespace = if matches!(self.shape, "SerializationException" | "AccessDeniedException") {
            "com.amazon.coral.service"
        } else {
            "com.amazonaws.sqs"
        };
        let body = json!({ "__type": format!("{namespace}#{}", self.shape), "message": self.message });
        let query = (!self.code.is_empty()).then(|| format!("{};Sender", self.code));
        let status = match self.shape {
            "AccessDeniedException" => StatusCode::FORBIDDEN,
            _ => StatusCode::BAD_REQUEST,
        };
        json_response(status, &body, query)
    }
}

fn json_response(status: StatusCode, body: &Value, query_error: Option<String>) -> HttpResponse {
    let mut builder = Response::builder()
        .status(status)
        .header("content-type", CONTENT_TYPE)
        .header("x-amzn-requestid", ids::invocation_id());
    if let Some(code) = query_error {
        builder = builder.header("x-amzn-query-error", code);
    }
    builder
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attribute(name: &str, data_type: &str, data: AttributeData) -> Attribute {
        Attribute {
            name: name.into(),
            data_type: data_type.into(),
            data,
        }
    }

    #[test]
    fn digests_match_sqs() {
        assert_eq!(md5_hex(b"hello"), "5d41402abc4b2a76b9719d911017c592");
        // A pair another SQS implementation checked against the service.
        let attributes = [
            attribute("ordinal", "Number", AttributeData::Text("1".into())),
            attribute("category", "String", AttributeData::Text("test".into())),
        ];
        assert_eq!(
            md5_of_attributes(&attributes).as_deref(),
            Some("d21ae90c49061e927f57df5f5d72be1f")
        );
        assert_eq!(md5_of_attributes(&[]), None);
    }

    #[test]
    fn receipt_handles_name_their_queue_and_message() {
        let handle = receipt_handle("Q", "m-1");
        assert_eq!(handle_message_id("Q", &handle).as_deref(), Some("m-1"));
        assert_eq!(handle_message_id("Other", &handle), None);
        assert_eq!(handle_message_id("Q", "not a handle"), None);
        assert_ne!(handle, receipt_handle("Q", "m-1"), "every receive gets a new handle");
    }

    #[test]
    fn bodies_keep_only_the_xml_characters() {
        assert_eq!(clean_body("a\u{1}b").unwrap(), "a\u{FFFD}b");
        assert_eq!(clean_body("tab\there\n").unwrap(), "tab\there\n");
        assert!(clean_body("\u{1}\u{2}").is_err());
    }

    #[test]
    fn attribute_name_patterns() {
        assert!(attribute_selected("a.b", &["a.*"]));
        assert!(!attribute_selected("ab", &["a.*"]));
        assert!(attribute_selected("x", &["All"]));
        assert!(attribute_selected("x", &[".*"]));
        assert!(!attribute_selected("x", &["y"]));
        assert!(!attribute_selected("x", &[]));
        assert!(read_attribute("AWS.thing", &json!({"DataType": "String", "StringValue": "v"})).is_err());
        assert!(read_attribute("n", &json!({"DataType": "Number", "StringValue": "12.5"})).is_ok());
        assert!(read_attribute("n", &json!({"DataType": "Number", "StringValue": "twelve"})).is_err());
        assert!(read_attribute("b", &json!({"DataType": "Binary.png", "BinaryValue": "AAE="})).is_ok());
        assert!(read_attribute("t", &json!({"DataType": "Text", "StringValue": "v"})).is_err());
    }

    #[test]
    fn event_records_are_what_aws_lambda_events_reads() {
        let message = Received {
            message_id: "m-1".into(),
            receipt_handle: "handle".into(),
            body: "hello".into(),
            md5_of_body: md5_hex(b"hello"),
            attributes: vec![
                attribute("kind", "String", AttributeData::Text("greeting".into())),
                attribute("blob", "Binary", AttributeData::Binary(vec![0, 1, 2])),
            ],
            receive_count: 2,
            sent_ms: 1_800_000_000_000,
            first_receive_ms: 1_800_000_000_100,
            trace_header: None,
            group_id: None,
            dedup_id: None,
            sequence_number: None,
            dead_letter_source: None,
            size: 5,
        };
        let arn = "arn:aws:sqs:us-east-1:123456789012:Q";
        let event = json!({ "Records": [event_record(&message, arn)] });
        let parsed: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_value(event).unwrap();
        let record = &parsed.records[0];
        assert_eq!(record.message_id.as_deref(), Some("m-1"));
        assert_eq!(record.receipt_handle.as_deref(), Some("handle"));
        assert_eq!(record.body.as_deref(), Some("hello"));
        assert_eq!(record.md5_of_body.as_deref(), Some("5d41402abc4b2a76b9719d911017c592"));
        assert_eq!(record.md5_of_message_attributes, md5_of_attributes(&message.attributes));
        assert_eq!(record.event_source.as_deref(), Some("aws:sqs"));
        assert_eq!(record.event_source_arn.as_deref(), Some(arn));
        assert_eq!(record.aws_region.as_deref(), Some("us-east-1"));
        assert_eq!(record.attributes["ApproximateReceiveCount"], "2");
        assert_eq!(record.attributes["SentTimestamp"], "1800000000000");
        assert_eq!(record.attributes["ApproximateFirstReceiveTimestamp"], "1800000000100");
        assert_eq!(record.attributes["SenderId"], ACCOUNT_ID);
        assert_eq!(
            record.message_attributes["kind"].string_value.as_deref(),
            Some("greeting")
        );
        assert_eq!(record.message_attributes["kind"].data_type.as_deref(), Some("String"));
        let blob = record.message_attributes["blob"].binary_value.as_ref().unwrap();
        assert_eq!(blob.0, vec![0, 1, 2]);
    }

    /// FIFO queue F, whose messages go to the FIFO queue D after `max_receive_count` receives.
    fn fifo_queue(scope: DeduplicationScope, max_receive_count: u64) -> (Arc<Sqs>, Arc<Queue>) {
        let definition = |id: &str, redrive: Option<parley_template::RedrivePolicy>| parley_template::QueueDefinition {
            logical_id: id.into(),
            queue_name: None,
            fifo: Some(FifoSettings {
                content_based_deduplication: false,
                deduplication_scope: scope,
                throughput_limit: parley_template::FifoThroughputLimit::PerQueue,
            }),
            visibility_timeout_secs: 30,
            delay_secs: 0,
            retention_secs: 3600,
            maximum_message_size: 1024,
            receive_wait_secs: 0,
            sqs_managed_sse: true,
            redrive,
        };
        let redrive = parley_template::RedrivePolicy {
            dead_letter_queue: "D".into(),
            max_receive_count,
        };
        let sqs = Sqs::new(
            &[definition("D", None), definition("F", Some(redrive))],
            None,
            "http://127.0.0.1:1",
            Arc::new(LogBook::new(false)),
        );
        let queue = Arc::clone(sqs.queue("F").unwrap());
        assert_eq!(queue.config.name, "F.fifo");
        (sqs, queue)
    }

    fn fifo_message(group: &str, dedup: &str, body: &str) -> NewMessage {
        NewMessage {
            body: body.into(),
            delay: Duration::ZERO,
            attributes: Vec::new(),
            trace_header: None,
            group_id: Some(group.into()),
            dedup_id: Some(dedup.into()),
        }
    }

    #[test]
    fn deduplication_ids_are_forgotten_after_five_minutes() {
        let (sqs, queue) = fifo_queue(DeduplicationScope::Queue, 10);
        let first = sqs.send(&queue, vec![fifo_message("a", "d", "one")]).remove(0);
        let again = sqs
            .send(
                &queue,
                vec![fifo_message("b", "d", "two"), fifo_message("a", "e", "three")],
            )
            .into_iter()
            .map(|s| s.message_id)
            .collect::<Vec<_>>();
        assert_eq!(again[0], first.message_id, "the queue is the scope");
        assert_eq!(queue.bodies(), ["one", "three"]);
        // As if the first send had happened five minutes ago (on a machine up that long).
        let Some(long_ago) = Instant::now().checked_sub(DEDUPLICATION_INTERVAL) else {
            return;
        };
        for first in queue.lock().deduplication.values_mut() {
            first.at = long_ago;
        }
        let later = sqs.send(&queue, vec![fifo_message("a", "d", "four")]).remove(0);
        assert_ne!(later.message_id, first.message_id);
        assert_eq!(queue.bodies(), ["one", "three", "four"]);
        let sequence = |sent: &Sent| sent.sequence_number.as_deref().unwrap().parse::<u128>().unwrap();
        assert!(sequence(&later) > sequence(&first));
    }

    #[test]
    fn a_fifo_receive_moves_a_spent_message_and_goes_on_with_its_group() {
        let (sqs, queue) = fifo_queue(DeduplicationScope::MessageGroup, 1);
        let dead = Arc::clone(sqs.queue("D").unwrap());
        sqs.send(
            &queue,
            vec![
                fifo_message("g", "1", "first"),
                fifo_message("g", "2", "second"),
                fifo_message("h", "1", "other"),
            ],
        );
        let bodies = |outcome: ReceiveOutcome| outcome.messages.into_iter().map(|m| m.body).collect::<Vec<_>>();
        let hold = Duration::from_secs(30);
        assert_eq!(
            bodies(sqs.receive(&queue, 1, Duration::ZERO, usize::MAX)),
            ["first"],
            "the same deduplication id in another group is another message"
        );
        // Received with no visibility timeout, `first` is back at once, spent: the next receive moves
        // it and goes on with its group.
        assert_eq!(bodies(sqs.receive(&queue, 1, hold, usize::MAX)), ["second"]);
        assert_eq!(dead.bodies(), ["first"]);
        assert_eq!(bodies(sqs.receive(&queue, 10, hold, usize::MAX)), ["other"]);
        assert!(bodies(sqs.receive(&queue, 10, hold, usize::MAX)).is_empty());
        assert_eq!(queue.lock().groups_in_flight(Instant::now()), 2);
        let parked = sqs.receive(&dead, 1, hold, usize::MAX).messages.remove(0);
        assert_eq!(
            (parked.group_id.as_deref(), parked.dedup_id.as_deref()),
            (Some("g"), Some("1"))
        );
        assert!(
            parked.sequence_number.is_some(),
            "a FIFO dead-letter queue numbers what it gets"
        );
    }

    #[test]
    fn errors_carry_the_query_code() {
        let response = ApiError::queue_does_not_exist().response();
        assert_eq!(response.status(), 400);
        assert_eq!(
            response.headers()["x-amzn-query-error"],
            "AWS.SimpleQueueService.NonExistentQueue;Sender"
        );
        assert_eq!(response.headers()["content-type"], CONTENT_TYPE);
    }
}
