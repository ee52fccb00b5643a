//! Every key format of the single table, and nothing else. See `docs/data-model.md`.
//!
//! | item            | PK                         | SK                 | GSI1PK  | GSI1SK                        |
//! |-----------------|----------------------------|--------------------|---------|-------------------------------|
//! | user            | `USER#<id>`                | `USER#<id>`        | `USERS` | `USER#<created_at>#<id>`      |
//! | email marker    | `EMAIL#<lower-case email>` | same               |         |                               |
//! | team            | `TEAM#<id>`                | `TEAM#<id>`        | `TEAMS` | `TEAM#<created_at>#<id>`      |
//! | team name marker| `TEAMNAME#<lower-case name>`| same              |         |                               |
//! | membership      | `TEAM#<team id>`           | `MEMBER#<user id>` |         |                               |
//! | admin counter   | `META#ADMINS`              | same               |         |                               |
//! | login failures (account, source) | `LOGINFAIL#<window>#<source>#<email>` | same |  |                  |
//! | login failures (account) | `LOGINACCT#<window>#<email>` | same   |         |                               |
//! | registrations (source) | `REGISTER#<window>#<source>` | same        |         |                               |
//! | request         | `REQUEST#<id>`             | same               | `REQSTATUS#<status>` | `REQUEST#<created_at>#<id>` |
//! | request name    | `REQNAME#<team>#<type>#<name>` | same           |         |                               |
//! | provisioning job| `JOB#<request id>`         | same               | `JOBSTATUS#<status>` | `JOB#<due_at>#<request id>` |
//! | credentials     | `CREDS#<request id>`       | same               |         |                               |
//! | job log         | `JOBLOG#<request id>`      | `RUN#<run>#<seq>#<phase>`     |  |                        |
//! | expiry          | `EXPIRY#<request id>`      | same               | `EXPIRIES` | `EXPIRY#<expires_at>#<request id>` |
//! | audit event     | `AUDIT`                    | `EVENT#<at>#<seq>` |         |                               |
//! | audit head      | `META#AUDITHEAD`           | same               |         |                               |
//! | approval policy | `POLICIES`                 | `POLICY#<id>`      |         |                               |
//! | expiry warning  | `EXPIRYWARN#<request id>`  | same               | `EXPIRYWARNINGS` | `EXPIRYWARN#<warn_at>#<request id>` |
//! | outbox notice   | `OUTBOX#<notice id>`       | `NOTICE`           | `OUTBOX#pending` (until expanded) | `OUTBOX#<created_at>#<notice id>#NOTICE` |
//! | outbox delivery | `OUTBOX#<notice id>`       | `TO#<channel>#<recipient id>` | `OUTBOX#pending` / `OUTBOX#failed` (none once sent) | `OUTBOX#<due_at>#<notice id>#<SK>` |
//! | webhook         | `WEBHOOK#<id>`             | same               | `WEBHOOKS` | `WEBHOOK#<created_at>#<id>`   |
//! | budget alert    | `BUDGETALERT#<team>#<month>#<percent>` | same   |         |                               |
//!
//! Requests are also indexed by team (GSI2: `TEAMREQ#<team id>`) and by requester
//! (GSI3: `USERREQ#<user id>`), both sorted by `REQUEST#<created_at>#<id>`. Audit
//! events are also indexed by team (GSI2: `AUDITTEAM#<team id>`) and by actor (GSI3:
//! `AUDITACTOR#<actor>`), both sorted by their own sort key.

use uuid::Uuid;

pub const PK: &str = "PK";
pub const SK: &str = "SK";

/// One of the table's global secondary indexes (their key attributes are
/// `GSI<n>PK`/`GSI<n>SK`; see `template.yaml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Index {
    /// Lists in creation or due order: users, teams, requests by status, jobs,
    /// expiries, the outbox, webhooks.
    Gsi1,
    /// By team: a team's requests and audit events.
    Gsi2,
    /// By person: a requester's requests, an actor's audit events.
    Gsi3,
}

impl Index {
    /// The index's name, for a query.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Gsi1 => "GSI1",
            Self::Gsi2 => "GSI2",
            Self::Gsi3 => "GSI3",
        }
    }

    /// The item attribute that holds the index's partition key.
    pub const fn pk(self) -> &'static str {
        match self {
            Self::Gsi1 => "GSI1PK",
            Self::Gsi2 => "GSI2PK",
            Self::Gsi3 => "GSI3PK",
        }
    }

    /// The item attribute that holds the index's sort key.
    pub const fn sk(self) -> &'static str {
        match self {
            Self::Gsi1 => "GSI1SK",
            Self::Gsi2 => "GSI2SK",
            Self::Gsi3 => "GSI3SK",
        }
    }
}

