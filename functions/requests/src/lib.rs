//! The `requests` function: the resource catalog, request submission, the lists, and
//! admin review (approve / reject), on the state machine of `RequestStatus`.

use serde::{Deserialize, Serialize};
use shared::{
    catalog::{self, ResourceType},
    clock::format_timestamp,
    domain::{
        audit::{Action, Target},
        budget::{self, BudgetCheck},
        cost, lifecycle, lifetime,
        money::{AmountInput, Money},
        policy::{self, ApprovalPolicy},
        Actor,
    },
    error::{money_error, ApiError, FieldError, Problem},
    http::{self, PageQuery, PageRequest},
    model::{JobLog, Page, RequestStatus, ResourceRequest, Team, Transition, User},
    router::{Ctx, HandlerResult, Router},
    store::{CreateError, RequestList},
};
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

pub const MAX_TEXT_CHARS: usize = 2000;

/// This function's part of the OpenAPI document (errors and security are added from
/// the route table by the `docs` function).
#[derive(OpenApi)]
#[openapi(
    paths(
        resource_types,
        create_request,
        list_requests,
        pending_requests,
        get_request,
        cancel,
        approve,
        reject,
        retry,
        delete_request,
        extend,
        logs,
        credentials,
        rotate_credentials,
        create_policy,
        list_policies,
        delete_policy
    ),
    components(schemas(Scope))
)]
pub struct ApiDoc;

pub fn router() -> Router {
    Router::new("requests")
        .route("GET /api/v1/resource-types", resource_types)
        .route("POST /api/v1/requests", create_request)
        .route("GET /api/v1/requests", list_requests)
        .route("GET /api/v1/requests/{id}", get_request)
        .route("POST /api/v1/requests/{id}/cancel", cancel)
        .route("POST /api/v1/requests/{id}/approve", approve)
        .route("POST /api/v1/requests/{id}/reject", reject)
        .route("POST /api/v1/requests/{id}/retry", retry)
        .route("POST /api/v1/requests/{id}/delete", delete_request)
        .route("POST /api/v1/requests/{id}/extend", extend)
        .route("GET /api/v1/requests/{id}/logs", logs)
        .route("GET /api/v1/requests/{id}/credentials", credentials)
        .route("POST /api/v1/requests/{id}/credentials/rotate", rotate_credentials)
        .route("GET /api/v1/admin/requests/pending", pending_requests)
        .route("POST /api/v1/policies", create_policy)
        .route("GET /api/v1/policies", list_policies)
        .route("DELETE /api/v1/policies/{id}", delete_policy)
}

/// The resource types that can be requested, each with the JSON Schema of its
/// parameters and its `pricing`: the on-demand list prices (one region, with their
/// source and date) that requests' estimated monthly costs are computed from.
#[utoipa::path(get, path = "/api/v1/resource-types", tag = "requests",
    responses((status = 200, description = "The catalog", body = Page<ResourceType>)))]
async fn resource_types(_ctx: Ctx) -> HandlerResult {
    http::ok(&Page {
        items: catalog::catalog().to_vec(),
        next_cursor: None,
    })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewRequest {
    /// An `id` from `GET /resource-types`.
    #[schema(example = "postgres")]
    resource_type: String,
    /// A DNS label (1–63 of a-z, 0-9, `-`), unique within the team for the type.
    #[schema(example = "orders-db", pattern = "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]
    name: String,
    /// Checked against the type's schema; omitted parameters take their defaults.
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    parameters: serde_json::Value,
    /// Why the team needs it (1–2000 characters, trimmed; no control characters but
    /// tab and line breaks).
    #[schema(min_length = 1, max_length = 2000)]
    justification: String,
    /// When the resource is deleted by itself (RFC 3339). At most the type's
    /// `max_lifetime_days` ahead; for such a type it defaults to that maximum.
    #[schema(example = "2027-01-31T00:00:00Z")]
    expires_at: Option<String>,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}

/// Trimmed text of 1–2000 characters, without control characters other than tab and
/// line breaks.
fn required_text(field: &str, raw: &str, errors: &mut Vec<FieldError>) -> String {
    let text = raw.trim();
    let chars = text.chars().count();
    if chars == 0 || chars > MAX_TEXT_CHARS {
        errors.push(FieldError::new(
            field,
            format!("must be 1 to {MAX_TEXT_CHARS} characters"),
        ));
    } else if let Some(problem) = shared::text::free_text_problem(text) {
        errors.push(FieldError::new(field, problem));
    }
    text.to_string()
}

/// Ask for a resource for the caller's team. Only members of a team can ask. The
/// request gets its `estimated_monthly_cost` and, when the team has a budget, the
/// `budget` check. A request that an approval policy covers, and that keeps the team
/// within its budget, is approved at once by the system (the history names the
/// policy); any other waits for an admin.
#[utoipa::path(post, path = "/api/v1/requests", tag = "requests", request_body = NewRequest,
    responses((status = 201, description = "The request: pending, or approved by a policy", body = ResourceRequest),
              (status = 403, description = "The caller is in no team", body = Problem),
              (status = 409, description = "The team already has a resource of this type with this name", body = Problem)))]
