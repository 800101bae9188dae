//! Fan-out (DESIGN.md "Real-time path"): members from a per-container cache keyed by the
//! conversation's `membersVersion` (so a removed member never gets another event and an added one gets
//! the next), connection sets read 100 users a call, posts concurrent up to a bound, a 410 Gone removing
//! exactly that connection at once. Failures are logged and counted, never returned: the write that
//! caused the event has already succeeded.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_apigatewaymanagement::primitives::Blob;
use futures_util::future::BoxFuture;
use futures_util::stream::{self, StreamExt};
use serde::Serialize;
use serde_json::Value;

use super::events;
use crate::cache::Cache;
use crate::error::ApiError;
use crate::store::{ConversationRecord, Store};

/// Posts in flight at once from one invocation.
const CONCURRENT_POSTS: usize = 32;

/// Who not to deliver to.
#[derive(Debug, Clone, Copy)]
pub enum Skip<'a> {
    Nobody,
    /// The connection the event came from (the sender's other devices still get it).
    Connection(&'a str),
    /// All of a user's connections (`typing` goes to the others only).
    User(&'a str),
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub members: usize,
    pub connections: usize,
    pub delivered: usize,
    pub gone: usize,
    pub failed: usize,
}

enum Posted {
    Delivered,
    Gone,
    Failed,
}

/// Member ids per conversation id, with the `membersVersion` they were read at: a version mismatch is a
/// miss, so a removed member never gets another event. The TTL only bounds how long an idle
/// conversation's list stays in memory.
type MemberCache = Cache<(u64, Arc<Vec<String>>)>;
const MEMBER_CACHE_TTL: Duration = Duration::from_secs(600);
const MEMBER_CACHE_CONVERSATIONS: usize = 500;

pub struct Fanout {
    client: aws_sdk_apigatewaymanagement::Client,
    members: MemberCache,
}

impl Fanout {
    /// `endpoint`: the WebSocket API's management endpoint (`https://{api}.execute-api.{region}.amazonaws.com/{stage}`),
    /// unless `AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI` points elsewhere (the local stack).
    pub fn new(sdk: &aws_config::SdkConfig, endpoint: Option<&str>) -> Self {
        let mut config = aws_sdk_apigatewaymanagement::config::Builder::from(sdk);
        let local = std::env::var("AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI").ok();
        if let Some(endpoint) = local.as_deref().or(endpoint) {
            config = config.endpoint_url(endpoint);
        }
        Fanout {
            client: aws_sdk_apigatewaymanagement::Client::from_conf(config.build()),
            members: Cache::new(MEMBER_CACHE_TTL, MEMBER_CACHE_CONVERSATIONS),
        }
    }

    /// The members of a conversation, from the cache while its `membersVersion` is unchanged.
    pub async fn members(
        &self,
        store: &Store,
        conversation: &ConversationRecord,
    ) -> Result<Arc<Vec<String>>, ApiError> {
        if !conversation.direct_members.is_empty() {
            return Ok(Arc::new(conversation.direct_members.clone()));
        }
        let cached = self.members.get_if(&conversation.id, |(version, _)| {
            *version == conversation.members_version
        });
        if let Some((_, members)) = cached {
            return Ok(members);
        }
        let members = Arc::new(store.member_ids(&conversation.id).await?);
        self.members.insert(
            conversation.id.clone(),
            (conversation.members_version, Arc::clone(&members)),
        );
        Ok(members)
    }

    /// Delivers `events` to every open connection of every member of `conversation`. (Boxed: the
    /// delivery future is deep, and callers' futures stay small.)
    pub fn to_conversation<'a>(
        &'a self,
        store: &'a Store,
        conversation: &'a ConversationRecord,
        events: &'a [Value],
        skip: Skip<'a>,
    ) -> BoxFuture<'a, Delivery> {
        Box::pin(self.deliver_to_conversation(store, conversation, events, skip))
    }

    async fn deliver_to_conversation(
        &self,
        store: &Store,
        conversation: &ConversationRecord,
        events: &[Value],
        skip: Skip<'_>,
    ) -> Delivery {
        match self.members(store, conversation).await {
            Ok(members) => self.deliver(store, &members, events, skip).await,
            Err(e) => {
                tracing::warn!(conversationId = %conversation.id, error = %e, "fan-out could not read the members");
                Delivery {
                    failed: 1,
                    ..Delivery::default()
                }
            }
        }
    }

    /// Delivers `events` (one frame per connection: a `batch` when there are several) to every open
    /// connection of `users`.
    pub fn to_users<'a>(
        &'a self,
        store: &'a Store,
        users: &'a [String],
        events: &'a [Value],
        skip: Skip<'a>,
    ) -> BoxFuture<'a, Delivery> {
        Box::pin(self.deliver(store, users, events, skip))
    }

    async fn deliver(&self, store: &Store, users: &[String], events: &[Value], skip: Skip<'_>) -> Delivery {
        let mut delivery = Delivery {
            members: users.len(),
            ..Delivery::default()
        };
        if events.is_empty() || users.is_empty() {
            return delivery;
        }
        let sets = match store.connection_sets(users).await {
            Ok(sets) => sets,
            Err(e) => {
                tracing::warn!(error = %e, "fan-out could not read connection sets");
                delivery.failed += 1;
                return delivery;
            }
        };
        let payload = Blob::new(events::frame(events).to_string().into_bytes());
        let targets: Vec<(String, String)> = sets
            .into_iter()
            .filter(|(user, _)| !matches!(skip, Skip::User(skipped) if skipped == user))
            .flat_map(|(user, connections)| connections.into_iter().map(move |c| (user.clone(), c)))
            .filter(|(_, connection)| !matches!(skip, Skip::Connection(skipped) if skipped == connection))
            .collect();
        delivery.connections = targets.len();
        let outcomes: Vec<Posted> = stream::iter(targets)
            .map(|(user, connection)| {
                let payload = payload.clone();
                async move { self.post(store, &user, &connection, payload).await }
            })
            .buffer_unordered(CONCURRENT_POSTS)
            .collect()
            .await;
        for outcome in outcomes {
            match outcome {
                Posted::Delivered => delivery.delivered += 1,
                Posted::Gone => delivery.gone += 1,
                Posted::Failed => delivery.failed += 1,
            }
        }
        let kinds: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
        tracing::info!(events = ?kinds, delivery = ?delivery, "fan-out");
        crate::metrics::fanout(&delivery);
        delivery
    }

    /// Sends one frame to one connection (used for replies on routes that have no route response).
    pub async fn post_one(&self, store: &Store, user_id: &str, connection_id: &str, frame: &Value) {
        self.post(store, user_id, connection_id, Blob::new(frame.to_string().into_bytes()))
            .await;
    }

    /// The SDK retries transient failures with backoff; what still fails is counted.
    async fn post(&self, store: &Store, user_id: &str, connection_id: &str, payload: Blob) -> Posted {
        match self
            .client
            .post_to_connection()
            .connection_id(connection_id)
            .data(payload)
            .send()
            .await
        {
            Ok(_) => Posted::Delivered,
            Err(err) if err.as_service_error().is_some_and(|e| e.is_gone_exception()) => {
                if let Err(e) = store.remove_connection(user_id, connection_id).await {
                    tracing::warn!(connectionId = %connection_id, error = %e, "could not remove a gone connection");
                }
                Posted::Gone
            }
            Err(err) => {
                tracing::warn!(
                    connectionId = %connection_id,
                    error = %aws_sdk_apigatewaymanagement::error::DisplayErrorContext(&err),
                    "post to connection failed"
                );
                Posted::Failed
            }
        }
    }
}
