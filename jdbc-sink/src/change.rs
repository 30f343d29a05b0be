//! From a decoded Kafka record to a row change on a mirror table.
//!
//! The columns of a change (its [`Shape`]) depend on `pk.mode`:
//! - `record_key`: the key struct's fields (or the `pk.fields` among them) are the primary key;
//!   the value's other fields follow. A tombstone (null value) is a DELETE by key when
//!   `delete.enabled`, else it is counted and skipped.
//! - `record_value`: `pk.fields` of the value are the primary key; tombstones are skipped.
//! - `none`: the value's fields, no key; only inserts.
//! - unset ([`PkMode::Adaptive`]): as `record_key` for a record with a key. A record without one
//!   (typed into a console producer, as in the tutorial) is built without a key here; before its
//!   batch is written, [`Change::keyed_by`] gives it the mirror table's primary key, taken from
//!   the value, so it upserts like the source's records of that row. For a table that does not
//!   exist yet and gets no key from another record of the batch, it stays keyless: the table is
//!   created without a primary key and the row inserted, as Kafka Connect's `pk.mode=none` does.
//!
//! Values are rendered to SQL literals here, once, so a value that cannot be stored is found
//! before any statement runs and names its record. Before that, the record header
//! `cdc.zero_dates` puts back the exact values the value record could not carry (zero dates
//! travel as null, see `cdc_schema::restore_inexact`), so the mirror gets `0000-00-00` again.

use std::collections::HashMap;
use std::sync::Arc;

use cdc_schema::{restore_inexact, Field, Record, RecordSchema, Value, ZERO_DATES_HEADER};

use crate::config::{PkMode, Settings};
use crate::errors::{class, MessageId, RecordError};
use crate::ident::{Ident, TableNameFormat};
use crate::sqltext::Literals;

/// The columns a change writes: the first `pk_len` are the primary key.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Shape {
    pub fields: Vec<Field>,
    pub names: Vec<Ident>,
    pub pk_len: usize,
    /// The column names and types joined; changes with equal ids share one statement and one
    /// check against their table.
    pub id: String,
}

impl Shape {
    pub(crate) fn new(fields: Vec<Field>, pk_len: usize) -> Result<Shape, String> {
        let mut names = Vec::with_capacity(fields.len());
        for f in &fields {
            let ident = Ident::new(&f.name).map_err(|e| e.to_string())?;
            if names
                .iter()
                .any(|n: &Ident| n.as_str().eq_ignore_ascii_case(&f.name))
            {
                return Err(format!("field `{}` appears twice", f.name));
            }
            names.push(ident);
        }
        // Key length, names and types: a retyped field is a new shape, checked against its table
        // again; a keyless shape never shares a statement with a keyed one.
        let id = std::iter::once(pk_len.to_string())
            .chain(fields
            .iter()
            .map(|f| {
                format!(
                    "{}\u{1e}{:?}\u{1e}{}",
                    f.name,
                    f.field_type,
                    f.column_type().unwrap_or("")
                )
            }))
            .collect::<Vec<_>>()
            .join("\u{1f}");
        Ok(Shape {
            fields,
            names,
            pk_len,
            id,
        })
    }

    pub fn pk_names(&self) -> &[Ident] {
        &self.names[..self.pk_len]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Insert, upsert or update, as `insert.mode` says.
    Write,
    Delete,
}

/// One row change, ready to be written.
#[derive(Debug, Clone)]
pub struct Change {
    pub table: Ident,
    pub op: Op,
    pub shape: Arc<Shape>,
    /// One SQL literal per shape field (for a delete: the key fields only).
    pub literals: Literals,
    /// A write's values for the binary protocol, one per shape field (empty for a delete).
    pub binds: Vec<mysql_async::Value>,
    pub origin: MessageId,
    /// ENUM columns holding `''`, MariaDB's error value (index 0): a non-strict source session
    /// stored it, and only a non-strict statement stores it again (see [`crate::writer`]).
    pub enum_blanks: Vec<String>,
}

impl Change {
    /// This write change with `key` (lower-case column names, the table's primary key) as its
    /// primary key: those fields first, the others after, in their order. `None` when the
    /// change's fields do not include every key column. `shapes` caches the keyed shape per
    /// keyless shape.
    pub fn keyed_by(
        &self,
        key: &[String],
        shapes: &mut HashMap<(String, Vec<String>), Arc<Shape>>,
    ) -> Option<Change> {
        let mut order: Vec<usize> = Vec::with_capacity(self.shape.fields.len());
        for k in key {
            order.push(
                self.shape
                    .fields
                    .iter()
                    .position(|f| f.name.eq_ignore_ascii_case(k))?,
            );
        }
        let rest: Vec<usize> = (0..self.shape.fields.len())
            .filter(|i| !order.contains(i))
            .collect();
        order.extend(rest);
        let cache_key = (self.shape.id.clone(), key.to_vec());
        let shape = match shapes.get(&cache_key) {
            Some(shape) => shape.clone(),
            None => {
                let fields = order.iter().map(|&i| self.shape.fields[i].clone()).collect();
                // The names were valid in the keyless shape, so they are valid here.
                let shape = Arc::new(Shape::new(fields, key.len()).ok()?);
                shapes.insert(cache_key, shape.clone());
                shape
            }
        };
        Some(Change {
            table: self.table.clone(),
            op: self.op,
            shape,
            literals: self.literals.reordered(&order),
            binds: order.iter().filter_map(|&i| self.binds.get(i).cloned()).collect(),
            origin: self.origin.clone(),
            enum_blanks: self.enum_blanks.clone(),
        })
    }