async fn create_request(ctx: Ctx) -> HandlerResult {
    let input: NewRequest = http::json_body(&ctx.req)?;
    let caller = ctx.caller()?;
    let team_id = caller.team_id.ok_or(ApiError::Forbidden)?;
    let mut errors = Vec::new();
    let parameters = match catalog::find(&input.resource_type) {
        None => {
            errors.push(FieldError::new(
                "resource_type",
                "is not in the catalog (see GET /api/v1/resource-types)",
            ));
            None
        }
        Some(rt) => catalog::validate(rt, &input.parameters)
            .map_err(|mut e| errors.append(&mut e))
            .ok(),
    };
    if !catalog::is_dns_label(&input.name) {
        errors.push(FieldError::new(
            "name",
            "must be a DNS label: 1-63 of a-z, 0-9 and -, not starting or ending with -",
        ));
    }
    let justification = required_text("justification", &input.justification, &mut errors);
    let now_at = ctx.app.clock.now();
    let expires_at = match input.expires_at.as_deref().map(parse_time).transpose() {
        Ok(asked) => {
            let max_days = catalog::find(&input.resource_type).and_then(|rt| rt.max_lifetime_days);
            lifetime::initial_expiry(asked, max_days, now_at)
                .map_err(|e| errors.push(FieldError::new("expires_at", e.to_string())))
                .ok()
                .flatten()
        }
        Err(e) => {
            errors.push(e);
            None
        }
    };
    let (Some(parameters), Some(rt)) = (
        parameters.filter(|_| errors.is_empty()),
        catalog::find(&input.resource_type),
    ) else {
        return Err(ApiError::Validation(errors));
    };
    let estimate = cost::estimate(rt, &parameters);
    let now = format_timestamp(now_at);
    let mut request = ResourceRequest {
        id: Uuid::new_v4(),
        team_id,
        requester_id: caller.id,
        resource_type: input.resource_type,
        name: input.name,
        parameters,
        justification,
        status: RequestStatus::Pending,
        created_at: now.clone(),
        updated_at: now.clone(),
        history: vec![Transition {
            from: None,
            to: RequestStatus::Pending,
            by: Actor::User(caller.id),
            at: now.clone(),
            comment: None,
        }],
        provisioning: None,
        outputs: None,
        credentials: None,
        expires_at: expires_at.map(format_timestamp),
        estimated_monthly_cost: Some(estimate),
        budget: None,
    };
    let store = &ctx.app.store;
    let (team, policies) = tokio::try_join!(store.get_team(team_id), store.all_policies())?;
    let team = team.ok_or_else(|| ApiError::Conflict("your team changed while the request was made; retry".into()))?;
    request.budget = budget_check(&ctx, &team, estimate, None).await?;
    let matched = policy::matching(
        &policies,
        &request.resource_type,
        team_id,
        estimate,
        request.budget.as_ref(),
    );
    if let Some(policy) = matched {
        let note = policy::approval_note(policy);
        let planned = lifecycle::plan_transition(&request, RequestStatus::Approved, Actor::System, Some(note), &now)?;
        match store
            .create_request_approved_by_policy(&request, &planned, policy, &ctx.origin())
            .await
        {
            Ok(approved) => {
                tracing::info!(request_id = %approved.id, team_id = %team_id, policy_id = %policy.id, "request submitted and approved by policy");
                return http::created(&approved);
            }
            // Deleted since it was read: the request waits for an admin instead.
            Err(CreateError::PolicyGone) => {}
            Err(e) => return Err(e.into()),
        }
    }
    store.create_request(&request, &ctx.origin()).await?;
    tracing::info!(request_id = %request.id, team_id = %team_id, resource_type = %request.resource_type, "request submitted");
    http::created(&request)
}

