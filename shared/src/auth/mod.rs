//! The cryptography of sign-in: password hashes, access tokens, refresh tokens, wallet signatures.

pub mod password;
pub mod session_state;
pub mod wallet;

// The token keys live in `signing` (a leaf); sign-in code and its callers keep reaching them here.
pub use crate::signing::{random_bytes, refresh, tokens};
