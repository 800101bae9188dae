//! Attachments (docs/API-GUIDE.md "Attachments"): reserve an upload, read one, and the checks a send makes
//! before attaching uploads to its message.

use serde::Serialize;

use super::conversations::membership;
use crate::attachments::{object_key, MAX_SIZE};
use crate::context::AppContext;
use crate::error::ApiError;
use crate::store::{AttachmentRecord, AttachmentRef, Reservation};
use crate::time::rfc3339;
use crate::validate;

pub type Attachment = AttachmentRef;

/// `attachmentIds` max 10 (docs/API-GUIDE.md "Limits").
pub const MAX_PER_MESSAGE: usize = 10;

pub struct NewAttachment {
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    pub size: Option<u64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reserved {
    pub attachment: Attachment,
    pub upload_url: String,
    pub upload_headers: std::collections::BTreeMap<String, String>,
    pub expires_at: String,
}

fn file_name(raw: Option<&str>) -> Result<String, ApiError> {
    let raw = raw.ok_or_else(|| ApiError::invalid("fileName", "is required"))?;
    let chars = raw.chars().count();
    if !(1..=255).contains(&chars) {
        return Err(ApiError::invalid("fileName", "must be 1 to 255 characters"));
    }
    if raw.chars().any(|c| c == '/' || c == '\\' || c.is_control()) {
        return Err(ApiError::invalid(
            "fileName",
            "must not contain '/', '\\' or control characters",
        ));
    }
    validate::no_bidi_controls("fileName", raw)?;
    Ok(raw.to_owned())
}

/// `type/subtype` with optional parameters, of visible ASCII (what S3 stores and serves back).
fn content_type(raw: Option<&str>) -> Result<String, ApiError> {
    let raw = raw.map(str::trim).filter(|r| !r.is_empty());
    let raw = raw.ok_or_else(|| ApiError::invalid("contentType", "is required"))?;
    let token = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    let essence = raw.split(';').next().unwrap_or_default().trim();
    let ok = raw.len() <= 255
        && raw.bytes().all(|b| (0x20..0x7f).contains(&b))
        && essence.split_once('/').is_some_and(|(t, s)| token(t) && token(s));
    if !ok {
        return Err(ApiError::invalid(
            "contentType",
            "must be a media type such as image/png",
        ));
    }
    Ok(raw.to_owned())
}

/// `POST /conversations/{id}/attachments`: records the upload (unattached, with its TTL) and returns a
/// presigned `PUT` bound to the declared size and type.
pub async fn reserve(
    context: &AppContext,
    me: &str,
    conversation_id: &str,
    input: NewAttachment,
) -> Result<Reserved, ApiError> {
    if input.size.is_some_and(|size| size > MAX_SIZE) {
        return Err(ApiError::PayloadTooLarge(format!(
            "An attachment is at most {MAX_SIZE} bytes (25 MiB)."
        )));
    }
    let mut problems = validate::Problems::default();
    let name = problems.check(file_name(input.file_name.as_deref()));
    let kind = problems.check(content_type(input.content_type.as_deref()));
    let size = problems.check(match input.size {
        Some(size) if size >= 1 => Ok(size),
        Some(_) => Err(ApiError::invalid("size", "must be at least 1 byte")),
        None => Err(ApiError::invalid("size", "is required")),
    });
    problems.finish()?;
    let (name, kind, size) = (
        name.unwrap_or_default(),
        kind.unwrap_or_default(),
        size.unwrap_or_default(),
    );
    membership(context, conversation_id, me).await?;
    let now = context.now();
    let settings = &context.attachments.settings;
    let id = ulid::Ulid::generate().to_string();
    let record = AttachmentRecord {
        id: id.clone(),
        conversation_id: conversation_id.to_owned(),
        uploader_id: me.to_owned(),
        file_name: name,
        content_type: kind.clone(),
        size,
        created_at: rfc3339(now),
        message_id: None,
        expires_at: Some(epoch_secs(now + settings.upload_ttl)),
    };
    // The URL first: if it cannot be made, nothing is written.
    let (upload_url, headers) = context
        .attachments
        .upload_url(&object_key(conversation_id, &id), &kind, size, now)
        .await?;
    let quota = settings.quota_bytes;
    if context.store.reserve_attachment(&record, quota).await? == Reservation::OverQuota {
        let used = context.store.stored_attachment_bytes(me).await?;
        return Err(ApiError::QuotaExceeded(format!(
            "Your attachments may take {} MiB at most and take {} MiB now (uploads not yet sent included); this one ({} bytes) does not fit. Delete messages with attachments to make room.",
            quota >> 20,
            used >> 20,
            size
        )));
    }
    Ok(Reserved {
        attachment: record.to_ref(),
        upload_url,
        upload_headers: headers.into_iter().collect(),
        expires_at: rfc3339(now + settings.upload_url_ttl),
    })
}

fn epoch_secs(at: std::time::SystemTime) -> u64 {
    at.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn attachment_not_found() -> ApiError {
    ApiError::NotFound("There is no attachment with that id in this conversation.".to_owned())
}

/// `GET /conversations/{id}/attachments/{attachmentId}`: members only (else 404); an upload not
/// attached yet only for its uploader.
pub async fn get(
    context: &AppContext,
    me: &str,
    conversation_id: &str,
    attachment_id: &str,
) -> Result<Attachment, ApiError> {
    let attachment_id = validate::ulid("attachmentId", attachment_id).map_err(|_| attachment_not_found())?;
    membership(context, conversation_id, me).await?;
    let record = context
        .store
        .get_attachment(conversation_id, &attachment_id)
        .await?
        .filter(|r| !r.expired(epoch_secs(context.now())))
        .filter(|r| r.message_id.is_some() || r.uploader_id == me)
        .ok_or_else(attachment_not_found)?;
    let mut attachment = record.to_ref();
    attachment.url = Some(
        context
            .attachments
            .download_url(
                &object_key(conversation_id, &record.id),
                &record.file_name,
                &record.content_type,
                context.now(),
            )
            .await?,
    );
    Ok(attachment)
}

/// `attachmentIds` of a send: distinct ULIDs, at most [`MAX_PER_MESSAGE`].
pub fn ids(raw: &[String]) -> Result<Vec<String>, ApiError> {
    if raw.len() > MAX_PER_MESSAGE {
        return Err(ApiError::invalid(
            "attachmentIds",
            format!("a message has at most {MAX_PER_MESSAGE} attachments"),
        ));
    }
    let mut ids: Vec<String> = Vec::with_capacity(raw.len());
    for id in raw {
        let id = validate::ulid("attachmentIds", id)?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// Before a send attaches `ids`: each must be the sender's upload in this conversation, not attached
/// nor expired, and the stored object must have the declared size and type (HeadObject). Every id
/// that fails is named in one 400. The attaching itself is the send transaction's conditional write.
pub async fn check_for_send(
    context: &AppContext,
    me: &str,
    conversation_id: &str,
    ids: &[String],
) -> Result<Vec<AttachmentRef>, ApiError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let records = context.store.attachments_of(conversation_id, ids).await?;
    let now_secs = epoch_secs(context.now());
    let checks = ids.iter().map(|id| {
        let record = records.iter().find(|r| r.id == *id).cloned();
        async move {
            let Some(record) = record.filter(|r| r.uploader_id == me && !r.expired(now_secs)) else {
                return Ok((id.clone(), Err("is not an upload of yours in this conversation")));
            };
            if record.message_id.is_some() {
                return Ok((id.clone(), Err("is attached to another message")));
            }
            let stored = context.attachments.head(&object_key(conversation_id, id)).await?;
            let verdict = match stored {
                None => Err("was never uploaded"),
                Some(s) if s.size != record.size => Err("was uploaded with another size than declared"),
                Some(s) if s.content_type.as_deref() != Some(record.content_type.as_str()) => {
                    Err("was uploaded with another content type than declared")
                }
                Some(_) => Ok(record.to_ref()),
            };
            Ok::<_, ApiError>((id.clone(), verdict))
        }
    });
    let results = futures_util::future::try_join_all(checks).await?;
    let bad: Vec<String> = results
        .iter()
        .filter_map(|(id, verdict)| verdict.as_ref().err().map(|why| format!("{id} {why}")))
        .collect();
    if !bad.is_empty() {
        return Err(ApiError::invalid("attachmentIds", bad.join("; ")));
    }
    Ok(results.into_iter().filter_map(|(_, v)| v.ok()).collect())
}

/// After the send committed: the attached objects lose their unattached tag (so the bucket's
/// lifecycle rule keeps them). A failure is logged: the message is stored either way.
pub async fn keep_attached(context: &AppContext, conversation_id: &str, attached: &[AttachmentRef]) {
    for attachment in attached {
        if let Err(e) = context
            .attachments
            .keep(&object_key(conversation_id, &attachment.id))
            .await
        {
            tracing::warn!(attachmentId = %attachment.id, error = %e, "an attached object keeps its unattached tag");
        }
    }
}

/// After a delete committed: the deleted message's attachments go at once, records first (every
/// route's view of them) then objects (so a download URL handed out before stops working). A failure
/// is logged: the attachments worker does the same from the message's stream record within seconds.
pub async fn remove_now(context: &AppContext, conversation_id: &str, attached: &[AttachmentRef]) {
    for attachment in attached {
        let removed = async {
            context.store.delete_attachment(conversation_id, &attachment.id).await?;
            context
                .attachments
                .delete(&object_key(conversation_id, &attachment.id))
                .await
        };
        if let Err(e) = removed.await {
            tracing::warn!(attachmentId = %attachment.id, error = %e, "a deleted message's attachment is left to the worker");
        }
    }
}

/// Download URLs for the attachments of messages a member reads.
pub async fn with_urls(context: &AppContext, attachments: &mut [AttachmentRef]) -> Result<(), ApiError> {
    let now = context.now();
    for attachment in attachments.iter_mut() {
        attachment.url = Some(
            context
                .attachments
                .download_url(
                    &object_key(&attachment.conversation_id, &attachment.id),
                    &attachment.file_name,
                    &attachment.content_type,
                    now,
                )
                .await?,
        );
    }
    Ok(())
}