/// An item's key in one index: which index is part of the key, so that a team's
/// key cannot be written into the requester's index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexKey {
    pub index: Index,
    pub pk: String,
    pub sk: String,
}

fn in_index(index: Index, pk: String, sk: String) -> IndexKey {
    IndexKey { index, pk, sk }
}

pub const USER: &str = "USER";
pub const EMAIL: &str = "EMAIL";
pub const TEAM: &str = "TEAM";
pub const TEAM_NAME: &str = "TEAMNAME";
pub const MEMBER: &str = "MEMBER";
pub const META: &str = "META";
pub const LOGIN_FAILURES: &str = "LOGINFAIL";
pub const LOGIN_ACCOUNT: &str = "LOGINACCT";
pub const REGISTRATIONS: &str = "REGISTER";
pub const REQUEST: &str = "REQUEST";
pub const REQUEST_NAME: &str = "REQNAME";
pub const JOB: &str = "JOB";
pub const JOB_LOG: &str = "JOBLOG";
pub const CREDENTIALS: &str = "CREDS";
pub const EXPIRY: &str = "EXPIRY";
pub const AUDIT: &str = "AUDIT";
pub const POLICY: &str = "POLICY";
pub const EXPIRY_WARNING: &str = "EXPIRYWARN";
pub const BUDGET_ALERT: &str = "BUDGETALERT";
pub const OUTBOX: &str = "OUTBOX";
pub const WEBHOOK: &str = "WEBHOOK";

/// A key pair `(PK, SK)`.
pub type Key = (String, String);

fn same(pk: String) -> Key {
    (pk.clone(), pk)
}

pub fn user(id: Uuid) -> Key {
    same(format!("{USER}#{id}"))
}

pub fn users_index(created_at: &str, id: Uuid) -> IndexKey {
    in_index(Index::Gsi1, USERS_INDEX_PK.into(), format!("{USER}#{created_at}#{id}"))
}

pub const USERS_INDEX_PK: &str = "USERS";

/// `email` must already be normalised (trimmed, lower-case).
pub fn email(normalised: &str) -> Key {
    same(format!("{EMAIL}#{normalised}"))
}

pub fn team_pk(id: Uuid) -> String {
    format!("{TEAM}#{id}")
}

pub fn team(id: Uuid) -> Key {
    same(team_pk(id))
}

pub const TEAMS_INDEX_PK: &str = "TEAMS";

pub fn teams_index(created_at: &str, id: Uuid) -> IndexKey {
    in_index(Index::Gsi1, TEAMS_INDEX_PK.into(), format!("{TEAM}#{created_at}#{id}"))
}

/// `name` must already be normalised (trimmed, lower-case).
pub fn team_name(normalised: &str) -> Key {
    same(format!("{TEAM_NAME}#{normalised}"))
}

pub const MEMBER_PREFIX: &str = "MEMBER#";

pub fn membership(team_id: Uuid, user_id: Uuid) -> Key {
    (team_pk(team_id), format!("{MEMBER_PREFIX}{user_id}"))
}

pub fn admin_counter() -> Key {
    same(format!("{META}#ADMINS"))
}

// The throttle counters: one item per window (so a window's count starts from zero
// by itself, and old windows expire through TTL). The fixed-format parts come first
// and the email last, so no email (which may contain `#`) can make one key look like
// another. `source` is `throttle::source_key` (an IP address or an IPv6 /64).

/// Failed password checks on one account from one source.
pub fn login_failures(window: i64, source: &str, normalised_email: &str) -> Key {
    same(format!("{LOGIN_FAILURES}#{window}#{source}#{normalised_email}"))
}

/// Failed password checks on one account from all sources, and its back-off.
pub fn login_account(window: i64, normalised_email: &str) -> Key {
    same(format!("{LOGIN_ACCOUNT}#{window}#{normalised_email}"))
}

/// Registrations from one source that hit an existing email.
pub fn registrations(window: i64, source: &str) -> Key {
    same(format!("{REGISTRATIONS}#{window}#{source}"))
}

/// Read (never written) at Lambda init to open the connection.
pub fn warmup() -> Key {
    same(format!("{META}#WARMUP"))
}

pub fn request(id: Uuid) -> Key {
    same(format!("{REQUEST}#{id}"))
}

fn request_sort(created_at: &str, id: Uuid) -> String {
    format!("{REQUEST}#{created_at}#{id}")
}

