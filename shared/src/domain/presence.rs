//! `presence` events: a user's status reaches only people who share a conversation with them (never
//! someone who blocked them), at most once per [`PRESENCE_WINDOW`] per user, changes within a window
//! collapsed into the last (docs/API-GUIDE.md, "Events").
//!
//! A change outside the window goes out at once. A change inside it is queued to go out when the
//! window ends, with the version it claimed on the user's throttle item (`store::presence`); a later
//! change inside the same window claims a newer version and queues its own, and the delivery worker
//! drops every delayed `presence` whose version is no longer the newest. So a burst of changes costs
//! its audience two events at most: the first, and the last at the end of the window.

use std::time::Duration;

use crate::context::AppContext;
use crate::domain::users::User;
use crate::error::ApiError;
use crate::realtime::publisher::PresenceVersion;
use crate::realtime::{events, Outgoing};
use crate::store::PresenceState;
use crate::time::{epoch_ms, now};

/// At most one `presence` per user in this long.
pub const PRESENCE_WINDOW: Duration = Duration::from_secs(10);
/// Claims of the throttle tried before a change gives up to concurrent changes of the same user (the
/// one that won announces its state, which is as new).
const CLAIM_ROUNDS: usize = 4;

/// When `state` lets a change made at `now_ms` go out: at once (`None`) or after a delay, and the
/// throttle's next state.
pub fn schedule(state: Option<PresenceState>, now_ms: u64) -> (PresenceState, Option<u64>) {
    let window = PRESENCE_WINDOW.as_millis() as u64;
    let version = state.map_or(0, |s| s.version) + 1;
    let at = |sent_at| PresenceState { sent_at, version };
    match state {
        None => (at(now_ms), None),
        Some(s) if now_ms >= s.sent_at + window => (at(now_ms), None),
        // A delayed one is already due then: this change replaces it.
        Some(s) if s.sent_at > now_ms => (at(s.sent_at), Some(s.sent_at - now_ms)),
        Some(s) => (at(s.sent_at + window), Some(s.sent_at + window - now_ms)),
    }
}

/// Announces `user`'s current status to everyone who shares a conversation with them, throttled.
pub async fn announce(context: &AppContext, user: &User) -> Result<(), ApiError> {
    let people = crate::domain::conversations::co_members(context, &user.id).await?;
    let audience = crate::domain::blocks::without_blockers(context, &user.id, people).await?;
    if audience.is_empty() {
        return Ok(());
    }
    let event = Outgoing::to_users(audience, events::presence(user));
    for _ in 0..CLAIM_ROUNDS {
        let read = context.store.presence_state(&user.id).await?;
        let (next, delay) = schedule(read, epoch_ms(now()));
        if !context.store.claim_presence(&user.id, read, next).await? {
            continue;
        }
        return match delay {
            None => context.publish(std::slice::from_ref(&event)).await,
            Some(ms) => {
                let version = PresenceVersion {
                    user_id: user.id.clone(),
                    version: next.version,
                };
                context
                    .publisher
                    .publish_later(context, &event, Duration::from_millis(ms), version)
                    .await
            }
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(sent_at: u64, version: u64) -> Option<PresenceState> {
        Some(PresenceState { sent_at, version })
    }

    #[test]
    fn the_first_change_of_a_window_goes_out_at_once_and_later_ones_at_its_end() {
        assert_eq!(
            schedule(None, 1_000),
            (
                PresenceState {
                    sent_at: 1_000,
                    version: 1
                },
                None
            )
        );
        // 3 s later: due at the end of the window, 7 s from now.
        let (next, delay) = schedule(state(1_000, 1), 4_000);
        assert_eq!(
            (next, delay),
            (
                PresenceState {
                    sent_at: 11_000,
                    version: 2
                },
                Some(7_000)
            )
        );
        // Another before that: the same due time, a newer version (the older one is dropped).
        let (next, delay) = schedule(state(11_000, 2), 6_000);
        assert_eq!(
            (next, delay),
            (
                PresenceState {
                    sent_at: 11_000,
                    version: 3
                },
                Some(5_000)
            )
        );
        // After the delayed one went out (at 11 s), a change at 15 s waits for 21 s.
        let (next, delay) = schedule(state(11_000, 3), 15_000);
        assert_eq!(
            (next, delay),
            (
                PresenceState {
                    sent_at: 21_000,
                    version: 4
                },
                Some(6_000)
            )
        );
        // A quiet window later: at once again.
        assert_eq!(schedule(state(11_000, 3), 21_000).1, None);
    }
}
