//! `ssi-runner`: the provisioning runner.
//!
//! ```text
//! ssi-runner worker                     run due jobs until SIGINT/SIGTERM (local stack);
//!                                       with SMTP_PORT set, also deliver notifications
//! ssi-runner run-job --request-id ID    run one job, then exit (a CodeBuild build)
//! ssi-runner orphans [--json]           list orphaned states and resources, and
//!                                       requests whose state is missing (read-only);
//!                                       exit 0 clean, 2 orphans found, 1 error
//! ```
//! Settings come from the environment (see `runner::config`).

use runner::{orphans, worker::JobResult, Runner, RunnerConfig};
use std::process::ExitCode;
use tokio::sync::watch;

const USAGE: &str = "usage:\n  ssi-runner worker\n  ssi-runner run-job --request-id ID\n  ssi-runner orphans [--json]";

/// `ssi-runner orphans`: the report on standard output, notes and errors on standard
/// error.
async fn report_orphans(runner: &Runner, json: bool) -> ExitCode {
    match orphans::scan(runner.config(), runner.store()).await {
        Ok(report) => {
            for what in &report.not_checked {
                eprintln!("ssi-runner: orphans: not checked: {what}");
            }
            if json {
                println!("{}", orphans::render_json(&report));
            } else {
                print!("{}", orphans::render_text(&report));
            }
            if report.orphans.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            }
        }
        Err(e) => {
            let mut message = format!("ssi-runner: orphans: {e}");
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                message.push_str(&format!(": {c}"));
                cause = c.source();
            }
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // The orphan report owns standard output (its --json must parse); the JSON logs,
    // which go there too, are for the long-running commands.
    if args.first().map(String::as_str) != Some("orphans") {
        shared::logging::init();
    }
    let cfg = match RunnerConfig::from_env() {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("ssi-runner: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut runner = Runner::from_config(cfg).await;
    // Locally (`SMTP_PORT` set), the worker loop also delivers notifications.
    if args.first().map(String::as_str) == Some("worker") {
        let get = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        match notifier_function::smtp_from_lookup(runner.store().clone(), get) {
            Ok(Some(notifier)) => runner = runner.with_notifier(notifier),
            Ok(None) => {}
            Err(e) => {
                eprintln!("ssi-runner: {e}");
                return ExitCode::FAILURE;
            }
        }
    }

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
        Some("orphans") => match &args[1..] {
            [] => report_orphans(&runner, false).await,
            [flag] if flag == "--json" => report_orphans(&runner, true).await,
            _ => {
                eprintln!("ssi-runner: orphans takes only --json\n{USAGE}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!("{USAGE}");
            ExitCode::FAILURE
        }
    }
}
