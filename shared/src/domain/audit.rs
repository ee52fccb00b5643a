//! The audit log's rules: what an event records, its canonical form, and the hash
//! chain that makes a changed, removed or inserted event visible.
//!
//! Every event carries `seq` (1, 2, 3, … with no gap), `prev_hash` (the `hash` of the
//! event before it; [`GENESIS`] for the first) and
//! `hash = hex(SHA-256(prev_hash ‖ "\n" ‖ canonical))`, where `canonical` is the
//! event's JSON without `prev_hash` and `hash`, keys sorted, no whitespace
//! ([`canonical_json`]). `docs/audit.md` states the same so that an outside tool can
//! check an export; `scripts/audit-verify.py` is one.

use super::Actor;
use crate::model::{RequestStatus, ResourceRequest};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

/// The `prev_hash` of the first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Every action the log records, by name (`<target type>.<what happened>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    UserRegistered,
    UserCreated,
    LoginSucceeded,
    LoginFailed,
    Throttled,
    LoggedOut,
    PasswordChanged,
    RoleChanged,
    PublicKeySet,
    PublicKeyRemoved,
    UserDeleted,
    TeamCreated,
    TeamUpdated,
    TeamDeleted,
    MemberAdded,
    MemberRemoved,
    BudgetSet,
    BudgetRemoved,
    PolicyCreated,
    PolicyDeleted,
    NotificationsChanged,
    WebhookCreated,
    WebhookDeleted,
    WebhookDisabled,
    RequestSubmitted,
    RequestCancelled,
    RequestApproved,
    RequestRejected,
    RequestRetried,
    RequestExtended,
    DeletionRequested,
    RunStarted,
    RequestReady,
    RequestFailed,
    RunFailed,
    RequestDeleted,
    RotationRequested,
    CredentialsRotated,
    CredentialsRead,
}

impl Action {
    pub const ALL: [Action; 39] = [
        Self::UserRegistered,
        Self::UserCreated,
        Self::LoginSucceeded,
        Self::LoginFailed,
        Self::Throttled,
        Self::LoggedOut,
        Self::PasswordChanged,
        Self::RoleChanged,
        Self::PublicKeySet,
        Self::PublicKeyRemoved,
        Self::UserDeleted,
        Self::TeamCreated,
        Self::TeamUpdated,
        Self::TeamDeleted,
        Self::MemberAdded,
        Self::MemberRemoved,
        Self::BudgetSet,
        Self::BudgetRemoved,
        Self::PolicyCreated,
        Self::PolicyDeleted,
        Self::NotificationsChanged,
        Self::WebhookCreated,
        Self::WebhookDeleted,
        Self::WebhookDisabled,
        Self::RequestSubmitted,
        Self::RequestCancelled,
        Self::RequestApproved,
        Self::RequestRejected,
        Self::RequestRetried,
        Self::RequestExtended,
        Self::DeletionRequested,
        Self::RunStarted,
        Self::RequestReady,
        Self::RequestFailed,
        Self::RunFailed,
        Self::RequestDeleted,
        Self::RotationRequested,
        Self::CredentialsRotated,
        Self::CredentialsRead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserRegistered => "user.registered",
            Self::UserCreated => "user.created",
            Self::LoginSucceeded => "auth.login_succeeded",
            Self::LoginFailed => "auth.login_failed",
            Self::Throttled => "auth.throttled",
            Self::LoggedOut => "auth.logged_out",
            Self::PasswordChanged => "user.password_changed",
            Self::RoleChanged => "user.role_changed",
            Self::PublicKeySet => "user.public_key_set",
            Self::PublicKeyRemoved => "user.public_key_removed",
            Self::UserDeleted => "user.deleted",
            Self::TeamCreated => "team.created",
            Self::TeamUpdated => "team.updated",
            Self::TeamDeleted => "team.deleted",
            Self::MemberAdded => "team.member_added",
            Self::MemberRemoved => "team.member_removed",
            Self::BudgetSet => "team.budget_set",
            Self::BudgetRemoved => "team.budget_removed",
            Self::PolicyCreated => "policy.created",
            Self::PolicyDeleted => "policy.deleted",
            Self::NotificationsChanged => "user.notifications_changed",
            Self::WebhookCreated => "webhook.created",
            Self::WebhookDeleted => "webhook.deleted",
            Self::WebhookDisabled => "webhook.disabled",
            Self::RequestSubmitted => "request.submitted",
            Self::RequestCancelled => "request.cancelled",
            Self::RequestApproved => "request.approved",
            Self::RequestRejected => "request.rejected",
            Self::RequestRetried => "request.retried",
            Self::RequestExtended => "request.extended",
            Self::DeletionRequested => "request.deletion_requested",
            Self::RunStarted => "request.run_started",
            Self::RequestReady => "request.ready",
            Self::RequestFailed => "request.failed",
            Self::RunFailed => "request.run_failed",
            Self::RequestDeleted => "request.deleted",
            Self::RotationRequested => "request.rotation_requested",
            Self::CredentialsRotated => "request.credentials_rotated",
            Self::CredentialsRead => "request.credentials_read",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == raw)
    }
}

