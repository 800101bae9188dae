//! Real-time delivery (docs/ARCHITECTURE.md "Delivery to connections").
//!
//! The layering: the domain decides what happened and who must hear of it, and returns [`Outgoing`]
//! events; [`Publisher::publish`] is the one place a request hands them on; the delivery worker
//! ([`worker`]) is the one place that posts to connections.
//!
//! A write's request does constant work: it puts its events on the delivery queue with one
//! `SendMessageBatch`, one entry per piece of at most [`PIECE_MEMBERS`] members (a 1000-member group is
//! 10 entries, still one call). Each piece is one SQS message; the worker takes up to 10 at a time,
//! reads that piece's connection sets (100 users a BatchGetItem) and posts concurrently. Events for one
//! connection that arrive in the same batch, from different requests too, go out as one `batch` frame
//! (at most [`FRAME_EVENTS`] events a frame).
//!
//! Why SQS, and not the other two mechanisms AWS offers:
//! - The table's stream is read by Lambda about four times a second per shard, so it adds 100 to 250 ms
//!   before any work starts, and it cannot split one message's delivery into parallel pieces: one
//!   shard's records are processed in order by one invocation. Fine for search indexing, too slow and too
//!   serial for delivery (the 1000-member budget is 250 ms end to end).
//! - Asynchronous invokes (`InvocationType=Event`) hand one event to one invocation: no batching, so no
//!   coalescing of events across requests, one invocation per piece per message, no order between two
//!   messages' invocations, and retries only twice, one and two minutes later.
//! - SQS: `SendMessageBatch` carries all pieces of a message in one call (USD 0.50 per million FIFO
//!   calls; the event source mapping's receives and deletes are billed too, amortised over batches of up
//!   to 10), Lambda's pollers long-poll so an idle queue adds tens of milliseconds, a batch of 10
//!   records is one invocation (what makes coalescing possible), a record that fails comes back after the
//!   visibility timeout and is redriven to a dead-letter queue after `maxReceiveCount` receives.
//!
//! The delivery queue is FIFO with one message group per conversation piece: a connection gets a
//! conversation's events in the order they were published (a standard queue let two messages' batches
//! race, and members saw message 2 before message 1), while pieces and conversations still run in
//! parallel (high-throughput FIFO: limits per group, not per queue). FIFO queues have no per-message
//! delay, and a failing record holds up its group, so a connection whose post fails is not retried in
//! the group: it goes to a standard retry queue with a doubling delay, and is parked after the last
//! attempt. Clients still order by `seq` and dedupe by `id` (docs/API-GUIDE.md "Delivery rules"):
//! at-least-once means a retried event can arrive after later ones.
//!
//! Every conversation goes through the queue, small ones too: inline delivery would save one hop
//! (a few milliseconds) for direct conversations but lose ordering, coalescing and the retries.

pub mod events;
pub mod fanout;
pub mod publisher;
pub mod worker;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use fanout::{Delivery, Fanout};
pub use publisher::Publisher;

/// A domain result's value, once its events are queued for delivery: the one place a route (or the
/// alarm responder) hands events on. When they cannot be queued the answer is 503; the write itself is
/// idempotent, so the client's retry publishes them again.
pub async fn deliver<T>(context: &crate::AppContext, published: Published<T>) -> Result<T, crate::error::ApiError> {
    context.publish(&published.events).await?;
    Ok(published.value)
}

/// Members per delivery piece: one BatchGetItem of connection sets.
pub const PIECE_MEMBERS: u64 = 100;
/// Events per `batch` frame at most.
pub const FRAME_EVENTS: usize = 10;

/// Who must hear of an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum Audience {
    /// Every member of a conversation, as of `members_version`.
    Conversation {
        id: String,
        members_version: u64,
        member_count: u64,
        /// A direct conversation's two members (they never change), so no member read is needed.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        direct_members: Vec<String>,
    },
    /// These users (presence, a removed member's last event).
    Users(Vec<String>),
}

impl Audience {
    pub fn conversation(record: &crate::store::ConversationRecord) -> Self {
        Audience::Conversation {
            id: record.id.clone(),
            members_version: record.members_version,
            member_count: record.member_count,
            direct_members: record.direct_members.clone(),
        }
    }
}

/// Whose connections not to deliver to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Skip {
    #[default]
    Nobody,
    /// The connection the event came from (it got an `ack`; the sender's other devices still get it).
    Connection(String),
    /// All of a user's connections (`typing` goes to the others only).
    User(String),
    /// All connections of these users (`typing` skips the typist and whoever blocked them).
    Users(Vec<String>),
}

/// One event and whom it is for: what the domain returns and the publisher queues.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub event: Value,
    pub audience: Audience,
    pub skip: Skip,
}

impl Outgoing {
    pub fn to_conversation(record: &crate::store::ConversationRecord, event: Value) -> Self {
        Outgoing {
            event,
            audience: Audience::conversation(record),
            skip: Skip::Nobody,
        }
    }

    pub fn to_users(users: Vec<String>, event: Value) -> Self {
        Outgoing {
            event,
            audience: Audience::Users(users),
            skip: Skip::Nobody,
        }
    }

    pub fn skipping(mut self, skip: Skip) -> Self {
        self.skip = skip;
        self
    }
}

/// A domain result together with the events it gives rise to.
#[derive(Debug)]
pub struct Published<T> {
    pub value: T,
    pub events: Vec<Outgoing>,
}

impl<T> Published<T> {
    pub fn new(value: T, events: Vec<Outgoing>) -> Self {
        Published { value, events }
    }

    pub fn quiet(value: T) -> Self {
        Published {
            value,
            events: Vec::new(),
        }
    }
}
