//! Configuration from the environment, read once per process.

use std::time::Duration;

pub use crate::config_error::ConfigError;

/// Push settings from the environment (`push::Settings`).
#[derive(Debug, Clone)]
pub struct PushSettings {
    /// `PUSH_QUEUE_URL`: where the delivery worker puts push jobs; unset: nobody is pushed.
    pub queue_url: Option<String>,
    /// `VAPID_SECRET` (tests, local tools) or `VAPID_SECRET_ARN` (Secrets Manager).
    pub secret: crate::secrets::TokenSecretSource,
    /// `PUSH_CONTACT`: the VAPID `sub` (a `mailto:` or `https:` URL push services may use to reach
    /// the operator).
    pub contact: String,
    /// `PUSH_LOOPBACK_ENDPOINTS=allow`: also accept `http://127.0.0.1` endpoints (the local stack).
    pub endpoints: PushEndpoints,
    /// `APNS_PLATFORM_APPLICATION_ARN`, `FCM_PLATFORM_APPLICATION_ARN`: SNS platform applications;
    /// unset: that kind of device cannot subscribe.
    pub apns_application: Option<String>,
    pub fcm_application: Option<String>,
}

/// Which Web Push endpoints a deployment accepts (`push::webpush::Endpoints`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushEndpoints {
    /// `https` on a public host only (deployed).
    Public,
    /// Also `http://127.0.0.1` and `http://localhost` (the local stack, whose tests run their own
    /// push service).
    PublicAndLoopback,
}

/// The queues the delivery publisher and worker use, `DELIVERY_*_QUEUE_URL`
/// (`realtime::publisher::Queues`).
#[derive(Debug, Clone, Default)]
pub struct DeliveryQueues {
    /// FIFO: every event's first delivery.
    pub delivery: Option<String>,
    /// Standard: connections whose posts failed, each with its backoff as `DelaySeconds`.
    pub retry: Option<String>,
    /// Standard: deliveries that failed every attempt (an alarm watches its depth).
    pub parked: Option<String>,
}

#[derive(Clone)]
pub struct Config {
    /// The single DynamoDB table (`TABLE_NAME`).
    pub table_name: String,
    /// Where the HS256 secret every token, refresh token and cursor is made with comes from (see
    /// `secrets`): Secrets Manager (`TOKEN_SECRET_ARN`, refreshed every `TOKEN_SECRET_TTL_SECS`), or,
    /// for tests and local tools, `TOKEN_SECRET` and `TOKEN_SECRET_PREVIOUS` (unset, empty or `none`:
    /// there is none) directly. What the previous secret made is still accepted, so a rotation signs
    /// nobody out; nothing new is made with it.
    pub token_secret: crate::secrets::TokenSecretSource,
    /// The name wallet users see in the sign-in message (`WALLET_SIGNIN_DOMAIN`).
    pub wallet_signin_domain: String,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// How long after a rotation the token it replaced may be presented again and get the same new pair
    /// (`REFRESH_RETRY_GRACE_MS`, 30 s by default): a client that lost the answer retries with it.
    pub refresh_retry_grace: Duration,
    pub wallet_challenge_ttl: Duration,
    /// The WebSocket API's management endpoint (`WEBSOCKET_ENDPOINT`), where fan-out posts events.
    pub websocket_endpoint: Option<String>,
    /// Reported by `/health` (`PARLEY_VERSION`, else the crate version).
    pub version: String,
    pub rate_limits: RateLimits,
    /// DynamoDB calls slower than this are logged with their operation and key (`DYNAMODB_SLOW_CALL_MS`).
    pub dynamodb_slow_call: Duration,
    /// How long one attempt of an AWS call may take before it is retried (`SDK_ATTEMPT_TIMEOUT_MS`,
    /// 1000 by default; the local stack allows DynamoDB Local more on a loaded laptop).
    pub sdk_attempt_timeout: Duration,
    /// The delivery queues (`DELIVERY_QUEUE_URL`, `DELIVERY_RETRY_QUEUE_URL`,
    /// `DELIVERY_PARKED_QUEUE_URL`); without the first, events are delivered in the writer's process.
    pub delivery_queues: DeliveryQueues,
    /// How long a DynamoDB operation may keep retrying conflicts, throttles and 5xx before the request
    /// is answered 503 (`DYNAMODB_RETRY_BUDGET_MS`, 2000 by default).
    pub dynamodb_retry_budget: Duration,
    /// Added to this process's clock (`CLOCK_SKEW_MS`, may be negative): lets a test run a container
    /// whose clock is wrong, as real fleets sometimes have.
    pub clock_skew_ms: i64,
    /// How far a group's place in its members' conversation lists may lag its newest message
    /// (`LISTING_GRANULARITY_MS`, 10000 by default; 0 lists every message): what bounds the
    /// conversation worker's writes per group (see `domain::upkeep`).
    pub listing_granularity_ms: u64,
    /// How long a conversation's sync keys, once moved, cover its later changes (`SYNC_WINDOW_MS`,
    /// 60000 by default): what bounds the conversation worker's sync-key writes per conversation
    /// (see `store::sync`).
    pub sync_window_ms: u64,
    /// The attachments bucket and its URL lifetimes (see `attachments::Settings`).
    pub attachments: crate::attachments::Settings,
    /// Push notifications: the queue, the VAPID secret, the SNS platform applications (see `push`).
    pub push: PushSettings,
}

