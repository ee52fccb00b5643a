//! `provision-bench`: the time from approval to `ready` for a local postgres request,
//! split into the wait for a runner, the runner's own work and Terraform's.
//!
//! Needs DynamoDB Local (`DYNAMODB_ENDPOINT`), a local PostgreSQL and Terraform with
//! its provider mirror (the environment `scripts/bench.sh` sets up through
//! `scripts/provision-tools.sh`). Runs `BENCH_PROVISION_RUNS` (default 5) requests one
//! after another through one worker (`ssi-runner worker` code, polling every 100 ms).

use bench::{seed, stats::ms};
use runner::{config::passed_to_terraform, worker::Runner, RunnerConfig};
use shared::{
    clock::format_timestamp,
    domain::{audit::Origin, lifecycle, Actor},
    model::{RequestStatus, ResourceRequest, Transition},
};
use std::{
    process::ExitCode,
    time::{Duration, Instant},
};
use time::{format_description::well_known::Rfc3339, OffsetDateTime};
use uuid::Uuid;

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set (run through `make bench`)"))
}

fn at(ts: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(ts, &Rfc3339).map_err(|e| format!("timestamp {ts}: {e}"))
}

fn span(from: &str, to: &str) -> Result<Duration, String> {
    let d = at(to)? - at(from)?;
    Ok(Duration::try_from(d).unwrap_or_default())
}

struct Sample {
    total: Duration,
    pickup: Duration,
    runner: Duration,
    terraform: Duration,
}

fn summary(name: &str, mut values: Vec<Duration>) {
    values.sort();
    let median = values[values.len() / 2];
    println!(
        "{name:<34} min {:>9}  median {:>9}  max {:>9}",
        ms(values[0]),
        ms(median),
        ms(values[values.len() - 1])
    );
}

async fn run() -> Result<(), String> {
    let endpoint = env("DYNAMODB_ENDPOINT")?;
    let runs: usize = std::env::var("BENCH_PROVISION_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n >= 1)
        .unwrap_or(5);
    let table = format!("bench-provision-{}", Uuid::new_v4().simple());
    let app = seed::app(&endpoint, &table, &seed::random_secret()).await?;
    seed::create_table(&app).await?;
    let seeded = seed::seed(&app, 1, 1).await?;

    let root = std::env::temp_dir().join(format!("ssi-provision-bench-{}", Uuid::new_v4().simple()));
    let settings = [
        ("TABLE_NAME", table.clone()),
        ("DYNAMODB_ENDPOINT", endpoint.clone()),
        ("RUNNER_WORK_DIR", root.join("work").display().to_string()),
        ("RUNNER_STATE_DIR", root.join("state").display().to_string()),
        ("TF_PLUGIN_DIR", env("TF_PLUGIN_DIR")?),
        ("TERRAFORM_BIN", env("TERRAFORM_BIN")?),
        ("RUNNER_CONCURRENCY", "1".into()),
        ("RUNNER_POLL_MS", "100".into()),
        ("RUNNER_MAX_ATTEMPTS", "1".into()),
        ("KMS_KEY_ID", env("KMS_KEY_ID")?),
        ("KMS_ENDPOINT", env("KMS_ENDPOINT")?),
    ];
    let mut cfg = RunnerConfig::from_lookup(|k| settings.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()))
        .map_err(|e| e.to_string())?;
    cfg.terraform_env = std::env::vars().filter(|(k, _)| passed_to_terraform(k)).collect();
    let runner = Runner::from_config(cfg).await;
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(async move { runner.work(stop_rx).await });

    let mut samples = Vec::new();
    for i in 0..runs {
        let now = format_timestamp(OffsetDateTime::now_utc());
        let request = ResourceRequest {
            id: Uuid::new_v4(),
            team_id: seeded.big_team,
            requester_id: seeded.member.user.id,
            resource_type: "postgres".into(),
            name: format!("bench-{i}"),
            parameters: shared::catalog::validate(
                shared::catalog::find("postgres").ok_or("no postgres type")?,
                &serde_json::json!({}),
            )
            .map_err(|e| format!("{e:?}"))?,
            justification: "benchmark".into(),
            status: RequestStatus::Pending,
            created_at: now.clone(),
            updated_at: now.clone(),
            history: vec![Transition {
                from: None,
                to: RequestStatus::Pending,
                by: Actor::User(seeded.member.user.id),
                at: now,
                comment: None,
            }],
            provisioning: None,
            outputs: None,
            credentials: None,
            expires_at: None,
            estimated_monthly_cost: None,
            budget: None,
        };
        app.store
            .create_request(&request, &Origin::system(request.created_at.clone()))
            .await
            .map_err(|e| e.to_string())?;
        let approved_at = format_timestamp(OffsetDateTime::now_utc());
        let plan = lifecycle::plan_transition(
            &request,
            RequestStatus::Approved,
            Actor::User(seeded.admin.user.id),
            None,
            &approved_at,
        )
        .map_err(|e| e.to_string())?;
        let started = Instant::now();
        app.store
            .apply_transition(&request, &plan, &Origin::system(approved_at.clone()))
            .await
            .map_err(|e| e.to_string())?;
        let ready = loop {
            let r = app
                .store
                .get_request(request.id)
                .await
                .map_err(|e| e.to_string())?
                .ok_or("request gone")?;
            match r.status {
                RequestStatus::Ready => break r,
                RequestStatus::Failed => return Err(format!("run {i} failed: {:?}", r.provisioning)),
                _ if started.elapsed() > Duration::from_secs(120) => return Err(format!("run {i} took over 120 s")),
                _ => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        };
        let total = started.elapsed();
        let p = ready.provisioning.ok_or("no provisioning block")?;
        let finished = p.finished_at.ok_or("no finish time")?;
        let (logs, _) = app
            .store
            .list_job_logs(request.id, 100, None)
            .await
            .map_err(|e| e.to_string())?;
        let mut terraform = Duration::ZERO;
        for log in &logs {
            terraform += span(&log.started_at, &log.finished_at)?;
        }
        samples.push(Sample {
            total,
            pickup: span(&approved_at, &p.started_at)?,
            runner: span(&p.started_at, &finished)?.saturating_sub(terraform),
            terraform,
        });
        println!(
            "run {i}: approval → ready {}  (terraform {}, runner {})",
            ms(total),
            ms(terraform),
            ms(samples[i].runner)
        );
    }
    let _ = stop.send(true);
    let _ = worker.await;
    let _ = std::fs::remove_dir_all(&root);

    println!();
    summary("approval → ready (wall)", samples.iter().map(|s| s.total).collect());
    summary(
        "  wait for a runner (poll 100 ms)",
        samples.iter().map(|s| s.pickup).collect(),
    );
    summary(
        "  terraform init+plan+apply+output",
        samples.iter().map(|s| s.terraform).collect(),
    );
    summary("  runner's own work", samples.iter().map(|s| s.runner).collect());
    println!("(target: ready within 60 s of approval locally; {runs} runs, one at a time)");
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("provision-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
