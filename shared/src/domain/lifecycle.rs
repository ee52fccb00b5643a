//! The lifecycle of a resource request:
//!
//! ```text
//! pending ──> approved ──> provisioning ──> ready ──> deleting ──> deleted
//!    │                        │    ▲                   ▲  │ ▲
//!    ├──> rejected            ▼    │ (retry)           │  └─┘ (retry of a destroy)
//!    └──> cancelled          failed ───────────────────┘
//! ```
//!
//! [`plan_transition`] is the one place that says which moves are allowed and what a
//! move brings with it (the history step, the provisioning job of an approval, the
//! job queued again by a retry or a deletion, the release of the request's name);
//! [`plan_retry`] says what an admin's retry does. `docs/provisioning.md` draws the
//! same machine.

use crate::model::{JobOperation, JobStatus, ProvisioningJob, RequestStatus, ResourceRequest, Transition};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use uuid::Uuid;

/// Who made a change: a signed-in user, or the platform itself (the provisioning
/// runner, an expiry). In the API and in the table it is the user's id, or the string
/// `"system"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Actor {
    User(Uuid),
    System,
    /// Nobody signed in (a failed login): only in the audit log.
    Anonymous,
}

impl Actor {
    pub const SYSTEM: &'static str = "system";
    pub const ANONYMOUS: &'static str = "anonymous";
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User(id) => write!(f, "{id}"),
            Self::System => f.write_str(Self::SYSTEM),
            Self::Anonymous => f.write_str(Self::ANONYMOUS),
        }
    }
}

impl Serialize for Actor {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Actor {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        if raw == Self::SYSTEM {
            return Ok(Self::System);
        }
        if raw == Self::ANONYMOUS {
            return Ok(Self::Anonymous);
        }
        Uuid::parse_str(&raw)
            .map(Self::User)
            .map_err(|_| serde::de::Error::custom("an actor is a user id or `system`"))
    }
}

impl utoipa::PartialSchema for Actor {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(
                "The user id of who made the step, or `system` for the platform itself.",
            ))
            .examples([serde_json::json!("system")])
            .into()
    }
}

impl utoipa::ToSchema for Actor {}

/// A move the state machine does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    #[error("the request is {}; it cannot become {}", .from.as_str(), .to.as_str())]
    NotAllowed { from: RequestStatus, to: RequestStatus },
    #[error("the request is {}; only failed requests and deletions that failed can be retried", .0.as_str())]
    NotRetryable(RequestStatus),
    #[error("the request expired at {0} before it was approved")]
    Expired(String),
}

/// The allowed moves, and nothing else.
pub fn can_become(from: RequestStatus, to: RequestStatus) -> bool {
    use RequestStatus::*;
    matches!(
        (from, to),
        (Pending, Approved | Rejected | Cancelled)
            | (Approved, Provisioning)
            | (Provisioning, Ready | Failed)
            | (Failed, Provisioning | Deleting)
            | (Ready, Deleting)
            | (Deleting, Deleted)
    )
}

/// Whether a request in this status still holds its name in the team.
pub fn holds_name(status: RequestStatus) -> bool {
    !matches!(
        status,
        RequestStatus::Rejected | RequestStatus::Cancelled | RequestStatus::Deleted
    )
}

/// The request's existing job, queued again (due at once, attempts from zero) for
/// `operation`, on the condition that it is in one of `when_job_is`: a job that is
/// running (or, for a deletion, a rotation that is still queued) is never taken over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requeue {
    pub operation: JobOperation,
    pub when_job_is: &'static [JobStatus],
}

/// What one move of a request changes; the store writes all of it in one transaction,
/// on the condition that the request is still in `from`.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedTransition {
    pub from: RequestStatus,
    pub to: RequestStatus,
    /// Appended to the request's history.
    pub step: Transition,
    /// Written with an approval: the work for the provisioning runner.
    pub job: Option<ProvisioningJob>,
    /// The request gives its name back (rejected, cancelled, deleted).
    pub frees_name: bool,
    /// A retry or a deletion: the request's job is queued again.
    pub requeue: Option<Requeue>,
    /// Written only if the request still has this expiry (an expiry's move must not
    /// win over an extension made after the expiry was read).
    pub if_expires_at: Option<String>,
}

