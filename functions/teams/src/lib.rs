//! The `teams` function: admin team management and membership.

use serde::Deserialize;
use shared::{
    domain::{
        budget::TeamBudget,
        cost::{self, CostsOverview, Month, TeamCostReport},
        money::AmountInput,
    },
    error::Problem,
    error::{money_error, ApiError, FieldError},
    http::PageQuery,
    http::{self, PageRequest},
    model::{Page, Team, TeamView, TeamWithMembers, UserView},
    router::{Ctx, HandlerResult, Router},
    store::TeamChanges,
    text,
};
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

/// This function's part of the OpenAPI document (errors and security are added from
/// the route table by the `docs` function).
#[derive(OpenApi)]
#[openapi(paths(
    create_team,
    list_teams,
    get_team,
    update_team,
    delete_team,
    add_member,
    remove_member,
    set_budget,
    delete_budget,
    team_costs,
    all_costs
))]
pub struct ApiDoc;

pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_DESCRIPTION_CHARS: usize = 1000;

pub fn router() -> Router {
    Router::new("teams")
        .route("POST /api/v1/teams", create_team)
        .route("GET /api/v1/teams", list_teams)
        .route("GET /api/v1/teams/{id}", get_team)
        .route("PUT /api/v1/teams/{id}", update_team)
        .route("DELETE /api/v1/teams/{id}", delete_team)
        .route("POST /api/v1/teams/{id}/members", add_member)
        .route("DELETE /api/v1/teams/{id}/members/{user_id}", remove_member)
        .route("PUT /api/v1/teams/{id}/budget", set_budget)
        .route("DELETE /api/v1/teams/{id}/budget", delete_budget)
        .route("GET /api/v1/teams/{id}/costs", team_costs)
        .route("GET /api/v1/admin/costs", all_costs)
}

/// A team name: trimmed, NFC-normalised, 1–100 characters, no control, format (bidi,
/// zero-width) or invisible characters.
fn parse_name(raw: &str) -> Result<String, FieldError> {
    let name = text::nfc(raw.trim());
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS {
        return Err(FieldError::new(
            "name",
            format!("must be 1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    if let Some(problem) = text::identity_problem(&name) {
        return Err(FieldError::new("name", problem));
    }
    Ok(name)
}

fn parse_description(raw: &str) -> Result<String, FieldError> {
    if raw.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(FieldError::new(
            "description",
            format!("must be at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    if let Some(problem) = text::free_text_problem(raw) {
        return Err(FieldError::new("description", problem));
    }
    Ok(raw.trim().to_string())
}

/// Validates the optional fields of a create or update, reporting every problem.
fn parse_changes(name: Option<&str>, description: Option<&str>) -> Result<TeamChanges, ApiError> {
    let name = name.map(parse_name).transpose();
    let description = description.map(parse_description).transpose();
    match (name, description) {
        (Ok(name), Ok(description)) => Ok(TeamChanges { name, description }),
        (name, description) => Err(ApiError::Validation(
            [name.err(), description.err()].into_iter().flatten().collect(),
        )),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewTeam {
    /// Trimmed, NFC-normalised, 1–100 characters, unique case-insensitively; no
    /// control, format (bidi, zero-width) or invisible characters.
    #[schema(example = "Platform", min_length = 1, max_length = 100)]
    name: String,
    /// At most 1000 characters; no control characters but tab and line breaks.
    #[schema(max_length = 1000)]
    description: Option<String>,
}

/// Create a team.
#[utoipa::path(post, path = "/api/v1/teams", tag = "teams", request_body = NewTeam,
    responses((status = 201, description = "The new team", body = TeamView),
              (status = 409, description = "The name is taken", body = Problem)))]
async fn create_team(ctx: Ctx) -> HandlerResult {
    let input: NewTeam = http::json_body(&ctx.req)?;
    let changes = parse_changes(Some(&input.name), input.description.as_deref())?;
    let now = ctx.now();
    let team = Team {
        id: Uuid::new_v4(),
        name: changes.name.unwrap_or_default(),
        description: changes.description.unwrap_or_default(),
        created_by: ctx.caller()?.id,
        created_at: now.clone(),
        updated_at: now,
        member_count: 0,
        version: 0,
        deleting: false,
        requests_created: 0,
        budget: None,
    };
    ctx.app.store.create_team(&team, &ctx.origin()).await?;
    tracing::info!(team_id = %team.id, "team created");
    http::created(&TeamView::from(&team))
}

/// All teams, oldest first.
#[utoipa::path(get, path = "/api/v1/teams", tag = "teams", params(PageQuery),
    responses((status = 200, description = "A page of teams", body = Page<TeamView>)))]
async fn list_teams(ctx: Ctx) -> HandlerResult {
    let page = PageRequest::from_request(&ctx.req)?;
    let start = ctx.app.cursors.start("teams", &page)?;
    let (teams, next) = ctx.app.store.list_teams(page.limit, start).await?;
    let items: Vec<TeamView> = teams.iter().map(TeamView::from).collect();
    http::ok(&ctx.app.cursors.page("teams", items, next)?)
}

fn team_id(ctx: &Ctx) -> Result<Uuid, ApiError> {
    http::path_uuid(&ctx.req, "id", "team")
}

fn team_not_found() -> ApiError {
    ApiError::NotFound("team".into())
}

/// A team with its members.
#[utoipa::path(get, path = "/api/v1/teams/{id}", tag = "teams",
    responses((status = 200, description = "The team and its members", body = TeamWithMembers)))]
async fn get_team(ctx: Ctx) -> HandlerResult {
    let id = team_id(&ctx)?;
    let (team, members) = ctx
        .app
        .store
        .get_team_with_members(id)
        .await?
        .ok_or_else(team_not_found)?;
    http::ok(&TeamWithMembers {
        team: TeamView::from(&team),
        members,
    })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TeamUpdate {
    /// New name; same rules as on creation.
    #[schema(min_length = 1, max_length = 100)]
    name: Option<String>,
    /// Same rules as on creation.
    #[schema(max_length = 1000)]
    description: Option<String>,
}

/// Rename a team or change its description; absent fields stay as they are.
#[utoipa::path(put, path = "/api/v1/teams/{id}", tag = "teams", request_body = TeamUpdate,
    responses((status = 200, description = "The updated team", body = TeamView),
              (status = 409, description = "The name is taken, or the team kept changing", body = Problem)))]
