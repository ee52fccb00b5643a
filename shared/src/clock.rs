//! Time source. Production uses the system clock; tests use a [`Clock::manual`] clock
//! they can move forward (token expiry, login throttling windows).

use std::sync::{Arc, Mutex};
use time::{format_description::FormatItem, macros::format_description, OffsetDateTime};

#[derive(Clone, Debug, Default)]
pub enum Clock {
    #[default]
    System,
    Manual(Arc<Mutex<OffsetDateTime>>),
}

impl Clock {
    pub fn manual(start: OffsetDateTime) -> Self {
        Self::Manual(Arc::new(Mutex::new(start)))
    }

    pub fn now(&self) -> OffsetDateTime {
        match self {
            Self::System => OffsetDateTime::now_utc(),
            Self::Manual(t) => *t.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }

    /// Moves a manual clock forward; a no-op on the system clock.
    pub fn advance(&self, by: time::Duration) {
        if let Self::Manual(t) = self {
            let mut guard = t.lock().unwrap_or_else(|e| e.into_inner());
            *guard += by;
        }
    }
}

/// RFC 3339 UTC with a fixed six-digit fraction, so timestamps sort as strings
/// (they are part of sort keys).
const TIMESTAMP: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

pub fn format_timestamp(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(TIMESTAMP)
        .unwrap_or_else(|_| "1970-01-01T00:00:00.000000Z".into())
}

/// Parses an RFC 3339 timestamp (any offset), as clients send them.
pub fn parse_timestamp(raw: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn parsed_timestamps_round_trip_through_the_stored_format() {
        let t = parse_timestamp("2027-01-31T01:00:00+01:00").unwrap();
        assert_eq!(format_timestamp(t), "2027-01-31T00:00:00.000000Z");
        assert_eq!(parse_timestamp(&format_timestamp(t)), Some(t));
        for bad in ["", "2027-01-31", "tomorrow", "2027-13-01T00:00:00Z"] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn timestamps_have_fixed_width_and_sort_as_strings() {
        let a = format_timestamp(datetime!(2026-01-02 03:04:05 UTC));
        let b = format_timestamp(datetime!(2026-01-02 03:04:05.5 UTC));
        assert_eq!(a, "2026-01-02T03:04:05.000000Z");
        assert_eq!(b, "2026-01-02T03:04:05.500000Z");
        assert!(a < b);
    }

    #[test]
    fn manual_clock_advances() {
        let clock = Clock::manual(datetime!(2026-01-01 00:00 UTC));
        clock.advance(time::Duration::minutes(5));
        assert_eq!(clock.now(), datetime!(2026-01-01 00:05 UTC));
    }
}
