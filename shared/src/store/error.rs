//! The store's outcomes: DynamoDB's errors classified (failed conditions, throttling,
//! an unreachable backend) and the refusals the store's conditions enforce, in the
//! store's own terms (`crate::error` turns them into answers).

use aws_sdk_dynamodb::{
    error::{ProvideErrorMetadata, SdkError},
    operation::transact_write_items::TransactWriteItemsError,
};

/// Errors from DynamoDB, classified for the callers.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A condition failed: on a single write, or on the items of a transaction whose
    /// indexes are listed.
    #[error("condition failed on items {0:?}")]
    ConditionFailed(Vec<usize>),
    /// Throttled or kept conflicting: safe to retry later.
    #[error("transient DynamoDB failure: {0}")]
    Transient(String),
    /// DynamoDB could not be reached or did not answer in time (connection refused,
    /// DNS, I/O, a timeout of [`crate::app`]'s SDK client, a 5xx): the outcome of a write
    /// is unknown (each write is atomic, so it happened whole or not at all), and the
    /// caller may retry later.
    #[error("DynamoDB unavailable: {0}")]
    Unavailable(String),
    #[error("DynamoDB request failed")]
    Sdk(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("stored item could not be mapped")]
    Mapping(#[from] serde_dynamo::Error),
    /// A conditional move of a request found it in another status than it was read in
    /// (`None`: it is gone).
    #[error("the request is no longer {} (now {})", .expected.as_str(), .current.map_or("gone", |c| c.as_str()))]
    StatusChanged {
        expected: crate::model::RequestStatus,
        current: Option<crate::model::RequestStatus>,
    },
    /// The request's job could not be queued again: a run (or a rotation) is queued or
    /// under way, and is never taken over.
    #[error("the request's job is {}; try again once it has ended", .status.map_or("missing", |s| s.as_str()))]
    JobBusy { status: Option<crate::model::JobStatus> },
    /// What was to be changed does not exist (`team`, `user`, `member`).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Another account already has this email (compared normalised).
    #[error("an account with this email already exists")]
    EmailTaken,
    /// Another team already has this name (compared folded).
    #[error("a team with this name already exists")]
    TeamNameTaken,
    /// A user joins one team at most.
    #[error("the user already belongs to another team")]
    InAnotherTeam,
    /// The admin counter may not drop below one.
    #[error("the last admin cannot be {}", if *.deleting { "deleted" } else { "demoted" })]
    LastAdmin { deleting: bool },
    /// The team still has requests that hold their name (listed, up to 20 of them).
    #[error("{}", owned_requests_message(.0))]
    TeamOwnsRequests(Vec<crate::model::ResourceRequest>),
    /// A user deletion would cancel more pending requests than one transaction holds.
    #[error("the user has {count} pending requests; at most {max} are cancelled with a deletion: cancel or reject the others first")]
    TooManyPending { count: usize, max: usize },
    /// The team kept changing under a read-modify-write.
    #[error("the team is being changed by someone else; retry")]
    TeamBusy,
    /// The user kept changing under an addition to a team.
    #[error("the user is being changed by someone else; retry")]
    UserBusy,
    /// The user kept changing under a role change (`deleting: false`) or a deletion.
    #[error("the user changed while being {}; retry", if *.deleting { "deleted" } else { "updated" })]
    UserChanged { deleting: bool },
    /// The user a token names is gone (a logout, or a change to their own settings,
    /// racing their deletion).
    #[error("the token's user no longer exists")]
    TokenUserGone,
    /// A rotation is queued or running already, or the request left `ready`.
    #[error("a rotation is already under way, or the request changed; retry later")]
    RotationBusy,
    /// The token was revoked since it was checked (a password change racing a logout).
    #[error("the token has been revoked")]
    TokenRevoked,
    /// An eventually consistent index (of a `team`'s or a `user`'s requests) has not
    /// caught up within its bound; retrying shortly succeeds.
    #[error("the {0}'s request index is behind; retry in a moment")]
    IndexBehind(&'static str),
    /// A move planned by the request lifecycle was refused.
    #[error(transparent)]
    Lifecycle(#[from] crate::domain::LifecycleError),
}

/// The refusal of a team deletion: the requests that hold their name, up to 20.
fn owned_requests_message(live: &[crate::model::ResourceRequest]) -> String {
    const SHOWN: usize = 20;
    let mut listed: Vec<String> = live
        .iter()
        .take(SHOWN)
        .map(|r| format!("{} `{}` ({}, {})", r.resource_type, r.name, r.id, r.status.as_str()))
        .collect();
    if live.len() > SHOWN {
        listed.push(format!("and {} more", live.len() - SHOWN));
    }
    format!(
        "the team still has {} request(s) that are not deleted, rejected or cancelled: {}; delete the resources (POST /api/v1/requests/{{id}}/delete) and decide or cancel the pending requests first",
        live.len(),
        listed.join(", ")
    )
}

impl StoreError {
    pub fn is_condition_failed(&self) -> bool {
        matches!(self, Self::ConditionFailed(_))
    }

    /// True when the condition on item `index` of a transaction failed.
    pub fn failed_at(&self, index: usize) -> bool {
        matches!(self, Self::ConditionFailed(items) if items.contains(&index))
    }
}

/// Error codes that mean "try again later" (throttling, or losing a race to a
/// transaction on a single-item write).
const THROTTLING_CODES: &[&str] = &[
    "TransactionConflictException",
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "LimitExceededException",
];

/// Error codes of DynamoDB's own server-side failures.
const SERVER_ERROR_CODES: &[&str] = &["InternalServerError", "ServiceUnavailable", "RequestTimeout"];

/// Classifies any single-operation SDK error: failed conditions, throttling
/// (`Transient`), the backend being unreachable or too slow (`Unavailable`), and
/// everything else (`Sdk`, which becomes a 500).
pub(crate) fn classify<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match &err {
        // No answer in time: connect, attempt or operation timeout of the SDK client.
        SdkError::TimeoutError(_) => return StoreError::Unavailable("timeout".into()),
        // Connection refused or reset, DNS, TLS, I/O while sending.
        SdkError::DispatchFailure(failure) => {
            let why = if failure.is_timeout() {
                "timeout"
            } else if failure.is_io() {
                "connection failed"
            } else {
                "dispatch failure"
            };
            return StoreError::Unavailable(why.into());
        }
        // The connection broke while the answer was being read.
        SdkError::ResponseError(_) => return StoreError::Unavailable("incomplete response".into()),
        _ => {}
    }
    match err.code() {
        Some("ConditionalCheckFailedException") => StoreError::ConditionFailed(vec![0]),
        Some(code) if THROTTLING_CODES.contains(&code) => StoreError::Transient(code.into()),
        Some(code) if SERVER_ERROR_CODES.contains(&code) => StoreError::Unavailable(code.into()),
        _ => StoreError::Sdk(Box::new(err)),
    }
}

/// Looks inside a cancelled transaction: which items' conditions failed, or whether it
/// only lost a race and may be tried again.
pub(super) fn classify_transaction<R>(err: SdkError<TransactWriteItemsError, R>) -> (StoreError, bool)
where
    R: std::fmt::Debug + Send + Sync + 'static,
{
    if let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) = err.as_service_error() {
        let codes: Vec<&str> = cancelled
            .cancellation_reasons()
            .iter()
            .map(|r| r.code().unwrap_or("None"))
            .collect();
        let failed: Vec<usize> = codes
            .iter()
            .enumerate()
            .filter(|(_, c)| **c == "ConditionalCheckFailed")
            .map(|(i, _)| i)
            .collect();
        if !failed.is_empty() {
            return (StoreError::ConditionFailed(failed), false);
        }
        if codes.contains(&"TransactionConflict") {
            return (StoreError::Transient("TransactionConflict".into()), true);
        }
        if codes
            .iter()
            .any(|c| THROTTLING_CODES.contains(c) || *c == "ThrottlingError")
        {
            return (StoreError::Transient("throttled".into()), true);
        }
    }
    let retry = err.code() == Some("TransactionInProgressException");
    match classify(err) {
        StoreError::Transient(why) => (StoreError::Transient(why), true),
        // The SDK has already retried within its operation timeout; another round
        // would only push the answer past the request's time budget.
        unavailable @ StoreError::Unavailable(_) => (unavailable, false),
        other => (other, retry),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::config::http::HttpResponse;
    use aws_sdk_dynamodb::{error::ConnectorError, operation::get_item::GetItemError};

    type GetError = SdkError<GetItemError, HttpResponse>;

    #[test]
    fn an_unreachable_or_silent_dynamodb_is_unavailable() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        for err in [
            GetError::timeout_error("operation timed out"),
            GetError::dispatch_failure(ConnectorError::io(Box::new(refused))),
            GetError::dispatch_failure(ConnectorError::timeout("connect timed out".into())),
        ] {
            let classified = classify(err);
            assert!(matches!(classified, StoreError::Unavailable(_)), "{classified:?}");
        }
    }
}
