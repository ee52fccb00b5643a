//! The provisioning dispatcher (AWS only). Two kinds of event reach it:
//! - DynamoDB stream records of job items that became `queued` (filtered in
//!   `template.yaml`): each due job gets a runner build (`ssi-runner run-job`);
//! - a schedule (every minute): expired resources start their deletion
//!   ([`shared::expiry`]); jobs whose dispatch was lost, whose retry time has come, or
//!   whose runner died (lease expired) are dispatched again.
//!
//! Dispatching twice is harmless: the runner's claim is a conditional write, so a
//! second build finds the job taken and exits. Locally the worker loop of
//! `ssi-runner worker` does all of this itself.

use serde_json::{json, Value};
use shared::{clock::format_timestamp, store::Store};
use std::{future::Future, time::Duration};
use uuid::Uuid;

/// A queued job that has waited this long without a runner is dispatched again by the
/// schedule (its stream dispatch was lost, or it was not due yet then).
pub const REDISPATCH_AFTER: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
#[error("could not start a runner for {request_id}")]
pub struct StartError {
    pub request_id: Uuid,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// Starts one runner for one job. In AWS a CodeBuild build; a seam for the tests.
pub trait BuildStarter: Send + Sync {
    fn start(&self, request_id: Uuid) -> impl Future<Output = Result<(), StartError>> + Send;
}

/// Starts `ssi-runner run-job --request-id ID` as a build of a CodeBuild project
/// (the project's buildspec reads `REQUEST_ID`).
pub struct CodeBuild {
    pub client: aws_sdk_codebuild::Client,
    pub project: String,
}

impl BuildStarter for CodeBuild {
    async fn start(&self, request_id: Uuid) -> Result<(), StartError> {
        let var = aws_sdk_codebuild::types::EnvironmentVariable::builder()
            .name("REQUEST_ID")
            .value(request_id.to_string())
            .r#type(aws_sdk_codebuild::types::EnvironmentVariableType::Plaintext)
            .build()
            .map_err(|e| StartError {
                request_id,
                source: Box::new(e),
            })?;
        self.client
            .start_build()
            .project_name(&self.project)
            .environment_variables_override(var)
            .send()
            .await
            .map_err(|e| StartError {
                request_id,
                source: Box::new(e),
            })?;
        tracing::info!(%request_id, project = %self.project, "runner build started");
        Ok(())
    }
}

/// A job from a stream record: its request id, and whether it is due at `now`.
fn queued_job(record: &Value, now: &str) -> Option<(Uuid, bool)> {
    let image = record.get("dynamodb")?.get("NewImage")?;
    let text = |name: &str| image.get(name)?.get("S")?.as_str();
    if text("entity_type")? != "JOB" || text("status")? != "queued" {
        return None;
    }
    let id = Uuid::parse_str(text("request_id")?).ok()?;
    let due = text("due_at").is_none_or(|at| at <= now);
    Some((id, due))
}

/// Handles a batch of stream records; answers the records whose build could not be
/// started, so Lambda retries just those (`ReportBatchItemFailures`).
pub async fn on_stream(records: &[Value], starter: &impl BuildStarter, now: &str) -> Value {
    let mut failures = Vec::new();
    for record in records {
        let Some((id, due)) = queued_job(record, now) else {
            continue;
        };
        if !due {
            // A retry waiting for its back-off: the schedule dispatches it when due.
            continue;
        }
        if let Err(e) = starter.start(id).await {
            tracing::warn!(request_id = %id, error = %e, cause = ?std::error::Error::source(&e), "dispatch failed");
            if let Some(seq) = record.pointer("/dynamodb/SequenceNumber").and_then(Value::as_str) {
                failures.push(json!({ "itemIdentifier": seq }));
            }
        }
    }
    json!({ "batchItemFailures": failures })
}

/// The schedule's sweep: starts the deletion of expired resources (their destroy jobs
/// reach the stream like any queued job), then dispatches every job that needs a
/// runner and has not had one for [`REDISPATCH_AFTER`].
pub async fn sweep(
    store: &Store,
    starter: &impl BuildStarter,
    now: time::OffsetDateTime,
) -> Result<Value, shared::store::StoreError> {
    // An expiry that cannot be handled now must not stop the re-dispatch below.
    let expired = match shared::expiry::sweep(store, &format_timestamp(now)).await {
        Ok(expired) => expired,
        Err(e) => {
            tracing::warn!(error = %e, "expiry sweep failed; jobs are re-dispatched anyway");
            shared::expiry::Sweep::default()
        }
    };
    // Nor must a budget check that fails.
    let budget_notices = match shared::budget_alerts::sweep(store, now).await {
        Ok(sent) => sent.len(),
        Err(e) => {
            tracing::warn!(error = %e, "budget check failed; jobs are re-dispatched anyway");
            0
        }
    };
    let before = format_timestamp(now - REDISPATCH_AFTER);
    let due = store.due_jobs(&before, 100).await?;
    let mut started = 0;
    for id in &due {
        match starter.start(*id).await {
            Ok(()) => started += 1,
            Err(e) => tracing::warn!(request_id = %id, error = %e, "re-dispatch failed"),
        }
    }
    tracing::info!(
        due = due.len(),
        started,
        expired = expired.deleting.len(),
        cancelled = expired.cancelled.len(),
        budget_notices,
        "sweep done"
    );
    Ok(json!({
        "due": due.len(),
        "started": started,
        "expired": expired.deleting.len(),
        "cancelled": expired.cancelled.len(),
    }))
}

/// One invocation: stream records, or the schedule.
pub async fn handle(
    event: &Value,
    store: &Store,
    starter: &impl BuildStarter,
) -> Result<Value, shared::store::StoreError> {
    let now = time::OffsetDateTime::now_utc();
    match event.get("Records").and_then(Value::as_array) {
        Some(records) => Ok(on_stream(records, starter, &format_timestamp(now)).await),
        None => sweep(store, starter, now).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recorder {
        started: Mutex<Vec<Uuid>>,
        fail: Option<Uuid>,
    }

    impl BuildStarter for Recorder {
        async fn start(&self, request_id: Uuid) -> Result<(), StartError> {
            if self.fail == Some(request_id) {
                return Err(StartError {
                    request_id,
                    source: "CodeBuild said no".into(),
                });
            }
            self.started.lock().unwrap().push(request_id);
            Ok(())
        }
    }

    fn record(id: Uuid, entity: &str, status: &str, due_at: &str, seq: &str) -> Value {
        json!({
            "eventName": "INSERT",
            "dynamodb": {
                "SequenceNumber": seq,
                "NewImage": {
                    "PK": {"S": format!("JOB#{id}")},
                    "entity_type": {"S": entity},
                    "status": {"S": status},
                    "request_id": {"S": id.to_string()},
                    "due_at": {"S": due_at}
                }
            }
        })
    }

    #[tokio::test]
    async fn due_queued_jobs_get_a_build_and_nothing_else_does() {
        let (due, later, running, other) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let now = "2026-01-01T00:00:10.000000Z";
        let records = [
            record(due, "JOB", "queued", "2026-01-01T00:00:00.000000Z", "1"),
            record(later, "JOB", "queued", "2026-01-01T00:05:00.000000Z", "2"),
            record(running, "JOB", "running", "2026-01-01T00:00:00.000000Z", "3"),
            record(other, "REQUEST", "queued", "2026-01-01T00:00:00.000000Z", "4"),
            json!({"eventName": "REMOVE", "dynamodb": {}}),
        ];
        let recorder = Recorder::default();
        let answer = on_stream(&records, &recorder, now).await;
        assert_eq!(*recorder.started.lock().unwrap(), [due]);
        assert_eq!(answer, json!({ "batchItemFailures": [] }));
    }

    #[tokio::test]
    async fn a_failed_start_is_reported_for_a_retry_of_that_record_only() {
        let (ok, bad) = (Uuid::new_v4(), Uuid::new_v4());
        let records = [
            record(ok, "JOB", "queued", "2026-01-01T00:00:00.000000Z", "11"),
            record(bad, "JOB", "queued", "2026-01-01T00:00:00.000000Z", "12"),
        ];
        let recorder = Recorder {
            fail: Some(bad),
            ..Default::default()
        };
        let answer = on_stream(&records, &recorder, "2026-01-02T00:00:00.000000Z").await;
        assert_eq!(*recorder.started.lock().unwrap(), [ok]);
        assert_eq!(answer, json!({ "batchItemFailures": [{ "itemIdentifier": "12" }] }));
    }
}
