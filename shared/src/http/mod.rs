//! The HTTP edge: API Gateway HTTP API (payload v2.0) events in, responses out.
//!
//! A route handler is an `async fn(&'static AppContext, ApiRequest) -> Result<Reply, ApiError>`.
//! [`serve`] runs one as a Lambda function; [`handle`] is the same path for one event, which is what
//! tests call.

mod compression;
mod request;
mod response;

use std::future::Future;
use std::time::Instant;

use lambda_http::{service_fn, Body, Request, Response};

pub use compression::CompressionLayer;
pub use request::{parse_json_object, ApiRequest, MAX_BODY_BYTES};
pub use response::{FieldSelection, Reply};

use crate::context::AppContext;
use crate::error::ApiError;

pub type LambdaError = lambda_http::Error;

/// Runs `handler` as this process's Lambda function: builds the shared context once, then serves
/// events until the runtime stops the process.
pub async fn serve<H, Fut>(handler: H) -> Result<(), LambdaError>
where
    H: Fn(&'static AppContext, ApiRequest) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = Result<Reply, ApiError>> + Send + 'static,
{
    crate::logging::init();
    let context: &'static AppContext = Box::leak(Box::new(AppContext::from_env().await?));
    context.warm_up().await;
    let service =
        tower::ServiceBuilder::new()
            .layer(CompressionLayer)
            .service(service_fn(move |event: Request| async move {
                Ok::<_, LambdaError>(handle(context, handler, event).await)
            }));
    lambda_http::run(service).await
}

/// One event through one handler: parse, check the bearer token's session, check the rate limits, run,
/// and turn the outcome into the response the API promises (JSON, a request id, error bodies with
/// codes: docs/API-GUIDE.md "Errors"). Never panics on bad input. Compression is the layer around this (see [`serve`]), so
/// the latency metric leaves it out.
pub async fn handle<H, Fut>(context: &'static AppContext, handler: H, event: Request) -> Response<Body>
where
    H: Fn(&'static AppContext, ApiRequest) -> Fut,
    Fut: Future<Output = Result<Reply, ApiError>>,
{
    let started = Instant::now();
    context.refresh_token_secret().await;
    let usage_before = context.store.usage();
    let cache_before = crate::cache::stats();
    let request = ApiRequest::from_lambda(event);
    let request_id = request.request_id.clone();
    let route = request.route_key.clone();
    let conditional = (request.method == "GET").then(|| request.header("if-none-match").unwrap_or("").to_owned());
    let result = match (request.check_body_size(), FieldSelection::from_request(&request)) {
        (Err(e), _) | (Ok(()), Err(e)) => Err(e),
        (Ok(()), Ok(fields)) => {
            // Authenticate before admitting: the rate limits count the caller the session check vouched
            // for, and a handler's `authenticate` refuses a token whose session was never checked.
            if crate::rate_limit::uses_bearer_token(&request.route_key) {
                request.check_session(context).await;
            }
            let caller = request.authenticate(context).ok().map(|claims| claims.sub);
            match crate::rate_limit::admit(
                context,
                &request.route_key,
                request.source_ip.as_deref(),
                caller.as_deref(),
            )
            .await
            {
                // Boxed: the handler's future is most of `handle`'s, and in a debug build it would
                // otherwise make every caller's future too large for a test thread's stack.
                Ok(()) => Box::pin(handler(context, request))
                    .await
                    .map(|reply| reply.select(fields.as_ref())),
                Err(refused) => Err(refused),
            }
        }
    };
    let error_code = result.as_ref().err().map(ApiError::code);
    let response = match result {
        Ok(reply) => match &conditional {
            Some(if_none_match) => {
                reply.into_conditional_response(&request_id, Some(if_none_match.as_str()).filter(|h| !h.is_empty()))
            }
            None => reply.into_response(&request_id),
        },
        Err(error) => {
            if let ApiError::Internal(detail) = &error {
                tracing::error!(requestId = %request_id, route = %route, error = %detail, "request failed");
            }
            response::error_response(&error, &request_id)
        }
    };
    let status = response.status().as_u16();
    tracing::info!(
        requestId = %request_id,
        route = %route,
        status,
        durationMs = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    crate::metrics::invocation(&crate::metrics::Invocation {
        route: &route,
        status,
        elapsed: started.elapsed(),
        usage: context.store.usage() - usage_before,
        cache: crate::cache::stats() - cache_before,
        error_code,
        request_id: &request_id,
    });
    response
}