/// The budget check of a request estimated at `estimate` for `team` (`None` when the
/// team has no budget): the team's committed run-rate, leaving out `except` (the
/// request being decided), plus the estimate, against the limit.
async fn budget_check(
    ctx: &Ctx,
    team: &Team,
    estimate: Money,
    except: Option<Uuid>,
) -> Result<Option<BudgetCheck>, ApiError> {
    let Some(limit) = &team.budget else {
        return Ok(None);
    };
    let requests = ctx.app.store.team_requests(team).await?;
    Ok(budget::check(
        Some(limit),
        budget::committed(&requests, except),
        estimate,
    ))
}

/// An RFC 3339 timestamp from the body (`expires_at`).
fn parse_time(raw: &str) -> Result<time::OffsetDateTime, FieldError> {
    shared::clock::parse_timestamp(raw)
        .ok_or_else(|| FieldError::new("expires_at", "must be an RFC 3339 timestamp, e.g. 2027-01-31T00:00:00Z"))
}

/// Filters of the request list.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct RequestFilters {
    /// `mine` (default for users), `team` (the caller's team) or `all` (admins; their default).
    scope: Option<Scope>,
    /// Only requests in this status.
    status: Option<RequestStatus>,
    /// Admins: only this team's requests.
    team_id: Option<Uuid>,
}

/// The `scope` of the request list (documentation only: parsed in [`requested_list`]).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
enum Scope {
    Mine,
    Team,
    All,
}

fn bad_filter(field: &str, message: &str) -> ApiError {
    ApiError::bad_field(field, message)
}

/// Which list a request asks for, after checking who may see it.
fn requested_list(ctx: &Ctx, caller: &User) -> Result<(RequestList, Option<RequestStatus>, String), ApiError> {
    let status = match http::query_param(&ctx.req, "status") {
        None => None,
        Some(raw) => Some(RequestStatus::parse(&raw).ok_or_else(|| bad_filter("status", "is not a request status"))?),
    };
    let team_filter = http::query_uuid(&ctx.req, "team_id")?;
    let default_scope = if caller.is_admin { "all" } else { "mine" };
    let scope = http::query_param(&ctx.req, "scope").unwrap_or_else(|| default_scope.to_string());
    let status_key = status.map_or("any", |s| s.as_str());
    if !["mine", "team", "all"].contains(&scope.as_str()) {
        return Err(bad_filter("scope", "must be mine, team or all"));
    }
    let list = match (scope.as_str(), team_filter) {
        (_, Some(_)) | ("all", _) if !caller.is_admin => return Err(ApiError::Forbidden),
        ("all", Some(team)) => RequestList::Team(team),
        (_, Some(_)) => return Err(bad_filter("team_id", "goes with scope=all")),
        ("all", None) => match status {
            Some(st) => RequestList::Status(st),
            None => RequestList::All,
        },
        ("mine", None) => RequestList::Requester(caller.id),
        ("team", None) => RequestList::Team(caller.team_id.ok_or_else(|| ApiError::NotFound("team".into()))?),
        _ => return Err(bad_filter("scope", "must be mine, team or all")),
    };
    // Cursors are bound to the exact list and filter they came from.
    let scope_key = format!("requests:{list:?}:{status_key}");
    Ok((list, status, scope_key))
}

/// Requests: mine by default; `?scope=team` for my team's; admins see all, and may
/// filter by `?status=` and `?team_id=`.
#[utoipa::path(get, path = "/api/v1/requests", tag = "requests", params(PageQuery, RequestFilters),
    responses((status = 200, description = "A page of requests", body = Page<ResourceRequest>),
              (status = 403, description = "`scope=all` or `team_id` from a non-admin", body = Problem),
              (status = 404, description = "`scope=team` from a user in no team", body = Problem)))]
async fn list_requests(ctx: Ctx) -> HandlerResult {
    let caller = ctx.caller()?;
    let page = PageRequest::from_request(&ctx.req)?;
    let (list, status, scope) = requested_list(&ctx, caller)?;
    page_of(&ctx, list, status, &scope, &page).await
}

