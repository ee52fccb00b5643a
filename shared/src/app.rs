//! The application state every handler shares, built once at init: configuration,
//! the DynamoDB store, the token and cursor keys, and the clock.

use crate::{
    auth::jwt::TokenService,
    clock::Clock,
    config::{Config, ConfigError, KeySource},
    cursor::CursorSealer,
    store::Store,
};
use aws_config::{retry::RetryConfig, timeout::TimeoutConfig, BehaviorVersion, Region};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::Sha256;
use std::{sync::Arc, time::Duration};

/// The master key must carry at least 256 bits.
pub const MIN_KEY_BYTES: usize = 32;

// Time budget of one request. A healthy DynamoDB answers in milliseconds; these bounds
// only decide how long a request waits for one that is down or hung, so that the
// function itself answers 503 (problem+json, `Retry-After`) long before Lambda's own
// timeout would cut it off with a bare 5xx. Nested: connect < attempt < operation <
// request deadline < Lambda timeout.

/// Opening a TCP (and TLS) connection to DynamoDB. Same-region connects take
/// milliseconds; a second means the endpoint is unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// One attempt of one DynamoDB call, from sending to the end of the answer. Generous
/// for a single call (even a 25-item transaction takes tens of milliseconds), short
/// enough to leave room for a retry.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// One DynamoDB call including the SDK's retries ([`SDK_MAX_ATTEMPTS`]): the longest a
/// handler waits for any single call before it reports the store unavailable.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(4);
/// Attempts per DynamoDB call (the SDK's standard retry mode, with jittered back-off
/// starting at [`SDK_INITIAL_BACKOFF`]).
pub const SDK_MAX_ATTEMPTS: u32 = 3;
pub const SDK_INITIAL_BACKOFF: Duration = Duration::from_millis(250);
/// The whole request, enforced by the router around every handler: a backstop for
/// handlers that make several calls, each within [`OPERATION_TIMEOUT`].
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(8);
/// `Globals.Function.Timeout` of `template.yaml` (a test keeps the two equal).
pub const LAMBDA_TIMEOUT: Duration = Duration::from_secs(10);

const _: () = assert!(CONNECT_TIMEOUT.as_millis() < ATTEMPT_TIMEOUT.as_millis());
const _: () = assert!(ATTEMPT_TIMEOUT.as_millis() < OPERATION_TIMEOUT.as_millis());
const _: () = assert!(OPERATION_TIMEOUT.as_millis() < REQUEST_DEADLINE.as_millis());
const _: () = assert!(REQUEST_DEADLINE.as_millis() < LAMBDA_TIMEOUT.as_millis());

pub struct App {
    pub config: Config,
    pub store: Store,
    pub tokens: TokenService,
    pub cursors: CursorSealer,
    pub clock: Clock,
    /// Opens delivered credentials (KMS); `None` when `KMS_KEY_ID` is not configured.
    pub vault: Option<crate::vault::Vault>,
}

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("could not read the JWT signing key: {0}")]
    Key(String),
    #[error("could not fetch the JWT signing key from Secrets Manager")]
    SecretsManager(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Derives a purpose-bound sub-key from the master key, so the token and cursor keys
/// are independent although one secret is stored.
fn derive_key(master: &[u8], purpose: &str) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(master).expect("HMAC takes any key length");
    mac.update(purpose.as_bytes());
    mac.finalize().into_bytes().into()
}

impl App {
    /// Builds the app from an already loaded master key (tests and the dev server).
    pub fn new(
        config: Config,
        client: aws_sdk_dynamodb::Client,
        master_key: &SecretBox<Vec<u8>>,
        clock: Clock,
    ) -> Self {
        let master = master_key.expose_secret();
        let token_key = derive_key(master, "ssi/jwt/v1");
        let cursor_key = derive_key(master, "ssi/cursor/v1");
        Self {
            store: Store::new(client, config.table_name.clone()),
            tokens: TokenService::new(
                &token_key,
                &config.jwt_issuer,
                &config.jwt_audience,
                config.access_token_ttl,
            ),
            cursors: CursorSealer::new(&cursor_key),
            clock,
            vault: None,
            config,
        }
    }

    /// The app with its credentials vault, when the configuration names a KMS key.
    pub async fn with_vault_from_config(mut self) -> Self {
        if let Some(key_id) = &self.config.kms_key_id {
            let key_pair = self
                .config
                .kms_key_pair
                .as_ref()
                .map(|(id, secret)| (id.as_str(), secret));
            let kms =
                crate::vault::kms_client(&self.config.region, self.config.kms_endpoint.as_deref(), key_pair).await;
            self.vault = Some(crate::vault::Vault::new(kms, key_id.clone()));
        }
        self
    }

