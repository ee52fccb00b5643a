//! Resource requests: creation with a per-team name reservation, status transitions
//! as conditional writes on the current status (approval writes the provisioning job
//! in the same transaction), and the request lists.

use super::{from_item, keys, s, Expr, Item, KeyCondition, QueryPage, Store, StoreError, Stored, Tx};
use crate::{
    domain::{
        audit::{Action, AuditEvent, Origin, Target},
        policy::ApprovalPolicy,
        PlannedTransition,
    },
    model::{RequestStatus, ResourceRequest, Team, Transition},
};
use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Serialize, Deserialize)]
struct RequestNameMarker {
    request_id: Uuid,
}

/// How often, and how long apart, a read that must see every request of a team or a
/// user reads the index before it gives up waiting for it to catch up.
const INDEX_READS: usize = 20;
const INDEX_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

/// Something due for a request at a time, in a GSI1 index sorted by that time: its
/// expiry (see [`keys::expiry`]) or its expiry warning ([`keys::expiry_warning`]). The
/// time is `due_at`, not `expires_at`: that name is the table's TTL attribute (a
/// number there).
#[derive(Serialize, Deserialize)]
pub(super) struct DueMarker {
    pub request_id: Uuid,
    pub due_at: String,
}

fn expiry_item(request_id: Uuid, expires_at: &str) -> Result<Item, StoreError> {
    Stored::new(
        keys::EXPIRY,
        keys::expiry(request_id),
        DueMarker {
            request_id,
            due_at: expires_at.to_string(),
        },
    )
    .indexed(keys::expiries_index(expires_at, request_id))
    .to_item()
}

/// Which requests a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestList {
    /// One user's requests (GSI3).
    Requester(Uuid),
    /// One team's requests (GSI2).
    Team(Uuid),
    /// The requests in one status (GSI1), oldest first: `pending` is the review queue.
    Status(RequestStatus),
    /// Every request: status by status, each oldest first.
    All,
}

/// The attribute a sealed cursor of [`RequestList::All`] uses to say which status's
/// partition it continues in.
const CURSOR_STATUS: &str = "cursor_status";

fn request_item(r: &ResourceRequest) -> Result<Item, StoreError> {
    Stored::new(keys::REQUEST, keys::request(r.id), r)
        .indexed(keys::requests_by_status(r.status.as_str(), &r.created_at, r.id))
        .indexed(keys::requests_by_team(r.team_id, &r.created_at, r.id))
        .indexed(keys::requests_by_requester(r.requester_id, &r.created_at, r.id))
        .to_item()
}

/// The writes that create a request, in order (a failed condition names its index):
/// 0 the request, 1 its name marker, 2 the requester's count (still in the team),
/// 3 the team's count (not being deleted), then its expiry marker if it has one.
fn creation_items<'a>(tx: Tx<'a>, request: &ResourceRequest) -> Result<Tx<'a>, StoreError> {
    let marker = Stored::new(
        keys::REQUEST_NAME,
        name_key(request),
        RequestNameMarker { request_id: request.id },
    )
    .to_item()?;
    let team = s(request.team_id.to_string());
    let mut tx = tx
        .put_new(request_item(request)?)?
        .put_new(marker)?
        // The requester is still in that team, and the team is not being deleted;
        // both count the request, so that their deletions can wait for the index.
        .update(
            &keys::user(request.requester_id),
            "ADD requests_created :one",
            Some("team_id = :team"),
            Expr::new().value(":team", team).value(":one", super::n(1)),
        )?
        .update(
            &keys::team(request.team_id),
            "ADD requests_created :one",
            Some("attribute_exists(PK) AND attribute_not_exists(deleting)"),
            Expr::new().value(":one", super::n(1)),
        )?;
    if let Some(at) = &request.expires_at {
        tx = tx.put(expiry_item(request.id, at)?, None, Expr::new())?;
    }
    // Notifications (docs/notifications.md): the admins hear of it, and the
    // requester is warned before it expires.
    tx = super::outbox::append_notice(tx, &crate::notify::submitted(request))?;
    if let Some(at) = &request.expires_at {
        tx = super::outbox::put_expiry_warning(tx, request.id, at)?;
    }
    Ok(tx)
}

/// The audit event of a submission (as the request is submitted, pending).
fn submitted(request: &ResourceRequest, origin: &Origin) -> AuditEvent {
    origin
        .event(Action::RequestSubmitted, Target::request(request.id))
        .team(Some(request.team_id))
        .fact("resource_type", &request.resource_type)
        .fact("name", &request.name)
        .fact("parameters", &request.parameters)
        .fact("expires_at", &request.expires_at)
        .fact("estimated_monthly_cost", request.estimated_monthly_cost)
}

