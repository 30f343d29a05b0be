//! SQL literals for the text protocol. Rows are sent as literals inside multi-row statements (one
//! round trip per statement, no prepare), so this module is the one place that escapes values:
//! strings are quoted with every special character escaped, bytes are hex literals, numbers are
//! written exactly. The session runs without `NO_BACKSLASH_ESCAPES` (see `writer::session_setup`),
//! which the escaping relies on.
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
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\u{1a}' => out.push_str("\\Z"),
            c => out.push(c),
        }
    }
    out.push('\'');
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
            out.push_str("X'");
            for byte in b {
                let _ = write!(out, "{byte:02X}");
            }
            out.push('\'');
        }
    }
    Ok(())
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
    }
}
