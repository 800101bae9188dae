//! Fixed-window request counters shared by every container: one item per subject and window
//! (`RATE#<subject>`, `W#<window start>`), whose `hits` is what every container has added to it so far.
//! How often a container reads or adds, and what it admits meanwhile, is `rate_limit`'s business.

use super::{key, keys, n, Store};
use crate::error::ApiError;

/// The counter's number, as `ReturnValues` gives it back.
#[derive(serde::Deserialize)]
struct Hits {
    hits: u64,
}

impl Store {
    /// The hits counted so far in `subject`'s window starting at `window_start_secs` (0 when nobody has
    /// counted any): one eventually consistent GetItem of the counter (0.5 RCU), no write. A stale
    /// answer is still a total the counter held, never more than it holds.
    pub async fn rate_hits(&self, subject: &str, window_start_secs: u64) -> Result<u64, ApiError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::rate_counter(subject),
                keys::rate_window(window_start_secs),
            )))
            .projection_expression("hits")
            .consistent_read(false)
            .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
            .send()
            .await?;
        self.usage.record(false, out.consumed_capacity());
        Ok(match out.item {
            Some(item) if item.contains_key("hits") => serde_dynamo::from_item::<_, Hits>(item)?.hits,
            _ => 0,
        })
    }

    /// Adds `hits` to the window's counter, whatever it holds, and returns its new total (which includes
    /// every other container's additions): one UpdateItem (1 WCU). The counter expires through TTL one
    /// window after the window ends.
    pub async fn add_rate_hits(
        &self,
        subject: &str,
        window_start_secs: u64,
        window_secs: u64,
        hits: u64,
    ) -> Result<u64, ApiError> {
        self.add_rate_hits_below(subject, window_start_secs, window_secs, hits, None)
            .await?
            .ok_or_else(|| ApiError::internal("an unconditional counter update reported a failed condition"))
    }

    /// Adds `hits` to the window's counter if it holds fewer than `below` (with `None`, always), and
    /// returns its new total; `None` when it already held `below` or more: then nothing is written.
    /// One UpdateItem (1 WCU, the failed condition included).
    pub async fn add_rate_hits_below(
        &self,
        subject: &str,
        window_start_secs: u64,
        window_secs: u64,
        hits: u64,
        below: Option<u64>,
    ) -> Result<Option<u64>, ApiError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::rate_counter(subject),
                keys::rate_window(window_start_secs),
            )))
            .update_expression("ADD hits :hits SET expiresAt = if_not_exists(expiresAt, :expires)")
            .expression_attribute_values(":hits", n(hits))
            .expression_attribute_values(":expires", n(window_start_secs + 2 * window_secs));
        if let Some(below) = below {
            request = request
                .condition_expression("attribute_not_exists(hits) OR hits < :below")
                .expression_attribute_values(":below", n(below));
        }
        Ok(self
            .conditional_update::<Hits>(request)
            .await?
            .map(|counter| counter.hits))
    }
}

/// A username's streak of failed sign-in attempts from one source: how many, when the last one was, and
/// until when the next is refused (epoch seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginFailures {
    pub fails: u64,
    pub last_fail_at: u64,
    #[serde(default)]
    pub blocked_until: u64,
}

/// What [`Store::charge_login_attempt`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginCharge {
    /// The attempt may check its password; it was counted as the streak's `fails`th failure
    /// beforehand (a right password ends the streak).
    Allowed { fails: u64 },
    /// Refused without checking any password: the streak's `fails` failures keep the username
    /// refused from this source until `blocked_until`.
    Refused { fails: u64, blocked_until: u64 },
}

/// Read-then-write rounds a charge tries before it gives up (and refuses): each lost round means a
/// concurrent attempt was counted.
const CHARGE_ROUNDS: usize = 8;

impl Store {
    /// Counts a sign-in attempt for `username` from `source` as a failure before its password is
    /// checked: one strongly consistent GetItem of the streak, then one UpdateItem conditional on the
    /// streak being as read (fails and last failure), which continues it (or starts a new one when the
    /// last failure is older than `window_secs`) and sets `blocked_until` = now + `backoff(fails)`.
    /// Concurrent attempts cannot all pass on one reading: each write needs the state the attempt
    /// read, so they are counted one after another and the ones that come after the block are
    /// refused. The item expires through TTL two windows after the last attempt.
    pub async fn charge_login_attempt(
        &self,
        username: &str,
        source: &str,
        now_secs: u64,
        window_secs: u64,
        backoff: impl Fn(u64) -> u64,
    ) -> Result<LoginCharge, ApiError> {
        let item_key = key(keys::login_failures(username, source), keys::LOGIN_FAILURES);
        for _ in 0..CHARGE_ROUNDS {
            let out = self
                .client
                .get_item()
                .table_name(&self.table)
                .set_key(Some(item_key.clone()))
                .projection_expression("fails, lastFailAt, blockedUntil")
                .consistent_read(true)
                .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
                .send()
                .await?;
            self.usage.record(false, out.consumed_capacity());
            let streak: Option<LoginFailures> = out.item.map(serde_dynamo::from_item).transpose()?;
            let live = streak.filter(|s| s.last_fail_at + window_secs > now_secs);
            if let Some(s) = live.filter(|s| s.blocked_until > now_secs) {
                return Ok(LoginCharge::Refused {
                    fails: s.fails,
                    blocked_until: s.blocked_until,
                });
            }
            let fails = live.map_or(0, |s| s.fails) + 1;
            let mut update = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(item_key.clone()))
                .update_expression("SET fails = :fails, lastFailAt = :now, blockedUntil = :until, expiresAt = :expires")
                .expression_attribute_values(":fails", n(fails))
                .expression_attribute_values(":now", n(now_secs))
                .expression_attribute_values(":until", n(now_secs + backoff(fails)))
                .expression_attribute_values(":expires", n(now_secs + 2 * window_secs));
            update = match streak {
                Some(s) => update
                    .condition_expression("fails = :read_fails AND lastFailAt = :read_at")
                    .expression_attribute_values(":read_fails", n(s.fails))
                    .expression_attribute_values(":read_at", n(s.last_fail_at)),
                None => update.condition_expression("attribute_not_exists(fails)"),
            };
            if self.update_if(update).await? {
                return Ok(LoginCharge::Allowed { fails });
            }
        }
        // Lost every round: that many attempts at once are refused for a moment.
        Ok(LoginCharge::Refused {
            fails: 0,
            blocked_until: now_secs + 1,
        })
    }

    /// Ends the username's failure streak from `source` (after a successful login).
    pub async fn clear_login_failures(&self, username: &str, source: &str) -> Result<(), ApiError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::login_failures(username, source), keys::LOGIN_FAILURES)))
            .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
            .send()
            .await?;
        self.usage.record(true, out.consumed_capacity());
        Ok(())
    }
}
