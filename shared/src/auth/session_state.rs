//! Whether the session behind an access token is still live, remembered per container for a moment.
//!
//! An access token is a JWT that stays valid for 15 minutes whatever happens to its session; revoking
//! a session (logout, `DELETE /auth/sessions/{id}`, refresh-token reuse) must stop its tokens within
//! 5 seconds (docs/API-GUIDE.md "Signing out and revocation"). So every accepted bearer token (HTTP
//! routes, the `$connect` authorizer, WebSocket frames) is also checked against its session item.
//!
//! Cost: one strongly consistent GetItem of the session item (projected to `revokedAt, expiresAt`,
//! 1 RCU) per session, per container, per [`LIVE_TTL`] window: a client that keeps one container busy
//! pays one read every 4 s, not one per request. A revoked answer never changes, so it is kept for
//! [`REVOKED_TTL`] (an access token's whole life) and a revoked token hammering a container costs no
//! reads. A container that revokes or creates a session writes the answer here at once.
//!
//! Worst case for "refused within 5 s": another container read "live" just before the revocation and
//! keeps that answer for up to 4 s. A session id without any item (only tokens minted outside sign-in,
//! by tests or tools holding the secret: a real session item outlives its access tokens by 30 days)
//! is not refused.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::context::AppContext;
use crate::error::ApiError;
use crate::time::{epoch_secs, now};

/// How long a container trusts a "live" answer.
pub const LIVE_TTL: Duration = Duration::from_secs(4);
/// How long it remembers a "revoked" answer (revocation is final).
pub const REVOKED_TTL: Duration = Duration::from_secs(15 * 60);
/// Sessions remembered at most; when full, expired answers go first, then everything.
const CAPACITY: usize = 20_000;

struct Known {
    live: bool,
    at: Instant,
}

fn states() -> &'static Mutex<HashMap<String, Known>> {
    static STATES: OnceLock<Mutex<HashMap<String, Known>>> = OnceLock::new();
    STATES.get_or_init(|| Mutex::new(HashMap::new()))
}

fn fresh(known: &Known) -> bool {
    known.at.elapsed() < if known.live { LIVE_TTL } else { REVOKED_TTL }
}

/// What this container knows about `session_id`, if it is recent enough.
pub fn cached(session_id: &str) -> Option<bool> {
    let mut states = states().lock().unwrap_or_else(|p| p.into_inner());
    match states.get(session_id) {
        Some(known) if fresh(known) => Some(known.live),
        Some(_) => {
            states.remove(session_id);
            None
        }
        None => None,
    }
}

/// Records an answer: read from the table, or known because this container just created (live) or
/// revoked (not live) the session. A revoked answer is never replaced by a live one.
pub fn remember(session_id: &str, live: bool) {
    let mut states = states().lock().unwrap_or_else(|p| p.into_inner());
    if live && states.get(session_id).is_some_and(|k| !k.live && fresh(k)) {
        return;
    }
    if states.len() >= CAPACITY && !states.contains_key(session_id) {
        states.retain(|_, known| fresh(known));
        if states.len() >= CAPACITY {
            states.clear();
        }
    }
    states.insert(
        session_id.to_owned(),
        Known {
            live,
            at: Instant::now(),
        },
    );
}

/// The answer 401 for a token of a revoked or ended session.
pub fn revoked() -> ApiError {
    ApiError::Unauthorized("This session has been signed out or revoked; sign in again.".to_owned())
}

/// True while the session is live (see the module's notes for what that costs).
pub async fn is_live(context: &AppContext, session_id: &str) -> Result<bool, ApiError> {
    if let Some(live) = cached(session_id) {
        return Ok(live);
    }
    let live = context
        .store
        .session_state(session_id, epoch_secs(now()))
        .await?
        .unwrap_or(true);
    remember(session_id, live);
    Ok(live)
}

/// `Ok` while the session is live, else 401 `unauthorized`.
pub async fn ensure_live(context: &AppContext, session_id: &str) -> Result<(), ApiError> {
    if is_live(context, session_id).await? {
        Ok(())
    } else {
        Err(revoked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_answers_expire_and_revoked_ones_stick() {
        let live = ulid::Ulid::generate().to_string();
        assert_eq!(cached(&live), None);
        remember(&live, true);
        assert_eq!(cached(&live), Some(true));

        let gone = ulid::Ulid::generate().to_string();
        remember(&gone, true);
        remember(&gone, false);
        assert_eq!(cached(&gone), Some(false));
        remember(&gone, true);
        assert_eq!(cached(&gone), Some(false), "a revoked session never comes back to life");
        assert_eq!(revoked().status(), 401);
    }

    #[test]
    fn the_live_window_is_inside_the_five_second_promise() {
        assert!(LIVE_TTL < Duration::from_secs(5));
        assert!(REVOKED_TTL >= Duration::from_secs(15 * 60));
    }
}
