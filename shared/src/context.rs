//! What a function builds once per process (container) and every invocation shares.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

use crate::auth::tokens::TokenKeys;
use crate::cache::Cache;
use crate::config::Config;
use crate::cursor::Cursors;
use crate::domain::users::{self, User};
use crate::realtime::{Fanout, Publisher};
use crate::store::Store;

pub struct AppContext {
    pub config: Config,
    /// The process's one AWS configuration, for clients a route builds on first use.
    pub sdk: SdkConfig,
    pub store: Store,
    pub tokens: TokenKeys,
    pub cursors: Cursors,
    pub fanout: Fanout,
    /// Where writes hand their events to the delivery worker.
    pub publisher: Publisher,
    /// Other users' public profiles, for a few seconds (see `domain::users::PROFILE_CACHE_TTL`).
    pub profiles: Cache<User>,
    /// The attachments bucket (its S3 client is built on first use).
    pub attachments: crate::attachments::Storage,
}

impl AppContext {
    /// Reads the configuration and the AWS settings (region, credentials, endpoint overrides such as
    /// `AWS_ENDPOINT_URL_DYNAMODB`) from the environment.
    pub async fn from_env() -> Result<Self, crate::config::ConfigError> {
        let config = Config::from_env()?;
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .timeout_config(lambda_timeouts(config.sdk_attempt_timeout))
            .retry_config(lambda_retries())
            .load()
            .await;
        Ok(Self::new(config, &sdk))
    }

    /// Opens the DynamoDB connection (TCP and TLS) during init, where Lambda gives the process a full CPU
    /// and nobody is waiting, instead of in the first request. A failure only means the first request
    /// connects itself.
    pub async fn warm_up(&self) {
        match tokio::time::timeout(Duration::from_secs(1), self.store.ping()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "DynamoDB warm-up call failed"),
            Err(_) => tracing::debug!("DynamoDB warm-up call timed out"),
        }
    }

    /// This container's clock (with `CLOCK_SKEW_MS` applied).
    pub fn now(&self) -> std::time::SystemTime {
        let skew = Duration::from_millis(self.config.clock_skew_ms.unsigned_abs());
        if self.config.clock_skew_ms < 0 {
            crate::time::now() - skew
        } else {
            crate::time::now() + skew
        }
    }

    pub fn now_ms(&self) -> u64 {
        self.now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_millis() as u64
    }

    /// Hands events to the delivery worker (see `realtime`): the one way a write's events leave it.
    pub async fn publish(&self, events: &[crate::realtime::Outgoing]) -> Result<(), crate::error::ApiError> {
        self.publisher.publish(self, events).await
    }

    pub fn new(config: Config, sdk: &SdkConfig) -> Self {
        let store = Store::new(sdk, config.table_name.clone(), config.dynamodb_slow_call)
            .with_retry_budget(config.dynamodb_retry_budget);
        let previous = config.token_secret_previous.as_deref();
        let tokens = TokenKeys::with_previous(&config.token_secret, previous, config.access_token_ttl);
        let cursors = Cursors::with_previous(&config.token_secret, previous);
        let fanout = Fanout::new(sdk, config.websocket_endpoint.as_deref());
        let publisher = Publisher::new(sdk, config.delivery_queues.clone());
        let attachments = crate::attachments::Storage::new(sdk, config.attachments.clone());
        AppContext {
            config,
            sdk: sdk.clone(),
            store,
            tokens,
            cursors,
            fanout,
            publisher,
            profiles: Cache::new(users::PROFILE_CACHE_TTL, users::PROFILE_CACHE_USERS),
            attachments,
        }
    }
}

/// DynamoDB answers in single-digit milliseconds; an attempt that takes a second (the default `attempt`)
/// is stuck, and another attempt on a fresh connection is the better bet. The whole operation, three
/// attempts and their backoff, stays inside a function's timeout (10 s by default).
fn lambda_timeouts(attempt: Duration) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_millis(500).min(attempt))
        .operation_attempt_timeout(attempt)
        .operation_timeout(attempt * 3 + Duration::from_secs(1))
        .build()
}

/// Three attempts with full jitter from 20 ms, capped at 500 ms: a throttled or failed call is retried
/// quickly, and a request never spends seconds sleeping between attempts.
fn lambda_retries() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(3)
        .with_initial_backoff(Duration::from_millis(20))
        .with_max_backoff(Duration::from_millis(500))
}
