//! One handler per HTTP route: read the request, call the domain, shape the reply.

pub mod admin;
pub mod attachments;
pub mod auth;
pub mod bans;
pub mod conversation_worker;
pub mod conversations;
pub mod health;
pub mod invitations;
pub mod messages;
pub mod mutes;
pub mod pins;
pub mod push;
pub mod reports;
pub mod search;
pub mod search_indexer;
pub mod sync;
pub mod users;
pub mod ws;

use crate::error::ApiError;
use crate::realtime::Published;
use crate::AppContext;

/// A domain result's value, once its events are queued for delivery: the one place a route hands
/// events on. When they cannot be queued the answer is 503; the write itself is idempotent, so the
/// client's retry publishes them again.
pub(crate) async fn deliver<T>(context: &AppContext, published: Published<T>) -> Result<T, ApiError> {
    context.publish(&published.events).await?;
    Ok(published.value)
}

/// For an optional body field whose `null` is as wrong as any other non-value: absent is `None`
/// (through `#[serde(default)]`), `null` is refused like a wrong type.
pub(crate) fn not_null<'de, D: serde::Deserializer<'de>, T: serde::Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}
