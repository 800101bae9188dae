//! Hands a request's events to the delivery worker: one SQS message per piece of at most
//! [`PIECE_MEMBERS`] recipients, all pieces of a request in as few `SendMessageBatch` calls as SQS allows
//! (10 entries, 256 KiB a call), so a 1000-member group costs the writer one call, as a direct
//! conversation does.
//!
//! The delivery queue is FIFO, and a piece's message group is its conversation and piece: SQS hands one
//! group's messages to the worker in order and one batch at a time, so every connection gets a
//! conversation's events in the order they were published, while different pieces and conversations are
//! delivered in parallel. Each entry has its own deduplication id: a retried send is meant to deliver
//! again. Retries of single connections go to a standard queue instead, which allows a delay per
//! message (the backoff) and does not hold up the piece behind one broken connection.
//!
//! Without a queue (`DELIVERY_QUEUE_URL` unset: in-process tests and tools) the same envelopes are
//! delivered at once by the worker's code, in the caller's process.

use std::time::Duration;

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::fanout::Connection;
use super::{Audience, Outgoing, Skip, PIECE_MEMBERS};
use crate::error::ApiError;

/// What one queue message carries: events and the one piece of recipients they are for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    pub events: Vec<Value>,
    pub to: Target,
    #[serde(default)]
    pub skip: Skip,
    /// Delivery attempts these recipients have had already (0 on the first).
    #[serde(default)]
    pub attempt: u32,
    /// A delayed `presence` (`domain::presence`): delivered only if the user's presence is still at
    /// this version when it comes due, so a later change supersedes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_version: Option<PresenceVersion>,
}

/// Whose presence, and which version of it, a delayed envelope carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PresenceVersion {
    pub user_id: String,
    pub version: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum Target {
    /// The members of a conversation whose id hashes to `piece` of `pieces`.
    Piece {
        conversation_id: String,
        members_version: u64,
        piece: u64,
        pieces: u64,
    },
    Users(Vec<String>),
    /// Connections whose earlier posts failed (a retry).
    Connections(Vec<Connection>),
}

/// Which piece a member falls in: a stable hash of the user id, so a member's events stay in one piece
/// (one FIFO group, so in order) while the piece count does.
pub fn piece_of(user_id: &str, pieces: u64) -> u64 {
    crate::hash::stable_hash(user_id) % pieces.max(1)
}

/// The envelopes of one outgoing event: one per piece.
pub fn envelopes(outgoing: &Outgoing) -> Vec<Envelope> {
    let envelope = |to| Envelope {
        events: vec![outgoing.event.clone()],
        to,
        skip: outgoing.skip.clone(),
        attempt: 0,
        presence_version: None,
    };
    match &outgoing.audience {
        Audience::Conversation { direct_members, .. } if !direct_members.is_empty() => {
            vec![envelope(Target::Users(direct_members.clone()))]
        }
        Audience::Conversation {
            id,
            members_version,
            member_count,
            ..
        } => {
            let pieces = member_count.div_ceil(PIECE_MEMBERS).max(1);
            (0..pieces)
                .map(|piece| {
                    envelope(Target::Piece {
                        conversation_id: id.clone(),
                        members_version: *members_version,
                        piece,
                        pieces,
                    })
                })
                .collect()
        }
        Audience::Users(users) => users
            .chunks(PIECE_MEMBERS as usize)
            .map(|chunk| envelope(Target::Users(chunk.to_vec())))
            .collect(),
    }
}

/// SQS's limits for one `SendMessageBatch`.
const BATCH_ENTRIES: usize = 10;
const BATCH_BYTES: usize = 250 * 1024;
/// Entries SQS did not take are sent again this many times before the publish fails.
const RESEND_ATTEMPTS: u32 = 3;

/// The queues the publisher and the worker use (defined in `config`, which reads them).
pub use crate::config::DeliveryQueues as Queues;

pub struct Publisher {
    /// Built on first use, so that functions that publish nothing (the reads) do not link SQS's client.
    client: std::sync::OnceLock<aws_sdk_sqs::Client>,
    sdk: aws_config::SdkConfig,
    queues: Queues,
}

impl Publisher {
    pub fn new(sdk: &aws_config::SdkConfig, queues: Queues) -> Self {
        Publisher {
            client: std::sync::OnceLock::new(),
            sdk: sdk.clone(),
            queues,
        }
    }

    pub fn is_queued(&self) -> bool {
        self.queues.delivery.is_some()
    }

