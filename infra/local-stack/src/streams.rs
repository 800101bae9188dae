//! Lambda's DynamoDB stream event source mappings, from the functions' `Type: DynamoDB` events:
//! pollers that read the table's real stream from DynamoDB Local (DescribeTable, DescribeStream,
//! GetShardIterator, GetRecords) and invoke the function with the records, as Lambda does.
//!
//! What is emulated:
//! - Each shard is read in order, a child shard only once its parent has been read to its end, about
//!   four times a second while records may come (Lambda's polling rate), with one batch per shard in
//!   flight (`ParallelizationFactor: 1`; the template check refuses more). Shards run side by side.
//! - `TRIM_HORIZON` starts at the oldest record the stream holds; `LATEST` at the records written after
//!   the mapping started: its iterators are taken before the stack reports itself started, so nothing a
//!   function or test writes after that is missed. Shards that appear later are read from their start.
//! - The event is Lambda's: DynamoDB's stream records (`eventID`, `eventName`, `eventVersion`,
//!   `eventSource`, `dynamodb` with `ApproximateCreationDateTime`, `Keys`, `NewImage`, `OldImage`,
//!   `SequenceNumber`, `SizeBytes`, `StreamViewType`, and `userIdentity` on TTL deletions), with
//!   `awsRegion` and `eventSourceARN` (the ARN `!GetAtt Table.StreamArn` gives the functions).
//! - `FilterCriteria` (see `event_filter`) is applied before batching: a record matching no filter is
//!   passed over and never reaches the function.
//! - A batch holds up to `BatchSize` records and 6 MB; with `MaximumBatchingWindowInSeconds` the poller
//!   keeps reading until the batch is full or the window, counted from the first record gathered, ends.
//! - A function error, crash, timeout or unreadable `ReportBatchItemFailures` answer fails the whole
//!   batch: it is retried (after a short backoff) or, with `BisectBatchOnFunctionError`, split in halves
//!   that are tried in turn (splitting uses up no retry, as in Lambda). With `ReportBatchItemFailures`,
//!   `batchItemFailures` naming sequence numbers of the batch checkpoints just before the lowest one and
//!   retries from there. After `MaximumRetryAttempts` retries, or once a record is older than
//!   `MaximumRecordAgeInSeconds`, the records are discarded: their metadata (Lambda's invocation record,
//!   with `DDBStreamBatchInfo`) goes to the `OnFailure` SQS queue, and the shard moves on. Nothing is
//!   skipped otherwise, and a record is delivered again only after a failure.
//! - Checkpoints outlive the stack when it keeps its data (`stream-checkpoints.json` beside DynamoDB
//!   Local's files, see `checkpoints`): a restart carries on after the last record done, as a deployed
//!   mapping does, rather than going back to its `StartingPosition`.
//!
//! Where it differs from AWS:
//! - Checkpoints are written down once a second: after a crash of the stack (not a stop), up to a
//!   second's worth of records is delivered again.
//! - DynamoDB Local stamps `ApproximateCreationDateTime` to the minute, so a record's age is counted from
//!   the earlier of that minute's end and when the poller first read it.
//! - With `MaximumRecordAgeInSeconds: -1`, records are retried until they are 24 hours old, DynamoDB
//!   Streams' retention (DynamoDB Local trims nothing itself).
//! - Retries follow a short backoff (0.1 s doubling to 2 s); Lambda's own timing is unpublished.
//!
//! What it costs DynamoDB Local (see `feed`): every mapping on the stream shares one reader per shard,
//! so a shard is read at most four times a second whatever the number of mappings (Lambda reads it
//! four times a second per mapping), and not at all while nothing happens: the readers stop a second
//! after the last record, function invocation or call through the stack's DynamoDB endpoint, and
//! start again at the next one (a read a minute otherwise). A record written by a function or through
//! that endpoint is read within a quarter of a second; one written to DynamoDB Local's own port while
//! the stack is quiet, within a minute. The shard list is read once for all mappings, every 10 s while
//! the stack is busy, when a shard ends, and when `idle` asks.

mod checkpoints;
mod dynamodb_streams;
mod feed;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use parley_template::{FunctionDefinition, StartingPosition, StreamEvent};
use serde_json::{json, Value};
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use crate::activity::Activity;
use crate::event_filter::{self, FilterPattern};
use crate::ids;
use crate::logs::LogBook;
use crate::runtime::{FunctionPool, InvokeError};
use crate::sqs::{NewMessage, Queue, Sqs};
use crate::StackError;
use checkpoints::{Checkpoint, Checkpoints};
pub use dynamodb_streams::StreamCalls;
use dynamodb_streams::{CallError, Shard, StreamsApi};
use feed::{Cadence, Feed, FeedStart, Floor, RawRecord, Sequence, Take};

/// Lambda's synchronous invocation payload limit, which bounds a batch.
const MAX_EVENT_BYTES: usize = 6 * 1024 * 1024;
/// `{"Records":[` and `]}`.
const EVENT_OVERHEAD: usize = 14;
/// How often the shard list is read again while the stack is busy and nothing asks for it sooner.
const RELIST_INTERVAL: Duration = Duration::from_secs(10);
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(100);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(2);
/// How long a throttled stream batch waits before it is offered again.
const THROTTLED_RETRY_DELAY: Duration = Duration::from_millis(200);
/// DynamoDB Streams keeps records for 24 hours: the age at which `MaximumRecordAgeInSeconds: -1` gives up.
const STREAM_RETENTION: Duration = Duration::from_secs(24 * 3600);
/// DynamoDB Local's creation times are rounded down to the minute.
const CREATION_TIME_PRECISION: Duration = Duration::from_secs(60);
/// How often changed checkpoints are written down.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);
/// While `idle` waits, how often it tells the readers to look (they stop after `feed::BUSY_TAIL`).
const IDLE_NUDGE: Duration = Duration::from_millis(200);

/// The table's stream, as DynamoDB Local names it and as the functions see it.
#[derive(Clone)]
pub struct TableStream {
    pub table: String,
    /// DynamoDB Local's ARN (region `ddblocal`), for the streams API.
    local_arn: String,
    /// The stream label: its creation time, the last part of either ARN.
    pub label: String,
    /// `arn:aws:dynamodb:<region>:<account>:table/<table>/stream/<label>`: `eventSourceARN`.
    pub arn: String,
    api: Arc<StreamsApi>,
}

