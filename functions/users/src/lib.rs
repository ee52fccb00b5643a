//! The `users` function: my password, my team, my notification settings, admin user
//! management, and the admins' webhooks and failed notifications
//! ([`notifications`]).

pub mod notifications;

use serde::Deserialize;
use shared::{
    auth::{email, password, Attempt},
    domain::{
        cost::{self, TeamCostReport},
        lifecycle, Actor,
    },
    error::ApiError,
    error::Problem,
    http::PageQuery,
    http::{self, PageRequest},
    model::{Page, RequestStatus, ResourceRequest, TeamView, UserSummary, UserView},
    router::{Ctx, HandlerResult, Router},
};
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

/// This function's part of the OpenAPI document (errors and security are added from
/// the route table by the `docs` function).
#[derive(OpenApi)]
#[openapi(paths(
    change_password,
    my_team,
    my_team_members,
    my_team_costs,
    list_users,
    get_user,
    update_user,
    delete_user,
    set_public_key,
    delete_public_key,
    notifications::get_preferences,
    notifications::set_preferences,
    notifications::create_webhook,
    notifications::list_webhooks,
    notifications::delete_webhook,
    notifications::failed_notifications
))]
pub struct ApiDoc;

pub fn router() -> Router {
    Router::new("users")
        .route("PUT /api/v1/users/me/password", change_password)
        .route("GET /api/v1/users/me/team", my_team)
        .route("GET /api/v1/users/me/team/members", my_team_members)
        .route("GET /api/v1/users/me/team/costs", my_team_costs)
        .route("GET /api/v1/users", list_users)
        .route("GET /api/v1/users/{id}", get_user)
        .route("PATCH /api/v1/users/{id}", update_user)
        .route("DELETE /api/v1/users/{id}", delete_user)
        .route("PUT /api/v1/users/me/public-key", set_public_key)
        .route("DELETE /api/v1/users/me/public-key", delete_public_key)
        .route("GET /api/v1/users/me/notifications", notifications::get_preferences)
        .route("PUT /api/v1/users/me/notifications", notifications::set_preferences)
        .route("POST /api/v1/webhooks", notifications::create_webhook)
        .route("GET /api/v1/webhooks", notifications::list_webhooks)
        .route("DELETE /api/v1/webhooks/{id}", notifications::delete_webhook)
        .route("GET /api/v1/admin/notifications", notifications::failed_notifications)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PublicKey {
    /// An age X25519 recipient (`age1…`, from `age-keygen`). Credentials are then
    /// delivered sealed to it: only the matching identity opens them.
    #[schema(example = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p")]
    age_recipient: String,
}

/// Register my age public key: from now on my credentials reads answer sealed to it.
#[utoipa::path(put, path = "/api/v1/users/me/public-key", tag = "users", request_body = PublicKey,
    responses((status = 200, description = "Me, with the key", body = UserView),
              (status = 422, description = "Not an age X25519 recipient", body = Problem)))]
async fn set_public_key(ctx: Ctx) -> HandlerResult {
    let input: PublicKey = http::json_body(&ctx.req)?;
    let recipient = shared::sealing::parse_recipient(&input.age_recipient)
        .map_err(|why| ApiError::validation("age_recipient", why))?;
    let caller = ctx.caller()?;
    let now = ctx.now();
    ctx.app
        .store
        .set_age_recipient(caller.id, Some(&recipient), &now, &ctx.origin())
        .await?;
    tracing::info!(user_id = %caller.id, "public key registered");
    let mut me = caller.clone();
    me.age_recipient = Some(recipient);
    me.updated_at = now;
    http::ok(&UserView::from(&me))
}

/// Remove my age public key: credentials reads answer in plain JSON again.
#[utoipa::path(delete, path = "/api/v1/users/me/public-key", tag = "users",
    responses((status = 204, description = "Removed (also when there was none)")))]
async fn delete_public_key(ctx: Ctx) -> HandlerResult {
    let caller = ctx.caller()?;
    let now = ctx.now();
    ctx.app
        .store
        .set_age_recipient(caller.id, None, &now, &ctx.origin())
        .await?;
    tracing::info!(user_id = %caller.id, "public key removed");
    http::no_content()
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    current_password: String,
    new_password: String,
}

