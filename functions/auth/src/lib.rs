//! The `auth` function: register, login, who am I, logout.

use serde::Deserialize;
use shared::{
    auth::{email::Email, password},
    clock::format_timestamp,
    error::{ApiError, FieldError},
    http,
    model::{User, UserView},
    router::{Ctx, HandlerResult, Router},
    store::{LoginWindow, MAX_FAILURES},
};

pub fn router() -> Router {
    Router::new("auth")
        .route("POST /api/v1/auth/register", register)
        .route("POST /api/v1/auth/login", login)
        .route("GET /api/v1/auth/me", me)
        .route("POST /api/v1/auth/logout", logout)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Registration {
    email: String,
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
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonLogin {
    email: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FormLogin {
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

/// Unknown email and wrong password give the same 401 and cost the same argon2
/// verification; failures are counted per email and throttled (see `store::throttle`).
async fn login(ctx: Ctx) -> HandlerResult {
    let (email, password) = login_input(&ctx)?;
    let email = shared::auth::email::normalise(&email);
    let now = ctx.app.clock.now();
    let window = LoginWindow::at(now.unix_timestamp());
    let store = &ctx.app.store;
    let (user, failures) = tokio::try_join!(store.find_user_by_email(&email), store.login_failures(&email, window))?;
    if failures >= MAX_FAILURES {
        return Err(ApiError::TooManyRequests {
            retry_after_secs: u64::try_from(window.ends_at - now.unix_timestamp()).unwrap_or(1).max(1),
        });
    }
    let verified = password::verify(password, user.as_ref().map(|u| u.password_hash.clone())).await?;
    match user {
        Some(user) if verified => {
            tracing::info!(user_id = %user.id, "login");
            http::ok(&ctx.app.tokens.issue(user.id, user.token_version, now)?)
        }
        _ => {
            store.record_login_failure(&email, window).await?;
            Err(bad_credentials())
        }
    }
}

async fn me(ctx: Ctx) -> HandlerResult {
    http::ok(&UserView::from(ctx.caller()?))
}

/// Revokes every token of the caller issued so far.
async fn logout(ctx: Ctx) -> HandlerResult {
    ctx.app.store.bump_token_version(ctx.caller()?.id).await?;
    http::no_content()
}