/// The review queue: pending requests, oldest first.
#[utoipa::path(get, path = "/api/v1/admin/requests/pending", tag = "requests", params(PageQuery),
    responses((status = 200, description = "A page of pending requests", body = Page<ResourceRequest>)))]
async fn pending_requests(ctx: Ctx) -> HandlerResult {
    let page = PageRequest::from_request(&ctx.req)?;
    let list = RequestList::Status(RequestStatus::Pending);
    page_of(&ctx, list, None, &format!("requests:{list:?}:any"), &page).await
}

async fn page_of(
    ctx: &Ctx,
    list: RequestList,
    status: Option<RequestStatus>,
    scope: &str,
    page: &PageRequest,
) -> HandlerResult {
    let start = ctx.app.cursors.start(scope, page)?;
    let (items, next) = ctx.app.store.list_requests(list, status, page.limit, start).await?;
    http::ok(&ctx.app.cursors.page(scope, items, next)?)
}

fn not_found() -> ApiError {
    ApiError::NotFound("request".into())
}

/// Loads a request the caller may see: its requester, members of its team, admins.
/// Anyone else gets the same 404 as for a request that does not exist.
async fn visible_request(ctx: &Ctx) -> Result<ResourceRequest, ApiError> {
    let id = http::path_uuid(&ctx.req, "id", "request")?;
    let caller = ctx.caller()?;
    let request = ctx.app.store.get_request(id).await?.ok_or_else(not_found)?;
    let visible = caller.is_admin || request.requester_id == caller.id || caller.team_id == Some(request.team_id);
    if visible {
        Ok(request)
    } else {
        Err(not_found())
    }
}

/// One request, with its history.
#[utoipa::path(get, path = "/api/v1/requests/{id}", tag = "requests",
    responses((status = 200, description = "The request", body = ResourceRequest)))]
async fn get_request(ctx: Ctx) -> HandlerResult {
    http::ok(&visible_request(&ctx).await?)
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
struct Comment {
    /// Optional note for the history (1–2000 characters, trimmed; no control
    /// characters but tab and line breaks).
    #[schema(min_length = 1, max_length = 2000)]
    comment: Option<String>,
}

fn optional_comment(raw: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    let mut errors = Vec::new();
    let text = required_text("comment", &raw, &mut errors);
    if errors.is_empty() {
        Ok(Some(text))
    } else {
        Err(ApiError::Validation(errors))
    }
}

async fn move_to(ctx: &Ctx, request: &ResourceRequest, to: RequestStatus, comment: Option<String>) -> HandlerResult {
    let caller = ctx.caller()?;
    let now = ctx.now();
    let planned = lifecycle::plan_transition(request, to, Actor::User(caller.id), comment, &now)?;
    let updated = ctx.app.store.apply_transition(request, &planned, &ctx.origin()).await?;
    tracing::info!(request_id = %request.id, to = to.as_str(), by = %caller.id, "request transition");
    http::ok(&updated)
}

/// Withdraw a pending request: its requester or an admin.
#[utoipa::path(post, path = "/api/v1/requests/{id}/cancel", tag = "requests", request_body(content = Comment, description = "Optional"),
    responses((status = 200, description = "The cancelled request", body = ResourceRequest),
              (status = 403, description = "Only the requester or an admin may cancel", body = Problem),
              (status = 409, description = "The request is no longer pending", body = Problem)))]
async fn cancel(ctx: Ctx) -> HandlerResult {
    let input: Comment = http::optional_json_body(&ctx.req)?;
    let comment = optional_comment(input.comment)?;
    let request = visible_request(&ctx).await?;
    let caller = ctx.caller()?;
    if !(caller.is_admin || request.requester_id == caller.id) {
        return Err(ApiError::Forbidden);
    }
    move_to(&ctx, &request, RequestStatus::Cancelled, comment).await
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
struct Approval {
    /// Optional note for the history (1–2000 characters, trimmed; no control
    /// characters but tab and line breaks); required with `override_budget`.
    #[schema(min_length = 1, max_length = 2000)]
    comment: Option<String>,
    /// Approve although the request takes its team over its budget (recorded in the
    /// history with the figures and the comment).
    #[serde(default)]
    override_budget: bool,
}

/// Approve a pending request (admins; not their own). Records the provisioning job in
/// the same transaction. A request that would take its team's committed monthly
/// run-rate over the team's budget (checked again now) needs `override_budget: true`
/// and a `comment`; without them the answer is 409, saying why.
#[utoipa::path(post, path = "/api/v1/requests/{id}/approve", tag = "requests", request_body(content = Approval, description = "Optional"),
    responses((status = 200, description = "The approved request", body = ResourceRequest),
              (status = 403, description = "Admins cannot approve their own requests", body = Problem),
              (status = 409, description = "The request is no longer pending, or it would take its team over budget (without `override_budget`)", body = Problem),
              (status = 422, description = "`override_budget` without a `comment`", body = Problem)))]
