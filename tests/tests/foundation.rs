//! The skeleton: health, 404/405, body limits, the route table against
//! `template.yaml`, the table created from the template, real API Gateway events.

mod common;

use common::TestApp;
use lambda_http::{request::LambdaRequest, Body};
use reqwest::Method;
use serde_json::json;
use shared::routes::ROUTES;
use std::collections::BTreeSet;

#[tokio::test]
async fn health_answers_ok_without_a_token() {
    let app = TestApp::spawn().await;
    let reply = app.get("/health", None).await.expect(200);
    assert_eq!(reply.json(), json!({ "status": "ok" }));
}

#[tokio::test]
async fn unknown_path_is_a_problem_404() {
    let app = TestApp::spawn().await;
    let reply = app.get("/api/v1/nothing-here", None).await.expect(404);
    let body = reply.json();
    assert_eq!(body["status"], 404);
    assert_eq!(body["title"], "Not Found");
}

#[tokio::test]
async fn known_path_with_wrong_method_is_405_with_allow() {
    let app = TestApp::spawn().await;
    let reply = app.send(Method::DELETE, "/health", None, None).await.expect(405);
    assert_eq!(reply.header("allow"), Some("GET"));
    let reply = app
        .send(
            Method::PATCH,
            "/api/v1/teams/6f1c0b8e-3f55-4c2e-9d0a-1b2c3d4e5f60",
            None,
            None,
        )
        .await
        .expect(405);
    assert_eq!(reply.header("allow"), Some("DELETE, GET, PUT"));
}

#[tokio::test]
async fn wrong_content_type_malformed_and_oversized_bodies_are_4xx() {
    let app = TestApp::spawn().await;
    let url = app.url("/api/v1/auth/register");
    let plain = app.http.post(&url).header("content-type", "text/plain").body("{}");
    app.finish(plain).await.expect(415);
    let broken = app
        .http
        .post(&url)
        .header("content-type", "application/json")
        .body("{\"email\":");
    app.finish(broken).await.expect(400);
    let huge = format!("{{\"email\":\"{}\",\"password\":\"x\"}}", "a".repeat(20_000));
    let big = app
        .http
        .post(&url)
        .header("content-type", "application/json")
        .body(huge);
    app.finish(big).await.expect(413);
    let binary = app
        .http
        .post(&url)
        .header("content-type", "application/json")
        .body(vec![0xff, 0xfe, 0x00, 0x01]);
    app.finish(binary).await.expect(400);
}

#[test]
fn template_routes_match_the_route_table() {
    let template = devserver::template::load(&devserver::template::default_path()).expect("template.yaml");
    let declared: BTreeSet<(String, String, String)> = devserver::template::routes(&template)
        .expect("routes")
        .into_iter()
        .filter(|r| r.path != "$default")
        .map(|r| (r.function, r.method, r.path))
        .collect();
    let in_code: BTreeSet<(String, String, String)> = ROUTES
        .iter()
        .map(|r| (r.function.to_string(), r.method.to_string(), r.path.to_string()))
        .collect();
    let only_template: Vec<_> = declared.difference(&in_code).collect();
    let only_code: Vec<_> = in_code.difference(&declared).collect();
    assert!(
        only_template.is_empty() && only_code.is_empty(),
        "template.yaml and shared::routes::ROUTES differ\n only in template: {only_template:?}\n only in code: {only_code:?}"
    );
}

#[test]
fn template_sends_unmatched_requests_to_the_docs_function() {
    let template = devserver::template::load(&devserver::template::default_path()).expect("template.yaml");
    let routes = devserver::template::routes(&template).expect("routes");
    let default: Vec<_> = routes.iter().filter(|r| r.path == "$default").collect();
    assert_eq!(default.len(), 1, "exactly one $default route");
    assert_eq!(default[0].function, "docs");
}

#[test]
fn the_request_time_budget_fits_in_the_lambda_timeout() {
    let template = devserver::template::load(&devserver::template::default_path()).expect("template.yaml");
    let globals = &template["Globals"]["Function"]["Timeout"];
    assert_eq!(
        globals.as_u64(),
        Some(shared::app::LAMBDA_TIMEOUT.as_secs()),
        "Globals.Function.Timeout of template.yaml and shared::app::LAMBDA_TIMEOUT differ"
    );
    // No function overrides it with something shorter than the request deadline.
    for (name, resource) in template["Resources"].as_mapping().expect("resources") {
        if let Some(timeout) = resource["Properties"]["Timeout"].as_u64() {
            assert!(
                timeout > shared::app::REQUEST_DEADLINE.as_secs(),
                "{name:?}: Timeout {timeout} s is not above the request deadline"
            );
        }
    }
}

#[test]
fn every_route_has_exactly_one_handler_in_its_function() {
    let routers = devserver::routers();
    let mut served = BTreeSet::new();
    for router in routers.values() {
        for key in router.route_keys() {
            assert!(served.insert(key.clone()), "{key} served twice");
        }
    }
    let table: BTreeSet<String> = ROUTES.iter().map(|r| r.key()).collect();
    assert_eq!(served, table, "routes without a handler, or handlers without a route");
}

#[tokio::test]
async fn the_table_is_created_from_the_template_definition() {
    let app = TestApp::spawn().await;
    let table = app
        .app
        .store
        .client()
        .describe_table()
        .table_name(&app.table)
        .send()
        .await
        .expect("describe")
        .table
        .expect("table");
    let keys: Vec<String> = table
        .key_schema()
        .iter()
        .map(|k| k.attribute_name().to_string())
        .collect();
    assert_eq!(keys, ["PK", "SK"]);
    let mut created: Vec<&str> = table
        .global_secondary_indexes()
        .iter()
        .filter_map(|g| g.index_name())
        .collect();
    created.sort();
    let template = devserver::template::load(&devserver::template::default_path()).expect("template.yaml");
    let mut declared: Vec<&str> = devserver::template::table_properties(&template).expect("Table")
        ["GlobalSecondaryIndexes"]
        .as_sequence()
        .expect("indexes")
        .iter()
        .filter_map(|g| g["IndexName"].as_str())
        .collect();
    declared.sort();
    assert_eq!(created, declared);
    assert_eq!(created, ["GSI1", "GSI2", "GSI3"]);
    // Creating it again is harmless.
    let again = devserver::table::create_from_template(
        app.app.store.client(),
        &app.table,
        &devserver::template::default_path(),
    )
    .await
    .expect("idempotent");
    assert!(!again);
}

fn fixture(name: &str) -> lambda_http::Request {
    let path = format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).expect("fixture");
    let event: LambdaRequest = serde_json::from_str(&text).expect("an API Gateway v2 event");
    event.into()
}

fn text(resp: &lambda_http::Response<Body>) -> String {
    match resp.body() {
        Body::Text(t) => t.clone(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn real_api_gateway_events_reach_the_handlers() {
    let app = TestApp::spawn().await;
    let docs = docs_function::router();
    let resp = docs.handle(app.app.clone(), fixture("apigw-v2-health.json")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(text(&resp), r#"{"status":"ok"}"#);
    // The $default route with a named stage: the stage prefix is not part of the path.
    let resp = docs
        .handle(app.app.clone(), fixture("apigw-v2-default-route.json"))
        .await;
    assert_eq!(resp.status(), 405, "{}", text(&resp));
    assert_eq!(resp.headers()["allow"], "DELETE, GET, PUT");
}
