//! The OpenAPI 3.1 document, generated from the code: each function's annotated
//! handlers and schemas, merged, then completed from the route table — security and
//! the standard error responses are derived from each route's access rule and shape,
//! so they are stated once (in `shared::routes`) and cannot be forgotten on a route.

use serde_json::Value;
use shared::{
    auth::Access,
    error::{FieldError, Problem},
    routes::{self, RouteSpec},
};
use std::sync::OnceLock;
use utoipa::{
    openapi::{
        self,
        path::{Operation, Parameter, ParameterBuilder, ParameterIn},
        schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type},
        security::{Flow, HttpAuthScheme, HttpBuilder, OAuth2, Password, Scopes, SecurityRequirement, SecurityScheme},
        server::Server,
        Content, Ref, RefOr, Required, ResponseBuilder,
    },
    OpenApi,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Self-Service Infrastructure API",
        description = "Admins create teams and manage users; users request infrastructure; admins approve or reject. \
                       Errors are RFC 9457 problem documents. Lists are paginated with `limit` and an opaque `cursor`.",
    ),
    paths(super::health, super::openapi_json, super::docs_page, super::docs_asset),
    components(schemas(Problem, FieldError, super::DocsAsset)),
    tags(
        (name = "auth", description = "Accounts and tokens"),
        (name = "users", description = "My account and team; user management (admins)"),
        (name = "teams", description = "Team management (admins)"),
        (name = "requests", description = "The resource catalog, requests and their review"),
        (name = "audit", description = "The audit log: every change and every credentials read, hash-chained"),
        (name = "notifications", description = "My notification settings; webhooks and failed notifications (admins)"),
        (name = "meta", description = "Health and documentation"),
    )
)]
struct DocsApi;

const BEARER: &str = "bearer";
const LOGIN: &str = "login";

/// The whole document.
pub fn openapi() -> openapi::OpenApi {
    let mut doc = DocsApi::openapi();
    doc.merge(auth_function::ApiDoc::openapi());
    doc.merge(users_function::ApiDoc::openapi());
    doc.merge(teams_function::ApiDoc::openapi());
    doc.merge(requests_function::ApiDoc::openapi());
    doc.merge(audit_function::ApiDoc::openapi());
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    // Relative: resolves against wherever the document is served (any stage, any host).
    doc.servers = Some(vec![Server::new(".")]);
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .build(),
        ),
    );
    components.add_security_scheme(
        LOGIN,
        SecurityScheme::OAuth2(OAuth2::with_description(
            [Flow::Password(Password::new("api/v1/auth/login", Scopes::new()))],
            "Sign in with your email as the username; the docs page then sends the token as a bearer token.",
        )),
    );
    for (path, item) in doc.paths.paths.iter_mut() {
        let operations = [
            ("GET", &mut item.get),
            ("POST", &mut item.post),
            ("PUT", &mut item.put),
            ("PATCH", &mut item.patch),
            ("DELETE", &mut item.delete),
        ];
        for (method, operation) in operations {
            if let (Some(op), Some(spec)) = (operation.as_mut(), routes::by_key(&format!("{method} {path}"))) {
                complete(op, spec);
            }
        }
    }
    doc
}

/// The document as JSON, built once per process.
pub fn openapi_json() -> Result<&'static Value, serde_json::Error> {
    static DOC: OnceLock<Value> = OnceLock::new();
    if let Some(doc) = DOC.get() {
        return Ok(doc);
    }
    let value = serde_json::to_value(openapi())?;
    Ok(DOC.get_or_init(|| value))
}

fn problem(description: &str, header: Option<(&str, &str)>) -> RefOr<openapi::Response> {
    let mut response = ResponseBuilder::new().description(description).content(
        "application/problem+json",
        Content::new(Some(Ref::from_schema_name("Problem"))),
    );
    if let Some((name, about)) = header {
        let mut h = openapi::header::Header::new(ObjectBuilder::new().schema_type(Type::String));
        h.description = Some(about.to_string());
        response = response.header(name, h);
    }
    RefOr::T(response.build())
}

fn path_parameter(name: &str) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid))),
        ))
        .build()
}

