//! Reports (docs/API-GUIDE.md "Reports"): any member reports a message or a member of a conversation
//! to its owner and admins, who dismiss or act on it; the platform's admins see every conversation's
//! reports. A report is never shown to the user it is about, however high their role.

use serde::Serialize;

use super::conversations::{is_admin, membership};
use crate::context::AppContext;
use crate::error::ApiError;
use crate::kinds::ReportStatus;
use crate::store::{keys, report_index_key, ReportRecord};
use crate::time::rfc3339;
use crate::validate;

/// The longest note.
pub const NOTE_CHARS: usize = 1000;

/// A report as its readers see it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub id: String,
    pub conversation_id: String,
    pub reporter_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub status: ReportStatus,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handled_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handled_at: Option<String>,
}

impl From<ReportRecord> for Report {
    fn from(r: ReportRecord) -> Self {
        Report {
            id: r.id,
            conversation_id: r.conversation_id,
            reporter_id: r.reporter_id,
            message_id: r.message_id,
            user_id: r.user_id,
            reason: r.reason,
            note: r.note,
            status: r.status,
            created_at: r.created_at,
            handled_by: r.handled_by,
            handled_at: r.handled_at,
        }
    }
}

/// What a member reports.
pub struct NewReport {
    pub conversation_id: String,
    pub message_id: Option<String>,
    pub user_id: Option<String>,
    pub reason: Option<String>,
    pub note: Option<String>,
}

/// `POST /reports`: the new report's id.
pub async fn create(context: &AppContext, me: &str, new: NewReport) -> Result<String, ApiError> {
    let mut problems = validate::Problems::default();
    let conversation_id = problems.check(validate::ulid("conversationId", &new.conversation_id));
    let message_id = new
        .message_id
        .as_deref()
        .and_then(|m| problems.check(validate::ulid("messageId", m)));
    let named = new
        .user_id
        .as_deref()
        .and_then(|u| problems.check(validate::ulid("userId", u)));
    let reason = problems.check(match new.reason.as_deref() {
        Some(reason @ ("spam" | "abuse" | "other")) => Ok(reason.to_owned()),
        Some(_) => Err(ApiError::invalid("reason", "must be spam, abuse or other")),
        None => Err(ApiError::invalid("reason", "is required (spam, abuse or other)")),
    });
    let note = match new.note.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        Some(note) => problems.check(validate::text("note", note, 1..=NOTE_CHARS).and_then(|n| {
            validate::no_bidi_controls("note", &n)?;
            Ok(n)
        })),
        None => None,
    };
    if new.message_id.is_none() && new.user_id.is_none() {
        problems.check::<()>(Err(ApiError::invalid(
            "messageId",
            "name the message (messageId) or the member (userId) the report is about",
        )));
    }
    if named.as_deref() == Some(me) {
        problems.check::<()>(Err(ApiError::invalid("userId", "you cannot report yourself")));
    }
    problems.finish()?;
    let (conversation_id, reason) = (conversation_id.unwrap_or_default(), reason.unwrap_or_default());
    membership(context, &conversation_id, me).await?;
    let mut about = named.clone();
    if let Some(message_id) = &message_id {
        let message = context
            .store
            .get_message(&conversation_id, message_id)
            .await?
            .ok_or_else(|| ApiError::NotFound("That message is not in this conversation.".to_owned()))?;
        if message.sender_id == me {
            return Err(ApiError::invalid("messageId", "you cannot report your own message"));
        }
        about.get_or_insert(message.sender_id);
    }
    if let Some(user) = &named {
        if crate::domain::users::get_cached(context, user).await.is_err() {
            return Err(ApiError::NotFound("There is no user with that id.".to_owned()));
        }
    }
    let id = ulid::Ulid::generate().to_string();
    let record = ReportRecord {
        id: id.clone(),
        conversation_id,
        reporter_id: me.to_owned(),
        message_id,
        user_id: about,
        reason,
        note,
        status: ReportStatus::Open,
        created_at: rfc3339(context.now()),
        handled_by: None,
        handled_at: None,
        gsi1_pk: keys::REPORTS.to_owned(),
        gsi1_sk: report_index_key(ReportStatus::Open, &id),
    };
    context.store.put_report(&record).await?;
    Ok(id)
}

fn status_filter(status: Option<&str>) -> Result<Option<ReportStatus>, ApiError> {
    match status.map(str::parse::<ReportStatus>) {
        None => Ok(None),
        Some(Ok(status)) => Ok(Some(status)),
        Some(Err(())) => Err(ApiError::invalid("status", "must be open, dismissed or actioned")),
    }
}

/// The caller's membership, if they moderate the conversation.
async fn moderator(context: &AppContext, me: &str, conversation_id: &str) -> Result<(), ApiError> {
    let (_, member) = membership(context, conversation_id, me).await?;
    if !is_admin(&member) {
        return Err(ApiError::Forbidden(
            "Only the conversation's owner and admins see its reports.".to_owned(),
        ));
    }
    Ok(())
}

/// `GET /conversations/{id}/reports?status=`: newest first; none about the caller.
pub async fn of_conversation(
    context: &AppContext,
    me: &str,
    conversation_id: &str,
    status: Option<&str>,
) -> Result<Vec<Report>, ApiError> {
    let status = status_filter(status)?;
    moderator(context, me, conversation_id).await?;
    let reports = context
        .store
        .reports_of(conversation_id, |r| {
            r.user_id.as_deref() != Some(me) && status.is_none_or(|s| r.status == s)
        })
        .await?;
    Ok(reports.into_iter().map(Report::from).collect())
}

/// `PATCH /conversations/{id}/reports/{reportId}`.
pub async fn set_status(
    context: &AppContext,
    me: &str,
    conversation_id: &str,
    report_id: &str,
    status: Option<&str>,
) -> Result<Report, ApiError> {
    let status = match status.map(str::parse::<ReportStatus>) {
        Some(Ok(status @ (ReportStatus::Dismissed | ReportStatus::Actioned))) => status,
        Some(_) => return Err(ApiError::invalid("status", "must be dismissed or actioned")),
        None => return Err(ApiError::invalid("status", "is required (dismissed or actioned)")),
    };
    let not_found = || ApiError::NotFound("This conversation has no report with that id.".to_owned());
    let report_id = validate::ulid("reportId", report_id).map_err(|_| not_found())?;
    moderator(context, me, conversation_id).await?;
    let report = context
        .store
        .get_report(conversation_id, &report_id)
        .await?
        .ok_or_else(not_found)?;
    if report.user_id.as_deref() == Some(me) {
        // Never shown to whom it is about: as if there were none.
        return Err(not_found());
    }
    let updated = context
        .store
        .set_report_status(conversation_id, &report_id, status, me, &rfc3339(context.now()))
        .await?
        .ok_or_else(not_found)?;
    Ok(updated.into())
}

/// `GET /admin/reports?status=`: the platform's admins only (the role read fresh).
pub async fn all(context: &AppContext, me: &str, status: Option<&str>) -> Result<Vec<Report>, ApiError> {
    let status = status_filter(status)?;
    let caller = context.store.get_user(me).await?;
    if caller.and_then(|u| u.role).as_deref() != Some(crate::domain::users::ADMIN_ROLE) {
        return Err(ApiError::Forbidden(
            "Only the platform's administrators see every report.".to_owned(),
        ));
    }
    let reports = context.store.all_reports(status).await?;
    // Not even a platform admin sees a report about themself.
    Ok(reports
        .into_iter()
        .filter(|r| r.user_id.as_deref() != Some(me))
        .map(Report::from)
        .collect())
}
