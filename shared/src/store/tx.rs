//! Writes in transactions: the expression attributes of one operation (`Expr`), a
//! transaction being built (`Tx`), and running it with bounded retries of lost races.

use super::{error::classify_transaction, key_item, keys, Item, Store, StoreError};
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use std::collections::HashMap;
use std::time::Duration;

/// How many times a transaction that lost a race to another transaction
/// (`TransactionConflict`) is tried before the caller gets a 503.
const TRANSACTION_ATTEMPTS: u32 = 4;

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
    pub(super) table: &'a str,
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

impl Store {
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
}
