//! The `auth` function: register, login, who am I, logout.

use serde::Deserialize;
use shared::{
    auth::{
        email::{self, Email},
        jwt::AccessToken,
        password, Attempt, Registration,
    },
    domain::{
        audit::{Action, Target},
        Actor,
    },
    error::{ApiError, FieldError},
    http,
    model::{User, UserView},
    router::{Ctx, HandlerResult, Router},
};
use utoipa::{OpenApi, ToSchema};

/// This function's part of the OpenAPI document (errors and security are added from
/// the route table by the `docs` function).
#[derive(OpenApi)]
#[openapi(paths(register, login, me, logout))]
pub struct ApiDoc;

pub fn router() -> Router {
    Router::new("auth")
        .route("POST /api/v1/auth/register", register)
        .route("POST /api/v1/auth/login", login)
        .route("GET /api/v1/auth/me", me)
        .route("POST /api/v1/auth/logout", logout)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Registration)]
struct NewAccount {
    /// Trimmed and NFC-normalised; unique case-insensitively; at most 254 bytes; no
    /// control, format (bidi, zero-width) or invisible characters.
    #[schema(example = "ada@example.com", min_length = 3, max_length = 254)]
    email: String,
    /// 12–128 characters, any Unicode; common passwords are refused.
    #[schema(example = "correct horse battery staple", min_length = 12, max_length = 128)]
    password: String,
}

/// Parses an email and checks a password against the policy, reporting both fields'
/// problems at once.
pub fn validate_credentials(email: &str, password: &str) -> Result<Email, ApiError> {
    let mut errors: Vec<FieldError> = Vec::new();
    let parsed = Email::parse(email).map_err(|e| collect(e, &mut errors)).ok();
    let _ = password::check_policy("password", password, &[email.trim()]).map_err(|e| collect(e, &mut errors));
    match parsed {
        Some(email) if errors.is_empty() => Ok(email),
        _ => Err(ApiError::Validation(errors)),
    }
}

fn collect(err: ApiError, errors: &mut Vec<FieldError>) {
    match err {
        ApiError::Validation(mut e) => errors.append(&mut e),
        other => errors.push(FieldError::new("body", other.to_string())),
    }
}

/// Create an account (never an admin, never in a team).
///
/// An email that is taken gets 409: self-service sign-up has no other channel to
/// say so yet. Each source may hit at most 10 taken emails per 15 minutes (then
/// 429), the same budget as its failed logins on one account, so probing for
/// accounts here is no cheaper than guessing passwords.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = NewAccount,
    responses((status = 201, description = "The new user", body = UserView),
              (status = 409, description = "The email is taken", body = shared::error::Problem),
              (status = 429, description = "Too many registrations of taken emails from this source; see Retry-After",
               body = shared::error::Problem)))]
async fn register(ctx: Ctx) -> HandlerResult {
    let input: NewAccount = http::json_body(&ctx.req)?;
    let email = validate_credentials(&input.email, &input.password)?;
    let app = &ctx.app;
    let source = ctx.source();
    let origin = ctx.origin();
    let (slot, hash) = tokio::try_join!(
        Registration::reserve(app, &source, &origin),
        password::hash(input.password)
    )?;
    let now = ctx.now();
    let user = User::new(email.as_str(), hash, false, &now);
    slot.create(app, &user, &email.normalised(), &origin).await?;
    tracing::info!(user_id = %user.id, "registered");
    http::created(&UserView::from(&user))
}

/// Login input: JSON `{email, password}`, or the OAuth2 password-flow form
/// (`username`, `password`) used by the interactive docs' Authorize button.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct JsonLogin {
    #[schema(example = "ada@example.com")]
    email: String,
    password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct FormLogin {
    /// The email.
    username: String,
    password: String,
    grant_type: Option<String>,
    #[allow(dead_code)]
    scope: Option<String>,
    #[allow(dead_code)]
    client_id: Option<String>,
    #[allow(dead_code)]
    client_secret: Option<String>,
}

fn login_input(ctx: &Ctx) -> Result<(String, String), ApiError> {
    if http::has_media_type(&ctx.req, "application/x-www-form-urlencoded") {
        let form: FormLogin = http::form_body(&ctx.req)?;
        if form.grant_type.as_deref().is_some_and(|g| g != "password") {
            return Err(ApiError::validation("grant_type", "must be `password`"));
        }
        return Ok((form.username, form.password));
    }
    let json: JsonLogin = http::json_body(&ctx.req)?;
    Ok((json.email, json.password))
}

fn bad_credentials() -> ApiError {
    ApiError::Unauthorized("invalid email or password".into())
}

/// Sign in: exchange email and password for an access token.
///
/// Unknown email and wrong password give the same 401 and cost the same argon2
/// verification. Failures are throttled per account and source (10 per 15 minutes),
/// and per account across sources with back-off (see `shared::throttle`).
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth",
    request_body(content(
        (JsonLogin = "application/json"),
        (FormLogin = "application/x-www-form-urlencoded"))),
    responses((status = 200, description = "A bearer token", body = AccessToken),
              (status = 401, description = "Invalid email or password (the same answer for both)",
               body = shared::error::Problem, headers(("WWW-Authenticate" = String, description = "Always `Bearer`"))),
              (status = 429, description = "Too many failed attempts on this account from this source, or the account is backing off; see Retry-After",
               body = shared::error::Problem)))]
async fn login(ctx: Ctx) -> HandlerResult {
    let (email, password) = login_input(&ctx)?;
    let Some(key) = email::lookup_key(&email) else {
        // No account can have this email; spend the same verification time anyway.
        password::verify(password, None).await?;
        let event = ctx
            .origin()
            .event(Action::LoginFailed, Target::account(shared::auth::NOT_AN_EMAIL));
        ctx.app.store.record(event).await?;
        return Err(bad_credentials());
    };
    let app = &ctx.app;
    let lookup = async { app.store.find_user_for_login(&key).await.map_err(ApiError::from) };
    let source = ctx.source();
    let origin = ctx.origin();
    let (user, attempt) = tokio::try_join!(lookup, Attempt::reserve(app, &key, &source, &origin))?;
    let verified = attempt
        .verify(
            app,
            password,
            user.as_ref().map(|u| u.password_hash.clone()),
            user.as_ref(),
        )
        .await?;
    match user {
        Some(user) if verified => {
            let event = origin
                .as_actor(Actor::User(user.id))
                .event(Action::LoginSucceeded, Target::user(user.id))
                .team(user.team_id);
            app.store.record(event).await?;
            tracing::info!(user_id = %user.id, "login");
            http::ok(&app.tokens.issue(user.id, user.token_version, app.clock.now())?)
        }
        _ => Err(bad_credentials()),
    }
}

/// The signed-in user.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth",
    responses((status = 200, description = "The caller", body = UserView)))]
async fn me(ctx: Ctx) -> HandlerResult {
    http::ok(&UserView::from(ctx.caller()?))
}

/// Sign out everywhere: every token of the caller issued so far stops working.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 204, description = "Signed out")))]
async fn logout(ctx: Ctx) -> HandlerResult {
    ctx.app
        .store
        .bump_token_version(ctx.caller()?.id, &ctx.origin())
        .await?;
    http::no_content()
}
