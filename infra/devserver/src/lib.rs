//! The local stack: a dev server that serves every function's routes in one process,
//! handing each request to the handlers exactly as API Gateway (HTTP API, payload
//! v2) would, and the table created from its definition in `template.yaml`.

pub mod parse_errors;
pub mod table;
pub mod template;

use http_body_util::{BodyExt, Full, Limited};
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use lambda_http::{request::LambdaRequest, Body};
use shared::{
    router::Router,
    routes::{self, Resolution},
    ApiError, App,
};
use std::{collections::HashMap, convert::Infallible, future::Future, net::SocketAddr, sync::Arc};
use tokio::net::TcpListener;

/// API Gateway HTTP APIs accept payloads up to 10 MB; the functions then apply their
/// own (much smaller) limits.
const MAX_REQUEST_BYTES: usize = 10 * 1024 * 1024;

/// Every function's router, keyed by function name.
pub fn routers() -> HashMap<&'static str, Router> {
    [
        auth_function::router(),
        teams_function::router(),
        users_function::router(),
        docs_function::router(),
        requests_function::router(),
        audit_function::router(),
    ]
    .into_iter()
    .map(|r| (r.function(), r))
    .collect()
}

/// The function that API Gateway's `$default` route points at.
const DEFAULT_ROUTE_FUNCTION: &str = "docs";

/// Builds the API Gateway v2 event for a request and converts it with `lambda_http`'s
/// own conversion, so handlers see what they would see on Lambda.
pub fn to_lambda_request(
    parts: &hyper::http::request::Parts,
    body: &[u8],
    route_key: &str,
    path_parameters: &HashMap<String, String>,
    source_ip: &str,
) -> Result<(lambda_http::Request, String), serde_json::Error> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let event = api_gateway_v2_event(
        parts,
        body,
        route_key,
        path_parameters,
        source_ip,
        &request_id,
        time::OffsetDateTime::now_utc(),
    )?;
    let request: LambdaRequest = serde_json::from_value(event)?;
    Ok((request.into(), request_id))
}

/// The API Gateway HTTP API (payload v2) event JSON for a request, as API Gateway
/// would send it to a Lambda function. Pure: the request id and the time are given,
/// so the dev server and the benchmarks (which hand it to real function binaries
/// through the Lambda Runtime API) share one event shape.
pub fn api_gateway_v2_event(
    parts: &hyper::http::request::Parts,
    body: &[u8],
    route_key: &str,
    path_parameters: &HashMap<String, String>,
    source_ip: &str,
    request_id: &str,
    now: time::OffsetDateTime,
) -> Result<serde_json::Value, serde_json::Error> {
    let mut headers = serde_json::Map::new();
    let mut cookies = Vec::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name == "cookie" {
            cookies.extend(value.split("; ").map(str::to_string));
            continue;
        }
        let joined = match headers.get(name.as_str()).and_then(|v| v.as_str()) {
            Some(prev) => format!("{prev},{value}"),
            None => value,
        };
        headers.insert(name.as_str().to_string(), joined.into());
    }
    let (body_value, is_base64) = match std::str::from_utf8(body) {
        _ if body.is_empty() => (serde_json::Value::Null, false),
        Ok(text) => (text.into(), false),
        Err(_) => {
            use base64::Engine;
            (base64::engine::general_purpose::STANDARD.encode(body).into(), true)
        }
    };
    Ok(serde_json::json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": parts.uri.path(),
        "rawQueryString": parts.uri.query().unwrap_or(""),
        "cookies": if cookies.is_empty() { serde_json::Value::Null } else { cookies.into() },
        "headers": headers,
        "pathParameters": if path_parameters.is_empty() { serde_json::Value::Null } else { serde_json::to_value(path_parameters)? },
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": parts.headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("localhost"),
            "domainPrefix": "local",
            "http": {
                "method": parts.method.as_str(),
                "path": parts.uri.path(),
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": parts.headers.get("user-agent").and_then(|h| h.to_str().ok()).unwrap_or(""),
            },
            "requestId": request_id,
            "routeKey": route_key,
            "stage": "$default",
            "time": now.unix_timestamp().to_string(),
            "timeEpoch": now.unix_timestamp() * 1000,
        },
        "body": body_value,
        "isBase64Encoded": is_base64,
    }))
}

fn to_hyper(resp: lambda_http::Response<Body>) -> hyper::Response<Full<hyper::body::Bytes>> {
    let (parts, body) = resp.into_parts();
    let bytes: Vec<u8> = match body {
        Body::Text(t) => t.into_bytes(),
        Body::Binary(b) => b,
        _ => Vec::new(),
    };
    hyper::Response::from_parts(parts, Full::new(hyper::body::Bytes::from(bytes)))
}

/// The API served in one process: resolves the route as API Gateway would and calls
/// the owning function's router.
pub struct DevApi {
    app: Arc<App>,
    routers: HashMap<&'static str, Router>,
}

impl DevApi {
    pub fn new(app: Arc<App>) -> Self {
        Self {
            app,
            routers: routers(),
        }
    }

    pub async fn handle(
        &self,
        req: hyper::Request<Incoming>,
        peer: SocketAddr,
    ) -> hyper::Response<Full<hyper::body::Bytes>> {
        let (parts, body) = req.into_parts();
        let body = match Limited::new(body, MAX_REQUEST_BYTES).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => {
                return to_hyper(
                    ApiError::PayloadTooLarge {
                        limit: MAX_REQUEST_BYTES,
                    }
                    .into_response(),
                )
            }
        };
        let (function, route_key, params) = match routes::resolve(parts.method.as_str(), parts.uri.path()) {
            Resolution::Found(spec, params) => (spec.function, spec.key(), params),
            _ => (DEFAULT_ROUTE_FUNCTION, "$default".to_string(), HashMap::new()),
        };
        let Some(router) = self.routers.get(function) else {
            return to_hyper(ApiError::NotFound("route".into()).into_response());
        };
        match to_lambda_request(&parts, &body, &route_key, &params, &peer.ip().to_string()) {
            Ok((request, _id)) => to_hyper(router.handle(self.app.clone(), request).await),
            Err(e) => to_hyper(ApiError::bad_request(format!("unusable request: {e}")).into_response()),
        }
    }
}

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(listener: TcpListener, app: Arc<App>, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
    let api = Arc::new(DevApi::new(app));
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => accepted?,
            () = &mut shutdown => return Ok(()),
        };
        let api = api.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let api = api.clone();
                async move { Ok::<_, Infallible>(api.handle(req, peer).await) }
            });
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(parse_errors::ProblemOnParseError::new(stream)), service)
                .await
            {
                tracing::debug!(error = %e, "connection closed with an error");
            }
        });
    }
}

/// Serves the API on an OS-chosen loopback port in the background (tests).
pub async fn spawn(app: Arc<App>) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(serve(listener, app, std::future::pending()));
    Ok(addr)
}
