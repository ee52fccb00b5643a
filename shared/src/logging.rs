//! Structured JSON logs through `tracing`. Handlers log ids and outcomes, never
//! passwords, tokens or keys (those types do not implement `Debug` with their value).

use tracing_subscriber::EnvFilter;

/// Installs the JSON subscriber once; later calls are ignored (tests call it freely).
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .flatten_event(true)
        .with_span_list(false)
        .with_target(false)
        .try_init();
}