/// The action of a request's move from `from` to `to` (by a user, an expiry or the
/// runner).
pub fn transition_action(from: RequestStatus, to: RequestStatus) -> Action {
    use RequestStatus::*;
    match (from, to) {
        (_, Cancelled) => Action::RequestCancelled,
        (_, Approved) => Action::RequestApproved,
        (_, Rejected) => Action::RequestRejected,
        (Failed, Provisioning) | (Deleting, Deleting) => Action::RequestRetried,
        (_, Provisioning) => Action::RunStarted,
        (_, Ready) => Action::RequestReady,
        (_, Failed) => Action::RequestFailed,
        (_, Deleting) => Action::DeletionRequested,
        (_, Deleted) => Action::RequestDeleted,
        (_, Pending) => Action::RequestSubmitted,
    }
}

/// Where an API call came from. Absent for the platform's own steps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CallContext {
    /// The caller's address as API Gateway saw it.
    pub source_ip: Option<String>,
    /// The `User-Agent` header, cut to 256 characters.
    pub user_agent: Option<String>,
    /// API Gateway's request id (also in the function's log lines).
    pub request_id: Option<String>,
}

/// Who acts, from where, and when (the caller's clock; the chain may move it later,
/// never earlier: see [`chain`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Origin {
    pub actor: Actor,
    pub context: Option<CallContext>,
    pub at: String,
}

impl Origin {
    pub fn system(at: impl Into<String>) -> Self {
        Self {
            actor: Actor::System,
            context: None,
            at: at.into(),
        }
    }

    /// The same caller, as another actor (a login failure acts as the account, if any).
    pub fn as_actor(&self, actor: Actor) -> Self {
        Self { actor, ..self.clone() }
    }

    /// An event by this origin.
    pub fn event(&self, action: Action, target: Target) -> AuditEvent {
        AuditEvent {
            action,
            actor: self.actor,
            target,
            team_id: None,
            at: self.at.clone(),
            context: self.context.clone(),
            changes: Value::Object(Default::default()),
        }
    }
}

/// What an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Target {
    /// `user`, `team`, `request`, `policy`, `webhook`, `account` (a normalised email, for logins that name
    /// no user or are throttled) or `source` (a caller's address).
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
}

impl Target {
    pub fn user(id: Uuid) -> Self {
        Self {
            kind: "user".into(),
            id: id.to_string(),
        }
    }
    pub fn team(id: Uuid) -> Self {
        Self {
            kind: "team".into(),
            id: id.to_string(),
        }
    }
    pub fn policy(id: Uuid) -> Self {
        Self {
            kind: "policy".into(),
            id: id.to_string(),
        }
    }
    pub fn webhook(id: Uuid) -> Self {
        Self {
            kind: "webhook".into(),
            id: id.to_string(),
        }
    }
    pub fn request(id: Uuid) -> Self {
        Self {
            kind: "request".into(),
            id: id.to_string(),
        }
    }
    /// A caller's address (a registration throttle), as the throttle keys it.
    pub fn source(source: &str) -> Self {
        Self {
            kind: "source".into(),
            id: source.into(),
        }
    }
    /// A login for an email that names no user: the normalised email (never a password).
    pub fn account(normalised_email: &str) -> Self {
        Self {
            kind: "account".into(),
            id: normalised_email.into(),
        }
    }
}

impl Origin {
    /// A move of `request` from `from` to `to`, with its comment.
    pub fn transition(&self, request: &ResourceRequest, to: RequestStatus, comment: Option<&str>) -> AuditEvent {
        let mut event = self
            .event(transition_action(request.status, to), Target::request(request.id))
            .team(Some(request.team_id))
            .changed("status", request.status, to);
        if let Some(comment) = comment {
            event = event.fact("comment", comment);
        }
        event
    }
}

