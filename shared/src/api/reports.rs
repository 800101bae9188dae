//! Report routes (`domain::reports`).

use serde::{Deserialize, Serialize};

use super::conversations::conversation_id;
use crate::domain::reports::{self as domain, NewReport, Report};
use crate::error::ApiError;
use crate::http::{ApiRequest, Reply};
use crate::AppContext;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateBody {
    #[serde(default, deserialize_with = "super::not_null")]
    conversation_id: Option<String>,
    #[serde(default, deserialize_with = "super::not_null")]
    message_id: Option<String>,
    #[serde(default, deserialize_with = "super::not_null")]
    user_id: Option<String>,
    #[serde(default, deserialize_with = "super::not_null")]
    reason: Option<String>,
    #[serde(default)]
    note: Option<String>,
}

#[derive(Serialize)]
struct Created {
    id: String,
    status: crate::kinds::ReportStatus,
}

#[derive(Serialize)]
struct Items {
    items: Vec<Report>,
}

/// `POST /reports`: `201 {id, status: "open"}`.
pub async fn create(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let me = request.authenticate(context)?.sub;
    let body: CreateBody = request.json()?;
    let conversation_id = body
        .conversation_id
        .ok_or_else(|| ApiError::invalid("conversationId", "is required"))?;
    let id = domain::create(
        context,
        &me,
        NewReport {
            conversation_id,
            message_id: body.message_id,
            user_id: body.user_id,
            reason: body.reason,
            note: body.note,
        },
    )
    .await?;
    Reply::created(&Created {
        id,
        status: crate::kinds::ReportStatus::Open,
    })
}

/// `GET /conversations/{conversationId}/reports?status=`.
pub async fn list(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let me = request.authenticate(context)?.sub;
    let id = conversation_id(&request)?;
    Reply::ok(&Items {
        items: domain::of_conversation(context, &me, &id, request.query("status")).await?,
    })
}

#[derive(Deserialize)]
struct StatusBody {
    #[serde(default, deserialize_with = "super::not_null")]
    status: Option<String>,
}

#[derive(Serialize)]
struct Updated {
    report: Report,
}

/// `PATCH /conversations/{conversationId}/reports/{reportId}`: `200 {report}`.
pub async fn update(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let me = request.authenticate(context)?.sub;
    let id = conversation_id(&request)?;
    let body: StatusBody = request.json()?;
    let report = domain::set_status(
        context,
        &me,
        &id,
        request.path_param("reportId")?,
        body.status.as_deref(),
    )
    .await?;
    Reply::ok(&Updated { report })
}

/// `GET /admin/reports?status=`: the platform's admins only.
pub async fn all(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let me = request.authenticate(context)?.sub;
    Reply::ok(&Items {
        items: domain::all(context, &me, request.query("status")).await?,
    })
}
