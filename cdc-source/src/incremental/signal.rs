//! Signals in Debezium's shapes: a row of the signal table (`id`, `type`, `data`) or the same
//! fields posted as JSON to `POST /signals`.
//!
//! | `type` | `data` | effect |
//! |---|---|---|
//! | `execute-snapshot` | `{"data-collections": ["mydb.orders", …], "type": "incremental", "additional-conditions": [{"data-collection": "mydb.orders", "filter": "id > 100"}]}` | queues an incremental snapshot of each table (of the rows the filter selects) |
//! | `stop-snapshot` | `{"data-collections": ["mydb.orders"], "type": "incremental"}`; no `data-collections`: all | drops those tables' incremental snapshots, running or queued |
//! | `log` | `{"message": "…"}` | writes the message to the source's log |
//!
//! `type` values are read without regard to case, `data-collections` entries are `db.table`
//! (or `table` of the URL's database) of captured tables. Debezium's older single
//! `"additional-condition": "…"` applies to every table of the signal. A snapshot of type
//! `blocking` and a `surrogate-key` are refused: snapshots here are incremental and by primary key.

use serde_json::Value as Json;

use crate::config::SourceConfig;
use crate::offsets::KeyValue;

/// `(database, table)`.
type TableName = (String, String);

/// What a valid signal asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Signal {
    /// Incremental snapshots of these tables, each with an optional SQL filter.
    Execute(Vec<Requested>),
    /// Drop the incremental snapshots of these tables (`None`: of every table).
    Stop(Option<Vec<(String, String)>>),
    Log(String),
}

/// One table an `execute-snapshot` signal names.
#[derive(Debug, Clone, PartialEq)]
pub struct Requested {
    pub database: String,
    pub table: String,
    pub filter: Option<String>,
    /// Only these primary keys (key columns in order); a key the table does not hold at the
    /// chunk's position gets a tombstone (with `delete.enabled`).
    pub keys: Vec<Vec<KeyValue>>,
}

/// A signal that cannot be acted on: why, in words for the log and the HTTP answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected(pub String);

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses one signal. `data` is the JSON text of the `data` column (or field).
pub fn parse(cfg: &SourceConfig, kind: &str, data: &str) -> Result<Signal, Rejected> {
    let kind = kind.trim().to_ascii_lowercase();
    let data: Json = if data.trim().is_empty() {
        Json::Object(Default::default())
    } else {
        serde_json::from_str(data).map_err(|e| Rejected(format!("its data is not JSON ({e}): {}", shorten(data))))?
    };
    let Json::Object(data) = data else {
        return Err(Rejected(format!("its data must be a JSON object, not {}", shorten(&data.to_string()))));
    };
    match kind.as_str() {
        "execute-snapshot" => {
            snapshot_type(&data)?;
            if data.contains_key("surrogate-key") {
                return Err(Rejected("`surrogate-key` is not supported: incremental snapshots read by primary key".into()));
            }
            let names = collections(cfg, &data)?.ok_or_else(|| {
                Rejected("execute-snapshot needs `data-collections`, e.g. {\"data-collections\": [\"mydb.orders\"], \"type\": \"incremental\"}".into())
            })?;
            if names.is_empty() {
                return Err(Rejected("`data-collections` is empty: name at least one table".into()));
            }
            let every = match data.get("additional-condition") {
                None | Some(Json::Null) => None,
                Some(Json::String(s)) if s.trim().is_empty() => None,
                Some(Json::String(s)) => Some(s.clone()),
                Some(other) => return Err(Rejected(format!("`additional-condition` must be a string, not {other}"))),
            };
            let mut filters: Vec<((String, String), String)> = Vec::new();
            let mut key_lists: Vec<(TableName, Vec<Vec<KeyValue>>)> = Vec::new();
            match data.get("additional-conditions") {
                None | Some(Json::Null) => {}
                Some(Json::Array(items)) => {
                    for item in items {
                        let collection = item.get("data-collection").and_then(Json::as_str).ok_or_else(|| {
                            Rejected(format!("each of `additional-conditions` needs a `data-collection` string: {item}"))
                        })?;
                        let filter = item.get("filter").and_then(Json::as_str);
                        let keys = item.get("keys").map(keys_of).transpose()?;
                        if filter.is_none() && keys.is_none() {
                            return Err(Rejected(format!("each of `additional-conditions` needs a `filter` string (or `keys`): {item}")));
                        }
                        let name = table_name(cfg, collection)?;
                        if !names.contains(&name) {
                            return Err(Rejected(format!(
                                "`additional-conditions` names {collection}, which is not one of `data-collections`"
                            )));
                        }
                        if let Some(f) = filter {
                            filters.push((name.clone(), f.to_string()));
                        }
                        if let Some(k) = keys {
                            key_lists.push((name, k));
                        }
                    }
                }
                Some(other) => return Err(Rejected(format!("`additional-conditions` must be an array, not {other}"))),
            }
            for (_, filter) in &filters {
                check_filter(filter)?;
            }
            if let Some(f) = &every {
                check_filter(f)?;
            }
            let requested = names
                .into_iter()
                .map(|(database, table)| {
                    let own = filters.iter().find(|(n, _)| n.0 == database && n.1 == table).map(|(_, f)| f.clone());
                    let keys = key_lists.iter().find(|(n, _)| n.0 == database && n.1 == table).map(|(_, k)| k.clone()).unwrap_or_default();
                    Requested { filter: own.or_else(|| every.clone()), database, table, keys }
                })
                .collect();
            Ok(Signal::Execute(requested))
        }
        "stop-snapshot" => {
            snapshot_type(&data)?;
            Ok(Signal::Stop(collections(cfg, &data)?.filter(|names| !names.is_empty())))
        }
        "log" => Ok(Signal::Log(data.get("message").and_then(Json::as_str).unwrap_or_default().to_string())),
        "" => Err(Rejected("the signal has no type: use execute-snapshot, stop-snapshot or log".into())),
        other => Err(Rejected(format!("unknown signal type `{other}`: this source acts on execute-snapshot, stop-snapshot and log"))),
    }
}

