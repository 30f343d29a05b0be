//! [`TableSchema`] from a binlog table-map event (`binlog_row_metadata=FULL`).
//!
//! The event carries, per column, a type byte and type metadata (lengths in bytes, precision,
//! fsp), plus optional metadata: names, signedness of numeric columns, collations of character
//! columns, ENUM/SET labels and the primary key. Lengths of character columns are bytes; they
//! are divided by the collation's bytes per character to give the declared length.

use mysql_common::binlog::events::{OptionalMetaExtractor, OptionalMetadataField, TableMapEvent};
use mysql_common::constants::ColumnType as Raw;

use crate::collation::Collation;
use crate::column::{BlobSize, Column, ColumnType, IntWidth, TableSchema};
use crate::error::SchemaError;

/// Per-column facts read from the optional metadata.
struct Facts {
    unsigned: bool,
    collation: Option<Collation>,
    labels: Option<Vec<String>>,
}

fn labels_of(values: &[impl AsRef<[u8]>], charset: Collation) -> Vec<String> {
    values
        .iter()
        .map(|v| {
            charset
                .decode(v.as_ref())
                .unwrap_or_else(|_| String::from_utf8_lossy(v.as_ref()).into_owned())
        })
        .collect()
}

/// Labels of each ENUM (or SET) column, in column order.
type LabelLists = Vec<Vec<String>>;

/// ENUM and SET labels, in column order of the ENUM (resp. SET) columns.
fn enum_and_set_labels(
    event: &TableMapEvent<'_>,
    charset: Collation,
) -> std::io::Result<(LabelLists, LabelLists)> {
    let mut enums = Vec::new();
    let mut sets = Vec::new();
    for field in event.iter_optional_meta() {
        match field? {
            OptionalMetadataField::EnumStrValue(v) => {
                for labels in v.iter_values() {
                    let labels = labels?;
                    let raw: Vec<&[u8]> = labels.values().iter().map(|l| l.value_raw()).collect();
                    enums.push(labels_of(&raw, charset));
                }
            }
            OptionalMetadataField::SetStrValue(v) => {
                for labels in v.iter_values() {
                    let labels = labels?;
                    let raw: Vec<&[u8]> = labels.values().iter().map(|l| l.value_raw()).collect();
                    sets.push(labels_of(&raw, charset));
                }
            }
            _ => {}
        }
    }
    Ok((enums, sets))
}

/// The declared length of a CHAR/BINARY column from its type metadata (bytes).
fn string_byte_length(meta: &[u8]) -> u32 {
    let (b0, b1) = (u32::from(meta[0]), u32::from(meta[1]));
    if b0 & 0x30 != 0x30 {
        b1 | (((b0 & 0x30) ^ 0x30) << 4)
    } else {
        b1
    }
}

fn chars(bytes: u32, collation: Collation) -> u32 {
    bytes / collation.max_bytes_per_char()
}

fn column_type(raw: Raw, meta: &[u8], facts: &Facts) -> Option<ColumnType> {
    let int = |width| {
        Some(ColumnType::Integer {
            width,
            unsigned: facts.unsigned,
        })
    };
    let byte = |i: usize| meta.get(i).copied().unwrap_or(0);
    let collation = facts.collation.unwrap_or(Collation::BINARY);
    Some(match raw {
        Raw::MYSQL_TYPE_TINY => return int(IntWidth::Tiny),
        Raw::MYSQL_TYPE_SHORT => return int(IntWidth::Small),
        Raw::MYSQL_TYPE_INT24 => return int(IntWidth::Medium),
        Raw::MYSQL_TYPE_LONG => return int(IntWidth::Int),
        Raw::MYSQL_TYPE_LONGLONG => return int(IntWidth::Big),
        Raw::MYSQL_TYPE_NEWDECIMAL => ColumnType::Decimal {
            precision: byte(0),
            scale: byte(1),
        },
        Raw::MYSQL_TYPE_FLOAT => ColumnType::Float,
        Raw::MYSQL_TYPE_DOUBLE => ColumnType::Double,
        Raw::MYSQL_TYPE_BIT => ColumnType::Bit {
            bits: byte(1) * 8 + byte(0),
        },
        Raw::MYSQL_TYPE_YEAR => ColumnType::Year,
        Raw::MYSQL_TYPE_DATE | Raw::MYSQL_TYPE_NEWDATE => ColumnType::Date,
        Raw::MYSQL_TYPE_TIME => ColumnType::Time { fsp: 0 },
        Raw::MYSQL_TYPE_TIME2 => ColumnType::Time { fsp: byte(0) },
        Raw::MYSQL_TYPE_DATETIME => ColumnType::DateTime { fsp: 0 },
        Raw::MYSQL_TYPE_DATETIME2 => ColumnType::DateTime { fsp: byte(0) },
        Raw::MYSQL_TYPE_TIMESTAMP => ColumnType::Timestamp { fsp: 0 },
        Raw::MYSQL_TYPE_TIMESTAMP2 => ColumnType::Timestamp { fsp: byte(0) },
        Raw::MYSQL_TYPE_VARCHAR | Raw::MYSQL_TYPE_VAR_STRING => {
            let bytes = u32::from(u16::from_le_bytes([byte(0), byte(1)]));
            if collation.is_binary() {
                ColumnType::VarBinary { length: bytes }
            } else {
                ColumnType::VarChar {
                    length: chars(bytes, collation),
                    collation,
                }
            }
        }
        Raw::MYSQL_TYPE_STRING => {
            let bytes = string_byte_length(meta);
            if collation.is_binary() {
                ColumnType::Binary { length: bytes }
            } else {
                ColumnType::Char {
                    length: chars(bytes, collation),
                    collation,
                }
            }
        }
        Raw::MYSQL_TYPE_ENUM => ColumnType::Enum {
            labels: facts.labels.clone()?,
        },
        Raw::MYSQL_TYPE_SET => ColumnType::Set {
            labels: facts.labels.clone()?,
        },
        Raw::MYSQL_TYPE_BLOB
        | Raw::MYSQL_TYPE_TINY_BLOB
        | Raw::MYSQL_TYPE_MEDIUM_BLOB
        | Raw::MYSQL_TYPE_LONG_BLOB => {
            let size = BlobSize::from_pack_length(byte(0))?;
            if collation.is_binary() {
                ColumnType::Blob { size }
            } else {
                ColumnType::Text { size, collation }
            }
        }
        Raw::MYSQL_TYPE_JSON => ColumnType::Json,
        Raw::MYSQL_TYPE_GEOMETRY => ColumnType::Geometry,
        _ => return None,
    })
}

