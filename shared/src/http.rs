//! Request parsing and response building at the edge of every handler.

use crate::error::{ApiError, FieldError};
use lambda_http::{http::StatusCode, Body, Request, RequestExt, Response};
use serde::{de::DeserializeOwned, Serialize};
use uuid::Uuid;

/// Largest JSON body a route accepts.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

pub const DEFAULT_PAGE_SIZE: usize = 50;
pub const MAX_PAGE_SIZE: usize = 100;

fn body_bytes(req: &Request) -> &[u8] {
    match req.body() {
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    }
}

fn media_type(req: &Request) -> Option<String> {
    req.headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
}

/// True when the request declares the given media type.
pub fn has_media_type(req: &Request, expected: &str) -> bool {
    media_type(req).as_deref() == Some(expected)
}

fn checked_body(req: &Request) -> Result<&[u8], ApiError> {
    let bytes = body_bytes(req);
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge { limit: MAX_BODY_BYTES });
    }
    Ok(bytes)
}

/// The backtick-quoted field name in a serde message, if any.
fn field_of(message: &str) -> String {
    message
        .split('`')
        .nth(1)
        .filter(|f| !f.is_empty() && f.len() <= 64)
        .unwrap_or("body")
        .to_string()
}

/// The field a deserialisation error is about: the path to the value that failed
/// (`password`, `parameters.storage_gb`), or, for errors about the object itself
/// (missing or unknown fields), the field its message names.
fn field_of_error(path: &serde_path_to_error::Path, message: &str) -> String {
    let path = path.to_string();
    if path.is_empty() || path == "." {
        field_of(message)
    } else {
        path.chars().take(128).collect()
    }
}

/// Parses a JSON body: 415 unless `application/json`, 413 when too large, 400 when
/// not JSON or when an object repeats a key, 422 when JSON of the wrong shape (wrong
/// types, missing or unknown fields), naming the field.
pub fn json_body<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    if !has_media_type(req, "application/json") {
        return Err(ApiError::UnsupportedMediaType {
            expected: "application/json",
        });
    }
    parse_json(checked_body(req)?)
}

/// Like [`json_body`], for routes whose body is optional: no body at all is `T::default()`.
pub fn optional_json_body<T: DeserializeOwned + Default>(req: &Request) -> Result<T, ApiError> {
    if body_bytes(req).is_empty() {
        return Ok(T::default());
    }
    json_body(req)
}

/// A JSON value whose objects have no repeated keys. `serde_json::Value` keeps the
/// last of two equal keys, which would let `{"storage_gb":5000,"storage_gb":50}`
/// pass validation as 50 while another reader sees 5000.
struct UniqueKeys(serde_json::Value);

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueKeysVisitor).map(UniqueKeys)
    }
}

struct UniqueKeysVisitor;

impl<'de> serde::de::Visitor<'de> for UniqueKeysVisitor {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, serde_json::Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(UniqueKeys(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(serde_json::Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(serde::de::Error::custom(format_args!("{DUPLICATE_KEY} {key}")));
            }
            let UniqueKeys(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(serde_json::Value::Object(object))
    }
}

const DUPLICATE_KEY: &str = "duplicate key";

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize::<_, UniqueKeys>(&mut deserializer)
        .map_err(|e| {
            let message = e.inner().to_string();
            if let Some(key) = message.strip_prefix(DUPLICATE_KEY).and_then(|m| m.strip_prefix(' ')) {
                // serde_json appends " at line L column C".
                let key = key.rsplit_once(" at line ").map_or(key, |(k, _)| k);
                let parent = e.path().to_string();
                let field: String = if parent.is_empty() || parent == "." {
                    key.to_string()
                } else {
                    format!("{parent}.{key}")
                };
                let field: String = field.chars().take(128).collect();
                ApiError::BadRequest {
                    detail: format!("malformed JSON body: the key `{field}` appears more than once"),
                    errors: vec![FieldError::new(field, "appears more than once")],
                }
            } else {
                ApiError::bad_request(format!("malformed JSON body: {message}"))
            }
        })?
        .0;
    deserializer
        .end()
        .map_err(|e| ApiError::bad_request(format!("malformed JSON body: {e}")))?;
    // serde would read a JSON array field by field into a struct; bodies are objects.
    if !value.is_object() {
        return Err(ApiError::validation("body", "must be a JSON object"));
    }
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let message = e.inner().to_string();
        ApiError::Validation(vec![FieldError::new(field_of_error(e.path(), &message), message)])
    })
}

