//! The benchmark harness behind `make bench` (see `docs/performance.md`):
//!
//! - `lambda-bench` runs the real release binaries of the functions under an emulated
//!   Lambda Runtime API ([`runtime_api`]), with a timing proxy ([`ddb_proxy`]) between
//!   them and DynamoDB Local, and reports init time, latency, our code's share of it,
//!   DynamoDB round trips and peak memory per route;
//! - `load-bench` drives the dev server with concurrent connections;
//! - `micro-bench` times the hot pieces of the shared crate.
//!
//! Every figure is printed beside its target ([`targets`]) as PASS or MISS. Nothing
//! here is a test with a time limit: the tests in this crate check the arithmetic.

pub mod ddb_proxy;
pub mod event;
pub mod runtime_api;
pub mod seed;
pub mod stats;
pub mod targets;

/// An environment variable parsed as a number, or `default` when unset or empty.
///
/// # Panics
/// When it is set to something that is not a number: a usage error.
pub fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a number")),
        _ => default,
    }
}

/// A required environment variable.
pub fn env_required(name: &str) -> Result<String, String> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| format!("{name} must be set (scripts/bench.sh sets it; run `make bench`)"))
}

/// `PASS` or `MISS`.
pub fn verdict(pass: bool) -> &'static str {
    if pass {
        "PASS"
    } else {
        "MISS"
    }
}

/// One checked figure: `[PASS] what   measured   (target ...)`.
pub fn check_line(pass: bool, what: &str, measured: &str, target: &str) -> String {
    format!("[{}] {what:<46} {measured:>24}   target {target}", verdict(pass))
}
