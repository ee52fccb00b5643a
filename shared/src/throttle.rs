//! The password-guessing throttle, a domain rule used by `auth::Attempt` and the
//! store: a policy that an attacker cannot aim at someone else (ASVS: anti-automation
//! that does not enable malicious lockout).
//!
//! Failed password checks (login, and the current password of a password change) are
//! counted atomically in DynamoDB (`store::login`), at two levels:
//!
//! 1. **Per account and source** (the source is the client IP that API Gateway
//!    reports; IPv6 addresses by their /64, which one client usually owns whole):
//!    [`PAIR_MAX_FAILURES`] failures per [`PAIR_WINDOW_SECS`]-second window, then 429
//!    for *that source only* until the window ends. This is the tight limit a single
//!    guesser meets, and it cannot touch anybody else.
//! 2. **Per account, all sources together**, per [`ACCOUNT_WINDOW_SECS`] window: a
//!    much looser limit with back-off instead of a wall. Up to
//!    [`ACCOUNT_SOFT_LIMIT`] failures nothing happens; past it, attempts are spaced by
//!    [`backoff_delay`] (1 s, doubling every [`BACKOFF_STEP`] failures, at most
//!    [`BACKOFF_MAX_SECS`]): one attempt per delay, the others 429 with a
//!    `Retry-After` of the remaining wait.
//!
//! A source with no failure on the account in the current pair window is *clean*: its
//! attempts do not wait for the account's back-off, so the owner signing in from
//! their usual place is not held up by somebody else's guessing. Clean attempts have
//! a budget of their own, [`FRESH_SOURCE_LIMIT`] per account window, so a guesser
//! with many addresses cannot use it to get around the account limit: past it, clean
//! sources back off too (still never a wall: the longest wait is
//! [`BACKOFF_MAX_SECS`]). A correct password gives its reservations back.
//!
//! So one account sees at most about 100 + 100 + 90 ≈ 290 password checks an hour,
//! however many addresses guess, and its owner, from a clean source, is never kept
//! out by others until more than 100 distinct sources failed on it within the hour;
//! even then only for the back-off delay. API Gateway's route throttle on login
//! (burst 10, 5 requests/s) applies on top.

use std::net::IpAddr;

/// Failures per account and source in one pair window.
pub const PAIR_MAX_FAILURES: u64 = 10;
/// Length of a pair window (fixed, aligned to the Unix epoch).
pub const PAIR_WINDOW_SECS: i64 = 15 * 60;
/// Length of an account window.
pub const ACCOUNT_WINDOW_SECS: i64 = 60 * 60;
/// Failures per account window (all sources) before the back-off starts.
pub const ACCOUNT_SOFT_LIMIT: u64 = 100;
/// Attempts from clean sources per account window that skip the back-off.
pub const FRESH_SOURCE_LIMIT: u64 = 100;
/// The back-off delay doubles after this many further failures.
pub const BACKOFF_STEP: u64 = 10;
/// The longest back-off delay.
pub const BACKOFF_MAX_SECS: i64 = 120;
/// Registrations of an email that is taken (409) per source and pair window.
pub const REGISTRATION_MAX_CONFLICTS: u64 = 10;

/// A fixed throttling window that a moment falls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub index: i64,
    /// Unix time at which the window ends.
    pub ends_at: i64,
}

impl Window {
    pub fn at(unix_time: i64, length: i64) -> Self {
        let index = unix_time.div_euclid(length);
        Self {
            index,
            ends_at: (index + 1) * length,
        }
    }

    /// Seconds from `now` to the end of the window, at least 1 (for `Retry-After`).
    pub fn retry_after(&self, now: i64) -> u64 {
        u64::try_from(self.ends_at - now).unwrap_or(1).max(1)
    }
}

/// Seconds between attempts on an account that has had `failures` failures this
/// window: 0 below the soft limit, then 1, 2, 4, … doubling every [`BACKOFF_STEP`]
/// failures, at most [`BACKOFF_MAX_SECS`].
pub fn backoff_delay(failures: u64) -> i64 {
    let Some(over) = failures.checked_sub(ACCOUNT_SOFT_LIMIT) else {
        return 0;
    };
    let doublings = u32::try_from(over / BACKOFF_STEP).unwrap_or(u32::MAX).min(16);
    (1i64 << doublings).min(BACKOFF_MAX_SECS)
}

/// The throttling key of a client address: IPv4 as is, IPv6 by its /64 prefix
/// (IPv4-mapped IPv6 as the IPv4 address). No or an unreadable address (never from
/// API Gateway) shares the one key `unknown`.
pub fn source_key(ip: Option<&str>) -> String {
    match ip.and_then(|ip| ip.trim().parse::<IpAddr>().ok()) {
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        None => "unknown".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_aligned_and_end_in_the_future() {
        let w = Window::at(1_000_000, PAIR_WINDOW_SECS);
        assert_eq!(w.index, 1_000_000 / PAIR_WINDOW_SECS);
        assert!(w.ends_at > 1_000_000 && w.ends_at - 1_000_000 <= PAIR_WINDOW_SECS);
        assert_eq!(Window::at(w.ends_at, PAIR_WINDOW_SECS).index, w.index + 1);
        assert_eq!(w.retry_after(w.ends_at), 1);
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff_delay(0), 0);
        assert_eq!(backoff_delay(ACCOUNT_SOFT_LIMIT - 1), 0);
        assert_eq!(backoff_delay(ACCOUNT_SOFT_LIMIT), 1);
        assert_eq!(backoff_delay(ACCOUNT_SOFT_LIMIT + BACKOFF_STEP), 2);
        assert_eq!(backoff_delay(ACCOUNT_SOFT_LIMIT + 3 * BACKOFF_STEP + 9), 8);
        assert_eq!(backoff_delay(ACCOUNT_SOFT_LIMIT + 1000), BACKOFF_MAX_SECS);
        assert_eq!(backoff_delay(u64::MAX), BACKOFF_MAX_SECS);
    }

    #[test]
    fn an_hours_attempts_are_bounded_whatever_the_number_of_sources() {
        // Beyond both limits, the back-off admits one attempt per delay.
        let (mut t, mut admitted) = (0i64, 0u64);
        while t < ACCOUNT_WINDOW_SECS {
            t += backoff_delay(ACCOUNT_SOFT_LIMIT + admitted);
            admitted += 1;
        }
        let bound = ACCOUNT_SOFT_LIMIT + FRESH_SOURCE_LIMIT + admitted;
        assert!(bound < 300, "{bound}");
    }

    #[test]
    fn sources_are_keyed_by_address_and_ipv6_by_its_64() {
        assert_eq!(source_key(Some("203.0.113.7")), "203.0.113.7");
        assert_eq!(source_key(Some("2001:db8:1:2:3:4:5:6")), "2001:db8:1:2::/64");
        assert_eq!(source_key(Some("2001:db8:1:2:ffff::1")), "2001:db8:1:2::/64");
        assert_eq!(source_key(Some("::ffff:198.51.100.1")), "198.51.100.1");
        assert_eq!(source_key(Some("not an ip")), "unknown");
        assert_eq!(source_key(None), "unknown");
    }
}