/// Why a creation failed (mapped to an HTTP answer in `error.rs`).
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("this team already has a {resource_type} named `{name}`")]
    NameTaken { resource_type: String, name: String },
    #[error("your team changed while the request was made; retry")]
    TeamChanged,
    /// The policy that was to approve the request was deleted meanwhile.
    #[error("the approval policy was deleted meanwhile")]
    PolicyGone,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub(super) fn name_key(r: &ResourceRequest) -> keys::Key {
    keys::request_name(r.team_id, &r.resource_type, &r.name)
}

/// The writes of a planned move, appended to `tx`: first the request (conditional on
/// the status it was read in), then the job it queues, then the release of its name.
pub(super) fn transition_items<'a>(
    mut tx: Tx<'a>,
    request: &ResourceRequest,
    planned: &PlannedTransition,
) -> Result<Tx<'a>, StoreError> {
    let (from, to, now) = (planned.from, planned.to, planned.step.at.as_str());
    let history = serde_dynamo::to_attribute_value(vec![&planned.step])?;
    let keys::IndexKey { pk: gsi1pk, sk: _, .. } =
        keys::requests_by_status(to.as_str(), &request.created_at, request.id);
    let mut condition = "#status = :from".to_string();
    let mut expr = Expr::new()
        .name("#status", "status")
        .value(":to", s(to.as_str()))
        .value(":from", s(from.as_str()))
        .value(":gsi1pk", s(gsi1pk))
        .value(":now", s(now))
        .value(":step", history);
    if let Some(at) = &planned.if_expires_at {
        condition.push_str(" AND expires_at = :seen_expiry");
        expr = expr.value(":seen_expiry", s(at));
    }
    tx = tx.update(
        &keys::request(request.id),
        "SET #status = :to, GSI1PK = :gsi1pk, updated_at = :now, history = list_append(history, :step)",
        Some(&condition),
        expr,
    )?;
    if let Some(job) = &planned.job {
        tx = tx.put_new(super::jobs::job_item(job)?)?;
    }
    if let Some(requeue) = &planned.requeue {
        tx = super::jobs::requeue_job(tx, request.id, requeue, now)?;
    }
    if planned.frees_name {
        tx = tx.delete(
            &name_key(request),
            Some("attribute_not_exists(PK) OR request_id = :id"),
            Expr::new().value(":id", s(request.id.to_string())),
        )?;
    }
    // Notifications: the notice this move brings, if any (docs/notifications.md).
    if let Some(notice) = crate::notify::on_transition(request, to, planned.step.comment.as_deref(), now) {
        tx = super::outbox::append_notice(tx, &notice)?;
    }
    Ok(tx)
}

/// The request as a planned move leaves it.
pub(super) fn moved(request: &ResourceRequest, planned: &PlannedTransition) -> ResourceRequest {
    let mut updated = request.clone();
    updated.status = planned.to;
    updated.updated_at = planned.step.at.clone();
    updated.history.push(planned.step.clone());
    updated
}

impl Store {
    /// Stores a new request and reserves its name (per team and type) in one
    /// transaction: 409 when the name is taken, also when two creations race.
    pub async fn create_request(&self, request: &ResourceRequest, origin: &Origin) -> Result<(), CreateError> {
        let tx = creation_items(Tx::new(self), request)?.audit(submitted(request, origin));
        match self.commit(tx).await {
            Ok(()) => Ok(()),
            Err(e) if e.failed_at(1) => Err(CreateError::NameTaken {
                resource_type: request.resource_type.clone(),
                name: request.name.clone(),
            }),
            Err(e) if e.failed_at(2) || e.failed_at(3) => Err(CreateError::TeamChanged),
            Err(e) => Err(e.into()),
        }
    }

