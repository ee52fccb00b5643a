//! The provisioning runner. It claims a queued job (a lease in DynamoDB, so two
//! runners never run the same job and a dead runner's job is taken over when its lease
//! expires), renders the request's Terraform module into a private working directory,
//! runs `init` (offline, from a provider mirror), `plan -out`, `apply` of that plan
//! and `output -json`, and records the non-secret outputs and the redacted logs.
//!
//! Two ways to run it, the same code underneath:
//! - `ssi-runner worker`: a loop that finds due jobs itself (local stack, tests);
//! - `ssi-runner run-job --request-id ID`: one job, then exit (a CodeBuild build
//!   started by the dispatcher in AWS).
//!
//! `ssi-runner orphans` ([`orphans`]) lists states and resources whose request is gone
//! or ended, and ready requests whose state is missing: the runner is the one part of
//! the platform that can read the states, the engines and the targets.
//!
//! It sits beside the API's entry points: it uses the shared domain and store, and
//! nothing of HTTP.

pub mod config;
pub mod job;
pub mod orphans;
pub mod secrets;
pub mod terraform;
pub mod worker;

pub use config::RunnerConfig;
pub use worker::Runner;
