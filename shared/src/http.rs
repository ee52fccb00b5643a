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

/// Parses a JSON body: 415 unless `application/json`, 413 when too large, 400 when
/// not JSON, 422 when JSON of the wrong shape (wrong types, missing or unknown fields).
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

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("malformed JSON body: {e}")))?;
    // serde would read a JSON array field by field into a struct; bodies are objects.
    if !value.is_object() {
        return Err(ApiError::validation("body", "must be a JSON object"));
    }
    serde_json::from_value(value).map_err(|e| {
        let message = e.to_string();
        ApiError::Validation(vec![FieldError::new(field_of(&message), message)])
    })
}

/// Parses an `application/x-www-form-urlencoded` body (same limits as JSON).
pub fn form_body<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    serde_urlencoded::from_bytes(checked_body(req)?).map_err(|e| {
        let message = e.to_string();
        ApiError::Validation(vec![FieldError::new(field_of(&message), message)])
    })
}

/// A UUID path parameter; malformed ids are 404 like unknown ones.
pub fn path_uuid(req: &Request, name: &str, what: &str) -> Result<Uuid, ApiError> {
    req.path_parameters_ref()
        .and_then(|p| p.first(name))
        .and_then(|v| Uuid::parse_str(v).ok())
        .ok_or_else(|| ApiError::NotFound(what.into()))
}

/// A single query parameter.
pub fn query_param(req: &Request, name: &str) -> Option<String> {
    req.query_string_parameters_ref()
        .and_then(|q| q.first(name))
        .map(str::to_string)
}

/// The query parameters of every list, as the OpenAPI document shows them.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1–100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page; opaque.
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
        let cursor = query_param(req, "cursor").filter(|c| !c.is_empty());
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

    #[test]
    fn unknown_field_is_named() {
        let err = json_body::<In>(&req(Some("application/json"), r#"{"email":"a","is_admin":true}"#)).unwrap_err();
        match err {
            ApiError::Validation(errors) => assert_eq!(errors[0].field, "is_admin"),
            other => panic!("{other:?}"),
        }
    }
}