    /// Queues every event for delivery. An error means some may not have been queued: the caller
    /// answers 503, and the client's retry (idempotent) publishes again.
    pub async fn publish(&self, context: &crate::AppContext, outgoing: &[Outgoing]) -> Result<(), ApiError> {
        let envelopes: Vec<Envelope> = outgoing.iter().flat_map(envelopes).collect();
        if envelopes.is_empty() {
            return Ok(());
        }
        match &self.queues.delivery {
            Some(url) => self.send(url, &envelopes, Ordering::InGroups).await,
            None => {
                super::worker::deliver_now(context, envelopes).await;
                Ok(())
            }
        }
    }

    /// Queues `outgoing` for delivery after `delay` (on the standard retry queue, which takes a delay
    /// per message), each envelope delivered only if `version` is still the user's presence then.
    /// Without a queue it is delivered at once, gate and all.
    pub async fn publish_later(
        &self,
        context: &crate::AppContext,
        outgoing: &Outgoing,
        delay: Duration,
        version: PresenceVersion,
    ) -> Result<(), ApiError> {
        let mut gated = envelopes(outgoing);
        for envelope in &mut gated {
            envelope.presence_version = Some(version.clone());
        }
        match &self.queues.retry {
            Some(url) => {
                // SQS delays are whole seconds: rounded up, so the window is never cut short.
                let seconds = delay.as_millis().div_ceil(1000).min(900) as i32;
                self.send(url, &gated, Ordering::Delayed(seconds)).await
            }
            None => {
                super::worker::deliver_now(context, gated).await;
                Ok(())
            }
        }
    }

    /// Queues envelopes again after `delay` (SQS allows up to 15 minutes), on the retry queue.
    pub(crate) async fn requeue(&self, envelopes: &[Envelope], delay: Duration) -> Result<(), ApiError> {
        let Some(url) = &self.queues.retry else {
            return Ok(());
        };
        self.send(url, envelopes, Ordering::Delayed(delay.as_secs().min(900) as i32))
            .await
    }

    /// Parks envelopes that failed every attempt, where an alarm watches them.
    pub(crate) async fn park(&self, envelopes: &[Envelope]) -> Result<(), ApiError> {
        let Some(url) = &self.queues.parked else {
            return Ok(());
        };
        self.send(url, envelopes, Ordering::Delayed(0)).await
    }

    /// Puts JSON bodies on a standard queue, each delayed by `delay` (at most SQS's 15 minutes).
    pub(crate) async fn queue_bodies(&self, url: &str, bodies: &[String], delay: Duration) -> Result<(), ApiError> {
        let groups = vec![String::new(); bodies.len()];
        self.send_bodies(url, bodies, &groups, Ordering::Delayed(delay.as_secs().min(900) as i32))
            .await
    }

    async fn send(&self, url: &str, envelopes: &[Envelope], ordering: Ordering) -> Result<(), ApiError> {
        let bodies: Vec<String> = envelopes
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<_, _>>()
            .map_err(ApiError::internal)?;
        let groups: Vec<String> = envelopes.iter().map(message_group).collect();
        self.send_bodies(url, &bodies, &groups, ordering).await
    }

    async fn send_bodies(
        &self,
        url: &str,
        bodies: &[String],
        groups: &[String],
        ordering: Ordering,
    ) -> Result<(), ApiError> {
        // Unique per publish: SQS must not drop a retried send's second delivery as a duplicate.
        let publish_id = ulid::Ulid::generate().to_string();
        let mut batch: Vec<Entry> = Vec::new();
        let mut bytes = 0;
        for (index, (body, group)) in bodies.iter().zip(groups).enumerate() {
            if batch.len() == BATCH_ENTRIES || (bytes + body.len() > BATCH_BYTES && !batch.is_empty()) {
                self.send_batch(url, std::mem::take(&mut batch), ordering).await?;
                bytes = 0;
            }
            bytes += body.len();
            batch.push(Entry {
                id: index.to_string(),
                body,
                group: group.clone(),
                deduplication: format!("{publish_id}-{index}"),
            });
        }
        if !batch.is_empty() {
            self.send_batch(url, batch, ordering).await?;
        }
        Ok(())
    }

    async fn send_batch(&self, url: &str, mut entries: Vec<Entry<'_>>, ordering: Ordering) -> Result<(), ApiError> {
        for attempt in 0..RESEND_ATTEMPTS {
            let request = entries
                .iter()
                .map(|entry| {
                    let builder = SendMessageBatchRequestEntry::builder()
                        .id(&entry.id)
                        .message_body(entry.body);
                    match ordering {
                        Ordering::InGroups => builder
                            .message_group_id(&entry.group)
                            .message_deduplication_id(&entry.deduplication),
                        Ordering::Delayed(seconds) => builder.delay_seconds(seconds),
                    }
                    .build()
                    .map_err(ApiError::internal)
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .client
                .get_or_init(|| aws_sdk_sqs::Client::new(&self.sdk))
                .send_message_batch()
                .queue_url(url)
                .set_entries(Some(request))
                .send()
                .await
                .map_err(|e| {
                    tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "queueing events failed");
                    unavailable()
                })?;
            let failed: Vec<&str> = out.failed().iter().map(|f| f.id()).collect();
            if failed.is_empty() {
                return Ok(());
            }
            tracing::warn!(
                failed = failed.len(),
                attempt,
                "SQS refused some entries; sending them again"
            );
            entries.retain(|entry| failed.contains(&entry.id.as_str()));
            tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
        }
        Err(unavailable())
    }
}

/// How a queue takes its messages.
#[derive(Debug, Clone, Copy)]
enum Ordering {
    /// FIFO: a message group and a deduplication id per entry.
    InGroups,
    /// Standard: a delay in seconds per entry.
    Delayed(i32),
}

struct Entry<'a> {
    id: String,
    body: &'a str,
    group: String,
    deduplication: String,
}

