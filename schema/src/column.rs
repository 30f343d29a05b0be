//! The column model: what a MariaDB column is, independent of where it was learned from.
//!
//! A [`TableSchema`] is built either from a binlog table-map event (`binlog.rs`, needs
//! `binlog_row_metadata=FULL`) or from `information_schema` (`info_schema.rs`). Both builders
//! produce equal values for the same table: only facts the binlog carries are part of the model
//! (no defaults, no comments, no display widths).

use std::fmt;

use crate::collation::Collation;

/// Storage width of an integer column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IntWidth {
    /// TINYINT, 1 byte.
    Tiny,
    /// SMALLINT, 2 bytes.
    Small,
    /// MEDIUMINT, 3 bytes.
    Medium,
    /// INT, 4 bytes.
    Int,
    /// BIGINT, 8 bytes.
    Big,
}

impl IntWidth {
    /// SQL keyword of this width (`tinyint` … `bigint`).
    pub fn sql_name(self) -> &'static str {
        match self {
            IntWidth::Tiny => "tinyint",
            IntWidth::Small => "smallint",
            IntWidth::Medium => "mediumint",
            IntWidth::Int => "int",
            IntWidth::Big => "bigint",
        }
    }

    /// Smallest and largest value of this width.
    pub fn range(self, unsigned: bool) -> (i128, i128) {
        let bits = match self {
            IntWidth::Tiny => 8,
            IntWidth::Small => 16,
            IntWidth::Medium => 24,
            IntWidth::Int => 32,
            IntWidth::Big => 64,
        };
        if unsigned {
            (0, (1i128 << bits) - 1)
        } else {
            (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
        }
    }
}

/// Length class of a BLOB/TEXT column (its length prefix is 1, 2, 3 or 4 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlobSize {
    /// TINYBLOB / TINYTEXT (up to 255 bytes).
    Tiny,
    /// BLOB / TEXT (up to 64 KiB).
    Regular,
    /// MEDIUMBLOB / MEDIUMTEXT (up to 16 MiB).
    Medium,
    /// LONGBLOB / LONGTEXT (up to 4 GiB).
    Long,
}

impl BlobSize {
    /// Size class from the number of length bytes (1..=4) the binlog metadata carries.
    pub fn from_pack_length(len: u8) -> Option<BlobSize> {
        match len {
            1 => Some(BlobSize::Tiny),
            2 => Some(BlobSize::Regular),
            3 => Some(BlobSize::Medium),
            4 => Some(BlobSize::Long),
            _ => None,
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            BlobSize::Tiny => "tiny",
            BlobSize::Regular => "",
            BlobSize::Medium => "medium",
            BlobSize::Long => "long",
        }
    }
}

/// The type of a MariaDB column, with everything needed to recreate it and decode its values.
///
/// Lengths of character columns are in characters (as declared), of binary columns in bytes.
/// MariaDB `JSON` is `LONGTEXT` with a `json_valid` CHECK and appears here as
/// `Text { size: Long, .. }` (the binlog cannot tell them apart); [`ColumnType::Json`] is the
/// MySQL native JSON type. MariaDB's `UUID` and `INET6` are `Binary { length: 16 }` and `INET4` is
/// `Binary { length: 4 }`: the binlog carries them exactly like BINARY columns, so both paths
/// describe them that way (see the crate docs).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ColumnType {
    /// TINYINT … BIGINT, signed or UNSIGNED.
    Integer { width: IntWidth, unsigned: bool },
    /// DECIMAL(precision, scale), precision 1..=65, scale 0..=38.
    Decimal { precision: u8, scale: u8 },
    /// FLOAT (4-byte IEEE).
    Float,
    /// DOUBLE (8-byte IEEE).
    Double,
    /// BIT(bits), 1..=64.
    Bit { bits: u8 },
    /// YEAR (1901..=2155, or 0).
    Year,
    /// DATE.
    Date,
    /// TIME(fsp): signed, up to ±838:59:59.999999.
    Time { fsp: u8 },
    /// DATETIME(fsp): wall-clock, no time zone.
    DateTime { fsp: u8 },
    /// TIMESTAMP(fsp): a UTC instant.
    Timestamp { fsp: u8 },
    /// CHAR(length).
    Char { length: u32, collation: Collation },
    /// VARCHAR(length).
    VarChar { length: u32, collation: Collation },
    /// TINYTEXT, TEXT, MEDIUMTEXT, LONGTEXT (and MariaDB JSON, which is LONGTEXT).
    Text {
        size: BlobSize,
        collation: Collation,
    },
    /// BINARY(length).
    Binary { length: u32 },
    /// VARBINARY(length).
    VarBinary { length: u32 },
    /// TINYBLOB, BLOB, MEDIUMBLOB, LONGBLOB.
    Blob { size: BlobSize },
    /// ENUM with its labels in declaration order (index 1 is the first label).
    Enum { labels: Vec<String> },
    /// SET with its labels in declaration order (bit 0 is the first label).
    Set { labels: Vec<String> },
    /// MySQL's native JSON (binary JSONB in the binlog).
    Json,
    /// Any spatial type; values are MariaDB's internal form (4-byte SRID + WKB).
    Geometry,
}

