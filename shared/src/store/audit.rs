//! The audit log: each event is written in the transaction of the change it records,
//! chained to the one before it through the head item, which the same transaction
//! moves on conditionally (see `docs/audit.md`).

use super::{classify, from_item, keys, n, s, Expr, Item, KeyCondition, QueryPage, Store, StoreError, Stored, Tx};
use crate::domain::audit::{chain, AuditEvent, ChainHead, ChainedEvent, Verification, Verifier};
use std::time::Duration;
use uuid::Uuid;

/// How often a transaction is tried again after another writer moved the head first.
/// Each try costs one read and one transaction; 20 writers at once need at most 20.
const CHAIN_ATTEMPTS: u32 = 60;

/// The longest pause between two tries.
const MAX_CHAIN_BACKOFF_MS: u64 = 50;

/// Which events a list shows (all of them when empty), newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub team_id: Option<Uuid>,
    /// Stamped at or after (RFC 3339, as stored).
    pub from: Option<String>,
    /// Stamped at or before.
    pub to: Option<String>,
}

/// One page of events and where the next starts.
pub struct AuditPage {
    pub events: Vec<ChainedEvent>,
    pub next: Option<Item>,
}

fn event_item(event: &ChainedEvent) -> Result<Item, StoreError> {
    let sk = keys::audit_event_sk(&event.at, event.seq);
    let mut stored = Stored::new(keys::AUDIT, keys::audit_event(&event.at, event.seq), event)
        .indexed3((keys::audit_by_actor_pk(&event.actor.to_string()), sk.clone()));
    if let Some(team) = event.team_id {
        stored = stored.indexed2((keys::audit_by_team_pk(team), sk));
    }
    let mut item = stored.to_item()?;
    // Flat copies of the target for the list's filters (not part of the hashed event).
    item.insert("target_type".into(), s(&event.target.kind));
    item.insert("target_id".into(), s(&event.target.id));
    Ok(item)
}

/// The table key of an event, to continue a read after it.
pub fn audit_event_key(event: &ChainedEvent) -> Item {
    super::key_item(&keys::audit_event(&event.at, event.seq))
}

fn head_item(head: &ChainHead) -> Result<Item, StoreError> {
    Stored::new(keys::META, keys::audit_head(), head).to_item()
}

impl Store {
    /// Commits a transaction with the audit events it records (none: a plain
    /// [`Store::transact`]). The events are numbered on from the head item, linked,
    /// hashed and appended after the transaction's own writes, with the head's move,
    /// conditional on the head being as read: of two writers, one commits and the
    /// other reads the new head and tries again, so the chain stays one line. A
    /// failed condition of the transaction's own writes comes back as usual (their
    /// indexes are unchanged).
    pub(crate) async fn commit(&self, tx: Tx<'_>) -> Result<(), StoreError> {
        if tx.events.is_empty() {
            return self.transact(tx.items).await;
        }
        let own = tx.items.len();
        let mut last = StoreError::Transient("the audit log is busy".into());
        for attempt in 0..CHAIN_ATTEMPTS {
            if attempt > 0 {
                let cap = (5u64 << attempt.min(4)).min(MAX_CHAIN_BACKOFF_MS);
                tokio::time::sleep(Duration::from_millis(rand::random::<u64>() % cap + 1)).await;
            }
            let head = self.audit_head().await?;
            let (chained, new_head) = chain(head.as_ref().unwrap_or(&ChainHead::empty()), &tx.events);
            let mut write = Tx {
                table: tx.table,
                items: tx.items.clone(),
                events: Vec::new(),
            };
            for event in &chained {
                write = write.put_new(event_item(event)?)?;
            }
            write = match &head {
                Some(seen) => write.put(
                    head_item(&new_head)?,
                    Some("seq = :seen"),
                    Expr::new().value(":seen", n(seen.seq)),
                )?,
                None => write.put_new(head_item(&new_head)?)?,
            };
            match self.transact(write.items).await {
                Ok(()) => return Ok(()),
                // Only the chain's own writes failed: another writer moved the head.
                Err(StoreError::ConditionFailed(failed)) if failed.iter().all(|i| *i >= own) => {
                    last = StoreError::ConditionFailed(failed);
                }
                Err(StoreError::Transient(why)) => last = StoreError::Transient(why),
                Err(e) => return Err(e),
            }
        }
        Err(match last {
            StoreError::ConditionFailed(_) => StoreError::Transient("the audit log is busy".into()),
            other => other,
        })
    }

