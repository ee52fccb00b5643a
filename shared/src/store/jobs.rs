//! Provisioning jobs: the runner's claim (a lease with an expiry and an attempt
//! count), lease renewal, the outcome of a run, the admin's retry, and the redacted
//! Terraform logs of each attempt.
//!
//! Every write here is conditional on what the writer holds: a claim on the job being
//! due, a renewal or an outcome on still holding the lease. A runner that lost its
//! lease (it hung, or was presumed dead) can no longer change anything.

use super::{from_item, keys, s, Expr, Item, KeyCondition, QueryPage, Store, StoreError, Stored, Tx};
use crate::{
    domain::{
        audit::{Action, AuditEvent, Origin, Target},
        lifecycle, Actor, Requeue,
    },
    model::{
        CredentialsInfo, JobLog, JobOperation, JobStatus, ProvisioningInfo, ProvisioningJob, RequestStatus,
        ResourceRequest, Transition,
    },
    notify,
    vault::SealedCredentials,
};
use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The item of a job; only jobs that need attention (queued, running) are indexed.
pub(crate) fn job_item(job: &ProvisioningJob) -> Result<Item, StoreError> {
    let stored = Stored::new(keys::JOB, keys::job(job.request_id), job);
    let stored = match job.status {
        JobStatus::Queued | JobStatus::Running => {
            stored.indexed(keys::jobs_by_status(job.status.as_str(), &job.due_at, job.request_id))
        }
        JobStatus::Succeeded | JobStatus::Failed => stored,
    };
    stored.to_item()
}

/// The request's provisioning block as a run of `job` ends at `now` (one is made
/// when the request never had a claim).
/// The audit event of a run's outcome (by the system): the request's move, or for a
/// run that changes no status (a rotation, a failure to be retried) what happened.
fn outcome_event(claimed: &ClaimedJob, outcome: &RunOutcome, to: RequestStatus, now: &str) -> AuditEvent {
    let ClaimedJob { job, request } = claimed;
    let origin = Origin::system(now);
    let event = match outcome {
        RunOutcome::Succeeded { credentials, .. } if job.operation == JobOperation::Rotate => origin
            .event(Action::CredentialsRotated, Target::request(request.id))
            .fact("version", credentials.version),
        RunOutcome::Succeeded { credentials, .. } => origin
            .transition(request, to, None)
            .fact("credentials_version", credentials.version),
        RunOutcome::Destroyed => origin.transition(request, to, None),
        RunOutcome::Failed { error, retry_at } if to != request.status => {
            origin.transition(request, to, Some(error)).fact("retry_at", retry_at)
        }
        RunOutcome::Failed { error, retry_at } => origin
            .event(Action::RunFailed, Target::request(request.id))
            .fact("error", error)
            .fact("retry_at", retry_at)
            .fact("gave_up", retry_at.is_none()),
    };
    event
        .team(Some(request.team_id))
        .fact("operation", job.operation)
        .fact("attempt", job.attempts)
}

fn ended_provisioning(request: &ResourceRequest, job: &ProvisioningJob, now: &str) -> ProvisioningInfo {
    let mut info = request.provisioning.clone().unwrap_or_else(|| ProvisioningInfo {
        operation: job.operation,
        attempt: job.attempts,
        started_at: now.to_string(),
        finished_at: None,
        error: None,
        next_attempt_at: None,
        gave_up: false,
    });
    info.finished_at = Some(now.to_string());
    info
}

