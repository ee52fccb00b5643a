//! The DynamoDB store: one table, items mapped with `serde_dynamo`, conditional
//! writes and transactions whose cancellation reasons become domain errors.

mod audit;
mod jobs;
pub mod keys;
mod login;
pub mod outbox;
mod policies;
mod requests;
mod teams;
mod users;

pub use audit::{audit_event_key, AuditFilter, AuditPage};
pub use jobs::{Claim, ClaimedJob, RunOutcome};
pub use login::{AccountReservation, PairReservation, MAX_FAILURES};
pub use requests::{CreateError, RequestList};
pub use teams::{normalise_team_name, TeamChanges};

use aws_sdk_dynamodb::{
    error::{ProvideErrorMetadata, SdkError},
    operation::transact_write_items::TransactWriteItemsError,
    types::{AttributeValue, TransactWriteItem},
    Client,
};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

/// A raw DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// How many times a transaction that lost a race to another transaction
/// (`TransactionConflict`) is tried before the caller gets a 503.
const TRANSACTION_ATTEMPTS: u32 = 4;

#[derive(Clone, Debug)]
pub struct Store {
    client: Client,
    table: String,
    /// One audited commit at a time in this process (shared by the clones): writers of
    /// one process queue for the audit head in turn instead of racing each other for
    /// it (see [`Store::commit`]); other processes still race through its condition.
    chain_turn: std::sync::Arc<tokio::sync::Mutex<()>>,
}

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
    /// The user a token names is gone (a logout of a deleted user).
    #[error("the token's user no longer exists")]
    TokenUserGone,
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
fn classify_transaction<R>(err: SdkError<TransactWriteItemsError, R>) -> (StoreError, bool)
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

/// An item with its key attributes, for `serde_dynamo`.
#[derive(Serialize, Deserialize)]
pub(crate) struct Stored<T> {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    #[serde(rename = "GSI1PK", default, skip_serializing_if = "Option::is_none")]
    pub gsi1pk: Option<String>,
    #[serde(rename = "GSI1SK", default, skip_serializing_if = "Option::is_none")]
    pub gsi1sk: Option<String>,
    #[serde(rename = "GSI2PK", default, skip_serializing_if = "Option::is_none")]
    pub gsi2pk: Option<String>,
    #[serde(rename = "GSI2SK", default, skip_serializing_if = "Option::is_none")]
    pub gsi2sk: Option<String>,
    #[serde(rename = "GSI3PK", default, skip_serializing_if = "Option::is_none")]
    pub gsi3pk: Option<String>,
    #[serde(rename = "GSI3SK", default, skip_serializing_if = "Option::is_none")]
    pub gsi3sk: Option<String>,
    pub entity_type: String,
    #[serde(flatten)]
    pub data: T,
}

impl<T: Serialize> Stored<T> {
    pub fn new(entity_type: &str, key: keys::Key, data: T) -> Self {
        Self {
            pk: key.0,
            sk: key.1,
            gsi1pk: None,
            gsi1sk: None,
            gsi2pk: None,
            gsi2sk: None,
            gsi3pk: None,
            gsi3sk: None,
            entity_type: entity_type.into(),
            data,
        }
    }

    /// Puts the item in the index its key names.
    pub fn indexed(mut self, key: keys::IndexKey) -> Self {
        let keys::IndexKey { index, pk, sk } = key;
        let (pk_slot, sk_slot) = match index {
            keys::Index::Gsi1 => (&mut self.gsi1pk, &mut self.gsi1sk),
            keys::Index::Gsi2 => (&mut self.gsi2pk, &mut self.gsi2sk),
            keys::Index::Gsi3 => (&mut self.gsi3pk, &mut self.gsi3sk),
        };
        *pk_slot = Some(pk);
        *sk_slot = Some(sk);
        self
    }

    pub fn to_item(&self) -> Result<Item, StoreError> {
        Ok(serde_dynamo::to_item(self)?)
    }
}

pub(crate) fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    let stored: Stored<T> = serde_dynamo::from_item(item)?;
    Ok(stored.data)
}

pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(crate) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(crate) fn key_item(key: &keys::Key) -> Item {
    HashMap::from([(keys::PK.to_string(), s(&key.0)), (keys::SK.to_string(), s(&key.1))])
}

/// The key attributes of a raw item for the given index (`None`: the table), used to
/// build the cursor of a page.
fn key_of(item: &Item, index: Option<keys::Index>) -> Item {
    let mut names = vec![keys::PK, keys::SK];
    if let Some(index) = index {
        names.extend([index.pk(), index.sk()]);
    }
    names
        .into_iter()
        .filter_map(|n| item.get(n).map(|v| (n.to_string(), v.clone())))
        .collect()
}

/// One page of a query.
pub struct QueryPage {
    pub items: Vec<Item>,
    /// The key to start the next page from; `None` on the last page.
    pub next: Option<Item>,
}

