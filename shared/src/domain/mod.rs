//! The rules, over plain values: no HTTP, no AWS event types.

pub mod accounts;
pub mod attachments;
pub mod bans;
pub mod blocks;
pub mod conversations;
pub mod invitations;
pub mod messages;
pub mod mutes;
pub mod pins;
pub mod presence;
pub mod push;
pub mod reactions;
pub mod reports;
pub mod sync;
pub mod upkeep;
pub mod users;