/// Appends to `tx` the re-queue of a request's job for `requeue.operation`: due at
/// `now`, attempts from zero, no lease; on the condition that the job is in one of
/// `requeue.when_job_is` (never one that is running).
pub(super) fn requeue_job<'a>(
    tx: Tx<'a>,
    request_id: Uuid,
    requeue: &Requeue,
    now: &str,
) -> Result<Tx<'a>, StoreError> {
    let keys::IndexKey {
        pk: gsi1pk, sk: gsi1sk, ..
    } = keys::jobs_by_status(JobStatus::Queued.as_str(), now, request_id);
    let mut expr = Expr::new()
        .name("#status", "status")
        .name("#operation", "operation")
        .value(":queued", s(JobStatus::Queued.as_str()))
        .value(":operation", s(requeue.operation.as_str()))
        .value(":zero", super::n(0))
        .value(":now", s(now))
        .value(":gsi1pk", s(gsi1pk))
        .value(":gsi1sk", s(gsi1sk));
    let mut allowed = Vec::new();
    for (i, status) in requeue.when_job_is.iter().enumerate() {
        let name = format!(":allowed{i}");
        expr = expr.value(&name, s(status.as_str()));
        allowed.push(name);
    }
    tx.update(
        &keys::job(request_id),
        "SET #status = :queued, #operation = :operation, attempts = :zero, due_at = :now, GSI1PK = :gsi1pk, GSI1SK = :gsi1sk REMOVE lease_owner, last_error",
        Some(&format!("#status IN ({})", allowed.join(", "))),
        expr,
    )
}

fn credentials_item(sealed: &SealedCredentials) -> Result<Item, StoreError> {
    Stored::new(keys::CREDENTIALS, keys::credentials(sealed.request_id), sealed).to_item()
}

/// A job the caller now holds, with its request as it was moved to `provisioning`.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub job: ProvisioningJob,
    pub request: ResourceRequest,
}

/// How a claim ended.
#[derive(Debug)]
pub enum Claim {
    Claimed(Box<ClaimedJob>),
    /// Someone else holds it, it is not due, or it is finished: nothing to do.
    NotAvailable,
    /// The request's team is gone or being deleted: the job must not run.
    TeamGone(ProvisioningJob),
    /// The request is in no status a job may run in (it was never approved, or it
    /// moved on): the job must not run.
    RequestNotRunnable(ProvisioningJob, Option<RequestStatus>),
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub enum RunOutcome {
    /// Applied: the non-secret outputs of the module, and the credentials (sealed).
    Succeeded {
        outputs: serde_json::Map<String, serde_json::Value>,
        credentials: Box<SealedCredentials>,
    },
    /// Destroyed: the state is empty; the request becomes `deleted`.
    Destroyed,
    /// Failed; `retry_at` when it will run again (back-off), `None` when it gave up.
    Failed { error: String, retry_at: Option<String> },
}

#[derive(Serialize, Deserialize)]
struct LogRecord {
    request_id: Uuid,
    #[serde(flatten)]
    log: JobLog,
}

fn attr<T: Serialize>(value: &T) -> Result<AttributeValue, StoreError> {
    Ok(serde_dynamo::to_attribute_value(value)?)
}

impl Store {
    pub async fn get_job(&self, request_id: Uuid) -> Result<Option<ProvisioningJob>, StoreError> {
        self.get(&keys::job(request_id)).await?.map(from_item).transpose()
    }

    /// Jobs that may be claimed at `now`: queued ones whose time has come, and running
    /// ones whose lease has expired (their runner died or hung). Oldest first, at most
    /// `limit` of each kind.
    pub async fn due_jobs(&self, now: &str, limit: usize) -> Result<Vec<Uuid>, StoreError> {
        let mut due = Vec::new();
        for status in [JobStatus::Queued, JobStatus::Running] {
            let out = self
                .client()
                .query()
                .table_name(self.table())
                .index_name(keys::Index::Gsi1.name())
                .key_condition_expression("GSI1PK = :pk AND GSI1SK < :before")
                .expression_attribute_values(":pk", s(keys::jobs_by_status_pk(status.as_str())))
                .expression_attribute_values(":before", s(keys::jobs_due_before(now)))
                .limit(i32::try_from(limit).unwrap_or(i32::MAX))
                .send()
                .await
                .map_err(super::classify)?;
            for item in out.items.unwrap_or_default() {
                let job: ProvisioningJob = from_item(item)?;
                due.push(job.request_id);
            }
        }
        Ok(due)
    }