/// A key condition: `partition = pk`, and optionally `begins_with(sort, prefix)` or
/// `sort BETWEEN low AND high`, plus `attribute = value` filters; read in key order,
/// or newest (highest key) first.
#[derive(Default)]
pub(crate) struct KeyCondition<'a> {
    pub index: Option<keys::Index>,
    pub pk: String,
    pub sk_prefix: Option<&'a str>,
    pub sk_between: Option<(String, String)>,
    pub filters: Vec<(&'a str, AttributeValue)>,
    pub newest_first: bool,
}

/// How many queries one page may take before it returns what it has (more than one
/// only when a filter drops items or DynamoDB cuts a response at 1 MB).
const MAX_QUERY_ROUNDS: usize = 8;

impl Store {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            chain_turn: Default::default(),
        }
    }

    /// Opens the connection to DynamoDB (DNS, TCP, TLS) with one cheap read, so the
    /// first request after a cold start does not pay for it. Failures are logged only:
    /// the first real request will retry and report properly.
    pub async fn warm_up(&self) {
        if let Err(e) = self.get(&keys::warmup()).await {
            tracing::warn!(error = %e, "DynamoDB warm-up failed");
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Strongly consistent read of one item.
    pub(crate) async fn get(&self, key: &keys::Key) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_item(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        Ok(out.item)
    }

    /// Runs a transaction, retrying a bounded number of times when it only lost a race.
    pub(crate) async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<(), StoreError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            match result {
                Ok(_) => return Ok(()),
                Err(err) => {
                    let (err, retryable) = classify_transaction(err);
                    if !retryable || attempt >= TRANSACTION_ATTEMPTS {
                        return Err(err);
                    }
                    // Jittered exponential back-off: 10, 20, 40 ms plus up to 10 ms.
                    let jitter = rand::random::<u64>() % 10;
                    tokio::time::sleep(Duration::from_millis((10 << (attempt - 1)) + jitter)).await;
                }
            }
        }
    }

    /// One page of a query in key order, at most `limit` items. Asks for one item more
    /// than needed, so the last page carries no cursor. With a filter, queries again
    /// until the page is full (DynamoDB applies `Limit` before filtering), at most
    /// [`MAX_QUERY_ROUNDS`] times.
    pub(crate) async fn query_page(
        &self,
        cond: KeyCondition<'_>,
        limit: usize,
        start: Option<Item>,
    ) -> Result<QueryPage, StoreError> {
        let (pk_name, sk_name) = match cond.index {
            Some(index) => (index.pk(), index.sk()),
            None => (keys::PK, keys::SK),
        };
        let mut expr = "#pk = :pk".to_string();
        if cond.sk_prefix.is_some() {
            expr.push_str(" AND begins_with(#sk, :prefix)");
        } else if cond.sk_between.is_some() {
            expr.push_str(" AND #sk BETWEEN :low AND :high");
        }
        let filter_expr = (0..cond.filters.len())
            .map(|i| format!("#f{i} = :f{i}"))
            .collect::<Vec<_>>()
            .join(" AND ");
        let mut items: Vec<Item> = Vec::new();
        let mut start = start;
        for _ in 0..MAX_QUERY_ROUNDS {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(cond.index.map(|i| i.name().to_string()))
                .key_condition_expression(&expr)
                .expression_attribute_names("#pk", pk_name)
                .expression_attribute_values(":pk", s(&cond.pk))
                .set_exclusive_start_key(start.take())
                .consistent_read(cond.index.is_none())
                .scan_index_forward(!cond.newest_first)
                // A full page each round: with a filter, most of what is read may be dropped.
                .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX));
            if let Some(prefix) = cond.sk_prefix {
                query = query
                    .expression_attribute_names("#sk", sk_name)
                    .expression_attribute_values(":prefix", s(prefix));
            }
            if let Some((low, high)) = &cond.sk_between {
                query = query
                    .expression_attribute_names("#sk", sk_name)
                    .expression_attribute_values(":low", s(low))
                    .expression_attribute_values(":high", s(high));
            }
            if !cond.filters.is_empty() {
                query = query.filter_expression(&filter_expr);
                for (i, (attribute, value)) in cond.filters.iter().enumerate() {
                    query = query
                        .expression_attribute_names(format!("#f{i}"), *attribute)
                        .expression_attribute_values(format!(":f{i}"), value.clone());
                }
            }
            let out = query.send().await.map_err(classify)?;
            items.extend(out.items.unwrap_or_default());
            if items.len() > limit {
                items.truncate(limit);
                let next = items.last().map(|last| key_of(last, cond.index));
                return Ok(QueryPage { items, next });
            }
            match out.last_evaluated_key.filter(|k| !k.is_empty()) {
                // DynamoDB stopped early (1 MB per response, or the filter): more may follow.
                Some(more) => start = Some(more),
                None => return Ok(QueryPage { items, next: None }),
            }
        }
        Ok(QueryPage { items, next: start })
    }

    /// Every item of a partition (following DynamoDB's own pages).
    pub(crate) async fn query_all(&self, pk: String) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", keys::PK)
                .expression_attribute_values(":pk", s(&pk))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(classify)?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(items),
            }
        }
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

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Thing {
        id: uuid::Uuid,
        n: u64,
        #[serde(default)]
        maybe: Option<String>,
    }

    #[test]
    fn stored_items_round_trip_with_keys() {
        let thing = Thing {
            id: uuid::Uuid::new_v4(),
            n: 7,
            maybe: None,
        };
        let item = Stored::new("THING", keys::user(thing.id), thing)
            .indexed(keys::IndexKey {
                index: keys::Index::Gsi1,
                pk: "A".into(),
                sk: "B".into(),
            })
            .to_item()
            .unwrap();
        assert_eq!(item["PK"], s(format!("USER#{}", item_id(&item))));
        assert_eq!(item["entity_type"], s("THING"));
        assert_eq!(item["n"], AttributeValue::N("7".into()));
        let back: Thing = from_item(item).unwrap();
        assert_eq!(back.n, 7);
        assert_eq!(back.maybe, None);
    }

    fn item_id(item: &Item) -> String {
        match &item["id"] {
            AttributeValue::S(s) => s.clone(),
            _ => panic!("id"),
        }
    }

    #[test]
    fn cursor_keys_hold_only_key_attributes() {
        let item = HashMap::from([
            ("PK".to_string(), s("a")),
            ("SK".to_string(), s("b")),
            ("GSI1PK".to_string(), s("c")),
            ("GSI1SK".to_string(), s("d")),
            ("password_hash".to_string(), s("secret")),
        ]);
        assert_eq!(key_of(&item, None).len(), 2);
        let k = key_of(&item, Some(keys::Index::Gsi1));
        assert_eq!(k.len(), 4);
        assert!(!k.contains_key("password_hash"));
    }
}

