//! The rules, over plain values: no HTTP, no AWS event types.

pub mod accounts;
pub mod conversations;
pub mod messages;
pub mod users;