/// A credentials rotation of a ready request: its job runs again once the apply (or
/// an earlier rotation) has ended, whichever way.
pub const ROTATION: Requeue = Requeue {
    operation: JobOperation::Rotate,
    when_job_is: &[JobStatus::Succeeded, JobStatus::Failed],
};

/// What the request's job runs next after this move, if the move queues it again.
fn requeue_for(from: RequestStatus, to: RequestStatus) -> Option<Requeue> {
    use RequestStatus::*;
    match (from, to) {
        // A retry of a failed apply.
        (Failed, Provisioning) => Some(Requeue {
            operation: JobOperation::Apply,
            when_job_is: &[JobStatus::Failed],
        }),
        // A deletion: the apply (or rotation) has ended, whichever way.
        (Ready | Failed, Deleting) => Some(Requeue {
            operation: JobOperation::Destroy,
            when_job_is: &[JobStatus::Succeeded, JobStatus::Failed],
        }),
        // A retry of a destroy that gave up or waits for its back-off.
        (Deleting, Deleting) => Some(Requeue {
            operation: JobOperation::Destroy,
            when_job_is: &[JobStatus::Failed, JobStatus::Queued],
        }),
        _ => None,
    }
}

/// Plans moving `request` (as read) to `to`, by `actor`, at `now`.
pub fn plan_transition(
    request: &ResourceRequest,
    to: RequestStatus,
    actor: Actor,
    comment: Option<String>,
    now: &str,
) -> Result<PlannedTransition, LifecycleError> {
    let from = request.status;
    if !can_become(from, to) {
        return Err(LifecycleError::NotAllowed { from, to });
    }
    if let Some(at) = request
        .expires_at
        .as_ref()
        .filter(|at| to == RequestStatus::Approved && at.as_str() <= now)
    {
        return Err(LifecycleError::Expired(at.clone()));
    }
    let job = (to == RequestStatus::Approved).then(|| ProvisioningJob::queued(request, JobOperation::Apply, now));
    Ok(PlannedTransition {
        from,
        to,
        step: Transition {
            from: Some(from),
            to,
            by: actor,
            at: now.to_string(),
            comment,
        },
        job,
        frees_name: holds_name(from) && !holds_name(to),
        requeue: requeue_for(from, to),
        if_expires_at: None,
    })
}

/// An admin's retry: a failed request is provisioned again; a deletion that failed
/// (or waits for its back-off) runs its destroy again at once, the request staying
/// `deleting` with the step in its history. Anything else cannot be retried.
pub fn plan_retry(
    request: &ResourceRequest,
    actor: Actor,
    comment: Option<String>,
    now: &str,
) -> Result<PlannedTransition, LifecycleError> {
    match request.status {
        RequestStatus::Failed => plan_transition(request, RequestStatus::Provisioning, actor, comment, now),
        RequestStatus::Deleting => Ok(PlannedTransition {
            from: RequestStatus::Deleting,
            to: RequestStatus::Deleting,
            step: Transition {
                from: Some(RequestStatus::Deleting),
                to: RequestStatus::Deleting,
                by: actor,
                at: now.to_string(),
                comment,
            },
            job: None,
            frees_name: false,
            requeue: requeue_for(RequestStatus::Deleting, RequestStatus::Deleting),
            if_expires_at: None,
        }),
        other => Err(LifecycleError::NotRetryable(other)),
    }
}

/// Whether a request in this status may be deleted (`POST /requests/{id}/delete`):
/// a ready resource, or a failed one (which may hold part of its resources).
pub fn can_delete(status: RequestStatus) -> bool {
    can_become(status, RequestStatus::Deleting)
}

