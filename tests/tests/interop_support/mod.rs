//! Shared by the interoperability tests (connect_json_compat.rs, avro_java_compat.rs): the Java
//! reference tool of tests/java, the every-type table written by the real `cdc-source`, and what
//! a value means in each representation a reader may see.
//!
//! The meaning is written here from the specifications (Kafka Connect's logical types, Avro's
//! logical types, Debezium's `io.debezium.time` types, this project's `cdc.*` types), not taken
//! from the encoder: for each field the test reads the schema the Java library understood and
//! derives the value that schema must carry for the row `SELECT` returned. A name with no known
//! meaning fails the test, so a new type cannot slip through unchecked.

#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use cdc_schema::{Date, DateTime, Decimal, TableSchema, Value};
use cdc_tests::fixtures::{EVERY_TYPE_DDL, EVERY_TYPE_ROWS};
use cdc_tests::kafka::Consumed;
use cdc_tests::process::Service;
use cdc_tests::source::SourceSetup;
use mysql_async::prelude::Queryable;
use serde_json::Value as Json;

/// Runs `tests/java/run ARGS` with `input` lines on stdin; its stdout lines.
pub fn java(args: &[&str], input: &[String]) -> Vec<String> {
    let run = concat!(env!("CARGO_MANIFEST_DIR"), "/java/run");
    let mut child = Command::new(run)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {run}: {e}"));
    let mut stdin = child.stdin.take().expect("stdin");
    let text = input.join("\n");
    let writer = std::thread::spawn(move || stdin.write_all(text.as_bytes()));
    let out = child.wait_with_output().expect("java tool output");
    writer.join().expect("stdin writer").expect("write to the java tool");
    assert!(
        out.status.success(),
        "{run} {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8").lines().map(str::to_string).collect()
}

/// Like [`java`], each output line parsed as JSON.
pub fn java_json(args: &[&str], input: &[String]) -> Vec<Json> {
    java(args, input)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("java tool line {l}: {e}")))
        .collect()
}

/// `every_type` (tests/src/fixtures.rs) in a source database, written to its topic by a running
/// `cdc-source` in `format`: row 1 by the snapshot, rows 2–3 and the all-NULL row 4 by streaming.
pub struct EveryType {
    pub source: SourceSetup,
    pub service: Service,
    pub schema: TableSchema,
    /// The rows as `SELECT` returns them (cdc_schema's lossless values), by `id` 1..=4.
    pub meant: Vec<Vec<Value>>,
    /// Every record of the topic (keys and values).
    pub records: Vec<Consumed>,
}

impl EveryType {
    pub async fn written(tag: &str, format: &str) -> EveryType {
        let source = SourceSetup::new(tag).await;
        let mut conn = source.stack.root_conn(Some(&source.database)).await;
        conn.query_drop("SET time_zone = '+00:00', sql_mode = ''").await.expect("session");
        conn.query_drop(EVERY_TYPE_DDL).await.expect("create every_type");
        conn.query_drop(format!("INSERT INTO every_type VALUES {}", EVERY_TYPE_ROWS[0])).await.expect("row 1");
        let mut service = source.start(&source.config(format, "\"table.include.list\" = \"every_type\""));
        service.wait_for_log("streaming the binlog", Duration::from_secs(60));
        for row in &EVERY_TYPE_ROWS[1..] {
            conn.query_drop(format!("INSERT INTO every_type VALUES {row}")).await.expect("insert");
        }
        conn.query_drop("INSERT INTO every_type (id, k2) VALUES (4, 'nulls')").await.expect("nulls");
        let schema = TableSchema::load(&mut conn, &source.database, "every_type").await.expect("schema");
        let rows: Vec<mysql_async::Row> = conn
            .query(format!("SELECT {} FROM every_type ORDER BY id", schema.select_list()))
            .await
            .expect("select");
        let meant = rows.iter().map(|r| cdc_schema::row_from_snapshot(&schema, r).expect("row")).collect();
        let records = source.read("every_type", 4);
        assert_eq!(records.len(), 4, "every_type records on the topic; source log:\n{}", service.log_text());
        EveryType { source, service, schema, meant, records }
    }

