//! One reader per shard for every mapping on the stream: the feed reads the shard (GetShardIterator,
//! GetRecords) and keeps what it read in a ring that each mapping's consumer of the shard takes from at
//! its own pace, with its own position, filters, batches, retries and checkpoints.
//!
//! - Positions: each consumer's `Floor` says which records are still its own (after its checkpoint,
//!   from the first record written after a `LATEST` mapping started, or all). The feed starts at the
//!   earliest position any of them needs, and each skips what it has already done.
//! - `LATEST` beside earlier positions: the iterator taken when the mapping started (before the stack
//!   reports ready) is kept as a probe. After each read of the feed, while no record written since has
//!   been seen, one GetRecords on the probe tells whether anything the feed just read came after the
//!   start: nothing from the probe means all of it came before; its first record is where the mapping
//!   starts. (When every consumer starts at `LATEST`, the feed reads from that iterator itself.)
//! - Pace: at most one read every `POLL_INTERVAL` (straight on after a full page, to catch up), and none
//!   at all once nothing has come for `BUSY_TAIL` and no function has run or call gone through the stack's
//!   DynamoDB endpoint (`Activity`) in that time, apart from one read every `IDLE_POLL`, which keeps the
//!   iterators alive (they last 15 minutes) and picks up what was written to DynamoDB Local's own port.
//! - Memory: the ring drops what every attached consumer has taken, and holds at most `RING_CAPACITY`
//!   records: a consumer that falls further behind (a batch retried for minutes) is detached and reads
//!   by itself from its own position until it has caught up, then attaches again.

use std::cmp::Ordering;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::Value;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use super::dynamodb_streams::{CallError, Position, StreamsApi, MAX_RECORDS_PER_CALL};
use crate::activity::Activity;
use crate::logs::LogBook;

/// Lambda polls each shard four times a second.
pub(super) const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// How long after the last record, invocation or relayed call the pollers keep polling.
pub(super) const BUSY_TAIL: Duration = Duration::from_secs(1);
/// How often a poller reads while nothing happens at all.
pub(super) const IDLE_POLL: Duration = Duration::from_secs(60);
/// After DynamoDB Local refused or failed a call.
pub(super) const ERROR_PAUSE: Duration = Duration::from_secs(1);
/// The most records a feed holds for consumers that have not taken them.
const RING_CAPACITY: usize = 10_000;

/// A sequence number, compared as the number it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Sequence(pub String);

impl Sequence {
    fn digits(&self) -> &str {
        self.0.trim_start_matches('0')
    }
}

impl Ord for Sequence {
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, b) = (self.digits(), other.digits());
        a.len().cmp(&b.len()).then_with(|| a.cmp(b))
    }
}

impl PartialOrd for Sequence {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A record as DynamoDB Local returned it.
#[derive(Debug)]
pub(super) struct RawRecord {
    pub sequence: Option<Sequence>,
    pub value: Value,
    pub read_at: SystemTime,
}

/// Which records of the shard are still a consumer's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Floor {
    /// All of them: nothing read yet.
    Start,
    /// Those after this one (read already, or checkpointed by an earlier run).
    After(Sequence),
    /// `LATEST`: this one (the first written after the mapping started) and those after it.
    From(Sequence),
    /// `LATEST`, before a record written after the start has been seen: none of what has been read.
    Latest,
}

impl Floor {
    fn admits(&self, sequence: &Sequence) -> bool {
        match self {
            Floor::Start => true,
            Floor::After(last) => sequence > last,
            Floor::From(first) => sequence >= first,
            Floor::Latest => false,
        }
    }

    /// Where an iterator of this consumer's own starts.
    pub fn position(&self) -> Position {
        match self {
            Floor::Start => Position::TrimHorizon,
            Floor::After(last) => Position::After(last.0.clone()),
            Floor::From(first) => Position::At(first.0.clone()),
            Floor::Latest => Position::Latest,
        }
    }

    /// Whether dropping every record up to `dropped` from the ring takes nothing this consumer needs.
    fn covers(&self, dropped: Option<&Sequence>) -> bool {
        match (self, dropped) {
            (_, None) | (Floor::Latest, _) => true,
            (Floor::Start, Some(_)) => false,
            (Floor::After(last), Some(dropped)) => dropped <= last,
            (Floor::From(first), Some(dropped)) => dropped < first,
        }
    }

