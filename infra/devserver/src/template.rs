//! Reads `template.yaml`: the table definition (so the local table is the deployed
//! one) and the routes each function declares (checked against the code's table).

use serde_yaml::Value;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("template.yaml is not valid YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
    #[error("template.yaml: {0}")]
    Shape(String),
}

/// The repository's `template.yaml`, found from this crate's directory.
pub fn default_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml")
}

pub fn load(path: &Path) -> Result<Value, TemplateError> {
    let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(serde_yaml::from_str(&text)?)
}

/// The `Properties` of the `Table` resource.
pub fn table_properties(template: &Value) -> Result<&Value, TemplateError> {
    template
        .get("Resources")
        .and_then(|r| r.get("Table"))
        .and_then(|t| t.get("Properties"))
        .ok_or_else(|| TemplateError::Shape("no Resources.Table.Properties".into()))
}

/// A route as the template declares it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TemplateRoute {
    /// The function's binary (`Metadata.BuildProperties.Binary`).
    pub function: String,
    pub method: String,
    pub path: String,
}

/// Every `HttpApi` event of every function.
pub fn routes(template: &Value) -> Result<Vec<TemplateRoute>, TemplateError> {
    let resources = template
        .get("Resources")
        .and_then(Value::as_mapping)
        .ok_or_else(|| TemplateError::Shape("no Resources".into()))?;
    let mut out = Vec::new();
    for (name, resource) in resources {
        if resource.get("Type").and_then(Value::as_str) != Some("AWS::Serverless::Function") {
            continue;
        }
        let binary = resource
            .get("Metadata")
            .and_then(|m| m.get("BuildProperties"))
            .and_then(|b| b.get("Binary"))
            .and_then(Value::as_str)
            .ok_or_else(|| TemplateError::Shape(format!("{name:?} has no Metadata.BuildProperties.Binary")))?;
        let Some(events) = resource
            .get("Properties")
            .and_then(|p| p.get("Events"))
            .and_then(Value::as_mapping)
        else {
            continue;
        };
        for event in events.values() {
            if event.get("Type").and_then(Value::as_str) != Some("HttpApi") {
                continue;
            }
            let props = event.get("Properties");
            let field = |f: &str| props.and_then(|p| p.get(f)).and_then(Value::as_str).map(str::to_string);
            out.push(TemplateRoute {
                function: binary.to_string(),
                method: field("Method").unwrap_or_default().to_uppercase(),
                path: field("Path").unwrap_or_default(),
            });
        }
    }
    out.sort();
    Ok(out)
}