    /// Claims the job of `request_id` for `owner` until `lease_until`, if it is due,
    /// and moves its request to `provisioning` in the same transaction (an approved
    /// request gets the step in its history by the system; a request already
    /// provisioning, after a retry or a taken-over lease, just counts the attempt).
    pub async fn claim_job(
        &self,
        request_id: Uuid,
        owner: &str,
        now: &str,
        lease_until: &str,
    ) -> Result<Claim, StoreError> {
        let Some(job) = self.get_job(request_id).await? else {
            return Ok(Claim::NotAvailable);
        };
        let due = match job.status {
            JobStatus::Queued => job.due_at.as_str() <= now,
            JobStatus::Running => job.due_at.as_str() < now,
            JobStatus::Succeeded | JobStatus::Failed => false,
        };
        if !due {
            return Ok(Claim::NotAvailable);
        }
        // An apply runs for an approved request (or one already provisioning: a retry,
        // a taken-over lease); a rotation for a ready one, which stays ready; a destroy
        // for a deleting one, which stays deleting until it has succeeded.
        let runnable = |status: RequestStatus| match job.operation {
            JobOperation::Apply => matches!(status, RequestStatus::Approved | RequestStatus::Provisioning),
            JobOperation::Rotate => status == RequestStatus::Ready,
            JobOperation::Destroy => status == RequestStatus::Deleting,
        };
        let request = match self.get_request(request_id).await? {
            Some(r) if runnable(r.status) => r,
            other => return Ok(Claim::RequestNotRunnable(job, other.map(|r| r.status))),
        };
        let attempt = job.attempts + 1;
        let run = job.runs + 1;
        let info = ProvisioningInfo {
            operation: job.operation,
            attempt,
            started_at: now.to_string(),
            finished_at: None,
            error: None,
            next_attempt_at: None,
            gave_up: false,
        };
        let keys::IndexKey {
            pk: gsi1pk, sk: gsi1sk, ..
        } = keys::jobs_by_status(JobStatus::Running.as_str(), lease_until, request_id);
        let mut step = None;
        let (request_update, request_expr) = match job.operation {
            JobOperation::Rotate => (
                "SET updated_at = :now".to_string(),
                Expr::new()
                    .name("#status", "status")
                    .value(":from", s(request.status.as_str()))
                    .value(":now", s(now)),
            ),
            JobOperation::Destroy => (
                "SET updated_at = :now, #provisioning = :info".to_string(),
                Expr::new()
                    .name("#status", "status")
                    .name("#provisioning", "provisioning")
                    .value(":from", s(request.status.as_str()))
                    .value(":now", s(now))
                    .value(":info", attr(&info)?),
            ),
            JobOperation::Apply => {
                let keys::IndexKey { pk: req_gsi1pk, .. } =
                    keys::requests_by_status(RequestStatus::Provisioning.as_str(), &request.created_at, request.id);
                let mut update =
                    "SET #status = :provisioning, GSI1PK = :gsi1pk, updated_at = :now, #provisioning = :info"
                        .to_string();
                let mut expr = Expr::new()
                    .name("#status", "status")
                    .name("#provisioning", "provisioning")
                    .value(":provisioning", s(RequestStatus::Provisioning.as_str()))
                    .value(":from", s(request.status.as_str()))
                    .value(":gsi1pk", s(req_gsi1pk))
                    .value(":now", s(now))
                    .value(":info", attr(&info)?);
                if request.status == RequestStatus::Approved {
                    let first = Transition {
                        from: Some(RequestStatus::Approved),
                        to: RequestStatus::Provisioning,
                        by: Actor::System,
                        at: now.to_string(),
                        comment: None,
                    };
                    update.push_str(", history = list_append(history, :step)");
                    expr = expr.value(":step", attr(&vec![&first])?);
                    step = Some(first);
                }
                (update, expr)
            }
        };
        let mut tx = Tx::new(self)
            .update(
                &keys::job(request_id),
                "SET #status = :running, lease_owner = :owner, due_at = :lease, attempts = :attempt, runs = :run, GSI1PK = :gsi1pk, GSI1SK = :gsi1sk",
                Some("#status = :was AND due_at = :due AND attempts = :prev"),
                Expr::new()
                    .name("#status", "status")
                    .value(":running", s(JobStatus::Running.as_str()))
                    .value(":was", s(job.status.as_str()))
                    .value(":due", s(&job.due_at))
                    .value(":owner", s(owner))
                    .value(":lease", s(lease_until))
                    .value(":attempt", super::n(attempt))
                    .value(":prev", super::n(job.attempts))
                    .value(":run", super::n(run))
                    .value(":gsi1pk", s(gsi1pk))
                    .value(":gsi1sk", s(gsi1sk)),
            )?
            .update(
                &keys::request(request_id),
                &request_update,
                Some("#status = :from"),
                request_expr,
            )?;
        // Nothing is created for a team that is gone; what a gone team left behind is
        // still destroyed.
        if job.operation != JobOperation::Destroy {
            tx = tx.check(
                &keys::team(job.team_id),
                "attribute_exists(PK) AND attribute_not_exists(deleting)",
                Expr::new(),
            )?;
        }
        let mut event = Origin::system(now)
            .event(Action::RunStarted, Target::request(request_id))
            .team(Some(request.team_id))
            .fact("operation", job.operation)
            .fact("attempt", attempt)
            .fact("run", run);
        if step.is_some() {
            event = event.changed("status", request.status, RequestStatus::Provisioning);
        }
        match self.commit(tx.audit(event)).await {
            Ok(()) => {
                let mut job = job;
                job.status = JobStatus::Running;
                job.lease_owner = Some(owner.to_string());
                job.due_at = lease_until.to_string();
                job.attempts = attempt;
                job.runs = run;
                let mut request = request;
                request.updated_at = now.to_string();
                match job.operation {
                    JobOperation::Apply => {
                        request.status = RequestStatus::Provisioning;
                        request.provisioning = Some(info);
                    }
                    JobOperation::Destroy => request.provisioning = Some(info),
                    JobOperation::Rotate => {}
                }
                request.history.extend(step);
                Ok(Claim::Claimed(Box::new(ClaimedJob { job, request })))
            }
            Err(e) if e.failed_at(0) || e.failed_at(1) => Ok(Claim::NotAvailable),
            Err(e) if e.failed_at(2) => Ok(Claim::TeamGone(job)),
            Err(e) => Err(e),
        }
    }