    /// The earlier of two starting points.
    fn earlier(self, other: Floor) -> Floor {
        let key = |floor: &Floor| match floor {
            Floor::Start => (0, None),
            Floor::After(s) => (1, Some(s.clone())),
            Floor::From(s) => (1, Some(s.clone())),
            Floor::Latest => (2, None),
        };
        let (a, b) = (key(&self), key(&other));
        match a.cmp(&b) {
            Ordering::Less => self,
            Ordering::Greater => other,
            // The same sequence number: `From` (it) is earlier than `After` (past it).
            Ordering::Equal if matches!(self, Floor::From(_)) => self,
            Ordering::Equal => other,
        }
    }
}

/// One consumer's place in the feed.
struct Slot {
    /// The absolute index of the next record to take; None: detached (reading by itself).
    cursor: Option<u64>,
    floor: Floor,
    /// Its consumer runs (the shard's parent is done for the mapping); before that it only holds its place.
    ready: bool,
    finished: bool,
}

struct State {
    ring: VecDeque<Arc<RawRecord>>,
    /// The absolute index of `ring[0]`.
    first_index: u64,
    /// The sequence number of the last record dropped from the ring.
    dropped: Option<Sequence>,
    slots: Vec<Slot>,
    /// Where a new iterator of the feed starts, and the iterator.
    position: Position,
    iterator: Option<String>,
    /// The `LATEST` probe, while consumers wait to know where they start.
    probe: Option<String>,
    /// The feed reads from a `LATEST` iterator: its first record is where those consumers start.
    from_latest: bool,
    /// Read to its end: GetRecords gave no next iterator.
    ended: bool,
    /// Every slot has finished (or reads by itself) and the feed has ended.
    retired: bool,
    /// The start of the last read that found nothing new.
    caught_up_as_of: Option<Instant>,
    last_error: Option<String>,
}

pub(super) enum Take {
    /// Records for the consumer (possibly none yet).
    Records(Vec<Arc<RawRecord>>),
    /// The shard has ended and everything in it has been taken.
    Ended,
    /// The ring moved on past what the consumer had not taken: it reads by itself from its floor.
    Detached(Floor),
}

pub(super) struct Feed {
    pub shard: String,
    /// `<table> stream, <shard>`.
    what: String,
    api: Arc<StreamsApi>,
    local_arn: String,
    activity: Arc<Activity>,
    logs: Arc<LogBook>,
    /// The mapping (by its index) of each slot.
    mappings: Vec<usize>,
    state: Mutex<State>,
    /// Bumped after every read, so that consumers look again.
    version: watch::Sender<u64>,
    /// A consumer took records, became ready or finished: the feed looks again.
    changed: Notify,
}

pub(super) struct FeedStart {
    pub floors: Vec<Floor>,
    /// The `LATEST` iterator taken when the stack started, for a shard with `Floor::Latest` slots.
    pub latest_iterator: Option<String>,
}

