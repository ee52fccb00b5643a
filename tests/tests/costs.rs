//! Cost tracking, budgets and policy approval: prices in the catalog, the estimate of
//! each request, accrual from `ready` to `deleted` over month boundaries, budgets and
//! their override, and approval policies.
//!
//! Accrual needs times the test controls: the app's clock is a manual one started at
//! a chosen moment, and the runner's steps (claim, outcome) are written through the
//! store with chosen timestamps, so no Terraform runs here.

mod common;

use common::{TestApp, TestUser};
use serde_json::{json, Value};
use shared::store::{Claim, RunOutcome};
use time::macros::datetime;
use uuid::Uuid;

const REQUESTS: &str = "/api/v1/requests";

struct World {
    app: TestApp,
    admin: TestUser,
    member: TestUser,
    team: String,
}

async fn world_at(start: time::OffsetDateTime) -> World {
    let app = TestApp::spawn_at_time(start).await;
    let admin = app.admin().await;
    let member = app.user().await;
    let team = app
        .team(&admin, &format!("team {}", &Uuid::new_v4().simple().to_string()[..8]))
        .await;
    app.add_member(&admin, &team, &member).await.expect(200);
    World {
        app,
        admin,
        member,
        team,
    }
}

impl World {
    /// Moves the clock on, and signs both in again (tokens live 60 minutes).
    async fn advance(&mut self, by: time::Duration) {
        self.app.clock.advance(by);
        self.admin.token = self.app.token(&self.admin.email, &self.admin.password).await;
        self.member.token = self.app.token(&self.member.email, &self.member.password).await;
    }
}

async fn world() -> World {
    world_at(time::OffsetDateTime::now_utc()).await
}

fn usd(amount: &str) -> Value {
    json!({ "amount": amount, "currency": "USD" })
}

async fn submit(w: &World, resource_type: &str, name: &str, parameters: Value) -> Value {
    w.app
        .post(
            REQUESTS,
            Some(&w.member.token),
            json!({ "resource_type": resource_type, "name": name, "parameters": parameters, "justification": "needed" }),
        )
        .await
        .expect(201)
        .json()
}

async fn approve(w: &World, id: &str, body: Value) -> common::Reply {
    w.app
        .post(&format!("{REQUESTS}/{id}/approve"), Some(&w.admin.token), body)
        .await
}

async fn set_budget(w: &World, amount: &str) {
    w.app
        .put(
            &format!("/api/v1/teams/{}/budget", w.team),
            Some(&w.admin.token),
            json!({ "monthly_limit": usd(amount) }),
        )
        .await
        .expect(200);
}

async fn policy(w: &World, body: Value) -> String {
    w.app
        .post("/api/v1/policies", Some(&w.admin.token), body)
        .await
        .expect(201)
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

/// Moves an approved request through the runner's steps at the given times.
async fn make_ready(w: &World, id: &str, claimed_at: &str, ready_at: &str) {
    common::ready_through_store(&w.app.app.store, id, claimed_at, ready_at).await;
}

/// The runner's destroy of a deleting request, claimed and finished at these times.
async fn destroy(w: &World, id: &str, claimed_at: &str, deleted_at: &str) {
    let store = &w.app.app.store;
    let rid: Uuid = id.parse().unwrap();
    let Claim::Claimed(claimed) = store
        .claim_job(rid, "runner-test", claimed_at, "2099-01-01T00:00:00.000000Z")
        .await
        .unwrap()
    else {
        panic!("the destroy of {id} could not be claimed");
    };
    assert!(store
        .finish_job(&claimed, "runner-test", &RunOutcome::Destroyed, deleted_at)
        .await
        .unwrap());
}

async fn team_costs(w: &World, month: &str) -> Value {
    w.app
        .get(
            &format!("/api/v1/teams/{}/costs?month={month}", w.team),
            Some(&w.admin.token),
        )
        .await
        .expect(200)
        .json()
}

fn resource<'a>(report: &'a Value, id: &str) -> Option<&'a Value> {
    report["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["request_id"] == id)
}