    /// The meant row whose `id` is `id`.
    pub fn row(&self, id: i64) -> &[Value] {
        self.meant
            .iter()
            .find(|r| r[0] == Value::Int(id))
            .unwrap_or_else(|| panic!("no every_type row with id {id}"))
    }

    /// The meant key (primary-key columns in key order) and the column names of row `id`.
    pub fn key_of(&self, id: i64) -> Vec<(String, Value)> {
        let row = self.row(id);
        self.schema
            .primary_key
            .iter()
            .map(|k| {
                let at = self.schema.columns.iter().position(|c| &c.name == k).expect("key column");
                (k.clone(), row[at].clone())
            })
            .collect()
    }

    pub fn named_row(&self, id: i64) -> Vec<(String, Value)> {
        self.schema.columns.iter().map(|c| c.name.clone()).zip(self.row(id).iter().cloned()).collect()
    }
}

/// How a reader saw one field: the base type (Connect `int32`…, or Avro `int`, `long`…), the
/// Avro logicalType, the Connect name (Connect's `name`, Avro's `connect.name`), and the source
/// column type recorded in the field's parameters.
#[derive(Debug, Clone, Default)]
pub struct Repr {
    pub base: String,
    pub logical_type: Option<String>,
    pub connect_name: Option<String>,
    pub column_type: Option<String>,
}

