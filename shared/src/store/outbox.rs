//! The outbox (notifications) and webhooks.
//!
//! A change writes its [`Notice`] with [`append_notice`] into its own transaction, so
//! the notice exists exactly when the change does. The notifier then *expands* a
//! notice into one delivery item per recipient and channel (deterministic keys, each
//! put only if absent, so racing notifiers create each delivery once), and sends each
//! delivery after a conditional *claim* (a lease; the attempt count must be the one
//! read), so two notifiers never both send it. Failures are retried with back-off
//! and end `failed`, listed for admins. See `docs/notifications.md`.
//!
//! Nothing here names an HTTP status: outcomes are values, mapped by the callers.

use super::{from_item, keys, s, Expr, Item, KeyCondition, QueryPage, Store, StoreError, Stored, Tx};
use crate::{
    domain::audit::{Action, Origin, Target},
    model::User,
    notify::{Audience, Facts, Kind, Notice, Preferences},
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use uuid::Uuid;

/// The stored shape of a notice.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct NoticeRecord {
    #[serde(flatten)]
    notice: Notice,
    /// `pending` until the notifier has written its deliveries, then `expanded`.
    status: String,
}

/// Appends the outbox item of `notice` to a transaction (a new item: its key is the
/// notice's fresh id). Kept as one call so that each change's transaction gains one
/// line.
pub(crate) fn append_notice<'a>(tx: Tx<'a>, notice: &Notice) -> Result<Tx<'a>, StoreError> {
    let key = keys::outbox_notice(notice.id);
    let index = keys::outbox_by_state("pending", &notice.created_at, &key);
    let item = Stored::new(
        keys::OUTBOX,
        key,
        NoticeRecord {
            notice: notice.clone(),
            status: "pending".into(),
        },
    )
    .indexed(index)
    .to_item()?;
    tx.put_new(item)
}

/// How a delivery reaches its recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Webhook,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Webhook => "webhook",
        }
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its (next) attempt, due at `due_at`.
    Pending,
    /// Claimed by a notifier until `due_at` (the lease).
    Sending,
    Sent,
    /// Given up after the last attempt; listed for admins.
    Failed,
    /// Not sent: the recipient is gone, or the webhook was disabled or deleted.
    Skipped,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }
}

/// One delivery of a notice to one recipient over one channel.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Delivery {
    pub notice_id: Uuid,
    pub kind: Kind,
    pub channel: Channel,
    /// The user (email) or the webhook.
    pub recipient_id: Uuid,
    /// The email address, or the webhook's URL.
    pub address: String,
    pub facts: Facts,
    /// When the notice was written (the event's time).
    pub notice_created_at: String,
    pub status: DeliveryStatus,
    /// Sends started so far.
    pub attempts: u32,
    /// Pending: when the next attempt may start. Sending: when the lease ends.
    pub due_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(ignore)]
    pub lease_owner: Option<String>,
    /// Why the last attempt failed (no secret: a transport's summary).
    #[serde(default)]
    pub last_error: Option<String>,
    #[serde(default)]
    pub sent_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl Delivery {
    pub fn key(&self) -> keys::Key {
        keys::outbox_delivery(self.notice_id, self.channel.as_str(), self.recipient_id)
    }

    /// A delivery of `notice`, due at once.
    pub fn new(notice: &Notice, channel: Channel, recipient_id: Uuid, address: &str, now: &str) -> Self {
        Self {
            notice_id: notice.id,
            kind: notice.kind,
            channel,
            recipient_id,
            address: address.to_string(),
            facts: notice.facts.clone(),
            notice_created_at: notice.created_at.clone(),
            status: DeliveryStatus::Pending,
            attempts: 0,
            due_at: now.to_string(),
            lease_owner: None,
            last_error: None,
            sent_at: None,
            created_at: now.to_string(),
            updated_at: now.to_string(),
        }
    }
}

/// An outbox item found due.
#[derive(Debug, Clone)]
pub enum OutboxItem {
    /// A notice still to be expanded into deliveries.
    Notice(Notice),
    Delivery(Delivery),
}

