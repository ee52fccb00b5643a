//! The `users` function: my password, my team, and admin user management.

use serde::Deserialize;
use shared::{
    auth::{email, password},
    clock::format_timestamp,
    error::ApiError,
    http::{self, PageRequest},
    model::{TeamView, UserSummary, UserView},
    router::{Ctx, HandlerResult, Router},
    store::{LoginWindow, MAX_FAILURES},
};
use uuid::Uuid;

pub fn router() -> Router {
    Router::new("users")
        .route("PUT /api/v1/users/me/password", change_password)
        .route("GET /api/v1/users/me/team", my_team)
        .route("GET /api/v1/users/me/team/members", my_team_members)
        .route("GET /api/v1/users", list_users)
        .route("GET /api/v1/users/{id}", get_user)
        .route("PATCH /api/v1/users/{id}", update_user)
        .route("DELETE /api/v1/users/{id}", delete_user)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    current_password: String,
    new_password: String,
}

/// Changes the caller's password and revokes their older tokens. Wrong current
/// passwords count towards the same per-account throttle as failed logins, so a
/// stolen token cannot be used to guess the password.
async fn change_password(ctx: Ctx) -> HandlerResult {
    let input: PasswordChange = http::json_body(&ctx.req)?;
    let user = ctx.caller()?;
    let store = &ctx.app.store;
    let key = email::normalise(&user.email);
    let now = ctx.app.clock.now();
    let window = LoginWindow::at(now.unix_timestamp());
    if store.login_failures(&key, window).await? >= MAX_FAILURES {
        return Err(ApiError::TooManyRequests {
            retry_after_secs: u64::try_from(window.ends_at - now.unix_timestamp()).unwrap_or(1).max(1),
        });
    }
    if !password::verify(input.current_password, Some(user.password_hash.clone())).await? {
        store.record_login_failure(&key, window).await?;
        return Err(ApiError::validation("current_password", "is not your current password"));
    }
    password::check_policy("new_password", &input.new_password, &[user.email.as_str()])?;
    let hash = password::hash(input.new_password).await?;
    store.change_password(user, &hash, &format_timestamp(now)).await?;
    tracing::info!(user_id = %user.id, "password changed");
    http::no_content()
}

fn no_team() -> ApiError {
    ApiError::NotFound("team".into())
}

async fn my_team(ctx: Ctx) -> HandlerResult {
    let team_id = ctx.caller()?.team_id.ok_or_else(no_team)?;
    let team = ctx.app.store.get_team(team_id).await?.ok_or_else(no_team)?;
    http::ok(&TeamView::from(&team))
}

/// The list scope of a team's members, binding cursors to that team.
fn members_scope(team_id: Uuid) -> String {
    format!("members:{team_id}")
}

async fn my_team_members(ctx: Ctx) -> HandlerResult {
    let team_id = ctx.caller()?.team_id.ok_or_else(no_team)?;
    let page = PageRequest::from_request(&ctx.req)?;
    let scope = members_scope(team_id);
    let start = ctx.app.cursors.start(&scope, &page)?;
    let (members, next) = ctx.app.store.list_members(team_id, page.limit, start).await?;
    http::ok(&ctx.app.cursors.page(&scope, members, next)?)
}

/// All users, or those of one team (`?team_id=`), or the one with an email (`?email=`).
async fn list_users(ctx: Ctx) -> HandlerResult {
    let page = PageRequest::from_request(&ctx.req)?;
    let store = &ctx.app.store;
    if let Some(raw) = http::query_param(&ctx.req, "email") {
        let user = store.find_user_by_email(&email::normalise(&raw)).await?;
        let items: Vec<UserSummary> = user.iter().map(UserSummary::from).collect();
        return http::ok(&ctx.app.cursors.page("users:email", items, None)?);
    }
    if let Some(raw) = http::query_param(&ctx.req, "team_id") {
        let team_id = Uuid::parse_str(raw.trim()).map_err(|_| ApiError::bad_field("team_id", "must be a UUID"))?;
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserUpdate {
    is_admin: Option<bool>,
}

/// Promotes or demotes a user; effective at once, since every request reads the
/// caller's current role. The last admin cannot be demoted (409).
async fn update_user(ctx: Ctx) -> HandlerResult {
    let id = user_id(&ctx)?;
    let input: UserUpdate = http::json_body(&ctx.req)?;
    let store = &ctx.app.store;
    let user = match input.is_admin {
        Some(make_admin) => {
            let now = format_timestamp(ctx.app.clock.now());
            let user = store.set_admin(id, make_admin, &now).await?;
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

/// Deletes a user, their membership and (with the user item) their tokens.
async fn delete_user(ctx: Ctx) -> HandlerResult {
    let id = user_id(&ctx)?;
    ctx.app.store.delete_user(id).await?;
    tracing::info!(user_id = %id, by = %ctx.caller()?.id, "user deleted");
    http::no_content()
}
