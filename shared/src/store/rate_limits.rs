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

/// A username's streak of failed logins: how many, and when the last one was (epoch seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginFailures {
    pub fails: u64,
    pub last_fail_at: u64,
}

impl Store {
    /// The username's current failure streak, if it has one (one strongly consistent GetItem).
    pub async fn login_failures(&self, username: &str) -> Result<Option<LoginFailures>, ApiError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::login_failures(username), keys::LOGIN_FAILURES)))
            .projection_expression("fails, lastFailAt")
            .consistent_read(true)
            .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
            .send()
            .await?;
        self.usage.record(false, out.consumed_capacity());
        Ok(out.item.map(serde_dynamo::from_item).transpose()?)
    }

    /// Counts one failed login: continues the streak when its last failure is newer than
    /// `streak_start_secs`, else starts a new one at 1. One conditional UpdateItem (two when the streak
    /// starts over; both conditional, so concurrent failures are all counted). The item expires through
    /// TTL at `expires_at`. Returns the streak's length.
    pub async fn record_login_failure(
        &self,
        username: &str,
        now_secs: u64,
        streak_start_secs: u64,
        expires_at: u64,
    ) -> Result<u64, ApiError> {
        let update = |continuing: bool| {
            let request = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(keys::login_failures(username), keys::LOGIN_FAILURES)))
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":now", n(now_secs))
                .expression_attribute_values(":start", n(streak_start_secs))
                .expression_attribute_values(":expires", n(expires_at));
            if continuing {
                request
                    .update_expression("ADD fails :one SET lastFailAt = :now, expiresAt = :expires")
                    .condition_expression("lastFailAt > :start")
            } else {
                request
                    .update_expression("SET fails = :one, lastFailAt = :now, expiresAt = :expires")
                    .condition_expression("attribute_not_exists(lastFailAt) OR lastFailAt <= :start")
            }
        };
        // Continue, else start over, else (another failure started it over meanwhile) continue.
        for continuing in [true, false, true] {
            if let Some(streak) = self.conditional_update::<LoginFailures>(update(continuing)).await? {
                return Ok(streak.fails);
            }
        }
        Ok(1)
    }

    /// Ends the username's failure streak (after a successful login).
    pub async fn clear_login_failures(&self, username: &str) -> Result<(), ApiError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::login_failures(username), keys::LOGIN_FAILURES)))
            .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
            .send()
            .await?;
        self.usage.record(true, out.consumed_capacity());
        Ok(())
    }
}
