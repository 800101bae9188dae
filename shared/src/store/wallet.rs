//! Pending wallet sign-in challenges: one per address, the newest replacing the last, used once.

use serde::{Deserialize, Serialize};

use super::{is_condition_failure, item_with_key, key, keys, n, s, Store};
use crate::error::ApiError;

/// A challenge as stored under `WALLETCHALLENGE#<address>` / `CHALLENGE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChallengeRecord {
    pub address: String,
    pub nonce: String,
    pub message: String,
    /// TTL and validity: epoch seconds.
    pub expires_at: u64,
}

impl Store {
    pub async fn put_challenge(&self, challenge: &ChallengeRecord) -> Result<(), ApiError> {
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item_with_key(
                keys::wallet_challenge(&challenge.address),
                keys::CHALLENGE,
                challenge,
            )?))
            .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
            .send()
            .await?;
        self.usage.record(true, out.consumed_capacity());
        Ok(())
    }

    pub async fn get_challenge(&self, address_lowercase: &str) -> Result<Option<ChallengeRecord>, ApiError> {
        self.get_record(keys::wallet_challenge(address_lowercase), keys::CHALLENGE.to_owned())
            .await
    }

    /// Deletes the challenge if it still carries `nonce` and has not expired at `now_secs`.
    /// `Ok(false)`: it was already used (a replay) or replaced or expired.
    pub async fn consume_challenge(&self, challenge: &ChallengeRecord, now_secs: u64) -> Result<bool, ApiError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::wallet_challenge(&challenge.address), keys::CHALLENGE)))
            .condition_expression("nonce = :nonce AND expiresAt > :now")
            .expression_attribute_values(":nonce", s(&challenge.nonce))
            .expression_attribute_values(":now", n(now_secs))
            .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
            .send()
            .await;
        if let Ok(out) = &result {
            self.usage.record(true, out.consumed_capacity());
        }
        match result {
            Ok(_) => Ok(true),
            Err(err) if is_condition_failure(&err) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }
}
