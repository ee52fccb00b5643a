//! The `audit` function: the audit log's list, check and export (admins), and a
//! team's own events (its members). Events are written by the store with the changes
//! they record (`shared::store::audit`); nothing here writes or deletes one.

use lambda_http::{http::StatusCode, Body, Response};
use shared::{
    clock::{format_timestamp, parse_timestamp},
    domain::{
        audit::{Action, ChainedEvent, Verification},
        Actor,
    },
    error::{ApiError, Problem},
    http::{self, PageQuery, PageRequest},
    model::Page,
    router::{Ctx, HandlerResult, Router},
    store::AuditFilter,
};
use utoipa::OpenApi;
use uuid::Uuid;

/// This function's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(list_audit, verify_audit, export_audit, my_team_audit))]
pub struct ApiDoc;

pub fn router() -> Router {
    Router::new("audit")
        .route("GET /api/v1/audit", list_audit)
        .route("GET /api/v1/audit/verify", verify_audit)
        .route("GET /api/v1/audit/export", export_audit)
        .route("GET /api/v1/users/me/team/audit", my_team_audit)
}

/// The most events one export answer carries; a longer range continues from the
/// cursor in `X-Next-Cursor` (an answer stays well under Lambda's 6 MB); `limit`
/// asks for fewer.
pub const MAX_EXPORT_EVENTS: usize = 5000;

/// The filters of the audit lists, as the OpenAPI document shows them.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct AuditQuery {
    /// A user id, `system` or `anonymous` (failed logins).
    actor: Option<String>,
    /// An action name, e.g. `request.approved`.
    action: Option<String>,
    /// `user`, `team`, `request`, `policy`, `webhook`, `account` or `source`.
    target_type: Option<String>,
    target_id: Option<String>,
    /// Only this team's events (admins' list only).
    team_id: Option<Uuid>,
    /// Events at or after this time (RFC 3339).
    from: Option<String>,
    /// Events at or before this time (RFC 3339).
    to: Option<String>,
}

/// The filters of a member's team feed: the same but the team, which is theirs.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct TeamAuditQuery {
    /// A user id, `system` or `anonymous`.
    actor: Option<String>,
    /// An action name, e.g. `request.approved`.
    action: Option<String>,
    /// `user`, `team`, `request`, `policy`, `webhook`, `account` or `source`.
    target_type: Option<String>,
    target_id: Option<String>,
    /// Events at or after this time (RFC 3339).
    from: Option<String>,
    /// Events at or before this time (RFC 3339).
    to: Option<String>,
}

/// The most bytes of events one export answer carries (Lambda answers at most 6 MB).
pub const MAX_EXPORT_BYTES: usize = 5 * 1024 * 1024;

const TARGET_TYPES: &[&str] = &["user", "team", "request", "policy", "webhook", "account", "source"];

fn time_param(ctx: &Ctx, name: &str) -> Result<Option<String>, ApiError> {
    http::query_param(&ctx.req, name)
        .map(|raw| {
            parse_timestamp(raw.trim())
                .map(format_timestamp)
                .ok_or_else(|| ApiError::bad_field(name, "must be an RFC 3339 time, e.g. 2026-01-31T00:00:00Z"))
        })
        .transpose()
}

/// `from` and `to`, in the stored format; `from` not after `to`.
fn time_range(ctx: &Ctx) -> Result<(Option<String>, Option<String>), ApiError> {
    let (from, to) = (time_param(ctx, "from")?, time_param(ctx, "to")?);
    if let (Some(from), Some(to)) = (&from, &to) {
        if from > to {
            return Err(ApiError::bad_field("from", "must not be later than `to`"));
        }
    }
    Ok((from, to))
}

/// The filters of a list request (`team`: a member's own team, which no parameter
/// may change).
fn filter(ctx: &Ctx, team: Option<Uuid>) -> Result<AuditFilter, ApiError> {
    let actor = http::query_param(&ctx.req, "actor")
        .map(|raw| {
            raw.parse::<Uuid>()
                .map(|id| Actor::User(id).to_string())
                .ok()
                .or_else(|| {
                    [Actor::SYSTEM, Actor::ANONYMOUS]
                        .contains(&raw.as_str())
                        .then(|| raw.clone())
                })
                .ok_or_else(|| ApiError::bad_field("actor", "must be a user id, `system` or `anonymous`"))
        })
        .transpose()?;
    let action = http::query_param(&ctx.req, "action")
        .map(|raw| {
            Action::parse(&raw)
                .map(|a| a.as_str().to_string())
                .ok_or_else(|| ApiError::bad_field("action", "is not an action the audit log records"))
        })
        .transpose()?;
    let target_type = http::query_param(&ctx.req, "target_type")
        .map(|raw| {
            TARGET_TYPES.contains(&raw.as_str()).then_some(raw).ok_or_else(|| {
                ApiError::bad_field("target_type", format!("must be one of {}", TARGET_TYPES.join(", ")))
            })
        })
        .transpose()?;
    let target_id = http::query_param(&ctx.req, "target_id")
        .map(|raw| {
            (!raw.is_empty() && raw.len() <= 320)
                .then_some(raw)
                .ok_or_else(|| ApiError::bad_field("target_id", "must be 1 to 320 characters"))
        })
        .transpose()?;
    let team_id = match team {
        Some(team) => Some(team),
        None => http::query_uuid(&ctx.req, "team_id")?,
    };
    let (from, to) = time_range(ctx)?;
    Ok(AuditFilter {
        actor,
        action,
        target_type,
        target_id,
        team_id,
        from,
        to,
    })
}