/// The most keys one `keys` list may hold.
pub const MAX_KEYS: usize = 10_000;

/// `keys`: an array of keys, each an array of the key columns' values in key order (or one value
/// for a one-column key).
fn keys_of(v: &Json) -> Result<Vec<Vec<KeyValue>>, Rejected> {
    let Json::Array(items) = v else {
        return Err(Rejected(format!("`keys` must be an array of primary keys, e.g. [[1], [2]], not {v}")));
    };
    if items.is_empty() || items.len() > MAX_KEYS {
        return Err(Rejected(format!("`keys` must hold 1 to {MAX_KEYS} keys, not {}", items.len())));
    }
    let scalar = |x: &Json| match x {
        Json::String(s) => Ok(KeyValue::Text(s.clone())),
        Json::Number(n) => Ok(match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => KeyValue::Int(i),
            (None, Some(u)) => KeyValue::Uint(u),
            _ => KeyValue::Text(n.to_string()),
        }),
        other => Err(Rejected(format!("a key value must be a string or a number, not {other}"))),
    };
    items
        .iter()
        .map(|k| match k {
            Json::Array(parts) if !parts.is_empty() => parts.iter().map(scalar).collect(),
            other => Ok(vec![scalar(other)?]),
        })
        .collect()
}

/// `type` of a snapshot signal: `incremental` (also when absent).
fn snapshot_type(data: &serde_json::Map<String, Json>) -> Result<(), Rejected> {
    match data.get("type") {
        None | Some(Json::Null) => Ok(()),
        Some(Json::String(t)) if t.eq_ignore_ascii_case("incremental") => Ok(()),
        Some(Json::String(t)) if t.eq_ignore_ascii_case("blocking") => {
            Err(Rejected("blocking snapshots are not supported: use \"type\": \"incremental\" (streaming goes on while it runs)".into()))
        }
        Some(other) => Err(Rejected(format!("unknown snapshot type {other}: use \"incremental\""))),
    }
}

/// The tables of `data-collections`, `None` when absent.
fn collections(cfg: &SourceConfig, data: &serde_json::Map<String, Json>) -> Result<Option<Vec<(String, String)>>, Rejected> {
    let items = match data.get("data-collections") {
        None | Some(Json::Null) => return Ok(None),
        Some(Json::Array(items)) => items,
        Some(Json::String(one)) => return Ok(Some(vec![table_name(cfg, one)?])),
        Some(other) => return Err(Rejected(format!("`data-collections` must be an array of table names, not {other}"))),
    };
    let mut out = Vec::new();
    for item in items {
        let name = item.as_str().ok_or_else(|| Rejected(format!("`data-collections` holds {item}, which is not a table name")))?;
        let name = table_name(cfg, name)?;
        if !out.contains(&name) {
            out.push(name);
        }
    }
    Ok(Some(out))
}

/// `db.table` (or `table` of the URL's database) of a captured table.
fn table_name(cfg: &SourceConfig, name: &str) -> Result<(String, String), Rejected> {
    let name = name.trim();
    let (db, table) = match name.split_once('.') {
        Some((db, table)) => (db.trim_matches('`').to_string(), table.trim_matches('`').to_string()),
        None => (cfg.database.clone(), name.trim_matches('`').to_string()),
    };
    if db.is_empty() || table.is_empty() {
        return Err(Rejected(format!("`{name}` is not a table name (database.table)")));
    }
    if !cfg.tables.matches(&db, &table) {
        return Err(Rejected(format!(
            "table {db}.{table} is not captured by this source (table.include.list / table.exclude.list): only captured tables can be snapshotted"
        )));
    }
    Ok((db, table))
}