#[cfg(test)]
mod tests {
    use super::*;
    use RequestStatus::*;

    fn request(status: RequestStatus) -> ResourceRequest {
        ResourceRequest {
            id: Uuid::new_v4(),
            team_id: Uuid::new_v4(),
            requester_id: Uuid::new_v4(),
            resource_type: "postgres".into(),
            name: "orders-db".into(),
            parameters: serde_json::json!({"storage_gb": 20}),
            justification: "why".into(),
            status,
            created_at: "2026-01-01T00:00:00.000000Z".into(),
            updated_at: "2026-01-01T00:00:00.000000Z".into(),
            history: Vec::new(),
            provisioning: None,
            outputs: None,
            credentials: None,
            expires_at: None,
            estimated_monthly_cost: None,
            budget: None,
        }
    }

    /// The whole table: every pair of statuses, allowed exactly when listed here.
    #[test]
    fn the_transition_table_is_exactly_the_documented_one() {
        let allowed = [
            (Pending, Approved),
            (Pending, Rejected),
            (Pending, Cancelled),
            (Approved, Provisioning),
            (Provisioning, Ready),
            (Provisioning, Failed),
            (Failed, Provisioning),
            (Failed, Deleting),
            (Ready, Deleting),
            (Deleting, Deleted),
        ];
        for from in RequestStatus::ALL {
            for to in RequestStatus::ALL {
                let want = allowed.contains(&(from, to));
                assert_eq!(can_become(from, to), want, "{from:?} -> {to:?}");
                let planned = plan_transition(&request(from), to, Actor::System, None, "t");
                assert_eq!(planned.is_ok(), want, "{from:?} -> {to:?}");
                if let Err(e) = planned {
                    assert_eq!(e, LifecycleError::NotAllowed { from, to });
                }
            }
        }
    }

    #[test]
    fn approval_plans_a_queued_apply_job_with_the_request_parameters() {
        let r = request(Pending);
        let approver = Uuid::new_v4();
        let p = plan_transition(&r, Approved, Actor::User(approver), Some("ok".into()), "now").unwrap();
        let job = p.job.expect("a job");
        assert_eq!(job.request_id, r.id);
        assert_eq!(job.team_id, r.team_id);
        assert_eq!(job.parameters, r.parameters);
        assert_eq!(job.status, JobStatus::Queued);
        assert_eq!(job.operation, JobOperation::Apply);
        assert_eq!(job.attempts, 0);
        assert_eq!(job.due_at, "now");
        assert_eq!(p.step.by, Actor::User(approver));
        assert_eq!(p.step.from, Some(Pending));
        assert_eq!(p.step.comment.as_deref(), Some("ok"));
        assert!(!p.frees_name);
    }

    #[test]
    fn only_approval_creates_a_job() {
        for (from, to) in [
            (Pending, Rejected),
            (Pending, Cancelled),
            (Approved, Provisioning),
            (Failed, Provisioning),
        ] {
            let p = plan_transition(&request(from), to, Actor::System, None, "t").unwrap();
            assert!(p.job.is_none(), "{from:?} -> {to:?}");
        }
    }

    #[test]
    fn only_a_retry_or_a_deletion_requeues_the_job() {
        for from in RequestStatus::ALL {
            for to in RequestStatus::ALL {
                if let Ok(p) = plan_transition(&request(from), to, Actor::System, None, "t") {
                    let want = match (from, to) {
                        (Failed, Provisioning) => Some(JobOperation::Apply),
                        (Ready | Failed, Deleting) => Some(JobOperation::Destroy),
                        _ => None,
                    };
                    assert_eq!(p.requeue.map(|r| r.operation), want, "{from:?} -> {to:?}");
                }
            }
        }
    }

