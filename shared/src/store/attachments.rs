//! Attachment records: `CONV#<conversationId>` / `ATTACH#<attachmentId>`, written when an upload is
//! reserved, with the table's TTL `expiresAt` (24 h) while unattached; attaching sets `messageId` and
//! removes `expiresAt`, conditionally and in the send's own transaction (see `store::messages`), so an
//! attachment belongs to one message at most and a failed send attaches nothing.

use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use serde::{Deserialize, Serialize};

use super::{item_with_key, key, keys, n, s, Store};
use crate::error::ApiError;

/// The API's `attachment` (openapi.yaml `Attachment`) as a message keeps it (`url` is added when read).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentRef {
    pub id: String,
    pub conversation_id: String,
    pub file_name: String,
    pub content_type: String,
    pub size: u64,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentRecord {
    pub id: String,
    pub conversation_id: String,
    pub uploader_id: String,
    pub file_name: String,
    pub content_type: String,
    pub size: u64,
    pub created_at: String,
    /// The message it is attached to, once it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Epoch seconds (the table's TTL) while unattached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
}

impl AttachmentRecord {
    pub fn to_ref(&self) -> AttachmentRef {
        AttachmentRef {
            id: self.id.clone(),
            conversation_id: self.conversation_id.clone(),
            file_name: self.file_name.clone(),
            content_type: self.content_type.clone(),
            size: self.size,
            created_at: self.created_at.clone(),
            url: None,
        }
    }

    /// Unattached and past its TTL: gone, whether or not DynamoDB has deleted it yet.
    pub fn expired(&self, now_secs: u64) -> bool {
        self.message_id.is_none() && self.expires_at.is_some_and(|at| at <= now_secs)
    }
}

/// What [`Store::reserve_attachment`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    Stored,
    /// The uploader's attachments would exceed the quota: nothing was written.
    OverQuota,
}

impl Store {
    /// Records an upload and charges its declared size to its uploader's quota, in one transaction: the
    /// charge only if the uploader's stored bytes stay within `quota_bytes` (`USER#<uploader>` /
    /// `STORAGE`), the record only if its id is new. 2 items, 4 WCU.
    pub async fn reserve_attachment(
        &self,
        record: &AttachmentRecord,
        quota_bytes: u64,
    ) -> Result<Reservation, ApiError> {
        let Some(room) = quota_bytes.checked_sub(record.size) else {
            return Ok(Reservation::OverQuota);
        };
        let charge = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(keys::user(&record.uploader_id), keys::STORAGE)))
            .update_expression("ADD attachmentBytes :size")
            .condition_expression("attribute_not_exists(attachmentBytes) OR attachmentBytes <= :room")
            .expression_attribute_values(":size", n(record.size))
            .expression_attribute_values(":room", n(room))
            .build()
            .map_err(ApiError::internal)?;
        let item = item_with_key(
            keys::conversation(&record.conversation_id),
            &keys::attachment(&record.id),
            record,
        )?;
        let writes = vec![
            TransactWriteItem::builder().update(charge).build(),
            self.put_if_absent(item)?,
        ];
        match self.transact(writes).await {
            Ok(()) => Ok(Reservation::Stored),
            Err(super::WriteConflict::Conditions(failed)) if failed.contains(&0) => Ok(Reservation::OverQuota),
            Err(super::WriteConflict::Conditions(_)) => Err(ApiError::internal("attachment id collision")),
            Err(super::WriteConflict::Other(e)) => Err(e),
        }
    }

    /// Gives a removed attachment's bytes back to its uploader's quota, once: the marker
    /// `RELEASED#<attachmentId>` (kept two days, longer than a stream record is retried) and the
    /// decrement are one transaction, so a record seen twice releases once. `false`: released already.
    pub async fn release_attachment(
        &self,
        uploader_id: &str,
        attachment_id: &str,
        size: u64,
    ) -> Result<bool, ApiError> {
        let marker = std::collections::HashMap::from([
            ("PK".to_owned(), s(keys::user(uploader_id))),
            ("SK".to_owned(), s(keys::released(attachment_id))),
            (
                "expiresAt".to_owned(),
                n(crate::time::epoch_secs(crate::time::now()) + 2 * 24 * 3600),
            ),
        ]);
        let give_back = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(keys::user(uploader_id), keys::STORAGE)))
            .update_expression("ADD attachmentBytes :minus")
            .condition_expression("attribute_exists(attachmentBytes)")
            .expression_attribute_values(":minus", n(-(size as i64)))
            .build()
            .map_err(ApiError::internal)?;
        self.transact_if(vec![
            self.put_if_absent(marker)?,
            TransactWriteItem::builder().update(give_back).build(),
        ])
        .await
    }

    /// The bytes of attachments the user has stored (strongly consistent).
    pub async fn stored_attachment_bytes(&self, user_id: &str) -> Result<u64, ApiError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Storage {
            #[serde(default)]
            attachment_bytes: u64,
        }
        let storage: Option<Storage> = self.get_record(keys::user(user_id), keys::STORAGE.to_owned()).await?;
        Ok(storage.map_or(0, |s| s.attachment_bytes))
    }

    pub async fn get_attachment(
        &self,
        conversation_id: &str,
        attachment_id: &str,
    ) -> Result<Option<AttachmentRecord>, ApiError> {
        self.get_record(keys::conversation(conversation_id), keys::attachment(attachment_id))
            .await
    }

    /// The records of `ids` in this conversation that exist (one BatchGetItem).
    pub async fn attachments_of(
        &self,
        conversation_id: &str,
        ids: &[String],
    ) -> Result<Vec<AttachmentRecord>, ApiError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let wanted = ids
            .iter()
            .map(|id| key(keys::conversation(conversation_id), keys::attachment(id)))
            .collect();
        let items = self.batch_get(wanted, true).await?;
        items
            .into_iter()
            .map(|item| serde_dynamo::from_item(item).map_err(ApiError::from))
            .collect()
    }

    /// The send transaction's write that attaches one upload to `message_id`: only the uploader's,
    /// not attached yet, not expired.
    pub(crate) fn attach_write(
        &self,
        conversation_id: &str,
        attachment_id: &str,
        uploader_id: &str,
        message_id: &str,
        now_secs: u64,
    ) -> Result<TransactWriteItem, ApiError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(keys::conversation(conversation_id), keys::attachment(attachment_id))))
            .update_expression("SET messageId = :message REMOVE expiresAt")
            .condition_expression(
                "attribute_exists(PK) AND uploaderId = :uploader AND attribute_not_exists(messageId) AND expiresAt > :now",
            )
            .expression_attribute_values(":message", s(message_id))
            .expression_attribute_values(":uploader", s(uploader_id))
            .expression_attribute_values(":now", n(now_secs))
            .build()
            .map_err(ApiError::internal)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Deletes a record (idempotent).
    pub async fn delete_attachment(&self, conversation_id: &str, attachment_id: &str) -> Result<(), ApiError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::conversation(conversation_id),
                keys::attachment(attachment_id),
            )))
            .send()
            .await?;
        Ok(())
    }
}