async fn approve(ctx: Ctx) -> HandlerResult {
    let input: Approval = http::optional_json_body(&ctx.req)?;
    let comment = optional_comment(input.comment)?;
    if input.override_budget && comment.is_none() {
        return Err(ApiError::validation("comment", "is required with override_budget"));
    }
    let request = visible_request(&ctx).await?;
    if request.requester_id == ctx.caller()?.id {
        return Err(ApiError::Forbidden);
    }
    let mut comment = comment;
    // Only a pending request is checked: any other gets the state machine's 409.
    if request.status == RequestStatus::Pending {
        if let Some(team) = ctx.app.store.get_team(request.team_id).await? {
            let check = budget_check(&ctx, &team, cost::request_estimate(&request), Some(request.id)).await?;
            if let Some(check) = check.filter(|c| !c.within) {
                if !input.override_budget {
                    return Err(ApiError::Conflict(check.refusal()));
                }
                comment = comment.map(|c| check.override_note(&c));
            }
        }
    }
    move_to(&ctx, &request, RequestStatus::Approved, comment).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Rejection {
    /// Why (1–2000 characters, trimmed; no control characters but tab and line
    /// breaks); the requester sees it in the history.
    #[schema(min_length = 1, max_length = 2000)]
    reason: String,
}

/// Reject a pending request (admins); a reason is required.
#[utoipa::path(post, path = "/api/v1/requests/{id}/reject", tag = "requests", request_body = Rejection,
    responses((status = 200, description = "The rejected request", body = ResourceRequest),
              (status = 409, description = "The request is no longer pending", body = Problem)))]
async fn reject(ctx: Ctx) -> HandlerResult {
    let input: Rejection = http::json_body(&ctx.req)?;
    let mut errors = Vec::new();
    let reason = required_text("reason", &input.reason, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let request = visible_request(&ctx).await?;
    move_to(&ctx, &request, RequestStatus::Rejected, Some(reason)).await
}

/// Run a failed request's provisioning again, or a deletion that failed (admins).
/// A failed request becomes `provisioning`: its job is queued anew with its attempts
/// counted from zero, and the runner applies the same Terraform state again. A
/// `deleting` request whose destroy gave up (or waits for its back-off) runs its
/// destroy again at once and stays `deleting`; the retry is in its history.
#[utoipa::path(post, path = "/api/v1/requests/{id}/retry", tag = "requests", request_body(content = Comment, description = "Optional"),
    responses((status = 200, description = "The request, provisioning or deleting again", body = ResourceRequest),
              (status = 409, description = "The request is neither failed nor deleting, or its destroy is running", body = Problem)))]
async fn retry(ctx: Ctx) -> HandlerResult {
    let input: Comment = http::optional_json_body(&ctx.req)?;
    let comment = optional_comment(input.comment)?;
    let request = visible_request(&ctx).await?;
    let caller = ctx.caller()?;
    let now = ctx.now();
    let planned = lifecycle::plan_retry(&request, Actor::User(caller.id), comment, &now)?;
    let updated = ctx
        .app
        .store
        .apply_transition(&request, &planned, &ctx.origin())
        .await?;
    tracing::info!(request_id = %request.id, to = planned.to.as_str(), by = %caller.id, "request retried");
    http::ok(&updated)
}

/// Delete a ready or failed resource: its requester, a member of its team, or an
/// admin. The request becomes `deleting` and the runner destroys its resources
/// (`terraform plan -destroy`, then `apply` of that plan); then it is `deleted`, its credentials are destroyed
/// and its name is free again. A destroy that fails is retried with back-off and the
/// request stays `deleting`, the error in `provisioning.error`.
#[utoipa::path(post, path = "/api/v1/requests/{id}/delete", tag = "requests", request_body(content = Comment, description = "Optional"),
    responses((status = 202, description = "Deletion queued: the request, now deleting", body = ResourceRequest),
              (status = 409, description = "The request is not ready or failed (also a second delete), or a rotation is under way", body = Problem)))]
