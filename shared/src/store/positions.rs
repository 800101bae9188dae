//! A conversation's message positions: `seq` 1, 2, 3, ... and an id clock that grows with it.
//!
//! Each send reserves its position with one single-item UpdateItem on the conversation's small `SEQ`
//! item, which DynamoDB applies one after another however many senders there are: no condition on the
//! previous value, so no sender ever loses a race and retries (the old optimistic `lastSeq = :previous`
//! transaction refused sends in a busy group). The item is never part of a transaction, so it never
//! meets TransactionConflict either.
//!
//! The same update advances the id clock (milliseconds), which becomes the message id's ULID timestamp:
//! `clock = max(clock + 1, now)` (as two conditional forms: "my clock is ahead" and, if not, "one past
//! the last"), so ids strictly increase with `seq` whatever the containers' clocks say, and the id
//! order, the `seq` order and the `after=` walk always agree.
//!
//! A reservation is idempotent, and so is a send. Every attempt to send one `clientMessageId` in a
//! conversation carries the same token (derived from the conversation, the sender and that id: see
//! `domain::messages::send_token`). The update pushes its token, seq and clock onto a register of the
//! last [`RECENT`] reservations kept on the item (every entry moves down one place, in the same atomic
//! update), and it is conditional on the token not being in the register already: a repeat of a send
//! still in flight, a retry of one whose answer was lost, and a retry of an attempt that died after
//! reserving all fail that condition and get the item's old image back
//! (`ReturnValuesOnConditionCheckFailure`), which names their position. So concurrent repeats share
//! one position and never leave a second one empty, without a claim written beforehand. The SDK's
//! own retries are off for this call, and its attempt timeout is long: a slow answer is waited for
//! rather than abandoned, since an abandoned one cannot be told apart from one that never arrived.

use std::time::Duration;

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{ReturnConsumedCapacity, ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::{key, keys, n, s, Item, Store};
use crate::error::ApiError;

/// Reservations remembered on the item: a lost answer is recognised unless this many others landed in
/// the conversation while it was being retried (milliseconds, since the call is not abandoned).
const RECENT: usize = 16;
/// How long one reservation attempt may take before it is given up (see the module comment).
pub(super) const PATIENT_ATTEMPT: Duration = Duration::from_secs(5);

/// A reserved position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub seq: u64,
    /// Milliseconds since the epoch: the message id's timestamp and its `createdAt`.
    pub clock_ms: u64,
}

/// A position as a reservation found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserved {
    /// Reserved by this call.
    New(Position),
    /// Reserved earlier with the same token (a repeat, or the retry of an attempt that died or whose
    /// answer was lost): the send's message belongs there.
    Earlier(Position),
}

impl Reserved {
    pub fn position(self) -> Position {
        match self {
            Reserved::New(position) | Reserved::Earlier(position) => position,
        }
    }
}

enum Attempt {
    Reserved(Reserved),
    /// The stored clock is not behind ours: reserve one past it instead.
    ClockBehind,
}

fn number(item: &Item, name: &str) -> Option<u64> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
}

/// `t0 = :token, t1 = t0, ...`: the register pushed down by one, the new entry on top.
fn push_register(seq: &str, clock: &str) -> String {
    let mut parts = vec!["t0 = :token".to_owned(), format!("s0 = {seq}"), format!("c0 = {clock}")];
    for i in 1..RECENT {
        for field in ["t", "s", "c"] {
            parts.push(format!("{field}{i} = if_not_exists({field}{}, :none)", i - 1));
        }
    }
    parts.join(", ")
}

