//! Notification preferences (`/users/me/notifications`), webhooks (`/webhooks`) and
//! the deliveries that gave up (`/admin/notifications`). The rules are in
//! `shared::notify`; delivery is the notifier's (`functions/notifier`).

use serde::{Deserialize, Serialize};
use shared::{
    error::{ApiError, FieldError, Problem},
    http::{self, PageQuery, PageRequest},
    model::Page,
    notify::{self, Kind, Preferences},
    router::{Ctx, HandlerResult},
    store::outbox::{Delivery, Webhook},
};
use std::collections::{BTreeMap, BTreeSet};
use utoipa::ToSchema;
use uuid::Uuid;

/// My notification settings: each kind on or off. Security notices
/// (`password_changed`, `credentials_rotated`) are always on.
#[derive(Serialize, ToSchema)]
pub struct NotificationSettings {
    /// Every kind, `true` when it is sent to me.
    #[schema(value_type = Object, example = json!({"request_ready": true, "request_expiring": false}))]
    notifications: BTreeMap<Kind, bool>,
    /// The kinds that cannot be turned off.
    always_on: Vec<Kind>,
}

fn settings(off: &BTreeSet<Kind>) -> NotificationSettings {
    let prefs = Preferences { off: off.clone() };
    NotificationSettings {
        notifications: Kind::ALL.into_iter().map(|k| (k, prefs.allows(k))).collect(),
        always_on: Kind::ALL.into_iter().filter(|k| k.is_security()).collect(),
    }
}

/// My notification settings.
#[utoipa::path(get, path = "/api/v1/users/me/notifications", tag = "notifications",
    responses((status = 200, description = "Each kind, on or off", body = NotificationSettings)))]
pub async fn get_preferences(ctx: Ctx) -> HandlerResult {
    http::ok(&settings(&ctx.caller()?.notifications_off))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferencesUpdate {
    /// Kinds to turn on (`true`) or off (`false`); kinds not named are on.
    #[schema(value_type = Object, example = json!({"request_expiring": false}))]
    notifications: BTreeMap<String, bool>,
}

/// Set my notification settings (the whole set: kinds not named are on). Security
/// notices cannot be turned off (422).
#[utoipa::path(put, path = "/api/v1/users/me/notifications", tag = "notifications", request_body = PreferencesUpdate,
    responses((status = 200, description = "The new settings", body = NotificationSettings),
              (status = 422, description = "An unknown kind, or a security notice turned off", body = Problem)))]
pub async fn set_preferences(ctx: Ctx) -> HandlerResult {
    let input: PreferencesUpdate = http::json_body(&ctx.req)?;
    let mut errors = Vec::new();
    let mut choices = Vec::new();
    for (name, on) in &input.notifications {
        match Kind::parse(name) {
            Some(kind) => choices.push((kind, *on)),
            None => errors.push(FieldError::new(
                format!("notifications.{name}"),
                "is not a kind of notification",
            )),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let prefs = Preferences::from_choices(&choices).map_err(|kind| {
        ApiError::validation(
            &format!("notifications.{}", kind.as_str()),
            "is a security notice and cannot be turned off",
        )
    })?;
    let caller = ctx.caller()?;
    let now = ctx.now();
    ctx.app
        .store
        .set_notification_preferences(caller.id, &prefs, &now, &ctx.origin())
        .await?;
    tracing::info!(user_id = %caller.id, off = prefs.off.len(), "notification preferences changed");
    http::ok(&settings(&prefs.off))
}

/// A webhook, as shown (never its secret).
#[derive(Serialize, ToSchema)]
pub struct WebhookView {
    id: Uuid,
    url: String,
    events: BTreeSet<Kind>,
    /// Deliveries are Slack-compatible `{"text": …}` instead of the signed event.
    slack: bool,
    /// `false` once it kept failing (then `disabled_reason` says why).
    enabled: bool,
    consecutive_failures: u32,
    disabled_reason: Option<String>,
    created_by: Uuid,
    created_at: String,
}

impl From<&Webhook> for WebhookView {
    fn from(h: &Webhook) -> Self {
        Self {
            id: h.id,
            url: h.url.clone(),
            events: h.events.clone(),
            slack: h.slack,
            enabled: h.enabled,
            consecutive_failures: h.consecutive_failures,
            disabled_reason: h.disabled_reason.clone(),
            created_by: h.created_by,
            created_at: h.created_at.clone(),
        }
    }
}

/// A new webhook, with its signing secret: shown this once, never again.
#[derive(Serialize, ToSchema)]
pub struct WebhookCreated {
    #[serde(flatten)]
    webhook: WebhookView,
    /// Verifies `X-SSI-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
    #[schema(example = "whsec_…")]
    secret: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// `https://` (locally also `http://127.0.0.1…`); no user info, no private
    /// addresses. Redirects are not followed.
    #[schema(example = "https://hooks.example.com/ssi")]
    url: String,
    /// The kinds to deliver (not `password_changed`, which is personal).
    #[schema(value_type = Vec<String>, example = json!(["request_submitted", "request_ready"]))]
    events: Vec<String>,
    /// Send Slack-compatible payloads (`{"text": …}`).
    #[serde(default)]
    slack: bool,
}

/// Register a webhook; the answer holds its signing secret, once.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "notifications", request_body = NewWebhook,
    responses((status = 201, description = "The webhook, with its secret (shown once)", body = WebhookCreated),
              (status = 422, description = "A URL that is not allowed, or an unknown kind", body = Problem)))]
