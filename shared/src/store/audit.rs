//! The audit log: each event is written in the transaction of the change it records,
//! chained to the one before it through the head item, which the same transaction
//! moves on conditionally (see `docs/audit.md`).

use super::{classify, from_item, keys, n, s, Expr, Item, KeyCondition, QueryPage, Store, StoreError, Stored, Tx};
use crate::domain::audit::{chain, AuditEvent, ChainHead, ChainedEvent, Verification, Verifier};
use std::time::Duration;
use uuid::Uuid;

/// How long a writer keeps trying after other writers moved the head first (each try
/// costs one read and one transaction), within the request's own deadline of 8 s.
const CHAIN_DEADLINE: Duration = Duration::from_secs(5);

/// The longest pause between two tries (full jitter, the bound doubling from 10 ms):
/// long enough that writers of several processes spread out instead of colliding
/// again on every try.
const MAX_CHAIN_BACKOFF_MS: u64 = 200;

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
        .indexed(keys::audit_by_actor(&event.actor.to_string(), sk.clone()));
    if let Some(team) = event.team_id {
        stored = stored.indexed(keys::audit_by_team(team, sk));
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

/// An event item as an event, or (edited out of shape) its sort key.
fn read_event(item: Item) -> Result<ChainedEvent, String> {
    let sk = match item.get(keys::SK) {
        Some(aws_sdk_dynamodb::types::AttributeValue::S(sk)) => sk.clone(),
        _ => String::new(),
    };
    from_item(item).map_err(|e| {
        tracing::warn!(sk = %sk, error = %e, "an audit item does not read as an event");
        sk
    })
}

fn head_damaged(how: &str) -> StoreError {
    tracing::error!(how, "the audit log's head item is damaged; audited writes are refused");
    StoreError::Unavailable(format!(
        "the audit log's head is {how}; audited changes are refused until it is repaired (ssi-admin audit verify)"
    ))
}

fn head_item(head: &ChainHead) -> Result<Item, StoreError> {
    Stored::new(keys::META, keys::audit_head(), head).to_item()
}

impl Store {
    /// Commits a transaction with the audit events it records (none: a plain
    /// [`Store::transact`]). The events are numbered on from the head item, linked,
    /// hashed and appended after the transaction's own writes, with the head's move,
    /// conditional on the head being as read: of two writers, one commits and the
    /// other reads the new head and tries again, so the chain stays one line (the
    /// writers of one process take turns first, so only other processes race). A
    /// failed condition of the transaction's own writes comes back as usual (their
    /// indexes are unchanged).
    pub(crate) async fn commit(&self, tx: Tx<'_>) -> Result<(), StoreError> {
        if tx.events.is_empty() {
            return self.transact(tx.items).await;
        }
        let own = tx.items.len();
        let deadline = tokio::time::Instant::now() + CHAIN_DEADLINE;
        let busy = || StoreError::Transient("the audit log is busy".into());
        // Queued behind this process's other audited writers (fairly, in order), so
        // that only writers of other processes can move the head under this one.
        let _turn = tokio::time::timeout_at(deadline, self.chain_turn.lock())
            .await
            .map_err(|_| busy())?;
        let mut attempt = 0u32;
        loop {
            if attempt > 0 {
                if tokio::time::Instant::now() >= deadline {
                    return Err(busy());
                }
                let cap = (5u64 << attempt.min(6)).min(MAX_CHAIN_BACKOFF_MS);
                tokio::time::sleep(Duration::from_millis(rand::random::<u64>() % cap + 1)).await;
            }
            attempt += 1;
            let head = match self.audit_head().await {
                Ok(head) => head,
                Err(StoreError::Mapping(_)) => return Err(head_damaged("unreadable")),
                Err(e) => return Err(e),
            };
            // No head but events: it was removed. Starting again from event 1 would
            // fork the chain, so nothing is written until an operator has looked.
            if head.is_none() && self.any_audit_event().await? {
                return Err(head_damaged("missing"));
            }
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
                Err(StoreError::ConditionFailed(failed)) if failed.iter().all(|i| *i >= own) => {}
                Err(StoreError::Transient(_)) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Whether the log holds any event at all.
    async fn any_audit_event(&self) -> Result<bool, StoreError> {
        let out = self
            .client()
            .query()
            .table_name(self.table())
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", s(keys::AUDIT_PK))
            .consistent_read(true)
            .limit(1)
            .send()
            .await
            .map_err(classify)?;
        Ok(out.count > 0)
    }

    /// Records `event` only if the item `flag` has not recorded one yet (a throttle's
    /// counter: one event per throttled window, not one per refused attempt, so that a
    /// flood of refusals cannot crowd the one chain). The flag lives and expires with
    /// that item.
    pub async fn record_once(&self, event: AuditEvent, flag: &keys::Key) -> Result<(), StoreError> {
        // Recorded already (or the counter is gone): a refusal does not queue for the
        // head behind this process's audited writes with a transaction that can only
        // fail. Two refusals that both read it unrecorded still record it once.
        match self.get(flag).await? {
            Some(item) if !item.contains_key("audit_recorded") => {}
            _ => return Ok(()),
        }
        let tx = Tx::new(self)
            .update(
                flag,
                "SET audit_recorded = :yes",
                Some("attribute_exists(PK) AND attribute_not_exists(audit_recorded)"),
                Expr::new().value(":yes", super::bool_value(true)),
            )?
            .audit(event);
        match self.commit(tx).await {
            Err(e) if e.failed_at(0) => Ok(()),
            other => other,
        }
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
            (Some(team), _) => (Some(keys::Index::Gsi2), keys::audit_by_team_pk(*team)),
            (None, Some(actor)) => (Some(keys::Index::Gsi3), keys::audit_by_actor_pk(actor)),
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
        // An item edited out of shape is left out here (the check reports it).
        let events = items.into_iter().filter_map(|item| read_event(item).ok()).collect();
        Ok(AuditPage { events, next })
    }

    /// Events stamped in `[from, to]` in chain order, one DynamoDB page at a time
    /// (`start`: where the previous call stopped). An item that no longer reads as an
    /// event (edited out of shape) comes back as `Err` with its sort key.
    pub async fn audit_in_order(
        &self,
        from: Option<&str>,
        to: Option<&str>,
        start: Option<Item>,
    ) -> Result<(Vec<Result<ChainedEvent, String>>, Option<Item>), StoreError> {
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
        let events = out.items.unwrap_or_default().into_iter().map(read_event).collect();
        Ok((events, out.last_evaluated_key.filter(|k| !k.is_empty())))
    }

    /// Reads the whole chain in order and checks every link, then the head: it must
    /// name the last event (events cut off the end show), and no event may lie past
    /// it (a forged one appended). Events written while the check runs are read too.
    pub async fn verify_audit(&self) -> Result<Verification, StoreError> {
        let mut verifier = Verifier::default();
        let mut start: Option<Item> = None;
        for _round in 0..3 {
            loop {
                let (events, next) = self.audit_in_order(None, None, start.take()).await?;
                for event in &events {
                    let intact = match event {
                        Ok(event) => verifier.push(event),
                        Err(sk) => verifier.unreadable(sk),
                    };
                    if !intact {
                        return Ok(verifier.finish(self.audit_head().await.ok().flatten()));
                    }
                }
                start = events.last().map(|e| match e {
                    Ok(event) => audit_event_key(event),
                    Err(sk) => super::key_item(&(keys::AUDIT_PK.to_string(), sk.clone())),
                });
                if next.is_none() {
                    break;
                }
            }
            let head = match self.audit_head().await {
                Ok(head) => head,
                Err(StoreError::Mapping(_)) => return Ok(verifier.head_unreadable()),
                Err(e) => return Err(e),
            };
            // A writer committed after the last page was read: read on from there.
            if head.as_ref().is_some_and(|h| h.seq > verifier.last_seq()) && start.is_some() {
                continue;
            }
            return Ok(verifier.finish(head));
        }
        let head = self.audit_head().await.ok().flatten();
        Ok(verifier.finish(head))
    }
}
