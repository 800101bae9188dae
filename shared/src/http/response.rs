//! Replies and error responses, with field selection (`fields=a,b,c`; docs/API-GUIDE.md "Conventions").

use lambda_http::{Body, Response};
use serde::Serialize;
use serde_json::Value;
use sha2::Digest;

use super::ApiRequest;
use crate::error::ApiError;

/// A successful outcome: a status and an optional JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Option<Value>,
}

impl Reply {
    pub fn ok<T: Serialize>(value: &T) -> Result<Self, ApiError> {
        Self::with_status(200, value)
    }

    pub fn created<T: Serialize>(value: &T) -> Result<Self, ApiError> {
        Self::with_status(201, value)
    }

    pub fn no_content() -> Self {
        Reply {
            status: 204,
            body: None,
        }
    }

    pub fn with_status<T: Serialize>(status: u16, value: &T) -> Result<Self, ApiError> {
        let body = serde_json::to_value(value).map_err(|e| ApiError::internal(format!("response: {e}")))?;
        Ok(Reply {
            status,
            body: Some(body),
        })
    }

    /// Keeps only the selected top-level fields (and `id`) of the object, or of each of its `items`.
    pub(crate) fn select(mut self, fields: Option<&FieldSelection>) -> Self {
        if let (Some(fields), Some(body)) = (fields, self.body.as_mut()) {
            match body.get_mut("items").and_then(Value::as_array_mut) {
                Some(items) => items.iter_mut().for_each(|item| fields.apply(item)),
                None => fields.apply(body),
            }
        }
        self
    }

    pub(crate) fn into_response(self, request_id: &str) -> Response<Body> {
        json_response(self.status, self.body.as_ref(), request_id, None)
    }

    /// The response to a GET: with an `ETag` of the body, or `304 Not Modified` (no body) when the
    /// client's `If-None-Match` already names it.
    pub(crate) fn into_conditional_response(self, request_id: &str, if_none_match: Option<&str>) -> Response<Body> {
        let Some(body) = self.body.as_ref().filter(|_| self.status == 200) else {
            return self.into_response(request_id);
        };
        let text = body.to_string();
        let tag = format!("\"{}\"", &hex::encode(sha2::Sha256::digest(text.as_bytes()))[..32]);
        let matches = if_none_match.is_some_and(|header| {
            header
                .split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == tag || t == "*")
        });
        let builder = Response::builder()
            .header("x-request-id", request_id)
            .header("etag", &tag);
        let response = if matches {
            builder.status(304).body(Body::Empty)
        } else {
            builder
                .status(200)
                .header("content-type", "application/json")
                .body(Body::Text(text))
        };
        response.unwrap_or_else(|_| Response::new(Body::Empty))
    }
}

/// The parsed `fields=` query parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSelection(Vec<String>);

impl FieldSelection {
    pub fn from_request(request: &ApiRequest) -> Result<Option<Self>, ApiError> {
        let Some(raw) = request.query("fields") else {
            return Ok(None);
        };
        let names: Vec<String> = raw
            .split(',')
            .map(|f| f.trim().to_owned())
            .filter(|f| !f.is_empty())
            .collect();
        if names.is_empty() || names.iter().any(|n| !n.chars().all(|c| c.is_ascii_alphanumeric())) {
            return Err(ApiError::invalid(
                "fields",
                "must be a comma-separated list of field names",
            ));
        }
        Ok(Some(FieldSelection(names)))
    }

    fn apply(&self, value: &mut Value) {
        if let Value::Object(map) = value {
            map.retain(|k, _| k == "id" || self.0.iter().any(|f| f == k));
        }
    }
}

pub(crate) fn error_response(error: &ApiError, request_id: &str) -> Response<Body> {
    json_response(
        error.status(),
        Some(&error.body(request_id)),
        request_id,
        error.retry_after_secs(),
    )
}

fn json_response(status: u16, body: Option<&Value>, request_id: &str, retry_after: Option<u64>) -> Response<Body> {
    let mut builder = Response::builder().status(status).header("x-request-id", request_id);
    if let Some(secs) = retry_after {
        builder = builder.header("retry-after", secs.to_string());
    }
    let body = match body {
        Some(value) => {
            builder = builder.header("content-type", "application/json");
            Body::Text(value.to_string())
        }
        None => Body::Empty,
    };
    builder.body(body).unwrap_or_else(|_| {
        let mut fallback = Response::new(Body::Empty);
        *fallback.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
        fallback
    })
}
