//! Domain types, and the public views of them that responses carry. A view never
//! holds a password hash, a token version or a key attribute.

use crate::domain::{
    budget::{BudgetCheck, TeamBudget},
    money::Money,
    Actor,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// A stored user. `password_hash` is a PHC string (argon2id).
#[derive(Clone, Serialize, Deserialize)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub password_hash: String,
    pub is_admin: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<Uuid>,
    /// Bumped on logout and password change; tokens carry the version they were issued
    /// under and stop working once it moves on.
    pub token_version: u64,
    pub created_at: String,
    pub updated_at: String,
    /// The user's own age (X25519) public key: credentials are sealed to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_recipient: Option<String>,
    /// Requests the user ever made (never decremented): their deletion knows from it
    /// when the user's request index has caught up.
    #[serde(default)]
    pub requests_created: u64,
    /// The notice kinds the user turned off (`PUT /users/me/notifications`); security
    /// notices are sent whatever this says.
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    pub notifications_off: std::collections::BTreeSet<crate::notify::Kind>,
}

// Hand-written so the hash can never end up in a log line through `{:?}`.
impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("is_admin", &self.is_admin)
            .field("team_id", &self.team_id)
            .finish_non_exhaustive()
    }
}

/// What the API shows of a user.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct UserView {
    pub id: Uuid,
    pub email: String,
    pub is_admin: bool,
    pub team_id: Option<Uuid>,
    pub created_at: String,
    pub updated_at: String,
    /// The age recipient (`age1…`) credentials are sealed to, if the user set one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_recipient: Option<String>,
}

impl User {
    /// A new user with no team and a fresh token version.
    pub fn new(email: &str, password_hash: String, is_admin: bool, now: &str) -> Self {
        Self {
            id: Uuid::new_v4(),
            email: email.to_string(),
            password_hash,
            is_admin,
            team_id: None,
            token_version: 0,
            created_at: now.to_string(),
            updated_at: now.to_string(),
            age_recipient: None,
            requests_created: 0,
            notifications_off: Default::default(),
        }
    }
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        Self {
            id: u.id,
            email: u.email.clone(),
            is_admin: u.is_admin,
            team_id: u.team_id,
            created_at: u.created_at.clone(),
            updated_at: u.updated_at.clone(),
            age_recipient: u.age_recipient.clone(),
        }
    }
}

/// A stored team. `version` guards read-modify-write updates (rename).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Team {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub created_by: Uuid,
    pub created_at: String,
    pub updated_at: String,
    pub member_count: u64,
    pub version: u64,
    /// Set while the team is being deleted: no member may join, reads say 404.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleting: bool,
    /// Requests ever made for the team (never decremented; absent on teams from before
    /// it): a team deletion knows from it when the team's request index has caught up.
    #[serde(default)]
    pub requests_created: u64,
    /// The team's monthly budget (`PUT /teams/{id}/budget`); absent: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<TeamBudget>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct TeamView {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub created_by: Uuid,
    pub created_at: String,
    pub updated_at: String,
    pub member_count: u64,
    /// The team's monthly budget; `null`: none.
    #[serde(default)]
    pub budget: Option<TeamBudget>,
}

impl From<&Team> for TeamView {
    fn from(t: &Team) -> Self {
        Self {
            id: t.id,
            name: t.name.clone(),
            description: t.description.clone(),
            created_by: t.created_by,
            created_at: t.created_at.clone(),
            updated_at: t.updated_at.clone(),
            member_count: t.member_count,
            budget: t.budget,
        }
    }
}

/// The short form of a user in lists. Also what a membership item holds: it is
/// stored in the team's partition so that a team and its members come back from one
/// query, and kept in step with the user item in the same transactions (join, leave,
/// promote, demote, delete).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct UserSummary {
    pub id: Uuid,
    pub email: String,
    pub is_admin: bool,
    pub team_id: Option<Uuid>,
    pub created_at: String,
}

impl From<&User> for UserSummary {
    fn from(u: &User) -> Self {
        Self {
            id: u.id,
            email: u.email.clone(),
            is_admin: u.is_admin,
            team_id: u.team_id,
            created_at: u.created_at.clone(),
        }
    }
}

/// A team with its members (`GET /teams/{id}`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TeamWithMembers {
    #[serde(flatten)]
    pub team: TeamView,
    pub members: Vec<UserSummary>,
}

/// A page of a list response.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Opaque; pass it back as `?cursor=` for the next page. `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Where a resource request is in its life. The allowed moves are in
/// [`crate::domain::lifecycle`] and nowhere else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    Pending,
    Approved,
    Rejected,
    Cancelled,
    Provisioning,
    Ready,
    Failed,
    Deleting,
    Deleted,
}

impl RequestStatus {
    pub const ALL: [RequestStatus; 9] = [
        Self::Pending,
        Self::Approved,
        Self::Rejected,
        Self::Cancelled,
        Self::Provisioning,
        Self::Ready,
        Self::Failed,
        Self::Deleting,
        Self::Deleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Cancelled => "cancelled",
            Self::Provisioning => "provisioning",
            Self::Ready => "ready",
            Self::Failed => "failed",
            Self::Deleting => "deleting",
            Self::Deleted => "deleted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// One step of a request's history.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct Transition {
    pub from: Option<RequestStatus>,
    pub to: RequestStatus,
    /// A user id, or `system` for steps the platform made (provisioning).
    pub by: Actor,
    pub at: String,
    pub comment: Option<String>,
}

/// Where provisioning (or, once deletion has started, the destroy) of a request
/// stands: set once the runner has claimed its job.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct ProvisioningInfo {
    /// `apply` while the resource is being created, `destroy` once it is being deleted.
    #[serde(default)]
    pub operation: JobOperation,
    /// 1 for the first run, counting every run since approval, deletion or the last retry.
    pub attempt: u32,
    pub started_at: String,
    /// When the last run ended (`null` while one is going on).
    pub finished_at: Option<String>,
    /// A short summary of why the last run failed; never holds a secret.
    pub error: Option<String>,
    /// When the failed run is tried again (back-off); `null` when none is scheduled.
    #[serde(default)]
    pub next_attempt_at: Option<String>,
    /// The runs failed and no more are scheduled: an admin's retry is needed (for a
    /// deletion, the request stays `deleting` until one succeeds).
    #[serde(default)]
    pub gave_up: bool,
}

