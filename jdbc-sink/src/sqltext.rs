//! Values as the server takes them. On MariaDB, inserts and upserts bind them to a prepared
//! statement executed in bulk ([`bind`]: binary, nothing escaped, see `crate::writer`). Everything
//! else (deletes, updates, the one-by-one replay, other servers) sends rows as literals inside
//! multi-row statements (one round trip per statement, no prepare), so this module is the one
//! place that escapes values:
//! strings are quoted with every special character escaped, bytes are hex literals, numbers are
//! written exactly. The session runs without `NO_BACKSLASH_ESCAPES` (see `writer::session_setup`),
//! which the escaping relies on.
//!
//! A row's literals are rendered once, one after the other into one buffer ([`Literals`]), and
//! copied from there into the statement: no `String` per value.
//!
//! A hex literal is twice the size of its bytes, which counts against the mirror server's
//! `max_allowed_packet` (see `writer::StatementLimit`). Sending bytes raw behind `_binary'…'`
//! would halve that, but statements are UTF-8 text here and such a literal would put bytes that
//! are not UTF-8 into a `utf8mb4` session's statement, so bytes stay hex.

use std::fmt::Write;

use cdc_schema::Value;

/// A value that has no SQL literal (NaN or infinite floating point).
#[derive(Debug, thiserror::Error)]
#[error("{0} cannot be stored in MariaDB")]
pub struct NotRepresentable(String);

/// `'text'` with `\`, `'`, NUL, newline, carriage return and Ctrl-Z escaped.
pub fn quote_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_quoted(&mut out, s);
    out
}

fn push_quoted(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('\'');
    // Every character escaped is ASCII, so the runs between them are whole UTF-8 text.
    let mut run = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'\'' => "\\'",
            b'\\' => "\\\\",
            0 => "\\0",
            b'\n' => "\\n",
            b'\r' => "\\r",
            0x1a => "\\Z",
            _ => continue,
        };
        out.push_str(&s[run..i]);
        out.push_str(escape);
        run = i + 1;
    }
    out.push_str(&s[run..]);
    out.push('\'');
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// A row's SQL literals, rendered one after the other into one buffer and joined by `,`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Literals {
    text: String,
    /// Where each literal ends in `text`.
    ends: Vec<usize>,
}

impl Literals {
    pub fn with_capacity(literals: usize) -> Literals {
        Literals { text: String::with_capacity(literals * 8), ends: Vec::with_capacity(literals) }
    }

    /// Appends the literal of `value`.
    pub fn push(&mut self, value: &Value) -> Result<(), NotRepresentable> {
        if !self.ends.is_empty() {
            self.text.push(',');
        }
        let start = self.text.len();
        if let Err(e) = push_literal(&mut self.text, value) {
            self.text.truncate(start.saturating_sub(usize::from(!self.ends.is_empty())));
            return Err(e);
        }
        self.ends.push(self.text.len());
        Ok(())
    }

    /// Appends literal text as it is (already a literal).
    pub fn push_text(&mut self, literal: &str) {
        if !self.ends.is_empty() {
            self.text.push(',');
        }
        self.text.push_str(literal);
        self.ends.push(self.text.len());
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Literal `i`.
    pub fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] + 1 };
        &self.text[start..self.ends[i]]
    }

    /// The first `n` literals joined by `,`.
    pub fn first(&self, n: usize) -> &str {
        match n {
            0 => "",
            n => &self.text[..self.ends[n - 1]],
        }
    }

    /// Every literal joined by `,`.
    pub fn joined(&self) -> &str {
        &self.text
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).map(|i| self.get(i))
    }

    /// The literals in the order of `order` (indexes into these).
    pub fn reordered(&self, order: &[usize]) -> Literals {
        let mut out = Literals::with_capacity(order.len());
        out.text.reserve(self.text.len());
        for &i in order {
            out.push_text(self.get(i));
        }
        out
    }
}

impl<'a> FromIterator<&'a str> for Literals {
    fn from_iter<I: IntoIterator<Item = &'a str>>(iter: I) -> Literals {
        let mut out = Literals::default();
        for literal in iter {
            out.push_text(literal);
        }
        out
    }
}