/// `t0 <> :token AND t1 <> :token ...`: the token is not among the recent reservations (an absent
/// entry compares unequal).
fn token_not_registered() -> String {
    (0..RECENT)
        .map(|i| format!("t{i} <> :token"))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// This token's position, if the register holds it.
fn find_in_register(item: &Item, token: &str) -> Option<Position> {
    (0..RECENT).find_map(|i| {
        let mine = item.get(&format!("t{i}")).and_then(|v| v.as_s().ok()) == Some(&token.to_owned());
        match (mine, number(item, &format!("s{i}")), number(item, &format!("c{i}"))) {
            (true, Some(seq), Some(clock_ms)) => Some(Position { seq, clock_ms }),
            _ => None,
        }
    })
}

/// Whether a failed call may have been applied: its answer was lost or was a server error.
fn may_have_applied(err: &ApiError) -> bool {
    matches!(err, ApiError::Unavailable { .. } | ApiError::Internal(_))
}

impl Store {
    /// Reserves the next position of `conversation_id` for the send with `token`, unless the register
    /// shows an earlier reservation with that token, which is answered instead. `committed_seq` is the
    /// conversation's `lastSeq` as last read (the counter starts there for conversations older than
    /// the `SEQ` item); `now_ms` this container's clock. `again` reserves a new position even when the
    /// token is registered: for a send whose earlier position was filled with a placeholder.
    pub async fn reserve_position(
        &self,
        conversation_id: &str,
        committed_seq: u64,
        now_ms: u64,
        token: &str,
        again: bool,
    ) -> Result<Reserved, ApiError> {
        self.retrying(|| async {
            match self
                .reserve_once(conversation_id, committed_seq, now_ms, token, again)
                .await
            {
                Ok(reserved) => Ok(reserved),
                Err(e) if may_have_applied(&e) => {
                    // Applied with its answer lost? Then the register has it (newest first); else try
                    // again.
                    match find_in_register(&self.position_counter(conversation_id).await?, token) {
                        Some(position) => Ok(Reserved::New(position)),
                        None => Err(e),
                    }
                }
                Err(e) => Err(e),
            }
        })
        .await
    }

    async fn reserve_once(
        &self,
        conversation_id: &str,
        committed_seq: u64,
        now_ms: u64,
        token: &str,
        again: bool,
    ) -> Result<Reserved, ApiError> {
        let attempt =
            |clock_ahead| self.reserve_attempt(conversation_id, committed_seq, now_ms, token, clock_ahead, again);
        match attempt(true).await? {
            Attempt::Reserved(reserved) => Ok(reserved),
            Attempt::ClockBehind => match attempt(false).await? {
                Attempt::Reserved(reserved) => Ok(reserved),
                Attempt::ClockBehind => Err(ApiError::internal("a reservation one past the clock failed")),
            },
        }
    }

    async fn reserve_attempt(
        &self,
        conversation_id: &str,
        committed_seq: u64,
        now_ms: u64,
        token: &str,
        clock_ahead: bool,
        again: bool,
    ) -> Result<Attempt, ApiError> {
        let next = "if_not_exists(lastSeq, :base) + :one";
        let request = self
            .patient
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::conversation(conversation_id), keys::SEQ)))
            .expression_attribute_values(":token", s(token))
            .expression_attribute_values(":base", n(committed_seq))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":none", s(""));
        let (request, clock_condition) = if clock_ahead {
            (
                request
                    .update_expression(format!(
                        "SET lastSeq = {next}, clock = :now, {}",
                        push_register(next, ":now")
                    ))
                    .expression_attribute_values(":now", n(now_ms)),
                "(attribute_not_exists(clock) OR clock < :now)",
            )
        } else {
            (
                request.update_expression(format!(
                    "SET lastSeq = {next}, clock = clock + :one, {}",
                    push_register(next, "clock + :one")
                )),
                "attribute_exists(clock)",
            )
        };
        let condition = match again {
            true => clock_condition.to_owned(),
            false => format!("{clock_condition} AND {}", token_not_registered()),
        };
        let result = request
            .condition_expression(condition)
            .return_values(ReturnValue::UpdatedNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match result {
            Ok(out) => {
                self.usage.record(true, out.consumed_capacity());
                let item = out.attributes.unwrap_or_default();
                match (number(&item, "s0"), number(&item, "c0")) {
                    (Some(seq), Some(clock_ms)) => Ok(Attempt::Reserved(Reserved::New(Position { seq, clock_ms }))),
                    _ => Err(ApiError::internal("the position counter answered without its position")),
                }
            }
            Err(err) => {
                if let Some(UpdateItemError::ConditionalCheckFailedException(failed)) = err.as_service_error() {
                    // A failed condition is billed as a write of the item.
                    self.usage
                        .record(true, None::<&aws_sdk_dynamodb::types::ConsumedCapacity>);
                    // The token is registered (an earlier attempt's position), or the clock is ahead.
                    let old = failed.item.clone().unwrap_or_default();
                    return Ok(match (again, find_in_register(&old, token)) {
                        (false, Some(position)) => Attempt::Reserved(Reserved::Earlier(position)),
                        _ => Attempt::ClockBehind,
                    });
                }
                Err(err.into())
            }
        }
    }

    /// The positions reserved so far (the last `seq` given out; 0 before the first send).
    pub async fn positions_taken(&self, conversation_id: &str) -> Result<u64, ApiError> {
        Ok(number(&self.position_counter(conversation_id).await?, "lastSeq").unwrap_or(0))
    }

    async fn position_counter(&self, conversation_id: &str) -> Result<Item, ApiError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::conversation(conversation_id), keys::SEQ)))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await?;
        self.usage.record(false, out.consumed_capacity());
        Ok(out.item.unwrap_or_default())
    }

    /// Runs `attempt` again while DynamoDB answers with something transient (a conflict, throttling, a
    /// 5xx, a timeout: all [`ApiError::Unavailable`]), with full jitter, until the store's retry budget
    /// is spent; then the last `Unavailable` is the answer (503 with `Retry-After`).
    pub(crate) async fn retrying<T, F, Fut>(&self, mut attempt: F) -> Result<T, ApiError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, ApiError>>,
    {
        let deadline = tokio::time::Instant::now() + self.retry_budget;
        let mut ceiling = Duration::from_millis(10);
        loop {
            match attempt().await {
                Err(ApiError::Unavailable { .. }) if tokio::time::Instant::now() + ceiling < deadline => {
                    // Full jitter; the store draws it itself so that it depends on no layer above it.
                    let mut draw = [0u8; 2];
                    let _ = getrandom::fill(&mut draw);
                    let jitter = u64::from(u16::from_le_bytes(draw));
                    let pause = ceiling.as_millis() as u64 * jitter / u64::from(u16::MAX);
                    tokio::time::sleep(Duration::from_millis(pause.max(1))).await;
                    ceiling = (ceiling * 2).min(Duration::from_millis(250));
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_register_moves_down_and_finds_its_token() {
        let expression = push_register("lastSeq + :one", ":now");
        assert!(expression.starts_with("t0 = :token, s0 = lastSeq + :one, c0 = :now, t1 = if_not_exists(t0, :none)"));
        assert!(expression.ends_with(&format!("c{} = if_not_exists(c{}, :none)", RECENT - 1, RECENT - 2)));
        let mut item = Item::new();
        item.insert("t3".into(), s("mine"));
        item.insert("s3".into(), n(41));
        item.insert("c3".into(), n(1_795_420_800_000u64));
        item.insert("t0".into(), s("theirs"));
        assert_eq!(
            find_in_register(&item, "mine"),
            Some(Position {
                seq: 41,
                clock_ms: 1_795_420_800_000
            })
        );
        assert_eq!(find_in_register(&item, "other"), None);
    }
}
