//! Column types in DDL: which type text may be sent to the server, how a field type relates to an
//! existing column, and how a key column is made indexable.
//!
//! The type of a new column is [`cdc_schema::sql_type`]: the source's exact column type (field
//! parameter `cdc.column.type`) or a lossless choice from the field type. Because that parameter
//! arrives inside a message, its text is checked against the grammar of MariaDB column types
//! before it goes into DDL ([`checked_sql_type`]); anything else is refused.

use std::sync::LazyLock;

use cdc_schema::{Field, FieldType};
use regex::Regex;

/// Families of column types; a field fits a column when their families match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Integer,
    Decimal,
    Float,
    Bit,
    Date,
    Time,
    DateTime,
    Char,
    Binary,
}

const CHARSET: &str = r"(?: character set [a-z0-9_]+)?(?: collate [a-z0-9_]+)?";
const LABEL: &str = r"'(?:[^'\\]|''|\\.)*'";

static TYPE_GRAMMAR: LazyLock<Regex> = LazyLock::new(|| {
    let alternatives = [
        r"(?:tiny|small|medium|big)?int(?:\(\d{1,3}\))?(?: unsigned)?(?: zerofill)?".to_string(),
        r"decimal\(\d{1,2}(?:,\d{1,2})?\)(?: unsigned)?".to_string(),
        r"float|double|year|date|json|bool|boolean".to_string(),
        r"geometry|point|linestring|polygon|multipoint|multilinestring|multipolygon|geometrycollection".to_string(),
        r"bit\(\d{1,2}\)".to_string(),
        r"(?:time|datetime|timestamp)(?:\([0-6]\))?".to_string(),
        format!(r"(?:var)?char\(\d{{1,5}}\){CHARSET}"),
        r"(?:var)?binary\(\d{1,5}\)".to_string(),
        format!(r"(?:tiny|medium|long)?text{CHARSET}"),
        r"(?:tiny|medium|long)?blob".to_string(),
        format!(r"(?:enum|set)\({LABEL}(?:,{LABEL})*\){CHARSET}"),
    ];
    #[allow(clippy::unwrap_used)] // a constant pattern, covered by the tests
    Regex::new(&format!("(?i)^(?:{})$", alternatives.join("|"))).unwrap()
});

/// The DDL type for `field`, checked against the type grammar; for key columns, text and blob
/// types become `varchar(255)` / `varbinary(255)` (a key needs a bounded length).
pub fn checked_sql_type(field: &Field, is_key: bool) -> Result<String, String> {
    let sql = cdc_schema::sql_type(field);
    if !TYPE_GRAMMAR.is_match(&sql) {
        return Err(format!(
            "field `{}` asks for column type {:?}, which is not a MariaDB column type this sink creates",
            field.name,
            sql.chars().take(100).collect::<String>()
        ));
    }
    Ok(if is_key { indexable(&sql) } else { sql })
}

fn indexable(sql: &str) -> String {
    let lower = sql.to_ascii_lowercase();
    let base = lower.split(' ').next().unwrap_or("");
    let suffix = &sql[base.len()..];
    match base {
        "tinytext" | "text" | "mediumtext" | "longtext" | "json" => format!("varchar(255){suffix}"),
        "tinyblob" | "blob" | "mediumblob" | "longblob" => "varbinary(255)".into(),
        _ => sql.to_string(),
    }
}

/// The family of an existing column from `information_schema.COLUMNS.DATA_TYPE`.
pub fn family_of_data_type(data_type: &str) -> Option<Family> {
    Some(match data_type.to_ascii_lowercase().as_str() {
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "year" => {
            Family::Integer
        }
        "decimal" | "numeric" => Family::Decimal,
        "float" | "double" | "real" => Family::Float,
        "bit" => Family::Bit,
        "date" => Family::Date,
        "time" => Family::Time,
        "datetime" | "timestamp" => Family::DateTime,
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" | "enum" | "set"
        | "json" => Family::Char,
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" | "geometry"
        | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
        | "multipolygon" | "geometrycollection" | "uuid" | "inet4" | "inet6" => Family::Binary,
        _ => return None,
    })
}

/// Whether values of `field_type` can be stored in a column of `family`.
pub fn fits(field_type: &FieldType, family: Family) -> bool {
    use Family as F;
    match field_type {
        FieldType::Int8 | FieldType::Int16 | FieldType::Int32 | FieldType::Int64 => {
            matches!(family, F::Integer | F::Decimal)
        }
        FieldType::Boolean => matches!(family, F::Integer | F::Bit),
        FieldType::Float32 | FieldType::Float64 => family == F::Float,
        FieldType::Decimal { .. } => matches!(family, F::Decimal | F::Integer),
        FieldType::String => family == F::Char,
        FieldType::Bytes => matches!(family, F::Binary | F::Bit),
        FieldType::Date | FieldType::DebeziumDate => family == F::Date,
        FieldType::Time | FieldType::MicroTime | FieldType::DebeziumMicroTime => family == F::Time,
        FieldType::Timestamp
        | FieldType::MicroTimestamp
        | FieldType::LocalMicroTimestamp
        | FieldType::DebeziumTimestamp
        | FieldType::DebeziumMicroTimestamp
        | FieldType::ZonedTimestamp => family == F::DateTime,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar_accepts_real_types() {
        for t in [
            "int",
            "bigint unsigned",
            "int(11)",
            "decimal(65,30)",
            "varchar(20)",
            "varchar(20) character set latin1 collate latin1_swedish_ci",
            "longtext",
            "datetime(6)",
            "timestamp(3)",
            "bit(7)",
            "enum('a','b''c','d\\'e')",
            "set('x')",
            "varbinary(16)",
            "json",
        ] {
            assert!(TYPE_GRAMMAR.is_match(t), "{t}");
        }
    }

    #[test]
    fn grammar_refuses_injection() {
        for t in [
            "int; DROP TABLE x",
            "varchar(20)) ; --",
            "enum('a'); DROP TABLE x; --')",
            "enum('a\\')",
            "int default (select 1)",
            "text character set utf8mb4; x",
        ] {
            assert!(!TYPE_GRAMMAR.is_match(t), "{t}");
        }
    }

    #[test]
    fn keys_get_bounded_types() {
        assert_eq!(indexable("longtext"), "varchar(255)");
        assert_eq!(
            indexable("text character set latin1"),
            "varchar(255) character set latin1"
        );
        assert_eq!(indexable("blob"), "varbinary(255)");
        assert_eq!(indexable("varchar(20)"), "varchar(20)");
    }

    #[test]
    fn families() {
        assert!(fits(
            &FieldType::String,
            family_of_data_type("varchar").unwrap()
        ));
        assert!(!fits(
            &FieldType::String,
            family_of_data_type("int").unwrap()
        ));
        assert!(fits(
            &FieldType::Decimal {
                precision: Some(20),
                scale: 0
            },
            Family::Integer
        ));
        assert!(fits(&FieldType::MicroTimestamp, Family::DateTime));
    }
}
