//! `ssi-runner`: the provisioning runner.
//!
//! ```text
//! ssi-runner worker                     run due jobs until SIGINT/SIGTERM (local stack)
//! ssi-runner run-job --request-id ID    run one job, then exit (a CodeBuild build)
//! ```
//! Settings come from the environment (see `runner::config`).

use runner::{worker::JobResult, Runner, RunnerConfig};
use std::process::ExitCode;
use tokio::sync::watch;

const USAGE: &str = "usage:\n  ssi-runner worker\n  ssi-runner run-job --request-id ID";

#[tokio::main]
async fn main() -> ExitCode {
    shared::logging::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cfg = match RunnerConfig::from_env() {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("ssi-runner: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runner = Runner::from_config(cfg).await;

    let (stop_tx, stop) = watch::channel(false);
    tokio::spawn(async move {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => return,
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        let _ = stop_tx.send(true);
    });

    match args.first().map(String::as_str) {
        Some("worker") => {
            runner.work(stop).await;
            ExitCode::SUCCESS
        }
        Some("run-job") => {
            let id = args
                .iter()
                .position(|a| a == "--request-id")
                .and_then(|i| args.get(i + 1))
                .and_then(|raw| uuid::Uuid::parse_str(raw).ok());
            let Some(id) = id else {
                eprintln!("ssi-runner: run-job needs --request-id with a UUID\n{USAGE}");
                return ExitCode::FAILURE;
            };
            match runner.run_job(id, stop).await {
                Ok(result) => {
                    println!("ssi-runner: {id}: {result:?}");
                    match result {
                        JobResult::Ready
                        | JobResult::Deleted
                        | JobResult::NotAvailable
                        | JobResult::RetryScheduled(_) => ExitCode::SUCCESS,
                        _ => ExitCode::FAILURE,
                    }
                }
                Err(e) => {
                    eprintln!("ssi-runner: {id}: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::FAILURE
        }
    }
}
