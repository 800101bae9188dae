//! How a batch worker (the function of an SQS or DynamoDB stream event source) runs as its process's
//! Lambda function: the context built once, and after every batch the same per-invocation metrics as
//! the HTTP functions, under a route named after the source, so what the asynchronous half of the work
//! costs is as visible as the synchronous half.

use std::future::Future;

use aws_lambda_events::event::sqs::SqsBatchResponse;
use aws_lambda_events::event::streams::DynamoDbEventResponse;

use crate::context::AppContext;

/// A stream record's sequence number: what a batch item failure names.
pub fn sequence_number(record: &aws_lambda_events::event::dynamodb::EventRecord) -> String {
    record.change.sequence_number.clone().unwrap_or_default()
}

/// The answer to a stream batch whose records `failed` (by sequence number): Lambda retries from the
/// lowest one reported, so only that one is. Sequence numbers of one shard compare as numbers.
pub fn retry_from_lowest(failed: Vec<String>) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    if let Some(lowest) = failed
        .into_iter()
        .min_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)))
    {
        let mut failure = aws_lambda_events::event::streams::DynamoDbBatchItemFailure::default();
        failure.item_identifier = Some(lowest);
        response.batch_item_failures.push(failure);
    }
    response
}

/// The answer to an SQS batch whose records `failed` (by message id): SQS gives exactly those back.
pub fn sqs_failures(failed: Vec<String>) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failed
        .into_iter()
        .map(|id| {
            let mut failure = aws_lambda_events::event::sqs::BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    response
}

/// A batch's answer to Lambda: which records failed.
pub trait BatchAnswer {
    fn failures(&self) -> usize;
}

impl BatchAnswer for SqsBatchResponse {
    fn failures(&self) -> usize {
        self.batch_item_failures.len()
    }
}

impl BatchAnswer for DynamoDbEventResponse {
    fn failures(&self) -> usize {
        self.batch_item_failures.len()
    }
}

/// Serves `handle` for batches of `E`; `route` names the source in the metrics. A handler's `Err`
/// fails the whole invocation (Lambda retries the batch).
pub async fn serve<E, R, H, Fut>(route: &'static str, handle: H) -> Result<(), lambda_runtime::Error>
where
    E: serde::de::DeserializeOwned + Send + 'static,
    R: serde::Serialize + BatchAnswer + Send + 'static,
    H: Fn(&'static AppContext, E) -> Fut + Copy + Send + 'static,
    Fut: Future<Output = Result<R, lambda_runtime::Error>> + Send,
{
    crate::logging::init();
    // Stream and queue workers sign and verify nothing: no permission to read the token secret.
    let context: &'static AppContext = Box::leak(Box::new(AppContext::from_env_without_token_secret().await?));
    context.warm_up().await;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<E>| async move {
            let started = std::time::Instant::now();
            let (usage_before, cache_before) = (context.store.usage(), crate::cache::stats());
            let answer = handle(context, event.payload).await;
            let status = match &answer {
                Ok(answer) if answer.failures() == 0 => 200,
                Ok(_) => 207,
                Err(_) => 500,
            };
            crate::metrics::invocation(&crate::metrics::Invocation {
                route,
                status,
                elapsed: started.elapsed(),
                usage: context.store.usage() - usage_before,
                cache: crate::cache::stats() - cache_before,
                error_code: None,
                request_id: &event.context.request_id,
            });
            answer
        },
    ))
    .await
}