/// GSI1 partition of the requests in one status (the review queue is `pending`).
pub fn requests_by_status_pk(status: &str) -> String {
    format!("REQSTATUS#{status}")
}

pub fn requests_by_status(status: &str, created_at: &str, id: Uuid) -> IndexKey {
    in_index(Index::Gsi1, requests_by_status_pk(status), request_sort(created_at, id))
}

/// GSI2 partition of a team's requests.
pub fn requests_by_team_pk(team_id: Uuid) -> String {
    format!("TEAMREQ#{team_id}")
}

pub fn requests_by_team(team_id: Uuid, created_at: &str, id: Uuid) -> IndexKey {
    in_index(Index::Gsi2, requests_by_team_pk(team_id), request_sort(created_at, id))
}

/// GSI3 partition of a user's own requests.
pub fn requests_by_requester_pk(user_id: Uuid) -> String {
    format!("USERREQ#{user_id}")
}

pub fn requests_by_requester(user_id: Uuid, created_at: &str, id: Uuid) -> IndexKey {
    in_index(
        Index::Gsi3,
        requests_by_requester_pk(user_id),
        request_sort(created_at, id),
    )
}

/// Reserves a request name within a team, for one resource type.
pub fn request_name(team_id: Uuid, resource_type: &str, name: &str) -> Key {
    same(format!("{REQUEST_NAME}#{team_id}#{resource_type}#{name}"))
}

/// The provisioning job of an approved request (consumed by the provisioning worker).
pub fn job(request_id: Uuid) -> Key {
    same(format!("{JOB}#{request_id}"))
}

/// GSI1 partition of the jobs in one status (only `queued` and `running` jobs are
/// indexed: finished ones need no attention).
pub fn jobs_by_status_pk(status: &str) -> String {
    format!("JOBSTATUS#{status}")
}

/// Sort key prefix in a job-status partition for everything due before `at`: a job
/// sorts by its `due_at` (run from / lease end).
pub fn jobs_due_before(at: &str) -> String {
    format!("{JOB}#{at}#")
}

pub fn jobs_by_status(status: &str, due_at: &str, request_id: Uuid) -> IndexKey {
    in_index(
        Index::Gsi1,
        jobs_by_status_pk(status),
        format!("{JOB}#{due_at}#{request_id}"),
    )
}

/// The current (envelope-encrypted) credentials of a request.
pub fn credentials(request_id: Uuid) -> Key {
    same(format!("{CREDENTIALS}#{request_id}"))
}

/// The expiry of a request, indexed by time so the sweep finds what is due in one query.
pub fn expiry(request_id: Uuid) -> Key {
    same(format!("{EXPIRY}#{request_id}"))
}

pub const EXPIRIES_PK: &str = "EXPIRIES";

pub fn expiries_index(expires_at: &str, request_id: Uuid) -> IndexKey {
    in_index(
        Index::Gsi1,
        EXPIRIES_PK.to_string(),
        format!("{EXPIRY}#{expires_at}#{request_id}"),
    )
}

/// Sort key bound in the expiry partition for everything due before `at`.
pub fn expiries_before(at: &str) -> String {
    format!("{EXPIRY}#{at}#")
}

/// The warning sent to a requester before their request expires (see
/// [`crate::notify::EXPIRY_WARNING`]), indexed by when it is due.
/// That a team's budget notice for one month and threshold was written (once).
pub fn budget_alert(team_id: Uuid, month: &str, percent: u32) -> Key {
    same(format!("{BUDGET_ALERT}#{team_id}#{month}#{percent}"))
}

pub fn expiry_warning(request_id: Uuid) -> Key {
    same(format!("{EXPIRY_WARNING}#{request_id}"))
}

pub const EXPIRY_WARNINGS_PK: &str = "EXPIRYWARNINGS";

pub fn expiry_warnings_index(warn_at: &str, request_id: Uuid) -> IndexKey {
    in_index(
        Index::Gsi1,
        EXPIRY_WARNINGS_PK.to_string(),
        format!("{EXPIRY_WARNING}#{warn_at}#{request_id}"),
    )
}

/// Sort key bound in the expiry-warning partition for everything due before `at`.
pub fn expiry_warnings_before(at: &str) -> String {
    format!("{EXPIRY_WARNING}#{at}#")
}

pub fn outbox_pk(notice_id: Uuid) -> String {
    format!("{OUTBOX}#{notice_id}")
}

pub const OUTBOX_NOTICE_SK: &str = "NOTICE";

/// A notice in the outbox, as its cause's transaction writes it.
pub fn outbox_notice(notice_id: Uuid) -> Key {
    (outbox_pk(notice_id), OUTBOX_NOTICE_SK.to_string())
}

