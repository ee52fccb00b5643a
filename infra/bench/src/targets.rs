//! The targets every figure is printed beside, and the documented DynamoDB round
//! trips per route.

use std::time::Duration;

/// A function's initialisation (process start to its first `/next` call).
pub const INIT: Duration = Duration::from_millis(20);

/// Our code per warm request, DynamoDB excluded, at p99 — for every route but login
/// and register, whose argon2 work is expensive by design.
pub const OUR_CODE_P99: Duration = Duration::from_millis(1);

/// Routes exempt from [`OUR_CODE_P99`]: they hash or verify a password (argon2id,
/// m=19456 KiB, t=2, p=1).
pub const ARGON2_ROUTES: &[&str] = &["POST /api/v1/auth/register", "POST /api/v1/auth/login"];

/// Peak resident memory of a function process (Lambda memory sizes are in MiB).
pub const PEAK_RSS_BYTES: u64 = 64 * 1024 * 1024;

/// Peak resident memory after [`LOGIN_ROUTE`] ran 250 times (`BENCH_LOGINS`), in the dev
/// server and in the `auth` function: argon2's 19 MiB work memory is reused, not
/// freed to an allocator that keeps it.
pub const LOGIN_PEAK_RSS_BYTES: u64 = 32 * 1024 * 1024;

/// The route of [`LOGIN_PEAK_RSS_BYTES`].
pub const LOGIN_ROUTE: &str = "POST /api/v1/auth/login";

/// Each deployment zip (checked by scripts/bench.sh; decimal megabytes, the stricter
/// reading).
pub const ZIP_BYTES: u64 = 6_000_000;

/// DynamoDB round trips per route as documented in docs/data-model.md, section 4
/// ("Access patterns", column RT: *sequential* round trips; requests sent
/// concurrently count as one, as in the proxy's `DdbStats::round_trips`), for the
/// successful case the bench exercises. Every non-public route's count includes the
/// authentication `GetItem`. Keep in step with that table.
pub const DOCUMENTED_ROUND_TRIPS: &[(&str, u32)] = &[
    ("GET /health", 0),
    ("POST /api/v1/auth/register", 2), // throttle reservation (beside the hash), then the transaction
    ("POST /api/v1/auth/login", 3),    // "success 3"
    ("GET /api/v1/auth/me", 1),
    ("GET /api/v1/teams", 2),
    ("GET /api/v1/teams/{id}", 2),
    ("GET /api/v1/users/me/team/members", 2),
];

/// The documented round trips of a route (by route key).
pub fn documented_round_trips(route: &str) -> Option<u32> {
    DOCUMENTED_ROUND_TRIPS
        .iter()
        .find(|(r, _)| *r == route)
        .map(|(_, n)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_route_exists() {
        for (route, _) in DOCUMENTED_ROUND_TRIPS {
            assert!(shared::routes::by_key(route).is_some(), "{route}");
        }
        assert!(ARGON2_ROUTES.contains(&LOGIN_ROUTE));
        for route in ARGON2_ROUTES {
            assert!(documented_round_trips(route).is_some(), "{route}");
        }
        assert_eq!(documented_round_trips("GET /nowhere"), None);
    }
}
