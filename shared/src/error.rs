//! The one error type of the API, rendered as RFC 9457 `application/problem+json`.
//!
//! Expected failures are values of [`ApiError`] and become responses; a handler never
//! hands an `Err` to the Lambda runtime (API Gateway would turn it into a bare 502).

use lambda_http::{http::StatusCode, Body, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// One invalid field of a request, reported under `errors` of a 400/422 problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Every way a request can fail. The status code of each variant is decided in
/// [`ApiError::status`] and nowhere else.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body or a query parameter could not be parsed.
    #[error("bad request: {detail}")]
    BadRequest { detail: String, errors: Vec<FieldError> },
    /// Missing or invalid credentials.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// Authenticated, but not allowed.
    #[error("forbidden")]
    Forbidden,
    /// Unknown resource (also for malformed ids, so ids cannot be probed).
    #[error("not found: {0}")]
    NotFound(String),
    /// Known path, wrong method.
    #[error("method not allowed")]
    MethodNotAllowed { allow: Vec<String> },
    /// Conflicts with the current state (duplicate, illegal transition, lost race).
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("payload too large (limit {limit} bytes)")]
    PayloadTooLarge { limit: usize },
    /// The request target is longer than the server reads (the dev server's HTTP layer).
    #[error("URI too long")]
    UriTooLong,
    /// The request line and headers are larger than the server reads.
    #[error("request header fields too large")]
    HeaderFieldsTooLarge,
    #[error("unsupported media type")]
    UnsupportedMediaType { expected: &'static str },
    /// Well-formed but invalid input.
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// Throttled; the client may retry after this many seconds.
    #[error("too many requests")]
    TooManyRequests { retry_after_secs: u64 },
    /// A transient backend failure (DynamoDB throttling, a transaction that kept
    /// conflicting, DynamoDB unreachable or not answering within the time budget of
    /// `app`); the client may retry after [`RETRY_AFTER_UNAVAILABLE_SECS`].
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// Anything unexpected. The cause is logged, never sent to the client.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// `Retry-After` of a 503.
pub const RETRY_AFTER_UNAVAILABLE_SECS: u64 = 1;

/// An RFC 9457 problem document: the body of every error response.
#[derive(Serialize, ToSchema)]
pub struct Problem<'a> {
    /// Always `about:blank`: the status says what kind of problem it is.
    #[serde(rename = "type")]
    kind: &'a str,
    title: &'a str,
    status: u16,
    detail: String,
    /// Per-field problems (400 and 422 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<FieldError>>)]
    errors: Option<&'a [FieldError]>,
}

impl ApiError {
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::BadRequest {
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    pub fn bad_field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::BadRequest {
            detail: format!("invalid parameter `{field}`: {message}"),
            errors: vec![FieldError::new(field, message)],
        }
    }