/// Finds the stream of `table` on DynamoDB Local.
pub async fn table_stream(endpoint: &str, table: &str) -> Result<TableStream, StackError> {
    let api = Arc::new(StreamsApi::new(endpoint));
    let (local_arn, label) = api.latest_stream(table).await.map_err(|e| StackError::Resource {
        resource: table.to_owned(),
        problem: format!("reading its stream from DynamoDB Local: {e}"),
    })?;
    Ok(TableStream {
        table: table.to_owned(),
        arn: ids::stream_arn(table, &label),
        local_arn,
        label,
        api,
    })
}

/// What can be checked before anything starts: every stream event's filter patterns.
pub fn check(functions: &[FunctionDefinition]) -> Result<(), StackError> {
    for function in functions {
        for event in &function.stream_events {
            compile_filters(function, event)?;
        }
    }
    Ok(())
}

fn compile_filters(function: &FunctionDefinition, event: &StreamEvent) -> Result<Vec<FilterPattern>, StackError> {
    event
        .filter_patterns
        .iter()
        .enumerate()
        .map(|(index, pattern)| {
            FilterPattern::parse(pattern).map_err(|problem| StackError::Resource {
                resource: function.logical_id.clone(),
                problem: format!(
                    "event {}: FilterCriteria.Filters[{index}].Pattern: {problem}",
                    event.name
                ),
            })
        })
        .collect()
}

/// The running stream mappings.
pub struct Streams {
    hub: Option<Arc<Hub>>,
    paused: watch::Sender<bool>,
    checkpoints: Arc<Checkpoints>,
}

impl Streams {
    /// Paused, the pollers invoke nothing: records pile up in the stream. A batch already being
    /// delivered (retries included) finishes.
    pub fn pause(&self, paused: bool) {
        self.paused.send_replace(paused);
    }

