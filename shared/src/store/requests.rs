//! Resource requests: creation with a per-team name reservation, status transitions
//! as conditional writes on the current status (approval writes the provisioning job
//! in the same transaction), and the request lists.

use super::{from_item, keys, s, Expr, Item, KeyCondition, QueryPage, Store, StoreError, Stored, Tx};
use crate::{
    domain::PlannedTransition,
    error::ApiError,
    model::{JobStatus, RequestStatus, ResourceRequest},
};
use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Serialize, Deserialize)]
struct RequestNameMarker {
    request_id: Uuid,
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
        .indexed2(keys::requests_by_team(r.team_id, &r.created_at, r.id))
        .indexed3(keys::requests_by_requester(r.requester_id, &r.created_at, r.id))
        .to_item()
}

fn name_key(r: &ResourceRequest) -> keys::Key {
    keys::request_name(r.team_id, &r.resource_type, &r.name)
}

impl Store {
    /// Stores a new request and reserves its name (per team and type) in one
    /// transaction: 409 when the name is taken, also when two creations race.
    pub async fn create_request(&self, request: &ResourceRequest) -> Result<(), ApiError> {
        let marker = Stored::new(
            keys::REQUEST_NAME,
            name_key(request),
            RequestNameMarker { request_id: request.id },
        )
        .to_item()?;
        let team = s(request.team_id.to_string());
        let tx = Tx::new(self)
            .put_new(request_item(request)?)?
            .put_new(marker)?
            // The requester is still in that team, and the team is not being deleted.
            .check(
                &keys::user(request.requester_id),
                "team_id = :team",
                Expr::new().value(":team", team),
            )?
            .check(
                &keys::team(request.team_id),
                "attribute_exists(PK) AND attribute_not_exists(deleting)",
                Expr::new(),
            )?;
        match self.transact(tx.items).await {
            Ok(()) => Ok(()),
            Err(e) if e.failed_at(1) => Err(ApiError::Conflict(format!(
                "this team already has a {} named `{}`",
                request.resource_type, request.name
            ))),
            Err(e) if e.failed_at(2) || e.failed_at(3) => Err(ApiError::Conflict(
                "your team changed while the request was made; retry".into(),
            )),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn get_request(&self, id: Uuid) -> Result<Option<ResourceRequest>, StoreError> {
        self.get(&keys::request(id)).await?.map(from_item).transpose()
    }

    /// Writes a planned move of `request` (as read): a conditional write on the
    /// status it was read in, so of two racing transitions exactly one wins and the
    /// other gets [`StoreError::StatusChanged`]. Appends the step to the history, and
    /// in the same transaction writes the provisioning job of an approval and frees
    /// the name of a request that gives it back.
    pub async fn apply_transition(
        &self,
        request: &ResourceRequest,
        planned: &PlannedTransition,
    ) -> Result<ResourceRequest, StoreError> {
        let (from, to, now) = (planned.from, planned.to, planned.step.at.as_str());
        let history = serde_dynamo::to_attribute_value(vec![&planned.step])?;
        let (gsi1pk, _) = keys::requests_by_status(to.as_str(), &request.created_at, request.id);
        let mut tx = Tx::new(self).update(
            &keys::request(request.id),
            "SET #status = :to, GSI1PK = :gsi1pk, updated_at = :now, history = list_append(history, :step)",
            Some("#status = :from"),
            Expr::new()
                .name("#status", "status")
                .value(":to", s(to.as_str()))
                .value(":from", s(from.as_str()))
                .value(":gsi1pk", s(gsi1pk))
                .value(":now", s(now))
                .value(":step", history),
        )?;
        if let Some(job) = &planned.job {
            tx = tx.put_new(super::jobs::job_item(job)?)?;
        }
        if planned.requeue_job {
            let (gsi1pk, gsi1sk) = keys::jobs_by_status(JobStatus::Queued.as_str(), now, request.id);
            tx = tx.update(
                &keys::job(request.id),
                "SET #status = :queued, attempts = :zero, due_at = :now, GSI1PK = :gsi1pk, GSI1SK = :gsi1sk REMOVE lease_owner",
                Some("#status = :failed"),
                Expr::new()
                    .name("#status", "status")
                    .value(":queued", s(JobStatus::Queued.as_str()))
                    .value(":failed", s(JobStatus::Failed.as_str()))
                    .value(":zero", super::n(0))
                    .value(":now", s(now))
                    .value(":gsi1pk", s(gsi1pk))
                    .value(":gsi1sk", s(gsi1sk)),
            )?;
        }
        if planned.frees_name {
            tx = tx.delete(
                &name_key(request),
                Some("attribute_not_exists(PK) OR request_id = :id"),
                Expr::new().value(":id", s(request.id.to_string())),
            )?;
        }
        match self.transact(tx.items).await {
            Ok(()) => {
                let mut updated = request.clone();
                updated.status = to;
                updated.updated_at = now.to_string();
                updated.history.push(planned.step.clone());
                Ok(updated)
            }
            Err(e) if e.failed_at(0) || (planned.requeue_job && e.failed_at(1)) => Err(StoreError::StatusChanged {
                expected: from,
                current: self.get_request(request.id).await?.map(|r| r.status),
            }),
            Err(e) => Err(e),
        }
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
            RequestList::Requester(user) => (keys::GSI3, keys::requests_by_requester_pk(user)),
            RequestList::Team(team) => (keys::GSI2, keys::requests_by_team_pk(team)),
            RequestList::Status(st) => (keys::GSI1, keys::requests_by_status_pk(st.as_str())),
            RequestList::All => return self.list_all_requests(limit, start).await,
        };
        let cond = KeyCondition {
            index: Some(index),
            pk,
            sk_prefix: None,
            filter: if matches!(list, RequestList::Status(_)) {
                None
            } else {
                filter
            },
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
                index: Some(keys::GSI1),
                pk: keys::requests_by_status_pk(status.as_str()),
                sk_prefix: None,
                filter: None,
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
