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

/// Sends raw bytes to the dev server and reads until it closes the connection.
async fn raw_exchange(app: &TestApp, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    // The server may answer (and close) before it has read everything.
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

fn assert_problem(answer: &str, status: u16) {
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no head: {answer:?}"));
    assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{head}");
    let head = head.to_ascii_lowercase();
    assert!(head.contains("content-type: application/problem+json"), "{head}");
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    let body: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}"));
    assert_eq!(body["status"], status);
    assert_eq!(body["type"], "about:blank");
}

#[tokio::test]
async fn oversized_uris_and_heads_get_problem_json_from_the_dev_server() {
    let app = TestApp::spawn().await;
    let long_uri = format!("GET /health?{} HTTP/1.1\r\nhost: x\r\n\r\n", "a".repeat(70_000));
    assert_problem(&raw_exchange(&app, long_uri.as_bytes()).await, 414);
    let big_head = format!(
        "GET /health HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
        "b".repeat(600_000)
    );
    assert_problem(&raw_exchange(&app, big_head.as_bytes()).await, 431);
    // Also on a kept-alive connection, after a normal request.
    let both = format!("GET /health HTTP/1.1\r\nhost: x\r\n\r\n{big_head}");
    let answer = raw_exchange(&app, both.as_bytes()).await;
    let second = answer
        .match_indices("HTTP/1.1 ")
        .nth(1)
        .map(|(i, _)| &answer[i..])
        .unwrap_or_else(|| panic!("two answers: {answer:?}"));
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    assert_problem(second, 431);
    // A request hyper cannot parse at all.
    assert_problem(
        &raw_exchange(&app, b"GET /health HTTP/1.1\r\nbad header\r\n\r\n").await,
        400,
    );
}

#[tokio::test]
async fn the_docs_page_has_a_strict_content_security_policy_and_no_inline_script() {
    let app = TestApp::spawn().await;
    let page = app.get("/docs", None).await.expect(200);
    let csp = page.header("content-security-policy").expect("CSP").to_string();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "frame-ancestors 'none'",
        "connect-src 'self'",
    ] {
        assert!(csp.contains(directive), "{directive} missing: {csp}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert!(!page.text.contains("<script>"), "inline script: {}", page.text);
    for asset in ["swagger-ui-bundle.js", "swagger-ui.css", "swagger-init.js"] {
        assert!(page.text.contains(&format!("docs/{asset}")), "{asset} not on the page");
        let reply = app.get(&format!("/docs/{asset}"), None).await.expect(200);
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
        assert!(reply.header("content-security-policy").is_some());
    }
}

#[tokio::test]
async fn every_kind_of_response_is_nosniff() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let replies = [
        app.get("/health", None).await,
        app.get("/openapi.json", None).await,
        app.get("/api/v1/auth/me", Some(&admin.token)).await,
        app.get("/api/v1/auth/me", None).await,
        app.get("/api/v1/nothing-here", None).await,
        app.send(Method::DELETE, "/health", None, None).await,
        app.post("/api/v1/auth/logout", Some(&admin.token), json!({})).await,
    ];
    for reply in replies {
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"), "{reply:?}");
    }
}

#[tokio::test]
async fn unknown_and_repeated_query_parameters_are_400() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let team = app.team(&admin, "Q").await;
    for path in [
        "/api/v1/teams?limit=5&limt=6".to_string(),
        "/api/v1/teams?limit=5&limit=6".to_string(),
        "/api/v1/teams?cursor=".to_string(),
        format!("/api/v1/teams/{team}?verbose=1"),
        "/api/v1/auth/me?x".to_string(),
        "/api/v1/users?team_id=%7B00000000-0000-0000-0000-000000000000%7D".to_string(),
        "/api/v1/users?team_id=00000000000000000000000000000000".to_string(),
        format!("/api/v1/users?team_id=%20{team}"),
        format!("/api/v1/users?team_id=urn:uuid:{team}"),
        "/api/v1/users?email=not-an-email".to_string(),
        "/api/v1/users?email=".to_string(),
        format!("/api/v1/users?email=a@b.co&team_id={team}"),
        "/api/v1/requests?scope=everything".to_string(),
        "/api/v1/requests?status=".to_string(),
        "/health?probe=1".to_string(),
    ] {
        let reply = app.get(&path, Some(&admin.token)).await;
        assert_eq!(reply.status.as_u16(), 400, "{path}: {}", reply.text);
    }
    // Malformed ids in the path stay 404, whatever the form.
    app.get(&format!("/api/v1/teams/{{{team}}}"), Some(&admin.token))
        .await
        .expect(404);
    app.get(&format!("/api/v1/teams/{}", team.to_uppercase()), Some(&admin.token))
        .await
        .expect(200);
    // Anonymous callers learn nothing about parameters: 401 first.
    app.get("/api/v1/teams?nope=1", None).await.expect(401);
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
