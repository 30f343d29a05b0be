//! `jdbc-sink verify`: is the mirror equal to the source right now? Compares each source table
//! with its mirror table while the pipeline runs and writes continue, and exits 0 (equal),
//! 1 (rows differ) or 2 (could not verify).
//!
//! ## Which tables
//! A source table `t` (in the database of `--source-url`) is published by `cdc-source` on topic
//! `topic.prefix + t` (each character outside `[a-zA-Z0-9._-]` as `_`), which this sink writes to
//! the mirror table `table.name.format` makes of that topic, in the database of its
//! `connection.url`. Without `--tables`, every base table whose topic the sink reads (`topics` /
//! `topics.regex`) is verified.
//!
//! ## How
//! - **Chunks by primary key.** Keyset pagination over the source's primary key: the upper bound
//!   of a chunk is the key `--chunk-rows` rows after the lower one (`ORDER BY key LIMIT 1
//!   OFFSET n-1`). The first chunk has no lower bound and the last none above, so mirror rows
//!   outside the source's key range are found too.
//! - **A checksum per chunk, computed in SQL on both sides**: `COUNT(*)` and
//!   `BIT_XOR(CRC32(CONCAT_WS('#', v1, …, vn, CONCAT(ISNULL(c1), …))))` over the columns both
//!   tables have. NULL is told from `''` by the null markers (of the columns NULLable on either
//!   side); each value is rendered the same way
//!   whatever the column type on each side ([`render`]): temporal values with their microseconds,
//!   decimals of another scale normalised, text converted to utf8mb4 bytes, binary as hex.
//!   Both sessions use `time_zone = '+00:00'`.
//! - **In-flight changes are not mismatches.** The mirror trails the source by the sink's lag,
//!   so a chunk written to in that moment differs for a while. A chunk whose checksums differ is
//!   re-read row by row (key and row checksum on both sides); the rows that still differ are
//!   re-read by key with backoff (0.1 s doubling to 2 s) until they agree or `--settle-secs`
//!   passed since the table's chunks were read. Only rows still different then are reported,
//!   grouped by chunk. A sink lagging by more than `--settle-secs` shows its lag as mismatches.
//!   At most `--recheck-rows-max` differing rows per table are kept for re-checks (a mirror far
//!   behind would otherwise hold every key in memory); the differing rows of later chunks are
//!   reported as first read, counted in `rows_not_rechecked`.
//! - **Rate limit**: `--rate-limit` rows/s read from the source (0: as fast as it goes).
//!
//! Exit code: 1 when any table has a mismatching row, else 2 when any table could not be
//! verified (no primary key, a missing table or key column, a connection or query error, each
//! named), else 0.
//!
//! `--repair` turns each mismatching range into an incremental-snapshot signal of cdc-source for
//! its keys and verifies those tables again afterwards (`verify_repair.rs`).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use cdc_common::{ConnectionUrl, Secret};
use clap::Args;
use jdbc_sink::config::{Settings, Topics};
use jdbc_sink::ident::Ident;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Params, Row, Value};

#[path = "verify_repair.rs"]
mod repair;

/// `jdbc-sink verify` options.
#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// The source database cdc-source reads: jdbc:mysql://host:port/db (or mysql://user:pw@…).
    #[arg(long, env = "CDC_VERIFY_SOURCE_URL")]
    pub source_url: String,
    /// Source account (default: the URL's).
    #[arg(long, env = "CDC_VERIFY_SOURCE_USER")]
    pub source_user: Option<String>,
    /// Source password (default: the URL's); prefer the environment variable.
    #[arg(long, env = "CDC_VERIFY_SOURCE_PASSWORD", hide_env_values = true, value_parser = secret)]
    pub source_password: Option<Secret>,
    /// cdc-source's `topic.prefix`.
    #[arg(long, default_value = "my_topic_")]
    pub topic_prefix: String,
    /// Source tables to verify, comma-separated (default: every table whose topic the sink reads).
    #[arg(long, value_delimiter = ',')]
    pub tables: Vec<String>,
    /// Rows per chunk.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub chunk_rows: u64,
    /// Most source rows read per second (0: no limit).
    #[arg(long, default_value_t = 0)]
    pub rate_limit: u64,
    /// How long a differing row may take to agree (the sink's lag) before it is reported.
    #[arg(long, default_value_t = 30)]
    pub settle_secs: u64,
    /// Most differing rows of a table kept in memory to be re-checked; the differing rows of
    /// further chunks are reported as first read.
    #[arg(long, default_value_t = 100_000)]
    pub recheck_rows_max: usize,
    /// Print the report as one JSON document.
    #[arg(long)]
    pub json: bool,
    /// Repair what differs: each mismatching range becomes an incremental-snapshot signal to
    /// cdc-source for its keys (see --signal-url / --signal-table), then the tables are verified
    /// again.
    #[arg(long)]
    pub repair: bool,
    /// cdc-source's HTTP address for --repair (signals are posted to /signals, and its /status
    /// tells when they are done), e.g. http://127.0.0.1:18083.
    #[arg(long, env = "CDC_VERIFY_SIGNAL_URL")]
    pub signal_url: Option<String>,
    /// cdc-source's signal table (`signal.data.collection`, db.table) for --repair; the signals
    /// are inserted with the source account, which needs INSERT on it.
    #[arg(long)]
    pub signal_table: Option<String>,
    /// How long --repair waits for the source to finish the snapshots it asked for.
    #[arg(long, default_value_t = 300)]
    pub repair_wait_secs: u64,
}

