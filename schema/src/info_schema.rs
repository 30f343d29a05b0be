//! [`TableSchema`] from `information_schema`, for the snapshot path.
//!
//! Types are normalised to what the binlog can express: MariaDB's JSON (`longtext`) stays
//! `longtext`; every spatial type is `Geometry`; `uuid` and `inet6` become `Binary { length: 16 }`
//! and `inet4` `Binary { length: 4 }`, exactly as their table-map entries read.

use mysql_async::prelude::Queryable;

use crate::collation::Collation;
use crate::column::{BlobSize, Column, ColumnType, IntWidth, TableSchema};
use crate::error::SchemaError;

const COLUMNS_SQL: &str = "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, \
     CAST(CHARACTER_MAXIMUM_LENGTH AS UNSIGNED), CAST(NUMERIC_PRECISION AS UNSIGNED), \
     CAST(NUMERIC_SCALE AS UNSIGNED), CAST(DATETIME_PRECISION AS UNSIGNED), COLLATION_NAME \
     FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? \
     ORDER BY ORDINAL_POSITION";

const PRIMARY_KEY_SQL: &str = "SELECT COLUMN_NAME FROM information_schema.STATISTICS \
     WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX";

type ColumnRow = (
    String,
    String,
    String,
    String,
    Option<u64>,
    Option<u64>,
    Option<u64>,
    Option<u64>,
    Option<String>,
);

/// Labels of `enum('a','b''c')` / `set(...)` as `information_schema.COLUMNS.COLUMN_TYPE` shows them.
fn parse_labels(column_type: &str) -> Vec<String> {
    let inner = column_type
        .split_once('(')
        .map_or("", |(_, rest)| rest.strip_suffix(')').unwrap_or(rest));
    let mut labels = Vec::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\'' {
            continue;
        }
        let mut label = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\'' if chars.peek() == Some(&'\'') => {
                    chars.next();
                    label.push('\'');
                }
                '\'' => break,
                '\\' => label.extend(chars.next()),
                c => label.push(c),
            }
        }
        labels.push(label);
    }
    labels
}

fn narrow<T: TryFrom<u64> + Default>(v: Option<u64>) -> T {
    v.and_then(|v| T::try_from(v).ok()).unwrap_or_default()
}

fn map_type(row: &ColumnRow) -> Option<ColumnType> {
    let (_, data_type, column_type, _, char_len, precision, scale, fsp, collation) = row;
    let unsigned = column_type.contains("unsigned");
    let collation = collation
        .as_deref()
        .and_then(Collation::from_name)
        .unwrap_or(Collation::BINARY);
    let length: u32 = narrow(*char_len);
    let fsp: u8 = narrow(*fsp);
    let int = |width| ColumnType::Integer { width, unsigned };
    let text = |size| ColumnType::Text { size, collation };
    Some(match data_type.to_ascii_lowercase().as_str() {
        "tinyint" => int(IntWidth::Tiny),
        "smallint" => int(IntWidth::Small),
        "mediumint" => int(IntWidth::Medium),
        "int" => int(IntWidth::Int),
        "bigint" => int(IntWidth::Big),
        "decimal" => ColumnType::Decimal {
            precision: narrow(*precision),
            scale: narrow(*scale),
        },
        "float" => ColumnType::Float,
        "double" => ColumnType::Double,
        "bit" => ColumnType::Bit {
            bits: narrow(*precision),
        },
        "year" => ColumnType::Year,
        "date" => ColumnType::Date,
        "time" => ColumnType::Time { fsp },
        "datetime" => ColumnType::DateTime { fsp },
        "timestamp" => ColumnType::Timestamp { fsp },
        "char" => ColumnType::Char { length, collation },
        "varchar" => ColumnType::VarChar { length, collation },
        "tinytext" => text(BlobSize::Tiny),
        "text" => text(BlobSize::Regular),
        "mediumtext" => text(BlobSize::Medium),
        "longtext" => text(BlobSize::Long),
        "binary" => ColumnType::Binary { length },
        "varbinary" => ColumnType::VarBinary { length },
        "tinyblob" => ColumnType::Blob {
            size: BlobSize::Tiny,
        },
        "blob" => ColumnType::Blob {
            size: BlobSize::Regular,
        },
        "mediumblob" => ColumnType::Blob {
            size: BlobSize::Medium,
        },
        "longblob" => ColumnType::Blob {
            size: BlobSize::Long,
        },
        "enum" => ColumnType::Enum {
            labels: parse_labels(column_type),
        },
        "set" => ColumnType::Set {
            labels: parse_labels(column_type),
        },
        "json" => ColumnType::Json,
        "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
        | "multipolygon" | "geometrycollection" => ColumnType::Geometry,
        "uuid" | "inet6" => ColumnType::Binary { length: 16 },
        "inet4" => ColumnType::Binary { length: 4 },
        _ => return None,
    })
}

/// `name` as a MariaDB identifier: in backticks, a backtick in it doubled.
pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

impl TableSchema {
    /// Reads the schema of `database`.`table` from `information_schema`. Yields the same
    /// [`TableSchema`] as [`TableSchema::from_table_map`] for the same table.
    pub async fn load(
        conn: &mut mysql_async::Conn,
        database: &str,
        table: &str,
    ) -> Result<TableSchema, SchemaError> {
        let rows: Vec<ColumnRow> = conn.exec(COLUMNS_SQL, (database, table)).await?;
        if rows.is_empty() {
            return Err(SchemaError::TableNotFound {
                database: database.to_string(),
                table: table.to_string(),
            });
        }
        let columns = rows
            .iter()
            .map(|row| {
                let column_type = map_type(row).ok_or_else(|| SchemaError::UnsupportedType {
                    table: format!("{database}.{table}"),
                    column: row.0.clone(),
                    type_name: row.2.clone(),
                })?;
                Ok(Column {
                    name: row.0.clone(),
                    column_type,
                    nullable: row.3 == "YES",
                })
            })
            .collect::<Result<Vec<_>, SchemaError>>()?;
        let primary_key: Vec<String> = conn.exec(PRIMARY_KEY_SQL, (database, table)).await?;
        Ok(TableSchema {
            database: database.to_string(),
            table: table.to_string(),
            columns,
            primary_key,
        })
    }

    /// The select list a snapshot `SELECT` must use so that [`crate::Value::from_snapshot`]
    /// decodes exactly what the binlog carries: every column by name, except TIMESTAMP columns as
    /// `UNIX_TIMESTAMP(col)` (independent of the session time zone) and BINARY(n) columns as
    /// `CAST(col AS BINARY(n))` (UUID/INET6/INET4 as bytes). Works with the text and the binary
    /// protocol; use the binary protocol (prepared statements) for exact FLOAT values.
    pub fn select_list(&self) -> String {
        self.columns
            .iter()
            .map(|c| {
                let name = quote_ident(&c.name);
                match &c.column_type {
                    ColumnType::Timestamp { .. } => format!("UNIX_TIMESTAMP({name}) AS {name}"),
                    ColumnType::Binary { length } => {
                        format!("CAST({name} AS BINARY({length})) AS {name}")
                    }
                    _ => name,
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_enum_labels_with_quotes_and_commas() {
        assert_eq!(
            parse_labels("enum('a','b''c','d,e','')"),
            vec!["a", "b'c", "d,e", ""]
        );
        assert_eq!(parse_labels("set('x')"), vec!["x"]);
    }
}