impl TableSchema {
    /// Builds the schema of the table a table-map event describes. Needs the optional metadata
    /// of `binlog_row_metadata=FULL` (column names, signedness, charsets, ENUM/SET labels,
    /// primary key); fails naming the setting when it is missing.
    pub fn from_table_map(event: &TableMapEvent<'_>) -> Result<TableSchema, SchemaError> {
        let table = format!("{}.{}", event.database_name(), event.table_name());
        let malformed = |message: String| SchemaError::Malformed {
            table: table.clone(),
            message,
        };
        let meta = OptionalMetaExtractor::new(event.iter_optional_meta())
            .map_err(|e| malformed(e.to_string()))?;
        let names: Vec<String> = meta
            .iter_column_name()
            .map(|n| n.map(|n| n.name().into_owned()))
            .collect::<Result<_, _>>()
            .map_err(|e| malformed(e.to_string()))?;
        let count = usize::try_from(event.columns_count()).unwrap_or(usize::MAX);
        if names.len() != count {
            return Err(SchemaError::MissingMetadata {
                table,
                what: "column names",
            });
        }
        let enum_set_charset = meta
            .iter_enum_and_set_charset()
            .next()
            .and_then(Result::ok)
            .map_or(Collation::UTF8MB4_GENERAL_CI, Collation::from_id);
        let (mut enums, mut sets) =
            enum_and_set_labels(event, enum_set_charset).map_err(|e| malformed(e.to_string()))?;
        enums.reverse();
        sets.reverse();
        let mut signedness = meta.iter_signedness();
        let mut charsets = meta.iter_charset();
        let nulls = event.null_bitmask();
        let mut columns = Vec::with_capacity(count);
        for (i, name) in names.into_iter().enumerate() {
            let raw = event
                .get_column_type(i)
                .map_err(|e| malformed(e.to_string()))?
                .ok_or_else(|| malformed(format!("no type for column {i}")))?;
            let type_meta = event.get_column_metadata(i).unwrap_or(&[]);
            let unsigned = raw.is_numeric_type() && signedness.next().unwrap_or(false);
            let collation = if raw.is_character_type() {
                let id = charsets
                    .next()
                    .transpose()
                    .map_err(|e| malformed(e.to_string()))?
                    .ok_or(SchemaError::MissingMetadata {
                        table: table.clone(),
                        what: "column charsets",
                    })?;
                Some(Collation::from_id(id))
            } else {
                None
            };
            let labels = match raw {
                Raw::MYSQL_TYPE_ENUM => enums.pop(),
                Raw::MYSQL_TYPE_SET => sets.pop(),
                _ => None,
            };
            let facts = Facts {
                unsigned,
                collation,
                labels,
            };
            let column_type = column_type(raw, type_meta, &facts).ok_or_else(|| {
                SchemaError::UnsupportedType {
                    table: table.clone(),
                    column: name.clone(),
                    type_name: format!("{raw:?}"),
                }
            })?;
            columns.push(Column {
                name,
                column_type,
                nullable: nulls.get(i).is_some_and(|b| *b),
            });
        }
        let primary_key = meta
            .iter_primary_key()
            .map(|k| {
                k.map(|k| {
                    let idx = usize::try_from(k).unwrap_or(usize::MAX);
                    columns.get(idx).map(|c| c.name.clone()).unwrap_or_default()
                })
            })
            .collect::<Result<_, _>>()
            .map_err(|e| malformed(e.to_string()))?;
        Ok(TableSchema {
            database: event.database_name().into_owned(),
            table: event.table_name().into_owned(),
            columns,
            primary_key,
        })
    }
}