/// Expression attribute names and values of one operation (only the ones it uses:
/// DynamoDB rejects unused ones).
#[derive(Default)]
pub(crate) struct Expr {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expr {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn name(mut self, placeholder: &str, attribute: &str) -> Self {
        self.names.insert(placeholder.into(), attribute.into());
        self
    }

    pub fn value(mut self, placeholder: &str, value: AttributeValue) -> Self {
        self.values.insert(placeholder.into(), value);
        self
    }

    fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Sdk(Box::new(e))
}

/// The write operations of one transaction, in order (cancellation reasons refer to
/// these indexes).
/// The audit events a transaction records are appended after its own writes by
/// [`Store::commit`], so these indexes stay as built.
pub(crate) struct Tx<'a> {
    table: &'a str,
    pub items: Vec<TransactWriteItem>,
    pub events: Vec<crate::domain::audit::AuditEvent>,
}

impl<'a> Tx<'a> {
    pub fn new(store: &'a Store) -> Self {
        Self {
            table: &store.table,
            items: Vec::new(),
            events: Vec::new(),
        }
    }

    /// Records `event` in the audit log, in this transaction.
    pub fn audit(mut self, event: crate::domain::audit::AuditEvent) -> Self {
        self.events.push(event);
        self
    }

    /// Puts an item that must not exist yet (uniqueness markers, new entities).
    pub fn put_new(self, item: Item) -> Result<Self, StoreError> {
        self.put(item, Some("attribute_not_exists(PK)"), Expr::new())
    }

    pub fn put(mut self, item: Item, condition: Option<&str>, expr: Expr) -> Result<Self, StoreError> {
        let op = aws_sdk_dynamodb::types::Put::builder()
            .table_name(self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_string))
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .build()
            .map_err(build_error)?;
        self.items.push(TransactWriteItem::builder().put(op).build());
        Ok(self)
    }

    pub fn update(
        mut self,
        key: &keys::Key,
        update: &str,
        condition: Option<&str>,
        expr: Expr,
    ) -> Result<Self, StoreError> {
        let op = aws_sdk_dynamodb::types::Update::builder()
            .table_name(self.table)
            .set_key(Some(key_item(key)))
            .update_expression(update)
            .set_condition_expression(condition.map(str::to_string))
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .build()
            .map_err(build_error)?;
        self.items.push(TransactWriteItem::builder().update(op).build());
        Ok(self)
    }

    /// A condition on another item that must hold for the transaction to commit.
    pub fn check(mut self, key: &keys::Key, condition: &str, expr: Expr) -> Result<Self, StoreError> {
        let op = aws_sdk_dynamodb::types::ConditionCheck::builder()
            .table_name(self.table)
            .set_key(Some(key_item(key)))
            .condition_expression(condition)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .build()
            .map_err(build_error)?;
        self.items
            .push(TransactWriteItem::builder().condition_check(op).build());
        Ok(self)
    }

    pub fn delete(mut self, key: &keys::Key, condition: Option<&str>, expr: Expr) -> Result<Self, StoreError> {
        let op = aws_sdk_dynamodb::types::Delete::builder()
            .table_name(self.table)
            .set_key(Some(key_item(key)))
            .set_condition_expression(condition.map(str::to_string))
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .build()
            .map_err(build_error)?;
        self.items.push(TransactWriteItem::builder().delete(op).build());
        Ok(self)
    }
}

pub(crate) fn bool_value(b: bool) -> AttributeValue {
    AttributeValue::Bool(b)
}
