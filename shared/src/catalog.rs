//! The catalog of resource types that can be requested. Each type is one file in
//! `shared/catalog/` (compiled in by `build.rs`): an id, a name, a description and a
//! JSON Schema of its parameters. Request parameters are validated against that
//! schema here, and defaults filled in.
//!
//! The schemas use a small, strict subset of JSON Schema, checked by [`load`]:
//! `type` (object at the top; string, integer, number, boolean for parameters),
//! `properties`, `required`, `additionalProperties: false`, `enum`, `minimum`,
//! `maximum`, `minLength`, `maxLength`, `default`, `description`.
//!
//! Each file also has a `pricing` section ([`pricing::Pricing`]): the list prices a
//! request's estimated monthly cost is computed from. Updating prices is editing a file.

use crate::error::FieldError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::sync::OnceLock;

pub mod pricing;

mod files {
    include!(concat!(env!("OUT_DIR"), "/catalog_files.rs"));
}

/// A resource type as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceType {
    #[schema(example = "postgres")]
    pub id: String,
    pub name: String,
    pub description: String,
    /// JSON Schema of the `parameters` of a request for this type.
    #[schema(value_type = Object)]
    pub parameters: Value,
    /// The longest a resource of this type lives (sandbox types): a request's
    /// `expires_at` defaults to it and may be at most this many days ahead, also when
    /// extended. Absent: resources live until deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 3650)]
    pub max_lifetime_days: Option<u32>,
    /// On-demand list prices (one region, with their source and date): what a
    /// request's `estimated_monthly_cost` is computed from. Every catalog file has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing: Option<pricing::Pricing>,
}

/// The longest `max_lifetime_days` a catalog file may set (ten years).
pub const MAX_LIFETIME_DAYS: u32 = 3650;

const PARAMETER_TYPES: &[&str] = &["string", "integer", "number", "boolean"];
const PARAMETER_KEYWORDS: &[&str] = &[
    "type",
    "enum",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "default",
    "description",
];

/// Parses and checks every catalog file: ids unique and equal to the file name, the
/// schema within the supported subset, every default valid for its parameter.
pub fn load() -> Result<Vec<ResourceType>, String> {
    let mut types: Vec<ResourceType> = Vec::new();
    for (file, text) in files::FILES {
        let rt = parse_file(file, text)?;
        if rt.pricing.is_none() {
            return Err(format!("{file}: missing `pricing`"));
        }
        types.push(rt);
    }
    if types.is_empty() {
        return Err("the catalog is empty".into());
    }
    Ok(types)
}

/// One catalog file, parsed and checked.
fn parse_file(file: &str, text: &str) -> Result<ResourceType, String> {
    let rt: ResourceType = serde_json::from_str(text).map_err(|e| format!("{file}: {e}"))?;
    if format!("{}.json", rt.id) != file {
        return Err(format!("{file}: id `{}` does not match the file name", rt.id));
    }
    if !is_dns_label(&rt.id.replace('_', "-")) {
        return Err(format!("{file}: id must be lower-case letters, digits and `_`"));
    }
    check_schema(&rt.parameters).map_err(|e| format!("{file}: {e}"))?;
    if rt
        .max_lifetime_days
        .is_some_and(|d| !(1..=MAX_LIFETIME_DAYS).contains(&d))
    {
        return Err(format!("{file}: max_lifetime_days must be 1 to {MAX_LIFETIME_DAYS}"));
    }
    if let Some(p) = &rt.pricing {
        pricing::check(p, &rt.parameters).map_err(|e| format!("{file}: {e}"))?;
    }
    Ok(rt)
}

/// The catalog (checked at first use; `load` is tested, so this cannot fail in a build
/// that passed its tests).
pub fn catalog() -> &'static [ResourceType] {
    static CATALOG: OnceLock<Vec<ResourceType>> = OnceLock::new();
    CATALOG.get_or_init(|| load().unwrap_or_else(|e| panic!("invalid resource catalog: {e}")))
}

pub fn find(id: &str) -> Option<&'static ResourceType> {
    catalog().iter().find(|t| t.id == id)
}

