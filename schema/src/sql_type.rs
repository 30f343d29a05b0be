//! The MariaDB column type a sink creates for a field.

use crate::connect::Field;

/// The DDL type for `field`: its [`crate::COLUMN_TYPE_PARAM`] when present, else a lossless
/// choice from the field type alone (e.g. `int8` → `tinyint`, `string` → `longtext`,
/// Connect Decimal with scale 2 → `decimal(65,2)`).
pub fn sql_type(field: &Field) -> String {
    let _ = field;
    unimplemented!("sql_type")
}