const CONNECT_DECIMAL: &str = "org.apache.kafka.connect.data.Decimal";
const CONNECT_DATE: &str = "org.apache.kafka.connect.data.Date";
const CONNECT_TIME: &str = "org.apache.kafka.connect.data.Time";
const CONNECT_TIMESTAMP: &str = "org.apache.kafka.connect.data.Timestamp";

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
pub fn civil_days(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Epoch days of `d`: the calendar for real dates; for MariaDB's zero and partial dates, which
/// no calendar holds, this project's documented sentinel (`Date::to_epoch_days`).
fn days(d: &Date) -> i64 {
    if d.is_calendar_date() {
        civil_days(i64::from(d.year), i64::from(d.month), i64::from(d.day))
    } else {
        i64::from(d.to_epoch_days())
    }
}

/// Microseconds since 1970-01-01T00:00 of the wall clock `dt` (read as if UTC).
fn wall_micros(dt: &DateTime) -> i64 {
    if !dt.date.is_calendar_date() {
        return dt.to_epoch_micros();
    }
    let secs = days(&dt.date) * 86_400 + i64::from(dt.hour) * 3600 + i64::from(dt.minute) * 60 + i64::from(dt.second);
    secs * 1_000_000 + i64::from(dt.micros)
}

fn exact_ms(us: i64) -> Result<i64, String> {
    if us % 1000 == 0 {
        Ok(us / 1000)
    } else {
        Err(format!("{us} µs has no exact millisecond form"))
    }
}

/// `decimal:` text as Java's `BigDecimal.toPlainString` spells it.
pub fn plain(d: &Decimal) -> String {
    let text = d.unscaled().to_string();
    let (neg, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest.to_string()),
        None => (false, text),
    };
    let scale = d.scale() as usize;
    let body = if scale == 0 {
        digits
    } else {
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (int, frac) = padded.split_at(padded.len() - scale);
        format!("{int}.{frac}")
    };
    if neg { format!("-{body}") } else { body }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn int_tag(base: &str) -> &str {
    match base {
        "int" => "int32",
        "long" => "int64",
        other => other,
    }
}

/// What the Java side must show for `meant` in representation `r` (`None`: null). The
/// `cdc.zero_dates`-style nulls of a value record are checked by the caller.
pub fn expected(r: &Repr, meant: &Value) -> Result<Option<String>, String> {
    use Value as V;
    let name = r.connect_name.as_deref();
    let logical = r.logical_type.as_deref();
    let base = int_tag(&r.base);
    let s = match (logical, name, meant) {
        (_, _, V::Null) => return Ok(None),
        // Avro logical types, converted by the Java library
        (Some("decimal"), _, V::Decimal(d)) => format!("decimal:{}", plain(d)),
        (Some("date"), _, V::Date(d)) => format!("date:{}", days(d)),
        (Some("time-millis" | "time-micros"), _, V::Time(us)) => format!("time-us:{us}"),
        (Some("timestamp-millis" | "timestamp-micros"), _, V::Timestamp(us)) => format!("instant-us:{us}"),
        (Some("timestamp-millis" | "timestamp-micros"), _, V::DateTime(dt)) => format!("instant-us:{}", wall_micros(dt)),
        (Some("local-timestamp-millis" | "local-timestamp-micros"), _, V::DateTime(dt)) => {
            format!("local-us:{}", wall_micros(dt))
        }
        (Some(other), _, v) => return Err(format!("no meaning known for Avro logicalType {other} holding a {}", v.kind())),
        // Kafka Connect's logical types (JsonConverter gives java.util.Date / BigDecimal)
        (None, Some(CONNECT_DECIMAL), V::Decimal(d)) if r.base == "bytes" => format!("decimal:{}", plain(d)),
        (None, Some(CONNECT_DATE), V::Date(d)) if r.base == "int32" => format!("date:{}", days(d)),
        (None, Some(CONNECT_TIME), V::Time(us)) if r.base == "int32" => format!("time-ms:{}", exact_ms(*us)?),
        (None, Some(CONNECT_TIMESTAMP), V::Timestamp(us)) if r.base == "int64" => format!("timestamp-ms:{}", exact_ms(*us)?),
        (None, Some(CONNECT_TIMESTAMP), V::DateTime(dt)) if r.base == "int64" => {
            format!("timestamp-ms:{}", exact_ms(wall_micros(dt))?)
        }
        // Named primitives: Debezium's io.debezium.time types and this project's cdc.* types
        (None, Some("io.debezium.time.Date"), V::Date(d)) => format!("{base}:{}", days(d)),
        (None, Some("io.debezium.time.MicroTime" | "cdc.MicroTime"), V::Time(us)) => format!("{base}:{us}"),
        (None, Some("io.debezium.time.Timestamp"), V::DateTime(dt)) => format!("{base}:{}", exact_ms(wall_micros(dt))?),
        (None, Some("io.debezium.time.MicroTimestamp" | "cdc.LocalMicroTimestamp"), V::DateTime(dt)) => {
            format!("{base}:{}", wall_micros(dt))
        }
        (None, Some("cdc.MicroTimestamp"), V::Timestamp(us)) => format!("{base}:{us}"),
        (None, Some("io.debezium.time.ZonedTimestamp"), V::Timestamp(us)) => format!("instant-us:{us}"),
        (None, Some(other), v) if !is_plain_name_ok(other) => {
            return Err(format!("no meaning known for the Connect name {other} holding a {}", v.kind()))
        }
        // Plain primitives
        (None, _, V::Int(n)) if base.starts_with("int") => format!("{base}:{n}"),
        (None, _, V::Float(f)) if matches!(base, "float" | "float32") => format!("float32:{:08x}", f.to_bits()),
        (None, _, V::Double(f)) if matches!(base, "double" | "float64") => format!("float64:{:016x}", f.to_bits()),
        (None, _, V::Bool(b)) if base == "boolean" => format!("boolean:{b}"),
        (None, _, V::String(t)) if base == "string" => format!("string:{t}"),
        (None, _, V::Bytes(b)) if base == "bytes" || base == "fixed" => format!("bytes:{}", hex(b)),
        (l, n, v) => return Err(format!("a {} cannot be held by {base} (logicalType {l:?}, name {n:?})", v.kind())),
    };
    Ok(Some(s))
}

/// Record names may appear as a field's Connect name only for structs; none are expected here.
fn is_plain_name_ok(_name: &str) -> bool {
    false
}

/// What the Java side showed, normalised where a representation has more than one correct
/// spelling: a ZonedTimestamp string becomes its instant (`instant-us:`), checked to be
/// ISO-8601 in UTC.
pub fn normalise(r: &Repr, got: &Json) -> Result<Option<String>, String> {
    let text = match got {
        Json::Null => return Ok(None),
        Json::String(s) => s.clone(),
        other => return Err(format!("not a canonical scalar: {other}")),
    };
    if r.connect_name.as_deref() == Some("io.debezium.time.ZonedTimestamp") {
        let iso = text.strip_prefix("string:").ok_or_else(|| format!("ZonedTimestamp not a string: {text}"))?;
        return Ok(Some(format!("instant-us:{}", parse_utc_iso(iso)?)));
    }
    Ok(Some(text))
}

/// Microseconds of `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+00:00)`.
pub fn parse_utc_iso(s: &str) -> Result<i64, String> {
    let bad = || format!("`{s}` is not an ISO-8601 UTC timestamp");
    let body = s.strip_suffix('Z').or_else(|| s.strip_suffix("+00:00")).ok_or_else(bad)?;
    let (date, time) = body.split_once('T').ok_or_else(bad)?;
    let d: Vec<i64> = date.split('-').map(|p| p.parse().map_err(|_| bad())).collect::<Result<_, _>>()?;
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let t: Vec<i64> = hms.split(':').map(|p| p.parse().map_err(|_| bad())).collect::<Result<_, _>>()?;
    if d.len() != 3 || t.len() != 3 || frac.len() > 9 || !frac.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    let micros = if frac.is_empty() { 0 } else { format!("{frac:0<6}")[..6].parse::<i64>().map_err(|_| bad())? };
    Ok(((civil_days(d[0], d[1], d[2]) * 86_400) + t[0] * 3600 + t[1] * 60 + t[2]) * 1_000_000 + micros)
}

/// Whether a `cdc.zero_dates` header (`name=value,…`, names %-escaped) names field `name`.
fn carried_by_header(header: Option<&str>, name: &str) -> bool {
    let escaped = name.replace('%', "%25").replace(',', "%2C").replace('=', "%3D");
    header.is_some_and(|h| h.split(',').any(|pair| pair.split_once('=').is_some_and(|(n, _)| n == escaped)))
}

/// Compares one record as the Java side read it (`got`: field → canonical) with the meant
/// values; `reprs` are the fields as the Java side understood them. A null where a value was
/// meant is accepted only for a date the record's `cdc.zero_dates` header carries (record
/// format 2). Returns one line per difference.
pub fn compare(
    what: &str,
    reprs: &[(String, Repr)],
    got: &Json,
    meant: &[(String, Value)],
    zero_dates_header: Option<&str>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let got_names: Vec<&str> = reprs.iter().map(|(n, _)| n.as_str()).collect();
    let meant_names: Vec<&str> = meant.iter().map(|(n, _)| n.as_str()).collect();
    if got_names != meant_names {
        problems.push(format!("{what}: fields {got_names:?}, meant {meant_names:?}"));
        return problems;
    }
    for ((name, repr), (_, value)) in reprs.iter().zip(meant) {
        let want = expected(repr, value);
        let seen = normalise(repr, &got[name.as_str()]);
        match (want, seen) {
            (Ok(w), Ok(s)) if w == s => {}
            // A zero date has no value in the type at all (no day 0, no exact instant).
            (Ok(Some(_)) | Err(_), Ok(None)) if carried_by_header(zero_dates_header, name) => {}
            (w, s) => problems.push(format!(
                "{what}.{name} ({}): meant {value:?} → {w:?}, the Java library read {s:?} (raw {})",
                repr.column_type.as_deref().unwrap_or("?"),
                got[name.as_str()]
            )),
        }
    }
    problems
}
