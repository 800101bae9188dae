//! Configuration from the environment, read once per process.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {problem}")]
    Invalid { name: &'static str, problem: String },
}

#[derive(Clone)]
pub struct Config {
    /// The single DynamoDB table (`TABLE_NAME`).
    pub table_name: String,
    /// HS256 secret for access tokens (`TOKEN_SECRET`, at least 32 bytes).
    pub token_secret: Vec<u8>,
    /// The name wallet users see in the sign-in message (`WALLET_SIGNIN_DOMAIN`).
    pub wallet_signin_domain: String,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub wallet_challenge_ttl: Duration,
    /// The WebSocket API's management endpoint (`WEBSOCKET_ENDPOINT`), where fan-out posts events.
    pub websocket_endpoint: Option<String>,
    /// Reported by `/health` (`PARLEY_VERSION`, else the crate version).
    pub version: String,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("table_name", &self.table_name)
            .field("token_secret", &"<redacted>")
            .field("wallet_signin_domain", &self.wallet_signin_domain)
            .finish_non_exhaustive()
    }
}

pub const MIN_SECRET_BYTES: usize = 32;

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`, so tests can configure without touching the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let table_name = lookup("TABLE_NAME")
            .filter(|v| !v.is_empty())
            .ok_or(ConfigError::Missing("TABLE_NAME"))?;
        let token_secret = lookup("TOKEN_SECRET").ok_or(ConfigError::Missing("TOKEN_SECRET"))?;
        if token_secret.len() < MIN_SECRET_BYTES {
            return Err(ConfigError::Invalid {
                name: "TOKEN_SECRET",
                problem: format!("must be at least {MIN_SECRET_BYTES} bytes"),
            });
        }
        Ok(Config {
            table_name,
            token_secret: token_secret.into_bytes(),
            wallet_signin_domain: lookup("WALLET_SIGNIN_DOMAIN").unwrap_or_else(|| "parley.chat".to_owned()),
            access_token_ttl: Duration::from_secs(15 * 60),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            wallet_challenge_ttl: Duration::from_secs(5 * 60),
            websocket_endpoint: lookup("WEBSOCKET_ENDPOINT").filter(|v| !v.is_empty()),
            version: lookup("PARLEY_VERSION").unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_owned()),
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
    }
}