    #[test]
    fn a_deletion_never_takes_over_a_job_that_is_queued_or_running() {
        for from in [Ready, Failed] {
            let p = plan_transition(&request(from), Deleting, Actor::System, None, "t").unwrap();
            let requeue = p.requeue.expect("a deletion requeues the job");
            assert!(!requeue.when_job_is.contains(&JobStatus::Running));
            assert!(
                !requeue.when_job_is.contains(&JobStatus::Queued),
                "a queued rotation goes first"
            );
        }
        let retry = plan_retry(&request(Deleting), Actor::System, None, "t").unwrap();
        assert!(!retry.requeue.unwrap().when_job_is.contains(&JobStatus::Running));
        // Nor does a rotation.
        assert_eq!(ROTATION.operation, JobOperation::Rotate);
        assert!(!ROTATION.when_job_is.contains(&JobStatus::Running));
        assert!(!ROTATION.when_job_is.contains(&JobStatus::Queued));
    }

    #[test]
    fn an_expired_request_cannot_be_approved() {
        let mut r = request(Pending);
        r.expires_at = Some("2026-01-02T00:00:00.000000Z".into());
        let before = plan_transition(&r, Approved, Actor::System, None, "2026-01-01T23:59:59.999999Z");
        assert!(before.is_ok());
        let at = plan_transition(&r, Approved, Actor::System, None, "2026-01-02T00:00:00.000000Z");
        assert_eq!(
            at.unwrap_err(),
            LifecycleError::Expired("2026-01-02T00:00:00.000000Z".into())
        );
        // It can still be rejected or cancelled.
        assert!(plan_transition(&r, Cancelled, Actor::System, None, "2026-01-03T00:00:00.000000Z").is_ok());
    }

    #[test]
    fn retry_is_for_failed_requests_and_deletions_only() {
        for status in RequestStatus::ALL {
            let planned = plan_retry(&request(status), Actor::System, Some("again".into()), "t");
            match status {
                Failed => {
                    let p = planned.unwrap();
                    assert_eq!((p.from, p.to), (Failed, Provisioning));
                    assert_eq!(p.requeue.unwrap().operation, JobOperation::Apply);
                }
                Deleting => {
                    let p = planned.unwrap();
                    assert_eq!((p.from, p.to), (Deleting, Deleting));
                    assert_eq!(p.step.from, Some(Deleting));
                    assert_eq!(p.step.comment.as_deref(), Some("again"));
                    assert_eq!(p.requeue.unwrap().operation, JobOperation::Destroy);
                    assert!(!p.frees_name && p.job.is_none());
                }
                other => assert_eq!(planned.unwrap_err(), LifecycleError::NotRetryable(other)),
            }
        }
    }

    #[test]
    fn only_ready_and_failed_requests_can_be_deleted() {
        for status in RequestStatus::ALL {
            assert_eq!(can_delete(status), matches!(status, Ready | Failed), "{status:?}");
        }
    }

    #[test]
    fn rejection_cancellation_and_deletion_free_the_name() {
        for (from, to, frees) in [
            (Pending, Rejected, true),
            (Pending, Cancelled, true),
            (Deleting, Deleted, true),
            (Pending, Approved, false),
            (Provisioning, Failed, false),
            (Ready, Deleting, false),
        ] {
            let p = plan_transition(&request(from), to, Actor::System, None, "t").unwrap();
            assert_eq!(p.frees_name, frees, "{from:?} -> {to:?}");
        }
    }

    #[test]
    fn actors_serialise_as_a_user_id_or_system() {
        let id = Uuid::new_v4();
        assert_eq!(
            serde_json::to_value(Actor::User(id)).unwrap(),
            serde_json::json!(id.to_string())
        );
        assert_eq!(
            serde_json::to_value(Actor::System).unwrap(),
            serde_json::json!("system")
        );
        let back: Actor = serde_json::from_value(serde_json::json!("system")).unwrap();
        assert_eq!(back, Actor::System);
        let back: Actor = serde_json::from_value(serde_json::json!(id.to_string())).unwrap();
        assert_eq!(back, Actor::User(id));
        assert!(serde_json::from_value::<Actor>(serde_json::json!("root")).is_err());
    }
}