pub async fn create_webhook(ctx: Ctx) -> HandlerResult {
    let input: NewWebhook = http::json_body(&ctx.req)?;
    let mut errors = Vec::new();
    let url = match notify::webhook::check_url(&input.url, ctx.app.config.webhook_allow_loopback) {
        Ok(url) => url.to_string(),
        Err(why) => {
            errors.push(FieldError::new("url", why));
            String::new()
        }
    };
    let mut events = BTreeSet::new();
    for (i, name) in input.events.iter().enumerate() {
        match Kind::parse(name) {
            Some(kind) if kind.webhook_allowed() => {
                events.insert(kind);
            }
            Some(_) => errors.push(FieldError::new(
                format!("events[{i}]"),
                "is personal and goes by mail only",
            )),
            None => errors.push(FieldError::new(format!("events[{i}]"), "is not a kind of notification")),
        }
    }
    if input.events.is_empty() {
        errors.push(FieldError::new("events", "must name at least one kind"));
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let caller = ctx.caller()?;
    let now = ctx.now();
    let hook = Webhook {
        id: Uuid::new_v4(),
        url,
        events,
        slack: input.slack,
        enabled: true,
        consecutive_failures: 0,
        disabled_reason: None,
        created_by: caller.id,
        created_at: now.clone(),
        updated_at: now,
        secret: notify::signature::new_secret(),
    };
    ctx.app.store.create_webhook(&hook, &ctx.origin()).await?;
    tracing::info!(webhook_id = %hook.id, by = %caller.id, "webhook registered");
    http::created(&WebhookCreated {
        webhook: WebhookView::from(&hook),
        secret: hook.secret.clone(),
    })
}

/// The webhooks, oldest first (without their secrets).
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "notifications", params(PageQuery),
    responses((status = 200, description = "A page of webhooks", body = Page<WebhookView>)))]
pub async fn list_webhooks(ctx: Ctx) -> HandlerResult {
    let page = PageRequest::from_request(&ctx.req)?;
    let start = ctx.app.cursors.start("webhooks", &page)?;
    let (hooks, next) = ctx.app.store.list_webhooks(page.limit, start).await?;
    let items: Vec<WebhookView> = hooks.iter().map(WebhookView::from).collect();
    http::ok(&ctx.app.cursors.page("webhooks", items, next)?)
}

/// Delete a webhook; deliveries still queued for it are dropped.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "notifications",
    responses((status = 204, description = "Deleted")))]
pub async fn delete_webhook(ctx: Ctx) -> HandlerResult {
    let id = http::path_uuid(&ctx.req, "id", "webhook")?;
    if !ctx.app.store.delete_webhook(id, &ctx.origin()).await? {
        return Err(ApiError::NotFound("webhook".into()));
    }
    tracing::info!(webhook_id = %id, by = %ctx.caller()?.id, "webhook deleted");
    http::no_content()
}

/// Filters of the failed notifications.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct DeliveryFilters {
    /// Only `failed` (the default): deliveries that gave up after their last attempt.
    status: Option<String>,
}

/// Notifications that could not be delivered (after every retry), oldest first.
#[utoipa::path(get, path = "/api/v1/admin/notifications", tag = "notifications", params(PageQuery, DeliveryFilters),
    responses((status = 200, description = "A page of failed deliveries", body = Page<Delivery>)))]
pub async fn failed_notifications(ctx: Ctx) -> HandlerResult {
    if let Some(status) = http::query_param(&ctx.req, "status") {
        if status != "failed" {
            return Err(ApiError::bad_field("status", "only `failed` is listed"));
        }
    }
    let page = PageRequest::from_request(&ctx.req)?;
    let start = ctx.app.cursors.start("notifications:failed", &page)?;
    let (items, next) = ctx.app.store.list_failed_deliveries(page.limit, start).await?;
    http::ok(&ctx.app.cursors.page("notifications:failed", items, next)?)
}
