//! The notifier: delivers what changes wrote into the outbox (`shared::store::outbox`).
//!
//! - A **notice** (written in its cause's transaction) is *expanded*: its audience is
//!   resolved now (the requester, every admin, a team), each user's preferences are
//!   applied (security notices always pass), and one delivery item is written per
//!   recipient and channel (mail, and each enabled webhook subscribed to the kind),
//!   each only if absent: racing notifiers write each delivery once.
//! - A **delivery** is *claimed* (a conditional write on its status, due time and
//!   attempt count: of two notifiers exactly one gets it), sent, and marked `sent`; a
//!   failure is retried with back-off ([`shared::notify::retry`]) and, after the last
//!   attempt, marked `failed` (listed for admins). A webhook that fails too often is
//!   disabled and the admins get a notice.
//!
//! Mail goes through a [`Mailer`]: [`Ses`] (SES v2) in AWS, [`Smtp`] locally (the
//! runner's worker loop, to the local sink). In AWS this library runs in the
//! `notifier` Lambda function, fed by the table's stream (outbox items) and a
//! schedule (retries, expired leases); locally in `ssi-runner worker`.
//!
//! Nothing secret is sent or logged: messages are built from `notify::Facts`, and
//! logs name ids and kinds only (webhook URLs can be secrets too, e.g. Slack's).

pub mod mailer;
pub mod webhook;

pub use mailer::{Mailer, SendError, Ses, Smtp};

use shared::{
    clock::format_timestamp,
    notify::{self, retry::RetryPolicy, Preferences},
    store::{
        keys::Key,
        outbox::{Channel, Delivery, DeliveryEnd, DeliveryStatus, HookFailure, OutboxItem},
        Store, StoreError,
    },
};
use std::{sync::Arc, time::Duration};
use tokio::sync::watch;
use uuid::Uuid;

/// The notifier's settings (environment variables in brackets).
#[derive(Debug, Clone)]
pub struct NotifierConfig {
    /// The API's public URL, for links in messages (`PUBLIC_BASE_URL`, default
    /// `http://127.0.0.1:3000`).
    pub base_url: String,
    /// Back-off and attempts of a delivery (`NOTIFY_RETRY_BASE_MS`, default 30000;
    /// `NOTIFY_MAX_ATTEMPTS`, default 8).
    pub retry: RetryPolicy,
    /// How long a claim holds (`NOTIFY_LEASE_SECS`, default 300). Longer than any
    /// send may take ([`NotifierConfig::send_timeout`]), so a live notifier never
    /// loses a delivery it is sending to another.
    pub lease: Duration,
    /// The longest one send (SMTP, SES or a webhook POST) may take (`NOTIFY_SEND_TIMEOUT_SECS`, default 20).
    pub send_timeout: Duration,
    /// Webhooks may be `http://` to loopback (`WEBHOOK_ALLOW_LOOPBACK=true`): the local
    /// configuration only.
    pub webhook_allow_loopback: bool,
    /// Deliveries in a row that fail for good before a webhook is disabled
    /// (`WEBHOOK_DISABLE_AFTER`, default 5).
    pub webhook_disable_after: u32,
    /// How often the loop looks for due items (`NOTIFY_POLL_MS`, default 1000).
    pub poll: Duration,
}

impl Default for NotifierConfig {
    fn default() -> Self {
        Self {
            base_url: "http://127.0.0.1:3000".into(),
            retry: RetryPolicy::default(),
            lease: Duration::from_secs(300),
            send_timeout: Duration::from_secs(20),
            webhook_allow_loopback: false,
            webhook_disable_after: 5,
            poll: Duration::from_secs(1),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("configuration error: {var}: {problem}")]
pub struct ConfigError {
    pub var: &'static str,
    pub problem: String,
}

fn number(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    match get(var) {
        None => Ok(default),
        Some(v) => v.trim().parse::<u64>().ok().filter(|n| *n <= max).ok_or(ConfigError {
            var,
            problem: format!("`{v}` is not a whole number up to {max}"),
        }),
    }
}

impl NotifierConfig {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let d = Self::default();
        let lease = Duration::from_secs(number(&get, "NOTIFY_LEASE_SECS", d.lease.as_secs(), 3600)?.max(1));
        let send_timeout =
            Duration::from_secs(number(&get, "NOTIFY_SEND_TIMEOUT_SECS", d.send_timeout.as_secs(), 300)?.max(1));
        if send_timeout * 2 > lease {
            return Err(ConfigError {
                var: "NOTIFY_LEASE_SECS",
                problem: "must be at least twice NOTIFY_SEND_TIMEOUT_SECS".into(),
            });
        }
        Ok(Self {
            base_url: get("PUBLIC_BASE_URL").unwrap_or(d.base_url),
            retry: RetryPolicy {
                base: Duration::from_millis(number(&get, "NOTIFY_RETRY_BASE_MS", 30_000, 3_600_000)?),
                max_attempts: u32::try_from(number(&get, "NOTIFY_MAX_ATTEMPTS", 8, 100)?.max(1)).unwrap_or(8),
            },
            lease,
            send_timeout,
            webhook_allow_loopback: get("WEBHOOK_ALLOW_LOOPBACK").is_some_and(|v| v.trim() == "true"),
            webhook_disable_after: u32::try_from(number(&get, "WEBHOOK_DISABLE_AFTER", 5, 1000)?.max(1)).unwrap_or(5),
            poll: Duration::from_millis(number(&get, "NOTIFY_POLL_MS", 1000, 60_000)?.max(10)),
        })
    }
}

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pass {
    pub expanded: usize,
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
    pub skipped: usize,
}

impl Pass {
    fn add(&mut self, other: &Pass) {
        self.expanded += other.expanded;
        self.sent += other.sent;
        self.retried += other.retried;
        self.failed += other.failed;
        self.skipped += other.skipped;
    }

