//! Login support: the user look-up and the per-account attempt throttle.
//!
//! Throttle policy: at most [`MAX_FAILURES`] failed attempts per account (by normalised
//! email, so unknown emails behave exactly like known ones) in a fixed
//! [`WINDOW_SECS`] window. Each attempt first *reserves* a slot with a conditional
//! atomic `ADD` (refused once the limit is reached, so even concurrent guesses cannot
//! exceed it); a successful attempt gives its slot back. Once locked, login answers
//! 429 until the window ends; then the count starts from zero by itself (the old item
//! expires through TTL), so nobody can lock an account for good. At a window boundary
//! at most 2 x 10 attempts can come close together; never more than 40 an hour.

use super::{from_item, keys, n, s, users::EmailMarker, Store, StoreError};
use crate::model::User;
use uuid::Uuid;

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

impl Store {
    /// Looks a user up by normalised email for login. Always makes the same two
    /// reads (marker, then user — a user id that cannot exist when there is no
    /// marker), so known and unknown emails take the same time.
    pub async fn find_user_for_login(&self, normalised_email: &str) -> Result<Option<User>, StoreError> {
        let user_id = match self.get(&keys::email(normalised_email)).await? {
            Some(item) => from_item::<EmailMarker>(item)?.user_id,
            None => Uuid::nil(),
        };
        self.get_user(user_id).await
    }

    /// Reserves one login attempt for this email in this window: an atomic,
    /// conditional `ADD`. `false` when the limit is reached (locked).
    pub async fn reserve_login_attempt(&self, email: &str, window: LoginWindow) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(super::key_item(&keys::login_failures(email, window.index))))
            .update_expression("ADD failures :one SET entity_type = :et, expires_at = :exp")
            .condition_expression("attribute_not_exists(failures) OR failures < :max")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":max", n(MAX_FAILURES))
            .expression_attribute_values(":et", s(keys::LOGIN_FAILURES))
            .expression_attribute_values(":exp", n(window.ends_at + WINDOW_SECS))
            .send()
            .await
            .map_err(super::classify);
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.is_condition_failed() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives back the slot of an attempt that succeeded.
    pub async fn release_login_attempt(&self, email: &str, window: LoginWindow) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(super::key_item(&keys::login_failures(email, window.index))))
            .update_expression("ADD failures :minus")
            .condition_expression("failures > :zero")
            .expression_attribute_values(":minus", n(-1))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await
            .map_err(super::classify);
        match result {
            Err(e) if !e.is_condition_failed() => Err(e),
            _ => Ok(()),
        }
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