/// Change my password; every earlier token of mine stops working.
///
/// Wrong current passwords count towards the same per-account throttle as failed
/// logins, so a stolen token cannot be used to guess the password.
#[utoipa::path(put, path = "/api/v1/users/me/password", tag = "users", request_body = PasswordChange,
    responses((status = 204, description = "Changed; sign in again"),
              (status = 429, description = "Too many wrong current passwords; see Retry-After", body = Problem)))]
async fn change_password(ctx: Ctx) -> HandlerResult {
    let input: PasswordChange = http::json_body(&ctx.req)?;
    let user = ctx.caller()?;
    let app = &ctx.app;
    let origin = ctx.origin();
    let attempt = Attempt::reserve(app, &email::normalise(&user.email), &ctx.source(), &origin).await?;
    if !attempt
        .verify(
            app,
            input.current_password,
            Some(user.password_hash.clone()),
            Some(user),
        )
        .await?
    {
        return Err(ApiError::validation("current_password", "is not your current password"));
    }
    password::check_policy("new_password", &input.new_password, &[user.email.as_str()])?;
    let hash = password::hash(input.new_password).await?;
    let now = ctx.now();
    app.store.change_password(user, &hash, &now, &origin).await?;
    tracing::info!(user_id = %user.id, "password changed");
    http::no_content()
}

fn no_team() -> ApiError {
    ApiError::NotFound("team".into())
}

/// My team.
#[utoipa::path(get, path = "/api/v1/users/me/team", tag = "users",
    responses((status = 200, description = "My team", body = TeamView),
              (status = 404, description = "I have no team", body = Problem)))]
async fn my_team(ctx: Ctx) -> HandlerResult {
    let team_id = ctx.caller()?.team_id.ok_or_else(no_team)?;
    let team = ctx.app.store.get_team(team_id).await?.ok_or_else(no_team)?;
    http::ok(&TeamView::from(&team))
}

/// My team's estimated costs in a month: per resource the month-to-date cost and the
/// forecast for the whole month, and the team's totals and budget. Estimates from the
/// catalog's list prices, not an AWS bill.
#[utoipa::path(get, path = "/api/v1/users/me/team/costs", tag = "users", params(http::MonthQuery),
    responses((status = 200, description = "My team's costs", body = TeamCostReport),
              (status = 404, description = "I have no team", body = Problem)))]
async fn my_team_costs(ctx: Ctx) -> HandlerResult {
    let team_id = ctx.caller()?.team_id.ok_or_else(no_team)?;
    let now = ctx.app.clock.now();
    let month = http::query_month(&ctx.req, now)?;
    let team = ctx.app.store.get_team(team_id).await?.ok_or_else(no_team)?;
    let requests = ctx.app.store.team_requests(&team).await?;
    http::ok(&cost::team_report(&team, &requests, month, now))
}

/// The list scope of a team's members, binding cursors to that team.
fn members_scope(team_id: Uuid) -> String {
    format!("members:{team_id}")
}

/// The members of my team.
#[utoipa::path(get, path = "/api/v1/users/me/team/members", tag = "users", params(PageQuery),
    responses((status = 200, description = "A page of members", body = Page<UserSummary>),
              (status = 404, description = "I have no team", body = Problem)))]
async fn my_team_members(ctx: Ctx) -> HandlerResult {
    let team_id = ctx.caller()?.team_id.ok_or_else(no_team)?;
    let page = PageRequest::from_request(&ctx.req)?;
    let scope = members_scope(team_id);
    let start = ctx.app.cursors.start(&scope, &page)?;
    let (members, next) = ctx.app.store.list_members(team_id, page.limit, start).await?;
    http::ok(&ctx.app.cursors.page(&scope, members, next)?)
}

/// Filters of the user list.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct UserFilters {
    /// Only the members of this team.
    team_id: Option<Uuid>,
    /// Only the user with this email (case-insensitive); goes with neither `team_id`
    /// nor `cursor`.
    #[param(format = "email")]
    email: Option<String>,
}

/// All users, or those of one team (`?team_id=`), or the one with an email (`?email=`).
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(PageQuery, UserFilters),
    responses((status = 200, description = "A page of users", body = Page<UserSummary>)))]