    pub fn is_idle(&self) -> bool {
        *self == Pass::default()
    }
}

/// How many due items one query fetches.
const BATCH: usize = 50;

pub struct Notifier<M> {
    store: Store,
    mailer: M,
    cfg: Arc<NotifierConfig>,
    owner: String,
}

fn timestamp(t: time::OffsetDateTime) -> String {
    format_timestamp(t)
}

impl<M: Mailer> Notifier<M> {
    pub fn new(store: Store, mailer: M, cfg: NotifierConfig) -> Self {
        let owner = format!(
            "notifier-{}-{}",
            std::process::id(),
            &Uuid::new_v4().simple().to_string()[..8]
        );
        Self {
            store,
            mailer,
            cfg: Arc::new(cfg),
            owner,
        }
    }

    pub fn config(&self) -> &NotifierConfig {
        &self.cfg
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Handles everything due at `now`, until nothing due is left (at most 20
    /// queries, so one pass always ends).
    pub async fn run_once(&self, now: time::OffsetDateTime) -> Result<Pass, StoreError> {
        let mut pass = Pass::default();
        for _ in 0..20 {
            let due = self.store.due_outbox(&timestamp(now), BATCH).await?;
            if due.is_empty() {
                break;
            }
            let mut progress = Pass::default();
            for key in &due {
                progress.add(&self.process(key, now).await?);
            }
            pass.add(&progress);
            // Everything left is someone else's (claimed, or not readable yet).
            if progress.is_idle() || due.len() < BATCH {
                break;
            }
        }
        Ok(pass)
    }

    /// Handles one outbox item (a stream record's, or one found due).
    pub async fn process(&self, key: &Key, now: time::OffsetDateTime) -> Result<Pass, StoreError> {
        let mut pass = Pass::default();
        match self.store.get_outbox_item(key).await? {
            None => {}
            Some(OutboxItem::Notice(notice)) => {
                let deliveries = self.expand(&notice, now).await?;
                pass.expanded += 1;
                for delivery in deliveries {
                    pass.add(&self.deliver(delivery, now).await?);
                }
            }
            Some(OutboxItem::Delivery(delivery)) => pass.add(&self.deliver(delivery, now).await?),
        }
        Ok(pass)
    }

    /// Writes the deliveries of a notice; returns them as stored (also when another
    /// notifier wrote them).
    async fn expand(&self, notice: &notify::Notice, now: time::OffsetDateTime) -> Result<Vec<Delivery>, StoreError> {
        let at = timestamp(now);
        let mut deliveries = Vec::new();
        for user in self.store.audience_users(&notice.audience).await? {
            let prefs = Preferences {
                off: user.notifications_off.clone(),
            };
            if prefs.allows(notice.kind) {
                deliveries.push(Delivery::new(notice, Channel::Email, user.id, &user.email, &at));
            }
        }
        if notice.kind.webhook_allowed() {
            for hook in self.store.webhooks_for(notice.kind).await? {
                deliveries.push(Delivery::new(notice, Channel::Webhook, hook.id, &hook.url, &at));
            }
        }
        self.store.expand_notice(notice, &deliveries).await?;
        tracing::info!(notice_id = %notice.id, kind = notice.kind.as_str(), deliveries = deliveries.len(), "notice expanded");
        self.store.deliveries_of(notice.id).await
    }

    /// Claims, sends and records one delivery, if it is due and nobody else has it.
    async fn deliver(&self, delivery: Delivery, now: time::OffsetDateTime) -> Result<Pass, StoreError> {
        let mut pass = Pass::default();
        let at = timestamp(now);
        let due = match delivery.status {
            DeliveryStatus::Pending => delivery.due_at <= at,
            // A lease that ended: its notifier died (a live one finishes or gives up
            // well within the lease).
            DeliveryStatus::Sending => delivery.due_at < at,
            DeliveryStatus::Sent | DeliveryStatus::Failed | DeliveryStatus::Skipped => false,
        };
        if !due {
            return Ok(pass);
        }
        let lease_until = timestamp(now + self.cfg.lease);
        let Some(claimed) = self
            .store
            .claim_delivery(&delivery, &self.owner, &at, &lease_until)
            .await?
        else {
            return Ok(pass);
        };
        let (result, hook) = match claimed.channel {
            Channel::Email => {
                let message = notify::message::render(claimed.kind, &claimed.facts, &self.cfg.base_url);
                let sent = tokio::time::timeout(self.cfg.send_timeout, self.mailer.send(&claimed.address, &message))
                    .await
                    .unwrap_or_else(|_| Err(SendError::new("timed out")));
                (sent.map(|()| true), None)
            }
            Channel::Webhook => match self.store.get_webhook(claimed.recipient_id).await? {
                Some(hook) if hook.enabled => {
                    let sent = webhook::post(&hook, &claimed, &self.cfg, now).await;
                    (sent.map(|()| true), Some(hook))
                }
                _ => (Ok(false), None),
            },
        };
        let done_at = timestamp(time::OffsetDateTime::now_utc().max(now));
        let retry_at = match &result {
            Err(_) => self
                .cfg
                .retry
                .after_failure(claimed.attempts)
                .map(|wait| timestamp(now + wait)),
            Ok(_) => None,
        };
        let (end, hook_failure) = match (&result, &retry_at) {
            (Ok(true), _) => (DeliveryEnd::Sent, None),
            (Ok(false), _) => (
                DeliveryEnd::Skipped {
                    why: "the webhook is disabled or deleted",
                },
                None,
            ),
            (Err(e), Some(at)) => (DeliveryEnd::Retry { error: e.summary(), at }, None),
            (Err(e), None) => {
                let failure = hook.as_ref().map(|h| {
                    if h.consecutive_failures + 1 >= self.cfg.webhook_disable_after {
                        let why = format!(
                            "{} deliveries in a row failed; the last: {}",
                            h.consecutive_failures + 1,
                            e.summary()
                        );
                        HookFailure::Disable {
                            seen: h.consecutive_failures,
                            notice: Box::new(notify::webhook_disabled(h.id, &h.url, &why, &done_at)),
                        }
                    } else {
                        HookFailure::Count {
                            seen: h.consecutive_failures,
                        }
                    }
                });
                (DeliveryEnd::Failed { error: e.summary() }, failure)
            }
        };
        let written = self
            .store
            .finish_delivery(&claimed, &self.owner, &end, hook_failure.as_ref(), &done_at)
            .await?;
        let ids = (
            claimed.notice_id,
            claimed.kind.as_str(),
            claimed.channel.as_str(),
            claimed.recipient_id,
        );
        if !written {
            tracing::warn!(notice_id = %ids.0, kind = ids.1, channel = ids.2, recipient = %ids.3, "delivery lease lost before its outcome was recorded");
            return Ok(pass);
        }
        match (&end, &result) {
            (DeliveryEnd::Sent, _) => {
                pass.sent += 1;
                if claimed.channel == Channel::Webhook {
                    self.store.reset_webhook_failures(claimed.recipient_id).await?;
                }
                tracing::info!(notice_id = %ids.0, kind = ids.1, channel = ids.2, recipient = %ids.3, attempt = claimed.attempts, "notification sent");
            }
            (DeliveryEnd::Skipped { .. }, _) => pass.skipped += 1,
            (DeliveryEnd::Retry { at, .. }, Err(e)) => {
                pass.retried += 1;
                tracing::warn!(notice_id = %ids.0, kind = ids.1, channel = ids.2, recipient = %ids.3, attempt = claimed.attempts, retry_at = %at, error = e.summary(), "notification failed; will retry");
            }
            (_, r) => {
                pass.failed += 1;
                tracing::warn!(notice_id = %ids.0, kind = ids.1, channel = ids.2, recipient = %ids.3, attempt = claimed.attempts, error = r.as_ref().err().map(SendError::summary), disabled = matches!(hook_failure, Some(HookFailure::Disable { .. })), "notification failed for good");
            }
        }
        Ok(pass)
    }

    /// Runs passes every [`NotifierConfig::poll`] until `stop` turns true. A mail
    /// server that is down only delays its deliveries (they retry); nothing waits on
    /// it.
    pub async fn work(&self, mut stop: watch::Receiver<bool>) {
        tracing::info!(owner = %self.owner, "notifier started");
        loop {
            if *stop.borrow() {
                break;
            }
            if let Err(e) = self.run_once(time::OffsetDateTime::now_utc()).await {
                tracing::warn!(error = %e, "notifier pass failed");
            }
            tokio::select! {
                () = tokio::time::sleep(self.cfg.poll) => {}
                _ = stop.changed() => {}
            }
        }
        tracing::info!(owner = %self.owner, "notifier stopped");
    }
}

/// The local notifier over SMTP, when the environment asks for one (`SMTP_PORT`
/// set; `SMTP_HOST` default `127.0.0.1`, `NOTIFY_FROM` default
/// `ssi@localhost`): `ssi-runner worker` runs it beside the jobs.
pub fn smtp_from_lookup(
    store: Store,
    get: impl Fn(&str) -> Option<String>,
) -> Result<Option<Notifier<Smtp>>, ConfigError> {
    let Some(port) = get("SMTP_PORT") else {
        return Ok(None);
    };
    let port = port.trim().parse::<u16>().map_err(|_| ConfigError {
        var: "SMTP_PORT",
        problem: format!("`{port}` is not a port number"),
    })?;
    let cfg = NotifierConfig::from_lookup(&get)?;
    let host = get("SMTP_HOST").unwrap_or_else(|| "127.0.0.1".into());
    let from = get("NOTIFY_FROM").unwrap_or_else(|| "ssi@localhost".into());
    let smtp = Smtp::new(&host, port, &from, cfg.send_timeout).map_err(|e| ConfigError {
        var: "NOTIFY_FROM",
        problem: e.summary().to_string(),
    })?;
    Ok(Some(Notifier::new(store, smtp, cfg)))
}

/// The `OUTBOX` items of a batch of stream records (the template's filter lets only
/// pending ones through; others are skipped here too).
pub fn outbox_keys(records: &[serde_json::Value]) -> Vec<Key> {
    records
        .iter()
        .filter_map(|record| {
            let image = record.get("dynamodb")?.get("NewImage")?;
            let text = |name: &str| image.get(name)?.get("S")?.as_str();
            if text("entity_type")? != "OUTBOX" {
                return None;
            }
            Some((text("PK")?.to_string(), text("SK")?.to_string()))
        })
        .collect()
}

/// One invocation of the Lambda function: stream records (each item handled by key,
/// with a consistent read), or the schedule (everything due: retries, expired
/// leases, records whose invocation failed).
pub async fn handle<M: Mailer>(
    notifier: &Notifier<M>,
    event: &serde_json::Value,
) -> Result<serde_json::Value, StoreError> {
    let now = time::OffsetDateTime::now_utc();
    let mut pass = Pass::default();
    match event.get("Records").and_then(serde_json::Value::as_array) {
        Some(records) => {
            for key in outbox_keys(records) {
                pass.add(&notifier.process(&key, now).await?);
            }
        }
        None => pass = notifier.run_once(now).await?,
    }
    Ok(serde_json::json!({
        "expanded": pass.expanded, "sent": pass.sent, "retried": pass.retried,
        "failed": pass.failed, "skipped": pass.skipped,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stream_records_name_outbox_items_only() {
        let records = [
            json!({"dynamodb": {"NewImage": {"entity_type": {"S": "OUTBOX"}, "PK": {"S": "OUTBOX#1"}, "SK": {"S": "NOTICE"}}}}),
            json!({"dynamodb": {"NewImage": {"entity_type": {"S": "JOB"}, "PK": {"S": "JOB#1"}, "SK": {"S": "JOB#1"}}}}),
            json!({"eventName": "REMOVE", "dynamodb": {}}),
        ];
        assert_eq!(outbox_keys(&records), [("OUTBOX#1".to_string(), "NOTICE".to_string())]);
    }

    #[test]
    fn config_defaults_and_checks() {
        let cfg = NotifierConfig::from_lookup(|_| None).unwrap();
        assert_eq!(cfg.retry, RetryPolicy::default());
        assert!(!cfg.webhook_allow_loopback);
        let err = NotifierConfig::from_lookup(|k| (k == "NOTIFY_LEASE_SECS").then(|| "10".into())).unwrap_err();
        assert_eq!(err.var, "NOTIFY_LEASE_SECS");
        let local = NotifierConfig::from_lookup(|k| (k == "WEBHOOK_ALLOW_LOOPBACK").then(|| "true".into())).unwrap();
        assert!(local.webhook_allow_loopback);
    }
}