/// Parses an `application/x-www-form-urlencoded` body (same limits as JSON; a
/// repeated field is 400, as in JSON).
pub fn form_body<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    let bytes = checked_body(req)?;
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_bytes(bytes).map_err(|e| ApiError::bad_request(format!("malformed form body: {e}")))?;
    let mut seen = std::collections::HashSet::new();
    if let Some((name, _)) = pairs.iter().find(|(name, _)| !seen.insert(name.as_str())) {
        let name: String = name.chars().take(64).collect();
        return Err(ApiError::bad_field(&name, "appears more than once"));
    }
    serde_urlencoded::from_bytes(bytes).map_err(|e| {
        let message = e.to_string();
        ApiError::Validation(vec![FieldError::new(field_of(&message), message)])
    })
}

/// A UUID in its one canonical text form (hyphenated, 36 characters, either case):
/// the other forms `uuid` accepts (simple, braced, URN) are not ids of this API.
pub fn parse_uuid(raw: &str) -> Option<Uuid> {
    Uuid::try_parse(raw)
        .ok()
        .filter(|id| id.hyphenated().to_string().eq_ignore_ascii_case(raw))
}

/// A UUID path parameter; malformed ids are 404 like unknown ones.
pub fn path_uuid(req: &Request, name: &str, what: &str) -> Result<Uuid, ApiError> {
    req.path_parameters_ref()
        .and_then(|p| p.first(name))
        .and_then(parse_uuid)
        .ok_or_else(|| ApiError::NotFound(what.into()))
}

/// Checks the query string against the parameters a route takes (its `RouteSpec`):
/// an unknown parameter, or one given twice, is 400 (the router calls this).
pub fn check_query(req: &Request, allowed: &[&str]) -> Result<(), ApiError> {
    let Some(query) = req.query_string_parameters_ref() else {
        return Ok(());
    };
    let mut seen: Vec<&str> = Vec::new();
    for (name, _) in query.iter() {
        let shown: String = name.chars().take(64).collect();
        if !allowed.contains(&name) {
            return Err(ApiError::bad_field(&shown, "is not a query parameter of this route"));
        }
        if seen.contains(&name) {
            return Err(ApiError::bad_field(&shown, "appears more than once"));
        }
        seen.push(name);
    }
    Ok(())
}

/// The client address API Gateway reports (`requestContext.http.sourceIp`; the dev
/// server fills it from the peer address).
pub fn source_ip(req: &Request) -> Option<&str> {
    match req.request_context_ref() {
        Some(lambda_http::request::RequestContext::ApiGatewayV2(ctx)) => ctx.http.source_ip.as_deref(),
        _ => None,
    }
}

/// A single query parameter.
pub fn query_param(req: &Request, name: &str) -> Option<String> {
    req.query_string_parameters_ref()
        .and_then(|q| q.first(name))
        .map(str::to_string)
}

/// A UUID query parameter (canonical form only, see [`parse_uuid`]); 400 otherwise.
pub fn query_uuid(req: &Request, name: &str) -> Result<Option<Uuid>, ApiError> {
    query_param(req, name)
        .map(|raw| parse_uuid(&raw).ok_or_else(|| ApiError::bad_field(name, "must be a UUID")))
        .transpose()
}

/// The `?month=YYYY-MM` of a costs query (400 otherwise); absent: the month of `now`.
pub fn query_month(req: &Request, now: time::OffsetDateTime) -> Result<crate::domain::cost::Month, ApiError> {
    use crate::domain::cost::Month;
    match query_param(req, "month") {
        None => Ok(Month::containing(now)),
        Some(raw) => Month::parse(&raw).ok_or_else(|| ApiError::bad_field("month", "must be a month, YYYY-MM")),
    }
}

/// The query parameter of the costs routes, as the OpenAPI document shows it.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MonthQuery {
    /// `YYYY-MM` (UTC); default: the current month.
    #[param(example = "2027-03")]
    pub month: Option<String>,
}

/// The query parameters of every list, as the OpenAPI document shows them.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1–100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page; opaque.
    #[param(min_length = 1)]
    pub cursor: Option<String>,
}

/// `?limit=` (1–100, default 50) and `?cursor=` of a list request.
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub limit: usize,
    pub cursor: Option<String>,
}

impl PageRequest {
    pub fn from_request(req: &Request) -> Result<Self, ApiError> {
        let limit = match query_param(req, "limit") {
            None => DEFAULT_PAGE_SIZE,
            Some(raw) => raw
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
                .ok_or_else(|| {
                    ApiError::bad_field("limit", format!("must be a whole number from 1 to {MAX_PAGE_SIZE}"))
                })?,
        };
        let cursor = match query_param(req, "cursor") {
            Some(c) if c.is_empty() => return Err(ApiError::bad_field("cursor", "must not be empty")),
            other => other,
        };
        Ok(Self { limit, cursor })
    }
}

pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Result<Response<Body>, ApiError> {
    let body = serde_json::to_string(value).map_err(ApiError::internal)?;
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("cache-control", "no-store")
        .body(Body::Text(body))
        .map_err(ApiError::internal)
}

