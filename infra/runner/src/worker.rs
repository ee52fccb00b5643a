//! Claiming and running jobs: one job (`run_job`, as a CodeBuild build does) or a
//! loop over every due job with bounded concurrency (`work`, the local worker).
//! While Terraform runs, the lease is renewed; a runner that cannot renew it stops
//! its Terraform and records nothing, because another runner may have taken over.

use crate::{
    config::RunnerConfig,
    job::{self, Execution},
};
use shared::{
    clock::format_timestamp,
    store::{Claim, ClaimedJob, RunOutcome, Store, StoreError},
    vault::Vault,
};
use std::{collections::HashSet, sync::Arc, time::Duration};
use tokio::{sync::watch, task::JoinSet};
use uuid::Uuid;

/// How often the worker loop looks for teams whose spend reached a budget threshold.
const BUDGET_SWEEP_EVERY: Duration = Duration::from_secs(60);

/// How a job ended for this runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobResult {
    /// Not due, finished, or held by another runner.
    NotAvailable,
    Ready,
    /// Destroyed; the request is `deleted`.
    Deleted,
    /// It failed and will run again at the given time.
    RetryScheduled(String),
    /// It failed and was given up; the request is `failed`.
    Failed(String),
    /// It must not run (team deleted, request not approved); the request is `failed`.
    Abandoned(String),
    /// This runner lost the lease (another runner took over) or stopped: nothing
    /// recorded.
    Interrupted,
}

/// Attempts to write a run's outcome when DynamoDB is briefly unavailable; after that
/// the lease expires and a later run converges on the same state.
const OUTCOME_WRITES: u32 = 5;

fn timestamp_in(d: Duration) -> String {
    format_timestamp(time::OffsetDateTime::now_utc() + d)
}

/// The current time, as stored timestamps are written.
pub(crate) fn now() -> String {
    timestamp_in(Duration::ZERO)
}

#[derive(Clone)]
pub struct Runner {
    cfg: Arc<RunnerConfig>,
    store: Store,
    vault: Vault,
    owner: String,
    /// Locally, the notifier (SMTP to the local sink) that runs beside the jobs in
    /// [`Runner::work`]; in AWS the `notifier` function does this.
    notifier: Option<Arc<notifier_function::Notifier<notifier_function::Smtp>>>,
}

impl Runner {
    pub fn new(cfg: RunnerConfig, store: Store, vault: Vault) -> Self {
        let owner = format!(
            "runner-{}-{}",
            std::process::id(),
            &Uuid::new_v4().simple().to_string()[..8]
        );
        Self {
            cfg: Arc::new(cfg),
            store,
            vault,
            owner,
            notifier: None,
        }
    }

    /// The worker loop also delivers notifications, with `notifier`.
    pub fn with_notifier(mut self, notifier: notifier_function::Notifier<notifier_function::Smtp>) -> Self {
        self.notifier = Some(Arc::new(notifier));
        self
    }