fn check_schema(schema: &Value) -> Result<(), String> {
    let obj = schema.as_object().ok_or("parameters must be a JSON Schema object")?;
    if obj.get("type").and_then(Value::as_str) != Some("object") {
        return Err("parameters must have `type: object`".into());
    }
    if obj.get("additionalProperties") != Some(&Value::Bool(false)) {
        return Err("parameters must set `additionalProperties: false`".into());
    }
    let props = obj
        .get("properties")
        .and_then(Value::as_object)
        .ok_or("missing `properties`")?;
    for key in obj.keys() {
        if !["type", "additionalProperties", "properties", "required"].contains(&key.as_str()) {
            return Err(format!("unsupported keyword `{key}` at the top"));
        }
    }
    for required in obj.get("required").and_then(Value::as_array).into_iter().flatten() {
        let name = required.as_str().ok_or("`required` lists names")?;
        if !props.contains_key(name) {
            return Err(format!("required `{name}` is not a property"));
        }
    }
    for (name, prop) in props {
        let p = prop.as_object().ok_or(format!("`{name}` must be an object"))?;
        let ty = p.get("type").and_then(Value::as_str).unwrap_or("");
        if !PARAMETER_TYPES.contains(&ty) {
            return Err(format!("`{name}` has an unsupported type `{ty}`"));
        }
        if let Some(key) = p.keys().find(|k| !PARAMETER_KEYWORDS.contains(&k.as_str())) {
            return Err(format!("`{name}` uses unsupported keyword `{key}`"));
        }
        if let Some(default) = p.get("default") {
            let mut errors = Vec::new();
            check_value(prop, default, name, &mut errors);
            if !errors.is_empty() {
                return Err(format!("`{name}` has an invalid default"));
            }
        }
    }
    Ok(())
}

/// Validates request parameters against a type's schema; returns them with defaults
/// filled in, or every problem found (fields named `parameters.<name>`).
pub fn validate(rt: &ResourceType, params: &Value) -> Result<Value, Vec<FieldError>> {
    let mut errors = Vec::new();
    let Some(given) = params.as_object() else {
        return Err(vec![FieldError::new("parameters", "must be an object")]);
    };
    let schema = &rt.parameters;
    let props = schema["properties"].as_object().cloned().unwrap_or_default();
    let mut out = Map::new();
    for key in given.keys() {
        if !props.contains_key(key) {
            errors.push(FieldError::new(
                format!("parameters.{key}"),
                "is not a parameter of this resource type",
            ));
        }
    }
    let required: Vec<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for (name, prop) in &props {
        let path = format!("parameters.{name}");
        match (given.get(name), prop.get("default")) {
            (Some(value), _) => {
                if check_value(prop, value, &path, &mut errors) {
                    out.insert(name.clone(), value.clone());
                }
            }
            (None, Some(default)) => {
                out.insert(name.clone(), default.clone());
            }
            (None, None) if required.contains(&name.as_str()) => errors.push(FieldError::new(path, "is required")),
            (None, None) => {}
        }
    }
    if errors.is_empty() {
        Ok(Value::Object(out))
    } else {
        Err(errors)
    }
}

/// Checks one value against a parameter schema; pushes an error and returns false
/// when it does not fit.
fn check_value(schema: &Value, value: &Value, path: &str, errors: &mut Vec<FieldError>) -> bool {
    let before = errors.len();
    let mut fail = |message: String| errors.push(FieldError::new(path, message));
    let ty = schema["type"].as_str().unwrap_or("");
    let number = match ty {
        "string" if !value.is_string() => {
            fail("must be a string".into());
            None
        }
        "boolean" if !value.is_boolean() => {
            fail("must be true or false".into());
            None
        }
        "integer" => match value.as_i64() {
            Some(i) => Some(i as f64),
            None => {
                fail("must be a whole number".into());
                None
            }
        },
        "number" => match value.as_f64() {
            Some(f) => Some(f),
            None => {
                fail("must be a number".into());
                None
            }
        },
        _ => None,
    };
    if let Some(x) = number {
        if let Some(min) = schema["minimum"].as_f64().filter(|m| x < *m) {
            fail(format!("must be at least {min}"));
        }
        if let Some(max) = schema["maximum"].as_f64().filter(|m| x > *m) {
            fail(format!("must be at most {max}"));
        }
    }
    if let Some(s) = value.as_str() {
        let chars = s.chars().count() as u64;
        if let Some(min) = schema["minLength"].as_u64().filter(|m| chars < *m) {
            fail(format!("must be at least {min} characters"));
        }
        if let Some(max) = schema["maxLength"].as_u64().filter(|m| chars > *m) {
            fail(format!("must be at most {max} characters"));
        }
    }
    if let Some(options) = schema["enum"].as_array() {
        if errors.len() == before && !options.contains(value) {
            let list: Vec<String> = options.iter().map(Value::to_string).collect();
            errors.push(FieldError::new(path, format!("must be one of {}", list.join(", "))));
        }
    }
    errors.len() == before
}

