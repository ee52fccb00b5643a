//! API Gateway (HTTP API, payload v2) events for the benchmarks, built by the dev
//! server's own event builder so the functions get the same shape as under
//! `make run` — and as on AWS.

use shared::routes::{self, Resolution};

/// One HTTP request, as a client would send it to API Gateway.
#[derive(Debug, Clone)]
pub struct HttpRequest<'a> {
    pub method: &'a str,
    /// Path and optional query string (`/api/v1/teams?limit=50`).
    pub path_and_query: &'a str,
    pub bearer: Option<&'a str>,
    /// Sent as `application/json` when given.
    pub json: Option<&'a serde_json::Value>,
}

/// The route a request resolves to: `(function, route key)`.
pub fn route_of(method: &str, path: &str) -> Option<(&'static str, String)> {
    match routes::resolve(method, path) {
        Resolution::Found(spec, _) => Some((spec.function, spec.key())),
        _ => None,
    }
}

/// The API Gateway v2 event JSON (serialised) for `req`, resolved against the route
/// table as API Gateway would; `None` when no route matches.
pub fn api_gateway_event(req: &HttpRequest<'_>) -> Option<Vec<u8>> {
    let path = req.path_and_query.split('?').next().unwrap_or_default();
    let Resolution::Found(spec, params) = routes::resolve(req.method, path) else {
        return None;
    };
    let body = req.json.map(|v| v.to_string()).unwrap_or_default();
    let mut builder = hyper::Request::builder()
        .method(req.method)
        .uri(req.path_and_query)
        .header("host", "api.bench.local")
        .header("user-agent", "ssi-bench/1")
        .header("accept", "application/json");
    if let Some(token) = req.bearer {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    if req.json.is_some() {
        builder = builder
            .header("content-type", "application/json")
            .header("content-length", body.len().to_string());
    }
    let (parts, ()) = builder.body(()).ok()?.into_parts();
    let request_id = uuid::Uuid::new_v4().to_string();
    let event = devserver::api_gateway_v2_event(
        &parts,
        body.as_bytes(),
        &spec.key(),
        &params,
        "127.0.0.1",
        &request_id,
        time::OffsetDateTime::now_utc(),
    )
    .ok()?;
    serde_json::to_vec(&event).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::{request::LambdaRequest, RequestExt};

    #[test]
    fn events_are_what_lambda_http_reads() {
        let body = serde_json::json!({"email": "a@example.com", "password": "x"});
        let raw = api_gateway_event(&HttpRequest {
            method: "POST",
            path_and_query: "/api/v1/auth/login",
            bearer: None,
            json: Some(&body),
        })
        .expect("a route");
        let event: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(event["routeKey"], "POST /api/v1/auth/login");
        assert_eq!(event["body"], body.to_string());
        let req: lambda_http::Request = serde_json::from_slice::<LambdaRequest>(&raw).unwrap().into();
        assert_eq!(req.method(), "POST");
        assert_eq!(req.headers()["content-type"], "application/json");
    }

    #[test]
    fn path_parameters_and_query_strings() {
        let id = uuid::Uuid::new_v4().to_string();
        let path = format!("/api/v1/teams/{id}?limit=5");
        let raw = api_gateway_event(&HttpRequest {
            method: "GET",
            path_and_query: &path,
            bearer: Some("tok"),
            json: None,
        })
        .expect("a route");
        let req: lambda_http::Request = serde_json::from_slice::<LambdaRequest>(&raw).unwrap().into();
        assert_eq!(req.path_parameters().first("id"), Some(id.as_str()));
        assert_eq!(req.query_string_parameters().first("limit"), Some("5"));
        assert_eq!(req.headers()["authorization"], "Bearer tok");
        assert_eq!(route_of("GET", "/health").unwrap().0, "docs");
        assert!(api_gateway_event(&HttpRequest {
            method: "GET",
            path_and_query: "/nowhere",
            bearer: None,
            json: None,
        })
        .is_none());
    }
}