fn secret(s: &str) -> Result<Secret, String> {
    Ok(Secret::new(s))
}

#[path = "verify_report.rs"]
mod report;
pub use report::{text_report, MismatchRange, Report, TableReport, MAX_KEYS};


/// Runs `verify` and prints the report; the process exit code.
pub async fn run(settings: &Settings, args: &VerifyArgs) -> ExitCode {
    if args.repair {
        return repair::run(settings, args).await;
    }
    let report = verify(settings, args).await;
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => eprintln!("jdbc-sink verify: cannot write the report: {e}"),
        }
    } else {
        print!("{}", text_report(&report));
    }
    ExitCode::from(match report.result {
        "equal" => 0,
        "mismatch" => 1,
        _ => 2,
    })
}

/// Compares every selected table; never panics on bad input, the report says what failed.
pub async fn verify(settings: &Settings, args: &VerifyArgs) -> Report {
    let started = Instant::now();
    let mut report = Report {
        mirror: format!("{}", settings.url),
        ..Report::default()
    };
    let outcome = async {
        let url = ConnectionUrl::parse(&args.source_url)
            .map_err(|e| format!("--source-url: {e}"))?;
        report.source = url.to_string();
        let source_db = url.database.clone().ok_or(
            "--source-url names no database; add it, e.g. jdbc:mysql://host:3306/mydb",
        )?;
        let source_opts = url.opts(args.source_user.as_deref(), args.source_password.as_ref());
        let mut src = connect(source_opts, "source", &report.source).await?;
        let mut dst = connect(settings.db_opts(), "mirror", &report.mirror).await?;
        let tables = select_tables(&mut src, &source_db, settings, args).await?;
        for table in tables {
            let t0 = Instant::now();
            let mut tr = TableReport { table: table.clone(), ..TableReport::default() };
            let result = async {
                let plan = plan_table(&mut src, &mut dst, &source_db, &settings.database, settings, args, &table, &mut tr).await?;
                compare_table(&mut src, &mut dst, &plan, args, &mut tr).await
            }
            .await;
            tr.error = result.err();
            tr.elapsed_ms = t0.elapsed().as_millis() as u64;
            report.rows += tr.rows;
            report.mismatching_rows += tr.mismatching_rows;
            report.tables.push(tr);
        }
        Ok::<(), String>(())
    }
    .await;
    report.error = outcome.err();
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    report.result = if report.mismatching_rows > 0 {
        "mismatch"
    } else if report.error.is_some() || report.tables.iter().any(|t| t.error.is_some()) {
        "error"
    } else {
        "equal"
    };
    report
}

/// `what`: `source` or `mirror`.
async fn connect(opts: mysql_async::OptsBuilder, what: &str, shown: &str) -> Result<Conn, String> {
    let fix = match what {
        "source" => "check --source-url, --source-user and --source-password",
        _ => "check connection.url, connection.user and connection.password of the sink config",
    };
    let opts = opts.init(vec![
        "SET NAMES utf8mb4".to_string(),
        "SET time_zone = '+00:00'".to_string(),
    ]);
    match tokio::time::timeout(Duration::from_secs(15), Conn::new(opts)).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(format!("cannot connect to the {what} database {shown}: {e}; {fix}")),
        Err(_) => Err(format!("cannot connect to the {what} database {shown}: no answer within 15 s; {fix}")),
    }
}

