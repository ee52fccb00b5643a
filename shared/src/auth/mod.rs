//! Who is calling, and what they may do. Tokens are checked in [`jwt`], passwords in
//! [`password`]; [`authenticate`] turns a request into the caller's *current* user
//! record, so deletion, demotion and logout take effect at once.

pub mod email;
pub mod jwt;
pub mod password;

use crate::throttle::{self, Window};
use crate::{
    domain::audit::{Action, Origin, Target},
    error::ApiError,
    model::User,
    store::{AccountReservation, PairReservation},
    App,
};
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

/// One password attempt under the throttle of [`throttle`]: reserve first (429 when
/// this source is locked out of the account, or the account is backing off for this
/// source), then verify; a correct password gives the reservations back, a wrong one
/// keeps them as counted failures.
pub struct Attempt {
    email: String,
    source: String,
    pair: Window,
    account: Window,
    clean: bool,
    origin: Origin,
}

/// The target of a login on an account no user has: the normalised email when it is
/// one, never the raw input (a password typed into the email field must not end up
/// in a log that nothing deletes).
pub fn account_target(email_key: &str) -> Target {
    match email::Email::parse(email_key) {
        Ok(email) => Target::account(&email.normalised()),
        Err(_) => Target::account(NOT_AN_EMAIL),
    }
}

/// What the audit log names instead of login input that is no email address.
pub const NOT_AN_EMAIL: &str = "(not an email address)";

/// Records a refusal by a throttle in the audit log (once per throttled window:
/// `counter` is the throttle's item, which keeps the flag), then gives the refusal
/// back.
async fn throttled(
    app: &App,
    origin: &Origin,
    target: Target,
    retry_after_secs: u64,
    counter: &crate::store::keys::Key,
) -> ApiError {
    let event = origin
        .event(Action::Throttled, target)
        .fact("retry_after_secs", retry_after_secs);
    match app.store.record_once(event, counter).await {
        Ok(()) => ApiError::TooManyRequests { retry_after_secs },
        Err(e) => e.into(),
    }
}

impl Attempt {
    /// Reserves an attempt on the account keyed by `email_key` (a normalised email)
    /// from `source` (a [`throttle::source_key`]).
    /// A refusal is recorded in the audit log (as `origin`) before it is answered.
    pub async fn reserve(app: &App, email_key: &str, source: &str, origin: &Origin) -> Result<Self, ApiError> {
        let now = app.clock.now().unix_timestamp();
        let pair = Window::at(now, throttle::PAIR_WINDOW_SECS);
        let account = Window::at(now, throttle::ACCOUNT_WINDOW_SECS);
        let store = &app.store;
        let clean = match store.reserve_pair_attempt(email_key, source, pair).await? {
            PairReservation::Reserved { clean } => clean,
            PairReservation::Locked => {
                let counter = crate::store::keys::login_failures(pair.index, source, email_key);
                let target = account_target(email_key);
                return Err(throttled(app, origin, target, pair.retry_after(now), &counter).await);
            }
        };
        match store.reserve_account_attempt(email_key, clean, account, now).await {
            Ok(AccountReservation::Reserved) => Ok(Self {
                email: email_key.to_string(),
                source: source.to_string(),
                pair,
                account,
                clean,
                origin: origin.clone(),
            }),
            refused => {
                // This attempt will not be checked: it is no failure of this source.
                if let Err(e) = store.release_pair_attempt(email_key, source, pair).await {
                    tracing::warn!(error = %e, "could not release a login attempt");
                }
                match refused? {
                    AccountReservation::BackOff { retry_after_secs } => {
                        let counter = crate::store::keys::login_account(account.index, email_key);
                        let target = account_target(email_key);
                        Err(throttled(app, origin, target, retry_after_secs, &counter).await)
                    }
                    AccountReservation::Reserved => unreachable!("handled above"),
                }
            }
        }
    }

    /// Verifies `password` against `stored` (or the dummy hash when there is no
    /// account). A wrong password is recorded in the audit log, against `user` (the
    /// account's user, if there is one) or else the email, before the caller answers.
    pub async fn verify(
        self,
        app: &App,
        password: String,
        stored: Option<String>,
        user: Option<&User>,
    ) -> Result<bool, ApiError> {
        let ok = password::verify(password, stored).await?;
        if !ok {
            let target = user.map_or_else(|| account_target(&self.email), |u| Target::user(u.id));
            let event = self
                .origin
                .event(Action::LoginFailed, target)
                .team(user.and_then(|u| u.team_id));
            app.store.record(event).await?;
        }
        if ok {
            // Best effort: a correct password must not fail because a reservation could
            // not be given back (it then counts once, and expires with its window).
            let store = &app.store;
            let (pair, account) = tokio::join!(
                store.release_pair_attempt(&self.email, &self.source, self.pair),
                store.release_account_attempt(&self.email, self.clean, self.account),
            );
            for e in [pair.err(), account.err()].into_iter().flatten() {
                tracing::warn!(error = %e, "could not release a login attempt");
            }
        }
        Ok(ok)
    }
}

/// The registration throttle: `POST /auth/register` answers 409 for an email that
/// is taken (see the README for why), so each source may hit at most
/// [`throttle::REGISTRATION_MAX_CONFLICTS`] taken emails per pair window, then 429
/// until the window ends. Registrations that succeed or fail validation do not count
/// (validation comes first; a success gives its reservation back in its own
/// transaction).
pub struct Registration {
    source: String,
    window: Window,
}

impl Registration {
    pub async fn reserve(app: &App, source: &str, origin: &Origin) -> Result<Self, ApiError> {
        let now = app.clock.now().unix_timestamp();
        let window = Window::at(now, throttle::PAIR_WINDOW_SECS);
        if !app
            .store
            .reserve_registration(source, window, throttle::REGISTRATION_MAX_CONFLICTS)
            .await?
        {
            let counter = crate::store::keys::registrations(window.index, source);
            let target = Target::source(source);
            return Err(throttled(app, origin, target, window.retry_after(now), &counter).await);
        }
        Ok(Self {
            source: source.to_string(),
            window,
        })
    }

    /// Creates the account; the same transaction gives the reservation back, so only
    /// a taken email (409) stays counted.
    pub async fn create(self, app: &App, user: &User, normalised_email: &str, origin: &Origin) -> Result<(), ApiError> {
        Ok(app
            .store
            .register_user(user, normalised_email, &self.source, self.window, origin)
            .await?)
    }
}
