//! Notifications: the rules, free of HTTP, SMTP and DynamoDB.
//!
//! - [`Kind`]: every kind of notice, who gets it ([`Audience`]) and whether it is a
//!   security notice (never turned off);
//! - [`on_transition`], [`on_outcome`], [`password_changed`], [`expiring`]: which
//!   change causes which notice (the store writes it in the change's own transaction,
//!   as an outbox item);
//! - [`Preferences`]: the kinds a user has turned off;
//! - [`message`]: subject, plain text and HTML of a mail (built only from [`Facts`],
//!   which hold no secret by construction);
//! - [`retry`]: the back-off schedule of a delivery;
//! - [`signature`]: the HMAC-SHA256 signature of webhook deliveries, and its check;
//! - [`webhook`]: webhook URLs (https only, loopback only locally) and payloads.
//!
//! See `docs/notifications.md`.

pub mod message;
pub mod retry;
pub mod signature;
pub mod webhook;

use crate::domain::{budget::BudgetCheck, money::Money};
use crate::model::{JobOperation, RequestStatus, ResourceRequest, Team};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use uuid::Uuid;

/// Every kind of notice. Stored and shown in `snake_case`.
///
/// Follow-ups that slot in here (with a trigger in their own change's transaction):
/// `budget_threshold` (admins and the team's members, [`Audience::TeamAndAdmins`],
/// when a team's spend crosses 80% / 100% of its budget), and the estimate and budget
/// status in `request_submitted` (new [`Facts`] fields), once costs (#16) exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A request was submitted (to admins).
    RequestSubmitted,
    /// A request was approved (to the requester).
    RequestApproved,
    /// A request was rejected, with the reason (to the requester).
    RequestRejected,
    /// A request was provisioned and is ready (to the requester; a link, no secret).
    RequestReady,
    /// Provisioning, a rotation or a deletion failed and gave up (to the requester).
    RequestFailed,
    /// A request's resource was deleted (to the requester).
    RequestDeleted,
    /// A request expires in 3 days or less (to the requester).
    RequestExpiring,
    /// A request's credentials were rotated (to the requester). Security notice.
    CredentialsRotated,
    /// The user's password was changed (to the user). Security notice.
    PasswordChanged,
    /// A webhook kept failing and was disabled (to admins).
    WebhookDisabled,
    /// A team's estimated spend this month reached 80 % or 100 % of its budget (to
    /// its members and the admins).
    BudgetThreshold,
}

impl Kind {
    pub const ALL: [Kind; 11] = [
        Self::RequestSubmitted,
        Self::RequestApproved,
        Self::RequestRejected,
        Self::RequestReady,
        Self::RequestFailed,
        Self::RequestDeleted,
        Self::RequestExpiring,
        Self::CredentialsRotated,
        Self::PasswordChanged,
        Self::WebhookDisabled,
        Self::BudgetThreshold,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RequestSubmitted => "request_submitted",
            Self::RequestApproved => "request_approved",
            Self::RequestRejected => "request_rejected",
            Self::RequestReady => "request_ready",
            Self::RequestFailed => "request_failed",
            Self::RequestDeleted => "request_deleted",
            Self::RequestExpiring => "request_expiring",
            Self::CredentialsRotated => "credentials_rotated",
            Self::PasswordChanged => "password_changed",
            Self::WebhookDisabled => "webhook_disabled",
            Self::BudgetThreshold => "budget_threshold",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Security notices reach the user whatever their preferences say.
    pub fn is_security(self) -> bool {
        matches!(self, Self::PasswordChanged | Self::CredentialsRotated)
    }

    /// Whether a webhook may subscribe to it. A password change is personal: it goes
    /// to its user only, never to a shared channel.
    pub fn webhook_allowed(self) -> bool {
        self != Self::PasswordChanged
    }
}

/// Who a notice is for; resolved to addresses when the notifier delivers it (so the
/// change's transaction needs no read), with each recipient's preferences then.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "to", rename_all = "snake_case")]
pub enum Audience {
    /// One user (the requester, or the user whose password changed).
    User { user_id: Uuid },
    /// Every admin.
    Admins,
    /// Every admin and every member of the team (budget notices).
    TeamAndAdmins { team_id: Uuid },
}

/// What a notice says: only ids, names, statuses, times and reasons, never a secret
/// (credentials, outputs and tokens have no field here).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Facts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<Uuid>,
    /// The request's status after the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RequestStatus>,
    /// `apply`, `rotate` or `destroy`, for a failed run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<JobOperation>,
    /// The rejection reason, the approval comment or the failure summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// The webhook of a `webhook_disabled` notice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// The request's estimated monthly cost (a submission).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_monthly_cost: Option<Money>,
    /// What the request does to its team's budget (a submission to a team that has one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetCheck>,
    /// A budget notice: the team's name, the month, the threshold reached (80 or 100),
    /// the month-to-date spend and the monthly limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub month: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_percent: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spend: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<Money>,
}