/// An event before it joins the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub action: Action,
    pub actor: Actor,
    pub target: Target,
    pub team_id: Option<Uuid>,
    pub at: String,
    pub context: Option<CallContext>,
    /// What changed, as `{"field": {"from": …, "to": …}}` or a few named facts; chosen
    /// field by field, so no secret or password hash can reach it.
    pub changes: Value,
}

impl AuditEvent {
    pub fn team(mut self, team_id: Option<Uuid>) -> Self {
        self.team_id = team_id;
        self
    }

    /// Adds `name: {"from": from, "to": to}` to the changes.
    pub fn changed(self, name: &str, from: impl Serialize, to: impl Serialize) -> Self {
        self.fact(name, serde_json::json!({ "from": to_value(from), "to": to_value(to) }))
    }

    /// Adds `name: value` to the changes.
    pub fn fact(mut self, name: &str, value: impl Serialize) -> Self {
        if let Value::Object(map) = &mut self.changes {
            map.insert(name.into(), to_value(value));
        }
        self
    }
}

fn to_value(v: impl Serialize) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// An event in the chain, as stored and exported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChainedEvent {
    pub seq: u64,
    pub at: String,
    pub action: String,
    #[schema(value_type = String)]
    pub actor: Actor,
    pub target: Target,
    pub team_id: Option<Uuid>,
    pub context: Option<CallContext>,
    #[schema(value_type = Object)]
    pub changes: Value,
    pub prev_hash: String,
    pub hash: String,
}

impl ChainedEvent {
    /// SHA-256 of `prev_hash`, a newline and the canonical form of the rest.
    pub fn compute_hash(&self) -> String {
        let mut body = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut body {
            map.remove("prev_hash");
            map.remove("hash");
        }
        let mut digest = Sha256::new();
        digest.update(self.prev_hash.as_bytes());
        digest.update(b"\n");
        digest.update(canonical_json(&body).as_bytes());
        hex(&digest.finalize())
    }
}

/// The end of the chain: the last event's number, hash and time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChainHead {
    pub seq: u64,
    pub hash: String,
    pub at: String,
}

impl ChainHead {
    pub fn empty() -> Self {
        Self {
            seq: 0,
            hash: GENESIS.into(),
            at: String::new(),
        }
    }
}

/// Appends `events` after `head`: numbers them on, links and hashes them, and keeps
/// time from going backwards along the chain (an event is stamped no earlier than the
/// one before it, so that ordering by time is ordering by `seq`). Returns the events
/// and the new head.
pub fn chain(head: &ChainHead, events: &[AuditEvent]) -> (Vec<ChainedEvent>, ChainHead) {
    let mut head = head.clone();
    let mut chained = Vec::with_capacity(events.len());
    for event in events {
        let at = if event.at.as_str() > head.at.as_str() {
            event.at.clone()
        } else {
            head.at.clone()
        };
        let mut next = ChainedEvent {
            seq: head.seq + 1,
            at,
            action: event.action.as_str().into(),
            actor: event.actor,
            target: event.target.clone(),
            team_id: event.team_id,
            context: event.context.clone(),
            changes: event.changes.clone(),
            prev_hash: head.hash.clone(),
            hash: String::new(),
        };
        next.hash = next.compute_hash();
        head = ChainHead {
            seq: next.seq,
            hash: next.hash.clone(),
            at: next.at.clone(),
        };
        chained.push(next);
    }
    (chained, head)
}

/// The first link of a chain that does not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct BrokenLink {
    /// The `seq` at which the chain breaks (for a missing event: the one expected).
    pub seq: u64,
    pub reason: String,
}

/// What a check of the whole chain found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Verification {
    pub ok: bool,
    /// How many events were read.
    pub events: u64,
    /// The head item, if there is one.
    pub head: Option<ChainHead>,
    pub first_broken: Option<BrokenLink>,
}

/// Checks events read in `seq` order against each other and the head: every number
/// present once and in order, every hash recomputed, every `prev_hash` the hash
/// before it, and the head naming the last event (so that removing the newest events
/// shows too).
pub struct Verifier {
    expected_seq: u64,
    prev_hash: String,
    events: u64,
    broken: Option<BrokenLink>,
}

impl Default for Verifier {
    fn default() -> Self {
        Self {
            expected_seq: 1,
            prev_hash: GENESIS.into(),
            events: 0,
            broken: None,
        }
    }
}

