//! The route table: every route of the API, the function that serves it and who may
//! call it. The single source of truth for the routers, the dev server and the
//! 404/405 answers; a test checks it against `template.yaml`.

use crate::auth::Access;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteSpec {
    /// The function (binary) that serves the route.
    pub function: &'static str,
    pub method: &'static str,
    /// Path template in API Gateway syntax (`/teams/{id}`).
    pub path: &'static str,
    pub access: Access,
    /// The query parameters the route takes; the router answers 400 to any other, and
    /// to any of these given twice.
    pub query: &'static [&'static str],
}

impl RouteSpec {
    /// API Gateway's route key: `"GET /api/v1/teams/{id}"`.
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

const fn route(function: &'static str, method: &'static str, path: &'static str, access: Access) -> RouteSpec {
    RouteSpec {
        function,
        method,
        path,
        access,
        query: &[],
    }
}

impl RouteSpec {
    const fn with_query(mut self, query: &'static [&'static str]) -> Self {
        self.query = query;
        self
    }
}

/// The query parameters of every list.
const PAGE: &[&str] = &["limit", "cursor"];

/// The query parameter of the costs routes.
const MONTH: &[&str] = &["month"];

use Access::{Admin, Public, User};

pub const ROUTES: &[RouteSpec] = &[
    route("docs", "GET", "/health", Public),
    route("docs", "GET", "/docs", Public),
    route("docs", "GET", "/docs/{file}", Public),
    route("docs", "GET", "/openapi.json", Public),
    route("auth", "POST", "/api/v1/auth/register", Public),
    route("auth", "POST", "/api/v1/auth/login", Public),
    route("auth", "GET", "/api/v1/auth/me", User),
    route("auth", "POST", "/api/v1/auth/logout", User),
    route("users", "PUT", "/api/v1/users/me/password", User),
    route("users", "GET", "/api/v1/users/me/team", User),
    route("users", "GET", "/api/v1/users/me/team/members", User).with_query(PAGE),
    route("users", "GET", "/api/v1/users/me/team/costs", User).with_query(MONTH),
    route("users", "GET", "/api/v1/users", Admin).with_query(&["limit", "cursor", "team_id", "email"]),
    route("users", "GET", "/api/v1/users/{id}", Admin),
    route("users", "PATCH", "/api/v1/users/{id}", Admin),
    route("users", "DELETE", "/api/v1/users/{id}", Admin),
    route("users", "PUT", "/api/v1/users/me/public-key", User),
    route("users", "DELETE", "/api/v1/users/me/public-key", User),
    route("users", "GET", "/api/v1/users/me/notifications", User),
    route("users", "PUT", "/api/v1/users/me/notifications", User),
    route("users", "POST", "/api/v1/webhooks", Admin),
    route("users", "GET", "/api/v1/webhooks", Admin).with_query(PAGE),
    route("users", "DELETE", "/api/v1/webhooks/{id}", Admin),
    route("users", "GET", "/api/v1/admin/notifications", Admin).with_query(&["limit", "cursor", "status"]),
    route("teams", "POST", "/api/v1/teams", Admin),
    route("teams", "GET", "/api/v1/teams", Admin).with_query(PAGE),
    route("teams", "GET", "/api/v1/teams/{id}", Admin),
    route("teams", "PUT", "/api/v1/teams/{id}", Admin),
    route("teams", "DELETE", "/api/v1/teams/{id}", Admin),
    route("teams", "POST", "/api/v1/teams/{id}/members", Admin),
    route("teams", "DELETE", "/api/v1/teams/{id}/members/{user_id}", Admin),
    route("teams", "PUT", "/api/v1/teams/{id}/budget", Admin),
    route("teams", "DELETE", "/api/v1/teams/{id}/budget", Admin),
    route("teams", "GET", "/api/v1/teams/{id}/costs", Admin).with_query(MONTH),
    route("teams", "GET", "/api/v1/admin/costs", Admin).with_query(MONTH),
    route("requests", "GET", "/api/v1/resource-types", User),
    route("requests", "POST", "/api/v1/requests", User),
    route("requests", "GET", "/api/v1/requests", User).with_query(&["limit", "cursor", "scope", "status", "team_id"]),
    route("requests", "GET", "/api/v1/requests/{id}", User),
    route("requests", "POST", "/api/v1/requests/{id}/cancel", User),
    route("requests", "POST", "/api/v1/requests/{id}/approve", Admin),
    route("requests", "POST", "/api/v1/requests/{id}/reject", Admin),
    route("requests", "POST", "/api/v1/requests/{id}/retry", Admin),
    route("requests", "POST", "/api/v1/requests/{id}/delete", User),
    route("requests", "POST", "/api/v1/requests/{id}/extend", User),
    route("requests", "GET", "/api/v1/requests/{id}/logs", Admin).with_query(PAGE),
    route("requests", "GET", "/api/v1/requests/{id}/credentials", User),
    route("requests", "POST", "/api/v1/requests/{id}/credentials/rotate", User),
    route("requests", "GET", "/api/v1/admin/requests/pending", Admin).with_query(PAGE),
    route("audit", "GET", "/api/v1/audit", Admin).with_query(&[
        "limit",
        "cursor",
        "actor",
        "action",
        "target_type",
        "target_id",
        "team_id",
        "from",
        "to",
    ]),
    route("audit", "GET", "/api/v1/audit/verify", Admin),
    route("audit", "GET", "/api/v1/audit/export", Admin).with_query(&["from", "to", "limit", "cursor"]),
    route("audit", "GET", "/api/v1/users/me/team/audit", User).with_query(&[
        "limit",
        "cursor",
        "actor",
        "action",
        "target_type",
        "target_id",
        "from",
        "to",
    ]),
    route("requests", "POST", "/api/v1/policies", Admin),
    route("requests", "GET", "/api/v1/policies", Admin).with_query(PAGE),
    route("requests", "DELETE", "/api/v1/policies/{id}", Admin),
];

