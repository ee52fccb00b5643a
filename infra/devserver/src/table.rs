//! Creates the table from its definition in `template.yaml` (keys, attribute types,
//! indexes, TTL), so local and deployed tables cannot drift apart.

use crate::template::{self, TemplateError};
use aws_sdk_dynamodb::{
    types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
        ScalarAttributeType, TimeToLiveSpecification,
    },
    Client,
};
use serde_yaml::Value;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("table definition: {0}")]
    Definition(String),
    #[error("DynamoDB refused to create the table")]
    Create(#[source] Box<dyn std::error::Error + Send + Sync>),
}

fn def(msg: impl Into<String>) -> TableError {
    TableError::Definition(msg.into())
}

fn str_field<'a>(v: &'a Value, name: &str) -> Result<&'a str, TableError> {
    v.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| def(format!("missing `{name}`")))
}

fn key_schema(v: &Value) -> Result<Vec<KeySchemaElement>, TableError> {
    v.as_sequence()
        .ok_or_else(|| def("KeySchema must be a list"))?
        .iter()
        .map(|k| {
            KeySchemaElement::builder()
                .attribute_name(str_field(k, "AttributeName")?)
                .key_type(KeyType::from(str_field(k, "KeyType")?))
                .build()
                .map_err(|e| def(e.to_string()))
        })
        .collect()
}

/// Creates `table_name` as `template.yaml` defines `Table`. An existing table is left
/// as it is (returns `false`).
pub async fn create_from_template(client: &Client, table_name: &str, template_path: &Path) -> Result<bool, TableError> {
    let template = template::load(template_path)?;
    let props = template::table_properties(&template)?;
    let attributes = props
        .get("AttributeDefinitions")
        .and_then(Value::as_sequence)
        .ok_or_else(|| def("missing AttributeDefinitions"))?
        .iter()
        .map(|a| {
            AttributeDefinition::builder()
                .attribute_name(str_field(a, "AttributeName")?)
                .attribute_type(ScalarAttributeType::from(str_field(a, "AttributeType")?))
                .build()
                .map_err(|e| def(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut request = client
        .create_table()
        .table_name(table_name)
        .set_attribute_definitions(Some(attributes))
        .set_key_schema(Some(key_schema(
            props.get("KeySchema").ok_or_else(|| def("missing KeySchema"))?,
        )?))
        .billing_mode(BillingMode::from(
            props
                .get("BillingMode")
                .and_then(Value::as_str)
                .unwrap_or("PAY_PER_REQUEST"),
        ));
    for gsi in props
        .get("GlobalSecondaryIndexes")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
    {
        let projection = gsi
            .get("Projection")
            .and_then(|p| p.get("ProjectionType"))
            .and_then(Value::as_str)
            .unwrap_or("ALL");
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(str_field(gsi, "IndexName")?)
                .set_key_schema(Some(key_schema(
                    gsi.get("KeySchema").ok_or_else(|| def("GSI without KeySchema"))?,
                )?))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::from(projection))
                        .build(),
                )
                .build()
                .map_err(|e| def(e.to_string()))?,
        );
    }
    match request.send().await {
        Ok(_) => {}
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_in_use_exception()) => return Ok(false),
        Err(e) => return Err(TableError::Create(Box::new(e))),
    }
    if let Some(ttl) = props.get("TimeToLiveSpecification") {
        let spec = TimeToLiveSpecification::builder()
            .attribute_name(str_field(ttl, "AttributeName")?)
            .enabled(ttl.get("Enabled").and_then(Value::as_bool).unwrap_or(true))
            .build()
            .map_err(|e| def(e.to_string()))?;
        // DynamoDB Local accepts but does not act on TTL; a refusal is not fatal here.
        if let Err(e) = client
            .update_time_to_live()
            .table_name(table_name)
            .time_to_live_specification(spec)
            .send()
            .await
        {
            tracing::warn!(error = %e, "could not enable TTL");
        }
    }
    Ok(true)
}
