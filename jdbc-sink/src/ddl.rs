//! Mirror tables: created from the record schema (`auto.create`), evolved with the source's DDL
//! (`auto.evolve`), and checked against every new record shape before a batch is written.
//!
//! `auto.evolve` applies three kinds of change:
//! - a new field adds a NULL column (`ADD COLUMN IF NOT EXISTS`);
//! - a field whose exact type (`cdc.column.type`) is a widening of its column (see
//!   [`crate::widen`]) widens the column: `ALTER TABLE … MODIFY` to that type, keeping the
//!   column's nullability, character set, collation, default and auto-increment;
//! - a NOT NULL column without a default that the records do not carry (dropped or renamed at
//!   the source) becomes NULLable, so inserts do not fail with 1364.
//!
//! Each is harmless to repeat (the next check finds the column already as wanted). DDL commits
//! implicitly in MariaDB, so it runs **before** the batch transaction begins: a crash between DDL
//! and the batch commit leaves nothing to undo. The session's `lock_wait_timeout`
//! ([`crate::writer::DDL_LOCK_WAIT_SECONDS`]) bounds the wait for a metadata lock held by another
//! session; it ends as a transient error, retried.
//!
//! A change the sink will not apply by itself is refused with a message naming the table, the
//! column and both types: a field whose exact type is not a widening of the column (narrower in
//! some way and wider in another, another family: values would be rounded or cut), a wider type
//! while `auto.evolve` is off, a field without an exact type whose type family does not fit the
//! column (e.g. a string into an `int` column), a record key that is not the table's primary key,
//! a NOT NULL column the records lack while `auto.evolve` is off, or a missing column or table
//! while `auto.evolve` / `auto.create` is off. A column narrowed at the source keeps its wider
//! mirror column, which holds every value.

use std::collections::HashMap;

use mysql_async::prelude::Queryable;

use crate::change::Shape;
use crate::coltype::{checked_sql_type, family_of_data_type, fits};
use crate::errors::{class, classify_db, DbErrorKind, SinkError};
use crate::ident::Ident;
use crate::widen::{compare, Fit};
use crate::metrics::{DdlLabels, SinkMetrics};

/// A column as the server describes it.
#[derive(Debug, Clone)]
struct ColumnInfo {
    name: String,
    data_type: String,
    column_type: String,
    nullable: bool,
    /// `COLUMN_DEFAULT` as the server writes it (a quoted literal, `NULL` or an expression).
    default: Option<String>,
    /// `EXTRA` (auto_increment, generated columns, ON UPDATE).
    extra: String,
    charset: Option<String>,
    collation: Option<String>,
}

impl ColumnInfo {
    /// The column's character set and collation as DDL text, unless `sql_type` names its own:
    /// `MODIFY` would otherwise give the column the table's defaults.
    fn charset_clause(&self, sql_type: &str) -> String {
        if sql_type.to_ascii_lowercase().contains("character set") {
            return String::new();
        }
        match (&self.charset, &self.collation) {
            (Some(cs), Some(co)) => format!(" CHARACTER SET {cs} COLLATE {co}"),
            (Some(cs), None) => format!(" CHARACTER SET {cs}"),
            _ => String::new(),
        }
    }

    /// What `MODIFY` must repeat so that only the type or the nullability changes.
    fn kept_attributes(&self) -> String {
        let mut out = String::new();
        if let Some(d) = self.default.as_deref().filter(|d| !d.eq_ignore_ascii_case("null")) {
            out.push_str(&format!(" DEFAULT {d}"));
        }
        if self.extra.to_ascii_lowercase().contains("auto_increment") {
            out.push_str(" AUTO_INCREMENT");
        }
        out
    }

