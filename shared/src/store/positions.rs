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
//! A reservation is idempotent: it records its token, seq and clock in one of [`SLOTS`] slots chosen by
//! the token, and an attempt whose slot already holds its token fails its condition and reads the
//! position back. So a retry after an answer that was lost (a timeout or a 500 after the write) does
//! not burn a second position; the SDK's own retries are off for this call for the same reason.

use std::time::Duration;

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnConsumedCapacity, ReturnValue, ReturnValuesOnConditionCheckFailure,
};

use super::{key, keys, n, s, Item, Store};
use crate::error::ApiError;

/// Slots of recent reservations kept on the item: a lost answer is recognised unless this many other
/// reservations landed in the same slot in between.
const SLOTS: u32 = 16;

/// A reserved position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub seq: u64,
    /// Milliseconds since the epoch: the message id's timestamp and its `createdAt`.
    pub clock_ms: u64,
}

enum Attempt {
    Reserved(Position),
    /// The stored clock is not behind ours: reserve one past it instead.
    ClockBehind,
}

fn slot_of(token: &str) -> u32 {
    (crate::hash::stable_hash(token) % u64::from(SLOTS)) as u32
}

fn number(item: &Item, name: &str) -> Option<u64> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
}

impl Store {
    /// Reserves the next position of `conversation_id`. `committed_seq` is the conversation's `lastSeq`
    /// as last read (the counter starts there for conversations older than the `SEQ` item);
    /// `now_ms` this container's clock; `token` unique per send attempt.
    pub async fn reserve_position(
        &self,
        conversation_id: &str,
        committed_seq: u64,
        now_ms: u64,
        token: &str,
    ) -> Result<Position, ApiError> {
        self.retrying(|| async {
            match self
                .reserve_attempt(conversation_id, committed_seq, now_ms, token, true)
                .await?
            {
                Attempt::Reserved(position) => Ok(position),
                Attempt::ClockBehind => match self
                    .reserve_attempt(conversation_id, committed_seq, now_ms, token, false)
                    .await?
                {
                    Attempt::Reserved(position) => Ok(position),
                    Attempt::ClockBehind => Err(ApiError::internal("a reservation one past the clock failed")),
                },
            }
        })
        .await
    }

    async fn reserve_attempt(
        &self,
        conversation_id: &str,
        committed_seq: u64,
        now_ms: u64,
        token: &str,
        clock_ahead: bool,
    ) -> Result<Attempt, ApiError> {
        let slot = slot_of(token);
        let (tok, seq, clk) = (format!("tok{slot}"), format!("seq{slot}"), format!("clk{slot}"));
        let not_mine = "(attribute_not_exists(#tok) OR #tok <> :token)";
        let next = "if_not_exists(lastSeq, :base) + :one";
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::conversation(conversation_id), keys::SEQ)))
            .expression_attribute_names("#tok", tok)
            .expression_attribute_names("#seq", seq.clone())
            .expression_attribute_names("#clk", clk.clone())
            .expression_attribute_values(":token", s(token))
            .expression_attribute_values(":base", n(committed_seq))
            .expression_attribute_values(":one", n(1));
        let request = if clock_ahead {
            request
                .update_expression(format!(
                    "SET lastSeq = {next}, clock = :now, #tok = :token, #seq = {next}, #clk = :now"
                ))
                .condition_expression(format!("(attribute_not_exists(clock) OR clock < :now) AND {not_mine}"))
                .expression_attribute_values(":now", n(now_ms))
        } else {
            request
                .update_expression(format!(
                    "SET lastSeq = {next}, clock = clock + :one, #tok = :token, #seq = {next}, #clk = clock + :one"
                ))
                .condition_expression(format!("attribute_exists(clock) AND {not_mine}"))
        };
        let result = request
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .customize()
            .config_override(aws_sdk_dynamodb::config::Builder::new().retry_config(RetryConfig::disabled()))
            .send()
            .await;
        match result {
            Ok(out) => {
                self.usage.record(true, out.consumed_capacity());
                let item = out.attributes.unwrap_or_default();
                match (number(&item, &seq), number(&item, &clk)) {
                    (Some(seq), Some(clock_ms)) => Ok(Attempt::Reserved(Position { seq, clock_ms })),
                    _ => Err(ApiError::internal("the position counter answered without its position")),
                }
            }
            Err(err) => {
                let old = match err.as_service_error() {
                    Some(UpdateItemError::ConditionalCheckFailedException(failed)) => {
                        Some(failed.item().cloned().unwrap_or_default())
                    }
                    _ => None,
                };
                let Some(mut old) = old else {
                    return Err(err.into());
                };
                if old.is_empty() {
                    // DynamoDB versions that do not return the item on a failed condition.
                    old = self.position_counter(conversation_id).await?;
                }
                let mine = old.get(&format!("tok{slot}")) == Some(&AttributeValue::S(token.to_owned()));
                match (mine, number(&old, &seq), number(&old, &clk)) {
                    (true, Some(seq), Some(clock_ms)) => Ok(Attempt::Reserved(Position { seq, clock_ms })),
                    _ => Ok(Attempt::ClockBehind),
                }
            }
        }
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
                    let jitter = u64::from(u16::from_le_bytes(crate::auth::random_bytes::<2>()));
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
    fn slots_spread_tokens() {
        let mut seen = [0u32; SLOTS as usize];
        for i in 0..1600 {
            seen[slot_of(&ulid::Ulid::from_parts(i, u128::from(i) * 7919).to_string()) as usize] += 1;
        }
        assert!(seen.iter().all(|c| *c > 50), "{seen:?}");
    }
}