    /// A runner over the table and the KMS key its configuration names.
    pub async fn from_config(cfg: RunnerConfig) -> Self {
        let sdk = shared::app::sdk_config(&cfg.region, cfg.dynamodb_endpoint.as_deref()).await;
        let store = Store::new(aws_sdk_dynamodb::Client::new(&sdk), cfg.table_name.clone());
        let kms = shared::vault::kms_client(&cfg.region, cfg.kms_endpoint.as_deref(), None).await;
        let vault = Vault::new(kms, cfg.kms_key_id.clone());
        Self::new(cfg, store, vault)
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub fn config(&self) -> &RunnerConfig {
        &self.cfg
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The back-off before run `attempts + 1`: `retry_backoff`, doubled per run, at
    /// most an hour.
    fn backoff(&self, attempts: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempts.saturating_sub(1)).min(120);
        (self.cfg.retry_backoff * factor).min(Duration::from_secs(3600))
    }

    /// Claims and runs the job of `request_id` once. `stop` turning true interrupts it.
    pub async fn run_job(&self, request_id: Uuid, stop: watch::Receiver<bool>) -> Result<JobResult, StoreError> {
        let claimed = match self
            .store
            .claim_job(request_id, &self.owner, &now(), &timestamp_in(self.cfg.lease))
            .await?
        {
            Claim::Claimed(claimed) => claimed,
            Claim::NotAvailable => return Ok(JobResult::NotAvailable),
            Claim::TeamGone(job) => {
                let why = "the team was deleted before provisioning ran; nothing was provisioned by this run";
                self.store.abandon_job(&job, why, &now()).await?;
                tracing::warn!(%request_id, "job abandoned: team gone");
                return Ok(JobResult::Abandoned(why.into()));
            }
            Claim::RequestNotRunnable(job, status) => {
                let why = format!(
                    "the request is {}; its {} job does not run for it",
                    status.map_or("gone", |s| s.as_str()),
                    job.operation.as_str()
                );
                self.store.abandon_job(&job, &why, &now()).await?;
                tracing::warn!(%request_id, "job abandoned: request not runnable");
                return Ok(JobResult::Abandoned(why));
            }
        };
        tracing::info!(%request_id, attempt = claimed.job.attempts, owner = %self.owner, "job claimed");

        let (cancel_tx, cancel_rx) = watch::channel(false);
        let heartbeat = tokio::spawn(heartbeat(
            self.store.clone(),
            (*claimed).clone(),
            self.owner.clone(),
            self.cfg.lease,
            cancel_tx,
            stop.clone(),
        ));
        let execution = job::execute(&self.cfg, &self.store, &claimed, cancel_rx).await;
        heartbeat.abort();

        let outcome = match execution {
            Execution::Applied { outputs, credentials } => {
                let version = claimed.request.credentials.as_ref().map_or(1, |c| c.version + 1);
                match self
                    .vault
                    .seal(request_id, claimed.job.team_id, version, &now(), &credentials)
                    .await
                {
                    Ok(sealed) => RunOutcome::Succeeded {
                        outputs,
                        credentials: Box::new(sealed),
                    },
                    // Not stored, so not delivered: the run counts as failed (a retry
                    // applies again with new secrets).
                    Err(e) => {
                        tracing::warn!(%request_id, error = %e, cause = ?std::error::Error::source(&e), "could not seal the credentials");
                        RunOutcome::Failed {
                            error: format!("the credentials could not be encrypted: {e}"),
                            retry_at: (claimed.job.attempts < self.cfg.max_attempts)
                                .then(|| timestamp_in(self.backoff(claimed.job.attempts))),
                        }
                    }
                }
            }
            Execution::Destroyed => RunOutcome::Destroyed,
            Execution::Failed(error) => {
                let retry_at = (claimed.job.attempts < self.cfg.max_attempts)
                    .then(|| timestamp_in(self.backoff(claimed.job.attempts)));
                RunOutcome::Failed { error, retry_at }
            }
            Execution::Cancelled => {
                if *stop.borrow() {
                    // Stopping: give the job back so the next runner starts it at once.
                    let released = self.store.release_job(&claimed.job, &self.owner, &now()).await;
                    tracing::info!(%request_id, released = ?released, "job given back on stop");
                } else {
                    tracing::warn!(%request_id, "lease lost; run abandoned without an outcome");
                }
                return Ok(JobResult::Interrupted);
            }
        };
        self.record(&claimed, &outcome).await
    }

    async fn record(&self, claimed: &ClaimedJob, outcome: &RunOutcome) -> Result<JobResult, StoreError> {
        let request_id = claimed.job.request_id;
        let mut tries = 0;
        let written = loop {
            tries += 1;
            match self.store.finish_job(claimed, &self.owner, outcome, &now()).await {
                Ok(written) => break written,
                Err(e) if tries < OUTCOME_WRITES => {
                    tracing::warn!(%request_id, error = %e, "could not record the outcome; trying again");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(tries))).await;
                }
                Err(e) => return Err(e),
            }
        };
        if !written {
            tracing::warn!(%request_id, "lease lost before the outcome was recorded");
            return Ok(JobResult::Interrupted);
        }
        let result = match outcome {
            RunOutcome::Succeeded { .. } => JobResult::Ready,
            RunOutcome::Destroyed => JobResult::Deleted,
            RunOutcome::Failed {
                error,
                retry_at: Some(at),
            } => {
                tracing::warn!(%request_id, retry_at = %at, error = %error, "run failed; will retry");
                JobResult::RetryScheduled(error.clone())
            }
            RunOutcome::Failed { error, retry_at: None } => JobResult::Failed(error.clone()),
        };
        tracing::info!(%request_id, result = ?std::mem::discriminant(&result), "job finished");
        Ok(result)
    }

    /// Runs due jobs, at most `concurrency` at a time, until `stop` turns true; then
    /// interrupts the running ones (they give their jobs back) and returns.
    pub async fn work(&self, mut stop: watch::Receiver<bool>) {
        let mut running: JoinSet<Uuid> = JoinSet::new();
        let mut active: HashSet<Uuid> = HashSet::new();
        tracing::info!(owner = %self.owner, concurrency = self.cfg.concurrency, "worker started");
        // Notifications go out beside the jobs, in their own task: a mail server that
        // is down delays mail only, never a job.
        let notifier = self.notifier.clone().map(|n| {
            let stop = stop.clone();
            tokio::spawn(async move { n.work(stop).await })
        });
        // Budget notices need a team-by-team read: once a minute is enough.
        let mut budgets_checked: Option<std::time::Instant> = None;
        loop {
            while let Some(done) = running.try_join_next() {
                if let Ok(id) = done {
                    active.remove(&id);
                }
            }
            if *stop.borrow() {
                break;
            }
            // Expired resources start their deletion here (in AWS: the dispatcher's
            // schedule); their destroy jobs are then due like any other.
            match shared::expiry::sweep(&self.store, &now()).await {
                Ok(sweep) if !sweep.deleting.is_empty() || !sweep.cancelled.is_empty() => {
                    tracing::info!(
                        deleting = sweep.deleting.len(),
                        cancelled = sweep.cancelled.len(),
                        "expiry sweep"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "could not sweep expired requests"),
            }
            if budgets_checked.is_none_or(|at| at.elapsed() >= BUDGET_SWEEP_EVERY) {
                budgets_checked = Some(std::time::Instant::now());
                if let Err(e) = shared::budget_alerts::sweep(&self.store, time::OffsetDateTime::now_utc()).await {
                    tracing::warn!(error = %e, "could not check the teams' budgets");
                }
            }
            let free = self.cfg.concurrency.saturating_sub(running.len());
            if free > 0 {
                match self.store.due_jobs(&now(), free * 2).await {
                    Ok(due) => {
                        let fresh: Vec<Uuid> = due.into_iter().filter(|id| !active.contains(id)).take(free).collect();
                        for id in fresh {
                            active.insert(id);
                            let (runner, stop) = (self.clone(), stop.clone());
                            running.spawn(async move {
                                if let Err(e) = runner.run_job(id, stop).await {
                                    tracing::warn!(request_id = %id, error = %e, "job run failed on the store");
                                }
                                id
                            });
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "could not look for due jobs"),
                }
            }
            tokio::select! {
                () = tokio::time::sleep(self.cfg.poll) => {}
                _ = stop.changed() => {}
                Some(done) = running.join_next(), if !running.is_empty() => {
                    if let Ok(id) = done {
                        active.remove(&id);
                    }
                }
            }
        }
        while running.join_next().await.is_some() {}
        if let Some(notifier) = notifier {
            let _ = notifier.await;
        }
        tracing::info!(owner = %self.owner, "worker stopped");
    }
}

/// Renews the lease every third of its length; cancels the run when the lease is
/// lost, or when the runner is stopping.
async fn heartbeat(
    store: Store,
    claimed: ClaimedJob,
    owner: String,
    lease: Duration,
    cancel: watch::Sender<bool>,
    mut stop: watch::Receiver<bool>,
) {
    let mut job = claimed.job;
    let every = lease / 3;
    loop {
        if *stop.borrow() {
            let _ = cancel.send(true);
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stop.changed() => continue,
        }
        match store.renew_lease(&mut job, &owner, &timestamp_in(lease)).await {
            Ok(true) => {}
            Ok(false) => {
                let _ = cancel.send(true);
                return;
            }
            // DynamoDB unavailable: keep trying; if the lease runs out meanwhile, the
            // next renewal says so.
            Err(e) => tracing::warn!(request_id = %job.request_id, error = %e, "could not renew the lease"),
        }
    }
}