    /// Stores a new request already approved by `policy` (`planned`: its approval, as
    /// [`crate::domain::lifecycle::plan_transition`] planned it for the system): the
    /// creation's writes with the request in `approved` and both history steps, the
    /// provisioning job (as any approval writes it), and a check that the policy still
    /// exists, all in one transaction. [`CreateError::PolicyGone`]: nothing was written.
    pub async fn create_request_approved_by_policy(
        &self,
        pending: &ResourceRequest,
        planned: &PlannedTransition,
        policy: &ApprovalPolicy,
        origin: &Origin,
    ) -> Result<ResourceRequest, CreateError> {
        let approved = moved(pending, planned);
        // Two events: the requester's submission, then the system's approval.
        let approval = Origin::system(planned.step.at.clone())
            .transition(pending, planned.to, planned.step.comment.as_deref())
            .fact("policy_id", policy.id);
        let mut tx = creation_items(Tx::new(self), &approved)?
            .audit(submitted(pending, origin))
            .audit(approval);
        if let Some(job) = &planned.job {
            tx = tx.put_new(super::jobs::job_item(job)?)?;
        }
        // The requester hears of the approval, as for an admin's.
        if let Some(notice) =
            crate::notify::on_transition(pending, planned.to, planned.step.comment.as_deref(), &planned.step.at)
        {
            tx = super::outbox::append_notice(tx, &notice)?;
        }
        let policy_check = tx.items.len();
        let (key, condition, expr) = super::policies::still_exists(policy);
        tx = tx.check(&key, condition, expr)?;
        match self.commit(tx).await {
            Ok(()) => Ok(approved),
            Err(e) if e.failed_at(policy_check) => Err(CreateError::PolicyGone),
            Err(e) if e.failed_at(1) => Err(CreateError::NameTaken {
                resource_type: approved.resource_type,
                name: approved.name,
            }),
            Err(e) if e.failed_at(2) || e.failed_at(3) => Err(CreateError::TeamChanged),
            Err(e) => Err(e.into()),
        }
    }

    /// Every request of `team` (all pages of its index). The index is eventually
    /// consistent: it is read again (a few times, briefly) until it holds as many
    /// requests as the team has counted (`requests_created`), then used as it is. A
    /// request's status there may still lag its latest move by a moment.
    pub async fn team_requests(&self, team: &Team) -> Result<Vec<ResourceRequest>, StoreError> {
        let wait = std::time::Duration::from_millis(50);
        let (all, _caught_up) = self
            .read_index(RequestList::Team(team.id), team.requests_created, 5, wait)
            .await?;
        Ok(all)
    }

    pub async fn get_request(&self, id: Uuid) -> Result<Option<ResourceRequest>, StoreError> {
        self.get(&keys::request(id)).await?.map(from_item).transpose()
    }

    /// Writes a planned move of `request` (as read): a conditional write on the
    /// status it was read in, so of two racing transitions exactly one wins and the
    /// other gets [`StoreError::StatusChanged`]. Appends the step to the history, and
    /// in the same transaction writes the provisioning job of an approval, queues the
    /// job again for a retry or a deletion (never one that is running:
    /// [`StoreError::JobBusy`]) and frees the name of a request that gives it back.
    pub async fn apply_transition(
        &self,
        request: &ResourceRequest,
        planned: &PlannedTransition,
        origin: &Origin,
    ) -> Result<ResourceRequest, StoreError> {
        let event = origin.transition(request, planned.to, planned.step.comment.as_deref());
        let tx = transition_items(Tx::new(self), request, planned)?.audit(event);
        match self.commit(tx).await {
            Ok(()) => Ok(moved(request, planned)),
            Err(e) if e.failed_at(0) => Err(StoreError::StatusChanged {
                expected: planned.from,
                current: self.get_request(request.id).await?.map(|r| r.status),
            }),
            Err(e) if planned.requeue.is_some() && e.failed_at(1) => Err(StoreError::JobBusy {
                status: self.get_job(request.id).await?.map(|j| j.status),
            }),
            Err(e) => Err(e),
        }
    }

    /// Moves the expiry of `request` (as read) to `expires_at`, with `step` in its
    /// history; conditional on its status and expiry being as read, so of two racing
    /// extensions one wins and the other gets [`StoreError::StatusChanged`].
    pub async fn extend_expiry(
        &self,
        request: &ResourceRequest,
        expires_at: &str,
        step: &Transition,
        origin: &Origin,
    ) -> Result<ResourceRequest, StoreError> {
        let mut expr = Expr::new()
            .name("#status", "status")
            .name("#expires", "expires_at")
            .value(":status", s(request.status.as_str()))
            .value(":at", s(expires_at))
            .value(":now", s(&step.at))
            .value(":step", serde_dynamo::to_attribute_value(vec![step])?);
        let seen = match &request.expires_at {
            Some(old) => {
                expr = expr.value(":old", s(old));
                "#expires = :old"
            }
            None => {
                expr = expr.value(":null", s("NULL"));
                "(attribute_not_exists(#expires) OR attribute_type(#expires, :null))"
            }
        };
        let tx = Tx::new(self)
            .update(
                &keys::request(request.id),
                "SET #expires = :at, updated_at = :now, history = list_append(history, :step)",
                Some(&format!("#status = :status AND {seen}")),
                expr,
            )?
            .put(expiry_item(request.id, expires_at)?, None, Expr::new())?
            .audit(
                origin
                    .event(Action::RequestExtended, Target::request(request.id))
                    .team(Some(request.team_id))
                    .changed("expires_at", &request.expires_at, expires_at),
            );
        // Notifications: the warning moves with the expiry.
        let tx = super::outbox::put_expiry_warning(tx, request.id, expires_at)?;
        match self.commit(tx).await {
            Ok(()) => {
                let mut updated = request.clone();
                updated.expires_at = Some(expires_at.to_string());
                updated.updated_at = step.at.clone();
                updated.history.push(step.clone());
                Ok(updated)
            }
            Err(e) if e.failed_at(0) => Err(StoreError::StatusChanged {
                expected: request.status,
                current: self.get_request(request.id).await?.map(|r| r.status),
            }),
            Err(e) => Err(e),
        }
    }