    /// Whether an insert that leaves the column out fails (1364).
    fn needs_a_value(&self) -> bool {
        let extra = self.extra.to_ascii_lowercase();
        !self.nullable
            && self.default.is_none()
            && !["auto_increment", "virtual", "persistent", "stored"].iter().any(|w| extra.contains(w))
    }
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
pub struct MirrorTables {
    database: String,
    auto_create: bool,
    auto_evolve: bool,
    known: HashMap<Ident, TableInfo>,
    /// Shapes already found to fit their table. Refusals are not remembered: the table may be
    /// fixed by hand while the sink runs.
    checked: std::collections::HashSet<(Ident, String, bool)>,
    metrics: SinkMetrics,
}

impl MirrorTables {
    pub fn new(
        database: &str,
        auto_create: bool,
        auto_evolve: bool,
        metrics: SinkMetrics,
    ) -> MirrorTables {
        MirrorTables {
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

    /// Makes `table` ready for `shape`: creates or evolves it as configured. `inserts`: the shape
    /// inserts rows (so every mirror column must be given or have a default). `Ok(Err(_))` means
    /// records of this shape can never be written to this table.
    pub async fn prepare(
        &mut self,
        conn: &mut mysql_async::Conn,
        table: &Ident,
        shape: &Shape,
        inserts: bool,
    ) -> Result<Result<(), ShapeRefusal>, SinkError> {
        let key = (table.clone(), shape.id.clone(), inserts);
        if self.checked.contains(&key) {
            return Ok(Ok(()));
        }
        let outcome = self.prepare_uncached(conn, table, shape, inserts).await?;
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
        inserts: bool,
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
                    let col = col.clone();
                    let exact = field
                        .column_type()
                        .and_then(|_| checked_sql_type(field, is_key).ok());
                    let fit = exact
                        .as_deref()
                        .and_then(|w| compare(&col.column_type, w).map(|f| (w.to_string(), f)));
                    match fit {
                        Some((_, Fit::Holds)) => {}
                        Some((wanted, Fit::Widen)) if self.auto_evolve => {
                            let null = if col.nullable { "NULL" } else { "NOT NULL" };
                            let ddl = format!(
                                "ALTER TABLE {table} MODIFY COLUMN {} {wanted}{} {null}{}",
                                shape.names[i], col.charset_clause(&wanted), col.kept_attributes()
                            );
                            if let Err(refusal) = self.run_ddl(conn, table, &ddl, "modify_column").await? {
                                return Ok(Err(refusal));
                            }
                            info = self.describe(conn, table).await?.unwrap_or_default();
                        }
                        Some((wanted, Fit::Widen)) => {
                            return Ok(Err((class::SCHEMA, format!(
                                "table `{}` column `{}` has type {} but the record's field has type {wanted}, which is wider; they are not written into the narrower column (values would be cut or rounded): set auto.evolve=true, or run ALTER TABLE `{}` MODIFY `{}` {wanted}",
                                table.as_str(), col.name, col.column_type, table.as_str(), col.name
                            ))));
                        }
                        Some((wanted, Fit::Neither)) => {
                            return Ok(Err((class::SCHEMA, format!(
                                "table `{}` column `{}` has type {} but the record's field has type {wanted}; that is not a widening (values would be cut, rounded or refused), so the sink neither changes the column nor writes the records: alter the column by hand to a type that holds both, or route the topic to another table",
                                table.as_str(), col.name, col.column_type
                            ))));
                        }
                        None => {
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
        if inserts {
            if let Err(refusal) = self.relax_missing(conn, table, shape, &info).await? {
                return Ok(Err(refusal));
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

    /// Mirror columns the records do not carry (dropped or renamed at the source) that an insert
    /// cannot leave out (NOT NULL, no default): with `auto.evolve` they become NULLable, else the
    /// shape is refused naming them.
    async fn relax_missing(
        &mut self,
        conn: &mut mysql_async::Conn,
        table: &Ident,
        shape: &Shape,
        info: &TableInfo,
    ) -> Result<Result<(), ShapeRefusal>, SinkError> {
        let mut missing: Vec<&ColumnInfo> = info
            .columns
            .iter()
            .filter(|(lower, col)| {
                col.needs_a_value()
                    && !info.primary_key.contains(lower)
                    && !shape.fields.iter().any(|f| f.name.eq_ignore_ascii_case(lower))
            })
            .map(|(_, col)| col)
            .collect();
        missing.sort_by(|a, b| a.name.cmp(&b.name));
        for col in missing {
            if !self.auto_evolve {
                return Ok(Err((class::SCHEMA, format!(
                    "table `{}` column `{}` ({}) is NOT NULL without a default, but the records carry no field for it (dropped or renamed at the source?), so inserts would fail: make it NULLable (ALTER TABLE `{}` MODIFY `{}` {} NULL), give it a default, or set auto.evolve=true",
                    table.as_str(), col.name, col.column_type, table.as_str(), col.name, col.column_type
                ))));
            }
            let name = Ident::new(&col.name).map_err(|e| SinkError::Definite(e.to_string()))?;
            let ddl = format!(
                "ALTER TABLE {table} MODIFY COLUMN {name} {}{} NULL{}",
                col.column_type, col.charset_clause(&col.column_type), col.kept_attributes()
            );
            if let Err(refusal) = self.run_ddl(conn, table, &ddl, "drop_not_null").await? {
                return Ok(Err(refusal));
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
                (DbErrorKind::Transient, mysql_async::Error::Server(s)) if s.code == 1205 => Err(SinkError::transient(class::DATABASE, format!(
                    "DDL on `{}` waited {}s for its metadata lock: another session holds the table (a long or idle open transaction?); retrying: {e}", table.as_str(), crate::writer::DDL_LOCK_WAIT_SECONDS
                ))),
                (DbErrorKind::Transient, _) => Err(SinkError::transient(class::DATABASE, format!("DDL on `{}`: {e}", table.as_str()))),
                (_, mysql_async::Error::Server(s)) if matches!(s.code, 1044 | 1045 | 1142 | 1143) => Err(SinkError::Definite(format!(
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
        type Row = (String, String, String, String, Option<String>, String, Option<String>, Option<String>);
        let rows: Vec<Row> = conn
            .exec(
                "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA, \
                 CHARACTER_SET_NAME, COLLATION_NAME FROM information_schema.COLUMNS \
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
                .map(|(name, data_type, column_type, nullable, default, extra, charset, collation)| {
                    (
                        name.to_lowercase(),
                        ColumnInfo {
                            name,
                            data_type,
                            column_type,
                            nullable: nullable.eq_ignore_ascii_case("yes"),
                            default,
                            extra,
                            charset,
                            collation,
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
