//! The `pricing` section of a catalog file: on-demand list prices of one AWS region,
//! with their source and the date they were taken, written down in the file. What a
//! request is estimated to cost from these prices is computed in
//! [`crate::domain::cost::estimate`]; here are only the data and their checks.
//!
//! ```json
//! "pricing": {
//!   "region": "us-east-1", "currency": "USD", "as_of": "2026-12-02",
//!   "source": "https://aws.amazon.com/rds/postgresql/pricing/ (On-Demand, Single-AZ, gp3)",
//!   "hourly": { "parameter": "instance_class", "prices": { "db.t4g.micro": "0.016" } },
//!   "storage_gb_month": { "parameter": "storage_gb", "price": "0.115" },
//!   "multi_az": { "parameter": "multi_az", "factor": "2" }
//! }
//! ```
//!
//! Every price is a decimal string (USD, at most six decimals), never a JSON number.

use crate::domain::money::{Money, MoneyError};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::collections::BTreeMap;

/// A price or factor from a catalog file: an exact decimal (six decimals at most).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Price(pub Money);

impl Serialize for Price {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.amount())
    }
}

impl<'de> Deserialize<'de> for Price {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Money::parse_decimal(&raw, 6)
            .map(Price)
            .map_err(|e: MoneyError| serde::de::Error::custom(format!("price `{raw}` {e}")))
    }
}

impl utoipa::PartialSchema for Price {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("An exact decimal in USD (or a plain factor), e.g. \"0.016\"."))
            .pattern(Some(r"^[0-9]{1,12}(\.[0-9]{1,6})?$"))
            .into()
    }
}

impl utoipa::ToSchema for Price {}

/// An hourly price chosen by a parameter's value (an instance or node class).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HourlyByClass {
    /// The string parameter whose value selects the price (e.g. `instance_class`).
    pub parameter: String,
    /// USD per hour for each allowed value.
    pub prices: BTreeMap<String, Price>,
}

/// A price per unit of a numeric parameter.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PerUnit {
    /// The numeric parameter counted (e.g. `storage_gb`, `cpu_quota`).
    pub parameter: String,
    pub price: Price,
}

/// How many billed nodes: a parameter's value plus a fixed number (replicas + 1 primary).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeCount {
    pub parameter: String,
    pub plus: u32,
}

/// A factor applied to the instance and storage prices when a boolean parameter is true.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MultiAz {
    pub parameter: String,
    pub factor: Price,
}

/// The prices of a resource type. A request's monthly estimate is
/// `(hourly × nodes + Σ unit_hourly × value) × factor × 730 h + storage × price × factor + flat_monthly`
/// (see `docs/costs.md`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Pricing {
    /// The AWS region the prices are for.
    #[schema(example = "us-east-1")]
    pub region: String,
    /// Always `USD`.
    #[schema(example = "USD")]
    pub currency: String,
    /// Where the prices come from (the AWS pricing page and the options priced).
    pub source: String,
    /// The date the prices were taken (`YYYY-MM-DD`).
    #[schema(example = "2026-12-02")]
    pub as_of: String,
    /// USD per hour, by instance or node class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hourly: Option<HourlyByClass>,
    /// Billed nodes (e.g. read replicas plus the primary); absent: one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<NodeCount>,
    /// USD per hour per unit of a numeric parameter (vCPU, GiB of memory).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unit_hourly: Vec<PerUnit>,
    /// USD per GB-month of allocated storage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_gb_month: Option<PerUnit>,
    /// The Multi-AZ factor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_az: Option<MultiAz>,
    /// A flat USD estimate per month, where usage cannot be known in advance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flat_monthly: Option<Price>,
    /// What the flat estimate assumes (required with `flat_monthly`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assumption: Option<String>,
}

fn property<'a>(schema: &'a Value, name: &str) -> Result<&'a Value, String> {
    schema["properties"]
        .get(name)
        .ok_or_else(|| format!("pricing names `{name}`, which is not a parameter"))
}

fn property_type<'a>(schema: &'a Value, name: &str) -> Result<&'a str, String> {
    Ok(property(schema, name)?["type"].as_str().unwrap_or(""))
}

/// Checks a pricing section against the type's parameter schema: USD, a real date,
/// named parameters that exist with the right kind, a price for every class that can
/// be asked for, and at least one price.
pub(super) fn check(pricing: &Pricing, schema: &Value) -> Result<(), String> {
    if pricing.currency != crate::domain::money::USD {
        return Err("pricing.currency must be USD".into());
    }
    if pricing.region.trim().is_empty() || pricing.source.trim().is_empty() {
        return Err("pricing needs a region and a source".into());
    }
    let date = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(&pricing.as_of, &date).map_err(|_| "pricing.as_of must be a date, YYYY-MM-DD".to_string())?;
    if let Some(hourly) = &pricing.hourly {
        let options = property(schema, &hourly.parameter)?["enum"]
            .as_array()
            .ok_or_else(|| format!("pricing.hourly: `{}` must be an enum parameter", hourly.parameter))?;
        let options: Vec<&str> = options.iter().filter_map(Value::as_str).collect();
        for option in &options {
            if !hourly.prices.contains_key(*option) {
                return Err(format!("pricing.hourly has no price for `{option}`"));
            }
        }
        if let Some(extra) = hourly.prices.keys().find(|k| !options.contains(&k.as_str())) {
            return Err(format!("pricing.hourly prices `{extra}`, which cannot be asked for"));
        }
    }
    let numeric = |name: &str, what: &str| -> Result<(), String> {
        match property_type(schema, name)? {
            "integer" | "number" => Ok(()),
            _ => Err(format!("pricing.{what}: `{name}` must be a numeric parameter")),
        }
    };
    if let Some(nodes) = &pricing.nodes {
        if property_type(schema, &nodes.parameter)? != "integer" {
            return Err(format!(
                "pricing.nodes: `{}` must be an integer parameter",
                nodes.parameter
            ));
        }
        if pricing.hourly.is_none() {
            return Err("pricing.nodes needs pricing.hourly".into());
        }
    }
    for unit in &pricing.unit_hourly {
        numeric(&unit.parameter, "unit_hourly")?;
    }
    if let Some(storage) = &pricing.storage_gb_month {
        numeric(&storage.parameter, "storage_gb_month")?;
    }
    if let Some(multi_az) = &pricing.multi_az {
        if property_type(schema, &multi_az.parameter)? != "boolean" {
            return Err(format!(
                "pricing.multi_az: `{}` must be a boolean parameter",
                multi_az.parameter
            ));
        }
        if multi_az.factor.0 < Money::parse_decimal("1", 0).unwrap_or_default() {
            return Err("pricing.multi_az.factor must be at least 1".into());
        }
    }
    if pricing.flat_monthly.is_some() != pricing.assumption.as_ref().is_some_and(|a| !a.trim().is_empty()) {
        return Err("pricing.flat_monthly and pricing.assumption go together".into());
    }
    if pricing.hourly.is_none()
        && pricing.unit_hourly.is_empty()
        && pricing.storage_gb_month.is_none()
        && pricing.flat_monthly.is_none()
    {
        return Err("pricing has no price".into());
    }
    Ok(())
}
