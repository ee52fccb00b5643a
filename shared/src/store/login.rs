//! Login support: the user look-up and the attempt counters of the password throttle
//! (the policy and its numbers are in `crate::throttle`).
//!
//! Every counter is reserved *before* the password is checked, with one atomic,
//! conditional `UpdateItem ADD` (refused once the limit is reached, so concurrent
//! guesses cannot get past it); a correct password gives its reservations back, a
//! wrong one leaves them as counted failures. Each item belongs to one fixed window
//! and expires through TTL one window after it ends, so counts start from zero by
//! themselves and nobody can lock anything for good.

use super::{classify, from_item, key_item, keys, n, s, users::EmailMarker, Store, StoreError};
use crate::{
    model::User,
    throttle::{self, Window},
};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use uuid::Uuid;

/// Kept for callers that count to the per-source limit.
pub const MAX_FAILURES: u64 = throttle::PAIR_MAX_FAILURES;

/// The outcome of reserving an attempt on one account from one source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairReservation {
    /// Reserved; `clean` when the source had no failure (and no attempt in flight) on
    /// this account in the window.
    Reserved { clean: bool },
    /// This source has used up its failures on this account in this window.
    Locked,
}

/// The outcome of reserving an attempt on an account (all sources).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountReservation {
    Reserved,
    /// The account is backing off: the next attempt is allowed in this many seconds.
    BackOff {
        retry_after_secs: u64,
    },
}

fn number(item: &super::Item, attribute: &str) -> u64 {
    match item.get(attribute) {
        Some(AttributeValue::N(v)) => v.parse().unwrap_or(0),
        _ => 0,
    }
}