/// A DNS label: 1–63 of `a-z`, `0-9` and `-`, starting and ending with a letter or digit.
pub fn is_dns_label(s: &str) -> bool {
    let bytes = s.as_bytes();
    (1..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first().is_some_and(|b| *b != b'-')
        && bytes.last().is_some_and(|b| *b != b'-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_catalog_file_is_valid() {
        let types = load().unwrap();
        let ids: Vec<&str> = types.iter().map(|t| t.id.as_str()).collect();
        for required in ["postgres", "mysql", "redis", "s3_bucket", "sqs_queue", "k8s_namespace"] {
            assert!(ids.contains(&required), "{required} missing from the catalog");
        }
    }

    #[test]
    fn a_maximum_lifetime_is_within_bounds() {
        let file = |days: &str| {
            format!(
                r#"{{"id": "t", "name": "T", "description": "d", "max_lifetime_days": {days},
                "parameters": {{"type": "object", "additionalProperties": false, "properties": {{}}}}}}"#
            )
        };
        assert_eq!(parse_file("t.json", &file("30")).unwrap().max_lifetime_days, Some(30));
        for bad in ["0", "3651"] {
            assert!(
                parse_file("t.json", &file(bad))
                    .unwrap_err()
                    .contains("max_lifetime_days"),
                "{bad}"
            );
        }
        assert!(parse_file("t.json", &file("-1")).is_err());
        assert_eq!(find("k8s_namespace").unwrap().max_lifetime_days, Some(30));
        assert_eq!(find("postgres").unwrap().max_lifetime_days, None);
    }

    #[test]
    fn every_catalog_file_has_checked_prices() {
        for t in catalog() {
            let p = t.pricing.as_ref().unwrap_or_else(|| panic!("{} has no pricing", t.id));
            assert_eq!(p.currency, "USD", "{}", t.id);
            assert!(!p.source.is_empty() && p.as_of.len() == 10, "{}", t.id);
        }
        // The prices are shown as decimal strings.
        let json = serde_json::to_value(find("postgres").unwrap()).unwrap();
        assert_eq!(json["pricing"]["hourly"]["prices"]["db.t4g.micro"], "0.016");
        assert_eq!(json["pricing"]["storage_gb_month"]["price"], "0.115");
        assert_eq!(json["pricing"]["multi_az"]["factor"], "2.00");
    }

    #[test]
    fn pricing_mistakes_are_refused() {
        let file = |pricing: &str| {
            format!(
                r#"{{"id": "t", "name": "T", "description": "d",
                "parameters": {{"type": "object", "additionalProperties": false, "properties": {{
                  "class": {{"type": "string", "enum": ["a", "b"], "default": "a"}},
                  "gb": {{"type": "integer", "minimum": 1, "default": 1}},
                  "ha": {{"type": "boolean", "default": false}}}}}},
                "pricing": {{"region": "us-east-1", "currency": "USD", "source": "s", "as_of": "2026-12-02", {pricing}}}}}"#
            )
        };
        let ok = r#""hourly": {"parameter": "class", "prices": {"a": "0.1", "b": "0.2"}}, "storage_gb_month": {"parameter": "gb", "price": "0.1"}, "multi_az": {"parameter": "ha", "factor": "2"}"#;
        assert!(
            parse_file("t.json", &file(ok)).is_ok(),
            "{:?}",
            parse_file("t.json", &file(ok)).err()
        );
        for bad in [
            r#""hourly": {"parameter": "class", "prices": {"a": "0.1"}}"#,
            r#""hourly": {"parameter": "class", "prices": {"a": "0.1", "b": "0.2", "c": "1"}}"#,
            r#""hourly": {"parameter": "gb", "prices": {}}"#,
            r#""hourly": {"parameter": "class", "prices": {"a": 0.1, "b": "0.2"}}"#,
            r#""hourly": {"parameter": "class", "prices": {"a": "-0.1", "b": "0.2"}}"#,
            r#""storage_gb_month": {"parameter": "class", "price": "0.1"}"#,
            r#""storage_gb_month": {"parameter": "nope", "price": "0.1"}"#,
            r#""flat_monthly": "1.00""#,
            r#""multi_az": {"parameter": "ha", "factor": "0.5"}, "flat_monthly": "1", "assumption": "a""#,
            r#""assumption": "nothing priced""#,
        ] {
            assert!(parse_file("t.json", &file(bad)).is_err(), "{bad}");
        }
        let euro = file(ok).replace(r#""currency": "USD""#, r#""currency": "EUR""#);
        assert!(parse_file("t.json", &euro).is_err());
        let undated = file(ok).replace("2026-12-02", "2026-13-02");
        assert!(parse_file("t.json", &undated).is_err());
    }

    #[test]
    fn defaults_are_filled_in() {
        let pg = find("postgres").unwrap();
        let out = validate(pg, &json!({ "storage_gb": 100 })).unwrap();
        assert_eq!(
            out,
            json!({ "engine_version": "16", "instance_class": "db.t4g.micro", "storage_gb": 100, "multi_az": false })
        );
    }

    #[test]
    fn every_violation_is_reported_with_its_field() {
        let pg = find("postgres").unwrap();
        let errors = validate(
            pg,
            &json!({ "engine_version": "9", "storage_gb": 5, "multi_az": "yes", "superuser": true }),
        )
        .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        for field in [
            "parameters.engine_version",
            "parameters.storage_gb",
            "parameters.multi_az",
            "parameters.superuser",
        ] {
            assert!(fields.contains(&field), "{field} not reported: {errors:?}");
        }
    }

    #[test]
    fn numbers_are_checked_by_kind_and_range() {
        let pg = find("postgres").unwrap();
        assert!(validate(pg, &json!({ "storage_gb": 20.5 })).is_err());
        assert!(validate(pg, &json!({ "storage_gb": 1001 })).is_err());
        assert!(validate(pg, &json!({ "storage_gb": "30" })).is_err());
        let k8s = find("k8s_namespace").unwrap();
        assert!(validate(k8s, &json!({ "cpu_quota": 0.5 })).is_ok());
        assert!(validate(k8s, &json!({ "cpu_quota": 0.25 })).is_err());
    }

    #[test]
    fn public_buckets_cannot_be_requested() {
        let s3 = find("s3_bucket").unwrap();
        for attempt in [json!({ "public_access": true }), json!({ "acl": "public-read" })] {
            assert!(validate(s3, &attempt).is_err(), "{attempt}");
        }
    }

    #[test]
    fn parameters_must_be_an_object() {
        let redis = find("redis").unwrap();
        assert!(validate(redis, &json!([1])).is_err());
        assert!(validate(redis, &json!(null)).is_err());
    }

    #[test]
    fn schema_checker_refuses_what_it_cannot_enforce() {
        let base = |props: Value| json!({ "type": "object", "additionalProperties": false, "properties": props });
        assert!(check_schema(&base(json!({ "a": { "type": "string", "pattern": "^x$" } }))).is_err());
        assert!(check_schema(&base(json!({ "a": { "type": "array" } }))).is_err());
        assert!(check_schema(&base(json!({ "a": { "type": "integer", "minimum": 5, "default": 1 } }))).is_err());
        assert!(check_schema(&json!({ "type": "object", "properties": {} })).is_err());
        assert!(check_schema(&base(json!({ "a": { "type": "integer", "minimum": 5, "default": 6 } }))).is_ok());
    }

    #[test]
    fn dns_labels() {
        for ok in ["a", "db-1", "x".repeat(63).as_str()] {
            assert!(is_dns_label(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "A", "a_b", "a.b", "ü", &"x".repeat(64)] {
            assert!(!is_dns_label(bad), "{bad}");
        }
    }
}