    pub fn validation(field: &str, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    pub fn internal(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Internal(Box::new(err))
    }

    /// The HTTP status of each variant: the only place where this mapping is made.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UriTooLong => StatusCode::URI_TOO_LONG,
            Self::HeaderFieldsTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn detail(&self) -> String {
        match self {
            Self::BadRequest { detail, .. } => detail.clone(),
            Self::Unauthorized(why) => why.clone(),
            Self::Forbidden => "you are not allowed to do this".into(),
            Self::NotFound(what) => format!("{what} not found"),
            Self::MethodNotAllowed { allow } => {
                format!("method not allowed; allowed: {}", allow.join(", "))
            }
            Self::Conflict(why) => why.clone(),
            Self::PayloadTooLarge { limit } => format!("request body exceeds {limit} bytes"),
            Self::UriTooLong => "the request URI is too long".into(),
            Self::HeaderFieldsTooLarge => "the request line and headers are too large".into(),
            Self::UnsupportedMediaType { expected } => format!("expected Content-Type {expected}"),
            Self::Validation(_) => "the request has invalid fields".into(),
            Self::TooManyRequests { retry_after_secs } => {
                format!("too many requests; retry after {retry_after_secs} seconds")
            }
            Self::Unavailable(_) => "the service is temporarily unavailable; retry shortly".into(),
            // Never leak internals.
            Self::Internal(_) => "an unexpected error occurred".into(),
        }
    }

    /// Renders the problem document with the headers its status requires.
    pub fn into_response(self) -> Response<Body> {
        let status = self.status();
        match &self {
            Self::Internal(err) => tracing::error!(error = %err, cause = ?err.source(), "internal error"),
            Self::Unavailable(why) => tracing::warn!(reason = %why, "transient failure"),
            _ => tracing::info!(status = status.as_u16(), error = %self, "request failed"),
        }
        let errors = match &self {
            Self::Validation(errors) => Some(errors.as_slice()),
            Self::BadRequest { errors, .. } if !errors.is_empty() => Some(errors.as_slice()),
            _ => None,
        };
        let problem = Problem {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: self.detail(),
            errors,
        };
        let body = serde_json::to_string(&problem).unwrap_or_else(|_| "{}".into());
        let mut builder = Response::builder()
            .status(status)
            .header("content-type", "application/problem+json")
            .header("cache-control", "no-store")
            .header("x-content-type-options", "nosniff");
        match &self {
            Self::Unauthorized(_) => builder = builder.header("www-authenticate", "Bearer"),
            Self::MethodNotAllowed { allow } => builder = builder.header("allow", allow.join(", ")),
            Self::TooManyRequests { retry_after_secs } => {
                builder = builder.header("retry-after", retry_after_secs.to_string())
            }
            Self::Unavailable(_) => builder = builder.header("retry-after", RETRY_AFTER_UNAVAILABLE_SECS.to_string()),
            _ => {}
        }
        builder
            .body(Body::Text(body))
            .unwrap_or_else(|_| Response::new(Body::Empty))
    }
}

/// The one mapping of the store's outcomes to answers: every variant is named, so a
/// new one must be given its status here. The messages are the outcomes' own.
impl From<crate::store::StoreError> for ApiError {
    fn from(err: crate::store::StoreError) -> Self {
        use crate::store::StoreError as E;
        match err {
            E::Transient(why) | E::Unavailable(why) => Self::Unavailable(why),
            behind @ E::IndexBehind(_) => Self::Unavailable(behind.to_string()),
            E::NotFound(what) => Self::NotFound(what.into()),
            token @ (E::TokenUserGone | E::TokenRevoked) => Self::Unauthorized(token.to_string()),
            E::Lifecycle(refused) => refused.into(),
            conflict @ (E::StatusChanged { .. }
            | E::JobBusy { .. }
            | E::EmailTaken
            | E::TeamNameTaken
            | E::InAnotherTeam
            | E::LastAdmin { .. }
            | E::TeamOwnsRequests(_)
            | E::TooManyPending { .. }
            | E::TeamBusy
            | E::UserBusy
            | E::UserChanged { .. }
            | E::RotationBusy) => Self::Conflict(conflict.to_string()),
            // A condition no caller turned into an outcome, an SDK failure, an item
            // that does not map: a defect, logged and answered 500.
            defect @ (E::ConditionFailed(_) | E::Sdk(_) | E::Mapping(_)) => Self::internal(defect),
        }
    }
}

/// A move the request lifecycle does not allow is a conflict with the current state.
impl From<crate::domain::LifecycleError> for ApiError {
    fn from(err: crate::domain::LifecycleError) -> Self {
        Self::Conflict(err.to_string())
    }
}

/// A creation that failed in the store: the name is taken or the team changed (409).
/// (`PolicyGone` is handled by the caller, which submits the request for review instead;
/// should one reach here, it is a conflict too.)
impl From<crate::store::CreateError> for ApiError {
    fn from(err: crate::store::CreateError) -> Self {
        use crate::store::CreateError;
        match err {
            CreateError::Store(e) => e.into(),
            conflict @ (CreateError::NameTaken { .. } | CreateError::TeamChanged | CreateError::PolicyGone) => {
                Self::Conflict(conflict.to_string())
            }
        }
    }
}

/// An amount that is not a valid amount of money: the error of `field.amount` or
/// `field.currency` (a 422).
pub fn money_error(field: &str, err: crate::domain::money::MoneyError) -> FieldError {
    let field = match err {
        crate::domain::money::MoneyError::Currency => format!("{field}.currency"),
        _ => format!("{field}.amount"),
    };
    FieldError::new(field, err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_json(resp: &Response<Body>) -> serde_json::Value {
        match resp.body() {
            Body::Text(t) => serde_json::from_str(t).expect("json body"),
            other => panic!("unexpected body {other:?}"),
        }
    }

    #[test]
    fn store_outcomes_keep_their_answers() {
        use crate::store::StoreError as E;
        let unavailable = ApiError::from(E::Unavailable("timeout".into())).into_response();
        assert_eq!(unavailable.status(), 503);
        assert_eq!(unavailable.headers()["content-type"], "application/problem+json");
        assert!(unavailable.headers().contains_key("retry-after"));
        // A 503 says why in the log only.
        const UNAVAILABLE: &str = "the service is temporarily unavailable; retry shortly";
        assert!(matches!(
            ApiError::from(E::IndexBehind("user")),
            ApiError::Unavailable(why) if why == "the user's request index is behind; retry in a moment"
        ));
        let cases: Vec<(E, u16, &str)> = vec![
            (E::Transient("throttled".into()), 503, UNAVAILABLE),
            (E::IndexBehind("team"), 503, UNAVAILABLE),
            (E::NotFound("member"), 404, "member not found"),
            (E::EmailTaken, 409, "an account with this email already exists"),
            (E::TeamNameTaken, 409, "a team with this name already exists"),
            (E::InAnotherTeam, 409, "the user already belongs to another team"),
            (E::LastAdmin { deleting: false }, 409, "the last admin cannot be demoted"),
            (E::LastAdmin { deleting: true }, 409, "the last admin cannot be deleted"),
            (E::TeamBusy, 409, "the team is being changed by someone else; retry"),
            (E::UserBusy, 409, "the user is being changed by someone else; retry"),
            (E::UserChanged { deleting: false }, 409, "the user changed while being updated; retry"),
            (E::UserChanged { deleting: true }, 409, "the user changed while being deleted; retry"),
            (
                E::TooManyPending { count: 41, max: 40 },
                409,
                "the user has 41 pending requests; at most 40 are cancelled with a deletion: cancel or reject the others first",
            ),
            (
                E::RotationBusy,
                409,
                "a rotation is already under way, or the request changed; retry later",
            ),
            (E::TokenUserGone, 401, "the token's user no longer exists"),
            (E::TokenRevoked, 401, "the token has been revoked"),
        ];
        for (outcome, status, detail) in cases {
            let resp = ApiError::from(outcome).into_response();
            assert_eq!(resp.status(), status);
            assert_eq!(body_json(&resp)["detail"], detail);
        }
        let defect = ApiError::from(E::ConditionFailed(vec![3])).into_response();
        assert_eq!(defect.status(), 500);
        assert!(
            !body_json(&defect).to_string().contains("items"),
            "no cause in the answer"
        );
    }

    #[test]
    fn unauthorized_carries_www_authenticate_and_problem_json() {
        let resp = ApiError::Unauthorized("missing token".into()).into_response();
        assert_eq!(resp.status(), 401);
        assert_eq!(resp.headers()["www-authenticate"], "Bearer");
        assert_eq!(resp.headers()["content-type"], "application/problem+json");
        let body = body_json(&resp);
        assert_eq!(body["status"], 401);
        assert_eq!(body["title"], "Unauthorized");
        assert_eq!(body["detail"], "missing token");
    }

    #[test]
    fn internal_error_hides_its_cause() {
        let cause = std::io::Error::other("table secret-table-name exploded");
        let resp = ApiError::internal(cause).into_response();
        assert_eq!(resp.status(), 500);
        let text = serde_json::to_string(&body_json(&resp)).unwrap();
        assert!(!text.contains("secret-table-name"), "{text}");
    }

    #[test]
    fn validation_lists_field_errors() {
        let resp = ApiError::validation("email", "not an email").into_response();
        assert_eq!(resp.status(), 422);
        let body = body_json(&resp);
        assert_eq!(body["errors"][0]["field"], "email");
    }

    #[test]
    fn retry_after_and_allow_headers() {
        let resp = ApiError::TooManyRequests { retry_after_secs: 42 }.into_response();
        assert_eq!(resp.headers()["retry-after"], "42");
        let resp = ApiError::MethodNotAllowed {
            allow: vec!["GET".into(), "PUT".into()],
        }
        .into_response();
        assert_eq!(resp.status(), 405);
        assert_eq!(resp.headers()["allow"], "GET, PUT");
    }
}
