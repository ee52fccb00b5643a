//! The `auth` function: register, login, who am I, logout.

use serde::Deserialize;
use shared::{
    auth::{
        email::{self, Email},
        jwt::AccessToken,
        password, Attempt,
    },
    clock::format_timestamp,
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
struct Registration {
    /// Trimmed; unique case-insensitively.
    #[schema(example = "ada@example.com")]
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
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = Registration,
    responses((status = 201, description = "The new user", body = UserView),
              (status = 409, description = "The email is taken", body = shared::error::Problem)))]
async fn register(ctx: Ctx) -> HandlerResult {
    let input: Registration = http::json_body(&ctx.req)?;
    let email = validate_credentials(&input.email, &input.password)?;
    let now = format_timestamp(ctx.app.clock.now());
    let user = User::new(email.as_str(), password::hash(input.password).await?, false, &now);
    ctx.app.store.create_user(&user, &email.normalised()).await?;
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
/// verification; failures are counted per email and throttled (see `store::login`).
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth",
    request_body(content(
        (JsonLogin = "application/json"),
        (FormLogin = "application/x-www-form-urlencoded"))),
    responses((status = 200, description = "A bearer token", body = AccessToken),
              (status = 429, description = "Too many failed attempts for this account; see Retry-After",
               body = shared::error::Problem)))]
async fn login(ctx: Ctx) -> HandlerResult {
    let (email, password) = login_input(&ctx)?;
    let Some(key) = email::lookup_key(&email) else {
        // No account can have this email; spend the same verification time anyway.
        password::verify(password, None).await?;
        return Err(bad_credentials());
    };
    let app = &ctx.app;
    let lookup = async { app.store.find_user_for_login(&key).await.map_err(ApiError::from) };
    let (user, attempt) = tokio::try_join!(lookup, Attempt::reserve(app, &key))?;
    let verified = attempt
        .verify(app, password, user.as_ref().map(|u| u.password_hash.clone()))
        .await?;
    match user {
        Some(user) if verified => {
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
    ctx.app.store.bump_token_version(ctx.caller()?.id).await?;
    http::no_content()
}
