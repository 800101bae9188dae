//! What a function builds once per process (container) and every invocation shares.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

use std::sync::Arc;

use crate::auth::tokens::TokenKeys;
use crate::cache::Cache;
use crate::config::{Config, ConfigError};
use crate::cursor::Cursors;
use crate::domain::users::{self, User};
use crate::realtime::{Fanout, Publisher};
use crate::secrets::{SecretsManagerFetch, TokenSecretSource, TokenSecrets};
use crate::store::Store;

pub struct AppContext {
    pub config: Config,
    /// The process's one AWS configuration, for clients a route builds on first use.
    pub sdk: SdkConfig,
    pub store: Store,
    /// The token and cursor keys of the cached token secret (see `secrets`): [`Self::tokens`] and
    /// [`Self::cursors`].
    pub secrets: TokenSecrets,
    pub fanout: Fanout,
    /// Where writes hand their events to the delivery worker.
    pub publisher: Publisher,
    /// Other users' public profiles, for a few seconds (see `domain::users::PROFILE_CACHE_TTL`).
    pub profiles: Cache<User>,
    /// The attachments bucket (its S3 client is built on first use).
    pub attachments: crate::attachments::Storage,
    /// Push notifications: VAPID keys and the SNS and HTTP clients, each made on first use.
    pub push: crate::push::Push,
}

impl AppContext {
    /// Reads the configuration and the AWS settings (region, credentials, endpoint overrides such as
    /// `AWS_ENDPOINT_URL_DYNAMODB`) from the environment.
    /// Reads the token secret too: from Secrets Manager (`TOKEN_SECRET_ARN`; one `GetSecretValue` now
    /// and one per `TOKEN_SECRET_TTL_SECS` after), or `TOKEN_SECRET` where a test or local tool sets it.
    pub async fn from_env() -> Result<Self, ConfigError> {
        Self::load(true).await
    }

    /// For functions that neither sign nor verify anything (the WebSocket routes behind the
    /// authorizer, the stream and queue workers): they need no permission to read the secret.
    pub async fn from_env_without_token_secret() -> Result<Self, ConfigError> {
        Self::load(false).await
    }

    async fn load(with_token_secret: bool) -> Result<Self, ConfigError> {
        let config = Config::from_env()?;
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .timeout_config(lambda_timeouts(config.sdk_attempt_timeout))
            .retry_config(lambda_retries())
            .load()
            .await;
        let secrets = match (&config.token_secret, with_token_secret) {
            (_, false) => TokenSecrets::absent(config.access_token_ttl),
            (TokenSecretSource::Inline(secret), true) => TokenSecrets::fixed(secret, config.access_token_ttl),
            (TokenSecretSource::SecretsManager { arn, ttl }, true) => TokenSecrets::fetched(
                Box::new(SecretsManagerFetch::new(&sdk, arn)),
                *ttl,
                config.access_token_ttl,
            )
            .await
            .map_err(ConfigError::SecretUnavailable)?,
            (TokenSecretSource::Absent, true) => return Err(ConfigError::Missing("TOKEN_SECRET_ARN")),
        };
        Ok(Self::with_secrets(config, &sdk, secrets))
    }

    /// Reads the token secret again if the cached copy is older than its TTL (see
    /// `TokenSecrets::refresh_if_stale`): the first thing an invocation that signs or verifies does.
    pub async fn refresh_token_secret(&self) {
        self.secrets.refresh_if_stale().await
    }

    /// The access-token keys of the cached token secret.
    pub fn tokens(&self) -> Arc<TokenKeys> {
        self.secrets.tokens()
    }

    /// The cursor keys of the cached token secret.
    pub fn cursors(&self) -> Arc<Cursors> {
        self.secrets.cursors()
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

    /// A context whose token secret is the configuration's `TOKEN_SECRET` (tests, benchmarks, local
    /// tools); without one it has none (see [`Self::from_env`] for Secrets Manager).
    pub fn new(config: Config, sdk: &SdkConfig) -> Self {
        let secrets = match &config.token_secret {
            TokenSecretSource::Inline(secret) => TokenSecrets::fixed(secret, config.access_token_ttl),
            _ => TokenSecrets::absent(config.access_token_ttl),
        };
        Self::with_secrets(config, sdk, secrets)
    }

    fn with_secrets(config: Config, sdk: &SdkConfig, secrets: TokenSecrets) -> Self {
        let store = Store::new(sdk, config.table_name.clone(), config.dynamodb_slow_call)
            .with_retry_budget(config.dynamodb_retry_budget);
        let fanout = Fanout::new(sdk, config.websocket_endpoint.as_deref());
        let publisher = Publisher::new(sdk, config.delivery_queues.clone());
        let attachments = crate::attachments::Storage::new(sdk, config.attachments.clone());
        let push = crate::push::Push::new(sdk, config.push.clone());
        AppContext {
            config,
            sdk: sdk.clone(),
            store,
            secrets,
            fanout,
            publisher,
            profiles: Cache::new(users::PROFILE_CACHE_TTL, users::PROFILE_CACHE_USERS),
            attachments,
            push,
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
