//! The single-table DynamoDB store (see docs/ARCHITECTURE.md "Data model: one DynamoDB table"). Every item
//! has `PK` and `SK`; items expire through the table's TTL attribute `expiresAt` (epoch seconds).
//!
//! Functions here do DynamoDB work and nothing else: no validation, no HTTP. Writes that must be unique
//! are conditional writes or transactions, and say which condition failed through [`WriteConflict`].

mod attachments;
mod bans;
mod blocks;
mod call_timer;
mod connections;
mod conversations;
mod invitations;
pub(crate) mod keys;
mod messages;
mod mutes;
mod pins;
mod positions;
mod presence;
mod push;
mod rate_limits;
mod reactions;
mod reports;
mod search;
mod sessions;
mod sync;
mod usage;
mod users;
mod wallet;

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, Put, ReturnConsumedCapacity, TransactWriteItem, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use serde::Serialize;

pub use attachments::{AttachmentRecord, AttachmentRef, Reservation};
pub use bans::BanRecord;
pub use blocks::{BlockOutcome, BlockRecord};
pub use connections::ConnectionRecord;
pub use conversations::{activity_key, ConversationRecord, CreateConversationError, MemberRecord, MessageRecord};
pub use invitations::{InvitationRecord, InviteRecord, Joined};
pub use messages::{ClientClaim, HistoryBound, SendContext, SendOutcome};
pub use pins::{PinRecord, Pinned};
pub use positions::{Position, Reserved};
pub use presence::PresenceState;
pub use push::{subscriptions_key, subscriptions_of, PushSubscriptionRecord, Subscribed};
pub use rate_limits::{LoginCharge, LoginFailures};
pub use reactions::Reacted;
pub use reports::{report_index_key, ReportRecord, MAX_LISTED_REPORTS};
pub use search::{IndexWrite, SearchHits, SearchPage, INDEX_WRITES_PER_CALL};
pub use sessions::{SessionRecord, MAX_LISTED_SESSIONS};
pub use sync::{SyncEntry, SYNC_RECORD_DAYS};
pub use usage::{Usage, UsageMeter};
pub use users::{CreateUserError, ProfilePatch, UserRecord};
pub use wallet::ChallengeRecord;

use crate::error::ApiError;

pub type Item = HashMap<String, AttributeValue>;

/// One DynamoDB client (built once per process) and the table it works on.
#[derive(Clone, Debug)]
pub struct Store {
    client: Client,
    /// The same connection settings without the SDK's retries and with a long attempt timeout, for the
    /// one call whose lost answer must be read back rather than retried (see `positions`). Built once
    /// per process like the other.
    patient: Client,
    table: String,
    usage: UsageMeter,
    /// How long an operation keeps retrying transient DynamoDB failures (see `Store::retrying`).
    retry_budget: std::time::Duration,
}

/// Which of a transaction's conditional writes failed.
#[derive(Debug)]
pub enum WriteConflict {
    /// The indexes (in the order given) of the writes whose conditions failed.
    Conditions(Vec<usize>),
    Other(ApiError),
}

impl Store {
    /// Builds the process's one DynamoDB client from `sdk`, timing every call and logging those slower
    /// than `slow_call`.
    pub fn new(sdk: &aws_config::SdkConfig, table: impl Into<String>, slow_call: std::time::Duration) -> Self {
        let usage = UsageMeter::default();
        let config = aws_sdk_dynamodb::config::Builder::from(sdk)
            .interceptor(call_timer::CallTimer::new(usage.clone(), slow_call))
            .build();
        let patient = config
            .to_builder()
            .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
            .timeout_config(
                aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
                    .connect_timeout(std::time::Duration::from_millis(500))
                    .operation_attempt_timeout(positions::PATIENT_ATTEMPT)
                    .operation_timeout(positions::PATIENT_ATTEMPT)
                    .build(),
            )
            .build();
        Store {
            client: Client::from_conf(config),
            patient: Client::from_conf(patient),
            table: table.into(),
            usage,
            retry_budget: std::time::Duration::from_secs(2),
        }
    }

    pub fn with_retry_budget(mut self, budget: std::time::Duration) -> Self {
        self.retry_budget = budget;
        self
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// One eventually consistent read of a key that never exists: the cheapest proof DynamoDB answers.
    pub async fn ping(&self) -> Result<(), ApiError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key("HEALTH", "HEALTH")))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await?;
        self.usage.record(false, out.consumed_capacity());
        Ok(())
    }

    /// DynamoDB calls and capacity this store has used so far.
    pub fn usage(&self) -> Usage {
        self.usage.snapshot()
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// A transaction write that puts `item` only if no item has its key yet.
    pub(crate) fn put_if_absent(&self, item: Item) -> Result<TransactWriteItem, ApiError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .build()
            .map_err(ApiError::internal)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }
}

