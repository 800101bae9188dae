//! The error of reading a setting from the environment. A leaf module, so that each module that owns
//! settings (`attachments`, `push`, ...) can report a bad one without importing `config`, which
//! gathers them all.

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {problem}")]
    Invalid { name: &'static str, problem: String },
    #[error("the token secret could not be read from Secrets Manager: {0}")]
    SecretUnavailable(String),
}