pub fn ok<T: Serialize>(value: &T) -> Result<Response<Body>, ApiError> {
    json(StatusCode::OK, value)
}

/// A 200 that no cache may keep (credentials).
pub fn ok_no_store<T: Serialize>(value: &T) -> Result<Response<Body>, ApiError> {
    let mut response = json(StatusCode::OK, value)?;
    response
        .headers_mut()
        .insert("cache-control", lambda_http::http::HeaderValue::from_static("no-store"));
    Ok(response)
}

pub fn created<T: Serialize>(value: &T) -> Result<Response<Body>, ApiError> {
    json(StatusCode::CREATED, value)
}

pub fn no_content() -> Result<Response<Body>, ApiError> {
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Body::Empty)
        .map_err(ApiError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct In {
        email: String,
    }

    fn req(ct: Option<&str>, body: &str) -> Request {
        let mut b = lambda_http::http::Request::builder().method("POST").uri("/x");
        if let Some(ct) = ct {
            b = b.header("content-type", ct);
        }
        b.body(Body::Text(body.into())).unwrap()
    }

    #[test]
    fn body_errors_map_to_the_right_status() {
        let status = |r: Request| json_body::<In>(&r).unwrap_err().status().as_u16();
        assert_eq!(status(req(None, r#"{"email":"a"}"#)), 415);
        assert_eq!(status(req(Some("text/plain"), r#"{"email":"a"}"#)), 415);
        assert_eq!(status(req(Some("application/json"), "{not json")), 400);
        assert_eq!(status(req(Some("application/json"), "")), 400);
        assert_eq!(status(req(Some("application/json"), r#"{"email":1}"#)), 422);
        assert_eq!(status(req(Some("application/json"), r#"{"email":"a","x":1}"#)), 422);
        assert_eq!(status(req(Some("application/json"), r#"{}"#)), 422);
        assert_eq!(status(req(Some("application/json"), r#"["a"]"#)), 422);
        assert_eq!(status(req(Some("application/json"), r#""a""#)), 422);
        let huge = format!(r#"{{"email":"{}"}}"#, "a".repeat(MAX_BODY_BYTES));
        assert_eq!(status(req(Some("application/json"), &huge)), 413);
        assert!(json_body::<In>(&req(Some("application/json; charset=utf-8"), r#"{"email":"a"}"#)).is_ok());
    }

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Login {
        email: String,
        password: String,
        remember: Option<bool>,
        nested: Option<Nested>,
    }

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Nested {
        n: u32,
    }

    fn field_errors(body: &str) -> (u16, Vec<String>) {
        let err = json_body::<Login>(&req(Some("application/json"), body)).unwrap_err();
        let status = err.status().as_u16();
        let fields = match err {
            ApiError::Validation(errors) | ApiError::BadRequest { errors, .. } => {
                errors.into_iter().map(|e| e.field).collect()
            }
            other => panic!("{other:?}"),
        };
        (status, fields)
    }

    #[test]
    fn wrong_types_name_their_field() {
        assert_eq!(
            field_errors(r#"{"email":"a","password":424242}"#),
            (422, vec!["password".into()])
        );
        assert_eq!(
            field_errors(r#"{"email":"a","password":"p","remember":"yes"}"#),
            (422, vec!["remember".into()])
        );
        assert_eq!(
            field_errors(r#"{"email":"a","password":"p","nested":{"n":"x"}}"#),
            (422, vec!["nested.n".into()])
        );
        assert_eq!(field_errors(r#"{"email":"a"}"#), (422, vec!["password".into()]));
        assert_eq!(
            field_errors(r#"{"email":"a","password":"p","admin":true}"#),
            (422, vec!["admin".into()])
        );
    }

    #[test]
    fn duplicate_keys_are_400_at_any_depth() {
        assert_eq!(
            field_errors(r#"{"email":"a","password":"p","email":"b"}"#),
            (400, vec!["email".into()])
        );
        assert_eq!(
            field_errors(r#"{"email":"a","password":"p","nested":{"n":1,"n":2}}"#),
            (400, vec!["nested.n".into()])
        );
        // Equal keys in different objects are fine.
        assert!(parse_json::<serde_json::Value>(br#"{"a":{"k":1},"b":{"k":1},"c":[{"k":1},{"k":2}]}"#).is_ok());
        // Trailing garbage is malformed.
        assert_eq!(
            json_body::<In>(&req(Some("application/json"), r#"{"email":"a"} x"#))
                .unwrap_err()
                .status(),
            400
        );
    }

    #[test]
    fn unknown_field_is_named() {
        let err = json_body::<In>(&req(Some("application/json"), r#"{"email":"a","is_admin":true}"#)).unwrap_err();
        match err {
            ApiError::Validation(errors) => assert_eq!(errors[0].field, "is_admin"),
            other => panic!("{other:?}"),
        }
    }
}