#[tokio::test]
async fn resource_types_show_their_prices_with_source_and_date() {
    let w = world().await;
    let types = w
        .app
        .get("/api/v1/resource-types", Some(&w.member.token))
        .await
        .expect(200)
        .json();
    let items = types["items"].as_array().unwrap();
    assert_eq!(items.len(), 6);
    for t in items {
        let p = &t["pricing"];
        assert_eq!(p["currency"], "USD", "{t}");
        assert!(
            p["source"].as_str().is_some_and(|s| s.contains("aws.amazon.com")),
            "{t}"
        );
        assert!(p["as_of"].as_str().is_some_and(|d| d.len() == 10), "{t}");
    }
    let pg = items.iter().find(|t| t["id"] == "postgres").unwrap();
    assert_eq!(pg["pricing"]["hourly"]["prices"]["db.t4g.micro"], "0.016");
    assert_eq!(pg["pricing"]["storage_gb_month"]["price"], "0.115");
    let s3 = items.iter().find(|t| t["id"] == "s3_bucket").unwrap();
    assert_eq!(s3["pricing"]["flat_monthly"], "1.50");
    assert!(s3["pricing"]["assumption"].as_str().is_some());
}

#[tokio::test]
async fn a_request_carries_its_estimate_in_itself_the_lists_and_the_review_queue() {
    let w = world().await;
    // db.t4g.micro 0.016 × 730 + 20 GB × 0.115.
    let small = submit(&w, "postgres", "small", json!({})).await;
    assert_eq!(small["estimated_monthly_cost"], usd("13.98"));
    // (0.065 × 730 + 100 × 0.115) × 2 for Multi-AZ.
    let big = submit(
        &w,
        "postgres",
        "big",
        json!({"instance_class": "db.t4g.medium", "storage_gb": 100, "multi_az": true}),
    )
    .await;
    assert_eq!(big["estimated_monthly_cost"], usd("117.90"));
    let id = id_of(&small);
    let one = w
        .app
        .get(&format!("{REQUESTS}/{id}"), Some(&w.member.token))
        .await
        .expect(200)
        .json();
    assert_eq!(one["estimated_monthly_cost"], usd("13.98"));
    // No budget: no budget check on the request.
    assert!(one.get("budget").is_none(), "{one}");
    let mine = w.app.get(REQUESTS, Some(&w.member.token)).await.expect(200).json();
    let listed = mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id.as_str())
        .unwrap();
    assert_eq!(listed["estimated_monthly_cost"], usd("13.98"));
    // The review queue is an index: it may lag for a moment.
    let mut queued = None;
    for _ in 0..40 {
        let queue = w
            .app
            .get("/api/v1/admin/requests/pending", Some(&w.admin.token))
            .await
            .expect(200)
            .json();
        queued = queue["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id.as_str())
            .cloned();
        if queued.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let queued = queued.expect("the request is in the review queue");
    assert_eq!(queued["estimated_monthly_cost"], usd("13.98"));
    let redis = submit(
        &w,
        "redis",
        "cache",
        json!({"node_type": "cache.t4g.small", "replicas": 2}),
    )
    .await;
    assert_eq!(redis["estimated_monthly_cost"], usd("70.08"));
}

#[tokio::test]
async fn a_budget_is_set_shown_on_the_team_views_and_removed() {
    let w = world().await;
    set_budget(&w, "500.00").await;
    let limit = json!({ "monthly_limit": usd("500.00") });
    let team = w
        .app
        .get(&format!("/api/v1/teams/{}", w.team), Some(&w.admin.token))
        .await
        .expect(200)
        .json();
    assert_eq!(team["budget"], limit);
    let mine = w
        .app
        .get("/api/v1/users/me/team", Some(&w.member.token))
        .await
        .expect(200)
        .json();
    assert_eq!(mine["budget"], limit);
    let list = w
        .app
        .get("/api/v1/teams", Some(&w.admin.token))
        .await
        .expect(200)
        .json();
    let listed = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == w.team.as_str())
        .unwrap();
    assert_eq!(listed["budget"], limit);
    // A rename keeps it.
    w.app
        .put(
            &format!("/api/v1/teams/{}", w.team),
            Some(&w.admin.token),
            json!({"name": "renamed team"}),
        )
        .await
        .expect(200);
    let team = w
        .app
        .get(&format!("/api/v1/teams/{}", w.team), Some(&w.admin.token))
        .await
        .expect(200)
        .json();
    assert_eq!(team["budget"], limit);
    w.app
        .delete(&format!("/api/v1/teams/{}/budget", w.team), Some(&w.admin.token))
        .await
        .expect(204);
    let team = w
        .app
        .get(&format!("/api/v1/teams/{}", w.team), Some(&w.admin.token))
        .await
        .expect(200)
        .json();
    assert_eq!(team["budget"], Value::Null);
    // Removing it again is harmless; an unknown team is 404.
    w.app
        .delete(&format!("/api/v1/teams/{}/budget", w.team), Some(&w.admin.token))
        .await
        .expect(204);
    let unknown = Uuid::new_v4();
    w.app
        .put(
            &format!("/api/v1/teams/{unknown}/budget"),
            Some(&w.admin.token),
            json!({"monthly_limit": usd("1.00")}),
        )
        .await
        .expect(404);
    w.app
        .delete(&format!("/api/v1/teams/{unknown}/budget"), Some(&w.admin.token))
        .await
        .expect(404);
    w.app
        .put(
            "/api/v1/teams/not-a-uuid/budget",
            Some(&w.admin.token),
            json!({"monthly_limit": usd("1.00")}),
        )
        .await
        .expect(404);
}