fn signed(item: &super::Item, attribute: &str) -> i64 {
    match item.get(attribute) {
        Some(AttributeValue::N(v)) => v.parse().unwrap_or(0),
        _ => 0,
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

    /// Adds one to `counter` of the item at `key` unless it has reached `max`; `Ok(None)`
    /// when refused, else the count before.
    async fn reserve_slot(
        &self,
        entity_type: &str,
        key: &keys::Key,
        counter: &str,
        max: u64,
        expires_at: i64,
    ) -> Result<Option<u64>, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(key)))
            .update_expression("ADD #c :one SET entity_type = :et, expires_at = :exp")
            .condition_expression("attribute_not_exists(#c) OR #c < :max")
            .expression_attribute_names("#c", counter)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":max", n(max))
            .expression_attribute_values(":et", s(entity_type))
            .expression_attribute_values(":exp", n(expires_at))
            .return_values(ReturnValue::UpdatedOld)
            .send()
            .await
            .map_err(classify);
        match result {
            Ok(out) => Ok(Some(out.attributes.as_ref().map_or(0, |old| number(old, counter)))),
            Err(e) if e.is_condition_failed() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Takes back reservations of `counters` at `key` (never below zero, never creating
    /// the item).
    async fn release_slots(&self, key: &keys::Key, counters: &[&str]) -> Result<(), StoreError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(key)))
            .expression_attribute_values(":minus", n(-1))
            .expression_attribute_values(":zero", n(0));
        let mut adds = Vec::new();
        let mut conditions = Vec::new();
        for (i, counter) in counters.iter().enumerate() {
            update = update.expression_attribute_names(format!("#c{i}"), *counter);
            adds.push(format!("#c{i} :minus"));
            conditions.push(format!("#c{i} > :zero"));
        }
        let result = update
            .update_expression(format!("ADD {}", adds.join(", ")))
            .condition_expression(conditions.join(" AND "))
            .send()
            .await
            .map_err(classify);
        match result {
            Err(e) if !e.is_condition_failed() => Err(e),
            _ => Ok(()),
        }
    }

    /// Reserves one attempt on the account `email` from `source` in `window`.
    pub async fn reserve_pair_attempt(
        &self,
        email: &str,
        source: &str,
        window: Window,
    ) -> Result<PairReservation, StoreError> {
        let key = keys::login_failures(window.index, source, email);
        let expires = window.ends_at + throttle::PAIR_WINDOW_SECS;
        Ok(
            match self
                .reserve_slot(
                    keys::LOGIN_FAILURES,
                    &key,
                    "failures",
                    throttle::PAIR_MAX_FAILURES,
                    expires,
                )
                .await?
            {
                Some(before) => PairReservation::Reserved { clean: before == 0 },
                None => PairReservation::Locked,
            },
        )
    }

    pub async fn release_pair_attempt(&self, email: &str, source: &str, window: Window) -> Result<(), StoreError> {
        self.release_slots(&keys::login_failures(window.index, source, email), &["failures"])
            .await
    }

    /// Reserves one attempt on the account `email` (all sources) at `now`. Below its
    /// limits this is one conditional `ADD`; past them, the attempt must take the
    /// account's next back-off slot (`next_at`), which one conditional write hands to
    /// exactly one of any number of concurrent attempts.
    pub async fn reserve_account_attempt(
        &self,
        email: &str,
        clean: bool,
        window: Window,
        now: i64,
    ) -> Result<AccountReservation, StoreError> {
        let key = keys::login_account(window.index, email);
        let expires = window.ends_at + throttle::ACCOUNT_WINDOW_SECS;
        // Clean sources spend the fresh-source budget; the others the failure budget.
        let (counter, max) = if clean {
            ("fresh", throttle::FRESH_SOURCE_LIMIT)
        } else {
            ("failures", throttle::ACCOUNT_SOFT_LIMIT)
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(&key)))
            .update_expression(if clean {
                "ADD failures :one, fresh :one SET entity_type = :et, expires_at = :exp"
            } else {
                "ADD failures :one SET entity_type = :et, expires_at = :exp"
            })
            .condition_expression("attribute_not_exists(#c) OR #c < :max")
            .expression_attribute_names("#c", counter)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":max", n(max))
            .expression_attribute_values(":et", s(keys::LOGIN_ACCOUNT))
            .expression_attribute_values(":exp", n(expires))
            .send()
            .await
            .map_err(classify);
        match result {
            Ok(_) => return Ok(AccountReservation::Reserved),
            Err(e) if e.is_condition_failed() => {}
            Err(e) => return Err(e),
        }
        // Backing off: read where the account stands, then take the slot if it is due.
        let item = self.get(&key).await?.unwrap_or_default();
        let next_at = signed(&item, "next_at");
        let delay = throttle::backoff_delay(number(&item, "failures"));
        if next_at > now {
            return Ok(AccountReservation::BackOff {
                retry_after_secs: u64::try_from(next_at - now).unwrap_or(1).max(1),
            });
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(&key)))
            .update_expression(if clean {
                "ADD failures :one, fresh :one SET next_at = :next"
            } else {
                "ADD failures :one SET next_at = :next"
            })
            .condition_expression("attribute_not_exists(next_at) OR next_at <= :now")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":next", n(now + delay.max(1)))
            .expression_attribute_values(":now", n(now))
            .send()
            .await
            .map_err(classify);
        match result {
            Ok(_) => Ok(AccountReservation::Reserved),
            // Another attempt took this slot a moment ago.
            Err(e) if e.is_condition_failed() => Ok(AccountReservation::BackOff {
                retry_after_secs: u64::try_from(delay).unwrap_or(1).max(1),
            }),
            Err(e) => Err(e),
        }
    }

    pub async fn release_account_attempt(&self, email: &str, clean: bool, window: Window) -> Result<(), StoreError> {
        let counters: &[&str] = if clean { &["failures", "fresh"] } else { &["failures"] };
        self.release_slots(&keys::login_account(window.index, email), counters)
            .await
    }

    /// Reserves one registration attempt from `source` (see `auth::register_throttle`):
    /// `false` when the source has used up its conflicting registrations.
    pub async fn reserve_registration(&self, source: &str, window: Window, max: u64) -> Result<bool, StoreError> {
        let expires = window.ends_at + throttle::PAIR_WINDOW_SECS;
        Ok(self
            .reserve_slot(
                keys::REGISTRATIONS,
                &keys::registrations(window.index, source),
                "conflicts",
                max,
                expires,
            )
            .await?
            .is_some())
    }
}
