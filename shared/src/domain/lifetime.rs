//! How long a resource lives: a catalog type may cap it (`max_lifetime_days`), a
//! request may ask for an `expires_at`, and an extension moves it later. When the time
//! comes the platform deletes the resource by itself (see [`crate::expiry`]).
//!
//! The cap is a rolling window: an expiry (asked at submission or by an extension) is
//! at most `max_lifetime_days` after the moment it is asked, so a sandbox lives on
//! only while someone keeps extending it.

use crate::model::RequestStatus;
use time::{Duration, OffsetDateTime};

/// An expiry the rules do not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifetimeError {
    #[error("must be in the future")]
    NotInFuture,
    #[error("must be at most {max_days} days from now (the type's maximum lifetime)")]
    BeyondMaximum { max_days: u32 },
    #[error("must be later than the current expiry")]
    NotLater,
    #[error("the request is {}; only requests that are not being deleted or closed can be extended", .0.as_str())]
    NotExtendable(RequestStatus),
}

impl LifetimeError {
    /// Whether the problem is with the request's state (a conflict) rather than with
    /// the value asked for (a validation error).
    pub fn is_state(&self) -> bool {
        matches!(self, Self::NotExtendable(_))
    }
}

/// The expiry of a new request: the one asked for, within the type's maximum; when
/// none is asked, the maximum itself (a type with a maximum never lives forever).
pub fn initial_expiry(
    asked: Option<OffsetDateTime>,
    max_days: Option<u32>,
    now: OffsetDateTime,
) -> Result<Option<OffsetDateTime>, LifetimeError> {
    match (asked, max_days) {
        (None, None) => Ok(None),
        (None, Some(days)) => Ok(Some(now + Duration::days(i64::from(days)))),
        (Some(at), max) => within(at, max, now).map(Some),
    }
}

/// A new expiry for a request in `status` whose expiry is `current`.
pub fn extended_expiry(
    status: RequestStatus,
    current: Option<OffsetDateTime>,
    asked: OffsetDateTime,
    max_days: Option<u32>,
    now: OffsetDateTime,
) -> Result<OffsetDateTime, LifetimeError> {
    if !may_expire(status) {
        return Err(LifetimeError::NotExtendable(status));
    }
    let at = within(asked, max_days, now)?;
    if current.is_some_and(|c| at <= c) {
        return Err(LifetimeError::NotLater);
    }
    Ok(at)
}

fn within(at: OffsetDateTime, max_days: Option<u32>, now: OffsetDateTime) -> Result<OffsetDateTime, LifetimeError> {
    if at <= now {
        return Err(LifetimeError::NotInFuture);
    }
    if let Some(days) = max_days {
        if at > now + Duration::days(i64::from(days)) {
            return Err(LifetimeError::BeyondMaximum { max_days: days });
        }
    }
    Ok(at)
}

/// Whether a request in this status still has an expiry that matters: anything that
/// has, or will have, a resource and is not already going away.
pub fn may_expire(status: RequestStatus) -> bool {
    use RequestStatus::*;
    matches!(status, Pending | Approved | Provisioning | Ready | Failed)
}

/// What the expiry sweep does with a request whose time has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnExpiry {
    /// Delete the resource (by the system).
    Delete,
    /// Cancel the request: it expired before anyone approved it.
    Cancel,
    /// Look again later: its apply is under way.
    Wait,
    /// Nothing left to do: forget the expiry.
    Forget,
}

pub fn on_expiry(status: RequestStatus) -> OnExpiry {
    use RequestStatus::*;
    match status {
        Ready | Failed => OnExpiry::Delete,
        Pending => OnExpiry::Cancel,
        Approved | Provisioning => OnExpiry::Wait,
        Rejected | Cancelled | Deleting | Deleted => OnExpiry::Forget,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;
    use RequestStatus::*;

    const NOW: OffsetDateTime = datetime!(2026-03-31 23:00 UTC);

    #[test]
    fn a_type_without_a_maximum_lives_until_asked_otherwise() {
        assert_eq!(initial_expiry(None, None, NOW), Ok(None));
        let far = NOW + Duration::days(3650);
        assert_eq!(initial_expiry(Some(far), None, NOW), Ok(Some(far)));
    }

    #[test]
    fn a_type_with_a_maximum_defaults_to_it_and_caps_what_is_asked() {
        let max = NOW + Duration::days(30);
        assert_eq!(initial_expiry(None, Some(30), NOW), Ok(Some(max)));
        assert_eq!(initial_expiry(Some(max), Some(30), NOW), Ok(Some(max)));
        assert_eq!(
            initial_expiry(Some(max + Duration::seconds(1)), Some(30), NOW),
            Err(LifetimeError::BeyondMaximum { max_days: 30 })
        );
    }

    #[test]
    fn an_expiry_is_in_the_future() {
        for at in [NOW, NOW - Duration::seconds(1)] {
            assert_eq!(initial_expiry(Some(at), None, NOW), Err(LifetimeError::NotInFuture));
            assert_eq!(
                extended_expiry(Ready, None, at, Some(30), NOW),
                Err(LifetimeError::NotInFuture)
            );
        }
    }

    #[test]
    fn an_extension_moves_later_within_a_rolling_maximum() {
        let current = NOW + Duration::days(2);
        let later = NOW + Duration::days(30);
        assert_eq!(extended_expiry(Ready, Some(current), later, Some(30), NOW), Ok(later));
        assert_eq!(
            extended_expiry(Ready, Some(later), current, Some(30), NOW),
            Err(LifetimeError::NotLater)
        );
        assert_eq!(
            extended_expiry(Ready, Some(current), current, Some(30), NOW),
            Err(LifetimeError::NotLater)
        );
        assert_eq!(
            extended_expiry(Ready, Some(current), later + Duration::seconds(1), Some(30), NOW),
            Err(LifetimeError::BeyondMaximum { max_days: 30 })
        );
        // A request with no expiry may be given one.
        assert_eq!(extended_expiry(Ready, None, current, None, NOW), Ok(current));
    }

    #[test]
    fn only_live_requests_can_be_extended() {
        let at = NOW + Duration::days(1);
        for status in RequestStatus::ALL {
            let result = extended_expiry(status, None, at, None, NOW);
            if may_expire(status) {
                assert_eq!(result, Ok(at), "{status:?}");
            } else {
                let err = result.unwrap_err();
                assert_eq!(err, LifetimeError::NotExtendable(status));
                assert!(err.is_state());
            }
        }
    }

    #[test]
    fn the_sweep_deletes_resources_cancels_pending_and_waits_for_applies() {
        for status in RequestStatus::ALL {
            let want = match status {
                Ready | Failed => OnExpiry::Delete,
                Pending => OnExpiry::Cancel,
                Approved | Provisioning => OnExpiry::Wait,
                _ => OnExpiry::Forget,
            };
            assert_eq!(on_expiry(status), want, "{status:?}");
            // Whatever may expire is acted on or waited for; the rest is forgotten.
            assert_eq!(may_expire(status), want != OnExpiry::Forget, "{status:?}");
        }
    }
}