/// A filter is one SQL condition added to the chunk query with AND; a statement separator or a
/// comment would let it end that query early, so they are refused.
fn check_filter(filter: &str) -> Result<(), Rejected> {
    if filter.contains(';') || filter.contains("--") || filter.contains("/*") || filter.contains('#') {
        return Err(Rejected(format!(
            "the filter `{}` holds `;`, `--`, `#` or `/*`: give one SQL condition on the table's columns, e.g. \"id > 100 AND status = 'open'\"",
            shorten(filter)
        )));
    }
    Ok(())
}

fn shorten(text: &str) -> String {
    let mut s: String = text.chars().take(200).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> SourceConfig {
        SourceConfig::from_str(
            r#"{"name": "s", "config": {"connection.url": "jdbc:mysql://localhost:3306/mydb", "connection.user": "u", "format": "json", "table.include.list": "users,orders"}}"#,
            &[],
        )
        .expect("config")
    }

    #[test]
    fn debezium_execute_snapshot_signals_are_read_with_their_conditions() {
        let cfg = cfg();
        let s = parse(
            &cfg,
            "execute-snapshot",
            r#"{"data-collections": ["mydb.orders", "users"], "type": "INCREMENTAL", "additional-conditions": [{"data-collection": "mydb.orders", "filter": "id > 100"}]}"#,
        )
        .expect("valid");
        assert_eq!(
            s,
            Signal::Execute(vec![
                Requested { database: "mydb".into(), table: "orders".into(), filter: Some("id > 100".into()), keys: vec![] },
                Requested { database: "mydb".into(), table: "users".into(), filter: None, keys: vec![] },
            ])
        );
        let older = parse(&cfg, "EXECUTE-SNAPSHOT", r#"{"data-collections": ["orders"], "additional-condition": "id < 5"}"#).expect("valid");
        assert_eq!(older, Signal::Execute(vec![Requested { database: "mydb".into(), table: "orders".into(), filter: Some("id < 5".into()), keys: vec![] }]));
        assert_eq!(parse(&cfg, "stop-snapshot", r#"{"type": "incremental"}"#).expect("valid"), Signal::Stop(None));
        assert_eq!(
            parse(&cfg, "stop-snapshot", r#"{"data-collections": ["mydb.users"]}"#).expect("valid"),
            Signal::Stop(Some(vec![("mydb".into(), "users".into())]))
        );
        let keyed = parse(
            &cfg,
            "execute-snapshot",
            r#"{"data-collections": ["orders"], "additional-conditions": [{"data-collection": "mydb.orders", "keys": [[5], ["7"], 9]}]}"#,
        )
        .expect("valid");
        assert_eq!(
            keyed,
            Signal::Execute(vec![Requested {
                database: "mydb".into(),
                table: "orders".into(),
                filter: None,
                keys: vec![vec![KeyValue::Int(5)], vec![KeyValue::Text("7".into())], vec![KeyValue::Int(9)]],
            }])
        );
        assert_eq!(parse(&cfg, "log", r#"{"message": "hello"}"#).expect("valid"), Signal::Log("hello".into()));
    }

    #[test]
    fn bad_signals_are_rejected_naming_the_problem() {
        let cfg = cfg();
        let cases = [
            ("execute-snapshot", "{not json", "not JSON"),
            ("execute-snapshot", "[1]", "must be a JSON object"),
            ("execute-snapshot", r#"{"type": "incremental"}"#, "needs `data-collections`"),
            ("execute-snapshot", r#"{"data-collections": []}"#, "is empty"),
            ("execute-snapshot", r#"{"data-collections": ["mydb.nope"]}"#, "mydb.nope is not captured"),
            ("execute-snapshot", r#"{"data-collections": ["other.orders"]}"#, "other.orders is not captured"),
            ("execute-snapshot", r#"{"data-collections": ["orders"], "type": "blocking"}"#, "blocking snapshots are not supported"),
            ("execute-snapshot", r#"{"data-collections": ["orders"], "surrogate-key": "x"}"#, "surrogate-key"),
            ("execute-snapshot", r#"{"data-collections": ["orders"], "additional-conditions": [{"data-collection": "mydb.users", "filter": "1"}]}"#, "not one of `data-collections`"),
            ("execute-snapshot", r#"{"data-collections": ["orders"], "additional-condition": "1; DROP TABLE x"}"#, "one SQL condition"),
            ("execute-snapshot", r#"{"data-collections": [7]}"#, "not a table name"),
            ("pause-snapshot", "{}", "unknown signal type `pause-snapshot`"),
            ("execute-snapshot", r#"{"data-collections": ["orders"], "additional-conditions": [{"data-collection": "orders", "keys": []}]}"#, "1 to 10000 keys"),
            ("execute-snapshot", r#"{"data-collections": ["orders"], "additional-conditions": [{"data-collection": "orders", "keys": [[null]]}]}"#, "string or a number"),
            ("", "{}", "has no type"),
        ];
        for (kind, data, expected) in cases {
            let e = parse(&cfg, kind, data).expect_err(data);
            assert!(e.0.contains(expected), "{kind} {data}: {e}");
        }
    }
}
