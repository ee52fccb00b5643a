//! Every route, called by each kind of caller: anonymous, a plain user, a user of
//! another team, and an admin. A route missing from the matrix fails the test, so new
//! routes cannot skip their authorization check.

mod common;

use common::{TestApp, TestUser, PASSWORD};
use reqwest::Method;
use serde_json::{json, Value};
use shared::routes::ROUTES;

/// The world each route is tried in: team A with `member`, team B with `other`, an
/// admin without a team and a `target` user for the user-management routes.
struct World {
    app: TestApp,
    admin: TestUser,
    member: TestUser,
    other: TestUser,
    target: TestUser,
    team_a: String,
    /// A pending request of `member`'s.
    request: String,
    /// An approval policy (for mysql, which nothing here asks for).
    policy: String,
}

async fn world() -> World {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let (member, other, target) = (app.user().await, app.user().await, app.user().await);
    let team_a = app.team(&admin, "team a").await;
    let team_b = app.team(&admin, "team b").await;
    app.add_member(&admin, &team_a, &member).await.expect(200);
    app.add_member(&admin, &team_b, &other).await.expect(200);
    let request = app
        .post(
            "/api/v1/requests",
            Some(&member.token),
            json!({ "resource_type": "s3_bucket", "name": "assets", "justification": "static files" }),
        )
        .await
        .expect(201)
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let policy = app
        .post(
            "/api/v1/policies",
            Some(&admin.token),
            json!({ "resource_type": "mysql", "max_monthly_cost": { "amount": "10.00", "currency": "USD" } }),
        )
        .await
        .expect(201)
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    World {
        app,
        admin,
        member,
        other,
        target,
        team_a,
        request,
        policy,
    }
}

/// A valid age X25519 recipient (the example of age's own documentation).
const AGE_RECIPIENT: &str = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";

/// Expected statuses for anonymous, member, other-team user, admin.
fn expectations(key: &str) -> Option<[u16; 4]> {
    Some(match key {
        "GET /health" | "GET /docs" | "GET /docs/{file}" | "GET /openapi.json" => [200, 200, 200, 200],
        "POST /api/v1/auth/register" => [201, 201, 201, 201],
        "POST /api/v1/auth/login" => [200, 200, 200, 200],
        "GET /api/v1/auth/me" => [401, 200, 200, 200],
        "POST /api/v1/auth/logout" => [401, 204, 204, 204],
        "PUT /api/v1/users/me/password" => [401, 204, 204, 204],
        "GET /api/v1/users/me/team" | "GET /api/v1/users/me/team/members" => [401, 200, 200, 404],
        // The admin is in no team.
        "GET /api/v1/users/me/team/costs" => [401, 200, 200, 404],
        "PUT /api/v1/teams/{id}/budget" | "GET /api/v1/teams/{id}/costs" | "GET /api/v1/admin/costs" => {
            [401, 403, 403, 200]
        }
        "DELETE /api/v1/teams/{id}/budget" => [401, 403, 403, 204],
        "POST /api/v1/policies" => [401, 403, 403, 201],
        "GET /api/v1/policies" => [401, 403, 403, 200],
        "DELETE /api/v1/policies/{id}" => [401, 403, 403, 204],
        "GET /api/v1/users" | "GET /api/v1/users/{id}" | "PATCH /api/v1/users/{id}" => [401, 403, 403, 200],
        "DELETE /api/v1/users/{id}" => [401, 403, 403, 204],
        "POST /api/v1/teams" => [401, 403, 403, 201],
        "GET /api/v1/teams" | "GET /api/v1/teams/{id}" | "PUT /api/v1/teams/{id}" => [401, 403, 403, 200],
        // The team has the member's pending request: it cannot be deleted yet.
        "DELETE /api/v1/teams/{id}" => [401, 403, 403, 409],
        "POST /api/v1/teams/{id}/members" => [401, 403, 403, 200],
        "DELETE /api/v1/teams/{id}/members/{user_id}" => [401, 403, 403, 204],
        "GET /api/v1/resource-types" | "GET /api/v1/requests" => [401, 200, 200, 200],
        // The admin is in no team: only team members can request.
        "POST /api/v1/requests" => [401, 201, 201, 403],
        // The other team's user cannot see the member's request at all.
        "GET /api/v1/requests/{id}" => [401, 200, 404, 200],
        // The member cancels it first, so the admin then finds it no longer pending.
        "POST /api/v1/requests/{id}/cancel" => [401, 200, 404, 409],
        "POST /api/v1/requests/{id}/approve" | "POST /api/v1/requests/{id}/reject" => [401, 403, 403, 200],
        "GET /api/v1/admin/requests/pending" => [401, 403, 403, 200],
        // The request is pending, not failed: the admin may retry, but not this one.
        "POST /api/v1/requests/{id}/retry" => [401, 403, 403, 409],
        "GET /api/v1/requests/{id}/logs" => [401, 403, 403, 200],
        // Only the owning team reads credentials (admins get 404); the member's
        // request is pending, not ready.
        "GET /api/v1/requests/{id}/credentials" => [401, 409, 404, 404],
        // Pending, and an s3_bucket: nothing to rotate (the admin may see it, so 409).
        "POST /api/v1/requests/{id}/credentials/rotate" => [401, 409, 404, 409],
        // The member's request is pending: there is nothing to delete yet.
        "POST /api/v1/requests/{id}/delete" => [401, 409, 404, 409],
        // The requester and admins extend (each round asks for a later expiry).
        "POST /api/v1/requests/{id}/extend" => [401, 200, 404, 200],
        "PUT /api/v1/users/me/public-key" => [401, 200, 200, 200],
        "DELETE /api/v1/users/me/public-key" => [401, 204, 204, 204],
        "GET /api/v1/audit" | "GET /api/v1/audit/verify" | "GET /api/v1/audit/export" => [401, 403, 403, 200],
        // Members read their own team's events; the admin is in no team.
        "GET /api/v1/users/me/team/audit" => [401, 200, 200, 404],
        "GET /api/v1/users/me/notifications" | "PUT /api/v1/users/me/notifications" => [401, 200, 200, 200],
        "POST /api/v1/webhooks" => [401, 403, 403, 201],
        "GET /api/v1/webhooks" | "GET /api/v1/admin/notifications" => [401, 403, 403, 200],
        // No webhook has the target user's id.
        "DELETE /api/v1/webhooks/{id}" => [401, 403, 403, 404],
        _ => return None,
    })
}

