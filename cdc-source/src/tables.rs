//! The captured tables as the binlog describes them: each table-map event of a captured table
//! gives its [`TableSchema`] (with `binlog_row_metadata=FULL` the binlog carries names, types,
//! signedness, charsets and the primary key, so no schema-history topic is needed). A schema that
//! differs from the one seen before is a schema change: it is logged, counted, and the value
//! schema evolves so that the new registry version stays BACKWARD compatible.
//!
//! A captured table without a primary key is refused (a definite error naming the table): keyed
//! by the whole row, an UPDATE would reach the mirror as a new row next to the old one, so the
//! mirror would silently drift. Add a primary key or leave the table out with
//! `table.exclude.list`.
//!
//! `RENAME TABLE` and `DROP TABLE` (see `binlog/ddl.rs`) make the cache forget every name
//! involved ([`TableMapCache::renamed`], [`TableMapCache::dropped`]): table ids, schema and failure, so nothing
//! is decoded against a stale table. Capture then follows the include list by name: a table
//! renamed to a name the list leaves out is logged and counted (`rename_away`) and its rows are
//! skipped from then on; one renamed to a captured name is captured from its first rows event
//! (`rename_in`), in the topic of its new name. A dropped table's capture ends (logged, `drop`).
//!
//! A table whose text cannot be decoded (a column in a character set with no decoder, or bytes
//! without a character in their character set) fails alone: [`TableMapCache::fail`] logs the error
//! (naming table, column, charset and what to do), counts it in `cdc_source_table_failures_total`
//! and skips the table's rows from then on, while the other tables keep flowing. The failure
//! lasts until the source restarts; records of the table from the failure on are missing from
//! its topic, so after fixing the table, snapshot it again.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use cdc_schema::{key_schema, value_schema_in, diff, evolve_value_schema, RecordSchema, TableSchema};
use mysql_async::binlog::events::TableMapEvent;

use crate::config::SourceConfig;
use crate::error::SourceError;
use crate::binlog::ddl::TableName;
use crate::metrics::{SourceMetrics, TableDdl, TableLabel};

/// A captured table with its topic and record schemas.
#[derive(Debug)]
pub struct CapturedTable {
    pub schema: TableSchema,
    pub topic: String,
    pub key: Arc<RecordSchema>,
    pub value: Arc<RecordSchema>,
}

impl CapturedTable {
    /// Builds the record schemas of `schema`; `previous` is the value schema used so far.
    pub fn new(cfg: &SourceConfig, schema: TableSchema, previous: Option<&RecordSchema>) -> Result<Self, SourceError> {
        if schema.primary_key.is_empty() {
            return Err(no_primary_key(&schema.database, &schema.table));
        }
        let topic = cfg.topic(&schema.table);
        let key = Arc::new(key_schema(&topic, &schema));
        let next = value_schema_in(&topic, &schema, cfg.time_precision_mode);
        let value = Arc::new(match previous {
            Some(prev) => evolve_value_schema(prev, next),
            None => next,
        });
        Ok(CapturedTable { schema, topic, key, value })
    }
}

pub fn no_primary_key(db: &str, table: &str) -> SourceError {
    SourceError::Definite(format!(
        "table {db}.{table} has no primary key, so its rows cannot be keyed and updated in a mirror; add a primary key or exclude it with table.exclude.list"
    ))
}

/// Logs and counts the failure of one table (`shown` is `db.table`, `label` the metric's table):
/// the one place a table failure is reported, whatever its cause.
pub fn report_table_failure(metrics: &SourceMetrics, shown: &str, label: &str, error: &str) {
    tracing::error!(table = %shown, error, "table skipped until the source restarts; the other tables keep flowing; fix the table or exclude it with table.exclude.list, then snapshot it again");
    metrics.table_failures.get_or_create(&TableLabel { table: label.to_string() }).inc();
}

/// Table-map cache: table id → captured table (or not captured), and name → latest schema.
#[derive(Debug, Default)]
pub struct TableMapCache {
    by_id: HashMap<u64, Option<Arc<CapturedTable>>>,
    by_name: HashMap<(String, String), Arc<CapturedTable>>,
    /// Tables skipped after a definite error of their own (database, table).
    failed: HashSet<(String, String)>,
    /// The latest value schema the registry holds per topic, read at start: the `previous` of a
    /// table's first schema in this process, so a restart continues that subject's evolution
    /// (a column made optional stays optional) instead of registering a stricter version.
    registered: HashMap<String, Arc<RecordSchema>>,
    /// The last value schema of names forgotten by RENAME or DROP: a table that takes the name
    /// later writes to the same topic, so its value schema evolves from this one (the registry
    /// subject goes on) although it is a new table, not a schema change.
    retired: HashMap<(String, String), Arc<RecordSchema>>,
}