async fn update_team(ctx: Ctx) -> HandlerResult {
    let id = team_id(&ctx)?;
    let input: TeamUpdate = http::json_body(&ctx.req)?;
    let changes = parse_changes(input.name.as_deref(), input.description.as_deref())?;
    let store = &ctx.app.store;
    let team = if changes.name.is_none() && changes.description.is_none() {
        store.get_team(id).await?.ok_or_else(team_not_found)?
    } else {
        store.update_team(id, &changes, &ctx.now(), &ctx.origin()).await?
    };
    http::ok(&TeamView::from(&team))
}

/// Delete a team; its members are left without a team.
#[utoipa::path(delete, path = "/api/v1/teams/{id}", tag = "teams",
    responses((status = 204, description = "Deleted")))]
async fn delete_team(ctx: Ctx) -> HandlerResult {
    let id = team_id(&ctx)?;
    ctx.app.store.delete_team(id, &ctx.origin()).await?;
    tracing::info!(team_id = %id, by = %ctx.caller()?.id, "team deleted");
    http::no_content()
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewMember {
    user_id: Uuid,
}

/// Add a user to the team (repeating it is harmless).
#[utoipa::path(post, path = "/api/v1/teams/{id}/members", tag = "teams", request_body = NewMember,
    responses((status = 200, description = "The user, now in the team", body = UserView),
              (status = 409, description = "The user belongs to another team", body = Problem)))]
async fn add_member(ctx: Ctx) -> HandlerResult {
    let id = team_id(&ctx)?;
    let input: NewMember = http::json_body(&ctx.req)?;
    let now = ctx.now();
    let user = ctx.app.store.add_member(id, input.user_id, &now, &ctx.origin()).await?;
    http::ok(&UserView::from(&user))
}

/// Take a user out of the team.
#[utoipa::path(delete, path = "/api/v1/teams/{id}/members/{user_id}", tag = "teams",
    responses((status = 204, description = "Removed")))]
async fn remove_member(ctx: Ctx) -> HandlerResult {
    let id = team_id(&ctx)?;
    let user_id = http::path_uuid(&ctx.req, "user_id", "member")?;
    let now = ctx.now();
    ctx.app.store.remove_member(id, user_id, &now, &ctx.origin()).await?;
    http::no_content()
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewBudget {
    /// The most the team's committed monthly run-rate may reach: USD, at least 0, at
    /// most two decimals.
    monthly_limit: AmountInput,
}

/// Set (or replace) the team's monthly budget. Requests that would take the team's
/// committed run-rate over it are flagged, never approved by policy, and need
/// `override_budget` to be approved.
#[utoipa::path(put, path = "/api/v1/teams/{id}/budget", tag = "teams", request_body = NewBudget,
    responses((status = 200, description = "The team, with its budget", body = TeamView)))]
