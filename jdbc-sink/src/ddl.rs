//! Mirror tables: created from the record schema (`auto.create`), widened by new optional columns
//! (`auto.evolve`), and checked against every new record shape before a batch is written.
//!
//! DDL commits implicitly in MariaDB, so it runs **before** the batch transaction begins, and only
//! in forms that are harmless to repeat (`CREATE TABLE IF NOT EXISTS`, `ADD COLUMN IF NOT
//! EXISTS`): a crash between DDL and the batch commit leaves nothing to undo.
//!
//! A change the sink will not apply by itself is refused with a message naming the table, the
//! column and both types: a field whose type does not fit the existing column (e.g. a string into
//! an `int` column), a record key that is not the table's primary key, or a missing column or
//! table while `auto.evolve` / `auto.create` is off.

use std::collections::HashMap;

use mysql_async::prelude::Queryable;

use crate::change::Shape;
use crate::coltype::{checked_sql_type, family_of_data_type, fits};
use crate::errors::{class, classify_db, DbErrorKind, SinkError};
use crate::ident::Ident;
use crate::metrics::{DdlLabels, SinkMetrics};

/// A column as the server describes it.
#[derive(Debug, Clone)]
struct ColumnInfo {
    name: String,
    data_type: String,
    column_type: String,
}

#[derive(Debug, Clone, Default)]
struct TableInfo {
    columns: HashMap<String, ColumnInfo>,
    primary_key: Vec<String>,
}