/// One delivery of a notice: to one user by mail (`channel` `email`, recipient the
/// user id) or to one webhook (`webhook`, the hook's id).
pub fn outbox_delivery(notice_id: Uuid, channel: &str, recipient: Uuid) -> Key {
    (outbox_pk(notice_id), format!("TO#{channel}#{recipient}"))
}

/// GSI1 partition of the outbox items in one state: `pending` (due or leased, for the
/// notifier) or `failed` (given up, for admins).
pub fn outbox_by_state_pk(state: &str) -> String {
    format!("{OUTBOX}#{state}")
}

/// An outbox item's place in its state partition: by `at` (due time, lease end, or
/// when it failed).
pub fn outbox_by_state(state: &str, at: &str, key: &Key) -> IndexKey {
    in_index(
        Index::Gsi1,
        outbox_by_state_pk(state),
        format!("{OUTBOX}#{at}#{}#{}", key.0.trim_start_matches("OUTBOX#"), key.1),
    )
}

/// Sort key bound in an outbox state partition for everything due before `at`.
pub fn outbox_before(at: &str) -> String {
    format!("{OUTBOX}#{at}#")
}

pub fn webhook(id: Uuid) -> Key {
    same(format!("{WEBHOOK}#{id}"))
}

pub const WEBHOOKS_INDEX_PK: &str = "WEBHOOKS";

pub fn webhooks_index(created_at: &str, id: Uuid) -> IndexKey {
    in_index(
        Index::Gsi1,
        WEBHOOKS_INDEX_PK.into(),
        format!("{WEBHOOK}#{created_at}#{id}"),
    )
}

pub fn job_log_pk(request_id: Uuid) -> String {
    format!("{JOB_LOG}#{request_id}")
}

/// One phase (init, plan, apply, …) of one run of a job; sorts by the run (counted
/// over the job's whole life: apply, rotations, destroy), then by the phase's place in
/// the run.
pub fn job_log(request_id: Uuid, run: u32, seq: u32, phase: &str) -> Key {
    (job_log_pk(request_id), format!("RUN#{run:04}#{seq:02}#{phase}"))
}

/// The audit log's one partition: every event, in chain order (time, then `seq`:
/// the chain never lets time go backwards, so both orders agree).
pub const AUDIT_PK: &str = AUDIT;

/// Sort key of audit event `seq` stamped `at` (`seq` zero-padded to 12 digits).
pub fn audit_event_sk(at: &str, seq: u64) -> String {
    format!("EVENT#{at}#{seq:012}")
}

pub fn audit_event(at: &str, seq: u64) -> Key {
    (AUDIT_PK.to_string(), audit_event_sk(at, seq))
}

/// Sort-key bounds of the events stamped from `from` up to and including `to`.
pub fn audit_events_between(from: Option<&str>, to: Option<&str>) -> (String, String) {
    (
        format!("EVENT#{}", from.unwrap_or("")),
        format!("EVENT#{}~", to.unwrap_or("9999")),
    )
}

/// GSI2 partition of one team's audit events.
pub fn audit_by_team_pk(team_id: Uuid) -> String {
    format!("AUDITTEAM#{team_id}")
}

/// GSI3 partition of one actor's audit events (`actor`: a user id, `system` or
/// `anonymous`).
pub fn audit_by_actor_pk(actor: &str) -> String {
    format!("AUDITACTOR#{actor}")
}

/// An audit event (its sort key `sk`) in its team's partition of GSI2.
pub fn audit_by_team(team_id: Uuid, sk: String) -> IndexKey {
    in_index(Index::Gsi2, audit_by_team_pk(team_id), sk)
}

/// An audit event (its sort key `sk`) in its actor's partition of GSI3.
pub fn audit_by_actor(actor: &str, sk: String) -> IndexKey {
    in_index(Index::Gsi3, audit_by_actor_pk(actor), sk)
}

/// The end of the audit chain: the last event's `seq`, `hash` and time.
pub fn audit_head() -> Key {
    same(format!("{META}#AUDITHEAD"))
}

/// The one partition of approval policies: read whole, strongly consistent, at every
/// submission (so a deleted policy never applies again).
pub const POLICIES_PK: &str = "POLICIES";

pub const POLICY_PREFIX: &str = "POLICY#";