/// A cursor is only valid for the list and the filters it came from.
fn scope(filter: &AuditFilter) -> String {
    format!("audit:{filter:?}")
}

/// A page of the list; `members` leaves out where each call came from (a teammate's
/// address and browser are for admins only).
async fn page(ctx: &Ctx, filter: AuditFilter, members: bool) -> HandlerResult {
    let page = PageRequest::from_request(&ctx.req)?;
    let scope = scope(&filter);
    let start = ctx.app.cursors.start(&scope, &page)?;
    let mut found = ctx.app.store.list_audit(&filter, page.limit, start).await?;
    if members {
        for event in &mut found.events {
            event.context = None;
        }
    }
    http::ok(&ctx.app.cursors.page(&scope, found.events, found.next)?)
}

/// The audit log, newest first, filtered by actor, action, target, team and time.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(PageQuery, AuditQuery),
    responses((status = 200, description = "A page of events", body = Page<ChainedEvent>)))]
async fn list_audit(ctx: Ctx) -> HandlerResult {
    let filter = filter(&ctx, None)?;
    page(&ctx, filter, false).await
}

/// My team's events (the same filters but `team_id`), newest first, without the
/// calls' addresses and user agents (`context` is `null`).
#[utoipa::path(get, path = "/api/v1/users/me/team/audit", tag = "audit", params(PageQuery, TeamAuditQuery),
    responses((status = 200, description = "A page of the team's events", body = Page<ChainedEvent>),
              (status = 404, description = "The caller is in no team", body = Problem)))]
async fn my_team_audit(ctx: Ctx) -> HandlerResult {
    let team = ctx.caller()?.team_id.ok_or_else(|| ApiError::NotFound("team".into()))?;
    let filter = filter(&ctx, Some(team))?;
    page(&ctx, filter, true).await
}

/// Recomputes the whole chain: every event's hash, every link, no gap, and the head
/// naming the last event. `ok: false` names the first broken link.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit",
    responses((status = 200, description = "What the check found", body = Verification)))]
async fn verify_audit(ctx: Ctx) -> HandlerResult {
    let verification = ctx.app.store.verify_audit().await?;
    if let Some(broken) = &verification.first_broken {
        tracing::warn!(seq = broken.seq, reason = %broken.reason, "audit chain broken");
    }
    http::ok(&verification)
}

/// The events stamped between `from` and `to`, oldest first, as NDJSON (one event a
/// line, with `seq`, `prev_hash` and `hash`), so that an outside tool can check the
/// chain (see `docs/audit.md`). At most `limit` (5000) events and 5 MiB an answer;
/// `X-Next-Cursor` continues. `X-Audit-Head` is the chain's head (`<seq>:<hash>`) as
/// it was when the export began.
#[utoipa::path(get, path = "/api/v1/audit/export", tag = "audit",
    params(("from" = Option<String>, Query, description = "At or after (RFC 3339)"),
           ("to" = Option<String>, Query, description = "At or before (RFC 3339)"),
           ("limit" = Option<u32>, Query, description = "At most this many events (1–5000, default 5000)", minimum = 1, maximum = 5000),
           ("cursor" = Option<String>, Query, description = "`X-Next-Cursor` of the previous answer")),
    responses((status = 200, description = "NDJSON, one event a line", content_type = "application/x-ndjson", body = String,
               headers(("X-Next-Cursor" = String, description = "Present when more events follow"),
                       ("X-Audit-Head" = String, description = "`<seq>:<hash>` of the chain's head when the export began")))))]
async fn export_audit(ctx: Ctx) -> HandlerResult {
    let (from, to) = time_range(&ctx)?;
    let max = match http::query_param(&ctx.req, "limit") {
        None => MAX_EXPORT_EVENTS,
        Some(raw) => raw
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_EXPORT_EVENTS).contains(n))
            .ok_or_else(|| {
                ApiError::bad_field("limit", format!("must be a whole number from 1 to {MAX_EXPORT_EVENTS}"))
            })?,
    };
    let scope = format!("audit-export:{from:?}:{to:?}");
    let mut start = http::query_param(&ctx.req, "cursor")
        .map(|c| ctx.app.cursors.open(&scope, &c))
        .transpose()?;
    // The head as it was before the first read: what an outside check compares the
    // export's last event with (cutting events off the end then shows).
    let head = ctx.app.store.audit_head().await?;
    let mut body = String::new();
    let mut count = 0;
    let next = loop {
        let (events, more) = ctx
            .app
            .store
            .audit_in_order(from.as_deref(), to.as_deref(), start.take())
            .await?;
        let mut last = None;
        let mut full = false;
        // An item edited out of shape is left out: the gap in `seq` shows it.
        for event in events.iter().flatten() {
            let line = serde_json::to_string(event).map_err(ApiError::internal)?;
            if count > 0 && body.len() + line.len() + 1 > MAX_EXPORT_BYTES {
                full = true;
                break;
            }
            body.push_str(&line);
            body.push('\n');
            count += 1;
            last = Some(event);
            if count == max {
                full = true;
                break;
            }
        }
        match (last, more) {
            // Full: the next answer starts after the last event written.
            (Some(last), _) if full => break Some(shared::store::audit_event_key(last)),
            (_, Some(more)) => start = Some(more),
            (_, None) => break None,
        }
    };
    let mut response = Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/x-ndjson")
        .header("cache-control", "no-store");
    if let Some(head) = head {
        response = response.header("x-audit-head", format!("{}:{}", head.seq, head.hash));
    }
    if let Some(next) = next {
        response = response.header("x-next-cursor", ctx.app.cursors.seal(&scope, &next)?);
    }
    response.body(Body::Text(body)).map_err(ApiError::internal)
}