impl Store {
    /// One BatchWriteItem of at most 25 requests, retried (transient failures inside the retry budget,
    /// unprocessed items with backoff) until every request is done.
    pub(crate) async fn batch_write(&self, mut requests: Vec<WriteRequest>) -> Result<(), ApiError> {
        let mut attempt = 0u32;
        while !requests.is_empty() {
            let out = self
                .retrying(|| async {
                    let out = self
                        .client
                        .batch_write_item()
                        .request_items(&self.table, requests.clone())
                        .return_consumed_capacity(ReturnConsumedCapacity::Total)
                        .send()
                        .await;
                    match out {
                        Ok(out) => {
                            self.usage.record(true, out.consumed_capacity());
                            Ok(out)
                        }
                        Err(e) => {
                            self.usage
                                .record(true, None::<&aws_sdk_dynamodb::types::ConsumedCapacity>);
                            Err(ApiError::from(e))
                        }
                    }
                })
                .await?;
            requests = out
                .unprocessed_items
                .and_then(|mut left| left.remove(&self.table))
                .unwrap_or_default();
            attempt += 1;
            if !requests.is_empty() {
                if attempt > 8 {
                    return Err(ApiError::Unavailable {
                        message: "The table is busy; the change will be retried.".to_owned(),
                        retry_after_secs: 1,
                    });
                }
                tokio::time::sleep(std::time::Duration::from_millis(25 << attempt.min(5))).await;
            }
        }
        Ok(())
    }
}

impl Store {
    /// One item by its key, strongly consistent, as `T` (`None`: no such item), its read capacity
    /// recorded like every other call's.
    pub(crate) async fn get_record<T: serde::de::DeserializeOwned>(
        &self,
        pk: String,
        sk: String,
    ) -> Result<Option<T>, ApiError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await?;
        self.usage.record(false, out.consumed_capacity());
        Ok(out.item.map(serde_dynamo::from_item).transpose()?)
    }

    /// A transaction whose failed conditions mean "no longer so" (a role changed, a member left):
    /// `true` when it applied, `false` when a condition did not hold.
    pub(crate) async fn transact_if(&self, writes: Vec<TransactWriteItem>) -> Result<bool, ApiError> {
        match self.transact(writes).await {
            Ok(()) => Ok(true),
            Err(WriteConflict::Conditions(_)) => Ok(false),
            Err(WriteConflict::Other(e)) => Err(e),
        }
    }
}

/// DynamoDB's BatchGetItem limit.
const BATCH_GET_MAX: usize = 100;

impl Store {
    /// Every item of partition `pk` whose sort key starts with `prefix`, strongly consistent, a Query a
    /// page (1 MB), in sort-key order or `newest_first`, reading only `projection` when given. `page`
    /// takes each page's items and says whether to read the next one.
    pub(crate) async fn query_prefix(
        &self,
        pk: String,
        prefix: &str,
        newest_first: bool,
        projection: Option<&str>,
        mut page: impl FnMut(Vec<Item>) -> Result<bool, ApiError>,
    ) -> Result<(), ApiError> {
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
                .expression_attribute_values(":pk", s(pk.clone()))
                .expression_attribute_values(":prefix", s(prefix))
                .scan_index_forward(!newest_first)
                .set_projection_expression(projection.map(str::to_owned))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
                .send()
                .await?;
            self.usage.record(false, out.consumed_capacity());
            let more = page(out.items.unwrap_or_default())?;
            match out.last_evaluated_key {
                Some(next) if more => start = Some(next),
                _ => return Ok(()),
            }
        }
    }

    /// BatchGetItem over any keys, 100 a call, retrying unprocessed keys with backoff.
    pub(crate) async fn batch_get(&self, keys_wanted: Vec<Item>, consistent: bool) -> Result<Vec<Item>, ApiError> {
        self.batch_get_projected(keys_wanted, consistent, None).await
    }

    /// The same, reading only `projection`: (expression, attribute names it uses).
    pub(crate) async fn batch_get_projected(
        &self,
        keys_wanted: Vec<Item>,
        consistent: bool,
        projection: Option<(&str, &[(&str, &str)])>,
    ) -> Result<Vec<Item>, ApiError> {
        let mut found = Vec::with_capacity(keys_wanted.len());
        for chunk in keys_wanted.chunks(BATCH_GET_MAX) {
            let mut pending = Some(
                projection
                    .into_iter()
                    .fold(
                        KeysAndAttributes::builder()
                            .set_keys(Some(chunk.to_vec()))
                            .consistent_read(consistent),
                        |builder, (expression, names)| {
                            names
                                .iter()
                                .fold(builder.projection_expression(expression), |b, (placeholder, name)| {
                                    b.expression_attribute_names(*placeholder, *name)
                                })
                        },
                    )
                    .build()
                    .map_err(ApiError::internal)?,
            );
            let mut attempt = 0u32;
            while let Some(request) = pending.take() {
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
                    .await?;
                self.usage.record(false, out.consumed_capacity());
                found.extend(
                    out.responses
                        .unwrap_or_default()
                        .remove(&self.table)
                        .unwrap_or_default(),
                );
                pending = out
                    .unprocessed_keys
                    .unwrap_or_default()
                    .remove(&self.table)
                    .filter(|k| !k.keys().is_empty());
                if pending.is_some() {
                    attempt += 1;
                    if attempt > 6 {
                        return Err(ApiError::Unavailable {
                            message: "The service is busy; please retry shortly.".to_owned(),
                            retry_after_secs: 1,
                        });
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(10 << attempt)).await;
                }
            }
        }
        Ok(found)
    }
}

