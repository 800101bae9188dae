//! The posting engine the delivery worker drives: members from a per-container cache keyed by the
//! conversation's `membersVersion` (so a removed member never gets another event and an added one gets
//! the next), connection sets read 100 users a call, posts concurrent up to a bound, a 410 Gone removing
//! exactly that connection at once.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_apigatewaymanagement::primitives::Blob;
use futures_util::stream::{self, StreamExt};
use serde::Serialize;
use serde_json::Value;

use crate::cache::Cache;
use crate::error::ApiError;
use crate::store::Store;
use crate::time::{now, rfc3339};

/// Posts in flight at once from one invocation: a batch can carry all 10 pieces of a 1000-member
/// message, and each post waits on the network far more than on the CPU.
const CONCURRENT_POSTS: usize = 64;
/// A 410 for a connection recorded less than this long ago may be one whose `$connect` is still
/// running (API Gateway's WebSocket integration timeout is 29 s): it is not removed for that 410.
pub const CONNECT_GRACE: Duration = Duration::from_secs(30);

pub use crate::metrics::Delivery;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Posted {
    Delivered,
    Gone,
    Failed,
}

/// Member ids per conversation id, with the `membersVersion` they were read at: a version mismatch is a
/// miss. The TTL only bounds how long an idle conversation's list stays in memory.
type MemberCache = Cache<(u64, Arc<Vec<String>>)>;
const MEMBER_CACHE_TTL: Duration = Duration::from_secs(600);
const MEMBER_CACHE_CONVERSATIONS: usize = 500;

pub struct Fanout {
    /// Built on first use, so that only the functions that post to connections (or close them) link
    /// the management API's client: a client constructed up front is reachable, so linked, in all 51.
    client: std::sync::OnceLock<aws_sdk_apigatewaymanagement::Client>,
    sdk: aws_config::SdkConfig,
    endpoint: Option<String>,
    members: MemberCache,
}

/// One open connection of one user.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize)]
pub struct Connection {
    pub user_id: String,
    pub connection_id: String,
}

impl Fanout {
    /// `endpoint`: the WebSocket API's management endpoint (`https://{api}.execute-api.{region}.amazonaws.com/{stage}`),
    /// unless `AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI` points elsewhere (the local stack).
    pub fn new(sdk: &aws_config::SdkConfig, endpoint: Option<&str>) -> Self {
        Fanout {
            client: std::sync::OnceLock::new(),
            sdk: sdk.clone(),
            endpoint: endpoint.map(str::to_owned),
            members: Cache::new(MEMBER_CACHE_TTL, MEMBER_CACHE_CONVERSATIONS),
        }
    }

    /// The management API client (one per process): also what closes and inspects connections.
    pub fn management(&self) -> &aws_sdk_apigatewaymanagement::Client {
        self.client.get_or_init(|| {
            let mut config = aws_sdk_apigatewaymanagement::config::Builder::from(&self.sdk);
            let local = std::env::var("AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI").ok();
            if let Some(endpoint) = local.as_deref().or(self.endpoint.as_deref()) {
                config = config.endpoint_url(endpoint);
            }
            aws_sdk_apigatewaymanagement::Client::from_conf(config.build())
        })
    }

    /// Closes a connection through the management API (`DeleteConnection`); API Gateway then runs
    /// `$disconnect`. A connection that is already gone (410) is fine. Returns whether it was still
    /// open.
    pub async fn close_connection(&self, connection_id: &str) -> bool {
        match self
            .management()
            .delete_connection()
            .connection_id(connection_id)
            .send()
            .await
        {
            Ok(_) => true,
            Err(err) if err.as_service_error().is_some_and(|e| e.is_gone_exception()) => false,
            Err(err) => {
                tracing::warn!(
                    connectionId = %connection_id,
                    error = %aws_sdk_apigatewaymanagement::error::DisplayErrorContext(&err),
                    "could not close a connection"
                );
                false
            }
        }
    }

    /// True when API Gateway says the connection is gone (410 to `GetConnection`); false when it is
    /// open or the answer is anything else (then it is kept: only a definite 410 drops a connection).
    pub async fn connection_is_gone(&self, connection_id: &str) -> bool {
        match self
            .management()
            .get_connection()
            .connection_id(connection_id)
            .send()
            .await
        {
            Ok(_) => false,
            Err(err) => err.as_service_error().is_some_and(|e| e.is_gone_exception()),
        }
    }

    /// The members of a conversation as of `members_version`, from the cache while it is unchanged.
    pub async fn members(
        &self,
        store: &Store,
        conversation_id: &str,
        members_version: u64,
    ) -> Result<Arc<Vec<String>>, ApiError> {
        let cached = self
            .members
            .get_if(conversation_id, |(version, _)| *version >= members_version);
        if let Some((_, members)) = cached {
            return Ok(members);
        }
        let members = Arc::new(store.admitted_member_ids(conversation_id).await?);
        self.members
            .insert(conversation_id.to_owned(), (members_version, Arc::clone(&members)));
        Ok(members)
    }

    /// Every open connection of `users`, 100 users a read.
    pub async fn connections(&self, store: &Store, users: &[String]) -> Result<Vec<Connection>, ApiError> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let sets = store.connection_sets(users).await?;
        let mut connections: Vec<Connection> = sets
            .into_iter()
            .flat_map(|(user_id, ids)| {
                ids.into_iter().map(move |connection_id| Connection {
                    user_id: user_id.clone(),
                    connection_id,
                })
            })
            .collect();
        connections.sort();
        Ok(connections)
    }

    /// Posts one frame to each connection, concurrently up to a bound; the outcome of each, in order.
    pub async fn post_all(&self, store: &Store, frames: Vec<(Connection, Value)>) -> Vec<(Connection, Posted)> {
        stream::iter(frames)
            .map(|(connection, frame)| async move {
                let payload = Blob::new(frame.to_string().into_bytes());
                let posted = self
                    .post(store, &connection.user_id, &connection.connection_id, payload)
                    .await;
                (connection, posted)
            })
            .buffer_unordered(CONCURRENT_POSTS)
            .collect()
            .await
    }

    /// Sends one frame to one connection (used for replies on routes that have no route response).
    pub async fn post_one(&self, store: &Store, user_id: &str, connection_id: &str, frame: &Value) {
        self.post(store, user_id, connection_id, Blob::new(frame.to_string().into_bytes()))
            .await;
    }

    /// The SDK retries transient failures with backoff; what still fails is the caller's to retry.
    async fn post(&self, store: &Store, user_id: &str, connection_id: &str, payload: Blob) -> Posted {
        match self
            .management()
            .post_to_connection()
            .connection_id(connection_id)
            .data(payload)
            .send()
            .await
        {
            Ok(_) => Posted::Delivered,
            Err(err) if err.as_service_error().is_some_and(|e| e.is_gone_exception()) => {
                let connected_before = rfc3339(now() - CONNECT_GRACE);
                if let Err(e) = store
                    .remove_gone_connection(user_id, connection_id, &connected_before)
                    .await
                {
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