    /// Returns once every mapping has read its stream up to what was written before the call, and every
    /// record it read has been delivered, discarded or filtered out. While paused, that waits for the
    /// resume if records are waiting.
    pub async fn idle(&self) {
        let Some(hub) = &self.hub else { return };
        let since = Instant::now();
        hub.relist.notify_one();
        let mut nudged = since;
        hub.activity.touch();
        while !hub.mappings.iter().all(|m| m.idle_since(since)) {
            if nudged.elapsed() >= IDLE_NUDGE {
                hub.activity.touch();
                nudged = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The calls made to DynamoDB Local's streams API so far.
    pub fn calls(&self) -> StreamCalls {
        self.hub.as_ref().map(|hub| hub.stream.api.calls()).unwrap_or_default()
    }

    /// Writes the checkpoints down now (the stack is stopping).
    pub fn flush(&self) -> std::io::Result<()> {
        self.checkpoints.flush()
    }
}

/// Starts a poller for every enabled `Type: DynamoDB` event; each has its `LATEST` iterators when this
/// returns. With a `checkpoint_file`, each carries on from where the last run's stopped.
#[allow(clippy::too_many_arguments)]
pub async fn start(
    functions: &[FunctionDefinition],
    stream: Option<&TableStream>,
    checkpoint_file: Option<PathBuf>,
    pools: &HashMap<String, Arc<FunctionPool>>,
    sqs: &Arc<Sqs>,
    activity: &Arc<Activity>,
    shutdown: watch::Receiver<bool>,
    logs: &Arc<LogBook>,
) -> Result<Streams, StackError> {
    let (paused, paused_rx) = watch::channel(false);
    let (checkpoints, problem) = Checkpoints::open(checkpoint_file);
    if let Some(problem) = problem {
        logs.gateway(&format!(
            "stream checkpoints: {problem}; the stream mappings start from their StartingPosition"
        ));
    }
    let checkpoints = Arc::new(checkpoints);
    let mut mappings = Vec::new();
    let mut first_resource = None;
    for function in functions {
        for event in &function.stream_events {
            let resource = |problem: String| StackError::Resource {
                resource: function.logical_id.clone(),
                problem: format!("event {}: {problem}", event.name),
            };
            let stream = stream
                .filter(|s| s.table == event.table)
                .ok_or_else(|| resource(format!("the local stack runs no stream for table {}", event.table)))?;
            let pool = pools
                .get(&function.logical_id)
                .ok_or_else(|| resource("the function has no instances".to_owned()))?;
            let on_failure = match &event.on_failure_queue {
                None => None,
                Some(queue) => {
                    Some(Arc::clone(sqs.queue(queue).ok_or_else(|| {
                        resource(format!("{queue} is not a queue of the template"))
                    })?))
                }
            };
            if !event.enabled {
                logs.gateway(&format!(
                    "event source mapping {} stream -> {} is disabled (Enabled: false)",
                    event.table, function.logical_id
                ));
                continue;
            }
            let mapping = Arc::new(Mapping {
                index: mappings.len(),
                function: function.logical_id.clone(),
                pool: Arc::clone(pool),
                event: event.clone(),
                filters: compile_filters(function, event)?,
                on_failure,
                sqs: Arc::clone(sqs),
                stream: stream.clone(),
                logs: Arc::clone(logs),
                checkpoints: Arc::clone(&checkpoints),
                key: format!("{}/{}", function.logical_id, event.name),
                progress: Mutex::default(),
            });
            first_resource.get_or_insert_with(|| (function.logical_id.clone(), event.name.clone()));
            logs.gateway(&format!("event source mapping {}", mapping.describe()));
            mappings.push(mapping);
        }
    }
    let (Some(stream), Some((function, event))) = (stream.filter(|_| !mappings.is_empty()), first_resource) else {
        return Ok(Streams {
            hub: None,
            paused,
            checkpoints,
        });
    };
    let hub = Arc::new(Hub {
        stream: stream.clone(),
        mappings,
        feeds: Mutex::default(),
        relist: Notify::new(),
        activity: Arc::clone(activity),
        logs: Arc::clone(logs),
        paused: paused_rx,
        shutdown: shutdown.clone(),
    });
    let first = hub.first_listing().await.map_err(|e| StackError::Resource {
        resource: function,
        problem: format!(
            "event {event}: reading the stream of {} from DynamoDB Local: {e}",
            stream.table
        ),
    })?;
    hub.apply_listing(first.shards, first.listed_at, Some((first.kept, first.latest)));
    tokio::spawn(Arc::clone(&hub).supervise());
    tokio::spawn(keep_checkpoints(Arc::clone(&checkpoints), shutdown, Arc::clone(logs)));
    Ok(Streams {
        hub: Some(hub),
        paused,
        checkpoints,
    })
}

async fn keep_checkpoints(checkpoints: Arc<Checkpoints>, mut shutdown: watch::Receiver<bool>, logs: Arc<LogBook>) {
    let mut failing = false;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(CHECKPOINT_INTERVAL) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        match checkpoints.flush() {
            Ok(()) => failing = false,
            Err(e) if !failing => {
                failing = true;
                logs.gateway(&format!("stream checkpoints could not be written ({e}); trying again"));
            }
            Err(_) => {}
        }
    }
}

struct Mapping {
    /// Its place among the stream's mappings.
    index: usize,
    function: String,
    pool: Arc<FunctionPool>,
    event: StreamEvent,
    filters: Vec<FilterPattern>,
    on_failure: Option<Arc<Queue>>,
    sqs: Arc<Sqs>,
    stream: TableStream,
    logs: Arc<LogBook>,
    checkpoints: Arc<Checkpoints>,
    /// `<Function>/<Event>`: whose checkpoints.
    key: String,
    progress: Mutex<Progress>,
}

#[derive(Default)]
struct Progress {
    /// When the last shard listing that has been acted on was asked for.
    listed_as_of: Option<Instant>,
    shards: HashMap<String, ShardState>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ShardState {
    /// Its parent is still being read.
    Waiting,
    /// Being read; `caught_up_as_of`: the start of the last read that found nothing new while nothing
    /// read was left to deliver.
    Reading { caught_up_as_of: Option<Instant> },
    /// Closed and read to its end (or not to be read: closed before a `LATEST` mapping started).
    Finished,
}

impl Mapping {
    fn describe(&self) -> String {
        let event = &self.event;
        let mut parts = vec![
            format!(
                "from {}",
                match event.starting_position {
                    StartingPosition::TrimHorizon => "TRIM_HORIZON",
                    StartingPosition::Latest => "LATEST",
                }
            ),
            format!("batches of up to {}", event.batch_size),
            format!("window {} s", event.maximum_batching_window_secs),
        ];
        if event.bisect_batch_on_function_error {
            parts.push("bisected on error".to_owned());
        }
        parts.push(match event.maximum_retry_attempts {
            Some(1) => "1 retry".to_owned(),
            Some(n) => format!("{n} retries"),
            None => "retried until the records expire".to_owned(),
        });
        if let Some(age) = event.maximum_record_age_secs {
            parts.push(format!("records up to {age} s old"));
        }
        if event.report_batch_item_failures {
            parts.push("ReportBatchItemFailures".to_owned());
        }
        if !self.filters.is_empty() {
            parts.push(match self.filters.len() {
                1 => "1 filter pattern".to_owned(),
                n => format!("{n} filter patterns"),
            });
        }
        if let Some(queue) = &self.on_failure {
            parts.push(format!("discarded batches to {}", queue.config.name));
        }
        format!("{} stream -> {}: {}", event.table, self.function, parts.join(", "))
    }

    fn what(&self, shard: &str) -> String {
        format!("{} ({} stream, {shard})", self.function, self.event.table)
    }

    fn idle_since(&self, since: Instant) -> bool {
        let progress = self.progress.lock().unwrap_or_else(|p| p.into_inner());
        progress.listed_as_of.is_some_and(|at| at >= since)
            && progress.shards.values().all(|state| match state {
                ShardState::Finished => true,
                ShardState::Waiting => false,
                ShardState::Reading { caught_up_as_of } => caught_up_as_of.is_some_and(|at| at >= since),
            })
    }

    fn set_state(&self, shard: &str, state: ShardState) {
        let mut progress = self.progress.lock().unwrap_or_else(|p| p.into_inner());
        progress.shards.insert(shard.to_owned(), state);
    }
}

/// The stream's readers: the shard list, read once for every mapping, and one feed per shard that
/// some mapping still has to read.
struct Hub {
    stream: TableStream,
    mappings: Vec<Arc<Mapping>>,
    feeds: Mutex<HashMap<String, Arc<Feed>>>,
    /// Asks for the shard list to be read now.
    relist: Notify,
    activity: Arc<Activity>,
    logs: Arc<LogBook>,
    paused: watch::Receiver<bool>,
    shutdown: watch::Receiver<bool>,
}

/// The first listing, and where each mapping starts in it.
struct FirstListing {
    shards: Vec<Shard>,
    listed_at: Instant,
    /// What an earlier run got done, by mapping index and shard.
    kept: Vec<BTreeMap<String, Checkpoint>>,
    /// A `LATEST` iterator for each open shard that a `LATEST` mapping without a checkpoint reads.
    latest: HashMap<String, String>,
}

/// The initial state and floors of the first listing.
type Starts = (Vec<BTreeMap<String, Checkpoint>>, HashMap<String, String>);

impl Hub {
    async fn first_listing(&self) -> Result<FirstListing, CallError> {
        let listed_at = Instant::now();
        let api = &self.stream.api;
        let shards = api.shards(&self.stream.local_arn).await?;
        let kept: Vec<BTreeMap<String, Checkpoint>> = self
            .mappings
            .iter()
            .map(|m| m.checkpoints.of(&m.key, &self.stream.label))
            .collect();
        let mut latest = HashMap::new();
        for shard in shards.iter().filter(|s| !s.closed) {
            let wanted = self.mappings.iter().any(|m| {
                m.event.starting_position == StartingPosition::Latest && !kept[m.index].contains_key(&shard.id)
            });
            if wanted {
                let iterator = api
                    .iterator(&self.stream.local_arn, &shard.id, &dynamodb_streams::Position::Latest)
                    .await?;
                latest.insert(shard.id.clone(), iterator);
            }
        }
        Ok(FirstListing {
            shards,
            kept,
            latest,
            listed_at,
        })
    }

    /// Acts on a shard listing: new shards get a feed (with a place for each mapping that has them to
    /// read), and each mapping starts a consumer for each shard whose parent it has finished.
    fn apply_listing(self: &Arc<Self>, shards: Vec<Shard>, listed_at: Instant, first: Option<Starts>) {
        let is_first = first.is_some();
        let (kept, mut latest) = first.unwrap_or_default();
        let mut feeds = self.feeds.lock().unwrap_or_else(|p| p.into_inner());
        for mapping in &self.mappings {
            let latest_mapping = mapping.event.starting_position == StartingPosition::Latest;
            let mut progress = mapping.progress.lock().unwrap_or_else(|p| p.into_inner());
            for shard in &shards {
                if progress.shards.contains_key(&shard.id) {
                    continue;
                }
                // A LATEST mapping reads none of what closed shards hold (unless an earlier run had got
                // part of the way through one); shards listed later are read from their start.
                let state = match kept.get(mapping.index).and_then(|k| k.get(&shard.id)) {
                    Some(Checkpoint::Finished) => ShardState::Finished,
                    Some(Checkpoint::After(_)) => ShardState::Waiting,
                    None if latest_mapping && shard.closed && is_first => ShardState::Finished,
                    None => ShardState::Waiting,
                };
                progress.shards.insert(shard.id.clone(), state);
            }
        }
        for shard in &shards {
            if feeds.contains_key(&shard.id) {
                continue;
            }
            let mut slots = Vec::new();
            let mut floors = Vec::new();
            for mapping in &self.mappings {
                let waiting = mapping
                    .progress
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .shards
                    .get(&shard.id)
                    == Some(&ShardState::Waiting);
                if !waiting {
                    continue;
                }
                let floor = match kept.get(mapping.index).and_then(|k| k.get(&shard.id)) {
                    Some(Checkpoint::After(sequence)) => Floor::After(Sequence(sequence.clone())),
                    _ if mapping.event.starting_position == StartingPosition::Latest
                        && latest.contains_key(&shard.id) =>
                    {
                        Floor::Latest
                    }
                    _ => Floor::Start,
                };
                slots.push(mapping.index);
                floors.push(floor);
            }
            if slots.is_empty() {
                continue;
            }
            let feed = Feed::new(
                &shard.id,
                &self.stream.table,
                Arc::clone(&self.stream.api),
                &self.stream.local_arn,
                Arc::clone(&self.activity),
                Arc::clone(&self.logs),
                FeedStart {
                    latest_iterator: latest.remove(&shard.id),
                    floors,
                },
                slots,
            );
            tokio::spawn(Arc::clone(&feed).run(self.shutdown.clone()));
            feeds.insert(shard.id.clone(), feed);
        }
        for mapping in &self.mappings {
            let mut progress = mapping.progress.lock().unwrap_or_else(|p| p.into_inner());
            let parent_done = |shard: &Shard| match &shard.parent {
                None => true,
                Some(parent) => progress
                    .shards
                    .get(parent)
                    .is_none_or(|state| *state == ShardState::Finished),
            };
            let ready: Vec<String> = shards
                .iter()
                .filter(|shard| progress.shards.get(&shard.id) == Some(&ShardState::Waiting))
                .filter(|shard| parent_done(shard))
                .map(|shard| shard.id.clone())
                .collect();
            for shard in ready {
                let Some((feed, slot)) = feeds
                    .get(&shard)
                    .and_then(|f| Some((Arc::clone(f), f.slot_of(mapping.index)?)))
                else {
                    continue;
                };
                progress
                    .shards
                    .insert(shard.clone(), ShardState::Reading { caught_up_as_of: None });
                let consumer = Consumer::new(Arc::clone(self), Arc::clone(mapping), feed, slot);
                tokio::spawn(consumer.run(self.paused.clone(), self.shutdown.clone()));
            }
            progress.listed_as_of = Some(listed_at);
        }
    }

    /// Keeps the shard list: read again when asked (a shard ended, `idle`), and every `RELIST_INTERVAL`
    /// while the stack is busy.
    async fn supervise(self: Arc<Self>) {
        let mut shutdown = self.shutdown.clone();
        let mut last_error: Option<String> = None;
        let what = format!("{} stream", self.stream.table);
        loop {
            let mut timer = std::pin::pin!(tokio::time::sleep(RELIST_INTERVAL));
            loop {
                tokio::select! {
                    _ = self.relist.notified() => break,
                    _ = &mut timer => {
                        if self.activity.busy(RELIST_INTERVAL) {
                            break;
                        }
                        // Quiet: the next listing waits for something to happen.
                        timer.as_mut().reset(Instant::now() + RELIST_INTERVAL);
                    }
                    _ = shutdown.wait_for(|stop| *stop) => return,
                }
            }
            let listed_at = Instant::now();
            match self.stream.api.shards(&self.stream.local_arn).await {
                Ok(shards) => {
                    if last_error.take().is_some() {
                        self.logs.gateway(&format!("{what}: listing the shards works again"));
                    }
                    self.apply_listing(shards, listed_at, None);
                }
                Err(error) => {
                    let text = error.to_string();
                    if last_error.as_deref() != Some(text.as_str()) {
                        self.logs
                            .gateway(&format!("{what}: DescribeStream failed ({text}); trying again"));
                    }
                    last_error = Some(text);
                    tokio::time::sleep(feed::ERROR_PAUSE).await;
                    self.relist.notify_one();
                }
            }
        }
    }

    /// A consumer is done with a shard: its feed goes once no mapping needs it, and the shard list is
    /// read again (its children may be ready).
    fn finished(&self, feed: &Feed, slot: usize) {
        if feed.finish(slot) {
            self.feeds.lock().unwrap_or_else(|p| p.into_inner()).remove(&feed.shard);
        }
        self.relist.notify_one();
    }
}

/// A record read from the shard and kept by the filters, waiting for its batch.
#[derive(Debug, Clone)]
struct StreamRecord {
    sequence: String,
    /// The record as it goes into the event, serialised.
    text: String,
    /// `ApproximateCreationDateTime`, in seconds.
    created_secs: f64,
    /// When this record arrived in the stream, as near as can be told (see the module doc).
    arrived: SystemTime,
}

impl StreamRecord {
    /// Lambda's record from the stream's (with the region and stream ARN the functions know), or the
    /// record's sequence number when the filters pass over it; None for a record with no sequence number.
    fn new(
        mut record: Value,
        stream_arn: &str,
        read_at: SystemTime,
        filters: &[FilterPattern],
    ) -> Option<Result<Self, String>> {
        let object = record.as_object_mut()?;
        object.insert("awsRegion".to_owned(), json!(ids::REGION));
        object.insert("eventSourceARN".to_owned(), json!(stream_arn));
        let change = &record["dynamodb"];
        let sequence = change["SequenceNumber"].as_str()?.to_owned();
        if !event_filter::passes(filters, &record) {
            return Some(Err(sequence));
        }
        let created_secs = change["ApproximateCreationDateTime"].as_f64().unwrap_or(0.0);
        let created = UNIX_EPOCH + Duration::from_secs_f64(created_secs.max(0.0));
        let arrived = read_at.min(created + CREATION_TIME_PRECISION);
        Some(Ok(StreamRecord {
            sequence,
            text: record.to_string(),
            created_secs,
            arrived,
        }))
    }

    fn event_bytes(&self) -> usize {
        self.text.len() + 1
    }
}

/// A batch, or what is left of it, on its way to the function.
struct Attempt {
    records: Vec<StreamRecord>,
    retries: u64,
    /// How many times these records have been handed to the function.
    invocations: u64,
    /// Whether the last failure was the function's error (rather than reported batch item failures).
    function_error: bool,
}

enum Outcome {
    Success,
    /// Reported batch item failures: the index of the lowest failed record.
    FailedFrom(usize),
    Failed(String),
    /// Not run: the function's reserved concurrency was in use.
    Throttled,
}

#[derive(Debug, Clone, Copy)]
enum Condition {
    RetryAttemptsExhausted,
    RecordAgeExceeded,
}

impl Condition {
    fn as_str(self) -> &'static str {
        match self {
            Condition::RetryAttemptsExhausted => "RetryAttemptsExhausted",
            Condition::RecordAgeExceeded => "RecordAgeExceeded",
        }
    }
}

/// One mapping's reading of one shard: takes its records from the shard's feed (or, when it has fallen
/// far behind, reads them itself), filters and batches them, and delivers the batches.
struct Consumer {
    hub: Arc<Hub>,
    mapping: Arc<Mapping>,
    feed: Arc<Feed>,
    slot: usize,
    shard: String,
    /// Read to its end.
    closed: bool,
    pending: VecDeque<StreamRecord>,
    /// When the oldest pending record was gathered: the batching window runs from there.
    window_started: Option<Instant>,
    /// Reading by itself (detached from the feed): from where, and its iterator.
    alone: Option<Alone>,
}

struct Alone {
    floor: Floor,
    iterator: Option<String>,
    cadence: Cadence,
    last_error: Option<String>,
}

impl Consumer {
    fn new(hub: Arc<Hub>, mapping: Arc<Mapping>, feed: Arc<Feed>, slot: usize) -> Self {
        Consumer {
            hub,
            mapping,
            shard: feed.shard.clone(),
            feed,
            slot,
            closed: false,
            pending: VecDeque::new(),
            window_started: None,
            alone: None,
        }
    }

    async fn run(mut self, mut paused: watch::Receiver<bool>, mut shutdown: watch::Receiver<bool>) {
        let window = Duration::from_secs(self.mapping.event.maximum_batching_window_secs);
        let batch_size = self.mapping.event.batch_size as usize;
        let mut fed = self.feed.subscribe();
        self.feed.set_ready(self.slot);
        loop {
            if *shutdown.borrow() || shutdown.has_changed().is_err() {
                return;
            }
            let is_paused = *paused.borrow();
            if !is_paused && self.batch_due(batch_size, window) {
                let batch = self.take_batch(batch_size);
                self.mark_busy();
                tokio::select! {
                    _ = self.deliver(batch) => {}
                    _ = shutdown.wait_for(|stop| *stop) => return,
                }
                continue;
            }
            if self.closed && self.pending.is_empty() {
                self.checkpoint(Checkpoint::Finished);
                self.mapping.set_state(&self.shard, ShardState::Finished);
                self.hub.finished(&self.feed, self.slot);
                return;
            }
            // Paused, a consumer takes records only while it holds none, so that little is held back.
            let wants_records =
                !self.closed && self.pending.len() < batch_size && (!is_paused || self.pending.is_empty());
            let room = batch_size - self.pending.len().min(batch_size);
            let window_end = self.window_started.filter(|_| !is_paused).map(|at| at + window);
            if wants_records && self.alone.is_none() {
                fed.borrow_and_update();
                match self.feed.take(self.slot, room) {
                    Take::Records(records) if !records.is_empty() => {
                        self.gather(&records);
                        self.mark_busy();
                        continue;
                    }
                    Take::Records(_) => {
                        if self.pending.is_empty() {
                            let caught_up_as_of = self.feed.caught_up(self.slot);
                            self.mapping
                                .set_state(&self.shard, ShardState::Reading { caught_up_as_of });
                        }
                    }
                    Take::Ended => {
                        self.closed = true;
                        continue;
                    }
                    Take::Detached(floor) => {
                        self.alone = Some(Alone {
                            floor,
                            iterator: None,
                            cadence: Cadence::default(),
                            last_error: None,
                        });
                        self.mark_busy();
                        continue;
                    }
                }
            }
            if let (true, Some(alone)) = (wants_records, &self.alone) {
                let activity = Arc::clone(&self.hub.activity);
                let due = tokio::select! {
                    due = alone.cadence.wait(&activity, &mut shutdown) => due,
                    _ = paused.changed() => continue,
                    _ = sleep_until(window_end) => continue,
                };
                if !due {
                    return;
                }
                let read = tokio::select! {
                    read = self.read_alone(room) => read,
                    _ = shutdown.wait_for(|stop| *stop) => return,
                };
                if read {
                    self.mark_busy();
                }
                continue;
            }
            let watching = wants_records;
            tokio::select! {
                _ = sleep_until(window_end) => {}
                _ = fed.changed(), if watching => {}
                _ = paused.changed() => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
        }
    }

    /// Filters what was taken or read and keeps the rest for batching.
    fn gather(&mut self, records: &[Arc<RawRecord>]) {
        for record in records {
            let Some(kept) = StreamRecord::new(
                record.value.clone(),
                &self.mapping.stream.arn,
                record.read_at,
                &self.mapping.filters,
            ) else {
                self.mapping.logs.gateway(&format!(
                    "{}: DynamoDB Local returned a stream record without a sequence number; passed over",
                    self.mapping.what(&self.shard)
                ));
                continue;
            };
            match kept {
                Ok(record) => {
                    if self.pending.is_empty() {
                        self.window_started = Some(Instant::now());
                    }
                    self.pending.push_back(record);
                }
                // Filtered out: checkpointed without an invocation (kept as the checkpoint when nothing
                // before it waits for delivery).
                Err(sequence) => {
                    if self.pending.is_empty() {
                        self.checkpoint(Checkpoint::After(sequence));
                    }
                }
            }
        }
    }

    /// One GetRecords of its own (and the GetShardIterator it needs), for a consumer that fell behind the
    /// feed; it attaches to the feed again once the feed holds what comes next. False when DynamoDB
    /// Local refused or failed (said and waited for).
    async fn read_alone(&mut self, room: usize) -> bool {
        let started = Instant::now();
        let api = Arc::clone(&self.mapping.stream.api);
        let local_arn = self.mapping.stream.local_arn.clone();
        let alone = self.alone.as_mut().expect("reading alone");
        let iterator = match alone.iterator.take() {
            Some(iterator) => Ok(iterator),
            None => api.iterator(&local_arn, &self.shard, &alone.floor.position()).await,
        };
        let answer = match iterator {
            Ok(iterator) => {
                api.records(&iterator, room.clamp(1, dynamodb_streams::MAX_RECORDS_PER_CALL))
                    .await
            }
            Err(error) => Err(error),
        };
        let what = self.mapping.what(&self.shard);
        let answer = match answer {
            Ok(answer) => answer,
            Err(error) => {
                alone.cadence.read(started, 0, room);
                match error {
                    CallError::ExpiredIterator => {}
                    CallError::TrimmedData => {
                        self.mapping.logs.gateway(&format!(
                            "{what}: records were trimmed from the stream before the mapping read them; reading on \
                             from the oldest record left"
                        ));
                        alone.floor = Floor::Start;
                    }
                    CallError::NotFound(why) => {
                        self.mapping
                            .logs
                            .gateway(&format!("{what}: the shard is gone ({why}); reading it no further"));
                        self.closed = true;
                    }
                    CallError::Other(why) => {
                        if alone.last_error.as_deref() != Some(why.as_str()) {
                            self.mapping
                                .logs
                                .gateway(&format!("{what}: reading the shard failed ({why}); trying again"));
                        }
                        alone.last_error = Some(why);
                        tokio::time::sleep(feed::ERROR_PAUSE).await;
                    }
                }
                return false;
            }
        };
        if alone.last_error.take().is_some() {
            self.mapping
                .logs
                .gateway(&format!("{what}: reading the shard works again"));
        }
        alone.cadence.read(started, answer.records.len(), room);
        let read_at = SystemTime::now();
        let mut records = Vec::with_capacity(answer.records.len());
        for value in answer.records {
            let sequence = value["dynamodb"]["SequenceNumber"]
                .as_str()
                .map(|s| Sequence(s.to_owned()));
            if let Some(sequence) = &sequence {
                alone.floor = Floor::After(sequence.clone());
            }
            records.push(Arc::new(RawRecord {
                sequence,
                value,
                read_at,
            }));
        }
        match answer.next_iterator {
            Some(next) => alone.iterator = Some(next),
            None => self.closed = true,
        }
        let floor = alone.floor.clone();
        self.gather(&records);
        if !self.closed {
            self.feed.set_floor(self.slot, floor);
            if self.feed.try_attach(self.slot) {
                self.alone = None;
            }
        }
        true
    }

    fn checkpoint(&self, checkpoint: Checkpoint) {
        let mapping = &self.mapping;
        mapping
            .checkpoints
            .set(&mapping.key, &mapping.stream.label, &self.shard, checkpoint);
    }

    fn mark_busy(&self) {
        self.mapping
            .set_state(&self.shard, ShardState::Reading { caught_up_as_of: None });
    }

    fn pending_bytes(&self) -> usize {
        EVENT_OVERHEAD + self.pending.iter().map(StreamRecord::event_bytes).sum::<usize>()
    }

    fn batch_due(&self, batch_size: usize, window: Duration) -> bool {
        !self.pending.is_empty()
            && (self.closed
                || self.pending.len() >= batch_size
                || self.pending_bytes() >= MAX_EVENT_BYTES
                || self.window_started.is_some_and(|at| at + window <= Instant::now()))
    }

    fn take_batch(&mut self, batch_size: usize) -> Vec<StreamRecord> {
        let mut batch = Vec::new();
        let mut bytes = EVENT_OVERHEAD;
        while let Some(next) = self.pending.front() {
            if batch.len() >= batch_size || (!batch.is_empty() && bytes + next.event_bytes() > MAX_EVENT_BYTES) {
                break;
            }
            bytes += next.event_bytes();
            batch.extend(self.pending.pop_front());
        }
        // What is left over was gathered already; the next batch's window starts now.
        self.window_started = (!self.pending.is_empty()).then(Instant::now);
        batch
    }

    /// Hands a batch to the function until it succeeds or its records are discarded, as Lambda does.
    async fn deliver(&mut self, batch: Vec<StreamRecord>) {
        let event = &self.mapping.event;
        let max_age = event
            .maximum_record_age_secs
            .map_or(STREAM_RETENTION, Duration::from_secs);
        let what = self.mapping.what(&self.shard);
        let mut work = VecDeque::from([Attempt {
            records: batch,
            retries: 0,
            invocations: 0,
            function_error: false,
        }]);
        while let Some(mut attempt) = work.pop_front() {
            loop {
                let now = SystemTime::now();
                let expired = attempt
                    .records
                    .iter()
                    .take_while(|r| now.duration_since(r.arrived).unwrap_or_default() > max_age)
                    .count();
                if expired > 0 {
                    let old: Vec<StreamRecord> = attempt.records.drain(..expired).collect();
                    self.discard(&old, Condition::RecordAgeExceeded, &attempt);
                    if attempt.records.is_empty() {
                        break;
                    }
                }
                let count = attempt.records.len();
                let outcome = self.invoke(&attempt.records).await;
                attempt.invocations += 1;
                match outcome {
                    Outcome::Success => {
                        self.done_with(&attempt.records);
                        break;
                    }
                    // Lambda retries a throttled batch until its records expire, without counting it as
                    // a retry attempt or bisecting it: the function never saw it.
                    Outcome::Throttled => {
                        tokio::time::sleep(THROTTLED_RETRY_DELAY).await;
                        continue;
                    }
                    Outcome::FailedFrom(index) => {
                        let done: Vec<StreamRecord> = attempt.records.drain(..index).collect();
                        self.done_with(&done);
                        attempt.function_error = false;
                        self.mapping.logs.gateway(&format!(
                            "{what}: the function reported batch item failures; {index} of the batch of {count} are \
                             done, the rest is retried from sequence number {}",
                            attempt.records[0].sequence
                        ));
                    }
                    Outcome::Failed(why) => {
                        attempt.function_error = true;
                        if event.bisect_batch_on_function_error && count > 1 {
                            let second = attempt.records.split_off(count / 2);
                            self.mapping.logs.gateway(&format!(
                                "{what}: the batch of {count} failed ({why}); bisected into batches of {} and {}",
                                attempt.records.len(),
                                second.len()
                            ));
                            work.push_front(Attempt {
                                records: second,
                                ..attempt
                            });
                            work.push_front(Attempt {
                                records: std::mem::take(&mut attempt.records),
                                ..attempt
                            });
                            break;
                        }
                        let next = match event.maximum_retry_attempts {
                            Some(max) if attempt.retries >= max => "no retries left".to_owned(),
                            Some(max) => format!("retry {} of {max}", attempt.retries + 1),
                            None => format!("retry {}", attempt.retries + 1),
                        };
                        self.mapping
                            .logs
                            .gateway(&format!("{what}: the batch of {count} failed ({why}); {next}"));
                    }
                }
                if event.maximum_retry_attempts.is_some_and(|max| attempt.retries >= max) {
                    self.discard(&attempt.records, Condition::RetryAttemptsExhausted, &attempt);
                    break;
                }
                attempt.retries += 1;
                let delay = FIRST_RETRY_DELAY
                    .saturating_mul(1 << (attempt.retries - 1).min(16))
                    .min(MAX_RETRY_DELAY);
                tokio::time::sleep(delay).await;
            }
        }
    }

    fn done_with(&self, records: &[StreamRecord]) {
        if let Some(last) = records.last() {
            self.checkpoint(Checkpoint::After(last.sequence.clone()));
        }
    }

    async fn invoke(&self, records: &[StreamRecord]) -> Outcome {
        match self.mapping.pool.invoke(Bytes::from(event_text(records))).await {
            // The pool has already logged the error itself.
            Err(InvokeError::Timeout) => Outcome::Failed("the function timed out".to_owned()),
            Err(InvokeError::Function(_)) => Outcome::Failed("the function returned an error".to_owned()),
            Err(InvokeError::Crashed(why)) => Outcome::Failed(format!("the instance failed: {why}")),
            Err(InvokeError::Throttled) => Outcome::Throttled,
            Err(error @ InvokeError::PayloadTooLarge) => Outcome::Failed(error.to_string()),
            Ok(_) if !self.mapping.event.report_batch_item_failures => Outcome::Success,
            Ok(response) => match lowest_failure(&response, records) {
                Ok(None) => Outcome::Success,
                Ok(Some(index)) => Outcome::FailedFrom(index),
                Err(problem) => Outcome::Failed(format!("{problem}, so the whole batch counts as failed")),
            },
        }
    }

    /// Gives up on records: Lambda's invocation record to the OnFailure queue, if there is one.
    fn discard(&self, records: &[StreamRecord], condition: Condition, attempt: &Attempt) {
        let (Some(first), Some(last)) = (records.first(), records.last()) else {
            return;
        };
        let mapping = &self.mapping;
        let what = mapping.what(&self.shard);
        let why = match condition {
            Condition::RetryAttemptsExhausted if attempt.retries == 1 => "after 1 retry".to_owned(),
            Condition::RetryAttemptsExhausted => format!("after {} retries", attempt.retries),
            Condition::RecordAgeExceeded => "as older than the maximum record age".to_owned(),
        };
        let range = match records.len() {
            1 => format!("1 record, sequence number {}", first.sequence),
            n => format!("{n} records, sequence numbers {} to {}", first.sequence, last.sequence),
        };
        let Some(queue) = &mapping.on_failure else {
            mapping.logs.gateway(&format!(
                "{what}: discarded {why} ({range}); there is no OnFailure destination"
            ));
            return;
        };
        let record = invocation_record(
            &mapping.function,
            &self.shard,
            &mapping.stream.arn,
            records,
            condition,
            attempt,
        );
        mapping.sqs.send(
            queue,
            vec![NewMessage {
                body: record.to_string(),
                delay: Duration::ZERO,
                attributes: Vec::new(),
                trace_header: None,
                group_id: None,
                dedup_id: None,
            }],
        );
        mapping.logs.gateway(&format!(
            "{what}: discarded {why} ({range}); its metadata went to {}",
            queue.config.name
        ));
    }
}

/// Lambda's DynamoDB event: `{"Records":[...]}`.
fn event_text(records: &[StreamRecord]) -> String {
    let mut event =
        String::with_capacity(EVENT_OVERHEAD + records.iter().map(StreamRecord::event_bytes).sum::<usize>());
    event.push_str("{\"Records\":[");
    for (index, record) in records.iter().enumerate() {
        if index > 0 {
            event.push(',');
        }
        event.push_str(&record.text);
    }
    event.push_str("]}");
    event
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The message Lambda sends an OnFailure destination for discarded stream records.
fn invocation_record(
    function: &str,
    shard: &str,
    stream_arn: &str,
    records: &[StreamRecord],
    condition: Condition,
    attempt: &Attempt,
) -> Value {
    let arrival = |record: &StreamRecord| {
        let at = UNIX_EPOCH + Duration::from_secs_f64(record.created_secs.max(0.0));
        humantime::format_rfc3339_seconds(at).to_string()
    };
    let (first, last) = (&records[0], &records[records.len() - 1]);
    json!({
        "requestContext": {
            "requestId": ids::invocation_id(),
            "functionArn": ids::function_arn(function),
            "condition": condition.as_str(),
            "approximateInvokeCount": attempt.invocations,
        },
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": if attempt.function_error { json!("Unhandled") } else { Value::Null },
        },
        "version": "1.0",
        "timestamp": ids::rfc3339(SystemTime::now()),
        "DDBStreamBatchInfo": {
            "shardId": shard,
            "startSequenceNumber": first.sequence,
            "endSequenceNumber": last.sequence,
            "approximateArrivalOfFirstRecord": arrival(first),
            "approximateArrivalOfLastRecord": arrival(last),
            "batchSize": records.len(),
            "streamArn": stream_arn,
        },
    })
}

/// The index of the lowest record a ReportBatchItemFailures response names (None: complete success),
/// or why Lambda would fail the whole batch. An empty or null response, or an empty or null
/// `batchItemFailures`, is success.
fn lowest_failure(response: &[u8], batch: &[StreamRecord]) -> Result<Option<usize>, String> {
    if response.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value: Value =
        serde_json::from_slice(response).map_err(|_| "the function's response is not JSON".to_owned())?;
    let failures = match &value {
        Value::Null => return Ok(None),
        Value::Object(object) => match object.get("batchItemFailures") {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Array(items)) => items,
            Some(_) => return Err("batchItemFailures in the function's response is not a list".to_owned()),
        },
        _ => return Err("the function's response is not a batch item failures object".to_owned()),
    };
    let mut lowest: Option<usize> = None;
    for item in failures {
        match item.get("itemIdentifier") {
            Some(Value::String(id)) if !id.is_empty() => {
                let index = batch
                    .iter()
                    .position(|r| r.sequence == *id)
                    .ok_or_else(|| format!("the batch item failure {id:?} is not a sequence number of the batch"))?;
                lowest = Some(lowest.map_or(index, |l| l.min(index)));
            }
            _ => return Err("a batch item failure has no itemIdentifier".to_owned()),
        }
    }
    Ok(lowest)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:dynamodb:us-east-1:123456789012:table/T/stream/2026-12-01T10:51:31.410";

    /// A MODIFY as DynamoDB Local's GetRecords returns it.
    fn local_record(sequence: &str, sk: &str) -> Value {
        json!({
            "eventID": "3b938461-c4cf-4396-9264-74b09077d6be",
            "eventName": "MODIFY",
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "ddblocal",
            "dynamodb": {
                "ApproximateCreationDateTime": 1796122260.0,
                "Keys": { "PK": { "S": "conv#1" }, "SK": { "S": sk } },
                "NewImage": { "PK": { "S": "conv#1" }, "SK": { "S": sk }, "n": { "N": "2" } },
                "OldImage": { "PK": { "S": "conv#1" }, "SK": { "S": sk }, "n": { "N": "1" } },
                "SequenceNumber": sequence,
                "SizeBytes": 27,
                "StreamViewType": "NEW_AND_OLD_IMAGES",
            },
        })
    }

    fn record(sequence: &str) -> StreamRecord {
        StreamRecord::new(local_record(sequence, "META"), ARN, SystemTime::now(), &[])
            .unwrap()
            .unwrap()
    }

    #[test]
    fn the_projects_stream_events_can_run_here() {
        let template = parley_template::Template::load(&crate::workspace_template()).unwrap();
        check(&template.functions().unwrap()).unwrap();
    }

    #[test]
    fn the_event_is_lambdas_and_parses_as_aws_lambda_events_does() {
        let records = [record("000000000000000000001"), record("000000000000000000002")];
        let text = event_text(&records);
        let event: aws_lambda_events::event::dynamodb::Event = serde_json::from_str(&text).unwrap();
        assert_eq!(event.records.len(), 2);
        let first = &event.records[0];
        assert_eq!(first.event_name, "MODIFY");
        assert_eq!(first.aws_region, ids::REGION);
        assert_eq!(first.event_source.as_deref(), Some("aws:dynamodb"));
        assert_eq!(first.event_version.as_deref(), Some("1.1"));
        assert_eq!(first.event_source_arn.as_deref(), Some(ARN));
        assert_eq!(first.change.sequence_number.as_deref(), Some("000000000000000000001"));
        assert_eq!(first.change.size_bytes, 27);
        assert_eq!(first.change.approximate_creation_date_time.timestamp(), 1_796_122_260);
        assert!(first.change.keys.get("SK").is_some());
        assert!(first.change.old_image.get("n").is_some() && first.change.new_image.get("n").is_some());
        let value: Value = serde_json::from_str(&text).unwrap();
        assert!(value["Records"][0]["dynamodb"]["ApproximateCreationDateTime"].is_number());
        assert_eq!(
            text.len(),
            EVENT_OVERHEAD + records.iter().map(StreamRecord::event_bytes).sum::<usize>() - 1
        );
    }

    #[test]
    fn records_are_filtered_on_lambdas_shape_and_their_age_allows_for_the_rounded_minute() {
        let filters = [FilterPattern::parse(
            r#"{"eventSourceARN": [{"prefix": "arn:aws:dynamodb:us-east-1:"}], "dynamodb": {"Keys": {"SK": {"S": [{"prefix": "META"}]}}}}"#,
        )
        .unwrap()];
        let read_at = UNIX_EPOCH + Duration::from_secs(1_796_122_300);
        let kept = StreamRecord::new(local_record("1", "META#x"), ARN, read_at, &filters).unwrap();
        assert_eq!(
            kept.as_ref().map(|r| r.arrived),
            Ok(read_at),
            "read within the stamped minute"
        );
        let late = UNIX_EPOCH + Duration::from_secs(1_796_129_000);
        let kept = StreamRecord::new(local_record("1", "META#x"), ARN, late, &filters)
            .unwrap()
            .unwrap();
        assert_eq!(
            kept.arrived,
            UNIX_EPOCH + Duration::from_secs(1_796_122_320),
            "the stamped minute's end"
        );
        let dropped = StreamRecord::new(local_record("2", "MSG#1"), ARN, read_at, &filters).unwrap();
        assert_eq!(dropped.map(|r| r.sequence), Err("2".to_owned()));
        assert!(StreamRecord::new(json!({"dynamodb": {}}), ARN, read_at, &[]).is_none());
    }

    #[test]
    fn batch_item_failures_name_sequence_numbers_and_the_lowest_wins() {
        let batch = [record("1"), record("2"), record("3")];
        let lowest = |text: &str| lowest_failure(text.as_bytes(), &batch);
        for success in [
            "",
            " ",
            "null",
            "{}",
            r#"{"batchItemFailures":[]}"#,
            r#"{"batchItemFailures":null}"#,
        ] {
            assert_eq!(lowest(success), Ok(None), "{success}");
        }
        assert_eq!(
            lowest(r#"{"batchItemFailures":[{"itemIdentifier":"3"},{"itemIdentifier":"2"}]}"#),
            Ok(Some(1))
        );
        for failure in [
            "not json",
            "[]",
            r#"{"batchItemFailures":"2"}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":"9"}]}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":""}]}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":null}]}"#,
            r#"{"batchItemFailures":[{"id":"1"}]}"#,
        ] {
            assert!(lowest(failure).is_err(), "{failure}");
        }
    }

    #[test]
    fn discarded_records_are_described_as_lambda_describes_them() {
        let records = [record("000000000000000000007"), record("000000000000000000009")];
        let attempt = Attempt {
            records: Vec::new(),
            retries: 2,
            invocations: 3,
            function_error: true,
        };
        let body = invocation_record(
            "Worker",
            "shardId-1",
            ARN,
            &records,
            Condition::RetryAttemptsExhausted,
            &attempt,
        );
        assert_eq!(body["version"], "1.0");
        assert_eq!(body["requestContext"]["condition"], "RetryAttemptsExhausted");
        assert_eq!(body["requestContext"]["approximateInvokeCount"], 3);
        assert_eq!(body["requestContext"]["functionArn"], ids::function_arn("Worker"));
        assert_eq!(
            body["responseContext"],
            json!({"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"})
        );
        assert!(body["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
        assert_eq!(
            body["DDBStreamBatchInfo"],
            json!({
                "shardId": "shardId-1",
                "startSequenceNumber": "000000000000000000007",
                "endSequenceNumber": "000000000000000000009",
                "approximateArrivalOfFirstRecord": "2026-12-01T10:51:00Z",
                "approximateArrivalOfLastRecord": "2026-12-01T10:51:00Z",
                "batchSize": 2,
                "streamArn": ARN,
            })
        );
    }
}
