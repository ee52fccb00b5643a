//! Domain types, and the public views of them that responses carry. A view never
//! holds a password hash, a token version or a key attribute.

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
/// [`RequestStatus::can_become`] and nowhere else.
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

    /// The state machine: `pending → approved | rejected | cancelled`, then (later
    /// phases) `approved → provisioning → ready | failed` and `ready → deleting → deleted`.
    pub fn can_become(self, to: RequestStatus) -> bool {
        use RequestStatus::*;
        matches!(
            (self, to),
            (Pending, Approved | Rejected | Cancelled)
                | (Approved, Provisioning)
                | (Provisioning, Ready | Failed)
                | (Ready, Deleting)
                | (Deleting, Deleted)
        )
    }

    /// Whether a request in this status still holds its name in the team.
    pub fn holds_name(self) -> bool {
        !matches!(self, Self::Rejected | Self::Cancelled | Self::Deleted)
    }
}

/// One step of a request's history.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct Transition {
    pub from: Option<RequestStatus>,
    pub to: RequestStatus,
    pub by: Uuid,
    pub at: String,
    pub comment: Option<String>,
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
}

/// Work for the provisioning worker, written in the same transaction as an approval
/// so that no approved request can be lost on the way.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProvisioningJob {
    pub request_id: Uuid,
    pub team_id: Uuid,
    pub resource_type: String,
    pub name: String,
    pub parameters: serde_json::Value,
    pub status: String,
    pub attempts: u32,
    pub created_at: String,
}
