//! Schema evolution: what changed between two versions of a table, and the value schema that
//! stays BACKWARD compatible.

use crate::column::{Column, ColumnType, TableSchema};
use crate::connect::RecordSchema;

/// One difference between two versions of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaChange {
    /// A column exists only in the new version.
    ColumnAdded { column: Column },
    /// A column exists only in the old version.
    ColumnDropped { name: String },
    /// A column changed type.
    ColumnRetyped {
        name: String,
        from: ColumnType,
        to: ColumnType,
    },
    /// A column changed nullability.
    NullabilityChanged { name: String, nullable: bool },
    /// Columns kept their definitions but changed order.
    ColumnsReordered,
    /// The primary key changed.
    PrimaryKeyChanged { from: Vec<String>, to: Vec<String> },
}

/// The changes from `old` to `new` (empty when equal), matched by column name.
pub fn diff(old: &TableSchema, new: &TableSchema) -> Vec<SchemaChange> {
    let mut changes = Vec::new();
    for column in &old.columns {
        match new.column(&column.name) {
            None => changes.push(SchemaChange::ColumnDropped {
                name: column.name.clone(),
            }),
            Some(now) if now.column_type != column.column_type => {
                changes.push(SchemaChange::ColumnRetyped {
                    name: column.name.clone(),
                    from: column.column_type.clone(),
                    to: now.column_type.clone(),
                })
            }
            Some(now) if now.nullable != column.nullable => {
                changes.push(SchemaChange::NullabilityChanged {
                    name: column.name.clone(),
                    nullable: now.nullable,
                })
            }
            Some(_) => {}
        }
    }
    for column in &new.columns {
        if old.column(&column.name).is_none() {
            changes.push(SchemaChange::ColumnAdded {
                column: column.clone(),
            });
        }
    }
    let order = |t: &TableSchema| -> Vec<String> {
        t.columns
            .iter()
            .filter(|c| old.column(&c.name).is_some() && new.column(&c.name).is_some())
            .map(|c| c.name.clone())
            .collect()
    };
    if order(old) != order(new) {
        changes.push(SchemaChange::ColumnsReordered);
    }
    if old.primary_key != new.primary_key {
        changes.push(SchemaChange::PrimaryKeyChanged {
            from: old.primary_key.clone(),
            to: new.primary_key.clone(),
        });
    }
    changes
}

/// The value schema to register after `previous`: `next`, except that fields absent from
/// `previous` and fields optional in `previous` are optional (Avro default null), so readers of
/// the new version can read records written with the old one (BACKWARD). A source that restarts
/// gets `previous` from the registry ([`crate::Registry::latest`] and
/// [`crate::record_schema_from_avro`]).
pub fn evolve_value_schema(previous: &RecordSchema, mut next: RecordSchema) -> RecordSchema {
    for field in &mut next.fields {
        let keep_required = previous
            .field(&field.name)
            .is_some_and(|before| !before.optional);
        if !keep_required {
            field.optional = true;
        }
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::column::IntWidth;
    use crate::connect::value_schema;

    fn int(name: &str, nullable: bool) -> Column {
        let column_type = ColumnType::Integer {
            width: IntWidth::Int,
            unsigned: false,
        };
        Column {
            name: name.into(),
            column_type,
            nullable,
        }
    }

    fn table(columns: Vec<Column>) -> TableSchema {
        TableSchema {
            database: "d".into(),
            table: "t".into(),
            columns,
            primary_key: vec!["id".into()],
        }
    }

    #[test]
    fn reports_added_dropped_and_retyped_columns() {
        let old = table(vec![int("id", false), int("a", true), int("b", true)]);
        let mut retyped = int("a", true);
        retyped.column_type = ColumnType::Double;
        let new = table(vec![int("id", false), retyped, int("c", false)]);
        let changes = diff(&old, &new);
        assert!(changes.contains(&SchemaChange::ColumnDropped { name: "b".into() }));
        assert!(changes.contains(&SchemaChange::ColumnRetyped {
            name: "a".into(),
            from: int("a", true).column_type,
            to: ColumnType::Double,
        }));
        assert!(changes.contains(&SchemaChange::ColumnAdded {
            column: int("c", false)
        }));
        assert!(diff(&old, &old).is_empty());
    }

    #[test]
    fn added_columns_become_optional() {
        let old = table(vec![int("id", false)]);
        let new = table(vec![int("id", false), int("c", false)]);
        let evolved = evolve_value_schema(&value_schema("t", &old), value_schema("t", &new));
        assert!(!evolved.fields[0].optional);
        assert!(evolved.fields[1].optional);
    }
}
