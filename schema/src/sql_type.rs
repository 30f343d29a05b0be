//! The MariaDB column type a sink creates for a field.
//!
//! With [`COLUMN_TYPE_PARAM`] present (every record this crate builds from a table), the mirror
//! column gets exactly the source column's type. Without it (a record typed by a person), the
//! type is chosen from the field type so that every value of the field fits:
//!
//! | field type | column type | as a key column |
//! |---|---|---|
//! | int8 / int16 / int32 / int64 | `tinyint` / `smallint` / `int` / `bigint` | same |
//! | float / double | `float` / `double` | same |
//! | boolean | `boolean` | same |
//! | string | `longtext` | `varchar(255)` |
//! | bytes | `longblob` | `varbinary(255)` |
//! | Decimal (scale s, precision p) | `decimal(p,s)`, p = 65 when unknown | same |
//! | Date / Time / Timestamp | `date` / `time(3)` / `datetime(3)` (UTC) | same |
//! | io.debezium.time.Date / MicroTime / Timestamp / MicroTimestamp | `date` / `time(6)` / `datetime(3)` / `datetime(6)` | same |
//! | io.debezium.time.ZonedTimestamp | `timestamp(6)` | same |
//! | cdc.MicroTime / cdc.MicroTimestamp / cdc.LocalMicroTimestamp | `time(6)` / `timestamp(6)` / `datetime(6)` | same |

use crate::connect::{Field, FieldType, COLUMN_TYPE_PARAM};

fn from_field_type(field_type: &FieldType, key: bool) -> String {
    match field_type {
        FieldType::Int8 => "tinyint".into(),
        FieldType::Int16 => "smallint".into(),
        FieldType::Int32 => "int".into(),
        FieldType::Int64 => "bigint".into(),
        FieldType::Float32 => "float".into(),
        FieldType::Float64 => "double".into(),
        FieldType::Boolean => "boolean".into(),
        FieldType::String if key => "varchar(255)".into(),
        FieldType::String => "longtext".into(),
        FieldType::Bytes if key => "varbinary(255)".into(),
        FieldType::Bytes => "longblob".into(),
        FieldType::Decimal { precision, scale } => {
            let p = precision.unwrap_or(65).clamp(1, 65).max(*scale);
            format!("decimal({p},{scale})")
        }
        FieldType::Date => "date".into(),
        FieldType::Time => "time(3)".into(),
        FieldType::Timestamp => "datetime(3)".into(),
        FieldType::DebeziumDate => "date".into(),
        FieldType::DebeziumTimestamp => "datetime(3)".into(),
        FieldType::DebeziumMicroTimestamp => "datetime(6)".into(),
        FieldType::ZonedTimestamp => "timestamp(6)".into(),
        FieldType::MicroTime | FieldType::DebeziumMicroTime => "time(6)".into(),
        FieldType::MicroTimestamp => "timestamp(6)".into(),
        FieldType::LocalMicroTimestamp => "datetime(6)".into(),
    }
}

/// The DDL type for a value column made from `field`: its [`COLUMN_TYPE_PARAM`] when present,
/// else the choice in the table above.
pub fn sql_type(field: &Field) -> String {
    field
        .parameter(COLUMN_TYPE_PARAM)
        .map_or_else(|| from_field_type(&field.field_type, false), str::to_string)
}

/// Like [`sql_type`], for a primary-key column: string and bytes fields without a recorded
/// column type get a bounded type (`varchar(255)` / `varbinary(255)`) that can be indexed.
pub fn sql_key_type(field: &Field) -> String {
    field
        .parameter(COLUMN_TYPE_PARAM)
        .map_or_else(|| from_field_type(&field.field_type, true), str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::column::{Column, ColumnType};
    use crate::Collation;

    #[test]
    fn column_type_parameter_wins() {
        let column = Column {
            name: "user_id".into(),
            column_type: ColumnType::VarChar {
                length: 20,
                collation: Collation::UTF8MB4_GENERAL_CI,
            },
            nullable: true,
        };
        assert_eq!(sql_type(&Field::for_column(&column)), "varchar(20)");
    }

    #[test]
    fn field_type_alone_chooses_a_type() {
        let field = |t| Field::new("x", t, true);
        assert_eq!(sql_type(&field(FieldType::Int32)), "int");
        assert_eq!(sql_type(&field(FieldType::String)), "longtext");
        assert_eq!(sql_key_type(&field(FieldType::String)), "varchar(255)");
        let decimal = FieldType::Decimal {
            precision: None,
            scale: 2,
        };
        assert_eq!(sql_type(&field(decimal)), "decimal(65,2)");
        assert_eq!(sql_type(&field(FieldType::Timestamp)), "datetime(3)");
    }
}