/// Requests allowed per window, enforced across all containers; 0 turns a limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Requests without a valid access token, per source IP and hour (`RATE_LIMIT_IP_PER_HOUR`).
    pub ip_per_hour: u64,
    /// Authenticated requests, per user and hour (`RATE_LIMIT_USER_PER_HOUR`).
    pub user_per_hour: u64,
    /// Sign-in and registration attempts, per source IP and minute (`RATE_LIMIT_SENSITIVE_PER_MINUTE`).
    pub sensitive_per_minute: u64,
    /// Groups a user may create per hour (`RATE_LIMIT_GROUPS_PER_HOUR`): a bound on how many
    /// conversations one account can put other people into.
    pub groups_per_hour: u64,
}

impl RateLimits {
    /// The seeds' numbers.
    pub const DEFAULT: RateLimits = RateLimits {
        ip_per_hour: 1000,
        user_per_hour: 10_000,
        sensitive_per_minute: 100,
        groups_per_hour: 50,
    };
    pub const OFF: RateLimits = RateLimits {
        ip_per_hour: 0,
        user_per_hour: 0,
        sensitive_per_minute: 0,
        groups_per_hour: 0,
    };
}

fn number(lookup: &impl Fn(&str) -> Option<String>, name: &'static str, default: u64) -> Result<u64, ConfigError> {
    match lookup(name).filter(|v| !v.trim().is_empty()) {
        None => Ok(default),
        Some(value) => value.trim().parse().map_err(|_| ConfigError::Invalid {
            name,
            problem: format!("{value:?} is not a whole number"),
        }),
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("table_name", &self.table_name)
            .field("token_secret", &self.token_secret)
            .field("wallet_signin_domain", &self.wallet_signin_domain)
            .finish_non_exhaustive()
    }
}

pub use crate::secrets::MIN_SECRET_BYTES;

/// The environment variables one secret is read from.
struct SecretNames {
    /// The value itself (tests, local tools).
    value: &'static str,
    previous: &'static str,
    /// Or the Secrets Manager secret holding `{"current", "previous"}`.
    arn: &'static str,
}

/// `TOKEN_SECRET` (with `TOKEN_SECRET_PREVIOUS`) when set, else `TOKEN_SECRET_ARN`; the same for the
/// VAPID secret. Both are read again after `TOKEN_SECRET_TTL_SECS`.
fn secret_source(
    lookup: &impl Fn(&str) -> Option<String>,
    names: SecretNames,
) -> Result<crate::secrets::TokenSecretSource, ConfigError> {
    use crate::secrets::{SecretProblem, TokenSecret, TokenSecretSource};
    if let Some(current) = lookup(names.value) {
        let previous = lookup(names.previous);
        return match TokenSecret::new(&current, previous.as_deref()) {
            Ok(secret) => Ok(TokenSecretSource::Inline(secret)),
            Err(SecretProblem::Current(problem)) => Err(ConfigError::Invalid {
                name: names.value,
                problem,
            }),
            Err(SecretProblem::Previous(problem)) => Err(ConfigError::Invalid {
                name: names.previous,
                problem,
            }),
        };
    }
    match lookup(names.arn).filter(|v| !v.trim().is_empty()) {
        Some(arn) => Ok(TokenSecretSource::SecretsManager {
            arn: arn.trim().to_owned(),
            ttl: match lookup("TOKEN_SECRET_TTL_SECS").filter(|v| !v.trim().is_empty()) {
                None => crate::secrets::DEFAULT_TTL,
                Some(_) => std::time::Duration::from_secs(number(lookup, "TOKEN_SECRET_TTL_SECS", 0)?),
            },
        }),
        None => Ok(TokenSecretSource::Absent),
    }
}

