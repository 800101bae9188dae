//! Fixed-window request counters shared by every container: one conditional UpdateItem per check.

use super::{key, keys, n, Store};
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
        let request = self
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
            .expression_attribute_values(":expires", n(window_start_secs + 2 * window_secs));
        Ok(self
            .conditional_update::<serde::de::IgnoredAny>(request)
            .await?
            .is_some())
    }
}
