//! User profiles and the claims that keep usernames and wallet addresses unique.

use serde::{Deserialize, Serialize};

use super::{classify_transaction_error, item_with_key, key, keys, records, s, Store, WriteConflict};
use crate::error::ApiError;

/// A user as stored under `USER#<id>` / `PROFILE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRecord {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wallet_address: Option<String>,
    /// argon2id PHC string; absent for wallet-only accounts. Never leaves the store layer in a response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_at: Option<String>,
    pub created_at: String,
    /// `admin` for operators; set by hand on the item, never through the API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// `nobody`: group adds invite the user instead (`domain::invitations`); absent: `everyone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub who_can_add_me: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ClaimItem<'a> {
    user_id: &'a str,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClaimRead {
    user_id: String,
}

/// Why a new user could not be written.
#[derive(Debug)]
pub enum CreateUserError {
    UsernameTaken,
    WalletTaken,
    Store(ApiError),
}

/// The fields of a profile update; `None` leaves a field alone, `Some(None)` removes it.
#[derive(Debug, Default, Clone)]
pub struct ProfilePatch {
    pub display_name: Option<String>,
    pub status: Option<String>,
    pub status_text: Option<Option<String>>,
    pub who_can_add_me: Option<String>,
}

/// The profile attributes a response may show (never `passwordHash`).
/// (`whoCanAddMe` is read for the adds' consent check, and never shown to others: `domain::users`.)
const PUBLIC_PROJECTION: &str =
    "id, username, displayName, #status, statusText, walletAddress, lastSeenAt, createdAt, whoCanAddMe";

impl Store {
    /// Writes the profile and its username claim (and wallet claim, if the user has a wallet) in one
    /// transaction: either all exist afterwards or none does.
    pub async fn create_user(&self, record: &UserRecord) -> Result<(), CreateUserError> {
        let claim = ClaimItem { user_id: &record.id };
        let mut items = vec![
            item_with_key(keys::user(&record.id), keys::PROFILE, record),
            item_with_key(keys::username(&record.username), keys::CLAIM, &claim),
        ];
        if let Some(address) = &record.wallet_address {
            items.push(item_with_key(keys::wallet(address), keys::CLAIM, &claim));
        }
        let writes = items
            .into_iter()
            .map(|item| item.and_then(|item| self.put_if_absent(item)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(CreateUserError::Store)?;
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(writes))
            .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
            .send()
            .await;
        if let Ok(out) = &result {
            self.usage.record(true, out.consumed_capacity());
        }
        match result.map_err(classify_transaction_error) {
            Ok(_) => Ok(()),
            Err(WriteConflict::Conditions(failed)) if failed.contains(&1) => Err(CreateUserError::UsernameTaken),
            Err(WriteConflict::Conditions(failed)) if failed.contains(&2) => Err(CreateUserError::WalletTaken),
            Err(WriteConflict::Conditions(_)) => Err(CreateUserError::Store(ApiError::internal("user id collision"))),
            Err(WriteConflict::Other(e)) => Err(CreateUserError::Store(e)),
        }
    }

    pub async fn get_user(&self, user_id: &str) -> Result<Option<UserRecord>, ApiError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::user(user_id), keys::PROFILE)))
            .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
            .send()
            .await?;
        self.usage.record(false, out.consumed_capacity());
        Ok(out.item.map(serde_dynamo::from_item).transpose()?)
    }

    /// The user id that holds `username`, read strongly so a just-registered user can sign in at once.
    pub async fn user_id_by_username(&self, username: &str) -> Result<Option<String>, ApiError> {
        self.read_claim(keys::username(username)).await
    }

    pub async fn user_id_by_wallet(&self, address_lowercase: &str) -> Result<Option<String>, ApiError> {
        self.read_claim(keys::wallet(address_lowercase)).await
    }

    async fn read_claim(&self, pk: String) -> Result<Option<String>, ApiError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, keys::CLAIM)))
            .consistent_read(true)
            .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
            .send()
            .await?;
        self.usage.record(false, out.consumed_capacity());
        Ok(out
            .item
            .map(serde_dynamo::from_item::<_, ClaimRead>)
            .transpose()?
            .map(|c| c.user_id))
    }

    /// Reads many profiles (public attributes only) with BatchGetItem, 100 keys a call. Unknown ids are
    /// left out; the order of the result is not the order of `ids`.
    pub async fn batch_get_users(&self, ids: &[String]) -> Result<Vec<UserRecord>, ApiError> {
        let keys_wanted = ids.iter().map(|id| key(keys::user(id), keys::PROFILE)).collect();
        let projection = (PUBLIC_PROJECTION, &[("#status", "status")][..]);
        records(self.batch_get_projected(keys_wanted, false, Some(projection)).await?)
    }

    /// Applies `patch` to an existing profile and returns the profile as it now is.
    pub async fn update_profile(&self, user_id: &str, patch: &ProfilePatch) -> Result<Option<UserRecord>, ApiError> {
        let mut set = Vec::new();
        let mut remove = Vec::new();
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::user(user_id), keys::PROFILE)))
            .condition_expression("attribute_exists(PK)");
        if let Some(name) = &patch.display_name {
            set.push("displayName = :displayName");
            request = request.expression_attribute_values(":displayName", s(name));
        }
        if let Some(status) = &patch.status {
            set.push("#status = :status");
            request = request
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":status", s(status));
        }
        match &patch.status_text {
            Some(Some(text)) => {
                set.push("statusText = :statusText");
                request = request.expression_attribute_values(":statusText", s(text));
            }
            Some(None) => remove.push("statusText"),
            None => {}
        }
        if let Some(who) = &patch.who_can_add_me {
            set.push("whoCanAddMe = :whoCanAddMe");
            request = request.expression_attribute_values(":whoCanAddMe", s(who));
        }
        let mut expression = String::new();
        if !set.is_empty() {
            expression.push_str(&format!("SET {}", set.join(", ")));
        }
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        if expression.is_empty() {
            return self.get_user(user_id).await;
        }
        self.conditional_update(request.update_expression(expression.trim()))
            .await
    }
}
