//! [`TableSchema`] from a binlog table-map event (`binlog_row_metadata=FULL`).

use mysql_common::binlog::events::TableMapEvent;

use crate::column::TableSchema;
use crate::error::SchemaError;

impl TableSchema {
    /// Builds the schema of the table a table-map event describes. Needs the optional metadata
    /// of `binlog_row_metadata=FULL` (column names, signedness, charsets, ENUM/SET labels,
    /// primary key); fails naming the setting when it is missing.
    pub fn from_table_map(event: &TableMapEvent<'_>) -> Result<TableSchema, SchemaError> {
        let _ = event;
        unimplemented!("from_table_map")
    }
}