/// The FIFO message group of an envelope: what must stay in order. A conversation's piece keeps its
/// members' events in order; a list of users (presence) is ordered per list.
pub fn message_group(envelope: &Envelope) -> String {
    match &envelope.to {
        Target::Piece {
            conversation_id,
            piece,
            pieces,
            ..
        } => format!("{conversation_id}#{piece}of{pieces}"),
        Target::Users(users) => format!("users#{}", users.first().map(String::as_str).unwrap_or("none")),
        Target::Connections(connections) => format!(
            "connection#{}",
            connections.first().map(|c| c.connection_id.as_str()).unwrap_or("none")
        ),
    }
}

fn unavailable() -> ApiError {
    ApiError::Unavailable {
        message: "The service is busy; please retry shortly.".to_owned(),
        retry_after_secs: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_big_group_is_one_envelope_per_hundred_members() {
        let outgoing = Outgoing {
            event: json!({"type": "typing"}),
            audience: Audience::Conversation {
                id: "C".into(),
                members_version: 3,
                member_count: 1000,
                direct_members: vec![],
            },
            skip: Skip::Nobody,
        };
        let pieces = envelopes(&outgoing);
        assert_eq!(pieces.len(), 10);
        assert!(pieces.iter().enumerate().all(|(i, e)| matches!(
            &e.to,
            Target::Piece { piece, pieces: 10, members_version: 3, .. } if *piece == i as u64
        )));
        let small = Outgoing {
            audience: Audience::Conversation {
                id: "C".into(),
                members_version: 1,
                member_count: 100,
                direct_members: vec![],
            },
            ..outgoing.clone()
        };
        assert_eq!(envelopes(&small).len(), 1);
    }

    #[test]
    fn a_direct_conversation_names_its_two_members() {
        let outgoing = Outgoing {
            event: json!({}),
            audience: Audience::Conversation {
                id: "C".into(),
                members_version: 1,
                member_count: 2,
                direct_members: vec!["A".into(), "B".into()],
            },
            skip: Skip::Connection("x".into()),
        };
        let [one] = envelopes(&outgoing).try_into().unwrap();
        assert_eq!(one.to, Target::Users(vec!["A".into(), "B".into()]));
        assert_eq!(one.skip, Skip::Connection("x".into()));
    }

    #[test]
    fn pieces_split_members_evenly_and_stably() {
        let mut counts = [0u32; 10];
        for i in 0..10_000 {
            let user = ulid::Ulid::from_parts(1_795_420_800_000 + i, u128::from(i as u32)).to_string();
            assert_eq!(piece_of(&user, 10), piece_of(&user, 10));
            counts[piece_of(&user, 10) as usize] += 1;
        }
        assert!(counts.iter().all(|c| (800..1200).contains(c)), "{counts:?}");
    }

    #[test]
    fn envelopes_round_trip_through_json() {
        let envelope = Envelope {
            events: vec![json!({"type": "message.new"})],
            to: Target::Connections(vec![Connection {
                user_id: "U".into(),
                connection_id: "c1".into(),
            }]),
            skip: Skip::User("U".into()),
            attempt: 2,
            presence_version: Some(PresenceVersion {
                user_id: "U".into(),
                version: 3,
            }),
        };
        let text = serde_json::to_string(&envelope).unwrap();
        assert_eq!(serde_json::from_str::<Envelope>(&text).unwrap(), envelope);
        // The wire names are camelCase inside the variants too (the worker of another version reads them).
        let piece = Envelope {
            to: Target::Piece {
                conversation_id: "C".into(),
                members_version: 1,
                piece: 0,
                pieces: 1,
            },
            ..envelope
        };
        let wire = serde_json::to_value(&piece).unwrap();
        assert_eq!(wire["to"]["piece"]["conversationId"], "C");
        assert_eq!(wire["to"]["piece"]["membersVersion"], 1);
        assert_eq!(message_group(&piece), "C#0of1");
    }
}