/// Adds what the route table says about a route: who may call it, its path
/// parameters, and the errors every route of that shape can answer with.
fn complete(op: &mut Operation, spec: &RouteSpec) {
    // (status, description, response header and what it says)
    type StandardError = (&'static str, &'static str, Option<(&'static str, &'static str)>);
    let mut errors: Vec<StandardError> = Vec::new();
    if spec.access != Access::Public {
        op.security = Some(vec![
            SecurityRequirement::new(BEARER, Vec::<String>::new()),
            SecurityRequirement::new(LOGIN, Vec::<String>::new()),
        ]);
        errors.push((
            "401",
            "Missing, invalid, expired or revoked token",
            Some(("WWW-Authenticate", "Always `Bearer`")),
        ));
    }
    if spec.access == Access::Admin {
        errors.push(("403", "The caller is not an admin", None));
    }
    if op.request_body.is_some() {
        errors.push(("400", "Malformed body", None));
        errors.push(("413", "Body larger than 16 KiB", None));
        errors.push(("415", "Wrong Content-Type", None));
        errors.push((
            "422",
            "Invalid fields (wrong types, unknown or missing fields, rule violations)",
            None,
        ));
    }
    if op
        .parameters
        .iter()
        .flatten()
        .any(|p| p.parameter_in == ParameterIn::Query)
    {
        errors.push((
            "400",
            "Invalid, unknown or repeated query parameter, or a bad cursor",
            None,
        ));
    } else {
        errors.push(("400", "A query parameter was given (this route takes none)", None));
    }
    let names: Vec<&str> = spec
        .path
        .split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect();
    for name in &names {
        let declared = op.parameters.iter().flatten().any(|p| p.name == *name);
        if !declared {
            op.parameters.get_or_insert_with(Vec::new).push(path_parameter(name));
        }
    }
    if !names.is_empty() {
        errors.push(("404", "Not found (also for malformed ids)", None));
    }
    if spec.function != "docs" {
        errors.push((
            "503",
            "DynamoDB is throttling, unreachable or not answering in time; retry",
            Some(("Retry-After", "Seconds to wait")),
        ));
    }
    errors.push(("500", "Unexpected error (no details are given)", None));
    for (code, description, header) in errors {
        op.responses
            .responses
            .entry(code.to_string())
            .or_insert_with(|| problem(description, header));
    }
    // Every error body is a problem document, also where a handler's annotation gave
    // only its schema (utoipa then says `application/json`).
    for (code, response) in op.responses.responses.iter_mut() {
        if !code.starts_with(['4', '5']) {
            continue;
        }
        if let RefOr::T(response) = response {
            if let Some(content) = response.content.shift_remove("application/json") {
                response
                    .content
                    .entry("application/problem+json".to_string())
                    .or_insert(content);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn document_has_exactly_the_routes_of_the_route_table() {
        let doc = openapi_json().unwrap();
        let mut in_doc = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                    in_doc.insert(format!("{} {path}", method.to_uppercase()));
                }
            }
        }
        let in_code: BTreeSet<String> = routes::ROUTES.iter().map(RouteSpec::key).collect();
        assert_eq!(in_doc, in_code);
    }

    #[test]
    fn protected_routes_declare_security_and_401() {
        let doc = openapi_json().unwrap();
        for spec in routes::ROUTES {
            let op = &doc["paths"][spec.path][spec.method.to_lowercase()];
            let secured = op.get("security").is_some_and(|s| !s.as_array().unwrap().is_empty());
            assert_eq!(secured, spec.access != Access::Public, "{}", spec.key());
            // Public routes have no token to refuse; login documents its own 401
            // (wrong email or password).
            let own_401 = spec.key() == "POST /api/v1/auth/login";
            assert_eq!(
                op["responses"].get("401").is_some(),
                spec.access != Access::Public || own_401,
                "{}",
                spec.key()
            );
            // Admin routes always document 403; other routes may have 403s of their own.
            if spec.access == Access::Admin {
                assert!(op["responses"].get("403").is_some(), "{}", spec.key());
            }
            assert!(op["responses"].get("500").is_some());
        }
    }

    #[test]
    fn every_error_response_is_problem_json_only() {
        let doc = openapi_json().unwrap();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                for (code, response) in op["responses"].as_object().unwrap() {
                    if code.starts_with(['4', '5']) {
                        let types: Vec<&String> = response["content"].as_object().unwrap().keys().collect();
                        assert_eq!(types, ["application/problem+json"], "{method} {path} {code}");
                    }
                }
            }
        }
    }

    #[test]
    fn documented_query_parameters_are_the_route_tables() {
        let doc = openapi_json().unwrap();
        for spec in routes::ROUTES {
            let op = &doc["paths"][spec.path][spec.method.to_lowercase()];
            let mut documented: Vec<&str> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "query")
                .filter_map(|p| p["name"].as_str())
                .collect();
            documented.sort_unstable();
            let mut allowed = spec.query.to_vec();
            allowed.sort_unstable();
            assert_eq!(documented, allowed, "{}", spec.key());
        }
    }

    #[test]
    fn every_path_parameter_is_declared() {
        let doc = openapi_json().unwrap();
        for spec in routes::ROUTES.iter().filter(|r| r.path.contains('{')) {
            let params = doc["paths"][spec.path][spec.method.to_lowercase()]["parameters"]
                .as_array()
                .unwrap_or_else(|| panic!("{} has no parameters", spec.key()));
            for name in spec
                .path
                .split('/')
                .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            {
                assert!(
                    params.iter().any(|p| p["name"] == name && p["in"] == "path"),
                    "{}: {name}",
                    spec.key()
                );
            }
        }
    }

    #[test]
    fn every_schema_reference_resolves() {
        fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
            match v {
                Value::Object(map) => {
                    if let Some(Value::String(r)) = map.get("$ref") {
                        out.push(r);
                    }
                    map.values().for_each(|v| refs(v, out));
                }
                Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let doc = openapi_json().unwrap();
        let mut found = Vec::new();
        refs(doc, &mut found);
        for r in found {
            let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("{r}"));
            assert!(doc["components"]["schemas"].get(name).is_some(), "unresolved {r}");
        }
        // The cost schemas are there.
        for name in [
            "Money",
            "TeamBudget",
            "BudgetCheck",
            "ApprovalPolicy",
            "TeamCostReport",
            "Pricing",
        ] {
            assert!(doc["components"]["schemas"].get(name).is_some(), "{name}");
        }
    }

    #[test]
    fn security_schemes_offer_bearer_and_login_through_the_login_endpoint() {
        let doc = openapi_json().unwrap();
        let schemes = &doc["components"]["securitySchemes"];
        assert_eq!(schemes["bearer"]["scheme"], "bearer");
        assert_eq!(schemes["login"]["flows"]["password"]["tokenUrl"], "api/v1/auth/login");
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    }
}