/// Appends the literal of `value` to `out`.
pub fn push_literal(out: &mut String, value: &Value) -> Result<(), NotRepresentable> {
    match value {
        Value::Null => out.push_str("NULL"),
        Value::Bool(b) => out.push_str(if *b { "1" } else { "0" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        // The exact value as a double: MariaDB reads the literal as a double, and the shortest
        // f32 text of a value near the FLOAT limit (3.4028235e38) is beyond it as a double.
        Value::Float(f) if f.is_finite() => {
            let _ = write!(out, "{:e}", f64::from(*f));
        }
        Value::Double(d) if d.is_finite() => {
            let _ = write!(out, "{d:e}");
        }
        Value::Float(f) => return Err(NotRepresentable(f.to_string())),
        Value::Double(d) => return Err(NotRepresentable(d.to_string())),
        Value::Decimal(d) => {
            let _ = write!(out, "{d}");
        }
        Value::Date(d) => {
            let _ = write!(out, "'{d}'");
        }
        Value::Time(micros) => {
            let _ = write!(out, "'{}'", cdc_schema::format_time(*micros));
        }
        Value::DateTime(dt) => {
            let _ = write!(out, "'{dt}'");
        }
        Value::Timestamp(micros) => match timestamp_text(*micros) {
            Some(text) => {
                let _ = write!(out, "'{text}'");
            }
            None => return Err(NotRepresentable(format!("timestamp {micros} µs"))),
        },
        Value::String(s) => push_quoted(out, s),
        Value::Bytes(b) => {
            out.reserve(2 * b.len() + 3);
            out.push_str("X'");
            out.extend(
                b.iter()
                    .flat_map(|&byte| [HEX[usize::from(byte >> 4)] as char, HEX[usize::from(byte & 15)] as char]),
            );
            out.push('\'');
        }
    }
    Ok(())
}

/// The value bound to a placeholder of MariaDB's binary protocol (the bulk path of
/// `crate::writer`): numbers binary, strings and bytes as they are (moved, never escaped),
/// decimals and temporal values as the text their literals hold. `Err` for the values
/// [`push_literal`] refuses too.
pub fn bind(value: Value) -> Result<mysql_async::Value, NotRepresentable> {
    use mysql_async::Value as B;
    Ok(match value {
        Value::Null => B::NULL,
        Value::Bool(b) => B::Int(i64::from(b)),
        Value::Int(i) => B::Int(i),
        Value::Float(f) if f.is_finite() => B::Float(f),
        Value::Double(d) if d.is_finite() => B::Double(d),
        Value::Float(f) => return Err(NotRepresentable(f.to_string())),
        Value::Double(d) => return Err(NotRepresentable(d.to_string())),
        Value::Decimal(d) => B::Bytes(d.to_string().into_bytes()),
        Value::Date(d) => B::Bytes(d.to_string().into_bytes()),
        Value::Time(micros) => B::Bytes(cdc_schema::format_time(micros).into_bytes()),
        Value::DateTime(dt) => B::Bytes(dt.to_string().into_bytes()),
        Value::Timestamp(micros) => match timestamp_text(micros) {
            Some(text) => B::Bytes(text.into_bytes()),
            None => return Err(NotRepresentable(format!("timestamp {micros} µs"))),
        },
        Value::String(s) => B::Bytes(s.into_bytes()),
        Value::Bytes(b) => B::Bytes(b),
    })
}

/// A TIMESTAMP as UTC wall-clock text (the session time zone is `+00:00`); 0 is the zero
/// timestamp.
fn timestamp_text(micros: i64) -> Option<String> {
    if micros == 0 {
        return Some("0000-00-00 00:00:00".into());
    }
    cdc_schema::DateTime::from_epoch_micros(micros).map(|dt| dt.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(v: Value) -> String {
        let mut s = String::new();
        push_literal(&mut s, &v).unwrap();
        s
    }

    #[test]
    fn strings_are_escaped() {
        assert_eq!(quote_str("a'b\\c\0\n\r\u{1a}"), "'a\\'b\\\\c\\0\\n\\r\\Z'");
        assert_eq!(
            lit(Value::String("'); DROP TABLE t; --".into())),
            "'\\'); DROP TABLE t; --'"
        );
        assert_eq!(lit(Value::String("한국어 😀".into())), "'한국어 😀'");
    }

    #[test]
    fn numbers_and_bytes() {
        assert_eq!(lit(Value::Int(-5)), "-5");
        assert_eq!(lit(Value::Bool(true)), "1");
        assert_eq!(lit(Value::Null), "NULL");
        assert_eq!(lit(Value::Bytes(vec![0, 0xff, b'\''])), "X'00FF27'");
        assert_eq!(lit(Value::Double(0.1)), "1e-1");
        assert_eq!(lit(Value::Float(f32::MAX)), "3.4028234663852886e38");
        assert_eq!(lit(Value::Time(-1_500_000)), "'-00:00:01.500000'");
        assert_eq!(
            lit(Value::Timestamp(1_000_000)),
            "'1970-01-01 00:00:01.000000'"
        );
        assert!(push_literal(&mut String::new(), &Value::Double(f64::NAN)).is_err());
        assert_eq!(quote_str("no escapes"), "'no escapes'");
        assert_eq!(quote_str("''"), "'\\'\\''");
        assert_eq!(quote_str("é'\n😀"), "'é\\'\\n😀'");
        assert_eq!(lit(Value::Bytes((0..=255).collect())).len(), 3 + 512);
        assert_eq!(&lit(Value::Bytes((0..=255).collect()))[..8], "X'000102");
    }

    #[test]
    fn bound_values_hold_what_the_literals_hold() {
        use mysql_async::Value as B;
        assert_eq!(bind(Value::String("a'b".into())).unwrap(), B::Bytes(b"a'b".to_vec()));
        assert_eq!(bind(Value::Bool(true)).unwrap(), B::Int(1));
        assert_eq!(bind(Value::Float(f32::MAX)).unwrap(), B::Float(f32::MAX));
        assert_eq!(bind(Value::Time(-1_500_000)).unwrap(), B::Bytes(b"-00:00:01.500000".to_vec()));
        assert_eq!(bind(Value::Timestamp(0)).unwrap(), B::Bytes(b"0000-00-00 00:00:00".to_vec()));
        assert!(bind(Value::Double(f64::INFINITY)).is_err());
    }

    #[test]
    fn literals_of_a_row_share_one_buffer() {
        let mut row = Literals::with_capacity(3);
        row.push(&Value::Int(7)).unwrap();
        row.push(&Value::String("a,b".into())).unwrap();
        assert!(row.push(&Value::Double(f64::INFINITY)).is_err(), "refused, and leaves the row as it was");
        row.push(&Value::Null).unwrap();
        assert_eq!(row.joined(), "7,'a,b',NULL");
        assert_eq!(row.iter().collect::<Vec<_>>(), vec!["7", "'a,b'", "NULL"]);
        assert_eq!((row.first(0), row.first(2)), ("", "7,'a,b'"));
        assert_eq!(row.reordered(&[2, 0]).joined(), "NULL,7");
        let mut first = Literals::default();
        assert!(first.push(&Value::Float(f32::NAN)).is_err());
        assert_eq!((first.joined(), first.len()), ("", 0));
    }
}
