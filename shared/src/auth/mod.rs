//! Who is calling, and what they may do. Tokens are checked in [`jwt`], passwords in
//! [`password`]; [`authenticate`] turns a request into the caller's *current* user
//! record, so deletion, demotion and logout take effect at once.

pub mod email;
pub mod jwt;
pub mod password;

use crate::{error::ApiError, model::User, store::LoginWindow, App};
use lambda_http::Request;

/// Who may call a route. Every route declares one in [`crate::routes::ROUTES`]; the
/// router enforces it before a handler runs (deny by default: a route without an
/// entry is not served).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, no token.
    Public,
    /// Any signed-in user.
    User,
    /// Signed-in admins only.
    Admin,
}

fn bearer_token(req: &Request) -> Result<&str, ApiError> {
    let header = req
        .headers()
        .get("authorization")
        .ok_or_else(|| ApiError::Unauthorized("missing bearer token".into()))?;
    let value = header
        .to_str()
        .map_err(|_| ApiError::Unauthorized("malformed Authorization header".into()))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| ApiError::Unauthorized("malformed Authorization header".into()))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::Unauthorized("expected a bearer token".into()));
    }
    Ok(token.trim())
}

/// Verifies the bearer token and loads the caller as stored now.
pub async fn authenticate(app: &App, req: &Request) -> Result<User, ApiError> {
    let token = bearer_token(req)?;
    let claims = app.tokens.verify(token, app.clock.now())?;
    let user = app
        .store
        .get_user(claims.sub)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("the token's user no longer exists".into()))?;
    if user.token_version != claims.ver {
        return Err(ApiError::Unauthorized("the token has been revoked".into()));
    }
    Ok(user)
}

/// Applies a route's [`Access`] rule; returns the caller when there is one.
pub async fn authorize(app: &App, req: &Request, access: Access) -> Result<Option<User>, ApiError> {
    match access {
        Access::Public => Ok(None),
        Access::User => authenticate(app, req).await.map(Some),
        Access::Admin => {
            let user = authenticate(app, req).await?;
            if user.is_admin {
                Ok(Some(user))
            } else {
                Err(ApiError::Forbidden)
            }
        }
    }
}

/// One password attempt under the per-account throttle (see `store::login`): reserve a
/// slot first (429 when the account is locked), then verify; a correct password gives
/// the slot back, a wrong one keeps it as a counted failure.
pub struct Attempt {
    key: String,
    window: LoginWindow,
}

impl Attempt {
    /// Reserves an attempt for the account keyed by `email_key` (a normalised email).
    pub async fn reserve(app: &App, email_key: &str) -> Result<Self, ApiError> {
        let now = app.clock.now().unix_timestamp();
        let window = LoginWindow::at(now);
        if !app.store.reserve_login_attempt(email_key, window).await? {
            return Err(ApiError::TooManyRequests {
                retry_after_secs: u64::try_from(window.ends_at - now).unwrap_or(1).max(1),
            });
        }
        Ok(Self {
            key: email_key.to_string(),
            window,
        })
    }

    /// Verifies `password` against `stored` (or the dummy hash when there is no account).
    pub async fn verify(self, app: &App, password: String, stored: Option<String>) -> Result<bool, ApiError> {
        let ok = password::verify(password, stored).await?;
        if ok {
            // Best effort: a correct password must not fail because the slot could not
            // be given back (it then counts once, and expires with its window).
            if let Err(e) = app.store.release_login_attempt(&self.key, self.window).await {
                tracing::warn!(error = %e, "could not release a login attempt");
            }
        }
        Ok(ok)
    }
}