    /// Requests whose expiry is at or before `now`, soonest first, at most `limit`.
    pub async fn due_expiries(&self, now: &str, limit: usize) -> Result<Vec<(Uuid, String)>, StoreError> {
        // Everything up to and including `now`.
        let before = keys::expiries_before(&format!("{now}~"));
        self.due_markers(keys::EXPIRIES_PK, before, limit).await
    }

    /// The [`DueMarker`]s of the GSI1 partition `pk` that sort before `before`, soonest
    /// first, at most `limit`: (request id, due time).
    pub(super) async fn due_markers(
        &self,
        pk: &str,
        before: String,
        limit: usize,
    ) -> Result<Vec<(Uuid, String)>, StoreError> {
        let out = self
            .client()
            .query()
            .table_name(self.table())
            .index_name(keys::Index::Gsi1.name())
            .key_condition_expression("GSI1PK = :pk AND GSI1SK < :before")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":before", s(before))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(super::classify)?;
        out.items
            .unwrap_or_default()
            .into_iter()
            .map(|item| from_item::<DueMarker>(item).map(|m| (m.request_id, m.due_at)))
            .collect()
    }

    /// Moves the marker of an expiry the sweep has to look at again to `later`, so that
    /// requests waiting for an apply do not hold the head of the index; unless an
    /// extension moved it meanwhile.
    pub async fn postpone_expiry(&self, request_id: Uuid, seen: &str, later: &str) -> Result<(), StoreError> {
        let keys::IndexKey { pk: _, sk: gsi1sk, .. } = keys::expiries_index(later, request_id);
        let result = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(super::key_item(&keys::expiry(request_id))))
            .update_expression("SET due_at = :later, GSI1SK = :gsi1sk")
            .condition_expression("due_at = :seen")
            .expression_attribute_values(":later", s(later))
            .expression_attribute_values(":gsi1sk", s(gsi1sk))
            .expression_attribute_values(":seen", s(seen))
            .send()
            .await
            .map_err(super::classify);
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.is_condition_failed() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Removes the expiry marker of a request, unless an extension moved it meanwhile.
    pub async fn forget_expiry(&self, request_id: Uuid, expires_at: &str) -> Result<(), StoreError> {
        let result = self
            .client()
            .delete_item()
            .table_name(self.table())
            .set_key(Some(super::key_item(&keys::expiry(request_id))))
            .condition_expression("due_at = :at")
            .expression_attribute_values(":at", s(expires_at))
            .send()
            .await
            .map_err(super::classify);
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.is_condition_failed() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Every request of a team or a requester, read (all pages) until the eventually
    /// consistent index holds at least `at_least` of them: the count kept on the team
    /// or user item, which every creation raises in its own transaction. `None` if the
    /// index has not caught up after [`INDEX_READS`] reads.
    pub(super) async fn requests_once_indexed(
        &self,
        list: RequestList,
        at_least: u64,
    ) -> Result<Option<Vec<ResourceRequest>>, StoreError> {
        let (all, caught_up) = self.read_index(list, at_least, INDEX_READS, INDEX_WAIT).await?;
        Ok(caught_up.then_some(all))
    }

    /// Every request of `list` (all pages), read up to `reads` times, `wait` apart,
    /// until the index holds at least `at_least`; the last read, and whether it did.
    async fn read_index(
        &self,
        list: RequestList,
        at_least: u64,
        reads: usize,
        wait: std::time::Duration,
    ) -> Result<(Vec<ResourceRequest>, bool), StoreError> {
        let mut all = Vec::new();
        for read in 0..reads {
            if read > 0 {
                tokio::time::sleep(wait).await;
            }
            all.clear();
            let mut start = None;
            loop {
                let (page, next) = self.list_requests(list, None, 100, start).await?;
                all.extend(page);
                match next {
                    Some(next) => start = Some(next),
                    None => break,
                }
            }
            if all.len() as u64 >= at_least {
                return Ok((all, true));
            }
        }
        Ok((all, false))
    }

    /// One page of a request list; `status` filters a requester's or team's list.
    pub async fn list_requests(
        &self,
        list: RequestList,
        status: Option<RequestStatus>,
        limit: usize,
        start: Option<Item>,
    ) -> Result<(Vec<ResourceRequest>, Option<Item>), StoreError> {
        let filter = status.map(|st| ("status", s(st.as_str())));
        let (index, pk) = match list {
            RequestList::Requester(user) => (keys::Index::Gsi3, keys::requests_by_requester_pk(user)),
            RequestList::Team(team) => (keys::Index::Gsi2, keys::requests_by_team_pk(team)),
            RequestList::Status(st) => (keys::Index::Gsi1, keys::requests_by_status_pk(st.as_str())),
            RequestList::All => return self.list_all_requests(limit, start).await,
        };
        let cond = KeyCondition {
            index: Some(index),
            pk,
            sk_prefix: None,
            filters: if matches!(list, RequestList::Status(_)) {
                Vec::new()
            } else {
                filter.into_iter().collect()
            },
            ..Default::default()
        };
        let QueryPage { items, next } = self.query_page(cond, limit, start).await?;
        let requests = items.into_iter().map(from_item).collect::<Result<_, _>>()?;
        Ok((requests, next))
    }

    /// Every request, walking the status partitions in a fixed order; the cursor says
    /// which status it continues in.
    async fn list_all_requests(
        &self,
        limit: usize,
        start: Option<Item>,
    ) -> Result<(Vec<ResourceRequest>, Option<Item>), StoreError> {
        let mut start = start;
        let first = match start.as_mut().and_then(|k| k.remove(CURSOR_STATUS)) {
            Some(AttributeValue::S(st)) => RequestStatus::ALL.iter().position(|s| s.as_str() == st).unwrap_or(0),
            _ => 0,
        };
        let mut start = start.filter(|k| !k.is_empty());
        let mut requests: Vec<ResourceRequest> = Vec::new();
        for (i, status) in RequestStatus::ALL.iter().enumerate().skip(first) {
            let want = limit - requests.len();
            let cond = KeyCondition {
                index: Some(keys::Index::Gsi1),
                pk: keys::requests_by_status_pk(status.as_str()),
                sk_prefix: None,
                ..Default::default()
            };
            let QueryPage { items, next } = self.query_page(cond, want, start.take()).await?;
            for item in items {
                requests.push(from_item(item)?);
            }
            if let Some(mut next) = next {
                next.insert(CURSOR_STATUS.into(), s(status.as_str()));
                return Ok((requests, Some(next)));
            }
            if requests.len() == limit {
                // Full, and this status is done: continue with the next one, if any.
                let next = RequestStatus::ALL
                    .get(i + 1)
                    .map(|st| Item::from([(CURSOR_STATUS.to_string(), s(st.as_str()))]));
                return Ok((requests, next));
            }
        }
        Ok((requests, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `expires_at` is also the table's TTL attribute, which DynamoDB applies only to
    /// numbers: a request's expiry must stay a string, or DynamoDB would delete the
    /// request item itself when it expires.
    #[test]
    fn a_request_expiry_is_never_a_ttl_number() {
        let request = ResourceRequest {
            id: Uuid::new_v4(),
            team_id: Uuid::new_v4(),
            requester_id: Uuid::new_v4(),
            resource_type: "k8s_namespace".into(),
            name: "sandbox".into(),
            parameters: serde_json::json!({}),
            justification: "x".into(),
            status: RequestStatus::Ready,
            created_at: "2026-01-01T00:00:00.000000Z".into(),
            updated_at: "2026-01-01T00:00:00.000000Z".into(),
            history: Vec::new(),
            provisioning: None,
            outputs: None,
            credentials: None,
            expires_at: Some("2026-01-31T00:00:00.000000Z".into()),
            estimated_monthly_cost: None,
            budget: None,
        };
        let item = request_item(&request).unwrap();
        assert!(matches!(item.get("expires_at"), Some(AttributeValue::S(_))), "{item:?}");
        let marker = expiry_item(request.id, "2026-01-31T00:00:00.000000Z").unwrap();
        assert!(!marker.contains_key("expires_at"), "{marker:?}");
    }
}