    /// Records an event that goes with no stored change (a login failure, a read of
    /// credentials): it is written before the caller answers.
    pub async fn record(&self, event: AuditEvent) -> Result<(), StoreError> {
        self.commit(Tx::new(self).audit(event)).await
    }

    /// The end of the chain (strongly consistent); `None` before the first event.
    pub async fn audit_head(&self) -> Result<Option<ChainHead>, StoreError> {
        self.get(&keys::audit_head()).await?.map(from_item).transpose()
    }

    /// One page of events, newest first. A team (GSI2) or an actor (GSI3) picks the
    /// partition; the other criteria filter it.
    pub async fn list_audit(
        &self,
        filter: &AuditFilter,
        limit: usize,
        start: Option<Item>,
    ) -> Result<AuditPage, StoreError> {
        let (index, pk) = match (&filter.team_id, &filter.actor) {
            (Some(team), _) => (Some(keys::GSI2), keys::audit_by_team_pk(*team)),
            (None, Some(actor)) => (Some(keys::GSI3), keys::audit_by_actor_pk(actor)),
            (None, None) => (None, keys::AUDIT_PK.to_string()),
        };
        let mut filters = Vec::new();
        if let (Some(_), Some(actor)) = (&filter.team_id, &filter.actor) {
            filters.push(("actor", s(actor)));
        }
        for (attribute, value) in [
            ("action", &filter.action),
            ("target_type", &filter.target_type),
            ("target_id", &filter.target_id),
        ] {
            if let Some(value) = value {
                filters.push((attribute, s(value)));
            }
        }
        let cond = KeyCondition {
            index,
            pk,
            sk_between: Some(keys::audit_events_between(filter.from.as_deref(), filter.to.as_deref())),
            filters,
            newest_first: true,
            ..Default::default()
        };
        let QueryPage { items, next } = self.query_page(cond, limit, start).await?;
        let events = items.into_iter().map(from_item).collect::<Result<_, _>>()?;
        Ok(AuditPage { events, next })
    }

    /// Events stamped in `[from, to]` in chain order, one DynamoDB page at a time
    /// (`start`: where the previous call stopped).
    pub async fn audit_in_order(
        &self,
        from: Option<&str>,
        to: Option<&str>,
        start: Option<Item>,
    ) -> Result<AuditPage, StoreError> {
        let (low, high) = keys::audit_events_between(from, to);
        let out = self
            .client()
            .query()
            .table_name(self.table())
            .key_condition_expression("PK = :pk AND SK BETWEEN :low AND :high")
            .expression_attribute_values(":pk", s(keys::AUDIT_PK))
            .expression_attribute_values(":low", s(low))
            .expression_attribute_values(":high", s(high))
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(classify)?;
        let events = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(from_item)
            .collect::<Result<_, _>>()?;
        Ok(AuditPage {
            events,
            next: out.last_evaluated_key.filter(|k| !k.is_empty()),
        })
    }

    /// Reads the whole chain in order and checks every link and the head.
    pub async fn verify_audit(&self) -> Result<Verification, StoreError> {
        // The head first: events written after this read are past it, and ignored.
        let head = self.audit_head().await?;
        let mut verifier = Verifier::default();
        let mut start = None;
        'pages: loop {
            let page = self.audit_in_order(None, None, start).await?;
            for event in &page.events {
                if head.as_ref().is_some_and(|h| event.seq > h.seq) {
                    break 'pages;
                }
                if !verifier.push(event) {
                    break 'pages;
                }
            }
            match page.next {
                Some(next) => start = Some(next),
                None => break,
            }
        }
        Ok(verifier.finish(head))
    }
}
