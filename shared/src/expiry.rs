//! The expiry sweep: requests whose `expires_at` has come are deleted by the system
//! (ready or failed ones), cancelled (pending ones), or looked at again later (an
//! apply under way). In AWS the dispatcher's schedule runs it every minute; locally
//! the runner's worker loop does, on each poll.
//!
//! It only plans and writes moves the lifecycle allows, conditional on the status and
//! the expiry it read, so sweeps that race each other change each request at most
//! once, and an extension made meanwhile wins. An expiry it cannot act on yet is
//! looked at again a minute later (its marker moves), so it never holds up the rest.

use crate::{
    clock::{format_timestamp, parse_timestamp},
    domain::{
        lifecycle,
        lifetime::{self, OnExpiry},
        Actor,
    },
    model::RequestStatus,
    store::{Store, StoreError},
};

/// How many expiries one sweep looks at.
pub const SWEEP_LIMIT: usize = 25;

/// What one sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Sweep {
    /// Requests moved to `deleting` (their destroy is queued).
    pub deleting: Vec<uuid::Uuid>,
    /// Pending requests cancelled.
    pub cancelled: Vec<uuid::Uuid>,
    /// Left for a later sweep (an apply or a rotation under way).
    pub waiting: usize,
    /// Requesters warned that their request expires soon (notifications).
    pub warned: Vec<uuid::Uuid>,
}

/// How long the sweep waits before it looks again at an expiry it could not act on.
pub const LOOK_AGAIN_AFTER: time::Duration = time::Duration::minutes(1);

/// Acts on every request whose expiry is at or before `now` (an RFC 3339 timestamp as
/// stored), at most [`SWEEP_LIMIT`] of them.
pub async fn sweep(store: &Store, now: &str) -> Result<Sweep, StoreError> {
    let mut done = Sweep::default();
    // A warning that cannot be written now must not hold up the expiries.
    match warn(store, now).await {
        Ok(warned) => done.warned = warned,
        Err(e) => tracing::warn!(error = %e, "could not write expiry warnings"),
    }
    let later = parse_timestamp(now).map_or_else(|| now.to_string(), |t| format_timestamp(t + LOOK_AGAIN_AFTER));
    for (id, due_at) in store.due_expiries(now, SWEEP_LIMIT).await? {
        let Some(request) = store.get_request(id).await? else {
            store.forget_expiry(id, &due_at).await?;
            continue;
        };
        let Some(expires_at) = request.expires_at.clone() else {
            store.forget_expiry(id, &due_at).await?;
            continue;
        };
        // An extension moved it after the marker was read.
        if expires_at.as_str() > now {
            store.postpone_expiry(id, &due_at, &expires_at).await?;
            continue;
        }
        let to = match lifetime::on_expiry(request.status) {
            OnExpiry::Delete => RequestStatus::Deleting,
            OnExpiry::Cancel => RequestStatus::Cancelled,
            OnExpiry::Wait => {
                done.waiting += 1;
                store.postpone_expiry(id, &due_at, &later).await?;
                continue;
            }
            OnExpiry::Forget => {
                store.forget_expiry(id, &due_at).await?;
                continue;
            }
        };
        let comment = match to {
            RequestStatus::Cancelled => format!("expired at {expires_at} before it was approved"),
            _ => format!("expired at {expires_at}"),
        };
        let mut planned = match lifecycle::plan_transition(&request, to, Actor::System, Some(comment), now) {
            Ok(planned) => planned,
            // `on_expiry` only names allowed moves; should that ever change, say so.
            Err(e) => {
                tracing::warn!(request_id = %id, error = %e, "expiry not applied");
                done.waiting += 1;
                store.postpone_expiry(id, &due_at, &later).await?;
                continue;
            }
        };
        // Not if an extension lands between the read and this write.
        planned.if_expires_at = Some(expires_at);
        match store
            .apply_transition(&request, &planned, &crate::domain::audit::Origin::system(now))
            .await
        {
            Ok(_) => {
                tracing::info!(request_id = %id, to = to.as_str(), by = "system", "request expired");
                store.forget_expiry(id, &due_at).await?;
                if to == RequestStatus::Cancelled {
                    done.cancelled.push(id);
                } else {
                    done.deleting.push(id);
                }
            }
            // Someone moved or extended it first, or a rotation is under way: look
            // again later.
            Err(StoreError::StatusChanged { .. } | StoreError::JobBusy { .. }) => {
                done.waiting += 1;
                store.postpone_expiry(id, &due_at, &later).await?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Writes the expiry warnings due at `now` into the outbox ([`crate::notify`]): each
/// marker is removed in the same transaction as its notice is written, on the
/// condition that it is the one read, so each warning is written once even when
/// sweeps race, and an extension (which moves the marker) wins. Returns the requests
/// whose requester was warned.
pub async fn warn(store: &Store, now: &str) -> Result<Vec<uuid::Uuid>, StoreError> {
    let mut warned = Vec::new();
    for (id, due_at) in store.due_expiry_warnings(now, SWEEP_LIMIT).await? {
        let notice = store
            .get_request(id)
            .await?
            .and_then(|request| crate::notify::expiring(&request, now));
        if store.settle_expiry_warning(id, &due_at, notice.as_ref()).await? && notice.is_some() {
            tracing::info!(request_id = %id, "expiry warning written");
            warned.push(id);
        }
    }
    Ok(warned)
}
