//! A function's router: maps API Gateway route keys to handlers, enforces each route's
//! [`Access`] rule from [`crate::routes::ROUTES`] before the handler runs, and turns
//! every error into a problem response (never an `Err` to the runtime).

use crate::{
    auth::{self, Access},
    domain::{
        audit::{CallContext, Origin},
        Actor,
    },
    error::ApiError,
    model::User,
    routes::{self, Resolution, RouteSpec},
    App,
};
use lambda_http::{request::RequestContext, Body, Request, RequestExt, Response};
use std::{collections::HashMap, future::Future, pin::Pin, sync::Arc};
use tracing::Instrument;

/// What a handler gets: the app, the request and (for non-public routes) the caller.
pub struct Ctx {
    pub app: Arc<App>,
    pub req: Request,
    caller: Option<User>,
}

impl Ctx {
    /// The caller's address as the throttles key it (`throttle::source_key`).
    pub fn source(&self) -> String {
        crate::throttle::source_key(crate::http::source_ip(&self.req))
    }

    /// Who is calling, from where, and now: what an audit event of this call records
    /// (anonymous on public routes).
    pub fn origin(&self) -> Origin {
        let actor = self.caller.as_ref().map_or(Actor::Anonymous, |u| Actor::User(u.id));
        let request_id = match self.req.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(ctx)) => ctx.request_id.clone(),
            _ => None,
        };
        let user_agent = self
            .req
            .headers()
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(MAX_USER_AGENT_CHARS).collect());
        Origin {
            actor,
            context: Some(CallContext {
                source_ip: crate::http::source_ip(&self.req).map(str::to_string),
                user_agent,
                request_id,
            }),
            at: self.now(),
        }
    }

    /// The time of this call as the store writes it (RFC 3339, microseconds, UTC),
    /// from the app's clock (a manual one in the tests).
    pub fn now(&self) -> String {
        crate::clock::format_timestamp(self.app.clock.now())
    }

    /// The signed-in caller. The router guarantees one on `User` and `Admin` routes.
    pub fn caller(&self) -> Result<&User, ApiError> {
        self.caller
            .as_ref()
            .ok_or_else(|| ApiError::Unauthorized("missing bearer token".into()))
    }
}

/// How much of a `User-Agent` an audit event keeps.
const MAX_USER_AGENT_CHARS: usize = 256;

pub type HandlerResult = Result<Response<Body>, ApiError>;
type BoxedHandler = Box<dyn Fn(Ctx) -> Pin<Box<dyn Future<Output = HandlerResult> + Send>> + Send + Sync>;

pub struct Router {
    function: &'static str,
    handlers: HashMap<String, (&'static RouteSpec, BoxedHandler)>,
}

impl Router {
    pub fn new(function: &'static str) -> Self {
        Self {
            function,
            handlers: HashMap::new(),
        }
    }

    /// Registers the handler of a route key.
    ///
    /// # Panics
    /// When the key is not in the route table for this function: a programming error
    /// that every test run catches at start-up.
    pub fn route<F, Fut>(mut self, key: &str, handler: F) -> Self
    where
        F: Fn(Ctx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        let spec = routes::by_key(key)
            .filter(|s| s.function == self.function)
            .unwrap_or_else(|| panic!("route `{key}` is not in the route table for `{}`", self.function));
        self.handlers
            .insert(spec.key(), (spec, Box::new(move |ctx| Box::pin(handler(ctx)))));
        self
    }

    pub fn function(&self) -> &'static str {
        self.function
    }

    /// The route keys this router serves.
    pub fn route_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.handlers.keys().cloned().collect();
        keys.sort();
        keys
    }

    /// Handles one request as delivered by API Gateway (HTTP API, payload v2).
    pub async fn handle(&self, app: Arc<App>, req: Request) -> Response<Body> {
        let (route_key, request_id) = match req.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(ctx)) => (ctx.route_key.clone(), ctx.request_id.clone()),
            _ => (None, None),
        };
        let route_key = route_key.unwrap_or_default();
        let span = tracing::info_span!(
            "request",
            request_id = request_id.as_deref().unwrap_or("-"),
            route = %route_key,
            function = self.function,
        );
        async move {
            let result = match self.handlers.get(&route_key) {
                Some((spec, handler)) => {
                    let work = async move {
                        let caller = auth::authorize(&app, &req, spec.access).await?;
                        crate::http::check_query(&req, spec.query)?;
                        handler(Ctx { app, req, caller }).await
                    };
                    // Every store call is bounded by the SDK's timeouts; this bounds
                    // the sum, so the answer always comes from here, never from a
                    // Lambda timeout.
                    match tokio::time::timeout(crate::app::REQUEST_DEADLINE, work).await {
                        Ok(result) => result,
                        Err(_) => Err(ApiError::Unavailable("request deadline exceeded".into())),
                    }
                }
                None => Err(unmatched(&req)),
            };
            let mut response = result.unwrap_or_else(ApiError::into_response);
            // No response of this API may be sniffed into another type.
            response
                .headers_mut()
                .entry("x-content-type-options")
                .or_insert(lambda_http::http::HeaderValue::from_static("nosniff"));
            tracing::info!(status = response.status().as_u16(), "handled");
            response
        }
        .instrument(span)
        .await
    }
}

/// The answer for a request no handler here serves: 405 with `Allow` when the path
/// exists with other methods, 404 otherwise.
pub fn unmatched(req: &Request) -> ApiError {
    // With a named stage, API Gateway's raw path starts with `/<stage>`.
    let stage = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.stage.clone().filter(|s| s != "$default"),
        _ => None,
    };
    let raw = req.raw_http_path();
    let raw = if raw.is_empty() { req.uri().path() } else { raw };
    let path = stage
        .and_then(|s| raw.strip_prefix(&format!("/{s}")).map(str::to_string))
        .unwrap_or_else(|| raw.to_string());
    match routes::resolve(req.method().as_str(), &path) {
        Resolution::MethodNotAllowed { allow } => ApiError::MethodNotAllowed { allow },
        _ => ApiError::NotFound("route".into()),
    }
}

/// Runs a function on Lambda: logs, the app built once at init, then the runtime loop.
/// Each function's `main` is just this call with its router.
pub async fn run_lambda(router: Router) -> Result<(), lambda_http::Error> {
    crate::logging::init();
    let app = App::from_env()
        .await
        .inspect_err(|e| tracing::error!(error = %e, "init failed"))?;
    app.store.warm_up().await;
    serve_lambda(router, app).await
}

/// Like [`run_lambda`], for a function whose routes are all public (`docs`): it never
/// issues or checks a token, so it does not read the signing key (and its role
/// needs no access to the secret).
///
/// # Panics
/// At init, when the router has a non-public route.
pub async fn run_public_lambda(router: Router) -> Result<(), lambda_http::Error> {
    crate::logging::init();
    assert!(
        router.handlers.values().all(|(spec, _)| spec.access == Access::Public),
        "run_public_lambda serves public routes only"
    );
    let app = App::public_from_env()
        .await
        .inspect_err(|e| tracing::error!(error = %e, "init failed"))?;
    serve_lambda(router, app).await
}

async fn serve_lambda(router: Router, app: Arc<App>) -> Result<(), lambda_http::Error> {
    let router = Arc::new(router);
    lambda_http::run(lambda_http::service_fn(move |req| {
        let (app, router) = (app.clone(), router.clone());
        async move { Ok::<_, std::convert::Infallible>(router.handle(app, req).await) }
    }))
    .await
}