fn push_settings(lookup: &impl Fn(&str) -> Option<String>) -> Result<PushSettings, ConfigError> {
    let set = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    Ok(PushSettings {
        queue_url: set("PUSH_QUEUE_URL"),
        secret: secret_source(
            lookup,
            SecretNames {
                value: "VAPID_SECRET",
                previous: "VAPID_SECRET_PREVIOUS",
                arn: "VAPID_SECRET_ARN",
            },
        )?,
        contact: set("PUSH_CONTACT").unwrap_or_else(|| "https://parley.chat".to_owned()),
        endpoints: match set("PUSH_LOOPBACK_ENDPOINTS").as_deref() {
            Some("allow") => PushEndpoints::PublicAndLoopback,
            None | Some("refuse") => PushEndpoints::Public,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "PUSH_LOOPBACK_ENDPOINTS",
                    problem: format!("{other:?} is neither allow nor refuse"),
                })
            }
        },
        apns_application: set("APNS_PLATFORM_APPLICATION_ARN"),
        fcm_application: set("FCM_PLATFORM_APPLICATION_ARN"),
    })
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`, so tests can configure without touching the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let table_name = lookup("TABLE_NAME")
            .filter(|v| !v.is_empty())
            .ok_or(ConfigError::Missing("TABLE_NAME"))?;
        Ok(Config {
            table_name,
            token_secret: secret_source(
                &lookup,
                SecretNames {
                    value: "TOKEN_SECRET",
                    previous: "TOKEN_SECRET_PREVIOUS",
                    arn: "TOKEN_SECRET_ARN",
                },
            )?,
            push: push_settings(&lookup)?,
            wallet_signin_domain: lookup("WALLET_SIGNIN_DOMAIN").unwrap_or_else(|| "parley.chat".to_owned()),
            access_token_ttl: Duration::from_secs(15 * 60),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            refresh_retry_grace: Duration::from_millis(number(&lookup, "REFRESH_RETRY_GRACE_MS", 30_000)?),
            wallet_challenge_ttl: Duration::from_secs(5 * 60),
            websocket_endpoint: lookup("WEBSOCKET_ENDPOINT").filter(|v| !v.is_empty()),
            version: lookup("PARLEY_VERSION").unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_owned()),
            rate_limits: RateLimits {
                ip_per_hour: number(&lookup, "RATE_LIMIT_IP_PER_HOUR", RateLimits::DEFAULT.ip_per_hour)?,
                user_per_hour: number(&lookup, "RATE_LIMIT_USER_PER_HOUR", RateLimits::DEFAULT.user_per_hour)?,
                sensitive_per_minute: number(
                    &lookup,
                    "RATE_LIMIT_SENSITIVE_PER_MINUTE",
                    RateLimits::DEFAULT.sensitive_per_minute,
                )?,
                groups_per_hour: number(
                    &lookup,
                    "RATE_LIMIT_GROUPS_PER_HOUR",
                    RateLimits::DEFAULT.groups_per_hour,
                )?,
            },
            dynamodb_slow_call: Duration::from_millis(number(&lookup, "DYNAMODB_SLOW_CALL_MS", 100)?),
            sdk_attempt_timeout: Duration::from_millis(number(&lookup, "SDK_ATTEMPT_TIMEOUT_MS", 1000)?.max(1)),
            delivery_queues: DeliveryQueues {
                delivery: lookup("DELIVERY_QUEUE_URL").filter(|v| !v.is_empty()),
                retry: lookup("DELIVERY_RETRY_QUEUE_URL").filter(|v| !v.is_empty()),
                parked: lookup("DELIVERY_PARKED_QUEUE_URL").filter(|v| !v.is_empty()),
            },
            dynamodb_retry_budget: Duration::from_millis(number(&lookup, "DYNAMODB_RETRY_BUDGET_MS", 2000)?),
            listing_granularity_ms: number(&lookup, "LISTING_GRANULARITY_MS", 10_000)?,
            sync_window_ms: number(&lookup, "SYNC_WINDOW_MS", 60_000)?,
            attachments: crate::attachments::Settings::from_lookup(&lookup)?,
            clock_skew_ms: match lookup("CLOCK_SKEW_MS").filter(|v| !v.trim().is_empty()) {
                None => 0,
                Some(value) => value.trim().parse().map_err(|_| ConfigError::Invalid {
                    name: "CLOCK_SKEW_MS",
                    problem: format!("{value:?} is not a whole number of milliseconds"),
                })?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requires_table_and_a_long_secret() {
        let missing = Config::from_lookup(|_| None).unwrap_err();
        assert!(missing.to_string().contains("TABLE_NAME"));
        let short = Config::from_lookup(|k| match k {
            "TABLE_NAME" => Some("t".into()),
            "TOKEN_SECRET" => Some("short".into()),
            _ => None,
        })
        .unwrap_err();
        assert!(short.to_string().contains("at least 32 bytes"));
        let ok = Config::from_lookup(|k| match k {
            "TABLE_NAME" => Some("t".into()),
            "TOKEN_SECRET" => Some("x".repeat(32)),
            _ => None,
        })
        .unwrap();
        assert_eq!(ok.table_name, "t");
        assert!(!format!("{ok:?}").contains("xxxx"), "the secret never reaches logs");
        assert_eq!(ok.rate_limits, RateLimits::DEFAULT);
        assert_eq!(ok.dynamodb_slow_call, Duration::from_millis(100));
        assert_eq!(ok.sdk_attempt_timeout, Duration::from_secs(1));
    }

    #[test]
    fn the_previous_secret_is_optional_long_and_not_the_current_one() {
        let current = "c".repeat(32);
        let with = |previous: Option<&str>| {
            let previous = previous.map(str::to_owned);
            let current = current.clone();
            Config::from_lookup(move |k| match k {
                "TABLE_NAME" => Some("t".to_owned()),
                "TOKEN_SECRET" => Some(current.clone()),
                "TOKEN_SECRET_PREVIOUS" => previous.clone(),
                _ => None,
            })
        };
        let inline = |config: &Config| match &config.token_secret {
            crate::secrets::TokenSecretSource::Inline(secret) => secret.clone(),
            other => panic!("not inline: {other:?}"),
        };
        for absent in [None, Some(""), Some("  "), Some("none"), Some("NONE")] {
            assert_eq!(inline(&with(absent).unwrap()).previous(), None, "{absent:?}");
        }
        let rotated = with(Some(&"p".repeat(32))).unwrap();
        assert_eq!(inline(&rotated).previous(), Some("p".repeat(32).as_bytes()));
        assert_eq!(inline(&rotated).current(), current.as_bytes());
        let debug = format!("{rotated:?}");
        assert!(!debug.contains("pppp") && !debug.contains("cccc"), "{debug}");

        let short = with(Some("short")).unwrap_err();
        assert!(
            matches!(
                short,
                ConfigError::Invalid {
                    name: "TOKEN_SECRET_PREVIOUS",
                    ..
                }
            ),
            "{short}"
        );
        assert!(short.to_string().contains("at least 32 bytes"), "{short}");
        let same = with(Some(&current)).unwrap_err();
        assert!(
            matches!(
                same,
                ConfigError::Invalid {
                    name: "TOKEN_SECRET_PREVIOUS",
                    ..
                }
            ),
            "{same}"
        );
        assert!(same.to_string().contains("same as the current secret"), "{same}");
    }

    #[test]
    fn without_a_secret_in_the_environment_it_names_the_secret_to_read() {
        use crate::secrets::TokenSecretSource;
        let arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:parley-token-AbCdEf";
        let with = |ttl: Option<&'static str>| {
            Config::from_lookup(move |k| match k {
                "TABLE_NAME" => Some("t".to_owned()),
                "TOKEN_SECRET_ARN" => Some(arn.to_owned()),
                "TOKEN_SECRET_TTL_SECS" => ttl.map(str::to_owned),
                _ => None,
            })
        };
        let default = with(None).unwrap();
        assert_eq!(
            default.token_secret,
            TokenSecretSource::SecretsManager {
                arn: arn.to_owned(),
                ttl: Duration::from_secs(300)
            }
        );
        assert!(matches!(
            with(Some("2")).unwrap().token_secret,
            TokenSecretSource::SecretsManager { ttl, .. } if ttl == Duration::from_secs(2)
        ));
        assert!(with(Some("soon")).is_err());
        let neither = Config::from_lookup(|k| (k == "TABLE_NAME").then(|| "t".to_owned())).unwrap();
        assert_eq!(neither.token_secret, TokenSecretSource::Absent);
    }

    #[test]
    fn reads_rate_limits_and_refuses_garbage() {
        let base = |k: &str| match k {
            "TABLE_NAME" => Some("t".to_owned()),
            "TOKEN_SECRET" => Some("x".repeat(32)),
            _ => None,
        };
        let tuned = Config::from_lookup(|k| match k {
            "RATE_LIMIT_IP_PER_HOUR" => Some("0".to_owned()),
            "RATE_LIMIT_SENSITIVE_PER_MINUTE" => Some(" 5 ".to_owned()),
            "DYNAMODB_SLOW_CALL_MS" => Some("250".to_owned()),
            other => base(other),
        })
        .unwrap();
        assert_eq!(
            tuned.rate_limits,
            RateLimits {
                ip_per_hour: 0,
                user_per_hour: 10_000,
                sensitive_per_minute: 5,
                groups_per_hour: 50,
            }
        );
        assert_eq!(tuned.dynamodb_slow_call, Duration::from_millis(250));
        let bad = Config::from_lookup(|k| match k {
            "RATE_LIMIT_USER_PER_HOUR" => Some("lots".to_owned()),
            other => base(other),
        })
        .unwrap_err();
        assert!(bad.to_string().contains("RATE_LIMIT_USER_PER_HOUR"), "{bad}");
    }
}
