//! What a function builds once per process (container) and every invocation shares.

use aws_config::{BehaviorVersion, SdkConfig};

use crate::auth::tokens::TokenKeys;
use crate::config::Config;
use crate::cursor::Cursors;
use crate::realtime::Fanout;
use crate::store::Store;

pub struct AppContext {
    pub config: Config,
    pub store: Store,
    pub tokens: TokenKeys,
    pub cursors: Cursors,
    pub fanout: Fanout,
}

impl AppContext {
    /// Reads the configuration and the AWS settings (region, credentials, endpoint overrides such as
    /// `AWS_ENDPOINT_URL_DYNAMODB`) from the environment.
    pub async fn from_env() -> Result<Self, crate::config::ConfigError> {
        let config = Config::from_env()?;
        let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
        Ok(Self::new(config, &sdk))
    }

    pub fn new(config: Config, sdk: &SdkConfig) -> Self {
        let store = Store::new(aws_sdk_dynamodb::Client::new(sdk), config.table_name.clone());
        let tokens = TokenKeys::new(&config.token_secret, config.access_token_ttl);
        let cursors = Cursors::new(&config.token_secret);
        let fanout = Fanout::new(sdk, config.websocket_endpoint.as_deref());
        AppContext {
            config,
            store,
            tokens,
            cursors,
            fanout,
        }
    }
}