impl Facts {
    /// The facts of a request (as it is after the change).
    pub fn of_request(request: &ResourceRequest, status: RequestStatus) -> Self {
        Self {
            request_id: Some(request.id),
            request_name: Some(request.name.clone()),
            resource_type: Some(request.resource_type.clone()),
            team_id: Some(request.team_id),
            status: Some(status),
            expires_at: request.expires_at.clone(),
            ..Self::default()
        }
    }
}

/// A notice to write into the outbox, in the same transaction as its cause.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub id: Uuid,
    pub kind: Kind,
    pub audience: Audience,
    pub facts: Facts,
    pub created_at: String,
}

impl Notice {
    pub fn new(kind: Kind, audience: Audience, facts: Facts, now: &str) -> Self {
        Self {
            id: Uuid::new_v4(),
            kind,
            audience,
            facts,
            created_at: now.to_string(),
        }
    }
}

/// A request was submitted: the admins review it, with its estimate and what it does
/// to the team's budget.
pub fn submitted(request: &ResourceRequest) -> Notice {
    let mut facts = Facts::of_request(request, RequestStatus::Pending);
    facts.estimated_monthly_cost = request.estimated_monthly_cost;
    facts.budget = request.budget;
    Notice::new(Kind::RequestSubmitted, Audience::Admins, facts, &request.created_at)
}

/// A team's estimated spend in `month` reached `percent` % of its monthly `limit`.
pub fn budget_threshold(team: &Team, month: &str, percent: u32, spend: Money, limit: Money, now: &str) -> Notice {
    let facts = Facts {
        team_id: Some(team.id),
        team_name: Some(team.name.clone()),
        month: Some(month.to_string()),
        budget_percent: Some(percent),
        spend: Some(spend),
        limit: Some(limit),
        ..Facts::default()
    };
    Notice::new(
        Kind::BudgetThreshold,
        Audience::TeamAndAdmins { team_id: team.id },
        facts,
        now,
    )
}

/// The notice a person's (or the expiry's) move of a request brings, if any: the
/// requester hears of an approval and of a rejection (with the reason). Cancellations
/// are the requester's own doing (or their account's deletion), a deletion's start is
/// followed by `request_deleted`.
pub fn on_transition(request: &ResourceRequest, to: RequestStatus, comment: Option<&str>, now: &str) -> Option<Notice> {
    let kind = match to {
        RequestStatus::Approved => Kind::RequestApproved,
        RequestStatus::Rejected => Kind::RequestRejected,
        _ => return None,
    };
    let mut facts = Facts::of_request(request, to);
    facts.reason = comment.map(str::to_string);
    Some(Notice::new(
        kind,
        Audience::User {
            user_id: request.requester_id,
        },
        facts,
        now,
    ))
}