    /// Extends the lease of a running job; `false` when the caller no longer holds it.
    pub async fn renew_lease(
        &self,
        job: &mut ProvisioningJob,
        owner: &str,
        lease_until: &str,
    ) -> Result<bool, StoreError> {
        let keys::IndexKey { pk: _, sk: gsi1sk, .. } =
            keys::jobs_by_status(JobStatus::Running.as_str(), lease_until, job.request_id);
        let result = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(super::key_item(&keys::job(job.request_id))))
            .update_expression("SET due_at = :lease, GSI1SK = :gsi1sk")
            .condition_expression("#status = :running AND lease_owner = :owner AND attempts = :attempt")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":lease", s(lease_until))
            .expression_attribute_values(":gsi1sk", s(gsi1sk))
            .expression_attribute_values(":running", s(JobStatus::Running.as_str()))
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":attempt", super::n(job.attempts))
            .send()
            .await
            .map_err(super::classify);
        match result {
            Ok(_) => {
                job.due_at = lease_until.to_string();
                Ok(true)
            }
            Err(e) if e.is_condition_failed() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Records the outcome of the run of a job the caller holds, with the request's
    /// move in the same transaction: an apply makes it `ready` (or `failed` when it
    /// gives up); a destroy makes it `deleted`, removes its credentials and frees its
    /// name (a destroy that gives up leaves it `deleting`, the error shown); a
    /// rotation leaves it `ready` whatever happens.
    /// `Ok(false)`: the caller had lost the lease, and nothing was written.
    pub async fn finish_job(
        &self,
        claimed: &ClaimedJob,
        owner: &str,
        outcome: &RunOutcome,
        now: &str,
    ) -> Result<bool, StoreError> {
        let ClaimedJob { job, request } = claimed;
        let operation = job.operation;
        let (job_status, request_status, error, retry_at) = match outcome {
            RunOutcome::Succeeded { .. } => (JobStatus::Succeeded, RequestStatus::Ready, None, None),
            RunOutcome::Destroyed => (JobStatus::Succeeded, RequestStatus::Deleted, None, None),
            RunOutcome::Failed {
                error,
                retry_at: Some(at),
            } => (JobStatus::Queued, request.status, Some(error), Some(at)),
            RunOutcome::Failed { error, retry_at: None } => {
                let to = match operation {
                    JobOperation::Apply => RequestStatus::Failed,
                    JobOperation::Rotate | JobOperation::Destroy => request.status,
                };
                (JobStatus::Failed, to, Some(error), None)
            }
        };
        let mut info = ended_provisioning(request, job, now);
        info.error = error.cloned();
        info.next_attempt_at = retry_at.cloned();
        info.gave_up = error.is_some() && retry_at.is_none();

        let job_expr = Expr::new()
            .name("#status", "status")
            .value(":running", s(JobStatus::Running.as_str()))
            .value(":owner", s(owner))
            .value(":attempt", super::n(job.attempts))
            .value(":to", s(job_status.as_str()));
        let job_condition = Some("#status = :running AND lease_owner = :owner AND attempts = :attempt");
        let mut tx = Tx::new(self);
        tx = match (retry_at, error) {
            (Some(at), Some(error)) => {
                let keys::IndexKey {
                    pk: gsi1pk, sk: gsi1sk, ..
                } = keys::jobs_by_status(JobStatus::Queued.as_str(), at, job.request_id);
                tx.update(
                    &keys::job(job.request_id),
                    "SET #status = :to, due_at = :due, last_error = :error, GSI1PK = :gsi1pk, GSI1SK = :gsi1sk REMOVE lease_owner",
                    job_condition,
                    job_expr
                        .value(":due", s(at))
                        .value(":error", s(error))
                        .value(":gsi1pk", s(gsi1pk))
                        .value(":gsi1sk", s(gsi1sk)),
                )?
            }
            (_, Some(error)) => tx.update(
                &keys::job(job.request_id),
                "SET #status = :to, last_error = :error REMOVE lease_owner, GSI1PK, GSI1SK",
                job_condition,
                job_expr.value(":error", s(error)),
            )?,
            (_, None) => tx.update(
                &keys::job(job.request_id),
                "SET #status = :to REMOVE lease_owner, last_error, GSI1PK, GSI1SK",
                job_condition,
                job_expr,
            )?,
        };

        let keys::IndexKey {
            pk: req_gsi1pk, sk: _, ..
        } = keys::requests_by_status(request_status.as_str(), &request.created_at, request.id);
        let mut sets = vec!["#status = :to", "GSI1PK = :gsi1pk", "updated_at = :now"];
        let mut removes = Vec::new();
        let mut expr = Expr::new()
            .name("#status", "status")
            .value(":to", s(request_status.as_str()))
            .value(":from", s(request.status.as_str()))
            .value(":gsi1pk", s(req_gsi1pk))
            .value(":now", s(now));
        if operation != JobOperation::Rotate {
            sets.push("#provisioning = :info");
            expr = expr.name("#provisioning", "provisioning").value(":info", attr(&info)?);
        }
        if request_status != request.status {
            let step = Transition {
                from: Some(request.status),
                to: request_status,
                by: Actor::System,
                at: now.to_string(),
                comment: error.cloned(),
            };
            sets.push("history = list_append(history, :step)");
            expr = expr.value(":step", attr(&vec![step])?);
        }
        let credentials_info = match outcome {
            RunOutcome::Succeeded { outputs, credentials } => {
                sets.push("#outputs = :outputs");
                expr = expr.name("#outputs", "outputs").value(":outputs", attr(outputs)?);
                // The credentials item, replaced only by a newer version.
                tx = tx.put(
                    credentials_item(credentials)?,
                    Some("attribute_not_exists(PK) OR version < :version"),
                    Expr::new().value(":version", super::n(credentials.version)),
                )?;
                Some(CredentialsInfo {
                    version: credentials.version,
                    issued_at: credentials.issued_at.clone(),
                    rotating: false,
                    rotation_error: None,
                })
            }
            RunOutcome::Failed { retry_at: None, error } if operation == JobOperation::Rotate => {
                request.credentials.clone().map(|p| CredentialsInfo {
                    rotating: false,
                    rotation_error: Some(error.clone()),
                    ..p
                })
            }
            RunOutcome::Destroyed => {
                // The resource is gone: so are its outputs, its credentials (the
                // ciphertext too) and its hold on the name.
                removes.extend(["#outputs", "#credentials"]);
                expr = expr.name("#outputs", "outputs").name("#credentials", "credentials");
                tx = tx.delete(&keys::credentials(request.id), None, Expr::new())?.delete(
                    &super::requests::name_key(request),
                    Some("attribute_not_exists(PK) OR request_id = :id"),
                    Expr::new().value(":id", s(request.id.to_string())),
                )?;
                None
            }
            RunOutcome::Failed { .. } => None,
        };
        if let Some(info) = &credentials_info {
            sets.push("#credentials = :credentials");
            expr = expr
                .name("#credentials", "credentials")
                .value(":credentials", attr(info)?);
        }
        let mut update = format!("SET {}", sets.join(", "));
        if !removes.is_empty() {
            update.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        tx = tx.update(&keys::request(request.id), &update, Some("#status = :from"), expr)?;
        // Notifications: the requester hears how it ended (docs/notifications.md).
        let end = match outcome {
            RunOutcome::Succeeded { .. } => notify::RunEnd::Succeeded,
            RunOutcome::Destroyed => notify::RunEnd::Destroyed,
            RunOutcome::Failed { retry_at: Some(_), .. } => notify::RunEnd::RetryScheduled,
            RunOutcome::Failed { error, retry_at: None } => notify::RunEnd::GaveUp { error },
        };
        if let Some(notice) = notify::on_outcome(request, operation, end, now) {
            tx = super::outbox::append_notice(tx, &notice)?;
        }
        let tx = tx.audit(outcome_event(claimed, outcome, request_status, now));
        match self.commit(tx).await {
            Ok(()) => Ok(true),
            // The lease was lost, the request moved on, or the stored credentials are
            // newer than this run's: someone else finished.
            Err(e) if e.is_condition_failed() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The sealed credentials of a request, if it has any.
    pub async fn get_credentials(&self, request_id: Uuid) -> Result<Option<SealedCredentials>, StoreError> {
        self.get(&keys::credentials(request_id))
            .await?
            .map(from_item)
            .transpose()
    }

    /// Asks for new credentials of a ready request: its finished job is queued again as
    /// a rotation. Of two racing rotations one wins; the other, and a rotation while
    /// one is under way, gets [`StoreError::RotationBusy`].
    pub async fn request_rotation(
        &self,
        request: &ResourceRequest,
        now: &str,
        origin: &Origin,
    ) -> Result<(), StoreError> {
        let tx = requeue_job(Tx::new(self), request.id, &lifecycle::ROTATION, now)?
            .update(
                &keys::request(request.id),
                "SET #credentials.rotating = :yes, updated_at = :now REMOVE #credentials.rotation_error",
                Some("#status = :ready AND attribute_exists(#credentials)"),
                Expr::new()
                    .name("#status", "status")
                    .name("#credentials", "credentials")
                    .value(":yes", super::bool_value(true))
                    .value(":ready", s(RequestStatus::Ready.as_str()))
                    .value(":now", s(now)),
            )?
            .audit(
                origin
                    .event(Action::RotationRequested, Target::request(request.id))
                    .team(Some(request.team_id)),
            );
        self.commit(tx).await.map_err(|e| match e {
            e if e.is_condition_failed() => StoreError::RotationBusy,
            e => e,
        })
    }

    /// Gives a running job back (the runner is stopping): queued again and due at
    /// once, the interrupted run not counted. `Ok(false)`: the lease was lost already.
    pub async fn release_job(&self, job: &ProvisioningJob, owner: &str, now: &str) -> Result<bool, StoreError> {
        let keys::IndexKey {
            pk: gsi1pk, sk: gsi1sk, ..
        } = keys::jobs_by_status(JobStatus::Queued.as_str(), now, job.request_id);
        let result = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(super::key_item(&keys::job(job.request_id))))
            .update_expression(
                "SET #status = :queued, due_at = :now, attempts = :prev, GSI1PK = :gsi1pk, GSI1SK = :gsi1sk REMOVE lease_owner",
            )
            .condition_expression("#status = :running AND lease_owner = :owner AND attempts = :attempt")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":queued", s(JobStatus::Queued.as_str()))
            .expression_attribute_values(":running", s(JobStatus::Running.as_str()))
            .expression_attribute_values(":now", s(now))
            .expression_attribute_values(":prev", super::n(job.attempts.saturating_sub(1)))
            .expression_attribute_values(":attempt", super::n(job.attempts))
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":gsi1pk", s(gsi1pk))
            .expression_attribute_values(":gsi1sk", s(gsi1sk))
            .send()
            .await
            .map_err(super::classify);
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.is_condition_failed() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Ends a job that must not run (its team is gone, or its request is not in a
    /// runnable status): the job becomes `failed`, and a request still `approved` or
    /// `provisioning` becomes `failed` with the reason, by the system.
    pub async fn abandon_job(&self, job: &ProvisioningJob, reason: &str, now: &str) -> Result<bool, StoreError> {
        let mut tx = Tx::new(self).update(
            &keys::job(job.request_id),
            "SET #status = :failed, last_error = :error REMOVE lease_owner, GSI1PK, GSI1SK",
            Some("#status = :was AND due_at = :due"),
            Expr::new()
                .name("#status", "status")
                .value(":failed", s(JobStatus::Failed.as_str()))
                .value(":was", s(job.status.as_str()))
                .value(":due", s(&job.due_at))
                .value(":error", s(reason)),
        )?;
        if let Some(request) = self.get_request(job.request_id).await? {
            if matches!(request.status, RequestStatus::Approved | RequestStatus::Provisioning) {
                tx = tx.audit(Origin::system(now).transition(&request, RequestStatus::Failed, Some(reason)));
                let step = Transition {
                    from: Some(request.status),
                    to: RequestStatus::Failed,
                    by: Actor::System,
                    at: now.to_string(),
                    comment: Some(reason.to_string()),
                };
                let mut info = ended_provisioning(&request, job, now);
                info.error = Some(reason.to_string());
                let keys::IndexKey { pk: gsi1pk, .. } =
                    keys::requests_by_status(RequestStatus::Failed.as_str(), &request.created_at, request.id);
                tx = tx.update(
                    &keys::request(request.id),
                    "SET #status = :to, GSI1PK = :gsi1pk, updated_at = :now, #provisioning = :info, history = list_append(history, :step)",
                    Some("#status = :from"),
                    Expr::new()
                        .name("#status", "status")
                        .name("#provisioning", "provisioning")
                        .value(":to", s(RequestStatus::Failed.as_str()))
                        .value(":from", s(request.status.as_str()))
                        .value(":gsi1pk", s(gsi1pk))
                        .value(":now", s(now))
                        .value(":info", attr(&info)?)
                        .value(":step", attr(&vec![step])?),
                )?;
                // Notifications: the requester hears that it failed.
                let end = notify::RunEnd::GaveUp { error: reason };
                if let Some(notice) = notify::on_outcome(&request, job.operation, end, now) {
                    tx = super::outbox::append_notice(tx, &notice)?;
                }
            }
        }
        match self.commit(tx).await {
            Ok(()) => Ok(true),
            Err(e) if e.is_condition_failed() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Stores the redacted output of one Terraform command of a job's attempt.
    pub async fn put_job_log(&self, request_id: Uuid, log: &JobLog) -> Result<(), StoreError> {
        let key = keys::job_log(request_id, log.run, log.seq, &log.phase);
        let item = Stored::new(
            keys::JOB_LOG,
            key,
            LogRecord {
                request_id,
                log: log.clone(),
            },
        )
        .to_item()?;
        self.client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .send()
            .await
            .map_err(super::classify)?;
        Ok(())
    }

    /// One page of a job's logs, attempt by attempt, in the order they ran.
    pub async fn list_job_logs(
        &self,
        request_id: Uuid,
        limit: usize,
        start: Option<Item>,
    ) -> Result<(Vec<JobLog>, Option<Item>), StoreError> {
        let cond = KeyCondition {
            index: None,
            pk: keys::job_log_pk(request_id),
            sk_prefix: None,
            ..Default::default()
        };
        let QueryPage { items, next } = self.query_page(cond, limit, start).await?;
        let logs = items
            .into_iter()
            .map(|item| from_item::<LogRecord>(item).map(|r| r.log))
            .collect::<Result<_, _>>()?;
        Ok((logs, next))
    }
}