async fn set_budget(ctx: Ctx) -> HandlerResult {
    let id = team_id(&ctx)?;
    let input: NewBudget = http::json_body(&ctx.req)?;
    let monthly_limit = input
        .monthly_limit
        .parse()
        .map_err(|e| ApiError::Validation(vec![money_error("monthly_limit", e)]))?;
    let now = ctx.now();
    let team = ctx
        .app
        .store
        .set_team_budget(id, Some(&TeamBudget { monthly_limit }), &now, &ctx.origin())
        .await?
        .ok_or_else(team_not_found)?;
    tracing::info!(team_id = %id, by = %ctx.caller()?.id, limit = %monthly_limit, "team budget set");
    http::ok(&TeamView::from(&team))
}

/// Remove the team's budget (also when it has none).
#[utoipa::path(delete, path = "/api/v1/teams/{id}/budget", tag = "teams",
    responses((status = 204, description = "Removed")))]
async fn delete_budget(ctx: Ctx) -> HandlerResult {
    let id = team_id(&ctx)?;
    let now = ctx.now();
    ctx.app
        .store
        .set_team_budget(id, None, &now, &ctx.origin())
        .await?
        .ok_or_else(team_not_found)?;
    tracing::info!(team_id = %id, by = %ctx.caller()?.id, "team budget removed");
    http::no_content()
}

/// A team's report for `month`.
async fn team_report(ctx: &Ctx, team: &Team, month: Month) -> Result<TeamCostReport, ApiError> {
    let requests = ctx.app.store.team_requests(team).await?;
    Ok(cost::team_report(team, &requests, month, ctx.app.clock.now()))
}

/// A team's estimated costs in a month (admins): per resource the month-to-date cost
/// and the forecast for the whole month, and the team's totals. Estimates from the
/// catalog's list prices, not an AWS bill.
#[utoipa::path(get, path = "/api/v1/teams/{id}/costs", tag = "teams", params(http::MonthQuery),
    responses((status = 200, description = "The team's costs", body = TeamCostReport)))]
async fn team_costs(ctx: Ctx) -> HandlerResult {
    let id = team_id(&ctx)?;
    let month = http::query_month(&ctx.req, ctx.app.clock.now())?;
    let team = ctx.app.store.get_team(id).await?.ok_or_else(team_not_found)?;
    http::ok(&team_report(&ctx, &team, month).await?)
}

/// Every team's estimated costs in a month (admins), with the grand totals.
#[utoipa::path(get, path = "/api/v1/admin/costs", tag = "teams", params(http::MonthQuery),
    responses((status = 200, description = "Every team's costs", body = CostsOverview)))]
async fn all_costs(ctx: Ctx) -> HandlerResult {
    let month = http::query_month(&ctx.req, ctx.app.clock.now())?;
    let mut reports = Vec::new();
    let mut start = None;
    loop {
        let (teams, next) = ctx.app.store.list_teams(100, start).await?;
        for team in &teams {
            reports.push(team_report(&ctx, team, month).await?);
        }
        match next {
            Some(next) => start = Some(next),
            None => break,
        }
    }
    http::ok(&cost::overview(month, reports))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(parse_name("  Platform  ").unwrap(), "Platform");
        assert!(parse_name("   ").is_err());
        assert!(parse_name(&"n".repeat(101)).is_err());
        assert!(parse_name(&"ü".repeat(100)).is_ok());
        assert!(parse_name("a\u{7}b").is_err());
        assert!(parse_name("Plat\u{200b}form").is_err());
        assert!(parse_name("\u{202e}mroftalP").is_err());
        assert_eq!(parse_name("Caf\u{65}\u{301}").unwrap(), "Caf\u{e9}");
        assert!(parse_description("two\nlines").is_ok());
        assert!(parse_description("nul\u{0}").is_err());
    }

    #[test]
    fn every_invalid_field_is_reported() {
        match parse_changes(Some(""), Some(&"d".repeat(1001))) {
            Err(ApiError::Validation(errors)) => assert_eq!(errors.len(), 2),
            other => panic!("{other:?}"),
        }
    }
}
