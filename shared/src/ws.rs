//! The WebSocket edge: API Gateway WebSocket events in, route responses out, and the `$connect`
//! REQUEST authorizer. A route handler is an `async fn(&'static AppContext, WsRequest) -> Result<WsReply, ApiError>`.

use std::collections::HashMap;
use std::future::Future;

use futures_util::future::BoxFuture;
use lambda_runtime::{service_fn, LambdaEvent};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::context::AppContext;
use crate::error::ApiError;
use crate::http::LambdaError;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Event {
    request_context: EventContext,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    query_string_parameters: Option<HashMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventContext {
    connection_id: String,
    #[serde(default)]
    route_key: String,
    #[serde(default)]
    request_id: Option<String>,
    #[serde(default)]
    authorizer: Option<Value>,
}

/// One WebSocket event, as the route handlers see it.
#[derive(Debug, Clone)]
pub struct WsRequest {
    pub connection_id: String,
    pub route_key: String,
    pub request_id: String,
    /// The user the `$connect` authorizer let in.
    pub user_id: Option<String>,
    /// The sign-in session of the access token the connection was opened with.
    pub session_id: Option<String>,
    pub body: Option<String>,
    pub query: HashMap<String, String>,
}

impl WsRequest {
    pub fn from_event(event: Value) -> Result<Self, ApiError> {
        let event: Event =
            serde_json::from_value(event).map_err(|e| ApiError::internal(format!("not a WebSocket event: {e}")))?;
        let user_id = event
            .request_context
            .authorizer
            .as_ref()
            .and_then(|a| a.get("userId").or_else(|| a.get("principalId")))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let session_id = event
            .request_context
            .authorizer
            .as_ref()
            .and_then(|a| a.get("sessionId"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        Ok(WsRequest {
            connection_id: event.request_context.connection_id,
            route_key: event.request_context.route_key,
            request_id: event
                .request_context
                .request_id
                .unwrap_or_else(|| ulid::Ulid::generate().to_string()),
            user_id,
            session_id,
            body: event.body,
            query: event.query_string_parameters.unwrap_or_default(),
        })
    }

    /// The user this connection belongs to.
    pub fn user(&self) -> Result<&str, ApiError> {
        self.user_id
            .as_deref()
            .ok_or_else(|| ApiError::Unauthorized("This connection was not authorised.".to_owned()))
    }

    /// The frame as a JSON object of shape `T`, with the same errors as an HTTP body.
    pub fn frame<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        crate::http::parse_json_object(self.body.as_deref().unwrap_or("").as_bytes())
    }
}

/// What a route answers.
#[derive(Debug, Clone, PartialEq)]
pub enum WsReply {
    /// A frame back to the sender (routes with a route response).
    Frame(Value),
    /// Nothing back.
    Nothing,
    /// `$connect`/`$disconnect`: the status API Gateway acts on.
    Status(u16),
}

/// The error frame (asyncapi.yaml `error`; docs/API-GUIDE.md "Errors").
pub fn error_frame(error: &ApiError, request_id: &str) -> Value {
    json!({
        "type": "error",
        "error": { "code": error.code(), "message": error.public_message() },
        "requestId": request_id,
    })
}

/// Runs `handler` as this process's Lambda function for a WebSocket route.
pub async fn serve<H, Fut>(handler: H) -> Result<(), LambdaError>
where
    H: Fn(&'static AppContext, WsRequest) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = Result<WsReply, ApiError>> + Send + 'static,
{
    crate::logging::init();
    // The routes behind `$connect` trust the authorizer's context and verify no token themselves.
    let context: &'static AppContext = Box::leak(Box::new(AppContext::from_env_without_token_secret().await?));
    context.warm_up().await;
    // Boxed so the runtime's future does not nest the (deep) route future's type.
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<Value>| -> BoxFuture<'static, Result<Value, LambdaError>> {
            Box::pin(async move { Ok(handle(context, handler, event.payload).await) })
        },
    ))
    .await
}

