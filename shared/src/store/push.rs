//! Push notifications' items (`domain::push`, the push worker):
//! - `USER#<user>` / `PUSH` `{subs: {<id>: subscription}}`: the user's devices, all in one item, so the
//!   worker reads a member's subscriptions in the same BatchGetItem as their membership and blocks,
//!   and a member without any costs one missing key rather than a Query. The id is a hash of the type
//!   and the endpoint or token, so registering the same device again finds the same entry;
//! - `USER#<user>` / `PUSHED#<conversation>` `{pushedAt, expiresAt}`: when the user was last pushed for
//!   the conversation; a conditional write on it is what collapses a burst into one push;
//! - a member item's `notifyLevel` and `notifyMutedUntil` (epoch ms): the user's settings for the
//!   conversation, read by the worker together with the membership itself.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnConsumedCapacity, ReturnValue, ReturnValuesOnConditionCheckFailure,
};
use serde::{Deserialize, Serialize};

use super::{key, keys, n, s, Item, Store};
use crate::error::ApiError;

/// One registered device, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushSubscriptionRecord {
    pub id: String,
    /// `webpush`, `apns` or `fcm`.
    #[serde(rename = "type")]
    pub kind: crate::kinds::DeviceKind,
    pub created_at: String,
    /// Web Push: where to post, and the browser's keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p256dh: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<String>,
    /// Web Push: the server's VAPID public key when the subscription was made (what the browser bound
    /// it to), so pushes are signed with that key across a rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vapid_key: Option<String>,
    /// APNs and FCM: the device token and its SNS platform endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sns_endpoint_arn: Option<String>,
}

/// A user's `PUSH` item.
#[derive(Debug, Default, Deserialize)]
struct Subscriptions {
    #[serde(default)]
    subs: BTreeMap<String, PushSubscriptionRecord>,
}

/// What [`Store::put_push_subscription`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subscribed {
    Created(PushSubscriptionRecord),
    /// The device was registered already: its keys are updated, its id and `createdAt` kept.
    Existing(PushSubscriptionRecord),
    /// The user has the most subscriptions allowed.
    Full,
}

/// A user's subscriptions from their `PUSH` item (none when absent), oldest first.
pub fn subscriptions_of(item: Option<Item>) -> Result<Vec<PushSubscriptionRecord>, ApiError> {
    let Some(item) = item else { return Ok(Vec::new()) };
    let stored: Subscriptions = serde_dynamo::from_item(item)?;
    let mut found: Vec<PushSubscriptionRecord> = stored.subs.into_values().collect();
    found.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.id.cmp(&b.id)));
    Ok(found)
}

/// The key of a user's `PUSH` item (for the worker's BatchGetItem).
pub fn subscriptions_key(user_id: &str) -> Item {
    key(keys::user(user_id), keys::PUSH)
}

/// The entry `id` of the `subs` map in an update's `UPDATED_OLD` attributes, if it was there.
fn old_entry(attributes: Option<Item>, id: &str) -> Option<AttributeValue> {
    match attributes?.remove("subs")? {
        AttributeValue::M(mut subs) => subs.remove(id),
        _ => None,
    }
}

impl Store {
    /// Every subscription of a user, oldest first.
    pub async fn push_subscriptions(&self, user_id: &str) -> Result<Vec<PushSubscriptionRecord>, ApiError> {
        let item = self.get_item(subscriptions_key(user_id), true).await?;
        subscriptions_of(item)
    }