/// `name` as cdc-source names a topic: each character outside `[a-zA-Z0-9._-]` becomes `_`
/// (cdc-source's `records::topic_name`; `.`/`..` cannot be table names).
pub fn topic_name(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' })
        .collect()
}

/// Whether the sink reads `topic`.
pub fn sink_reads(topics: &Topics, topic: &str) -> bool {
    match topics {
        Topics::List(list) => list.iter().any(|t| t == topic),
        Topics::Regex(re) => regex::Regex::new(&format!("^(?:{re})$")).is_ok_and(|r| r.is_match(topic)),
    }
}

async fn select_tables(src: &mut Conn, db: &str, settings: &Settings, args: &VerifyArgs) -> Result<Vec<String>, String> {
    if !args.tables.is_empty() {
        return Ok(args.tables.iter().map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect());
    }
    let all: Vec<String> = src
        .exec(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
            (db,),
        )
        .await
        .map_err(|e| format!("cannot list the tables of source database `{db}`: {e}"))?;
    let mine: Vec<String> = all
        .into_iter()
        .filter(|t| sink_reads(&settings.topics, &topic_name(&format!("{}{t}", args.topic_prefix))))
        .collect();
    if mine.is_empty() {
        return Err(format!(
            "no table of source database `{db}` has a topic (--topic-prefix {:?} + table) that this sink reads; check --topic-prefix, or name the tables with --tables",
            args.topic_prefix
        ));
    }
    Ok(mine)
}

#[path = "verify_plan.rs"]
mod plan;
use plan::Plan;
#[cfg(test)]
use plan::{build_plan, render, ColType};
use plan::plan_table;

/// Key bounds of a chunk: `(lo, hi]`, `None` unbounded.
#[derive(Debug, Clone, Default)]
pub struct Range {
    pub lo: Option<Vec<Value>>,
    pub hi: Option<Vec<Value>>,
}

/// `key > vals` (`greater`) or `key <= vals`, compared as tuples, as SQL with its parameters:
/// an OR of prefix equalities, which the range optimiser turns into key ranges.
pub fn key_cmp(key: &[Ident], vals: &[Value], greater: bool) -> (String, Vec<Value>) {
    let mut parts = Vec::new();
    let mut params = Vec::new();
    for i in 0..key.len() {
        let mut conj = Vec::new();
        for j in 0..i {
            conj.push(format!("{} = ?", key[j]));
            params.push(vals[j].clone());
        }
        let last = i + 1 == key.len();
        let op = match (greater, last) {
            (true, _) => ">",
            (false, false) => "<",
            (false, true) => "<=",
        };
        conj.push(format!("{} {op} ?", key[i]));
        params.push(vals[i].clone());
        parts.push(format!("({})", conj.join(" AND ")));
    }
    (format!("({})", parts.join(" OR ")), params)
}

/// The `WHERE` condition of `range`.
pub fn range_where(key: &[Ident], range: &Range) -> (String, Vec<Value>) {
    let mut conds = vec!["1".to_string()];
    let mut params = Vec::new();
    for (bound, greater) in [(&range.lo, true), (&range.hi, false)] {
        if let Some(vals) = bound {
            let (sql, p) = key_cmp(key, vals, greater);
            conds.push(sql);
            params.extend(p);
        }
    }
    (conds.join(" AND "), params)
}

fn params(values: Vec<Value>) -> Params {
    if values.is_empty() { Params::Empty } else { Params::Positional(values) }
}

