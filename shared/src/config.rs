//! Typed configuration, read once at init from the environment. A missing or invalid
//! setting fails start-up with a message naming the variable.

use secrecy::SecretString;
use std::time::Duration;

/// Where the JWT signing key comes from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// AWS: a Secrets Manager secret id or ARN (`JWT_SECRET_ARN`), fetched once at init.
    SecretsManager(String),
    /// Local: the key itself (`JWT_SECRET`).
    Inline(SecretString),
    /// Local: a file holding the key (`JWT_SECRET_FILE`).
    File(String),
}

#[derive(Debug, Clone)]
pub struct Config {
    pub table_name: String,
    /// Set locally to reach DynamoDB Local; unset on AWS.
    pub dynamodb_endpoint: Option<String>,
    pub region: String,
    pub jwt_key: KeySource,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub access_token_ttl: Duration,
    /// The KMS key that protects delivered credentials (`KMS_KEY_ID`); unset: the
    /// credentials routes answer 503.
    pub kms_key_id: Option<String>,
    /// Locally, moto's endpoint for KMS (`KMS_ENDPOINT`); unset on AWS.
    pub kms_endpoint: Option<String>,
    /// Locally, the API's own KMS key pair (`KMS_ACCESS_KEY_ID`,
    /// `KMS_SECRET_ACCESS_KEY`: moto's decrypt-only user); unset on AWS, where the
    /// function's role is used.
    pub kms_key_pair: Option<(String, SecretString)>,
    /// Webhooks may be `http://` to a loopback address (`WEBHOOK_ALLOW_LOOPBACK=true`):
    /// the local configuration only (`make run`, the tests); never set in AWS.
    pub webhook_allow_loopback: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("configuration error: {var}: {problem}")]
pub struct ConfigError {
    pub var: &'static str,
    pub problem: String,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
    }

    /// Reads settings through `get`, so tests can supply their own environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let table_name = get("TABLE_NAME").ok_or(ConfigError {
            var: "TABLE_NAME",
            problem: "must be set to the DynamoDB table name".into(),
        })?;
        let jwt_key = if let Some(arn) = get("JWT_SECRET_ARN") {
            KeySource::SecretsManager(arn)
        } else if let Some(secret) = get("JWT_SECRET") {
            KeySource::Inline(SecretString::from(secret))
        } else if let Some(path) = get("JWT_SECRET_FILE") {
            KeySource::File(path)
        } else {
            return Err(ConfigError {
                var: "JWT_SECRET_ARN",
                problem: "no signing key: set JWT_SECRET_ARN (AWS), JWT_SECRET or JWT_SECRET_FILE (local)".into(),
            });
        };
        let ttl_minutes = match get("ACCESS_TOKEN_TTL_MINUTES") {
            None => 60,
            Some(v) => v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|m| (1..=24 * 60).contains(m))
                .ok_or(ConfigError {
                    var: "ACCESS_TOKEN_TTL_MINUTES",
                    problem: format!("`{v}` is not a whole number of minutes between 1 and 1440"),
                })?,
        };
        Ok(Self {
            table_name,
            dynamodb_endpoint: get("DYNAMODB_ENDPOINT"),
            region: get("AWS_REGION").unwrap_or_else(|| "us-east-1".into()),
            jwt_key,
            jwt_issuer: get("JWT_ISSUER").unwrap_or_else(|| "ssi-api".into()),
            jwt_audience: get("JWT_AUDIENCE").unwrap_or_else(|| "ssi-api".into()),
            access_token_ttl: Duration::from_secs(ttl_minutes * 60),
            kms_key_id: get("KMS_KEY_ID"),
            kms_endpoint: get("KMS_ENDPOINT"),
            kms_key_pair: get("KMS_ACCESS_KEY_ID").zip(get("KMS_SECRET_ACCESS_KEY").map(SecretString::from)),
            webhook_allow_loopback: get("WEBHOOK_ALLOW_LOOPBACK").is_some_and(|v| v.trim() == "true"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn missing_table_name_names_the_variable() {
        let err = Config::from_lookup(lookup(&[("JWT_SECRET", "x")])).unwrap_err();
        assert_eq!(err.var, "TABLE_NAME");
    }

    #[test]
    fn missing_key_source_fails_fast() {
        let err = Config::from_lookup(lookup(&[("TABLE_NAME", "t")])).unwrap_err();
        assert!(err.to_string().contains("JWT_SECRET"), "{err}");
    }

    #[test]
    fn defaults_apply() {
        let c = Config::from_lookup(lookup(&[("TABLE_NAME", "t"), ("JWT_SECRET_FILE", "/k")])).unwrap();
        assert_eq!(c.access_token_ttl, Duration::from_secs(3600));
        assert_eq!(c.jwt_issuer, "ssi-api");
        assert!(matches!(c.jwt_key, KeySource::File(_)));
    }

    #[test]
    fn bad_ttl_is_rejected() {
        let err = Config::from_lookup(lookup(&[
            ("TABLE_NAME", "t"),
            ("JWT_SECRET", "k"),
            ("ACCESS_TOKEN_TTL_MINUTES", "soon"),
        ]))
        .unwrap_err();
        assert_eq!(err.var, "ACCESS_TOKEN_TTL_MINUTES");
    }
}
