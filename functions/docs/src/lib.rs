//! The `docs` function: health check, and the catch-all (`$default`) route that answers
//! unknown paths with 404 and known paths with a wrong method with 405.

use shared::{
    http,
    router::{Ctx, HandlerResult, Router},
};

pub fn router() -> Router {
    Router::new("docs").route("GET /health", health)
}

async fn health(_ctx: Ctx) -> HandlerResult {
    http::ok(&serde_json::json!({ "status": "ok" }))
}