/// How a delivery attempt ended, for [`Store::finish_delivery`].
#[derive(Debug, Clone)]
pub enum DeliveryEnd<'a> {
    Sent,
    Retry { error: &'a str, at: &'a str },
    Failed { error: &'a str },
    Skipped { why: &'a str },
}

/// What a final webhook failure does to its hook (decided by the notifier from the
/// count it read): count one more failure, or disable it (and tell the admins).
#[derive(Debug, Clone)]
pub enum HookFailure {
    Count { seen: u32 },
    Disable { seen: u32, notice: Box<Notice> },
}

/// A registered webhook. The secret is stored to sign deliveries and never returned
/// after creation (nor printed by `Debug`).
#[derive(Clone, Serialize, Deserialize)]
pub struct Webhook {
    pub id: Uuid,
    pub url: String,
    pub events: BTreeSet<Kind>,
    #[serde(default)]
    pub slack: bool,
    pub enabled: bool,
    #[serde(default)]
    pub consecutive_failures: u32,
    #[serde(default)]
    pub disabled_reason: Option<String>,
    pub created_by: Uuid,
    pub created_at: String,
    pub updated_at: String,
    pub secret: String,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

fn attr<T: Serialize>(value: &T) -> Result<aws_sdk_dynamodb::types::AttributeValue, StoreError> {
    Ok(serde_dynamo::to_attribute_value(value)?)
}

fn delivery_item(d: &Delivery) -> Result<Item, StoreError> {
    let key = d.key();
    let stored = Stored::new(keys::OUTBOX, key.clone(), d);
    let stored = match d.status {
        DeliveryStatus::Pending | DeliveryStatus::Sending => {
            stored.indexed(keys::outbox_by_state("pending", &d.due_at, &key))
        }
        DeliveryStatus::Failed => stored.indexed(keys::outbox_by_state("failed", &d.updated_at, &key)),
        DeliveryStatus::Sent | DeliveryStatus::Skipped => stored,
    };
    stored.to_item()
}

/// Appends the (re)placement of a request's expiry warning to a transaction: due
/// [`crate::notify::EXPIRY_WARNING`] before `expires_at` (at once if that is past).
pub(crate) fn put_expiry_warning<'a>(tx: Tx<'a>, request_id: Uuid, expires_at: &str) -> Result<Tx<'a>, StoreError> {
    let Some(warn_at) = crate::notify::expiry_warning_at(expires_at) else {
        return Ok(tx);
    };
    let item = Stored::new(
        keys::EXPIRY_WARNING,
        keys::expiry_warning(request_id),
        super::requests::DueMarker {
            request_id,
            due_at: warn_at.clone(),
        },
    )
    .indexed(keys::expiry_warnings_index(&warn_at, request_id))
    .to_item()?;
    tx.put(item, None, Expr::new())
}

impl Store {
    /// Keys of the outbox items due at `now`: notices to expand, deliveries due, and
    /// deliveries whose lease ended. Oldest first, at most `limit`.
    pub async fn due_outbox(&self, now: &str, limit: usize) -> Result<Vec<keys::Key>, StoreError> {
        let out = self
            .client()
            .query()
            .table_name(self.table())
            .index_name(keys::Index::Gsi1.name())
            .key_condition_expression("GSI1PK = :pk AND GSI1SK < :before")
            .expression_attribute_values(":pk", s(keys::outbox_by_state_pk("pending")))
            .expression_attribute_values(":before", s(keys::outbox_before(&format!("{now}~"))))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(super::classify)?;
        let text = |item: &Item, name: &str| match item.get(name) {
            Some(aws_sdk_dynamodb::types::AttributeValue::S(v)) => Some(v.clone()),
            _ => None,
        };
        Ok(out
            .items
            .unwrap_or_default()
            .iter()
            .filter_map(|item| Some((text(item, keys::PK)?, text(item, keys::SK)?)))
            .collect())
    }

    /// One outbox item (consistent read).
    pub async fn get_outbox_item(&self, key: &keys::Key) -> Result<Option<OutboxItem>, StoreError> {
        let Some(item) = self.get(key).await? else {
            return Ok(None);
        };
        if key.1 == keys::OUTBOX_NOTICE_SK {
            let record: NoticeRecord = from_item(item)?;
            if record.status != "pending" {
                return Ok(None);
            }
            Ok(Some(OutboxItem::Notice(record.notice)))
        } else {
            Ok(Some(OutboxItem::Delivery(from_item(item)?)))
        }
    }