/// The concrete path and a valid body for a route, for the caller at `round`.
fn request(w: &World, path: &str, key: &str, round: usize) -> (String, Option<Value>) {
    let id = if path.starts_with("/api/v1/teams") {
        &w.team_a
    } else if path.starts_with("/api/v1/requests") {
        &w.request
    } else if path.starts_with("/api/v1/policies") {
        &w.policy
    } else {
        &w.target.id
    };
    let concrete = path.replace("{id}", id);
    let concrete = concrete
        .replace("{user_id}", &w.member.id)
        .replace("{file}", "swagger-ui.css");
    let body = match key {
        "POST /api/v1/auth/register" => {
            Some(json!({ "email": format!("new{round}@example.com"), "password": PASSWORD }))
        }
        "POST /api/v1/auth/login" => Some(json!({ "email": w.target.email, "password": PASSWORD })),
        "POST /api/v1/auth/logout" => Some(json!({})),
        "PUT /api/v1/users/me/password" => {
            Some(json!({ "current_password": PASSWORD, "new_password": "a brand new passphrase" }))
        }
        "PATCH /api/v1/users/{id}" => Some(json!({ "is_admin": true })),
        "PUT /api/v1/users/me/public-key" => Some(json!({ "age_recipient": AGE_RECIPIENT })),
        "PUT /api/v1/users/me/notifications" => Some(json!({ "notifications": { "request_ready": false } })),
        "POST /api/v1/webhooks" => Some(json!({ "url": "http://127.0.0.1:9/hook", "events": ["request_ready"] })),
        "POST /api/v1/teams" => Some(json!({ "name": format!("new team {round}") })),
        "PUT /api/v1/teams/{id}" => Some(json!({ "description": "updated" })),
        "POST /api/v1/teams/{id}/members" => Some(json!({ "user_id": w.target.id })),
        "POST /api/v1/requests" => Some(json!({
            "resource_type": "postgres", "name": format!("db-{round}"), "justification": "orders service"
        })),
        "POST /api/v1/requests/{id}/reject" => Some(json!({ "reason": "use the shared bucket" })),
        "PUT /api/v1/teams/{id}/budget" => Some(json!({ "monthly_limit": { "amount": "500.00", "currency": "USD" } })),
        "POST /api/v1/policies" => Some(json!({
            "resource_type": "postgres", "max_monthly_cost": { "amount": "20.00", "currency": "USD" }
        })),
        "POST /api/v1/requests/{id}/extend" => {
            let at = time::OffsetDateTime::now_utc() + time::Duration::days(1 + round as i64);
            Some(json!({ "expires_at": shared::clock::format_timestamp(at) }))
        }
        _ => None,
    };
    (concrete, body)
}

#[tokio::test]
async fn every_route_answers_each_kind_of_caller_as_expected() {
    let mut missing = Vec::new();
    let mut failures = Vec::new();
    for route in ROUTES {
        let key = route.key();
        let Some(expected) = expectations(&key) else {
            missing.push(key);
            continue;
        };
        let w = world().await;
        let callers: [Option<&str>; 4] = [None, Some(&w.member.token), Some(&w.other.token), Some(&w.admin.token)];
        for (round, (token, want)) in callers.iter().zip(expected).enumerate() {
            let (path, body) = request(&w, route.path, &key, round);
            let method = Method::from_bytes(route.method.as_bytes()).unwrap();
            let got = w.app.send(method, &path, *token, body).await;
            if got.status.as_u16() != want {
                let who = ["anonymous", "member", "other-team user", "admin"][round];
                failures.push(format!(
                    "{key} as {who}: expected {want}, got {} {}",
                    got.status, got.text
                ));
            }
        }
    }
    assert!(missing.is_empty(), "routes missing from the access matrix: {missing:?}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