fn key_list(key: &[Ident]) -> String {
    key.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// The key `n` rows after `lo` at the source, `None` when fewer rows remain.
async fn next_bound(src: &mut Conn, plan: &Plan, lo: &Option<Vec<Value>>, n: u64) -> Result<Option<Vec<Value>>, mysql_async::Error> {
    let range = Range { lo: lo.clone(), hi: None };
    let (cond, p) = range_where(&plan.key, &range);
    let keys = key_list(&plan.key);
    let sql = format!("SELECT {keys} FROM {} WHERE {cond} ORDER BY {keys} LIMIT 1 OFFSET {}", plan.source, n - 1);
    let row: Option<Row> = src.exec_first(sql, params(p)).await?;
    Ok(row.map(Row::unwrap))
}

/// `(COUNT(*), BIT_XOR(CRC32(row)))` of `range` in `table`.
async fn chunk_sum(conn: &mut Conn, table: &Ident, plan: &Plan, range: &Range) -> Result<(u64, u64), mysql_async::Error> {
    let (cond, p) = range_where(&plan.key, range);
    let sql = format!("SELECT COUNT(*), IFNULL(BIT_XOR(CRC32({})), 0) FROM {table} WHERE {cond}", plan.row_text);
    let row: Option<(u64, u64)> = conn.exec_first(sql, params(p)).await?;
    Ok(row.unwrap_or((0, 0)))
}

/// Rows of one side by key text: `(row checksum, key values)`.
type RowSums = BTreeMap<String, (u64, Vec<Value>)>;

fn row_sums(rows: Vec<Row>) -> RowSums {
    rows.into_iter()
        .map(|row| {
            let mut vals = row.unwrap();
            let key_vals = vals.split_off(2);
            let key = match &vals[0] {
                Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
                v => value_text(v),
            };
            let sum = mysql_async::from_value_opt::<u64>(vals[1].clone()).unwrap_or(0);
            (key, (sum, key_vals))
        })
        .collect()
}

/// Every row of `range` in `table`: key text, checksum, key values.
async fn chunk_rows(conn: &mut Conn, table: &Ident, plan: &Plan, range: &Range) -> Result<RowSums, mysql_async::Error> {
    let (cond, p) = range_where(&plan.key, range);
    let sql = format!("SELECT {}, CRC32({}), {} FROM {table} WHERE {cond}", plan.key_text, plan.row_text, key_list(&plan.key));
    Ok(row_sums(conn.exec(sql, params(p)).await?))
}

/// The rows of `table` with the given keys (500 per statement).
async fn rows_by_key(conn: &mut Conn, table: &Ident, plan: &Plan, keys: &[&Vec<Value>]) -> Result<RowSums, mysql_async::Error> {
    let mut out = RowSums::new();
    for group in keys.chunks(500) {
        let mut conds = Vec::new();
        let mut p = Vec::new();
        for vals in group {
            conds.push(format!("({})", plan.key.iter().map(|k| format!("{k} = ?")).collect::<Vec<_>>().join(" AND ")));
            p.extend(vals.iter().cloned());
        }
        let sql = format!("SELECT {}, CRC32({}), {} FROM {table} WHERE {}", plan.key_text, plan.row_text, key_list(&plan.key), conds.join(" OR "));
        out.extend(row_sums(conn.exec(sql, params(p)).await?));
    }
    Ok(out)
}

/// A key value as text, for bounds in the report.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        Value::NULL => "NULL".into(),
        v => v.as_sql(true).trim_matches('\'').to_string(),
    }
}

fn bound_text(b: &Option<Vec<Value>>) -> Option<String> {
    b.as_ref().map(|vals| vals.iter().map(value_text).collect::<Vec<_>>().join("#"))
}

/// A row that differed: its chunk, key values, and checksums last seen on each side.
#[derive(Debug)]
struct Suspect {
    chunk: usize,
    key: Vec<Value>,
    src: Option<u64>,
    dst: Option<u64>,
}

async fn compare_table(src: &mut Conn, dst: &mut Conn, plan: &Plan, args: &VerifyArgs, tr: &mut TableReport) -> Result<(), String> {
    let q = |e: mysql_async::Error| format!("query on `{}` / `{}` failed: {e}", plan.source.as_str(), plan.mirror.as_str());
    let started = Instant::now();
    let mut chunks: Vec<Range> = Vec::new();
    let mut suspects: BTreeMap<String, Suspect> = BTreeMap::new();
    let mut overflow: Vec<(usize, MismatchRange)> = Vec::new();
    let mut lo: Option<Vec<Value>> = None;
    loop {
        let hi = next_bound(src, plan, &lo, args.chunk_rows).await.map_err(q)?;
        let range = Range { lo: lo.take(), hi };
        let (s, d) = tokio::join!(chunk_sum(src, &plan.source, plan, &range), chunk_sum(dst, &plan.mirror, plan, &range));
        let (s, d) = (s.map_err(q)?, d.map_err(q)?);
        tr.rows += s.0;
        if s != d {
            tr.chunks_rechecked += 1;
            let (sr, dr) = tokio::join!(chunk_rows(src, &plan.source, plan, &range), chunk_rows(dst, &plan.mirror, plan, &range));
            let (sr, dr) = (sr.map_err(q)?, dr.map_err(q)?);
            let found = differing(&sr, &dr, chunks.len());
            if suspects.len() + found.len() <= args.recheck_rows_max {
                suspects.extend(found);
            } else {
                // Far too many to re-check (a sink stopped long ago): reported as first read.
                tr.rows_not_rechecked += found.len() as u64;
                overflow.extend(group_by_chunk(&chunks_so_far(&chunks, &range), &found.into_iter().collect()));
            }
        }
        let next = range.hi.clone();
        chunks.push(range);
        if args.rate_limit > 0 {
            let due = started + Duration::from_secs_f64(tr.rows as f64 / args.rate_limit as f64);
            tokio::time::sleep_until(due.into()).await;
        }
        match next {
            Some(hi) => lo = Some(hi),
            None => break,
        }
    }
    tr.chunks = chunks.len() as u64;
    let first_seen = suspects.len();
    settle(src, dst, plan, &mut suspects, Duration::from_secs(args.settle_secs)).await.map_err(q)?;
    let mut ranges = group_by_chunk(&chunks, &suspects);
    ranges.extend(overflow);
    ranges.sort_by_key(|(i, _)| *i);
    tr.mismatches = ranges.into_iter().map(|(_, m)| m).collect();
    tr.mismatching_rows = tr.mismatches.iter().map(|m| m.rows).sum();
    tr.rows_settled = (first_seen - suspects.len()) as u64;
    Ok(())
}