    /// The rendered primary key, unique per key value (used to collapse changes of one key).
    pub fn key(&self) -> &str {
        self.literals.first(self.shape.pk_len)
    }
}

/// An error class and message.
type ShapeError = (&'static str, String);

type ShapeKey = (PkMode, Option<Arc<RecordSchema>>, Arc<RecordSchema>);

/// Builds [`Change`]s; caches shapes by schema (a topic usually has very few schemas).
#[derive(Debug)]
pub struct ChangeBuilder {
    format: TableNameFormat,
    pk_mode: PkMode,
    pk_fields: Vec<String>,
    delete_enabled: bool,
    shapes: HashMap<ShapeKey, Arc<Shape>>,
    delete_shapes: HashMap<Arc<RecordSchema>, Arc<Shape>>,
    /// The mirror table of each topic seen (`table.name.format` applied once per topic).
    tables: HashMap<String, Ident>,
}

const SHAPE_CACHE_LIMIT: usize = 1024;

impl ChangeBuilder {
    pub fn new(settings: &Settings) -> ChangeBuilder {
        ChangeBuilder {
            format: settings.table_format.clone(),
            pk_mode: settings.pk_mode,
            pk_fields: settings.pk_fields.clone(),
            delete_enabled: settings.delete_enabled,
            shapes: HashMap::new(),
            delete_shapes: HashMap::new(),
            tables: HashMap::new(),
        }
    }

    /// The change for one record; `Ok(None)` for a tombstone that is not applied. `zero_dates`
    /// is the record's `cdc.zero_dates` header, if any.
    pub fn build(
        &mut self,
        origin: MessageId,
        mut key: Option<Record>,
        mut value: Option<Record>,
        zero_dates: Option<&str>,
    ) -> Result<Option<Change>, RecordError> {
        let fail = |class, message: String| RecordError {
            origin: origin.clone(),
            class,
            message,
        };
        if let (Some(header), Some(record)) = (zero_dates, value.as_mut()) {
            restore_inexact(&record.schema, &mut record.values, header).map_err(|e| {
                fail(class::DECODE, format!("header {ZERO_DATES_HEADER} `{header}`: {e}"))
            })?;
        }
        let table = match self.tables.get(&origin.topic) {
            Some(table) => table.clone(),
            None => {
                let table = self
                    .format
                    .table_for(&origin.topic)
                    .map_err(|e| fail(class::IDENTIFIER, e.to_string()))?;
                if self.tables.len() >= SHAPE_CACHE_LIMIT {
                    self.tables.clear();
                }
                self.tables.insert(origin.topic.clone(), table.clone());
                table
            }
        };
        let Some(value) = value else {
            if !(self.delete_enabled && matches!(self.pk_mode, PkMode::RecordKey | PkMode::Adaptive)) {
                return Ok(None);
            }
            let mut key = key.ok_or_else(|| {
                fail(
                    class::DECODE,
                    "tombstone without a key: nothing to delete".into(),
                )
            })?;
            let (shape, values) = self.delete_shape(&mut key).map_err(|(c, m)| fail(c, m))?;
            let literals = render(&shape, &values).map_err(|m| fail(class::DATA, m))?;
            return Ok(Some(Change {
                table,
                op: Op::Delete,
                shape,
                literals,
                binds: Vec::new(),
                origin,
                enum_blanks: Vec::new(),
            }));
        };
        if self.pk_mode == PkMode::RecordKey && key.is_none() {
            return Err(fail(
                class::DECODE,
                "record has no key, but pk.mode=record_key takes the primary key from it; produce records with a key, or set pk.mode=record_value with pk.fields".into(),
            ));
        }
        let mut value = value;
        let (shape, values) = self
            .write_shape(key.as_mut(), &mut value)
            .map_err(|(c, m)| fail(c, m))?;
        let literals = render(&shape, &values).map_err(|m| fail(class::DATA, m))?;
        let enum_blanks = shape
            .fields
            .iter()
            .zip(&values)
            .filter(|(f, v)| {
                matches!(v, Value::String(s) if s.is_empty())
                    && f.column_type().is_some_and(|t| t.len() > 5 && t[..5].eq_ignore_ascii_case("enum("))
            })
            .map(|(f, _)| f.name.clone())
            .collect();
        // Rendered already, so every value binds.
        let binds = values
            .into_iter()
            .map(|v| crate::sqltext::bind(v).unwrap_or(mysql_async::Value::NULL))
            .collect();
        Ok(Some(Change {
            table,
            op: Op::Write,
            shape,
            literals,
            binds,
            origin,
            enum_blanks,
        }))
    }

    fn key_indexes(&self, schema: &RecordSchema) -> Result<Vec<usize>, ShapeError> {
        if self.pk_fields.is_empty() {
            return Ok((0..schema.fields.len()).collect());
        }
        self.pk_fields
            .iter()
            .map(|name| {
                schema
                    .fields
                    .iter()
                    .position(|f| &f.name == name)
                    .ok_or_else(|| {
                        (
                            class::SCHEMA,
                            format!("pk.fields names `{name}`, which the record does not have"),
                        )
                    })
            })
            .collect()
    }

    /// The shape of a delete by `key`, and the key's values (moved out of the record).
    fn delete_shape(&mut self, key: &mut Record) -> Result<(Arc<Shape>, Vec<Value>), ShapeError> {
        let idx = self.key_indexes(&key.schema)?;
        let values = idx.iter().map(|&i| take(&mut key.values, i)).collect();
        if let Some(shape) = self.delete_shapes.get(&key.schema) {
            return Ok((shape.clone(), values));
        }
        let fields: Vec<Field> = idx.iter().map(|&i| key.schema.fields[i].clone()).collect();
        let len = fields.len();
        let shape = Arc::new(Shape::new(fields, len).map_err(|m| (class::IDENTIFIER, m))?);
        if self.delete_shapes.len() >= SHAPE_CACHE_LIMIT {
            self.delete_shapes.clear();
        }
        self.delete_shapes.insert(key.schema.clone(), shape.clone());
        Ok((shape, values))
    }

    /// The shape of a write, and its values (moved out of the records).
    fn write_shape(
        &mut self,
        mut key: Option<&mut Record>,
        value: &mut Record,
    ) -> Result<(Arc<Shape>, Vec<Value>), ShapeError> {
        // Which (source, index) pairs make the row, primary key first.
        let mut picks: Vec<(bool, usize)> = Vec::with_capacity(value.values.len() + 2);
        match (self.pk_mode, key.as_deref()) {
            (PkMode::RecordKey | PkMode::Adaptive, Some(k)) => {
                picks.extend(self.key_indexes(&k.schema)?.into_iter().map(|i| (true, i)));
            }
            (PkMode::RecordValue, _) => {
                picks.extend(
                    self.key_indexes(&value.schema)?
                        .into_iter()
                        .map(|i| (false, i)),
                );
            }
            _ => {}
        }
        let pk_len = picks.len();
        let pk_names: Vec<&str> = picks
            .iter()
            .map(|&(from_key, i)| field_of(key.as_deref(), value, from_key, i).name.as_str())
            .collect();
        let rest: Vec<(bool, usize)> = (0..value.schema.fields.len())
            .filter(|&i| !pk_names.contains(&value.schema.fields[i].name.as_str()))
            .map(|i| (false, i))
            .collect();
        picks.extend(rest);
        // Every field is picked once (a shape refuses a name twice), so each value moves.
        let values = picks
            .iter()
            .map(|&(from_key, i)| match (from_key, key.as_deref_mut()) {
                (true, Some(k)) => take(&mut k.values, i),
                _ => take(&mut value.values, i),
            })
            .collect();
        let cache_key = (
            self.pk_mode,
            key.as_ref().map(|k| k.schema.clone()),
            value.schema.clone(),
        );
        if let Some(shape) = self.shapes.get(&cache_key) {
            return Ok((shape.clone(), values));
        }
        let fields = picks
            .iter()
            .map(|&(from_key, i)| field_of(key.as_deref(), value, from_key, i).clone())
            .collect();
        let shape = Arc::new(Shape::new(fields, pk_len).map_err(|m| (class::IDENTIFIER, m))?);
        if self.shapes.len() >= SHAPE_CACHE_LIMIT {
            self.shapes.clear();
        }
        self.shapes.insert(cache_key, shape.clone());
        Ok((shape, values))
    }
}

fn field_of<'a>(key: Option<&'a Record>, value: &'a Record, from_key: bool, i: usize) -> &'a Field {
    let record = if from_key {
        key.unwrap_or(value)
    } else {
        value
    };
    &record.schema.fields[i]
}

/// Value `i` of `values`, moved out (`Null` when there is none).
fn take(values: &mut [Value], i: usize) -> Value {
    values.get_mut(i).map_or(Value::Null, |v| std::mem::replace(v, Value::Null))
}

fn render(shape: &Shape, values: &[Value]) -> Result<Literals, String> {
    let mut literals = Literals::with_capacity(values.len());
    for (field, value) in shape.fields.iter().zip(values) {
        literals.push(value).map_err(|e| format!("field `{}`: {e}", field.name))?;
        if value.is_null() && !field.optional {
            return Err(format!(
                "field `{}` is not optional but the record has null",
                field.name
            ));
        }
    }
    Ok(literals)
}
