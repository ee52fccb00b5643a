//! The retry schedule of a delivery: exponential back-off from `base`, at most an
//! hour apart, up to `max_attempts` sends; then the delivery is `failed` (and shown
//! to admins).

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait after the first failed attempt; doubled after each further one.
    pub base: Duration,
    /// Attempts in all (the first send included).
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    /// 30 s, 1, 2, 4, 8, 16, 32 min: 8 attempts over about an hour.
    fn default() -> Self {
        Self {
            base: Duration::from_secs(30),
            max_attempts: 8,
        }
    }
}

/// The longest wait between two attempts.
pub const MAX_WAIT: Duration = Duration::from_secs(3600);

impl RetryPolicy {
    /// The wait after attempt number `attempts` failed (1 = the first send), or `None`
    /// when it was the last allowed.
    pub fn after_failure(&self, attempts: u32) -> Option<Duration> {
        if attempts >= self.max_attempts {
            return None;
        }
        let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(16));
        Some(self.base.saturating_mul(factor).min(MAX_WAIT))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_exponentially_then_gives_up() {
        let p = RetryPolicy::default();
        assert_eq!(p.after_failure(1), Some(Duration::from_secs(30)));
        assert_eq!(p.after_failure(2), Some(Duration::from_secs(60)));
        assert_eq!(p.after_failure(7), Some(Duration::from_secs(1920)));
        assert_eq!(p.after_failure(8), None);
        let long = RetryPolicy {
            base: Duration::from_secs(600),
            max_attempts: 100,
        };
        assert_eq!(long.after_failure(50), Some(MAX_WAIT));
    }
}
