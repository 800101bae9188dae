//! The one error type every route returns, and its mapping onto the API's error bodies (docs/API-GUIDE.md
//! "Errors"; openapi.yaml `Error`).

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use serde::Serialize;

/// One problem with one input field, listed in `error.details`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldProblem {
    pub field: String,
    pub problem: String,
}

/// An error a route answers with. Each variant is one `code` of the API's errors.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    Validation {
        message: String,
        details: Vec<FieldProblem>,
    },
    #[error("{0}")]
    InvalidJson(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    /// A per-user storage or creation quota is used up (`quota_exceeded`, 403).
    #[error("{0}")]
    QuotaExceeded(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// What the request names existed once and can no longer be served (a sync token too old).
    #[error("{0}")]
    Gone(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{message}")]
    RateLimited { message: String, retry_after_secs: u64 },
    #[error("{message}")]
    Unavailable { message: String, retry_after_secs: u64 },
    /// Something broke on our side. The source is logged, never shown to the client.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A `validation_failed` error about one field.
    pub fn invalid(field: &str, problem: impl Into<String>) -> Self {
        let problem = problem.into();
        ApiError::Validation {
            message: format!("{field}: {problem}"),
            details: vec![FieldProblem {
                field: field.to_owned(),
                problem,
            }],
        }
    }

    pub fn internal(what: impl std::fmt::Display) -> Self {
        ApiError::Internal(what.to_string())
    }

    pub fn status(&self) -> u16 {
        match self {
            ApiError::Validation { .. } | ApiError::InvalidJson(_) => 400,
            ApiError::Unauthorized(_) => 401,
            ApiError::Forbidden(_) | ApiError::QuotaExceeded(_) => 403,
            ApiError::NotFound(_) => 404,
            ApiError::Conflict(_) => 409,
            ApiError::Gone(_) => 410,
            ApiError::PayloadTooLarge(_) => 413,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::RateLimited { .. } => 429,
            ApiError::Internal(_) => 500,
            ApiError::Unavailable { .. } => 503,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Validation { .. } => "validation_failed",
            ApiError::InvalidJson(_) => "invalid_json",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::QuotaExceeded(_) => "quota_exceeded",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::Gone(_) => "gone",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Unavailable { .. } => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    /// `Retry-After` seconds, for the codes that carry one.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            ApiError::RateLimited { retry_after_secs, .. } | ApiError::Unavailable { retry_after_secs, .. } => {
                Some(*retry_after_secs)
            }
            _ => None,
        }
    }

    /// The sentence shown to the client: internals never leak.
    pub fn public_message(&self) -> String {
        match self {
            ApiError::Internal(_) => "Something went wrong on our side; please try again.".to_owned(),
            other => other.to_string(),
        }
    }

    /// `{"error": {code, message, details?}, "requestId"}` as docs/API-GUIDE.md "Errors" gives it.
    pub fn body(&self, request_id: &str) -> serde_json::Value {
        let mut error = serde_json::json!({
            "code": self.code(),
            "message": self.public_message(),
        });
        if let ApiError::Validation { details, .. } = self {
            if !details.is_empty() {
                error["details"] = serde_json::to_value(details).unwrap_or_default();
            }
        }
        serde_json::json!({ "error": error, "requestId": request_id })
    }
}

/// What DynamoDB answers when it is busy or briefly failing: the caller's cue to retry, so 503 with
/// `Retry-After`, never a 500. A `TransactionCanceledException` gets here only when no condition failed
/// (its reasons are conflicts or throttling).
const TRANSIENT_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TransactionConflictException",
    "TransactionCanceledException",
    "TransactionInProgressException",
    "InternalServerError",
    "InternalFailure",
    "ServiceUnavailable",
];

impl<E, R> From<SdkError<E, R>> for ApiError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    fn from(err: SdkError<E, R>) -> Self {
        let throttled = err.code().is_some_and(|code| TRANSIENT_CODES.contains(&code));
        let unreachable = matches!(
            err,
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_)
        );
        if throttled || unreachable {
            tracing::warn!(error = %aws_sdk_dynamodb::error::DisplayErrorContext(&err), "DynamoDB unavailable");
            return ApiError::Unavailable {
                message: "The service is busy; please retry shortly.".to_owned(),
                retry_after_secs: 1,
            };
        }
        ApiError::Internal(format!(
            "DynamoDB: {}",
            aws_sdk_dynamodb::error::DisplayErrorContext(&err)
        ))
    }
}

impl From<serde_dynamo::Error> for ApiError {
    fn from(err: serde_dynamo::Error) -> Self {
        ApiError::Internal(format!("item (de)serialisation: {err}"))
    }
}
