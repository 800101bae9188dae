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

/// How a route hands a domain result's events on: `realtime::deliver` (the alarm responder, which is
/// no route, uses it too).
pub(crate) use crate::realtime::deliver;

/// For an optional body field whose `null` is as wrong as any other non-value: absent is `None`
/// (through `#[serde(default)]`), `null` is refused like a wrong type.
pub(crate) fn not_null<'de, D: serde::Deserializer<'de>, T: serde::Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}