/// One event through one route handler; errors become error frames (or a refusal on `$connect`).
pub async fn handle<H, Fut>(context: &'static AppContext, handler: H, event: Value) -> Value
where
    H: Fn(&'static AppContext, WsRequest) -> Fut,
    Fut: Future<Output = Result<WsReply, ApiError>>,
{
    let request = match WsRequest::from_event(event) {
        Ok(request) => request,
        Err(e) => {
            tracing::error!(error = %e, "unreadable WebSocket event");
            return json!({ "statusCode": 400 });
        }
    };
    let (connection_id, route_key, request_id) = (
        request.connection_id.clone(),
        request.route_key.clone(),
        request.request_id.clone(),
    );
    let user = request.user_id.clone();
    let session = request.session_id.clone();
    let (started, usage_before, cache_before) =
        (std::time::Instant::now(), context.store.usage(), crate::cache::stats());
    // A frame of a revoked session's connection is refused, and the connection closed (revocation
    // closes them at once; this catches one that slipped past). `$connect` checks its session itself,
    // `$disconnect` needs no check.
    let session_refused = match (&session, route_key.starts_with('$') && route_key != "$default") {
        (Some(session), false) => match crate::auth::session_state::ensure_live(context, session).await {
            Ok(()) => None,
            Err(refused) => {
                if matches!(refused, ApiError::Unauthorized(_)) {
                    context.fanout.close_connection(&connection_id).await;
                }
                Some(refused)
            }
        },
        _ => None,
    };
    let result = match (
        session_refused,
        &user,
        crate::rate_limit::counts_websocket_route(&route_key),
    ) {
        (Some(refused), _, _) => Err(refused),
        (None, Some(user), true) => match crate::rate_limit::admit_user(context, user).await {
            Ok(()) => handler(context, request).await,
            Err(refused) => Err(refused),
        },
        _ => handler(context, request).await,
    };
    let status = match &result {
        Ok(WsReply::Status(status)) => *status,
        Ok(_) => 200,
        Err(error) => error.status(),
    };
    let error_code = result.as_ref().err().map(ApiError::code);
    crate::metrics::invocation(&crate::metrics::Invocation {
        route: &route_key,
        status,
        elapsed: started.elapsed(),
        usage: context.store.usage() - usage_before,
        cache: crate::cache::stats() - cache_before,
        error_code,
        request_id: &request_id,
    });
    tracing::info!(requestId = %request_id, route = %route_key, connectionId = %connection_id, ok = result.is_ok(), "ws event");
    match result {
        Ok(WsReply::Frame(frame)) => json!({ "statusCode": 200, "body": frame.to_string() }),
        Ok(WsReply::Nothing) => json!({ "statusCode": 200 }),
        Ok(WsReply::Status(status)) => json!({ "statusCode": status }),
        Err(error) => {
            if let ApiError::Internal(detail) = &error {
                tracing::error!(requestId = %request_id, route = %route_key, error = %detail, "ws route failed");
            }
            if route_key.starts_with('$') && route_key != "$default" {
                return json!({ "statusCode": error.status() });
            }
            let frame = error_frame(&error, &request_id);
            // The answer reaches the sender even on routes without a route response.
            if let Some(user) = user {
                context
                    .fanout
                    .post_one(&context.store, &user, &connection_id, &frame)
                    .await;
            }
            json!({ "statusCode": 200 })
        }
    }
}

/// Runs the `$connect` REQUEST authorizer: the `token` query parameter must be a valid access token
/// of a live session.
pub async fn serve_authorizer() -> Result<(), LambdaError> {
    crate::logging::init();
    let context: &'static AppContext = Box::leak(Box::new(AppContext::from_env().await?));
    context.warm_up().await;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        context.refresh_token_secret().await;
        authorize_session(context, &event.payload).await
    }))
    .await
}

/// [`authorize`], and the token's session must not be revoked (see `auth::session_state`; one GetItem
/// per session per container per 4 s). When the session cannot be read the connection is let through
/// to `$connect`, which reads the session again, strongly consistent, after recording the connection.
pub async fn authorize_session(context: &AppContext, event: &Value) -> Result<Value, LambdaError> {
    let policy = authorize(context, event)?;
    let session = policy["context"]["sessionId"].as_str().unwrap_or_default();
    match crate::auth::session_state::is_live(context, session).await {
        Ok(true) => Ok(policy),
        Ok(false) => Err(LambdaError::from("Unauthorized")),
        Err(e) => {
            tracing::warn!(error = %e, "session state unavailable at the authorizer; $connect checks it");
            Ok(policy)
        }
    }
}

/// Allow (with the user id as context) or the error "Unauthorized", which API Gateway turns into a 401
/// on the upgrade. Checks the token only; [`authorize_session`] also checks its session.
pub fn authorize(context: &AppContext, event: &Value) -> Result<Value, LambdaError> {
    let token = event["queryStringParameters"]["token"].as_str().unwrap_or("");
    let claims = context
        .tokens()
        .verify(token)
        .map_err(|_| LambdaError::from("Unauthorized"))?;
    let resource = event["methodArn"].as_str().unwrap_or("*");
    Ok(json!({
        "principalId": claims.sub,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{ "Action": "execute-api:Invoke", "Effect": "Allow", "Resource": resource }]
        },
        "context": { "userId": claims.sub, "sessionId": claims.sid }
    }))
}