impl TableMapCache {
    /// Seeds the latest schema of a table (from the snapshot), so the first table map that
    /// matches it is not counted as a change.
    pub fn seed(&mut self, table: Arc<CapturedTable>) {
        self.by_name.insert((table.schema.database.clone(), table.schema.table.clone()), table);
    }

    /// Remembers the registry's latest value schema of `topic` (see `registered`).
    pub fn remember_registered(&mut self, topic: String, schema: RecordSchema) {
        self.registered.insert(topic, Arc::new(schema));
    }

    /// Forgets table ids: they are only meaningful within one binlog connection (a restarted
    /// server hands them out again from the start). Call on every new connection.
    pub fn forget_table_ids(&mut self) {
        self.by_id.clear();
    }

    /// Skips table `db`.`table` from now on after `error`, a definite error of its own: logs it,
    /// counts it, and lets the other tables go on.
    pub fn fail(&mut self, metrics: &SourceMetrics, db: &str, table: &str, error: &str) {
        report_table_failure(metrics, &format!("{db}.{table}"), table, error);
        self.by_id.retain(|_, t| t.as_ref().is_none_or(|t| t.schema.database != db || t.schema.table != table));
        self.failed.insert((db.to_string(), table.to_string()));
    }

    /// Whether `db`.`table` was skipped after an error of its own.
    pub fn is_failed(&self, db: &str, table: &str) -> bool {
        self.failed.contains(&(db.to_string(), table.to_string()))
    }

    /// Forgets everything known about `name`: its table ids, schema and failure.
    fn forget(&mut self, name: &TableName) {
        self.by_id.retain(|_, t| t.as_ref().is_none_or(|t| t.schema.database != name.db || t.schema.table != name.table));
        // Ids resolved as "not captured" are checked against the include list by name on every
        // use, so a table renamed into the list is resolved again.
        let key = (name.db.clone(), name.table.clone());
        if let Some(known) = self.by_name.remove(&key) {
            self.retired.insert(key, known.value.clone());
        }
        self.failed.remove(&(name.db.clone(), name.table.clone()));
    }

    /// `RENAME TABLE from TO to` (or `ALTER TABLE from RENAME TO to`) ran at the source.
    pub fn renamed(&mut self, cfg: &SourceConfig, metrics: &SourceMetrics, from: &TableName, to: &TableName) {
        self.forget(from);
        self.forget(to);
        let (was, is) = (cfg.tables.matches(&from.db, &from.table), cfg.tables.matches(&to.db, &to.table));
        let (ddl, table) = match (was, is) {
            (true, false) => {
                tracing::warn!(from = %from, to = %to, "captured table renamed to a name the include list leaves out: its changes are no longer captured");
                ("rename_away", &from.table)
            }
            (false, true) => {
                tracing::info!(from = %from, to = %to, topic = %cfg.topic(&to.table), "table renamed to a captured name: captured from its next change");
                ("rename_in", &to.table)
            }
            (true, true) => {
                tracing::info!(from = %from, to = %to, topic = %cfg.topic(&to.table), "captured table renamed: its changes now go to the topic of its new name");
                ("rename", &to.table)
            }
            (false, false) => return,
        };
        metrics.table_ddl.get_or_create(&TableDdl { table: table.clone(), ddl }).inc();
    }

    /// `DROP TABLE name` ran at the source.
    pub fn dropped(&mut self, cfg: &SourceConfig, metrics: &SourceMetrics, name: &TableName) {
        self.forget(name);
        if cfg.tables.matches(&name.db, &name.table) {
            tracing::info!(table = %name, "captured table dropped: its capture ends (a table created again under the name is captured from its first change)");
            metrics.table_ddl.get_or_create(&TableDdl { table: name.table.clone(), ddl: "drop" }).inc();
        }
    }

    /// The captured table a rows event's table map describes, or `None` when it is not captured
    /// (or failed).
    /// The tables resolved so far, by name.
    pub fn names(&self) -> impl Iterator<Item = &(String, String)> {
        self.by_name.keys()
    }

