//! Reading a config file (TOML or Kafka Connect connector JSON) into the flat `key → string` map.
//! The rules are documented in [`crate::config`].

use std::collections::BTreeMap;
use std::path::Path;

use super::ConfigError;

type Flat = BTreeMap<String, String>;

/// Parses the file text; also returns the connector `name` of a Connect JSON.
pub(crate) fn parse_file(text: &str, origin: &Path) -> Result<(Flat, Option<String>), ConfigError> {
    if text.trim_start().starts_with('{') {
        parse_connect_json(text, origin)
    } else {
        parse_toml(text, origin).map(|flat| (flat, None))
    }
}

fn parse_connect_json(text: &str, origin: &Path) -> Result<(Flat, Option<String>), ConfigError> {
    let json_err = |message: String| ConfigError::Json {
        path: origin.to_path_buf(),
        message,
    };
    let root: serde_json::Value =
        serde_json::from_str(text).map_err(|e| json_err(e.to_string()))?;
    let serde_json::Value::Object(root) = root else {
        return Err(json_err("the top level is not an object".into()));
    };
    let name = root
        .get("name")
        .and_then(|n| n.as_str())
        .map(str::to_string);
    let config = match root.get("config") {
        Some(serde_json::Value::Object(config)) => config.clone(),
        Some(_) => return Err(json_err("`config` is not an object".into())),
        // A bare config object, as PUT to /connectors/<name>/config.
        None => root,
    };
    let mut flat = Flat::new();
    for (key, value) in config {
        let value = match value {
            serde_json::Value::String(s) => s,
            serde_json::Value::Bool(b) => b.to_string(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Null => continue,
            _ => {
                return Err(json_err(format!(
                    "value of `{key}` is not a string, number or boolean"
                )))
            }
        };
        flat.insert(key, value);
    }
    Ok((flat, name))
}

fn parse_toml(text: &str, origin: &Path) -> Result<Flat, ConfigError> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::Toml {
            path: origin.to_path_buf(),
            message: e.to_string(),
        })?;
    let mut flat = Flat::new();
    flatten_table("", &table, &mut flat, origin)?;
    Ok(flat)
}

fn flatten_table(
    prefix: &str,
    table: &toml::Table,
    out: &mut Flat,
    origin: &Path,
) -> Result<(), ConfigError> {
    for (key, value) in table {
        let full = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let scalar = match value {
            toml::Value::Table(inner) => {
                flatten_table(&full, inner, out, origin)?;
                continue;
            }
            toml::Value::Array(items) => items
                .iter()
                .map(|item| scalar_string(&full, item))
                .collect::<Result<Vec<_>, _>>()?
                .join(","),
            other => scalar_string(&full, other)?,
        };
        if out.insert(full.clone(), scalar).is_some() {
            return Err(ConfigError::Toml {
                path: origin.to_path_buf(),
                message: format!(
                    "key `{full}` is given twice (once quoted, once as a nested table); keep one"
                ),
            });
        }
    }
    Ok(())
}

fn scalar_string(key: &str, value: &toml::Value) -> Result<String, ConfigError> {
    Ok(match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Datetime(d) => d.to_string(),
        toml::Value::Array(_) | toml::Value::Table(_) => {
            return Err(ConfigError::invalid(
                key,
                "nested arrays and tables inside arrays are not supported; use a string",
            ))
        }
    })
}