async fn delete_request(ctx: Ctx) -> HandlerResult {
    let input: Comment = http::optional_json_body(&ctx.req)?;
    let comment = optional_comment(input.comment)?;
    let request = visible_request(&ctx).await?;
    if !lifecycle::can_delete(request.status) {
        return Err(ApiError::Conflict(format!(
            "only ready or failed requests can be deleted; it is {}",
            request.status.as_str()
        )));
    }
    let caller = ctx.caller()?;
    let now = ctx.now();
    let planned = lifecycle::plan_transition(&request, RequestStatus::Deleting, Actor::User(caller.id), comment, &now)?;
    let updated = ctx
        .app
        .store
        .apply_transition(&request, &planned, &ctx.origin())
        .await?;
    tracing::info!(request_id = %request.id, by = %caller.id, "request deletion queued");
    http::json(lambda_http::http::StatusCode::ACCEPTED, &updated)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Extension {
    /// The new expiry (RFC 3339): later than the current one, and at most the type's
    /// `max_lifetime_days` from now.
    #[schema(example = "2027-01-31T00:00:00Z")]
    expires_at: String,
}

/// Move a request's expiry later: its requester or an admin. The step is recorded in
/// the history.
#[utoipa::path(post, path = "/api/v1/requests/{id}/extend", tag = "requests", request_body = Extension,
    responses((status = 200, description = "The request with its new expiry", body = ResourceRequest),
              (status = 403, description = "Only the requester or an admin may extend", body = Problem),
              (status = 409, description = "The request is being deleted or is closed", body = Problem),
              (status = 422, description = "Not later than the current expiry, in the past, or beyond the type's maximum", body = Problem)))]
async fn extend(ctx: Ctx) -> HandlerResult {
    let input: Extension = http::json_body(&ctx.req)?;
    let asked = parse_time(&input.expires_at).map_err(|e| ApiError::Validation(vec![e]))?;
    let request = visible_request(&ctx).await?;
    let caller = ctx.caller()?;
    if !(caller.is_admin || request.requester_id == caller.id) {
        return Err(ApiError::Forbidden);
    }
    let now = ctx.app.clock.now();
    let current = request
        .expires_at
        .as_deref()
        .map(parse_time)
        .transpose()
        .map_err(|_| ApiError::internal(std::io::Error::other("a stored expiry is not a timestamp")))?;
    let max_days = catalog::find(&request.resource_type).and_then(|rt| rt.max_lifetime_days);
    let at = lifetime::extended_expiry(request.status, current, asked, max_days, now).map_err(|e| {
        if e.is_state() {
            ApiError::Conflict(e.to_string())
        } else {
            ApiError::validation("expires_at", e.to_string())
        }
    })?;
    let at = format_timestamp(at);
    let step = Transition {
        from: Some(request.status),
        to: request.status,
        by: Actor::User(caller.id),
        at: format_timestamp(now),
        comment: Some(format!("expiry moved to {at}")),
    };
    let updated = ctx.app.store.extend_expiry(&request, &at, &step, &ctx.origin()).await?;
    tracing::info!(request_id = %request.id, by = %caller.id, expires_at = %at, "request expiry extended");
    http::ok(&updated)
}

/// The Terraform output of every provisioning attempt (admins): init, plan, apply and
/// output, in the order they ran, with every secret redacted.
#[utoipa::path(get, path = "/api/v1/requests/{id}/logs", tag = "requests", params(PageQuery),
    responses((status = 200, description = "A page of logs, attempt by attempt", body = Page<JobLog>)))]
async fn logs(ctx: Ctx) -> HandlerResult {
    let page = PageRequest::from_request(&ctx.req)?;
    let request = visible_request(&ctx).await?;
    let scope = format!("logs:{}", request.id);
    let start = ctx.app.cursors.start(&scope, &page)?;
    let (items, next) = ctx.app.store.list_job_logs(request.id, page.limit, start).await?;
    http::ok(&ctx.app.cursors.page(&scope, items, next)?)
}