/// How a run of the runner ended, as far as notices go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd<'a> {
    Succeeded,
    Destroyed,
    /// Will run again after a back-off: nobody waits on it yet.
    RetryScheduled,
    GaveUp {
        error: &'a str,
    },
}

/// The notice the end of a run brings to the requester, if any.
pub fn on_outcome(request: &ResourceRequest, operation: JobOperation, end: RunEnd<'_>, now: &str) -> Option<Notice> {
    let (kind, status, reason) = match (operation, end) {
        (_, RunEnd::RetryScheduled) => return None,
        (JobOperation::Apply, RunEnd::Succeeded) => (Kind::RequestReady, RequestStatus::Ready, None),
        (JobOperation::Rotate, RunEnd::Succeeded) => (Kind::CredentialsRotated, RequestStatus::Ready, None),
        (_, RunEnd::Destroyed) => (Kind::RequestDeleted, RequestStatus::Deleted, None),
        (JobOperation::Destroy, RunEnd::Succeeded) => (Kind::RequestDeleted, RequestStatus::Deleted, None),
        (op, RunEnd::GaveUp { error }) => {
            let status = match op {
                JobOperation::Apply => RequestStatus::Failed,
                JobOperation::Rotate | JobOperation::Destroy => request.status,
            };
            (Kind::RequestFailed, status, Some(error.to_string()))
        }
    };
    let mut facts = Facts::of_request(request, status);
    facts.operation = Some(operation);
    facts.reason = reason;
    Some(Notice::new(
        kind,
        Audience::User {
            user_id: request.requester_id,
        },
        facts,
        now,
    ))
}

/// A user's password was changed.
pub fn password_changed(user_id: Uuid, now: &str) -> Notice {
    Notice::new(Kind::PasswordChanged, Audience::User { user_id }, Facts::default(), now)
}

/// How long before its expiry a request's requester is warned.
pub const EXPIRY_WARNING: time::Duration = time::Duration::days(3);

/// When the expiry warning of a request expiring at `expires_at` is due (`None`: not
/// a timestamp).
pub fn expiry_warning_at(expires_at: &str) -> Option<String> {
    crate::clock::parse_timestamp(expires_at).map(|t| crate::clock::format_timestamp(t - EXPIRY_WARNING))
}

/// The warning that a request expires soon; `None` for a request that is closed
/// (nothing left to expire).
pub fn expiring(request: &ResourceRequest, now: &str) -> Option<Notice> {
    use RequestStatus::*;
    if matches!(request.status, Rejected | Cancelled | Deleting | Deleted) {
        return None;
    }
    request.expires_at.as_ref()?;
    Some(Notice::new(
        Kind::RequestExpiring,
        Audience::User {
            user_id: request.requester_id,
        },
        Facts::of_request(request, request.status),
        now,
    ))
}

/// A webhook was disabled after failing too often.
pub fn webhook_disabled(webhook_id: Uuid, url: &str, reason: &str, now: &str) -> Notice {
    Notice::new(
        Kind::WebhookDisabled,
        Audience::Admins,
        Facts {
            webhook_id: Some(webhook_id),
            webhook_url: Some(url.to_string()),
            reason: Some(reason.to_string()),
            ..Facts::default()
        },
        now,
    )
}

/// The kinds a user has turned off (stored on the user item); security kinds are
/// never off, whatever is stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preferences {
    pub off: BTreeSet<Kind>,
}

impl Preferences {
    pub fn allows(&self, kind: Kind) -> bool {
        kind.is_security() || !self.off.contains(&kind)
    }

