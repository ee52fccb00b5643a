//! Structured JSON logs through `tracing`. Handlers log ids and outcomes, never
//! passwords, tokens or keys (`User`'s `Debug` leaves the hash out).

use tracing_subscriber::EnvFilter;

/// Dependencies that log whole HTTP bodies at debug/trace level (DynamoDB items hold
/// password hashes; Secrets Manager answers hold the key). Capped whatever
/// `RUST_LOG` says, so raising the log level can never leak a secret.
const CAPPED: &[&str] = &[
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http",
    "aws_smithy_http_client",
    "aws_sdk_dynamodb",
    "aws_sdk_secretsmanager",
    "aws_config",
    "hyper",
    "hyper_util",
    "h2",
    "rustls",
    "lambda_runtime",
    "lambda_http",
];

/// The log filter: `RUST_LOG` (default `info`), with [`CAPPED`] targets at `info` at most.
pub fn filter(default: &str) -> EnvFilter {
    let base = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string());
    CAPPED.iter().fold(EnvFilter::new(base), |filter, target| {
        match format!("{target}=info").parse() {
            Ok(directive) => filter.add_directive(directive),
            Err(_) => filter,
        }
    })
}

/// Installs the JSON subscriber once; later calls are ignored (tests call it freely).
pub fn init() {
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter("info"))
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_target(false)
        .try_init();
}