/// The answer of a credentials read: the credentials in plain JSON, or sealed to the
/// caller's age key when they registered one (`PUT /users/me/public-key`).
#[derive(Serialize, ToSchema)]
struct CredentialsAnswer {
    request_id: Uuid,
    resource_type: String,
    version: u32,
    issued_at: String,
    /// What the resource's clients need, e.g. `username`, `password`, `database`,
    /// `uri` (absent when `sealed` is given).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    credentials: Option<serde_json::Map<String, serde_json::Value>>,
    /// The same JSON object, as an armored age file for the caller's key
    /// (`age -d -i key.txt`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "-----BEGIN AGE ENCRYPTED FILE-----\n…\n-----END AGE ENCRYPTED FILE-----\n")]
    sealed: Option<String>,
}

/// A request whose credentials the caller may read: only its requester and the
/// members of its team. Everyone else, admins included, gets the same 404 as for a
/// request that does not exist (separation of duties: admins see that credentials
/// exist, in the request, never their value).
async fn owned_request(ctx: &Ctx) -> Result<ResourceRequest, ApiError> {
    let id = http::path_uuid(&ctx.req, "id", "request")?;
    let caller = ctx.caller()?;
    let request = ctx.app.store.get_request(id).await?.ok_or_else(not_found)?;
    if request.requester_id == caller.id || caller.team_id == Some(request.team_id) {
        Ok(request)
    } else {
        Err(not_found())
    }
}

fn credentials_unavailable() -> ApiError {
    ApiError::Unavailable("no credentials key (KMS_KEY_ID) is configured".into())
}

/// The credentials of a ready request, for its requester and team. Each read is
/// recorded (who, which request, which version), never the value.
#[utoipa::path(get, path = "/api/v1/requests/{id}/credentials", tag = "requests",
    responses((status = 200, description = "The credentials (Cache-Control: no-store)", body = CredentialsAnswer),
              (status = 404, description = "No such request, or not the caller's team's (admins included)", body = Problem),
              (status = 409, description = "The request is not ready", body = Problem)))]
async fn credentials(ctx: Ctx) -> HandlerResult {
    let request = owned_request(&ctx).await?;
    if request.status != RequestStatus::Ready {
        return Err(ApiError::Conflict(format!(
            "credentials are delivered while the request is ready; it is {}",
            request.status.as_str()
        )));
    }
    let vault = ctx.app.vault.as_ref().ok_or_else(credentials_unavailable)?;
    let sealed = ctx
        .app
        .store
        .get_credentials(request.id)
        .await?
        .ok_or_else(|| ApiError::Conflict("the request has no credentials yet".into()))?;
    // Recorded before the secret is opened: no read is ever answered without its event.
    let event = ctx
        .origin()
        .event(Action::CredentialsRead, Target::request(request.id))
        .team(Some(request.team_id))
        .fact("version", sealed.version);
    ctx.app.store.record(event).await?;
    let open = vault
        .open(&sealed, request.id, request.team_id)
        .await
        .map_err(ApiError::internal)?;
    let caller = ctx.caller()?;
    let (credentials, sealed_text) = match &caller.age_recipient {
        Some(recipient) => {
            let json = serde_json::to_vec(open.expose()).map_err(ApiError::internal)?;
            (
                None,
                Some(shared::sealing::seal(recipient, &json).map_err(ApiError::internal)?),
            )
        }
        None => (Some(open.expose().clone()), None),
    };
    tracing::info!(
        event = "credentials.read",
        request_id = %request.id,
        team_id = %request.team_id,
        user_id = %caller.id,
        version = sealed.version,
        sealed = sealed_text.is_some(),
        "credentials read"
    );
    http::ok_no_store(&CredentialsAnswer {
        request_id: request.id,
        resource_type: request.resource_type,
        version: sealed.version,
        issued_at: sealed.issued_at,
        credentials,
        sealed: sealed_text,
    })
}

/// New credentials for a ready request (its requester, its team, or an admin): the
/// runner applies the module again with a newly generated password, the version goes
/// up by one and the old password stops working. The request stays ready and
/// readable meanwhile; `credentials.rotating` says a rotation is under way.
#[utoipa::path(post, path = "/api/v1/requests/{id}/credentials/rotate", tag = "requests",
    responses((status = 202, description = "Rotation queued", body = ResourceRequest),
              (status = 409, description = "Not ready, a rotation is under way, or the type has no generated password to rotate", body = Problem)))]