    /// Preferences from a user's choices: `Err` names a security kind that was asked
    /// to be turned off.
    pub fn from_choices(choices: &[(Kind, bool)]) -> Result<Self, Kind> {
        let mut off = BTreeSet::new();
        for (kind, on) in choices {
            if !on {
                if kind.is_security() {
                    return Err(*kind);
                }
                off.insert(*kind);
            }
        }
        Ok(Self { off })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> ResourceRequest {
        serde_json::from_value(serde_json::json!({
            "id": Uuid::new_v4(), "team_id": Uuid::new_v4(), "requester_id": Uuid::new_v4(),
            "resource_type": "postgres", "name": "orders-db", "parameters": {},
            "justification": "x", "status": "pending",
            "created_at": "2026-01-01T00:00:00.000000Z", "updated_at": "2026-01-01T00:00:00.000000Z",
            "history": [], "expires_at": "2026-02-01T00:00:00.000000Z"
        }))
        .expect("request")
    }

    #[test]
    fn kinds_round_trip_and_security_kinds_are_the_two() {
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
        let security: Vec<Kind> = Kind::ALL.into_iter().filter(|k| k.is_security()).collect();
        assert_eq!(security, [Kind::CredentialsRotated, Kind::PasswordChanged]);
    }

    #[test]
    fn preferences_never_turn_security_notices_off() {
        assert_eq!(
            Preferences::from_choices(&[(Kind::PasswordChanged, false)]),
            Err(Kind::PasswordChanged)
        );
        let mut prefs =
            Preferences::from_choices(&[(Kind::RequestReady, false), (Kind::RequestApproved, true)]).unwrap();
        assert!(!prefs.allows(Kind::RequestReady));
        assert!(prefs.allows(Kind::RequestApproved));
        // Even a stored preference that says otherwise.
        prefs.off.insert(Kind::CredentialsRotated);
        assert!(prefs.allows(Kind::CredentialsRotated));
    }

    #[test]
    fn who_gets_what() {
        let r = request();
        assert_eq!(submitted(&r).audience, Audience::Admins);
        let approved = on_transition(&r, RequestStatus::Approved, None, "t").expect("notice");
        assert_eq!(approved.kind, Kind::RequestApproved);
        assert_eq!(
            approved.audience,
            Audience::User {
                user_id: r.requester_id
            }
        );
        let rejected = on_transition(&r, RequestStatus::Rejected, Some("too big"), "t").expect("notice");
        assert_eq!(rejected.facts.reason.as_deref(), Some("too big"));
        assert!(on_transition(&r, RequestStatus::Cancelled, None, "t").is_none());
        assert!(on_transition(&r, RequestStatus::Deleting, None, "t").is_none());
        let ready = on_outcome(&r, JobOperation::Apply, RunEnd::Succeeded, "t").expect("ready");
        assert_eq!(
            (ready.kind, ready.facts.status),
            (Kind::RequestReady, Some(RequestStatus::Ready))
        );
        assert_eq!(
            on_outcome(&r, JobOperation::Rotate, RunEnd::Succeeded, "t").map(|n| n.kind),
            Some(Kind::CredentialsRotated)
        );
        assert_eq!(
            on_outcome(&r, JobOperation::Destroy, RunEnd::Destroyed, "t").map(|n| n.kind),
            Some(Kind::RequestDeleted)
        );
        assert!(on_outcome(&r, JobOperation::Apply, RunEnd::RetryScheduled, "t").is_none());
        let failed = on_outcome(&r, JobOperation::Apply, RunEnd::GaveUp { error: "boom" }, "t").expect("failed");
        assert_eq!(
            (failed.kind, failed.facts.reason.as_deref()),
            (Kind::RequestFailed, Some("boom"))
        );
        assert_eq!(password_changed(r.requester_id, "t").kind, Kind::PasswordChanged);
    }

    #[test]
    fn expiry_warnings_are_three_days_ahead_and_only_for_live_requests() {
        assert_eq!(
            expiry_warning_at("2026-02-04T12:00:00.000000Z").as_deref(),
            Some("2026-02-01T12:00:00.000000Z")
        );
        let mut r = request();
        assert!(expiring(&r, "t").is_some());
        r.status = RequestStatus::Deleted;
        assert!(expiring(&r, "t").is_none());
    }
}
