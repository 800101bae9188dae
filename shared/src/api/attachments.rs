//! `/conversations/{conversationId}/attachments*` routes, and the attachments worker: the table's
//! stream records of deleted messages (and of removed upload records), turned into S3 deletes and
//! quota releases (`store::attachments`).

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use serde::Deserialize;

use super::conversations::conversation_id;
use crate::attachments::object_key;
use crate::domain::attachments::{self as domain, NewAttachment};
use crate::error::ApiError;
use crate::http::{ApiRequest, Reply};
use crate::store::{keys, AttachmentRef, MessageRecord};
use crate::AppContext;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateBody {
    #[serde(default)]
    file_name: Option<String>,
    #[serde(default)]
    content_type: Option<String>,
    #[serde(default)]
    size: Option<u64>,
}

/// `POST /conversations/{conversationId}/attachments`: 201 with the presigned upload.
pub async fn create(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let me = request.authenticate(context)?.sub;
    let id = conversation_id(&request)?;
    let body: CreateBody = request.json()?;
    let input = NewAttachment {
        file_name: body.file_name,
        content_type: body.content_type,
        size: body.size,
    };
    Reply::with_status(201, &domain::reserve(context, &me, &id, input).await?)
}

/// `GET /conversations/{conversationId}/attachments/{attachmentId}`
pub async fn get(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let me = request.authenticate(context)?.sub;
    let id = conversation_id(&request)?;
    Reply::ok(&domain::get(context, &me, &id, request.path_param("attachmentId")?).await?)
}

fn string(image: &serde_dynamo::Item, name: &str) -> Option<String> {
    match image.get(name) {
        Some(serde_dynamo::AttributeValue::S(s)) => Some(s.clone()),
        _ => None,
    }
}

/// An attachment record's removal (its message deleted, its upload expired unattached, its conversation
/// purged): whose quota gets its bytes back (uploader, attachment id, size).
fn removed_upload(record: &EventRecord) -> Option<(String, String, u64)> {
    let sk = string(&record.change.keys, "SK")?;
    if record.event_name != "REMOVE" || !sk.starts_with(keys::ATTACHMENT_PREFIX) {
        return None;
    }
    let old = &record.change.old_image;
    let size = match old.get("size") {
        Some(serde_dynamo::AttributeValue::N(n)) => n.parse().ok()?,
        _ => return None,
    };
    Some((string(old, "uploaderId")?, string(old, "id")?, size))
}

/// The objects (conversation id, attachment id) a stream record says are to be deleted: those a
/// message had before it was deleted (or purged), or an upload record's that expired unattached.
fn doomed(record: &EventRecord) -> Result<Vec<(String, String)>, ApiError> {
    let change = &record.change;
    let sk = string(&change.keys, "SK").unwrap_or_default();
    if sk.starts_with(keys::MESSAGE_PREFIX) {
        let old: Option<MessageRecord> = match change.old_image.is_empty() {
            true => None,
            false => Some(serde_dynamo::from_item(change.old_image.clone())?),
        };
        let Some(old) = old else { return Ok(Vec::new()) };
        let gone = record.event_name == "REMOVE"
            || string(&change.new_image, "body").is_some()
                && matches!(
                    change.new_image.get("deleted"),
                    Some(serde_dynamo::AttributeValue::Bool(true))
                );
        if !gone || old.deleted {
            return Ok(Vec::new());
        }
        return Ok(old
            .attachments
            .iter()
            .map(|a: &AttachmentRef| (old.conversation_id.clone(), a.id.clone()))
            .collect());
    }
    if sk.starts_with(keys::ATTACHMENT_PREFIX) && record.event_name == "REMOVE" {
        let attached = change.old_image.contains_key("messageId");
        if let (false, Some(conversation), Some(id)) = (
            attached,
            string(&change.old_image, "conversationId"),
            string(&change.old_image, "id"),
        ) {
            return Ok(vec![(conversation, id)]);
        }
    }
    Ok(Vec::new())
}

/// Deletes the objects (and records) of deleted messages; idempotent (a delete of what is gone
/// succeeds). The lowest failed record is reported, so Lambda retries from it.
pub async fn worker(context: &AppContext, event: Event) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    for record in &event.records {
        let seq = record.change.sequence_number.clone().unwrap_or_default();
        if let Some((uploader, attachment_id, size)) = removed_upload(record) {
            // Boxed: inline, the transaction's future makes the worker's too deep for the compiler's
            // layout queries (the binary would not build).
            let released = Box::pin(context.store.release_attachment(&uploader, &attachment_id, size)).await;
            if let Err(e) = released {
                tracing::warn!(attachmentId = %attachment_id, error = %e, "quota not released; the record will be retried");
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = Some(seq);
                response.batch_item_failures.push(failure);
                return response;
            }
        }
        let objects = match doomed(record) {
            Ok(objects) => objects,
            Err(e) => {
                tracing::error!(sequenceNumber = %seq, error = %e, "unreadable stream record");
                continue;
            }
        };
        for (conversation_id, attachment_id) in objects {
            // The record first: once the object is gone, so is every route's view of it.
            let done = async {
                context
                    .store
                    .delete_attachment(&conversation_id, &attachment_id)
                    .await?;
                context
                    .attachments
                    .delete(&object_key(&conversation_id, &attachment_id))
                    .await
            };
            if let Err(e) = done.await {
                tracing::warn!(attachmentId = %attachment_id, error = %e, "attachment not deleted; the record will be retried");
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = Some(seq);
                response.batch_item_failures.push(failure);
                return response;
            }
        }
    }
    response
}

/// Runs the worker as this process's Lambda function.
pub async fn serve_worker() -> Result<(), lambda_runtime::Error> {
    crate::logging::init();
    // Signs and verifies nothing: no permission to read the token secret.
    let context: &'static AppContext = Box::leak(Box::new(AppContext::from_env_without_token_secret().await?));
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<Event>| async move {
            Ok::<_, lambda_runtime::Error>(worker(context, event.payload).await)
        },
    ))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Event {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../events/attachments-worker.json"
        ))
        .expect("the sample event");
        serde_json::from_str(&text).expect("a stream event")
    }

    #[test]
    fn a_deleted_messages_attachments_are_doomed_and_nothing_else() {
        let event = sample();
        let record = &event.records[0];
        assert_eq!(
            doomed(record).unwrap(),
            vec![(
                "01JH3Z7Q2W8E4R6T8Y0V2J4K6P".to_owned(),
                "01JH3ZB7C9D1E3F5G7H9J1K3M5".to_owned()
            )]
        );
        // An edit (still not deleted) dooms nothing; nor does an attached upload's record leaving.
        let mut edit = record.clone();
        edit.change
            .new_image
            .insert("deleted".to_owned(), serde_dynamo::AttributeValue::Bool(false));
        assert!(doomed(&edit).unwrap().is_empty());
        let mut attached = record.clone();
        attached.event_name = "REMOVE".to_owned();
        attached.change.keys.insert(
            "SK".to_owned(),
            serde_dynamo::AttributeValue::S("ATTACH#01JH3ZB7C9D1E3F5G7H9J1K3M5".to_owned()),
        );
        attached.change.old_image.insert(
            "messageId".to_owned(),
            serde_dynamo::AttributeValue::S("01JH3Z9D1F3G5H7J9K1L3M5N7P".to_owned()),
        );
        assert!(doomed(&attached).unwrap().is_empty());
    }
}