impl Verifier {
    /// Feeds the next event; returns false once the chain is broken (later events
    /// change nothing).
    pub fn push(&mut self, event: &ChainedEvent) -> bool {
        if self.broken.is_some() {
            return false;
        }
        self.events += 1;
        let reason = if event.seq != self.expected_seq {
            Some(if event.seq > self.expected_seq {
                format!(
                    "event {} is missing (the next one found is {})",
                    self.expected_seq, event.seq
                )
            } else {
                format!("event {} appears out of order", event.seq)
            })
        } else if event.prev_hash != self.prev_hash {
            Some(format!("event {} does not link to the event before it", event.seq))
        } else if event.compute_hash() != event.hash {
            Some(format!("event {} was changed after it was written", event.seq))
        } else {
            None
        };
        if let Some(reason) = reason {
            self.broken = Some(BrokenLink {
                seq: self.expected_seq,
                reason,
            });
            return false;
        }
        self.expected_seq += 1;
        self.prev_hash = event.hash.clone();
        true
    }

    /// The `seq` of the last intact event read (0: none).
    pub fn last_seq(&self) -> u64 {
        self.expected_seq - 1
    }

    /// An item in the chain's place that does not read as an event (`sk`: its key).
    pub fn unreadable(&mut self, sk: &str) -> bool {
        if self.broken.is_none() {
            self.events += 1;
            self.broken = Some(BrokenLink {
                seq: self.expected_seq,
                reason: format!("the item {sk} is not a readable event (edited after it was written)"),
            });
        }
        false
    }

    /// The head item exists but does not read as a head.
    pub fn head_unreadable(mut self) -> Verification {
        if self.broken.is_none() {
            self.broken = Some(BrokenLink {
                seq: self.expected_seq,
                reason: "the chain's head item is not readable (edited)".into(),
            });
        }
        self.finish(None)
    }

    pub fn finish(mut self, head: Option<ChainHead>) -> Verification {
        if self.broken.is_none() {
            let last_seq = self.expected_seq - 1;
            match &head {
                Some(h) if last_seq > h.seq => {
                    self.broken = Some(BrokenLink {
                        seq: h.seq + 1,
                        reason: format!(
                            "event {} lies past the head, which names event {} (appended outside the chain)",
                            h.seq + 1,
                            h.seq
                        ),
                    });
                }
                Some(h) if h.seq != last_seq || (h.seq > 0 && h.hash != self.prev_hash) => {
                    self.broken = Some(BrokenLink {
                        seq: last_seq + 1,
                        reason: format!("the head names event {} but the last event found is {last_seq}", h.seq),
                    });
                }
                None if last_seq > 0 => {
                    self.broken = Some(BrokenLink {
                        seq: last_seq,
                        reason: "the chain's head item is missing".into(),
                    });
                }
                _ => {}
            }
        }
        Verification {
            ok: self.broken.is_none(),
            events: self.events,
            head,
            first_broken: self.broken,
        }
    }
}