/// Looks a route up by its API Gateway route key.
pub fn by_key(key: &str) -> Option<&'static RouteSpec> {
    ROUTES.iter().find(|r| r.key() == key)
}

/// Matches a template against a concrete path; returns the path parameters and the
/// number of literal segments (more literals = more specific, as API Gateway ranks).
fn match_template(template: &str, path: &str) -> Option<(HashMap<String, String>, usize)> {
    let t: Vec<&str> = template.trim_matches('/').split('/').collect();
    let p: Vec<&str> = path.trim_matches('/').split('/').collect();
    if t.len() != p.len() {
        return None;
    }
    let mut params = HashMap::new();
    let mut literals = 0;
    for (ts, ps) in t.iter().zip(&p) {
        if let Some(name) = ts.strip_prefix('{').and_then(|n| n.strip_suffix('}')) {
            if ps.is_empty() {
                return None;
            }
            params.insert(name.to_string(), (*ps).to_string());
        } else if ts == ps {
            literals += 1;
        } else {
            return None;
        }
    }
    Some((params, literals))
}

/// How a request resolves against the route table.
#[derive(Debug)]
pub enum Resolution {
    Found(&'static RouteSpec, HashMap<String, String>),
    /// The path exists but not with this method; `allow` lists the methods it has.
    MethodNotAllowed {
        allow: Vec<String>,
    },
    NotFound,
}

/// Resolves a method and path the way API Gateway picks a route: the most specific
/// matching template wins.
pub fn resolve(method: &str, path: &str) -> Resolution {
    let mut best: Option<(&'static RouteSpec, HashMap<String, String>, usize)> = None;
    let mut allow: Vec<String> = Vec::new();
    for spec in ROUTES {
        let Some((params, literals)) = match_template(spec.path, path) else {
            continue;
        };
        if !allow.iter().any(|m| m == spec.method) {
            allow.push(spec.method.to_string());
        }
        if spec.method.eq_ignore_ascii_case(method) && best.as_ref().is_none_or(|b| literals > b.2) {
            best = Some((spec, params, literals));
        }
    }
    match best {
        Some((spec, params, _)) => Resolution::Found(spec, params),
        None if allow.is_empty() => Resolution::NotFound,
        None => {
            allow.sort();
            Resolution::MethodNotAllowed { allow }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_keys_are_unique() {
        let mut keys: Vec<String> = ROUTES.iter().map(RouteSpec::key).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), ROUTES.len());
    }

    #[test]
    fn literal_segments_beat_parameters() {
        match resolve("GET", "/api/v1/users/me/team") {
            Resolution::Found(spec, _) => assert_eq!(spec.path, "/api/v1/users/me/team"),
            other => panic!("{other:?}"),
        }
        match resolve("GET", "/api/v1/teams/abc/") {
            Resolution::Found(spec, params) => {
                assert_eq!(spec.path, "/api/v1/teams/{id}");
                assert_eq!(params["id"], "abc");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn wrong_method_lists_allowed_methods() {
        match resolve("POST", "/api/v1/teams/abc") {
            Resolution::MethodNotAllowed { allow } => assert_eq!(allow, ["DELETE", "GET", "PUT"]),
            other => panic!("{other:?}"),
        }
        assert!(matches!(resolve("GET", "/nope"), Resolution::NotFound));
        assert!(matches!(resolve("GET", "/api/v1/teams//members"), Resolution::NotFound));
    }
}
