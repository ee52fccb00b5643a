//! The DynamoDB store: one table, items mapped with `serde_dynamo`, conditional
//! writes and transactions whose cancellation reasons become the store's outcomes.
//!
//! By concern: `error` (the outcomes and the classification of DynamoDB's errors),
//! `item` (items and attribute values), `query` (pages and partitions), `tx`
//! (transactions), `keys` (every key format and the indexes); then one module per
//! kind of item (users, teams, requests, jobs, audit, outbox, …).

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

mod error;
mod item;
mod query;
mod tx;

pub(crate) use error::classify;
pub use error::StoreError;
pub(crate) use item::{bool_value, from_item, key_item, n, s, Stored};
pub(crate) use query::KeyCondition;
pub use query::QueryPage;
pub(crate) use tx::{Expr, Tx};

use aws_sdk_dynamodb::{types::AttributeValue, Client};
use std::collections::HashMap;

/// A raw DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

#[derive(Clone, Debug)]
pub struct Store {
    client: Client,
    table: String,
    /// One audited commit at a time in this process (shared by the clones): writers of
    /// one process queue for the audit head in turn instead of racing each other for
    /// it (see [`Store::commit`]); other processes still race through its condition.
    chain_turn: std::sync::Arc<tokio::sync::Mutex<()>>,
}

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
}