impl Feed {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        shard: &str,
        table: &str,
        api: Arc<StreamsApi>,
        local_arn: &str,
        activity: Arc<Activity>,
        logs: Arc<LogBook>,
        start: FeedStart,
        mappings: Vec<usize>,
    ) -> Arc<Self> {
        let earliest = start
            .floors
            .iter()
            .cloned()
            .reduce(Floor::earlier)
            .unwrap_or(Floor::Start);
        let any_latest = start.floors.contains(&Floor::Latest);
        let (position, iterator, probe, from_latest) = match earliest {
            // Every consumer starts at LATEST: the feed reads from that iterator itself.
            Floor::Latest => (Position::Latest, start.latest_iterator, None, true),
            earlier => (
                earlier.position(),
                None,
                start.latest_iterator.filter(|_| any_latest),
                false,
            ),
        };
        let slots = start
            .floors
            .into_iter()
            .map(|floor| Slot {
                cursor: Some(0),
                floor,
                ready: false,
                finished: false,
            })
            .collect();
        Arc::new(Feed {
            shard: shard.to_owned(),
            what: format!("{table} stream, {shard}"),
            api,
            local_arn: local_arn.to_owned(),
            activity,
            logs,
            mappings,
            state: Mutex::new(State {
                ring: VecDeque::new(),
                first_index: 0,
                dropped: None,
                slots,
                position,
                iterator,
                probe,
                from_latest,
                ended: false,
                retired: false,
                caught_up_as_of: None,
                last_error: None,
            }),
            version: watch::channel(0).0,
            changed: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The slot of a mapping (by its index), if it has one.
    pub fn slot_of(&self, mapping: usize) -> Option<usize> {
        self.mappings.iter().position(|m| *m == mapping)
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    pub fn set_ready(&self, slot: usize) {
        self.lock().slots[slot].ready = true;
        self.changed.notify_one();
    }

    /// The start of the feed's last read that found nothing new, when the consumer has taken everything
    /// read before it; None otherwise.
    pub fn caught_up(&self, slot: usize) -> Option<Instant> {
        let state = self.lock();
        let end = state.first_index + state.ring.len() as u64;
        match state.slots[slot].cursor {
            Some(cursor) if cursor >= end => state.caught_up_as_of,
            _ => None,
        }
    }

    /// Up to `max` of the consumer's records, in order.
    pub fn take(&self, slot: usize, max: usize) -> Take {
        let mut state = self.lock();
        let state = &mut *state;
        let end = state.first_index + state.ring.len() as u64;
        let first_index = state.first_index;
        let this = &mut state.slots[slot];
        let Some(mut cursor) = this.cursor else {
            return Take::Detached(this.floor.clone());
        };
        let mut records = Vec::new();
        while records.len() < max && cursor < end {
            let record = &state.ring[(cursor - first_index) as usize];
            cursor += 1;
            match &record.sequence {
                Some(sequence) if this.floor.admits(sequence) => {
                    this.floor = Floor::After(sequence.clone());
                    records.push(Arc::clone(record));
                }
                Some(_) => {}
                // Without a sequence number it cannot be placed; the consumer says so and passes it over.
                None if this.floor != Floor::Latest => records.push(Arc::clone(record)),
                None => {}
            }
        }
        this.cursor = Some(cursor);
        let ended = records.is_empty() && cursor >= end && state.ended;
        if trim(state) {
            self.changed.notify_one();
        }
        if ended {
            Take::Ended
        } else {
            Take::Records(records)
        }
    }

    /// The consumer reads by itself now and has got to `floor`.
    pub fn set_floor(&self, slot: usize, floor: Floor) {
        self.lock().slots[slot].floor = floor;
    }

    /// Attaches a detached consumer again if the ring still holds (or will read) everything after its
    /// floor.
    pub fn try_attach(&self, slot: usize) -> bool {
        let mut state = self.lock();
        let state = &mut *state;
        let first_index = state.first_index;
        if state.retired || !state.slots[slot].floor.covers(state.dropped.as_ref()) {
            return false;
        }
        state.slots[slot].cursor = Some(first_index);
        true
    }

    /// The consumer is done with the shard. True when every consumer is: nobody needs the feed any more.
    pub fn finish(&self, slot: usize) -> bool {
        let mut state = self.lock();
        state.slots[slot].finished = true;
        state.slots[slot].cursor = None;
        if state.ended && state.slots.iter().all(|s| s.finished || s.cursor.is_none()) {
            state.retired = true;
        }
        trim(&mut state);
        self.changed.notify_one();
        state.slots.iter().all(|s| s.finished)
    }

    /// Reads the shard for its consumers until it ends or the stack stops.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut cadence = Cadence::default();
        loop {
            // Wait for a consumer that runs and is attached.
            loop {
                let changed = self.changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                {
                    let state = self.lock();
                    if state.ended || state.retired || *shutdown.borrow() || shutdown.has_changed().is_err() {
                        return;
                    }
                    if state.slots.iter().any(|s| s.ready && !s.finished && s.cursor.is_some()) {
                        break;
                    }
                }
                tokio::select! {
                    _ = changed => {}
                    _ = shutdown.wait_for(|stop| *stop) => return,
                }
            }
            if !cadence.wait(&self.activity, &mut shutdown).await {
                return;
            }
            let started = Instant::now();
            match self.read().await {
                Some(count) => cadence.read(started, count, MAX_RECORDS_PER_CALL),
                None => cadence.read(started, 0, MAX_RECORDS_PER_CALL),
            }
            self.version.send_modify(|v| *v += 1);
        }
    }

    /// One GetRecords (with the GetShardIterator it needs, and the probe's read): how many records it
    /// read, or None when DynamoDB Local refused or failed (said and waited for).
    async fn read(&self) -> Option<usize> {
        let started = Instant::now();
        let (iterator, position, probe) = {
            let mut state = self.lock();
            (state.iterator.take(), state.position.clone(), state.probe.take())
        };
        let iterator = match iterator {
            Some(iterator) => Ok(iterator),
            None => self.api.iterator(&self.local_arn, &self.shard, &position).await,
        };
        let answer = match iterator {
            Ok(iterator) => self.api.records(&iterator, MAX_RECORDS_PER_CALL).await,
            Err(error) => Err(error),
        };
        let answer = match answer {
            Ok(answer) => answer,
            Err(error) => {
                self.lock().probe = probe;
                self.failed_call(error).await;
                return None;
            }
        };
        // Whether the records just read came before the LATEST consumers' start, or where it is.
        let mut probe_first: Option<Sequence> = None;
        let mut probe_next = None;
        if let Some(probe) = probe {
            match self.api.records(&probe, 1).await {
                Ok(found) => {
                    probe_first = found
                        .records
                        .first()
                        .and_then(|r| r["dynamodb"]["SequenceNumber"].as_str())
                        .map(|s| Sequence(s.to_owned()));
                    if probe_first.is_none() {
                        probe_next = found.next_iterator;
                    }
                }
                // Lost (expired after a long pause, say): a new one; what was read so far counts as before.
                Err(_) => {
                    probe_next = self
                        .api
                        .iterator(&self.local_arn, &self.shard, &Position::Latest)
                        .await
                        .ok();
                }
            }
        }
        let read_at = SystemTime::now();
        let count = answer.records.len();
        let mut state = self.lock();
        let state = &mut *state;
        if state.last_error.take().is_some() {
            self.logs
                .gateway(&format!("{}: reading the shard works again", self.what));
        }
        if state.from_latest && probe_first.is_none() {
            probe_first = answer
                .records
                .first()
                .and_then(|r| r["dynamodb"]["SequenceNumber"].as_str())
                .map(|s| Sequence(s.to_owned()));
        }
        if let Some(first) = probe_first {
            state.from_latest = false;
            for slot in state.slots.iter_mut().filter(|s| s.floor == Floor::Latest) {
                slot.floor = Floor::From(first.clone());
            }
        } else {
            state.probe = probe_next;
        }
        let records = answer.records.into_iter().map(|value| RawRecord {
            sequence: value["dynamodb"]["SequenceNumber"]
                .as_str()
                .map(|s| Sequence(s.to_owned())),
            value,
            read_at,
        });
        let detached = append(state, records, RING_CAPACITY);
        match answer.next_iterator {
            Some(next) => state.iterator = Some(next),
            None => state.ended = true,
        }
        state.caught_up_as_of = (count == 0).then_some(started);
        if detached > 0 {
            self.logs.gateway(&format!(
                "{}: {detached} mapping(s) fell over {RING_CAPACITY} records behind; they read the shard by \
                 themselves until they catch up",
                self.what
            ));
        }
        Some(count)
    }

    async fn failed_call(&self, error: CallError) {
        let what = &self.what;
        match error {
            // A new iterator from the same position, at once.
            CallError::ExpiredIterator => {}
            CallError::TrimmedData => {
                self.logs.gateway(&format!(
                    "{what}: records were trimmed from the stream before the mappings read them; reading on from \
                     the oldest record left"
                ));
                self.lock().position = Position::TrimHorizon;
            }
            CallError::NotFound(why) => {
                self.logs
                    .gateway(&format!("{what}: the shard is gone ({why}); reading it no further"));
                self.lock().ended = true;
            }
            CallError::Other(why) => {
                let repeated = {
                    let mut state = self.lock();
                    let repeated = state.last_error.as_deref() == Some(why.as_str());
                    state.last_error = Some(why.clone());
                    repeated
                };
                if !repeated {
                    self.logs
                        .gateway(&format!("{what}: reading the shard failed ({why}); trying again"));
                }
                tokio::time::sleep(ERROR_PAUSE).await;
            }
        }
    }
}

/// Adds what the feed read to the ring, dropping what every attached consumer has taken and, beyond
/// `capacity`, the oldest records: consumers that had not taken them are detached. How many were.
fn append(state: &mut State, records: impl Iterator<Item = RawRecord>, capacity: usize) -> usize {
    for record in records {
        if let Some(sequence) = &record.sequence {
            state.position = Position::After(sequence.0.clone());
        }
        state.ring.push_back(Arc::new(record));
    }
    trim(state);
    if state.ring.len() <= capacity {
        return 0;
    }
    drop_front(state, state.ring.len() - capacity);
    let first_index = state.first_index;
    let mut detached = 0;
    for slot in state.slots.iter_mut().filter(|s| !s.finished) {
        if slot.cursor.is_some_and(|c| c < first_index) {
            if slot.floor == Floor::Latest {
                // It had only records from before its start to pass over.
                slot.cursor = Some(first_index);
            } else {
                slot.cursor = None;
                detached += 1;
            }
        }
    }
    detached
}

/// Drops from the ring what every attached consumer has taken. True if anything was dropped.
fn trim(state: &mut State) -> bool {
    let end = state.first_index + state.ring.len() as u64;
    let needed = state
        .slots
        .iter()
        .filter(|s| !s.finished)
        .filter_map(|s| s.cursor)
        .min()
        .unwrap_or(end);
    let count = needed.saturating_sub(state.first_index) as usize;
    drop_front(state, count);
    count > 0
}

fn drop_front(state: &mut State, count: usize) {
    for _ in 0..count {
        if let Some(record) = state.ring.pop_front() {
            state.first_index += 1;
            if record.sequence.is_some() {
                state.dropped.clone_from(&record.sequence);
            }
        }
    }
}

/// When a poller (a feed, or a consumer reading by itself) reads next.
#[derive(Default)]
pub(super) struct Cadence {
    last_start: Option<Instant>,
    /// The last read returned records.
    flowing: bool,
    /// The last read returned a full page: more is waiting.
    full: bool,
}

impl Cadence {
    pub fn read(&mut self, started: Instant, count: usize, limit: usize) {
        self.last_start = Some(started);
        self.flowing = count > 0;
        self.full = count >= limit;
    }

    /// Waits until the next read is due: a poll interval after the last one began (at once after a
    /// full page) and, when the last read found nothing, only while the stack is busy or once the idle
    /// interval has passed. False: the stack is stopping.
    pub async fn wait(&self, activity: &Activity, shutdown: &mut watch::Receiver<bool>) -> bool {
        let Some(last) = self.last_start else {
            return !*shutdown.borrow();
        };
        if !self.full {
            tokio::select! {
                _ = tokio::time::sleep_until(last + POLL_INTERVAL) => {}
                _ = shutdown.wait_for(|stop| *stop) => return false,
            }
        }
        loop {
            let notified = activity.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.flowing || activity.busy(BUSY_TAIL) || last.elapsed() >= IDLE_POLL {
                return !*shutdown.borrow();
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(last + IDLE_POLL) => {}
                _ = shutdown.wait_for(|stop| *stop) => return false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: &str) -> Sequence {
        Sequence(n.to_owned())
    }

    fn raw(n: u64) -> RawRecord {
        let sequence = format!("{n:021}");
        RawRecord {
            sequence: Some(Sequence(sequence.clone())),
            value: serde_json::json!({ "dynamodb": { "SequenceNumber": sequence } }),
            read_at: SystemTime::now(),
        }
    }

    fn numbers(take: Take) -> Vec<u64> {
        match take {
            Take::Records(records) => records
                .iter()
                .map(|r| r.sequence.as_ref().unwrap().0.parse().unwrap())
                .collect(),
            Take::Ended => panic!("ended"),
            Take::Detached(floor) => panic!("detached at {floor:?}"),
        }
    }

    #[tokio::test]
    async fn each_consumer_takes_its_own_records_at_its_own_pace_and_a_laggard_reads_alone_then_attaches_again() {
        let floors = vec![Floor::Start, Floor::After(raw(2).sequence.unwrap()), Floor::Latest];
        let feed = Feed::new(
            "shardId-1",
            "T",
            Arc::new(StreamsApi::new("http://127.0.0.1:9")),
            "arn",
            Arc::default(),
            Arc::new(LogBook::new(false)),
            FeedStart {
                floors,
                latest_iterator: Some("probe".to_owned()),
            },
            vec![0, 1, 2],
        );
        {
            let state = feed.lock();
            assert_eq!(state.position, Position::TrimHorizon, "from the earliest floor");
            assert_eq!(
                state.probe.as_deref(),
                Some("probe"),
                "the LATEST consumer's start is probed"
            );
        }
        append(&mut feed.lock(), (1..=5).map(raw), 100);
        assert_eq!(numbers(feed.take(0, 2)), [1, 2]);
        assert_eq!(numbers(feed.take(1, 10)), [3, 4, 5], "after its checkpoint");
        assert!(
            numbers(feed.take(2, 10)).is_empty(),
            "LATEST: all of it came before its start"
        );
        assert_eq!(feed.lock().ring.len(), 3, "kept for the first consumer");
        assert_eq!(feed.lock().position, Position::After(raw(5).sequence.unwrap().0));

        // Beyond the ring's capacity the first consumer is detached, at its own floor.
        assert_eq!(append(&mut feed.lock(), (6..=9).map(raw), 4), 1);
        match feed.take(0, 10) {
            Take::Detached(floor) => assert_eq!(floor, Floor::After(raw(2).sequence.unwrap())),
            _ => panic!("detached"),
        }
        assert_eq!(numbers(feed.take(1, 10)), [6, 7, 8, 9]);
        assert!(numbers(feed.take(2, 10)).is_empty(), "still none after its start");
        assert_eq!(feed.lock().ring.len(), 0, "nobody attached needs them");
        // Alone, it has read up to 8: 9 was dropped, so it reads on alone; once it has 9, it attaches.
        feed.set_floor(0, Floor::After(raw(8).sequence.unwrap()));
        assert!(!feed.try_attach(0));
        feed.set_floor(0, Floor::After(raw(9).sequence.unwrap()));
        assert!(feed.try_attach(0));
        append(&mut feed.lock(), (10..=11).map(raw), 4);
        assert_eq!(numbers(feed.take(0, 10)), [10, 11]);
        feed.lock().ended = true;
        assert!(matches!(feed.take(0, 10), Take::Ended));
        assert!(!feed.finish(0) && !feed.finish(1));
        assert!(feed.finish(2), "every consumer is done");
    }

    #[test]
    fn sequence_numbers_compare_as_numbers() {
        assert!(s("000000000000000000010") > s("000000000000000000009"));
        assert!(s("100") > s("99"));
        assert_eq!(s("0007").cmp(&s("7")), Ordering::Equal);
    }

    #[test]
    fn floors_admit_their_own_records_and_the_feed_starts_at_the_earliest() {
        assert!(Floor::Start.admits(&s("1")));
        assert!(!Floor::After(s("5")).admits(&s("5")) && Floor::After(s("5")).admits(&s("6")));
        assert!(Floor::From(s("5")).admits(&s("5")) && !Floor::From(s("5")).admits(&s("4")));
        assert!(!Floor::Latest.admits(&s("9")));
        assert_eq!(Floor::After(s("5")).earlier(Floor::Start), Floor::Start);
        assert_eq!(Floor::After(s("5")).earlier(Floor::After(s("3"))), Floor::After(s("3")));
        assert_eq!(Floor::After(s("5")).earlier(Floor::From(s("5"))), Floor::From(s("5")));
        assert_eq!(Floor::Latest.earlier(Floor::After(s("3"))), Floor::After(s("3")));
        assert_eq!(Floor::Latest.earlier(Floor::Latest), Floor::Latest);
        assert!(Floor::After(s("5")).covers(Some(&s("5"))) && !Floor::After(s("5")).covers(Some(&s("6"))));
        assert!(Floor::From(s("5")).covers(Some(&s("4"))) && !Floor::From(s("5")).covers(Some(&s("5"))));
        assert!(!Floor::Start.covers(Some(&s("1"))) && Floor::Start.covers(None));
    }
}