pub fn policy(id: Uuid) -> Key {
    (POLICIES_PK.to_string(), format!("{POLICY_PREFIX}{id}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_formats_are_stable() {
        let id = Uuid::nil();
        assert_eq!(user(id).0, format!("USER#{id}"));
        assert_eq!(membership(id, id).1, format!("MEMBER#{id}"));
        assert_eq!(email("a@b.c").0, "EMAIL#a@b.c");
        assert_eq!(team_name("ops").0, "TEAMNAME#ops");
        assert_eq!(login_failures(7, "192.0.2.1", "a@b.c").0, "LOGINFAIL#7#192.0.2.1#a@b.c");
        assert_eq!(login_account(7, "a@b.c").0, "LOGINACCT#7#a@b.c");
        assert_eq!(registrations(7, "2001:db8::/64").0, "REGISTER#7#2001:db8::/64");
        assert_eq!(request(id).0, format!("REQUEST#{id}"));
        assert_eq!(
            request_name(id, "postgres", "db").0,
            format!("REQNAME#{id}#postgres#db")
        );
        assert_eq!(job(id).0, format!("JOB#{id}"));
        assert_eq!(
            jobs_by_status("queued", "t", id),
            IndexKey {
                index: Index::Gsi1,
                pk: "JOBSTATUS#queued".into(),
                sk: format!("JOB#t#{id}")
            }
        );
        assert!(
            jobs_by_status("queued", "2026-01-01T00:00:00.000000Z", id).sk
                < jobs_due_before("2026-01-01T00:00:00.000001Z")
        );
        assert_eq!(job_log(id, 3, 1, "plan").1, "RUN#0003#01#plan");
        assert_eq!(expiry(id).0, format!("EXPIRY#{id}"));
        assert!(expiries_index("2026-01-01T00:00:00.000000Z", id).sk < expiries_before("2026-01-01T00:00:00.000001Z"));
        assert_eq!(requests_by_status("pending", "t", id).pk, "REQSTATUS#pending");
        assert_eq!(expiry_warning(id).0, format!("EXPIRYWARN#{id}"));
        assert!(
            expiry_warnings_index("2026-01-01T00:00:00.000000Z", id).sk
                < expiry_warnings_before("2026-01-01T00:00:00.000001Z")
        );
        assert_eq!(outbox_notice(id), (format!("OUTBOX#{id}"), "NOTICE".into()));
        assert_eq!(outbox_delivery(id, "email", id).1, format!("TO#email#{id}"));
        let at = "2026-01-01T00:00:00.000000Z";
        let placed = outbox_by_state("pending", at, &outbox_delivery(id, "email", id));
        assert_eq!(placed.pk, "OUTBOX#pending");
        assert_eq!(placed.sk, format!("OUTBOX#{at}#{id}#TO#email#{id}"));
        assert!(placed.sk < outbox_before("2026-01-01T00:00:00.000001Z"));
        assert_eq!(webhook(id).0, format!("WEBHOOK#{id}"));
        assert_eq!(requests_by_team(id, "t", id).pk, format!("TEAMREQ#{id}"));
        assert_eq!(requests_by_requester(id, "t", id).sk, format!("REQUEST#t#{id}"));
        // Each index key names its index: a team's key cannot land in the requester's.
        assert_eq!(requests_by_status("pending", "t", id).index, Index::Gsi1);
        assert_eq!(requests_by_team(id, "t", id).index, Index::Gsi2);
        assert_eq!(requests_by_requester(id, "t", id).index, Index::Gsi3);
        assert_eq!(audit_by_team(id, "s".into()).index, Index::Gsi2);
        assert_eq!(audit_by_actor("system", "s".into()).index, Index::Gsi3);
        for (index, name) in [(Index::Gsi1, "GSI1"), (Index::Gsi2, "GSI2"), (Index::Gsi3, "GSI3")] {
            assert_eq!(index.name(), name);
            assert_eq!(index.pk(), format!("{name}PK"));
            assert_eq!(index.sk(), format!("{name}SK"));
        }
        assert_eq!(audit_event("t", 42).1, "EVENT#t#000000000042");
        let (from, to) = audit_events_between(Some("2026-01-01"), Some("2026-01-02T00:00:00.000000Z"));
        assert!(from < audit_event_sk("2026-01-01T00:00:00.000000Z", 1));
        assert!(audit_event_sk("2026-01-02T00:00:00.000000Z", 999) < to);
        assert!(audit_event_sk("2026-01-02T00:00:00.000001Z", 1) > to);
        assert_eq!(audit_head().0, "META#AUDITHEAD");
        assert_eq!(
            budget_alert(id, "2027-03", 80).0,
            format!("BUDGETALERT#{id}#2027-03#80")
        );
        assert_eq!(policy(id), ("POLICIES".into(), format!("POLICY#{id}")));
    }
}