    async fn get_item(&self, key: Item, consistent: bool) -> Result<Option<Item>, ApiError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(consistent)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await?;
        self.usage.record(false, out.consumed_capacity());
        Ok(out.item)
    }

    /// Adds a subscription, unless the user has `max` already; the same id again updates its keys and
    /// keeps its `createdAt`. Safe under concurrent registrations: each step is one conditional write.
    pub async fn put_push_subscription(
        &self,
        user_id: &str,
        record: &PushSubscriptionRecord,
        max: usize,
    ) -> Result<Subscribed, ApiError> {
        let value = AttributeValue::M(serde_dynamo::to_item(record)?);
        // An item appears once and is never removed (only its entries are), so this ends on the
        // second round at the latest; three rounds for safety.
        for _ in 0..3 {
            let out = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(subscriptions_key(user_id)))
                .update_expression("SET subs.#id = :sub")
                .condition_expression("attribute_exists(subs) AND (attribute_exists(subs.#id) OR size(subs) < :max)")
                .expression_attribute_names("#id", &record.id)
                .expression_attribute_values(":sub", value.clone())
                .expression_attribute_values(":max", n(max))
                .return_values(ReturnValue::UpdatedOld)
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await;
            match out {
                Ok(out) => {
                    self.usage.record(true, out.consumed_capacity());
                    let old = old_entry(out.attributes, &record.id);
                    let Some(AttributeValue::M(old)) = old else {
                        return Ok(Subscribed::Created(record.clone()));
                    };
                    let old: PushSubscriptionRecord = serde_dynamo::from_item(old)?;
                    // The device again: the first registration's time stands.
                    self.update_if(
                        self.client
                            .update_item()
                            .table_name(&self.table)
                            .set_key(Some(subscriptions_key(user_id)))
                            .update_expression("SET subs.#id.createdAt = :created")
                            .condition_expression("attribute_exists(subs.#id)")
                            .expression_attribute_names("#id", &record.id)
                            .expression_attribute_values(":created", s(&old.created_at)),
                    )
                    .await?;
                    return Ok(Subscribed::Existing(PushSubscriptionRecord {
                        created_at: old.created_at,
                        ..record.clone()
                    }));
                }
                Err(err)
                    if err.as_service_error().and_then(|e| e.code()) == Some("ConditionalCheckFailedException") =>
                {
                    let existing = err.into_service_error();
                    let item = match existing {
                        aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(
                            e,
                        ) => e.item,
                        _ => None,
                    };
                    if item.as_ref().is_some_and(|i| i.contains_key("subs")) {
                        return Ok(Subscribed::Full);
                    }
                    let mut first = subscriptions_key(user_id);
                    first.insert(
                        "subs".to_owned(),
                        AttributeValue::M(Item::from([(record.id.clone(), value.clone())])),
                    );
                    let created = self
                        .put_if(
                            self.client
                                .put_item()
                                .table_name(&self.table)
                                .set_item(Some(first))
                                .condition_expression("attribute_not_exists(PK)"),
                        )
                        .await?;
                    if created {
                        return Ok(Subscribed::Created(record.clone()));
                    }
                }
                Err(err) => return Err(err.into()),
            }
        }
        Err(ApiError::internal("the push subscriptions item kept changing"))
    }

    /// Removes a subscription; the removed one, or `None` when the user had none with that id.
    pub async fn delete_push_subscription(
        &self,
        user_id: &str,
        id: &str,
    ) -> Result<Option<PushSubscriptionRecord>, ApiError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(subscriptions_key(user_id)))
            .update_expression("REMOVE subs.#id")
            .condition_expression("attribute_exists(subs.#id)")
            .expression_attribute_names("#id", id)
            .return_values(ReturnValue::UpdatedOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match out {
            Ok(out) => {
                self.usage.record(true, out.consumed_capacity());
                let old = old_entry(out.attributes, id);
                match old {
                    Some(AttributeValue::M(old)) => Ok(Some(serde_dynamo::from_item(old)?)),
                    _ => Ok(None),
                }
            }
            Err(err) if err.as_service_error().and_then(|e| e.code()) == Some("ConditionalCheckFailedException") => {
                Ok(None)
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Sets a member's notification level and mute; `false` when they are not a member.
    pub async fn set_notifications(
        &self,
        conversation_id: &str,
        user_id: &str,
        level: &str,
        muted_until_ms: Option<u64>,
    ) -> Result<bool, ApiError> {
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::conversation(conversation_id), keys::member(user_id))))
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":level", s(level));
        let request = match muted_until_ms {
            Some(until) => request
                .update_expression("SET notifyLevel = :level, notifyMutedUntil = :until")
                .expression_attribute_values(":until", n(until)),
            None => request.update_expression("SET notifyLevel = :level REMOVE notifyMutedUntil"),
        };
        self.update_if(request).await
    }

    /// Claims the one push a user gets for a conversation per `window_ms`: `true` when the last push
    /// was at least `window_ms` before `now_ms` (or there was none), and records this one.
    pub async fn claim_push(
        &self,
        user_id: &str,
        conversation_id: &str,
        now_ms: u64,
        window_ms: u64,
    ) -> Result<bool, ApiError> {
        self.update_if(
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(keys::user(user_id), keys::pushed(conversation_id))))
                .update_expression("SET pushedAt = :now, expiresAt = :expires")
                .condition_expression("attribute_not_exists(pushedAt) OR pushedAt <= :cutoff")
                .expression_attribute_values(":now", n(now_ms))
                .expression_attribute_values(":cutoff", n(now_ms.saturating_sub(window_ms)))
                // Kept a day past the window, for the table's TTL to clear; it matters for seconds.
                .expression_attribute_values(":expires", n(now_ms / 1000 + 86_400)),
        )
        .await
    }

    /// Reads many items at once (the push worker's members, blocks and subscriptions): by key, each
    /// found item with its key.
    pub async fn items(&self, wanted: Vec<Item>) -> Result<Vec<Item>, ApiError> {
        self.batch_get(wanted, false).await
    }
}
