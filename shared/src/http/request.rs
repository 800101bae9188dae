//! A request as the route handlers see it, read out of the API Gateway event once.

use std::collections::HashMap;

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt};
use serde::de::DeserializeOwned;

use crate::auth::tokens::AccessClaims;
use crate::context::AppContext;
use crate::error::{ApiError, FieldProblem};

/// The request body limit (docs/API-GUIDE.md "Limits").
pub const MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub request_id: String,
    /// The matched route, `GET /users/{userId}`: what metrics are keyed by (not the raw path).
    pub route_key: String,
    pub method: String,
    pub path: String,
    pub source_ip: Option<String>,
    headers: http::HeaderMap,
    path_params: HashMap<String, String>,
    query: HashMap<String, String>,
    body: Vec<u8>,
    /// The bearer token's claims and what [`ApiRequest::check_session`] found out about its session,
    /// before the handler ran (`http::handle` asks for every route that takes a token): the token is
    /// verified once per request. Unset, `authenticate` refuses the token.
    session: std::sync::OnceLock<(SessionVerdict, AccessClaims)>,
}

/// The state of the bearer token's session, as checked before the handler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SessionVerdict {
    Live,
    Revoked,
    /// The session could not be read (DynamoDB unavailable): the token is refused with a 503.
    Unknown,
}

/// The longest `User-Agent` kept on a session.
pub const MAX_USER_AGENT_CHARS: usize = 256;

impl ApiRequest {
    pub fn from_lambda(event: Request) -> Self {
        let (request_id, source_ip, route_key) = match event.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(ctx)) => (
                ctx.request_id.clone(),
                ctx.http.source_ip.clone(),
                ctx.route_key.clone(),
            ),
            _ => (None, None, None),
        };
        let request_id = request_id
            .or_else(|| event.lambda_context_ref().map(|c| c.request_id.clone()))
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| ulid::Ulid::generate().to_string());
        // API Gateway joins repeated query keys with commas, as `queryStringParameters` does.
        let query = event
            .query_string_parameters_ref()
            .map(|q| {
                q.iter()
                    .map(|(k, _)| (k.to_owned(), q.all(k).unwrap_or_default().join(",")))
                    .collect()
            })
            .unwrap_or_default();
        let path_params = event
            .path_parameters_ref()
            .map(|p| p.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
            .unwrap_or_default();
        let (parts, body) = event.into_parts();
        let body = match body {
            Body::Empty => Vec::new(),
            Body::Text(text) => text.into_bytes(),
            Body::Binary(bytes) => bytes,
            _ => Vec::new(),
        };
        let route_key = route_key.unwrap_or_else(|| format!("{} {}", parts.method, parts.uri.path()));
        ApiRequest {
            request_id,
            route_key,
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            source_ip,
            headers: parts.headers,
            path_params,
            query,
            body,
            session: std::sync::OnceLock::new(),
        }
    }

    pub fn check_body_size(&self) -> Result<(), ApiError> {
        if self.body.len() > MAX_BODY_BYTES {
            return Err(ApiError::PayloadTooLarge(format!(
                "The request body is {} bytes; the limit is {MAX_BODY_BYTES} bytes (64 KiB).",
                self.body.len()
            )));
        }
        Ok(())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    /// A path parameter of the route. A route without it is a wiring bug, reported as not found.
    pub fn path_param(&self, name: &str) -> Result<&str, ApiError> {
        self.path_params
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| ApiError::NotFound(format!("The path has no {name}.")))
    }

    /// Whether the request carries a body (for routes whose body is optional).
    pub fn has_body(&self) -> bool {
        !self.body.is_empty()
    }

    /// The JSON object body as `T`: 415 for another declared media type, 400 `invalid_json` for bytes that are
    /// not JSON, 400 `validation_failed` (naming the field) for JSON of the wrong shape. Unknown fields
    /// are ignored.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        if let Some(content_type) = self.header("content-type") {
            let media_type = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
            if media_type != "application/json" && !media_type.ends_with("+json") {
                return Err(ApiError::UnsupportedMediaType(format!(
                    "The body must be JSON (Content-Type: application/json), not {media_type}."
                )));
            }
        }
        parse_json_object(&self.body)
    }

    /// The client's `User-Agent`, at most [`MAX_USER_AGENT_CHARS`] characters (what a session records).
    pub fn user_agent(&self) -> Option<String> {
        self.header("user-agent")
            .map(str::trim)
            .filter(|ua| !ua.is_empty())
            .map(|ua| {
                ua.chars()
                    .filter(|c| !c.is_control())
                    .take(MAX_USER_AGENT_CHARS)
                    .collect()
            })
    }

    /// Verifies the `Authorization: Bearer` access token: its signature and expiry, and that its session
    /// is not revoked (as checked before the handler ran; see `auth::session_state`). A token whose
    /// session was never checked is refused (500): the pipeline, not the handler, must check it.
    pub fn authenticate(&self, context: &AppContext) -> Result<AccessClaims, ApiError> {
        match self.session.get() {
            Some((SessionVerdict::Revoked, _)) => Err(crate::auth::session_state::revoked()),
            Some((SessionVerdict::Unknown, _)) => Err(ApiError::Unavailable {
                message: "The sign-in session could not be checked; please retry shortly.".to_owned(),
                retry_after_secs: 1,
            }),
            Some((SessionVerdict::Live, claims)) => Ok(claims.clone()),
            None => {
                // No token, or one that does not verify: its own 401.
                self.bearer_claims(context)?;
                // Fail closed: an edge that forgot the session check must not let a revoked token
                // through.
                Err(ApiError::internal(
                    "a valid bearer token reached authenticate without its session being checked",
                ))
            }
        }
    }

    /// The bearer token's claims, checking its signature and expiry only (not its session): for
    /// logout, which must stay harmless for a session that is already gone.
    pub fn bearer_claims(&self, context: &AppContext) -> Result<AccessClaims, ApiError> {
        let header = self.header("authorization").ok_or_else(|| {
            ApiError::Unauthorized("Sign in first: send Authorization: Bearer <accessToken>.".to_owned())
        })?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::Unauthorized("The Authorization header must be: Bearer <accessToken>.".to_owned())
            })?;
        context.tokens().verify(token)
    }

    /// Checks (once) whether the bearer token's session is still live, so that [`Self::authenticate`]
    /// can refuse a revoked session's token. Costs nothing without a valid token; otherwise see
    /// `auth::session_state` (one GetItem per session per container per 4 s).
    pub async fn check_session(&self, context: &AppContext) {
        if self.session.get().is_some() {
            return;
        }
        let Ok(claims) = self.bearer_claims(context) else {
            return;
        };
        let verdict = match crate::auth::session_state::is_live(context, &claims.sid).await {
            Ok(true) => SessionVerdict::Live,
            Ok(false) => SessionVerdict::Revoked,
            Err(e) => {
                tracing::warn!(error = %e, "session state unavailable");
                SessionVerdict::Unknown
            }
        };
        let _ = self.session.set((verdict, claims));
    }
}