    /// Writes the deliveries of a notice (each only if it does not exist yet, so that
    /// racing notifiers write each once), then marks the notice expanded. `Ok(false)`:
    /// another notifier expanded it first.
    pub async fn expand_notice(&self, notice: &Notice, deliveries: &[Delivery]) -> Result<bool, StoreError> {
        for delivery in deliveries {
            let result = self
                .client()
                .put_item()
                .table_name(self.table())
                .set_item(Some(delivery_item(delivery)?))
                .condition_expression("attribute_not_exists(PK)")
                .send()
                .await
                .map_err(super::classify);
            match result {
                Ok(_) => {}
                Err(e) if e.is_condition_failed() => {}
                Err(e) => return Err(e),
            }
        }
        let result = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(super::key_item(&keys::outbox_notice(notice.id))))
            .update_expression("SET #status = :expanded REMOVE GSI1PK, GSI1SK")
            .condition_expression("#status = :pending")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":expanded", s("expanded"))
            .expression_attribute_values(":pending", s("pending"))
            .send()
            .await
            .map_err(super::classify);
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.is_condition_failed() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Claims a delivery (as read) for one attempt: on the condition that its status,
    /// due time and attempt count are still the ones read, so of two notifiers exactly
    /// one gets it. `None`: someone else did.
    pub async fn claim_delivery(
        &self,
        delivery: &Delivery,
        owner: &str,
        now: &str,
        lease_until: &str,
    ) -> Result<Option<Delivery>, StoreError> {
        let key = delivery.key();
        let keys::IndexKey { pk: _, sk: gsi1sk, .. } = keys::outbox_by_state("pending", lease_until, &key);
        let result = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(super::key_item(&key)))
            .update_expression(
                "SET #status = :sending, attempts = :next, due_at = :lease, lease_owner = :owner, updated_at = :now, GSI1SK = :gsi1sk",
            )
            .condition_expression("#status = :seen AND due_at = :due AND attempts = :attempts")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":sending", s(DeliveryStatus::Sending.as_str()))
            .expression_attribute_values(":next", super::n(delivery.attempts + 1))
            .expression_attribute_values(":lease", s(lease_until))
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":now", s(now))
            .expression_attribute_values(":gsi1sk", s(gsi1sk))
            .expression_attribute_values(":seen", s(delivery.status.as_str()))
            .expression_attribute_values(":due", s(&delivery.due_at))
            .expression_attribute_values(":attempts", super::n(delivery.attempts))
            .send()
            .await
            .map_err(super::classify);
        match result {
            Ok(_) => {
                let mut claimed = delivery.clone();
                claimed.status = DeliveryStatus::Sending;
                claimed.attempts += 1;
                claimed.due_at = lease_until.to_string();
                claimed.lease_owner = Some(owner.to_string());
                claimed.updated_at = now.to_string();
                Ok(Some(claimed))
            }
            Err(e) if e.is_condition_failed() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Records how the attempt of a claimed delivery ended, on the condition that the
    /// caller still holds it; a final webhook failure also counts on (or disables)
    /// the hook, in the same transaction. `Ok(false)`: the lease was lost.
    pub async fn finish_delivery(
        &self,
        claimed: &Delivery,
        owner: &str,
        end: &DeliveryEnd<'_>,
        hook: Option<&HookFailure>,
        now: &str,
    ) -> Result<bool, StoreError> {
        let key = claimed.key();
        let mut expr = Expr::new()
            .name("#status", "status")
            .value(":sending", s(DeliveryStatus::Sending.as_str()))
            .value(":owner", s(owner))
            .value(":attempts", super::n(claimed.attempts))
            .value(":now", s(now));
        let update = match end {
            DeliveryEnd::Sent => {
                expr = expr.value(":to", s(DeliveryStatus::Sent.as_str()));
                "SET #status = :to, sent_at = :now, updated_at = :now REMOVE lease_owner, GSI1PK, GSI1SK".to_string()
            }
            DeliveryEnd::Skipped { why } => {
                expr = expr
                    .value(":to", s(DeliveryStatus::Skipped.as_str()))
                    .value(":error", s(*why));
                "SET #status = :to, last_error = :error, updated_at = :now REMOVE lease_owner, GSI1PK, GSI1SK"
                    .to_string()
            }
            DeliveryEnd::Retry { error, at } => {
                let keys::IndexKey { pk: _, sk: gsi1sk, .. } = keys::outbox_by_state("pending", at, &key);
                expr = expr
                    .value(":to", s(DeliveryStatus::Pending.as_str()))
                    .value(":error", s(*error))
                    .value(":due", s(*at))
                    .value(":gsi1sk", s(gsi1sk));
                "SET #status = :to, last_error = :error, due_at = :due, updated_at = :now, GSI1SK = :gsi1sk REMOVE lease_owner"
                    .to_string()
            }
            DeliveryEnd::Failed { error } => {
                let keys::IndexKey {
                    pk: gsi1pk, sk: gsi1sk, ..
                } = keys::outbox_by_state("failed", now, &key);
                expr = expr
                    .value(":to", s(DeliveryStatus::Failed.as_str()))
                    .value(":error", s(*error))
                    .value(":gsi1pk", s(gsi1pk))
                    .value(":gsi1sk", s(gsi1sk));
                "SET #status = :to, last_error = :error, updated_at = :now, GSI1PK = :gsi1pk, GSI1SK = :gsi1sk REMOVE lease_owner"
                    .to_string()
            }
        };
        let mut tx = Tx::new(self).update(
            &key,
            &update,
            Some("#status = :sending AND lease_owner = :owner AND attempts = :attempts"),
            expr,
        )?;
        match hook {
            None => {}
            Some(HookFailure::Count { seen }) => {
                tx = tx.update(
                    &keys::webhook(claimed.recipient_id),
                    "SET consecutive_failures = :next, updated_at = :now",
                    Some("attribute_exists(PK)"),
                    Expr::new().value(":next", super::n(seen + 1)).value(":now", s(now)),
                )?;
            }
            Some(HookFailure::Disable { seen, notice }) => {
                tx = tx.update(
                    &keys::webhook(claimed.recipient_id),
                    "SET consecutive_failures = :next, enabled = :no, disabled_reason = :why, updated_at = :now",
                    Some("attribute_exists(PK)"),
                    Expr::new()
                        .value(":next", super::n(seen + 1))
                        .value(":no", super::bool_value(false))
                        .value(":why", s(notice.facts.reason.clone().unwrap_or_default()))
                        .value(":now", s(now)),
                )?;
                tx = append_notice(tx, notice)?.audit(
                    Origin::system(now)
                        .event(Action::WebhookDisabled, Target::webhook(claimed.recipient_id))
                        .fact("consecutive_failures", seen + 1),
                );
            }
        }
        match self.commit(tx).await {
            Ok(()) => Ok(true),
            Err(e) if e.failed_at(0) => Ok(false),
            // The hook was deleted meanwhile: record the delivery alone.
            Err(e) if e.is_condition_failed() => Box::pin(self.finish_delivery(claimed, owner, end, None, now)).await,
            Err(e) => Err(e),
        }
    }

    /// A page of the deliveries that gave up, oldest first (the admins' view).
    pub async fn list_failed_deliveries(
        &self,
        limit: usize,
        start: Option<Item>,
    ) -> Result<(Vec<Delivery>, Option<Item>), StoreError> {
        let QueryPage { items, next } = self
            .query_page(
                KeyCondition {
                    index: Some(keys::Index::Gsi1),
                    pk: keys::outbox_by_state_pk("failed"),
                    sk_prefix: None,
                    ..Default::default()
                },
                limit,
                start,
            )
            .await?;
        let items = items.into_iter().map(from_item).collect::<Result<_, _>>()?;
        Ok((items, next))
    }

    /// Every delivery of a notice (the tests and the notifier's own checks).
    pub async fn deliveries_of(&self, notice_id: Uuid) -> Result<Vec<Delivery>, StoreError> {
        self.query_all(keys::outbox_pk(notice_id))
            .await?
            .into_iter()
            .filter(|item| matches!(item.get(keys::SK), Some(aws_sdk_dynamodb::types::AttributeValue::S(sk)) if sk != keys::OUTBOX_NOTICE_SK))
            .map(from_item)
            .collect()
    }

    /// Every admin (the user index, filtered).
    pub async fn admins(&self) -> Result<Vec<User>, StoreError> {
        let mut admins = Vec::new();
        let mut start = None;
        loop {
            let QueryPage { items, next } = self
                .query_page(
                    KeyCondition {
                        index: Some(keys::Index::Gsi1),
                        pk: keys::USERS_INDEX_PK.into(),
                        sk_prefix: None,
                        filters: vec![("is_admin", super::bool_value(true))],
                        ..Default::default()
                    },
                    100,
                    start,
                )
                .await?;
            for item in items {
                admins.push(from_item::<User>(item)?);
            }
            match next {
                Some(next) => start = Some(next),
                None => return Ok(admins),
            }
        }
    }

    /// Every member of a team, as users (for their preferences).
    pub async fn team_users(&self, team_id: Uuid) -> Result<Vec<User>, StoreError> {
        let mut users = Vec::new();
        let mut start = None;
        loop {
            let (members, next) = self.list_members(team_id, 100, start).await?;
            for member in members {
                if let Some(user) = self.get_user(member.id).await? {
                    users.push(user);
                }
            }
            match next {
                Some(next) => start = Some(next),
                None => return Ok(users),
            }
        }
    }

    /// The users a notice's audience names, now.
    pub async fn audience_users(&self, audience: &Audience) -> Result<Vec<User>, StoreError> {
        match audience {
            Audience::User { user_id } => Ok(self.get_user(*user_id).await?.into_iter().collect()),
            Audience::Admins => self.admins().await,
            Audience::TeamAndAdmins { team_id } => {
                let mut users = self.admins().await?;
                for member in self.team_users(*team_id).await? {
                    if !users.iter().any(|u| u.id == member.id) {
                        users.push(member);
                    }
                }
                Ok(users)
            }
        }
    }

    /// Sets a user's notification preferences. [`StoreError::TokenUserGone`]: the user was deleted meanwhile.
    pub async fn set_notification_preferences(
        &self,
        user_id: Uuid,
        prefs: &Preferences,
        now: &str,
        origin: &Origin,
    ) -> Result<(), StoreError> {
        let expr = Expr::new().value(":now", s(now));
        let (update, expr) = if prefs.off.is_empty() {
            ("SET updated_at = :now REMOVE notifications_off", expr)
        } else {
            (
                "SET notifications_off = :off, updated_at = :now",
                expr.value(":off", attr(&prefs.off)?),
            )
        };
        let event = origin
            .event(Action::NotificationsChanged, Target::user(user_id))
            .fact("off", &prefs.off);
        let tx = Tx::new(self)
            .update(&keys::user(user_id), update, Some("attribute_exists(PK)"), expr)?
            .audit(event);
        self.commit(tx).await.map_err(|e| match e {
            e if e.is_condition_failed() => StoreError::TokenUserGone,
            e => e,
        })
    }

    /// Writes a team's budget notice for `month` and `percent` with the marker that it
    /// was written, in one transaction: `Ok(false)` when it had been already (sweeps
    /// that race write it once). The marker expires after about 40 days (TTL).
    pub async fn notify_budget_threshold(
        &self,
        notice: &Notice,
        team_id: Uuid,
        month: &str,
        percent: u32,
        ttl: i64,
    ) -> Result<bool, StoreError> {
        let marker = Stored::new(
            keys::BUDGET_ALERT,
            keys::budget_alert(team_id, month, percent),
            BudgetAlertMarker { expires_at: ttl },
        )
        .to_item()?;
        let tx = append_notice(Tx::new(self).put_new(marker)?, notice)?;
        match self.commit(tx).await {
            Ok(()) => Ok(true),
            Err(e) if e.failed_at(0) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Registers a webhook.
    pub async fn create_webhook(&self, hook: &Webhook, origin: &Origin) -> Result<(), StoreError> {
        let item = Stored::new(keys::WEBHOOK, keys::webhook(hook.id), hook)
            .indexed(keys::webhooks_index(&hook.created_at, hook.id))
            .to_item()?;
        // The host only: a webhook URL's path or query can be a credential (Slack's
        // are), and the secret is never recorded.
        let event = origin
            .event(Action::WebhookCreated, Target::webhook(hook.id))
            .fact("host", url_host(&hook.url))
            .fact("events", &hook.events)
            .fact("slack", hook.slack);
        self.commit(Tx::new(self).put_new(item)?.audit(event)).await
    }

    pub async fn get_webhook(&self, id: Uuid) -> Result<Option<Webhook>, StoreError> {
        self.get(&keys::webhook(id)).await?.map(from_item).transpose()
    }

    /// One page of webhooks, oldest first.
    pub async fn list_webhooks(
        &self,
        limit: usize,
        start: Option<Item>,
    ) -> Result<(Vec<Webhook>, Option<Item>), StoreError> {
        let QueryPage { items, next } = self
            .query_page(
                KeyCondition {
                    index: Some(keys::Index::Gsi1),
                    pk: keys::WEBHOOKS_INDEX_PK.into(),
                    sk_prefix: None,
                    ..Default::default()
                },
                limit,
                start,
            )
            .await?;
        let hooks = items.into_iter().map(from_item).collect::<Result<_, _>>()?;
        Ok((hooks, next))
    }

    /// Every enabled webhook subscribed to `kind`.
    pub async fn webhooks_for(&self, kind: Kind) -> Result<Vec<Webhook>, StoreError> {
        let mut hooks = Vec::new();
        let mut start = None;
        loop {
            let (page, next) = self.list_webhooks(100, start).await?;
            hooks.extend(page.into_iter().filter(|h| h.enabled && h.events.contains(&kind)));
            match next {
                Some(next) => start = Some(next),
                None => return Ok(hooks),
            }
        }
    }

    /// Deletes a webhook. `Ok(false)`: there was none.
    pub async fn delete_webhook(&self, id: Uuid, origin: &Origin) -> Result<bool, StoreError> {
        let tx = Tx::new(self)
            .delete(&keys::webhook(id), Some("attribute_exists(PK)"), Expr::new())?
            .audit(origin.event(Action::WebhookDeleted, Target::webhook(id)));
        match self.commit(tx).await {
            Ok(_) => Ok(true),
            Err(e) if e.is_condition_failed() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// A webhook delivered: its failure count starts again.
    pub async fn reset_webhook_failures(&self, id: Uuid) -> Result<(), StoreError> {
        let result = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(super::key_item(&keys::webhook(id))))
            .update_expression("SET consecutive_failures = :zero")
            .condition_expression("attribute_exists(PK) AND consecutive_failures > :zero")
            .expression_attribute_values(":zero", super::n(0))
            .send()
            .await
            .map_err(super::classify);
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.is_condition_failed() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Expiry warnings due at `now`: (request id, the marker's due time).
    pub async fn due_expiry_warnings(&self, now: &str, limit: usize) -> Result<Vec<(Uuid, String)>, StoreError> {
        let before = keys::expiry_warnings_before(&format!("{now}~"));
        self.due_markers(keys::EXPIRY_WARNINGS_PK, before, limit).await
    }

    /// Sends (into the outbox) the expiry warning of a request, and removes its marker
    /// in the same transaction, on the condition that the marker is the one read: each
    /// warning is written once, and an extension made meanwhile (which moves the
    /// marker) wins. `notice` `None`: only the marker goes (a closed request).
    /// `Ok(false)`: the marker had moved or gone.
    pub async fn settle_expiry_warning(
        &self,
        request_id: Uuid,
        seen_due_at: &str,
        notice: Option<&Notice>,
    ) -> Result<bool, StoreError> {
        let mut tx = Tx::new(self).delete(
            &keys::expiry_warning(request_id),
            Some("due_at = :seen"),
            Expr::new().value(":seen", s(seen_due_at)),
        )?;
        if let Some(notice) = notice {
            tx = append_notice(tx, notice)?;
        }
        match self.transact(tx.items).await {
            Ok(()) => Ok(true),
            Err(e) if e.failed_at(0) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// That a budget notice was written; `expires_at` is the table's TTL (Unix seconds).
#[derive(Serialize, Deserialize)]
struct BudgetAlertMarker {
    expires_at: i64,
}

/// The host of a webhook URL, for the audit log.
fn url_host(raw: &str) -> String {
    url::Url::parse(raw)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default()
}