async fn list_users(ctx: Ctx) -> HandlerResult {
    let page = PageRequest::from_request(&ctx.req)?;
    let store = &ctx.app.store;
    if let Some(raw) = http::query_param(&ctx.req, "email") {
        // One user at most: a page position or a second filter would mean nothing.
        for other in ["team_id", "cursor"] {
            if http::query_param(&ctx.req, other).is_some() {
                return Err(ApiError::bad_field(other, "does not go with `email`"));
            }
        }
        let email = email::Email::parse(&raw).map_err(|_| ApiError::bad_field("email", "must be an email address"))?;
        let user = store.find_user_by_email(&email.normalised()).await?;
        let items: Vec<UserSummary> = user.iter().map(UserSummary::from).collect();
        return http::ok(&ctx.app.cursors.page("users:email", items, None)?);
    }
    if let Some(team_id) = http::query_uuid(&ctx.req, "team_id")? {
        let scope = members_scope(team_id);
        let start = ctx.app.cursors.start(&scope, &page)?;
        let (members, next) = store.list_members(team_id, page.limit, start).await?;
        return http::ok(&ctx.app.cursors.page(&scope, members, next)?);
    }
    let start = ctx.app.cursors.start("users", &page)?;
    let (users, next) = store.list_users(page.limit, start).await?;
    let items: Vec<UserSummary> = users.iter().map(UserSummary::from).collect();
    http::ok(&ctx.app.cursors.page("users", items, next)?)
}

fn user_id(ctx: &Ctx) -> Result<Uuid, ApiError> {
    http::path_uuid(&ctx.req, "id", "user")
}

/// One user.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users",
    responses((status = 200, description = "The user", body = UserView)))]
async fn get_user(ctx: Ctx) -> HandlerResult {
    let id = user_id(&ctx)?;
    let user = ctx
        .app
        .store
        .get_user(id)
        .await?
        .ok_or_else(|| ApiError::NotFound("user".into()))?;
    http::ok(&UserView::from(&user))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UserUpdate {
    is_admin: Option<bool>,
}

/// Promote or demote a user; effective at once. The last admin cannot be demoted.
///
/// Every request reads the caller's current role, so the change applies to tokens
/// already issued.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", request_body = UserUpdate,
    responses((status = 200, description = "The user", body = UserView),
              (status = 409, description = "The last admin cannot be demoted", body = Problem)))]
async fn update_user(ctx: Ctx) -> HandlerResult {
    let id = user_id(&ctx)?;
    let input: UserUpdate = http::json_body(&ctx.req)?;
    let store = &ctx.app.store;
    let user = match input.is_admin {
        Some(make_admin) => {
            let now = ctx.now();
            let user = store.set_admin(id, make_admin, &now, &ctx.origin()).await?;
            tracing::info!(user_id = %id, is_admin = make_admin, by = %ctx.caller()?.id, "role changed");
            user
        }
        None => store
            .get_user(id)
            .await?
            .ok_or_else(|| ApiError::NotFound("user".into()))?,
    };
    http::ok(&UserView::from(&user))
}

/// Delete a user, with their membership; their tokens stop working. Their pending
/// requests are cancelled in the same operation; everything else they asked for stays
/// with their team, visible to it.
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users",
    responses((status = 204, description = "Deleted"),
              (status = 409, description = "The last admin cannot be deleted, or the user has more pending requests than one deletion cancels", body = Problem)))]
async fn delete_user(ctx: Ctx) -> HandlerResult {
    let id = user_id(&ctx)?;
    let caller = ctx.caller()?;
    let store = &ctx.app.store;
    let now = ctx.now();
    let cancel = |request: &ResourceRequest| {
        lifecycle::plan_transition(
            request,
            RequestStatus::Cancelled,
            Actor::User(caller.id),
            Some(REQUESTER_DELETED.into()),
            &now,
        )
    };
    let cancelled = store.delete_user(id, cancel, &ctx.origin()).await?;
    tracing::info!(user_id = %id, by = %caller.id, cancelled, "user deleted");
    http::no_content()
}

/// The history comment of a request cancelled because its requester was deleted.
pub const REQUESTER_DELETED: &str = "cancelled: the requester's account was deleted";
