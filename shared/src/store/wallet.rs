//! Pending wallet sign-in challenges: one item per challenge (`WALLETCHALLENGE#<address>` /
//! `NONCE#<nonce>`), so a new challenge never cancels another client's pending one; each is used once.

use serde::{Deserialize, Serialize};

use super::{is_condition_failure, item_with_key, key, keys, n, s, Store};
use crate::error::ApiError;

/// A challenge as stored under `WALLETCHALLENGE#<address>` / `NONCE#<nonce>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChallengeRecord {
    pub address: String,
    pub nonce: String,
    pub message: String,
    /// TTL and validity: epoch seconds.
    pub expires_at: u64,
}

/// Pending challenges of one address tried by a verify that does not name its message.
pub const PENDING_CHALLENGES_READ: i32 = 25;

impl Store {
    pub async fn put_challenge(&self, challenge: &ChallengeRecord) -> Result<(), ApiError> {
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item_with_key(
                keys::wallet_challenge(&challenge.address),
                &keys::challenge_nonce(&challenge.nonce),
                challenge,
            )?))
            .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
            .send()
            .await?;
        self.usage.record(true, out.consumed_capacity());
        Ok(())
    }

    /// The address's challenge with this nonce, if it is stored (expired or not).
    pub async fn get_challenge(
        &self,
        address_lowercase: &str,
        nonce: &str,
    ) -> Result<Option<ChallengeRecord>, ApiError> {
        self.get_record(keys::wallet_challenge(address_lowercase), keys::challenge_nonce(nonce))
            .await
    }

    /// Up to [`PENDING_CHALLENGES_READ`] of the address's stored challenges that have not expired at
    /// `now_secs` (one strongly consistent Query).
    pub async fn pending_challenges(
        &self,
        address_lowercase: &str,
        now_secs: u64,
    ) -> Result<Vec<ChallengeRecord>, ApiError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND begins_with(SK, :nonce)")
            .filter_expression("expiresAt > :now")
            .expression_attribute_values(":pk", s(keys::wallet_challenge(address_lowercase)))
            .expression_attribute_values(":nonce", s(keys::CHALLENGE_NONCE_PREFIX))
            .expression_attribute_values(":now", n(now_secs))
            .consistent_read(true)
            .limit(PENDING_CHALLENGES_READ)
            .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
            .send()
            .await?;
        self.usage.record(false, out.consumed_capacity());
        super::records(out.items.unwrap_or_default())
    }

    /// Deletes the challenge if it is still there and has not expired at `now_secs`.
    /// `Ok(false)`: it was already used (a replay) or expired.
    pub async fn consume_challenge(&self, challenge: &ChallengeRecord, now_secs: u64) -> Result<bool, ApiError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::wallet_challenge(&challenge.address),
                keys::challenge_nonce(&challenge.nonce),
            )))
            .condition_expression("attribute_exists(PK) AND expiresAt > :now")
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
