//! Hands a request's events to the delivery worker: one SQS message per piece of at most
//! [`PIECE_MEMBERS`] recipients, all pieces of a request in as few `SendMessageBatch` calls as SQS allows
//! (10 entries, 256 KiB a call), so a 1000-member group costs the writer one call, as a direct
//! conversation does.
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

/// Which piece a member falls in: a stable hash of the user id (FNV-1a), so a member's events stay in
/// one piece while the piece count does.
pub fn piece_of(user_id: &str, pieces: u64) -> u64 {
    let hash = user_id
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    hash % pieces.max(1)
}

/// The envelopes of one outgoing event: one per piece.
pub fn envelopes(outgoing: &Outgoing) -> Vec<Envelope> {
    let envelope = |to| Envelope {
        events: vec![outgoing.event.clone()],
        to,
        skip: outgoing.skip.clone(),
        attempt: 0,
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

pub struct Publisher {
    client: aws_sdk_sqs::Client,
    queue_url: Option<String>,
    dead_letter_url: Option<String>,
}

impl Publisher {
    pub fn new(sdk: &aws_config::SdkConfig, queue_url: Option<String>, dead_letter_url: Option<String>) -> Self {
        Publisher {
            client: aws_sdk_sqs::Client::new(sdk),
            queue_url,
            dead_letter_url,
        }
    }

    pub fn is_queued(&self) -> bool {
        self.queue_url.is_some()
    }

    /// Queues every event for delivery. An error means some may not have been queued: the caller
    /// answers 503, and the client's retry (idempotent) publishes again.
    pub async fn publish(&self, context: &crate::AppContext, outgoing: &[Outgoing]) -> Result<(), ApiError> {
        let envelopes: Vec<Envelope> = outgoing.iter().flat_map(envelopes).collect();
        if envelopes.is_empty() {
            return Ok(());
        }
        match &self.queue_url {
            Some(url) => self.send(url, &envelopes, 0).await,
            None => {
                super::worker::deliver_now(context, envelopes).await;
                Ok(())
            }
        }
    }

    /// Queues envelopes again after `delay` (SQS allows up to 15 minutes).
    pub(crate) async fn requeue(&self, envelopes: &[Envelope], delay: Duration) -> Result<(), ApiError> {
        let Some(url) = &self.queue_url else {
            return Ok(());
        };
        self.send(url, envelopes, delay.as_secs().min(900) as i32).await
    }

    /// Parks envelopes that failed every attempt in the dead-letter queue, where an alarm watches them.
    pub(crate) async fn park(&self, envelopes: &[Envelope]) -> Result<(), ApiError> {
        let Some(url) = self.dead_letter_url.as_ref().or(self.queue_url.as_ref()) else {
            return Ok(());
        };
        self.send(url, envelopes, 0).await
    }

    async fn send(&self, url: &str, envelopes: &[Envelope], delay_secs: i32) -> Result<(), ApiError> {
        let bodies: Vec<String> = envelopes
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<_, _>>()
            .map_err(ApiError::internal)?;
        let mut batch: Vec<(String, &str)> = Vec::new();
        let mut bytes = 0;
        for (index, body) in bodies.iter().enumerate() {
            if batch.len() == BATCH_ENTRIES || (bytes + body.len() > BATCH_BYTES && !batch.is_empty()) {
                self.send_batch(url, std::mem::take(&mut batch), delay_secs).await?;
                bytes = 0;
            }
            bytes += body.len();
            batch.push((index.to_string(), body));
        }
        if !batch.is_empty() {
            self.send_batch(url, batch, delay_secs).await?;
        }
        Ok(())
    }

    async fn send_batch(&self, url: &str, mut entries: Vec<(String, &str)>, delay_secs: i32) -> Result<(), ApiError> {
        for attempt in 0..RESEND_ATTEMPTS {
            let request = entries
                .iter()
                .map(|(id, body)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(id)
                        .message_body(*body)
                        .delay_seconds(delay_secs)
                        .build()
                        .map_err(ApiError::internal)
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .client
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
            tracing::warn!(failed = failed.len(), attempt, "SQS refused some entries; sending them again");
            entries.retain(|(id, _)| failed.contains(&id.as_str()));
            tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
        }
        Err(unavailable())
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
        };
        let text = serde_json::to_string(&envelope).unwrap();
        assert_eq!(serde_json::from_str::<Envelope>(&text).unwrap(), envelope);
    }
}