/// A shape that cannot be written to its table: (error class, message).
pub type ShapeRefusal = (&'static str, String);

/// Knows the mirror tables; applies auto.create / auto.evolve.
#[derive(Debug)]
pub struct Tables {
    database: String,
    auto_create: bool,
    auto_evolve: bool,
    known: HashMap<Ident, TableInfo>,
    /// Shapes already found to fit their table. Refusals are not remembered: the table may be
    /// fixed by hand while the sink runs.
    checked: std::collections::HashSet<(Ident, String)>,
    metrics: SinkMetrics,
}

impl Tables {
    pub fn new(
        database: &str,
        auto_create: bool,
        auto_evolve: bool,
        metrics: SinkMetrics,
    ) -> Tables {
        Tables {
            database: database.to_string(),
            auto_create,
            auto_evolve,
            known: HashMap::new(),
            checked: std::collections::HashSet::new(),
            metrics,
        }
    }

    /// Forgets what is known about the tables (after a reconnect, or when DDL may have happened
    /// elsewhere).
    pub fn forget(&mut self) {
        self.known.clear();
        self.checked.clear();
    }

    /// The primary key columns of `table` (lower case; empty when it has none), `None` when the
    /// table does not exist.
    pub async fn primary_key(
        &mut self,
        conn: &mut mysql_async::Conn,
        table: &Ident,
    ) -> Result<Option<Vec<String>>, SinkError> {
        Ok(self.describe(conn, table).await?.map(|info| info.primary_key))
    }

    /// Makes `table` ready for `shape`: creates or evolves it as configured. `Ok(Err(_))` means
    /// records of this shape can never be written to this table.
    pub async fn prepare(
        &mut self,
        conn: &mut mysql_async::Conn,
        table: &Ident,
        shape: &Shape,
    ) -> Result<Result<(), ShapeRefusal>, SinkError> {
        let key = (table.clone(), shape.id.clone());
        if self.checked.contains(&key) {
            return Ok(Ok(()));
        }
        let outcome = self.prepare_uncached(conn, table, shape).await?;
        if outcome.is_ok() {
            self.checked.insert(key);
        } else {
            // Described again next time.
            self.known.remove(table);
        }
        Ok(outcome)
    }

    async fn prepare_uncached(
        &mut self,
        conn: &mut mysql_async::Conn,
        table: &Ident,
        shape: &Shape,
    ) -> Result<Result<(), ShapeRefusal>, SinkError> {
        let mut info = self.describe(conn, table).await?;
        if info.is_none() {
            if !self.auto_create {
                return Ok(Err((
                    class::SCHEMA,
                    format!(
                        "table `{}`.`{}` does not exist; create it or set auto.create=true",
                        self.database,
                        table.as_str()
                    ),
                )));
            }
            let ddl = match create_table_sql(table, shape) {
                Ok(ddl) => ddl,
                Err(refusal) => return Ok(Err(refusal)),
            };
            if let Err(refusal) = self.run_ddl(conn, table, &ddl, "create_table").await? {
                return Ok(Err(refusal));
            }
            info = self.describe(conn, table).await?;
        }
        let Some(mut info) = info else {
            return Ok(Err((
                class::SCHEMA,
                format!("table `{}` vanished after CREATE TABLE", table.as_str()),
            )));
        };
        for (i, field) in shape.fields.iter().enumerate() {
            let is_key = i < shape.pk_len;
            match info.columns.get(&field.name.to_lowercase()) {
                Some(col) => {
                    let fits_column = family_of_data_type(&col.data_type)
                        .is_some_and(|f| fits(&field.field_type, f));
                    if !fits_column {
                        let wanted = checked_sql_type(field, is_key)
                            .unwrap_or_else(|_| field.field_type.connect_type().to_string());
                        return Ok(Err((class::SCHEMA, format!(
                            "table `{}` column `{}` has type {} but the record's field has type {wanted} ({}); this type change is not applied automatically: alter the column or route the topic to another table",
                            table.as_str(), col.name, col.column_type, field.field_type.connect_type()
                        ))));
                    }
                }
                None if !self.auto_evolve => {
                    return Ok(Err((class::SCHEMA, format!(
                        "table `{}` has no column `{}` for the record's field; add it or set auto.evolve=true",
                        table.as_str(), field.name
                    ))));
                }
                None if is_key => {
                    return Ok(Err((class::SCHEMA, format!(
                        "table `{}` has no column `{}`, which is part of the record key; a key change is not applied automatically",
                        table.as_str(), field.name
                    ))));
                }
                None => {
                    let sql_type = match checked_sql_type(field, false) {
                        Ok(t) => t,
                        Err(m) => return Ok(Err((class::SCHEMA, m))),
                    };
                    let name = &shape.names[i];
                    let ddl = format!(
                        "ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {name} {sql_type} NULL"
                    );
                    if let Err(refusal) = self.run_ddl(conn, table, &ddl, "add_column").await? {
                        return Ok(Err(refusal));
                    }
                    info = self.describe(conn, table).await?.unwrap_or_default();
                }
            }
        }
        if shape.pk_len > 0 {
            let wanted: Vec<String> = shape
                .pk_names()
                .iter()
                .map(|n| n.as_str().to_lowercase())
                .collect();
            let mut have = info.primary_key.clone();
            let mut sorted_wanted = wanted.clone();
            have.sort();
            sorted_wanted.sort();
            if have != sorted_wanted {
                return Ok(Err((class::SCHEMA, format!(
                    "table `{}` has primary key ({}) but the records are keyed by ({}); make them match (pk.mode, pk.fields) or use another table",
                    table.as_str(), info.primary_key.join(", "), wanted.join(", ")
                ))));
            }
        }
        Ok(Ok(()))
    }

    async fn run_ddl(
        &mut self,
        conn: &mut mysql_async::Conn,
        table: &Ident,
        ddl: &str,
        kind: &'static str,
    ) -> Result<Result<(), ShapeRefusal>, SinkError> {
        tracing::info!(table = table.as_str(), ddl, "applying DDL");
        match conn.query_drop(ddl).await {
            Ok(()) => {
                self.metrics.ddl.get_or_create(&DdlLabels { table: table.as_str().to_string(), kind }).inc();
                self.known.remove(table);
                Ok(Ok(()))
            }
            Err(e) => match (classify_db(&e), &e) {
                (DbErrorKind::Transient, _) => Err(SinkError::transient(class::DATABASE, format!("DDL on `{}`: {e}", table.as_str()))),
                (_, mysql_async::Error::Server(s)) if matches!(s.code, 1044 | 1045 | 1142 | 1143) => Err(SinkError::Fatal(format!(
                    "DDL on `{}` refused: {e}; grant the sink user CREATE and ALTER on database `{}`", table.as_str(), self.database
                ))),
                _ => Ok(Err((class::SCHEMA, format!("DDL on `{}` failed: {e} (statement: {ddl})", table.as_str())))),
            },
        }
    }

    async fn describe(
        &mut self,
        conn: &mut mysql_async::Conn,
        table: &Ident,
    ) -> Result<Option<TableInfo>, SinkError> {
        if let Some(info) = self.known.get(table) {
            return Ok(Some(info.clone()));
        }
        let rows: Vec<(String, String, String, String)> = conn
            .exec(
                "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, COLUMN_KEY FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
                (&self.database, table.as_str()),
            )
            .await
            .map_err(|e| crate::errors::db_error("reading information_schema", &e))?;
        if rows.is_empty() {
            return Ok(None);
        }
        let pk: Vec<(String,)> = conn
            .exec(
                "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE \
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION",
                (&self.database, table.as_str()),
            )
            .await
            .map_err(|e| crate::errors::db_error("reading information_schema", &e))?;
        let info = TableInfo {
            columns: rows
                .into_iter()
                .map(|(name, data_type, column_type, _)| {
                    (
                        name.to_lowercase(),
                        ColumnInfo {
                            name,
                            data_type,
                            column_type,
                        },
                    )
                })
                .collect(),
            primary_key: pk.into_iter().map(|(n,)| n.to_lowercase()).collect(),
        };
        self.known.insert(table.clone(), info.clone());
        Ok(Some(info))
    }
}

/// `CREATE TABLE IF NOT EXISTS` for `shape`: key columns `NOT NULL` and the primary key; other
/// columns nullable as their fields are optional.
pub fn create_table_sql(table: &Ident, shape: &Shape) -> Result<String, ShapeRefusal> {
    let mut columns = Vec::with_capacity(shape.fields.len() + 1);
    for (i, field) in shape.fields.iter().enumerate() {
        let is_key = i < shape.pk_len;
        let sql_type = checked_sql_type(field, is_key).map_err(|m| (class::SCHEMA, m))?;
        let null = if is_key || !field.optional {
            "NOT NULL"
        } else {
            "NULL"
        };
        columns.push(format!("{} {sql_type} {null}", shape.names[i]));
    }
    if shape.pk_len > 0 {
        let pk: Vec<String> = shape.pk_names().iter().map(|n| n.to_string()).collect();
        columns.push(format!("PRIMARY KEY ({})", pk.join(", ")));
    }
    Ok(format!(
        "CREATE TABLE IF NOT EXISTS {table} ({}) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        columns.join(", ")
    ))
}
