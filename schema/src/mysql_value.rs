//! [`Value`] from what mysql_common hands over: binlog row values and snapshot `SELECT` values.

use mysql_common::binlog::row::BinlogRow;
use mysql_common::binlog::value::BinlogValue;

use crate::column::{Column, TableSchema};
use crate::error::ValueError;
use crate::value::Value;

impl Value {
    /// Converts one binlog row value of `column`.
    pub fn from_binlog(column: &Column, value: &BinlogValue<'_>) -> Result<Value, ValueError> {
        let _ = (column, value);
        unimplemented!("from_binlog")
    }

    /// Converts one value of `column` read by a snapshot `SELECT` (text or binary protocol) that
    /// used [`TableSchema::select_list`].
    pub fn from_snapshot(
        column: &Column,
        value: &mysql_common::value::Value,
    ) -> Result<Value, ValueError> {
        let _ = (column, value);
        unimplemented!("from_snapshot")
    }
}

/// Converts a whole binlog row (all columns, FULL row image) of `table`.
pub fn row_from_binlog(table: &TableSchema, row: &BinlogRow) -> Result<Vec<Value>, ValueError> {
    let _ = (table, row);
    unimplemented!("row_from_binlog")
}

/// Converts a whole snapshot row selected with [`TableSchema::select_list`].
pub fn row_from_snapshot(
    table: &TableSchema,
    row: &mysql_common::row::Row,
) -> Result<Vec<Value>, ValueError> {
    let _ = (table, row);
    unimplemented!("row_from_snapshot")
}