    /// Everything a Lambda function needs, read once at init. Fails fast with a clear
    /// message when the configuration or the key is unusable.
    pub async fn from_env() -> Result<Arc<Self>, InitError> {
        let config = Config::from_env()?;
        let sdk = sdk_config(&config.region, config.dynamodb_endpoint.as_deref()).await;
        let key = load_key(&config, &sdk).await?;
        let client = aws_sdk_dynamodb::Client::new(&sdk);
        Ok(Arc::new(
            Self::new(config, client, &key, Clock::System)
                .with_vault_from_config()
                .await,
        ))
    }
}

impl App {
    /// For functions that serve only public routes: the configuration without a
    /// signing key source; an ephemeral random key stands in, which nothing uses.
    pub async fn public_from_env() -> Result<Arc<Self>, InitError> {
        let ephemeral: [u8; 32] = rand::random();
        let ephemeral = ephemeral.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let config = Config::from_lookup(|name| match name {
            "JWT_SECRET_ARN" | "JWT_SECRET_FILE" => None,
            "JWT_SECRET" => Some(ephemeral.clone()),
            other => std::env::var(other).ok().filter(|v| !v.trim().is_empty()),
        })?;
        let sdk = sdk_config(&config.region, config.dynamodb_endpoint.as_deref()).await;
        let key = SecretBox::new(Box::new(ephemeral.into_bytes()));
        let client = aws_sdk_dynamodb::Client::new(&sdk);
        Ok(Arc::new(Self::new(config, client, &key, Clock::System)))
    }
}

/// The SDK timeouts of every client (DynamoDB, Secrets Manager): see the constants above.
pub fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// The SDK retry policy of every client.
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(SDK_MAX_ATTEMPTS)
        .with_initial_backoff(SDK_INITIAL_BACKOFF)
}

/// The AWS SDK configuration: the real chain on AWS; a fixed region and dummy
/// credentials when `DYNAMODB_ENDPOINT` points at DynamoDB Local. Every client built
/// from it (the functions', `ssi-admin`'s, the tests') has the timeouts and retries above.
pub async fn sdk_config(region: &str, dynamodb_endpoint: Option<&str>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .timeout_config(timeout_config())
        .retry_config(retry_config());
    if let Some(endpoint) = dynamodb_endpoint {
        loader = loader
            .endpoint_url(endpoint)
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "local", "local", None, None, "local",
            ));
    }
    loader.load().await
}

/// Reads the master key from wherever the configuration says and checks its size.
pub async fn load_key(config: &Config, sdk: &aws_config::SdkConfig) -> Result<SecretBox<Vec<u8>>, InitError> {
    let secret: SecretString = match &config.jwt_key {
        KeySource::Inline(s) => s.clone(),
        KeySource::File(path) => std::fs::read_to_string(path)
            .map(|s| SecretString::from(s.trim().to_string()))
            .map_err(|e| InitError::Key(format!("JWT_SECRET_FILE {path}: {e}")))?,
        KeySource::SecretsManager(id) => {
            let out = aws_sdk_secretsmanager::Client::new(sdk)
                .get_secret_value()
                .secret_id(id)
                .send()
                .await
                .map_err(|e| InitError::SecretsManager(Box::new(e)))?;
            SecretString::from(
                out.secret_string()
                    .ok_or_else(|| InitError::Key("the secret has no string value".into()))?
                    .to_string(),
            )
        }
    };
    let bytes = secret.expose_secret().as_bytes().to_vec();
    if bytes.len() < MIN_KEY_BYTES {
        return Err(InitError::Key(format!(
            "the key must be at least {MIN_KEY_BYTES} bytes (256 bits); got {}",
            bytes.len()
        )));
    }
    Ok(SecretBox::new(Box::new(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_keys_differ_by_purpose() {
        let master = [1u8; 32];
        assert_ne!(derive_key(&master, "a"), derive_key(&master, "b"));
        assert_eq!(derive_key(&master, "a"), derive_key(&master, "a"));
    }

    #[tokio::test]
    async fn short_keys_are_refused() {
        let config = Config::from_lookup(|k| match k {
            "TABLE_NAME" => Some("t".into()),
            "JWT_SECRET" => Some("too-short".into()),
            _ => None,
        })
        .unwrap();
        let sdk = aws_config::SdkConfig::builder().build();
        let err = load_key(&config, &sdk).await.unwrap_err();
        assert!(err.to_string().contains("256 bits"), "{err}");
    }
}