#[tokio::test]
async fn bad_amounts_are_refused_with_422_naming_the_field() {
    let w = world().await;
    let path = format!("/api/v1/teams/{}/budget", w.team);
    for (body, field) in [
        (json!({"monthly_limit": usd("-1.00")}), Some("monthly_limit.amount")),
        (json!({"monthly_limit": usd("10.001")}), Some("monthly_limit.amount")),
        (json!({"monthly_limit": usd("abc")}), Some("monthly_limit.amount")),
        (json!({"monthly_limit": usd("1e3")}), Some("monthly_limit.amount")),
        (json!({"monthly_limit": usd("")}), Some("monthly_limit.amount")),
        (json!({"monthly_limit": usd(" 5")}), Some("monthly_limit.amount")),
        (
            json!({"monthly_limit": usd("1000000000.01")}),
            Some("monthly_limit.amount"),
        ),
        (
            json!({"monthly_limit": {"amount": "5.00", "currency": "EUR"}}),
            Some("monthly_limit.currency"),
        ),
        (json!({"monthly_limit": {"amount": 500, "currency": "USD"}}), None),
        (json!({"monthly_limit": {"amount": "5.00"}}), None),
        (
            json!({"monthly_limit": {"amount": "5.00", "currency": "USD", "x": 1}}),
            None,
        ),
        (json!({"limit": usd("5.00")}), None),
        (json!({}), None),
    ] {
        let reply = w.app.put(&path, Some(&w.admin.token), body.clone()).await.expect(422);
        if let Some(field) = field {
            assert_eq!(reply.json()["errors"][0]["field"], field, "{body}");
        }
    }
    // Nothing was set.
    let team = w
        .app
        .get(&format!("/api/v1/teams/{}", w.team), Some(&w.admin.token))
        .await
        .expect(200)
        .json();
    assert_eq!(team["budget"], Value::Null);
    // Policies: an unknown type or a bad limit is 422, an unknown team 404.
    for (body, field) in [
        (
            json!({"resource_type": "oracle", "max_monthly_cost": usd("1.00")}),
            "resource_type",
        ),
        (
            json!({"resource_type": "postgres", "max_monthly_cost": usd("-1")}),
            "max_monthly_cost.amount",
        ),
        (
            json!({"resource_type": "postgres", "max_monthly_cost": {"amount": "1", "currency": "GBP"}}),
            "max_monthly_cost.currency",
        ),
    ] {
        let reply = w
            .app
            .post("/api/v1/policies", Some(&w.admin.token), body.clone())
            .await
            .expect(422);
        assert_eq!(reply.json()["errors"][0]["field"], field, "{body}");
    }
    w.app
        .post(
            "/api/v1/policies",
            Some(&w.admin.token),
            json!({"resource_type": "postgres", "max_monthly_cost": usd("1"), "team_id": Uuid::new_v4()}),
        )
        .await
        .expect(404);
    w.app
        .post(
            "/api/v1/policies",
            Some(&w.admin.token),
            json!({"resource_type": "postgres", "max_monthly_cost": usd("1"), "extra": 1}),
        )
        .await
        .expect(422);
    let policies = w
        .app
        .get("/api/v1/policies", Some(&w.admin.token))
        .await
        .expect(200)
        .json();
    assert_eq!(policies["items"], json!([]));
    w.app
        .delete(&format!("/api/v1/policies/{}", Uuid::new_v4()), Some(&w.admin.token))
        .await
        .expect(404);
}