/// That a request has credentials, and which version: never their value (admins see
/// this, only the owning team reads the credentials themselves).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct CredentialsInfo {
    pub version: u32,
    pub issued_at: String,
    /// A rotation was asked for and has not finished yet.
    #[serde(default)]
    pub rotating: bool,
    /// Why the last rotation failed (the previous version stays in use).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_error: Option<String>,
}

/// A resource request, as stored and as shown (it holds nothing internal).
/// `parameters` were validated against the resource type's schema, defaults filled in.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ResourceRequest {
    pub id: Uuid,
    pub team_id: Uuid,
    pub requester_id: Uuid,
    #[schema(example = "postgres")]
    pub resource_type: String,
    /// A DNS label, unique within the team for the resource type.
    #[schema(example = "orders-db")]
    pub name: String,
    #[schema(value_type = Object)]
    pub parameters: serde_json::Value,
    pub justification: String,
    pub status: RequestStatus,
    pub created_at: String,
    pub updated_at: String,
    pub history: Vec<Transition>,
    /// Present once provisioning has started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning: Option<ProvisioningInfo>,
    /// The non-secret outputs of the resource's Terraform module (e.g. `host`, `port`,
    /// `database`), present once it is `ready`. Secrets are never here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub outputs: Option<serde_json::Map<String, serde_json::Value>>,
    /// Present once the request has credentials (`GET /requests/{id}/credentials`);
    /// removed, with the credentials themselves, when the request is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<CredentialsInfo>,
    /// When the resource is deleted by itself (by the system); `null`: never.
    #[serde(default)]
    pub expires_at: Option<String>,
    /// The platform's estimate of what the resource costs a month, from the catalog's
    /// list prices and the validated parameters at submission (an estimate, not an AWS
    /// bill). Absent only on requests from before estimates existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_monthly_cost: Option<Money>,
    /// The team's budget check at submission, when the team has a budget: `within`
    /// false means approving it needs `override_budget`. Approval checks again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetCheck>,
}

/// What a provisioning job does with the request's Terraform state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobOperation {
    /// Create or converge the resource (`terraform apply`).
    #[default]
    Apply,
    /// Apply again with newly generated secrets; the request stays `ready`.
    Rotate,
    /// Remove the resource (`terraform plan -destroy`, then `apply` of that plan); the request becomes `deleted`.
    Destroy,
}

impl JobOperation {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Apply => "apply",
            Self::Rotate => "rotate",
            Self::Destroy => "destroy",
        }
    }
}

/// Where a job is: `queued` (waiting for `due_at`), `running` (claimed; the lease ends
/// at `due_at`), then `succeeded` or `failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
}

/// Work for the provisioning runner, written in the same transaction as an approval
/// so that no approved request can be lost on the way.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProvisioningJob {
    pub request_id: Uuid,
    pub team_id: Uuid,
    pub resource_type: String,
    pub name: String,
    pub parameters: serde_json::Value,
    pub operation: JobOperation,
    pub status: JobStatus,
    /// Runs started since the job was (re)queued by an approval, a rotation, a
    /// deletion or a retry.
    pub attempts: u32,
    /// Runs started over the job's whole life (never reset): numbers the logs.
    #[serde(default)]
    pub runs: u32,
    pub created_at: String,
    /// When the job next needs attention: a queued job may run from then on; a running
    /// job's lease expires then, and another runner may take it over.
    pub due_at: String,
    /// The runner holding the lease of a running job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_owner: Option<String>,
    /// The last run's failure summary (no secrets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl ProvisioningJob {
    /// A job that may run at once.
    pub fn queued(request: &ResourceRequest, operation: JobOperation, now: &str) -> Self {
        Self {
            request_id: request.id,
            team_id: request.team_id,
            resource_type: request.resource_type.clone(),
            name: request.name.clone(),
            parameters: request.parameters.clone(),
            operation,
            status: JobStatus::Queued,
            attempts: 0,
            runs: 0,
            created_at: now.to_string(),
            due_at: now.to_string(),
            lease_owner: None,
            last_error: None,
        }
    }
}

/// The output of one Terraform command of one provisioning attempt, as the runner
/// recorded it: already redacted (no generated secret, no sensitive output value).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct JobLog {
    /// The job's run this command belongs to, counted over the request's whole life.
    #[serde(default)]
    pub run: u32,
    #[serde(default)]
    pub operation: JobOperation,
    /// The attempt of that run's operation (1 = first try since it was queued).
    pub attempt: u32,
    /// The command's place in the attempt (0 = init, then plan, apply, output).
    pub seq: u32,
    #[schema(example = "apply")]
    pub phase: String,
    pub started_at: String,
    pub finished_at: String,
    /// `null` when the command was killed (timeout, lost lease).
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    /// Combined stdout and stderr, redacted; cut to its last part when very long.
    pub output: String,
    pub truncated: bool,
}