impl Store {
    /// Sends a conditional UpdateItem and returns the item as it now is, or `None` when the condition
    /// did not hold.
    pub(crate) async fn conditional_update<T: serde::de::DeserializeOwned>(
        &self,
        request: aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
    ) -> Result<Option<T>, ApiError> {
        let result = request
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match result {
            Ok(out) => {
                self.usage.record(true, out.consumed_capacity());
                Ok(out.attributes.map(serde_dynamo::from_item).transpose()?)
            }
            Err(err) if is_condition_failure(&err) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }
}

impl Store {
    /// Sends a conditional UpdateItem whose failed condition means "already done, or overtaken by a
    /// newer write" (a marker that only moves forward, a repeat of a step): `true` when it applied,
    /// `false` when the condition did not hold. Retried on transient failures inside the budget.
    pub(crate) async fn update_if(
        &self,
        request: aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
    ) -> Result<bool, ApiError> {
        self.write_if(|| async {
            let out = request
                .clone()
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await?;
            Ok(out.consumed_capacity().cloned())
        })
        .await
    }

    /// The same for a PutItem: `false` when the item's condition did not hold.
    pub(crate) async fn put_if(
        &self,
        request: aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder,
    ) -> Result<bool, ApiError> {
        self.write_if(|| async {
            let out = request
                .clone()
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await?;
            Ok(out.consumed_capacity().cloned())
        })
        .await
    }

    async fn write_if<E, R, F, Fut>(&self, send: F) -> Result<bool, ApiError>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug,
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Option<aws_sdk_dynamodb::types::ConsumedCapacity>, SdkError<E, R>>>,
    {
        self.retrying(|| async {
            match send().await {
                Ok(capacity) => {
                    self.usage.record(true, capacity.as_ref());
                    Ok(true)
                }
                Err(err) if is_condition_failure(&err) => Ok(false),
                Err(err) => Err(err.into()),
            }
        })
        .await
    }
}

/// Deserialises items into records; one bad item fails the whole read (it would be a store bug).
pub(crate) fn records<T: serde::de::DeserializeOwned>(
    items: impl IntoIterator<Item = Item>,
) -> Result<Vec<T>, ApiError> {
    items
        .into_iter()
        .map(|item| serde_dynamo::from_item(item).map_err(ApiError::from))
        .collect()
}

/// `{PK, SK}` as a DynamoDB key.
pub(crate) fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([
        ("PK".to_owned(), AttributeValue::S(pk.into())),
        ("SK".to_owned(), AttributeValue::S(sk.into())),
    ])
}

/// Serialises `value` and adds its key.
pub(crate) fn item_with_key<T: Serialize>(pk: String, sk: &str, value: &T) -> Result<Item, ApiError> {
    let mut item: Item = serde_dynamo::to_item(value)?;
    item.extend(key(pk, sk));
    Ok(item)
}

pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(crate) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// Sorts a failed transaction into "these conditions failed" and everything else.
pub(crate) fn classify_transaction_error<R: std::fmt::Debug>(
    err: SdkError<TransactWriteItemsError, R>,
) -> WriteConflict {
    if let SdkError::ServiceError(service) = &err {
        if let TransactWriteItemsError::TransactionCanceledException(cancelled) = service.err() {
            let failed: Vec<usize> = cancelled
                .cancellation_reasons()
                .iter()
                .enumerate()
                .filter(|(_, reason)| reason.code() == Some("ConditionalCheckFailed"))
                .map(|(i, _)| i)
                .collect();
            if !failed.is_empty() {
                return WriteConflict::Conditions(failed);
            }
        }
    }
    WriteConflict::Other(err.into())
}

/// True when a single-item write failed only because its condition did not hold.
pub(crate) fn is_condition_failure<E, R>(err: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
{
    matches!(err, SdkError::ServiceError(service) if service.err().code() == Some("ConditionalCheckFailedException"))
}