/// JSON with object keys sorted and no whitespace (strings and numbers as
/// `serde_json` writes them, which matches Python's
/// `json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`).
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(at: &str) -> Origin {
        Origin {
            actor: Actor::User(Uuid::nil()),
            context: Some(CallContext {
                source_ip: Some("127.0.0.1".into()),
                user_agent: Some("test".into()),
                request_id: Some("r-1".into()),
            }),
            at: at.into(),
        }
    }

    fn three() -> Vec<ChainedEvent> {
        let o = origin("2026-01-01T00:00:00.000000Z");
        let events = vec![
            o.event(Action::TeamCreated, Target::team(Uuid::nil())),
            o.event(Action::MemberAdded, Target::user(Uuid::nil()))
                .team(Some(Uuid::nil()))
                .changed("team_id", None::<Uuid>, Uuid::nil()),
            o.event(Action::RequestSubmitted, Target::request(Uuid::nil())),
        ];
        chain(&ChainHead::empty(), &events).0
    }

    fn verify(events: &[ChainedEvent], head: Option<ChainHead>) -> Verification {
        let mut v = Verifier::default();
        for e in events {
            v.push(e);
        }
        v.finish(head)
    }

    fn head_of(events: &[ChainedEvent]) -> Option<ChainHead> {
        events.last().map(|e| ChainHead {
            seq: e.seq,
            hash: e.hash.clone(),
            at: e.at.clone(),
        })
    }

    #[test]
    fn a_chain_links_each_event_to_the_one_before() {
        let events = three();
        assert_eq!(events[0].prev_hash, GENESIS);
        assert_eq!(events[1].prev_hash, events[0].hash);
        assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);
        let v = verify(&events, head_of(&events));
        assert!(v.ok, "{v:?}");
        assert_eq!(v.events, 3);
    }

    #[test]
    fn chaining_twice_continues_from_the_head() {
        let events = three();
        let head = head_of(&events).unwrap();
        let (more, new_head) = chain(
            &head,
            &[origin("2025-01-01T00:00:00.000000Z").event(Action::LoggedOut, Target::user(Uuid::nil()))],
        );
        assert_eq!(more[0].seq, 4);
        assert_eq!(more[0].prev_hash, head.hash);
        // A clock behind the chain's head is moved up to it.
        assert_eq!(more[0].at, head.at);
        assert_eq!(new_head.seq, 4);
        let all: Vec<_> = events.into_iter().chain(more).collect();
        assert!(verify(&all, Some(new_head)).ok);
    }

    #[test]
    fn a_changed_event_breaks_the_chain_at_that_event() {
        let mut events = three();
        events[1].changes = serde_json::json!({"role": "admin"});
        let v = verify(&events, head_of(&events));
        assert!(!v.ok);
        let broken = v.first_broken.unwrap();
        assert_eq!(broken.seq, 2);
        assert!(broken.reason.contains("changed"), "{}", broken.reason);
    }

    #[test]
    fn a_rehashed_change_still_breaks_the_next_link() {
        let mut events = three();
        events[1].actor = Actor::System;
        events[1].hash = events[1].compute_hash();
        let v = verify(&events, head_of(&events));
        assert_eq!(v.first_broken.unwrap().seq, 3);
    }

    #[test]
    fn a_removed_event_is_found_as_missing() {
        let mut events = three();
        let head = head_of(&events);
        events.remove(1);
        let v = verify(&events, head);
        let broken = v.first_broken.unwrap();
        assert_eq!(broken.seq, 2);
        assert!(broken.reason.contains("missing"), "{}", broken.reason);
    }

    #[test]
    fn removing_the_newest_events_shows_against_the_head() {
        let mut events = three();
        let head = head_of(&events);
        events.pop();
        let v = verify(&events, head);
        assert_eq!(v.first_broken.unwrap().seq, 3);
        assert!(!verify(&three(), None).ok, "events without a head");
        assert!(verify(&[], None).ok, "an empty log");
    }

    #[test]
    fn an_event_past_the_head_or_an_unreadable_item_breaks_the_chain() {
        let events = three();
        let mut head = head_of(&events).unwrap();
        head.seq = 2;
        let v = verify(&events, Some(head));
        assert_eq!(v.first_broken.unwrap().seq, 3, "the third lies past the head");
        let mut verifier = Verifier::default();
        verifier.push(&events[0]);
        assert!(!verifier.unreadable("EVENT#x#000000000002"));
        let v = verifier.finish(head_of(&events));
        assert_eq!(v.first_broken.unwrap().seq, 2);
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let v = serde_json::json!({"b": 1, "a": {"d": [1, {"z": null, "y": "é\n"}], "c": true}});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"c":true,"d":[1,{"y":"é\n","z":null}]},"b":1}"#
        );
    }

    #[test]
    fn every_move_of_the_state_machine_has_its_action() {
        use RequestStatus::*;
        assert_eq!(transition_action(Pending, Approved), Action::RequestApproved);
        assert_eq!(transition_action(Failed, Provisioning), Action::RequestRetried);
        assert_eq!(transition_action(Deleting, Deleting), Action::RequestRetried);
        assert_eq!(transition_action(Approved, Provisioning), Action::RunStarted);
        assert_eq!(transition_action(Ready, Deleting), Action::DeletionRequested);
        assert_eq!(transition_action(Failed, Deleting), Action::DeletionRequested);
        assert_eq!(transition_action(Deleting, Deleted), Action::RequestDeleted);
        assert_eq!(transition_action(Pending, Cancelled), Action::RequestCancelled);
    }

    #[test]
    fn action_names_round_trip_and_are_unique() {
        let mut names: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(a));
        }
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Action::ALL.len());
        assert_eq!(Action::parse("request.nope"), None);
    }
}