    /// The table to publish a snapshot chunk of `schema` with: the one the stream knows when its
    /// schema is the same, else a new one evolved from it (remembered when the stream knows none).
    pub fn for_snapshot(&mut self, cfg: &SourceConfig, schema: TableSchema) -> Result<Arc<CapturedTable>, SourceError> {
        let key = (schema.database.clone(), schema.table.clone());
        match self.by_name.get(&key) {
            Some(known) if known.schema == schema => Ok(known.clone()),
            Some(known) => Ok(Arc::new(CapturedTable::new(cfg, schema, Some(&known.value))?)),
            None => {
                let previous = self.registered.get(&cfg.topic(&schema.table)).cloned();
                let t = Arc::new(CapturedTable::new(cfg, schema, previous.as_deref())?);
                self.by_name.insert(key, t.clone());
                Ok(t)
            }
        }
    }

    pub fn resolve(
        &mut self,
        cfg: &SourceConfig,
        metrics: &SourceMetrics,
        table_id: u64,
        tme: &TableMapEvent<'_>,
    ) -> Result<Option<Arc<CapturedTable>>, SourceError> {
        let db = tme.database_name();
        let name = tme.table_name();
        if let Some(hit) = self.by_id.get(&table_id) {
            // A table id belongs to one table for the life of a server; checking the name as well
            // costs little and guards against ids reused after a restart.
            match hit {
                Some(t) if t.schema.database == db && t.schema.table == name => return Ok(hit.clone()),
                None if !cfg.tables.matches(&db, &name) => return Ok(None),
                _ => {}
            }
        }
        let db = db.into_owned();
        let name = name.into_owned();
        let failed = self.failed.contains(&(db.clone(), name.clone()));
        let resolved = if cfg.tables.matches(&db, &name) && !failed {
            let schema = TableSchema::from_table_map(tme)
                .map_err(|error| SourceError::Schema { context: format!("table {db}.{name}"), error })?;
            let undecodable = schema.columns.iter().find(|c| c.column_type.collation().is_some_and(|k| !k.can_decode()));
            if let Some(c) = undecodable {
                let charset = c.column_type.collation().map_or("unknown", |k| k.charset());
                let error = format!(
                    "table {db}.{name} column `{}` is in character set {charset} (collation {}), which cdc-source cannot decode; convert the column to utf8mb4 (ALTER TABLE ... MODIFY ... CHARACTER SET utf8mb4) or exclude the table with table.exclude.list",
                    c.name,
                    c.column_type.collation().map_or_else(String::new, |k| k.name()),
                );
                if cfg.errors_tolerance == crate::config::ErrorTolerance::None {
                    return Err(SourceError::Definite(format!("{error} (errors.tolerance=none stops the source on a table that cannot be published)")));
                }
                self.fail(metrics, &db, &name, &error);
                self.by_id.insert(table_id, None);
                return Ok(None);
            }
            let key = (db.clone(), name.clone());
            match self.by_name.get(&key) {
                Some(known) if known.schema == schema => Some(known.clone()),
                known => {
                    let previous = known
                        .map(|k| k.value.clone())
                        .or_else(|| self.retired.remove(&key))
                        .or_else(|| self.registered.get(&cfg.topic(&name)).cloned());
                    if let Some(k) = known {
                        let changes = diff(&k.schema, &schema);
                        tracing::info!(table = %format!("{db}.{name}"), changes = ?changes, "table schema changed");
                        metrics.schema_changes.get_or_create(&TableLabel { table: name.clone() }).inc();
                    }
                    let t = Arc::new(CapturedTable::new(cfg, schema, previous.as_deref())?);
                    // The series exists at 0 from the table's first event, so dashboards and
                    // alerts see the table before anything goes wrong with it.
                    let _ = metrics.table_failures.get_or_create(&TableLabel { table: name.clone() });
                    for ddl in crate::metrics::TABLE_DDL_KINDS {
                        let _ = metrics.table_ddl.get_or_create(&TableDdl { table: name.clone(), ddl });
                    }
                    self.by_name.insert(key, t.clone());
                    Some(t)
                }
            }
        } else {
            None
        };
        if self.by_id.len() > 10_000 {
            self.by_id.clear();
        }
        self.by_id.insert(table_id, resolved.clone());
        Ok(resolved)
    }
}
