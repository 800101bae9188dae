//! Parley's shared library: everything the function binaries have in common.
//!
//! The layers, from the outside in:
//! - [`http`] turns API Gateway HTTP API (payload v2.0) events into [`http::ApiRequest`]s and
//!   [`http::Reply`]/[`error::ApiError`] values back into responses; nothing below it sees an AWS event type.
//! - [`api`] holds one handler per route: parse and validate the request, call the domain, shape the reply.
//! - [`domain`] holds the rules (accounts, sessions, wallet sign-in, profiles) over plain Rust values.
//! - [`store`] is the single-table DynamoDB store; [`auth`] the cryptography (argon2id, JWT, EIP-191).

pub mod api;
pub mod attachments;
pub mod auth;
pub mod batch_worker;
pub mod cache;
pub mod config;
pub mod config_error;
pub mod context;
pub mod cursor;
pub mod domain;
pub mod error;
pub mod hash;
pub mod http;
pub mod kinds;
pub mod logging;
pub mod metrics;
pub mod ops;
pub mod push;
pub mod rate_limit;
pub mod realtime;
pub mod search;
pub mod secrets;
pub mod signing;
pub mod store;
pub mod time;
pub mod validate;
pub mod ws;

pub use context::AppContext;
pub use error::ApiError;