#[tokio::test]
async fn a_request_over_budget_is_flagged_and_its_approval_needs_an_override() {
    let w = world().await;
    set_budget(&w, "20.00").await;
    let first = submit(&w, "postgres", "first", json!({})).await;
    assert_eq!(
        first["budget"],
        json!({"within": true, "limit": usd("20.00"), "committed": usd("0.00"), "after": usd("13.98")})
    );
    approve(&w, &id_of(&first), json!({})).await.expect(200);
    // The approved one now counts: a second takes the team to 27.96.
    let second = submit(&w, "postgres", "second", json!({})).await;
    assert_eq!(
        second["budget"],
        json!({"within": false, "limit": usd("20.00"), "committed": usd("13.98"), "after": usd("27.96")})
    );
    let id = id_of(&second);
    let refused = approve(&w, &id, json!({"comment": "please"})).await.expect(409);
    let detail = refused.json()["detail"].as_str().unwrap().to_string();
    assert!(
        detail.contains("27.96 USD") && detail.contains("20.00 USD") && detail.contains("override_budget"),
        "{detail}"
    );
    // Still pending; an override needs a comment.
    approve(&w, &id, json!({"override_budget": true})).await.expect(422);
    approve(&w, &id, json!({"override_budget": "yes", "comment": "x"}))
        .await
        .expect(422);
    let still = w
        .app
        .get(&format!("{REQUESTS}/{id}"), Some(&w.admin.token))
        .await
        .expect(200)
        .json();
    assert_eq!(still["status"], "pending");
    let approved = approve(&w, &id, json!({"override_budget": true, "comment": "launch week"}))
        .await
        .expect(200)
        .json();
    assert_eq!(approved["status"], "approved");
    let step = approved["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(step["by"], w.admin.id.as_str());
    let comment = step["comment"].as_str().unwrap();
    assert!(
        comment.contains("budget override") && comment.contains("27.96 USD") && comment.contains("launch week"),
        "{comment}"
    );
    // The job was written with the approval, as for any approval.
    assert!(w.app.app.store.get_job(id.parse().unwrap()).await.unwrap().is_some());
    // Without a budget the same approval needs nothing.
    w.app
        .delete(&format!("/api/v1/teams/{}/budget", w.team), Some(&w.admin.token))
        .await
        .expect(204);
    let third = submit(&w, "postgres", "third", json!({})).await;
    assert!(third.get("budget").is_none());
    approve(&w, &id_of(&third), json!({})).await.expect(200);
}

#[tokio::test]
async fn an_override_is_refused_on_a_request_that_is_not_pending() {
    let w = world().await;
    set_budget(&w, "1.00").await;
    let r = submit(&w, "postgres", "db", json!({})).await;
    let id = id_of(&r);
    w.app
        .post(
            &format!("{REQUESTS}/{id}/reject"),
            Some(&w.admin.token),
            json!({"reason": "no"}),
        )
        .await
        .expect(200);
    let reply = approve(&w, &id, json!({"override_budget": true, "comment": "x"}))
        .await
        .expect(409);
    assert!(reply.json()["detail"].as_str().unwrap().contains("rejected"));
}

#[tokio::test]
async fn a_request_just_under_a_policy_limit_is_approved_by_the_system_with_its_job() {
    let w = world().await;
    let pid = policy(
        &w,
        json!({"resource_type": "postgres", "max_monthly_cost": usd("13.99")}),
    )
    .await;
    let r = submit(&w, "postgres", "db", json!({})).await;
    assert_eq!(r["status"], "approved", "{r}");
    let history = r["history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["to"], "pending");
    assert_eq!(history[1]["to"], "approved");
    assert_eq!(history[1]["by"], "system");
    assert!(history[1]["comment"].as_str().unwrap().contains(&pid), "{r}");
    let id: Uuid = id_of(&r).parse().unwrap();
    let job = w.app.app.store.get_job(id).await.unwrap().expect("the approval's job");
    assert_eq!(job.status, shared::model::JobStatus::Queued);
    // As stored.
    let stored = w
        .app
        .get(&format!("{REQUESTS}/{id}"), Some(&w.member.token))
        .await
        .expect(200)
        .json();
    assert_eq!(stored["status"], "approved");
    // At the limit itself too.
    let w2 = world().await;
    policy(
        &w2,
        json!({"resource_type": "postgres", "max_monthly_cost": usd("13.98")}),
    )
    .await;
    assert_eq!(submit(&w2, "postgres", "db", json!({})).await["status"], "approved");
}

#[tokio::test]
async fn a_request_just_over_a_policy_limit_waits_for_an_admin() {
    let w = world().await;
    policy(
        &w,
        json!({"resource_type": "postgres", "max_monthly_cost": usd("13.97")}),
    )
    .await;
    // Another type's policy and another team's policy do not apply either.
    policy(&w, json!({"resource_type": "mysql", "max_monthly_cost": usd("100.00")})).await;
    let other_team = w.app.team(&w.admin, "other team").await;
    policy(
        &w,
        json!({"resource_type": "postgres", "max_monthly_cost": usd("100.00"), "team_id": other_team}),
    )
    .await;
    let r = submit(&w, "postgres", "db", json!({})).await;
    assert_eq!(r["status"], "pending", "{r}");
    assert!(w
        .app
        .app
        .store
        .get_job(id_of(&r).parse().unwrap())
        .await
        .unwrap()
        .is_none());
    // The team's own policy does.
    policy(
        &w,
        json!({"resource_type": "postgres", "max_monthly_cost": usd("14.00"), "team_id": w.team}),
    )
    .await;
    assert_eq!(submit(&w, "postgres", "db2", json!({})).await["status"], "approved");
}

#[tokio::test]
async fn a_team_over_its_budget_is_not_approved_by_policy() {
    let w = world().await;
    policy(
        &w,
        json!({"resource_type": "postgres", "max_monthly_cost": usd("100.00")}),
    )
    .await;
    set_budget(&w, "20.00").await;
    let first = submit(&w, "postgres", "first", json!({})).await;
    assert_eq!(first["status"], "approved", "within budget: {first}");
    let second = submit(&w, "postgres", "second", json!({})).await;
    assert_eq!(second["status"], "pending", "{second}");
    assert_eq!(second["budget"]["within"], false);
    assert_eq!(second["budget"]["after"], usd("27.96"));
}

#[tokio::test]
async fn a_deleted_policy_no_longer_applies() {
    let w = world().await;
    let pid = policy(
        &w,
        json!({"resource_type": "s3_bucket", "max_monthly_cost": usd("5.00")}),
    )
    .await;
    let listed = w
        .app
        .get("/api/v1/policies", Some(&w.admin.token))
        .await
        .expect(200)
        .json();
    assert_eq!(listed["items"][0]["id"], pid.as_str());
    assert_eq!(listed["items"][0]["max_monthly_cost"], usd("5.00"));
    assert_eq!(listed["items"][0]["team_id"], Value::Null);
    assert_eq!(submit(&w, "s3_bucket", "one", json!({})).await["status"], "approved");
    w.app
        .delete(&format!("/api/v1/policies/{pid}"), Some(&w.admin.token))
        .await
        .expect(204);
    assert_eq!(submit(&w, "s3_bucket", "two", json!({})).await["status"], "pending");
    w.app
        .delete(&format!("/api/v1/policies/{pid}"), Some(&w.admin.token))
        .await
        .expect(404);
    let listed = w
        .app
        .get("/api/v1/policies", Some(&w.admin.token))
        .await
        .expect(200)
        .json();
    assert_eq!(listed["items"], json!([]));
}

/// A Redis node of cache.m7g.large and no replica: 0.158 USD an hour exactly, so the
/// figures below are hours × 0.158.
fn m7g() -> Value {
    json!({"node_type": "cache.m7g.large"})
}

#[tokio::test]
async fn accrual_runs_from_ready_to_deleted_across_month_boundaries() {
    // Submitted and approved on the last day of January.
    let mut w = world_at(datetime!(2027-01-31 20:00 UTC)).await;
    let r = submit(&w, "redis", "cache", m7g()).await;
    assert_eq!(r["estimated_monthly_cost"], usd("115.34"));
    let id = id_of(&r);
    approve(&w, &id, json!({})).await.expect(200);
    // Provisioning from 22:00, ready at 22:30: an hour and a half before February.
    make_ready(&w, &id, "2027-01-31T22:00:00.000000Z", "2027-01-31T22:30:00.000000Z").await;

    w.advance(time::Duration::days(9) + time::Duration::hours(4)).await; // 2027-02-10T00:00
    let january = team_costs(&w, "2027-01").await;
    let res = resource(&january, &id).expect("live in January");
    assert_eq!(res["month_to_date"], usd("0.237"));
    assert_eq!(res["forecast"], usd("0.237"), "January is over");
    assert_eq!(res["hours"], "1.50");
    assert_eq!(january["totals"]["month_to_date"], usd("0.237"));
    let february = team_costs(&w, "2027-02").await;
    let res = resource(&february, &id).unwrap();
    // 9 days so far; the whole 28-day month if it stays.
    assert_eq!(res["month_to_date"], usd("34.128"));
    assert_eq!(res["forecast"], usd("106.176"));
    assert_eq!(res["status"], "ready");
    assert_eq!(february["committed_monthly"], usd("115.34"));
    assert!(february["basis"].as_str().unwrap().starts_with("estimate"));
    // The default month is the clock's.
    let default = w
        .app
        .get(&format!("/api/v1/teams/{}/costs", w.team), Some(&w.admin.token))
        .await
        .expect(200)
        .json();
    assert_eq!(default["month"], "2027-02");
    assert_eq!(default["totals"], february["totals"]);

    // Deleted mid-month: the delete at 00:00, the destroy done at 02:00.
    w.app
        .post(&format!("{REQUESTS}/{id}/delete"), Some(&w.member.token), json!({}))
        .await
        .expect(202);
    destroy(&w, &id, "2027-02-10T01:00:00.000000Z", "2027-02-10T02:00:00.000000Z").await;
    w.advance(time::Duration::days(10)).await;
    let february = team_costs(&w, "2027-02").await;
    let res = resource(&february, &id).unwrap();
    // 9 days and 2 hours: deleting still accrues, deleted does not.
    assert_eq!(res["status"], "deleted");
    assert_eq!(res["month_to_date"], usd("34.444"));
    assert_eq!(res["forecast"], usd("34.444"));
    assert_eq!(february["committed_monthly"], usd("0.00"));
    // Neither before it existed nor after it was deleted.
    for month in ["2026-12", "2027-03"] {
        let report = team_costs(&w, month).await;
        assert!(resource(&report, &id).is_none(), "{month}: {report}");
        assert_eq!(
            report["totals"],
            json!({"month_to_date": usd("0.00"), "forecast": usd("0.00")})
        );
    }
    // The member sees the same through their own team, the admin overview adds it up.
    let mine = w
        .app
        .get("/api/v1/users/me/team/costs?month=2027-02", Some(&w.member.token))
        .await
        .expect(200)
        .json();
    assert_eq!(mine["totals"], february["totals"]);
    assert_eq!(mine["team_id"], w.team.as_str());
    let all = w
        .app
        .get("/api/v1/admin/costs?month=2027-02", Some(&w.admin.token))
        .await
        .expect(200)
        .json();
    let teams = all["teams"].as_array().unwrap();
    let ours = teams.iter().find(|t| t["team_id"] == w.team.as_str()).unwrap();
    assert_eq!(ours["totals"], february["totals"]);
    assert_eq!(
        all["totals"],
        json!({"month_to_date": usd("34.444"), "forecast": usd("34.444")})
    );
}

#[tokio::test]
async fn a_request_created_on_the_last_day_and_ready_the_next_month_costs_nothing_in_the_first() {
    let mut w = world_at(datetime!(2027-03-31 23:30 UTC)).await;
    let r = submit(&w, "redis", "late", m7g()).await;
    let id = id_of(&r);
    approve(&w, &id, json!({})).await.expect(200);
    make_ready(&w, &id, "2027-03-31T23:45:00.000000Z", "2027-04-01T00:30:00.000000Z").await;
    w.advance(time::Duration::hours(3)).await; // 2027-04-01T02:30
    let march = team_costs(&w, "2027-03").await;
    assert!(resource(&march, &id).is_none(), "{march}");
    let april = team_costs(&w, "2027-04").await;
    let res = resource(&april, &id).unwrap();
    // Two hours so far; 30 days less half an hour in all.
    assert_eq!(res["month_to_date"], usd("0.316"));
    assert_eq!(res["forecast"], usd("113.681"));
}

#[tokio::test]
async fn two_resources_add_up_and_a_failed_apply_accrues_nothing_but_is_committed() {
    let mut w = world_at(datetime!(2027-05-01 00:00 UTC)).await;
    let a = id_of(&submit(&w, "redis", "a", m7g()).await);
    let b = id_of(&submit(&w, "redis", "b", m7g()).await);
    let failed = id_of(&submit(&w, "redis", "c", m7g()).await);
    for id in [&a, &b, &failed] {
        approve(&w, id, json!({})).await.expect(200);
    }
    make_ready(&w, &a, "2027-05-01T00:00:00.000000Z", "2027-05-01T00:00:00.000000Z").await;
    make_ready(&w, &b, "2027-05-01T00:00:00.000000Z", "2027-05-01T10:00:00.000000Z").await;
    let store = &w.app.app.store;
    let Claim::Claimed(claimed) = store
        .claim_job(
            failed.parse().unwrap(),
            "runner-test",
            "2027-05-01T00:00:00.000000Z",
            "2099-01-01T00:00:00.000000Z",
        )
        .await
        .unwrap()
    else {
        panic!("claim");
    };
    let outcome = RunOutcome::Failed {
        error: "boom".into(),
        retry_at: None,
    };
    assert!(store
        .finish_job(&claimed, "runner-test", &outcome, "2027-05-01T01:00:00.000000Z")
        .await
        .unwrap());
    w.advance(time::Duration::days(1)).await; // 2027-05-02T00:00
    let may = team_costs(&w, "2027-05").await;
    assert_eq!(may["resources"].as_array().unwrap().len(), 2, "{may}");
    assert!(resource(&may, &failed).is_none());
    // 24 h + 14 h so far; 744 h + 734 h in all.
    assert_eq!(may["totals"]["month_to_date"], usd("6.004"));
    assert_eq!(may["totals"]["forecast"], usd("233.524"));
    // The failed one may hold resources: it counts towards the run-rate.
    assert_eq!(may["committed_monthly"], usd("346.02"));
}

#[tokio::test]
async fn cost_queries_refuse_bad_months_and_unknown_teams() {
    let w = world().await;
    for bad in [
        "2027-13",
        "2027-1",
        "2027-00",
        "27-01",
        "abc",
        "",
        "2027-01-01",
        "1999-12",
    ] {
        w.app
            .get(
                &format!("/api/v1/teams/{}/costs?month={bad}", w.team),
                Some(&w.admin.token),
            )
            .await
            .expect(400);
        w.app
            .get(&format!("/api/v1/admin/costs?month={bad}"), Some(&w.admin.token))
            .await
            .expect(400);
        w.app
            .get(
                &format!("/api/v1/users/me/team/costs?month={bad}"),
                Some(&w.member.token),
            )
            .await
            .expect(400);
    }
    w.app
        .get(
            &format!("/api/v1/teams/{}/costs?month=2027-01&month=2027-02", w.team),
            Some(&w.admin.token),
        )
        .await
        .expect(400);
    w.app
        .get(
            &format!("/api/v1/teams/{}/costs?year=2027", w.team),
            Some(&w.admin.token),
        )
        .await
        .expect(400);
    w.app
        .get(&format!("/api/v1/teams/{}/costs", Uuid::new_v4()), Some(&w.admin.token))
        .await
        .expect(404);
    w.app
        .get("/api/v1/teams/nope/costs", Some(&w.admin.token))
        .await
        .expect(404);
    // A user in no team has no team costs.
    let loner = w.app.user().await;
    w.app
        .get("/api/v1/users/me/team/costs", Some(&loner.token))
        .await
        .expect(404);
    // A new team costs nothing.
    let report = team_costs(&w, "2027-01").await;
    assert_eq!(report["resources"], json!([]));
    assert_eq!(report["budget"], Value::Null);
}