fn differing(sr: &RowSums, dr: &RowSums, chunk: usize) -> Vec<(String, Suspect)> {
    let mut out = Vec::new();
    for (key, (sum, vals)) in sr {
        let other = dr.get(key).map(|(s, _)| *s);
        if other != Some(*sum) {
            out.push((key.clone(), Suspect { chunk, key: vals.clone(), src: Some(*sum), dst: other }));
        }
    }
    for (key, (sum, vals)) in dr {
        if !sr.contains_key(key) {
            out.push((key.clone(), Suspect { chunk, key: vals.clone(), src: None, dst: Some(*sum) }));
        }
    }
    out
}

/// Re-reads the suspects on both sides with backoff until they agree or `within` has passed.
async fn settle(src: &mut Conn, dst: &mut Conn, plan: &Plan, suspects: &mut BTreeMap<String, Suspect>, within: Duration) -> Result<(), mysql_async::Error> {
    let deadline = Instant::now() + within;
    let mut delay = Duration::from_millis(100);
    while !suspects.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(delay.min(deadline.saturating_duration_since(Instant::now()))).await;
        delay = (delay * 2).min(Duration::from_secs(2));
        let keys: Vec<&Vec<Value>> = suspects.values().map(|s| &s.key).collect();
        let s = rows_by_key(src, &plan.source, plan, &keys).await?;
        let d = rows_by_key(dst, &plan.mirror, plan, &keys).await?;
        suspects.retain(|key, sus| {
            sus.src = s.get(key).map(|(x, _)| *x);
            sus.dst = d.get(key).map(|(x, _)| *x);
            sus.src != sus.dst
        });
    }
    Ok(())
}

/// Orders key texts as numbers when both are integers, else as text.
fn key_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<i128>(), b.parse::<i128>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

/// The chunks read so far and `current` (for grouping the rows of the chunk being read).
fn chunks_so_far(chunks: &[Range], current: &Range) -> Vec<Range> {
    let mut all = chunks.to_vec();
    all.push(current.clone());
    all
}

/// The differing rows grouped by chunk, as `(chunk index, range)`.
fn group_by_chunk(chunks: &[Range], suspects: &BTreeMap<String, Suspect>) -> Vec<(usize, MismatchRange)> {
    let mut by_chunk: BTreeMap<usize, Vec<(&String, &Suspect)>> = BTreeMap::new();
    for (k, s) in suspects {
        by_chunk.entry(s.chunk).or_default().push((k, s));
    }
    by_chunk
        .into_iter()
        .map(|(i, mut rows)| {
            rows.sort_by(|a, b| key_order(a.0, b.0));
            let count = |f: fn(&Suspect) -> bool| rows.iter().filter(|(_, s)| f(s)).count() as u64;
            (i, MismatchRange {
                after: bound_text(&chunks[i].lo),
                up_to: bound_text(&chunks[i].hi),
                rows: rows.len() as u64,
                missing_in_mirror: count(|s| s.dst.is_none()),
                only_in_mirror: count(|s| s.src.is_none()),
                different: count(|s| s.src.is_some() && s.dst.is_some()),
                keys: rows.iter().take(MAX_KEYS).map(|(k, _)| (*k).clone()).collect(),
                key_values: rows.iter().take(MAX_KEYS).map(|(_, s)| s.key.iter().map(value_text).collect()).collect(),
            })
        })
        .collect()
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;
