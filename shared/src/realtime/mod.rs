//! Real-time delivery: the events API.md names, and the fan-out that posts them to every open
//! connection of every member through API Gateway's @connections API.

pub mod events;
pub mod fanout;

pub use fanout::{Delivery, Fanout, Skip};
