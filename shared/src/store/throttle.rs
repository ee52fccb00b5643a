//! Login throttling: failed attempts per account (by normalised email, so unknown
//! emails behave exactly like known ones), counted atomically in fixed windows.
//!
//! Policy: at most [`MAX_FAILURES`] failures per [`WINDOW_SECS`] window. Once reached,
//! login answers 429 until the window ends, then the count starts again by itself
//! (the old item expires through TTL), so nobody can lock an account for good.
//! Worst case with a burst at a window boundary: 20 attempts in a few seconds, and
//! never more than 40 an hour.

use super::{keys, n, s, Store, StoreError};
use serde::Deserialize;

pub const MAX_FAILURES: u64 = 10;
pub const WINDOW_SECS: i64 = 15 * 60;

/// The throttling window a moment falls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginWindow {
    pub index: i64,
    /// Unix time at which the window ends.
    pub ends_at: i64,
}

impl LoginWindow {
    pub fn at(unix_time: i64) -> Self {
        let index = unix_time.div_euclid(WINDOW_SECS);
        Self {
            index,
            ends_at: (index + 1) * WINDOW_SECS,
        }
    }
}

#[derive(Deserialize)]
struct Failures {
    #[serde(default)]
    failures: u64,
}

impl Store {
    /// Failed logins for this email in this window.
    pub async fn login_failures(&self, email: &str, window: LoginWindow) -> Result<u64, StoreError> {
        let item = self.get(&keys::login_failures(email, window.index)).await?;
        Ok(match item {
            Some(item) => serde_dynamo::from_item::<_, Failures>(item)?.failures,
            None => 0,
        })
    }

    /// Counts one failed login (atomic `ADD`); returns the new count.
    pub async fn record_login_failure(&self, email: &str, window: LoginWindow) -> Result<u64, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(super::key_item(&keys::login_failures(email, window.index))))
            .update_expression("ADD failures :one SET entity_type = :et, expires_at = :exp")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":et", s(keys::LOGIN_FAILURES))
            .expression_attribute_values(":exp", n(window.ends_at + WINDOW_SECS))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(super::classify)?;
        let failures = out
            .attributes
            .map(serde_dynamo::from_item::<_, Failures>)
            .transpose()?
            .map_or(1, |f| f.failures);
        Ok(failures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_aligned_and_end_in_the_future() {
        let w = LoginWindow::at(1_000_000);
        assert_eq!(w.index, 1_000_000 / WINDOW_SECS);
        assert!(w.ends_at > 1_000_000 && w.ends_at - 1_000_000 <= WINDOW_SECS);
        assert_eq!(LoginWindow::at(w.ends_at).index, w.index + 1);
    }
}
