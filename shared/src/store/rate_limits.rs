//! Fixed-window request counters shared by every container: one conditional UpdateItem per check.

use aws_sdk_dynamodb::types::ReturnConsumedCapacity;

use super::{is_condition_failure, key, keys, n, Store};
use crate::error::ApiError;

impl Store {
    /// Counts one request against `subject`'s window starting at `window_start_secs`, unless the window
    /// already holds `limit` requests: then nothing is written and the answer is `false`. The counter
    /// expires through TTL one window after the window ends.
    pub async fn count_request(
        &self,
        subject: &str,
        window_start_secs: u64,
        window_secs: u64,
        limit: u64,
    ) -> Result<bool, ApiError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::rate_counter(subject),
                keys::rate_window(window_start_secs),
            )))
            .update_expression("ADD hits :one SET expiresAt = if_not_exists(expiresAt, :expires)")
            .condition_expression("attribute_not_exists(hits) OR hits < :limit")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(limit))
            .expression_attribute_values(":expires", n(window_start_secs + 2 * window_secs))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match result {
            Ok(out) => {
                self.usage.record(true, out.consumed_capacity());
                Ok(true)
            }
            Err(err) if is_condition_failure(&err) => {
                self.usage.record(true, None);
                Ok(false)
            }
            Err(err) => Err(err.into()),
        }
    }
}
