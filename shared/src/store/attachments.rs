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

impl Store {
    pub async fn put_attachment(&self, record: &AttachmentRecord) -> Result<(), ApiError> {
        let item = item_with_key(
            keys::conversation(&record.conversation_id),
            &keys::attachment(&record.id),
            record,
        )?;
        let stored = self
            .put_if(
                self.client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(PK)"),
            )
            .await?;
        if !stored {
            return Err(ApiError::internal("attachment id collision"));
        }
        Ok(())
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