/// Parses `bytes` as one JSON object of shape `T`: `invalid_json` for bytes that are not JSON,
/// `validation_failed` (naming the field) for JSON of the wrong shape. Unknown fields are ignored.
pub fn parse_json_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::InvalidJson("The request needs a JSON body.".to_owned()));
    }
    // Syntax first, shape second: trailing garbage after a valid prefix is a JSON error, not a
    // missing field.
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::InvalidJson(format!("The request body is not valid JSON: {e}.")))?;
    // Every request body of the API is an object; serde would otherwise accept a struct as an array of its fields.
    if !value.is_object() {
        return Err(ApiError::invalid("body", "must be a JSON object"));
    }
    serde_path_to_error::deserialize(value).map_err(path_error)
}

fn path_error(err: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    use serde_json::error::Category;
    let path = err.path().to_string();
    let inner = err.into_inner();
    match inner.classify() {
        Category::Data => {
            let text = inner.to_string();
            let problem = text.split(" at line ").next().unwrap_or(&text).to_owned();
            // serde reports a missing field at its parent; name the field itself.
            let field = match (path.as_str(), problem.strip_prefix("missing field `")) {
                (".", Some(rest)) => rest.trim_end_matches('`').to_owned(),
                (".", None) => "body".to_owned(),
                _ => path,
            };
            ApiError::Validation {
                message: format!("{field}: {problem}"),
                details: vec![FieldProblem { field, problem }],
            }
        }
        _ => ApiError::InvalidJson(format!("The request body is not valid JSON: {inner}.")),
    }
}