impl ColumnType {
    /// The column type as MariaDB DDL, e.g. `varchar(20)`, `bigint unsigned`, `decimal(65,30)`,
    /// `enum('a','b')`. Character columns name their character set and collation when these are
    /// not utf8mb4's default. This is the text carried in the `cdc.column.type` field parameter.
    pub fn sql(&self) -> String {
        self.to_string()
    }

    /// The collation of a character column (`None` for every other type).
    pub fn collation(&self) -> Option<Collation> {
        match self {
            ColumnType::Char { collation, .. }
            | ColumnType::VarChar { collation, .. }
            | ColumnType::Text { collation, .. } => Some(*collation),
            _ => None,
        }
    }
}

fn quoted_labels(labels: &[String]) -> String {
    labels
        .iter()
        .map(|l| format!("'{}'", l.replace('\\', "\\\\").replace('\'', "''")))
        .collect::<Vec<_>>()
        .join(",")
}

fn with_fsp(name: &str, fsp: u8) -> String {
    if fsp == 0 {
        name.to_string()
    } else {
        format!("{name}({fsp})")
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            ColumnType::Integer { width, unsigned } => {
                let sign = if *unsigned { " unsigned" } else { "" };
                format!("{}{sign}", width.sql_name())
            }
            ColumnType::Decimal { precision, scale } => format!("decimal({precision},{scale})"),
            ColumnType::Float => "float".into(),
            ColumnType::Double => "double".into(),
            ColumnType::Bit { bits } => format!("bit({bits})"),
            ColumnType::Year => "year".into(),
            ColumnType::Date => "date".into(),
            ColumnType::Time { fsp } => with_fsp("time", *fsp),
            ColumnType::DateTime { fsp } => with_fsp("datetime", *fsp),
            ColumnType::Timestamp { fsp } => with_fsp("timestamp", *fsp),
            ColumnType::Char { length, collation } => {
                format!("char({length}){}", collation.ddl_suffix())
            }
            ColumnType::VarChar { length, collation } => {
                format!("varchar({length}){}", collation.ddl_suffix())
            }
            ColumnType::Text { size, collation } => {
                format!("{}text{}", size.prefix(), collation.ddl_suffix())
            }
            ColumnType::Binary { length } => format!("binary({length})"),
            ColumnType::VarBinary { length } => format!("varbinary({length})"),
            ColumnType::Blob { size } => format!("{}blob", size.prefix()),
            ColumnType::Enum { labels } => format!("enum({})", quoted_labels(labels)),
            ColumnType::Set { labels } => format!("set({})", quoted_labels(labels)),
            ColumnType::Json => "json".into(),
            ColumnType::Geometry => "geometry".into(),
        };
        f.write_str(&text)
    }
}

/// One column of a table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Column {
    /// Column name as declared.
    pub name: String,
    /// Column type.
    pub column_type: ColumnType,
    /// Whether the column accepts NULL.
    pub nullable: bool,
}

/// A table: its columns in ordinal order and its primary key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableSchema {
    /// Database (schema) name.
    pub database: String,
    /// Table name.
    pub table: String,
    /// Columns in ordinal order (the order of values in a row).
    pub columns: Vec<Column>,
    /// Primary-key column names in key order; empty when the table has no primary key.
    pub primary_key: Vec<String>,
}

impl TableSchema {
    /// The column called `name`, if any.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Ordinal positions of the primary-key columns, in key order.
    pub fn primary_key_indexes(&self) -> Vec<usize> {
        self.primary_key
            .iter()
            .filter_map(|k| self.columns.iter().position(|c| &c.name == k))
            .collect()
    }

    /// The primary-key columns, in key order.
    pub fn primary_key_columns(&self) -> Vec<&Column> {
        self.primary_key_indexes()
            .into_iter()
            .map(|i| &self.columns[i])
            .collect()
    }
}