async fn rotate_credentials(ctx: Ctx) -> HandlerResult {
    let request = visible_request(&ctx).await?;
    let caller = ctx.caller()?;
    if !matches!(request.resource_type.as_str(), "postgres" | "mysql" | "redis") {
        return Err(ApiError::Conflict(format!(
            "{} credentials cannot be rotated yet (postgres, mysql and redis can)",
            request.resource_type
        )));
    }
    if request.status != RequestStatus::Ready || request.credentials.as_ref().is_some_and(|c| c.rotating) {
        return Err(ApiError::Conflict(format!(
            "credentials can be rotated while the request is ready and no rotation is under way; it is {}{}",
            request.status.as_str(),
            if request.credentials.as_ref().is_some_and(|c| c.rotating) {
                ", rotating"
            } else {
                ""
            }
        )));
    }
    let now = ctx.now();
    ctx.app.store.request_rotation(&request, &now, &ctx.origin()).await?;
    tracing::info!(request_id = %request.id, by = %caller.id, "credentials rotation requested");
    let updated = ctx.app.store.get_request(request.id).await?.ok_or_else(not_found)?;
    http::json(lambda_http::http::StatusCode::ACCEPTED, &updated)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewPolicy {
    /// An `id` from `GET /resource-types`.
    #[schema(example = "postgres")]
    resource_type: String,
    /// Requests estimated at this much a month or less are approved (the limit included).
    max_monthly_cost: AmountInput,
    /// Only this team's requests; absent or `null`: every team's.
    team_id: Option<Uuid>,
}

/// Define an approval policy (admins): a request of `resource_type` (of `team_id`'s,
/// or of any team) whose estimated monthly cost is at most `max_monthly_cost`, and
/// that keeps its team within budget, is approved at submission by the system.
#[utoipa::path(post, path = "/api/v1/policies", tag = "requests", request_body = NewPolicy,
    responses((status = 201, description = "The new policy", body = ApprovalPolicy),
              (status = 404, description = "No such team", body = Problem)))]
async fn create_policy(ctx: Ctx) -> HandlerResult {
    let input: NewPolicy = http::json_body(&ctx.req)?;
    let mut errors = Vec::new();
    if catalog::find(&input.resource_type).is_none() {
        errors.push(FieldError::new(
            "resource_type",
            "is not in the catalog (see GET /api/v1/resource-types)",
        ));
    }
    let max = input
        .max_monthly_cost
        .parse()
        .map_err(|e| errors.push(money_error("max_monthly_cost", e)))
        .ok();
    let Some(max_monthly_cost) = max.filter(|_| errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    if let Some(team) = input.team_id {
        ctx.app
            .store
            .get_team(team)
            .await?
            .ok_or_else(|| ApiError::NotFound("team".into()))?;
    }
    let policy = ApprovalPolicy {
        id: Uuid::new_v4(),
        resource_type: input.resource_type,
        max_monthly_cost,
        team_id: input.team_id,
        created_by: ctx.caller()?.id,
        created_at: ctx.now(),
    };
    ctx.app.store.put_policy(&policy, &ctx.origin()).await?;
    tracing::info!(policy_id = %policy.id, by = %policy.created_by, "approval policy created");
    http::created(&policy)
}

/// The approval policies (admins).
#[utoipa::path(get, path = "/api/v1/policies", tag = "requests", params(PageQuery),
    responses((status = 200, description = "A page of policies", body = Page<ApprovalPolicy>)))]
async fn list_policies(ctx: Ctx) -> HandlerResult {
    let page = PageRequest::from_request(&ctx.req)?;
    let start = ctx.app.cursors.start("policies", &page)?;
    let (items, next) = ctx.app.store.list_policies(page.limit, start).await?;
    http::ok(&ctx.app.cursors.page("policies", items, next)?)
}

/// Delete an approval policy (admins): from now on it approves nothing. Requests it
/// approved stay approved.
#[utoipa::path(delete, path = "/api/v1/policies/{id}", tag = "requests",
    responses((status = 204, description = "Deleted")))]
async fn delete_policy(ctx: Ctx) -> HandlerResult {
    let id = http::path_uuid(&ctx.req, "id", "policy")?;
    if !ctx.app.store.delete_policy(id, &ctx.origin()).await? {
        return Err(ApiError::NotFound("policy".into()));
    }
    tracing::info!(policy_id = %id, by = %ctx.caller()?.id, "approval policy deleted");
    http::no_content()
}
