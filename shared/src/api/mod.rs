//! One handler per HTTP route: read the request, call the domain, shape the reply.

pub mod admin;
pub mod auth;
pub mod conversations;
pub mod health;
pub mod messages;
pub mod users;
pub mod ws;
