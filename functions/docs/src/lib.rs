//! The `docs` function: health check, the OpenAPI document generated from the code,
//! the interactive docs page (Swagger UI, served from this binary: no CDN), and the
//! catch-all (`$default`) route that answers unknown paths with 404 and known paths
//! with a wrong method with 405 (the router does that for any unmatched route key).

mod openapi;

pub use openapi::openapi;

use lambda_http::{http::StatusCode, Body, Response};
use shared::{
    error::ApiError,
    http,
    router::{Ctx, HandlerResult, Router},
};

pub fn router() -> Router {
    Router::new("docs")
        .route("GET /health", health)
        .route("GET /docs", docs_page)
        .route("GET /docs/{file}", docs_asset)
        .route("GET /openapi.json", openapi_json)
}

/// Liveness: answers without touching DynamoDB.
#[utoipa::path(get, path = "/health", tag = "meta",
    responses((status = 200, description = "The API is up", body = Object, example = json!({"status": "ok"}))))]
async fn health(_ctx: Ctx) -> HandlerResult {
    http::ok(&serde_json::json!({ "status": "ok" }))
}

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(get, path = "/openapi.json", tag = "meta",
    responses((status = 200, description = "The OpenAPI document", body = Object)))]
async fn openapi_json(_ctx: Ctx) -> HandlerResult {
    let doc = openapi::openapi_json().map_err(ApiError::internal)?;
    text(StatusCode::OK, "application/json", doc.to_string(), "no-cache")
}

const PAGE: &str = r##"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Self-Service Infrastructure API</title>
  <link rel="stylesheet" href="docs/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="docs/swagger-ui-bundle.js"></script>
  <script src="docs/swagger-init.js"></script>
</body>
</html>
"##;

/// The interactive API page. Its Authorize button signs in through the login
/// endpoint (OAuth2 password flow).
#[utoipa::path(get, path = "/docs", tag = "meta",
    responses((status = 200, description = "Interactive API documentation (HTML)", content_type = "text/html")))]
async fn docs_page(_ctx: Ctx) -> HandlerResult {
    text(StatusCode::OK, "text/html; charset=utf-8", PAGE.to_string(), "no-cache")
}

/// The page's assets, compiled into the binary.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "swagger-ui-bundle.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/swagger-ui-bundle.js"),
    ),
    (
        "swagger-ui.css",
        "text/css; charset=utf-8",
        include_str!("../assets/swagger-ui.css"),
    ),
    (
        "swagger-init.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/swagger-init.js"),
    ),
];

/// The docs page and its assets come from this API only (everything is vendored; the
/// CSS draws its icons as `data:` SVGs), and no other site may frame them.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; font-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; \
     frame-ancestors 'none'";

/// The names of the page's assets, for the OpenAPI document.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
enum DocsAsset {
    #[schema(rename = "swagger-ui-bundle.js")]
    Bundle,
    #[schema(rename = "swagger-ui.css")]
    Css,
    #[schema(rename = "swagger-init.js")]
    Init,
}

#[utoipa::path(get, path = "/docs/{file}", tag = "meta",
    params(("file" = DocsAsset, Path, description = "One of the page's assets")),
    responses((status = 200, description = "A static asset of the docs page")))]
async fn docs_asset(ctx: Ctx) -> HandlerResult {
    use lambda_http::RequestExt;
    let name = ctx
        .req
        .path_parameters_ref()
        .and_then(|p| p.first("file"))
        .unwrap_or_default()
        .to_string();
    let (_, content_type, body) = ASSETS
        .iter()
        .find(|(n, _, _)| *n == name)
        .ok_or_else(|| ApiError::NotFound("file".into()))?;
    text(StatusCode::OK, content_type, body.to_string(), "public, max-age=86400")
}

fn text(status: StatusCode, content_type: &str, body: String, cache: &str) -> HandlerResult {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("cache-control", cache)
        .header("x-content-type-options", "nosniff")
        .header("content-security-policy", CONTENT_SECURITY_POLICY)
        .header("x-frame-options", "DENY")
        .body(Body::Text(body))
        .map_err(ApiError::internal)
}
