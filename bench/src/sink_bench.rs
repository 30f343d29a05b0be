//! `cdc-bench --sink`: throughput and memory of the release-built `jdbc-sink` applying records
//! that are already on their topic, against MariaDB upserting the same rows from the `mariadb`
//! client, in the same run.
//!
//! 1. W1 (`rows` INSERTs into `orders`) is written to a fresh database and published once per
//!    format by the release-built `cdc-source` (the run of [`crate::source::run`], so the topic
//!    holds exactly the records the source writes, committed, with their headers).
//! 2. The rows of the source table are written as an SQL file of upserts of the sink's
//!    `batch.size` (see [`crate::upsert`]); writing it is not timed.
//! 3. Per format, `jdbc-sink` starts on the topic with a fresh mirror database (`auto.create`).
//!    *Start-up* = spawn until `/status` says `running`; *applying* = from then until its
//!    offsets table (committed in the same transaction as the rows) stores, for every partition,
//!    the offset after the topic's last record. The mirror row count is checked afterwards.
//! 4. Right after, the `mariadb` client upserts the same rows into a fresh copy of the mirror
//!    table; **ratio = applying time / the client's time**, with the limit of the sink issue
//!    (≤ 1.25); `CHECKSUM TABLE` of both tables must agree.
//! 5. Peak RSS = `VmHWM` of the sink (limit 64 MiB); CPU of the sink and the stack meanwhile.
//! 6. The same upserts through mysql_async, the sink's client library, each into a fresh copy
//!    again: the SQL file's multi-row text statements (the sink's protocol), and MariaDB's bulk
//!    protocol (`exec_batch`, `COM_STMT_BULK_EXECUTE`) with one prepared statement per batch;
//!    printed for comparison, checksums against the mirror (see [`crate::upsert`]).

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use cdc_source::offsets::StoredOffset;
use cdc_source::position::FilePos;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::cpu::{CpuMeter, CpuUse};
use crate::process::{self, describe_histogram};
use crate::sink::{stored_offsets, SinkSpec};
use cdc_testkit::Stack;
use crate::workload::{self, Workload};
use crate::{kafka, mib, source, upsert, verdict, Cli};

/// Sink applying time / the `mariadb` client's time must not exceed this.
pub const RATIO_LIMIT: f64 = 1.25;
/// Peak RSS of the sink, KiB.
pub const RSS_LIMIT_KB: u64 = 64 * 1024;

/// The figures of one format.
#[derive(Debug)]
struct SinkOutcome {
    format: String,
    rows: u64,
    source_rows_per_s: f64,
    startup: Duration,
    applying: Duration,
    theirs: Duration,
    /// mysql_async: multi-row text statements, and the bulk protocol.
    text: Duration,
    bulk: Duration,
    /// Whether both tables of those runs have the mirror's checksum.
    protocols_equal: bool,
    peak_rss_kb: u64,
    start_rss_kb: u64,
    cpu: CpuUse,
    batches: String,
    batch_duration: String,
    exit_code: Option<i32>,
    verified: Result<(), String>,
}

impl SinkOutcome {
    fn ratio(&self) -> f64 {
        self.applying.as_secs_f64() / self.theirs.as_secs_f64()
    }

    fn passes(&self) -> bool {
        self.verified.is_ok() && self.ratio() <= RATIO_LIMIT && self.peak_rss_kb <= RSS_LIMIT_KB
    }
}

pub async fn run(
    cli: &Cli,
    stack: &Stack,
    source_bin: &Path,
    sink_bin: &Path,
    root: &Path,
) -> anyhow::Result<bool> {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let base = format!("bench_sink_{secs}");
    let rows = cli.rows.unwrap_or(1_000_000);
    let dir = root.join("target/cdc-bench").join(&base);
    std::fs::create_dir_all(&dir)?;
    println!(
        "\n== sink: {rows} records of orders on a topic -> jdbc-sink {} (database prefix {base})",
        sink_bin.display()
    );
    workload::create_database(stack, &base).await?;
    let range = workload::prepare(stack, &base, Workload::W1, rows).await?;
    println!(
        "   prepared {rows} rows in {:.1} s",
        range.prepare_time.as_secs_f64()
    );
    let probe = sink_spec(cli, sink_bin, &dir, &base, vec![])?;
    let batch = probe.batch_size()?;
    let sql = dir.join("upsert.sql");
    let began = Instant::now();
    let file = upsert::write_sql(stack, &base, "orders", batch, &sql).await?;
    println!(
        "   SQL file for the mariadb client: {} statements of up to {batch} rows, {:.1} MiB, written in {:.1} s (not timed)",
        file.statements,
        file.bytes as f64 / 1048576.0,
        began.elapsed().as_secs_f64()
    );
    let mut outcomes = Vec::new();
    for (n, format) in cli.format.iter().enumerate() {
        let tag = format!("{base}_{format}");
        let mut spec = crate::run_spec(cli, source_bin, root, &tag, &base, format, n as u32)?;
        // `--perf` profiles the sink here, not the source publishing the records.
        spec.perf = false;
        let start = StoredOffset {
            gtid: range.start.gtid.clone(),
            binlog: FilePos {
                file: range.start.file.clone(),
                pos: range.start.pos,
            },
            ts_ms: 0,
        };
        kafka::seed_offset(&stack.kafka(), &spec.offsets_topic(), &tag, &start).await?;
        let published = source::run(stack, &spec, &range).await?;
        let source_rows_per_s = rows as f64 / published.streaming.as_secs_f64();
        println!(
            "   {format}: cdc-source published {rows} records at {source_rows_per_s:.0} rows/s"
        );
        let topic = format!("{}orders", spec.prefix());
        let mirror = format!("{tag}_mirror");
        let o = one(
            cli, stack, sink_bin, root, &dir, &topic, &mirror, &sql, rows, format, &base, batch,
        )
        .await?;
        let o = SinkOutcome {
            source_rows_per_s,
            ..o
        };
        report(&o);
        record(root, &o, cli)?;
        outcomes.push(o);
        if !cli.keep {
            let topics = vec![topic, spec.offsets_topic()];
            if let Err(e) = kafka::delete_topics(&stack.kafka(), &topics).await {
                eprintln!("   (could not delete the run's topics: {e})");
            }
            workload::drop_database(stack, &mirror).await?;
        }
    }
    if !cli.keep {
        workload::drop_database(stack, &base).await?;
        let _ = std::fs::remove_file(&sql);
    }
    summary(&outcomes);
    Ok(outcomes.iter().all(SinkOutcome::passes))
}

fn sink_spec(
    cli: &Cli,
    sink_bin: &Path,
    dir: &Path,
    name: &str,
    topics: Vec<String>,
) -> anyhow::Result<SinkSpec> {
    Ok(SinkSpec {
        name: name.to_string(),
        database: format!("{name}_mirror"),
        topics,
        http_port: cdc_testkit::free_port(),
        sink_keys: source::parse_pairs(&cli.sink_set)?,
        kafka_keys: source::parse_pairs(&cli.sink_kafka)?,
        binary: sink_bin.to_path_buf(),
        dir: dir.to_path_buf(),
    })
}

/// One sink run over `topic` into a fresh `mirror` database, then the client's run.
#[allow(clippy::too_many_arguments)]
async fn one(
    cli: &Cli,
    stack: &Stack,
    sink_bin: &Path,
    root: &Path,
    dir: &Path,
    topic: &str,
    mirror: &str,
    sql: &Path,
    rows: u64,
    format: &str,
    source_db: &str,
    batch: usize,
) -> anyhow::Result<SinkOutcome> {
    let ends = kafka::end_offsets(&stack.kafka(), topic)?;
    let name = mirror.trim_end_matches("_mirror");
    let spec = sink_spec(
        cli,
        sink_bin,
        &dir.join(format),
        name,
        vec![topic.to_string()],
    )?;
    let mut admin = Conn::new(stack.root_opts(None)).await?;
    admin
        .query_drop(format!("CREATE DATABASE `{mirror}` CHARACTER SET utf8mb4"))
        .await?;
    admin.disconnect().await?;
    let mut conn = Conn::new(stack.root_opts(Some(mirror))).await?;
    let spawned = Instant::now();
    let mut sink = spec.start(stack)?;
    let perf = if cli.perf {
        Some(process::start_perf(sink.pid, &spec.dir)?)
    } else {
        None
    };
    let timeout = Duration::from_secs(cli.timeout_s);
    sink.wait_state("running", timeout).await?;
    let running = Instant::now();
    let start_rss_kb = sink.status_kb("VmRSS");
    let meter = CpuMeter::new(&[("jdbc-sink", sink.pid)], &crate::stack_home(root));
    let cpu0 = meter.snapshot();
    // Transactional topics end with a commit marker: the sink stores the offset after the last
    // record, which is the high watermark minus one.
    let applied = loop {
        sink.alive().map_err(|e| e.context(sink.log_tail()))?;
        let stored = stored_offsets(&mut conn, topic).await;
        let done = ends.iter().all(|(p, high)| {
            *high == 0 || stored.iter().any(|(sp, next)| sp == p && *next >= high - 1)
        });
        if done {
            break Instant::now();
        }
        if spawned.elapsed() > timeout {
            bail!(
                "jdbc-sink did not apply {topic} within {timeout:?}; {}",
                sink.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let cpu = CpuUse::between(&cpu0, &meter.snapshot());
    let metrics = sink.save_metrics(&spec.dir);
    let peak_rss_kb = sink.status_kb("VmHWM");
    if let Some(p) = perf {
        process::stop(p, Duration::from_secs(30));
    }
    let exit_code = sink.stop(Duration::from_secs(30));
    let count: Option<u64> = conn
        .query_first(format!("SELECT COUNT(*) FROM `{topic}`"))
        .await?;
    conn.disconnect().await?;
    upsert::fresh_copy(stack, mirror, topic).await?;
    let theirs = upsert::time_client(stack, mirror, sql)?;
    let ours_sum = upsert::checksum(stack, mirror, topic).await?;
    let theirs_sum = upsert::checksum(stack, mirror, upsert::REFERENCE_TABLE).await?;
    upsert::fresh_copy(stack, mirror, topic).await?;
    let text = upsert::time_text(stack, mirror, sql).await?;
    let text_sum = upsert::checksum(stack, mirror, upsert::REFERENCE_TABLE).await?;
    upsert::fresh_copy(stack, mirror, topic).await?;
    let bulk = upsert::time_bulk(stack, mirror, source_db, "orders", batch).await?;
    let bulk_sum = upsert::checksum(stack, mirror, upsert::REFERENCE_TABLE).await?;
    let verified = if count != Some(rows) {
        Err(format!("the mirror has {count:?} rows, expected {rows}"))
    } else if ours_sum != theirs_sum {
        Err(format!(
            "CHECKSUM TABLE differs: mirror {ours_sum:?}, mariadb client {theirs_sum:?}"
        ))
    } else {
        Ok(())
    };
    Ok(SinkOutcome {
        format: format.to_string(),
        rows,
        source_rows_per_s: 0.0,
        startup: running - spawned,
        applying: applied - running,
        theirs,
        text,
        bulk,
        protocols_equal: text_sum == ours_sum && bulk_sum == ours_sum,
        peak_rss_kb,
        start_rss_kb,
        cpu,
        batches: describe_histogram(metrics.as_deref(), "cdc_sink_batch_records", false),
        batch_duration: describe_histogram(
            metrics.as_deref(),
            "cdc_sink_batch_duration_seconds",
            true,
        ),
        exit_code,
        verified,
    })
}

fn report(o: &SinkOutcome) {
    let r = o.rows as f64;
    println!(
        "   jdbc-sink:      start-up {:.2} s, applying {:.2} s -> {:.0} rows/s (with start-up {:.0} rows/s); exit code {:?}",
        o.startup.as_secs_f64(),
        o.applying.as_secs_f64(),
        r / o.applying.as_secs_f64(),
        r / (o.startup + o.applying).as_secs_f64(),
        o.exit_code
    );
    println!(
        "   batches: {} records, {} each",
        o.batches, o.batch_duration
    );
    println!("   CPU while applying: {}", o.cpu.describe());
    println!(
        "   mariadb client: {:.2} s -> {:.0} rows/s",
        o.theirs.as_secs_f64(),
        r / o.theirs.as_secs_f64()
    );
    println!(
        "   mysql_async, same upserts: multi-row text {:.2} s ({:.2}x the client), bulk COM_STMT_BULK_EXECUTE {:.2} s ({:.2}x); tables {}",
        o.text.as_secs_f64(),
        o.text.as_secs_f64() / o.theirs.as_secs_f64(),
        o.bulk.as_secs_f64(),
        o.bulk.as_secs_f64() / o.theirs.as_secs_f64(),
        if o.protocols_equal { "equal to the mirror" } else { "DIFFER from the mirror" }
    );
    println!(
        "   ratio ours/theirs: {:.2} (limit {RATIO_LIMIT}: {})",
        o.ratio(),
        verdict(o.ratio() <= RATIO_LIMIT)
    );
    println!(
        "   peak RSS (VmHWM): {:.1} MiB (limit {} MiB: {}); RSS when running began {:.1} MiB",
        mib(o.peak_rss_kb),
        RSS_LIMIT_KB / 1024,
        verdict(o.peak_rss_kb <= RSS_LIMIT_KB),
        mib(o.start_rss_kb)
    );
    match &o.verified {
        Ok(()) => println!(
            "   mirror: {} rows, CHECKSUM TABLE equal to the client's table",
            o.rows
        ),
        Err(e) => println!("   mirror: MISSED: {e}"),
    }
}

fn summary(outcomes: &[SinkOutcome]) {
    println!("\n| format | rows | jdbc-sink rows/s | mariadb client rows/s | ratio (≤ {RATIO_LIMIT}) | peak RSS MiB (≤ 64) | mirror |");
    println!("|---|---:|---:|---:|---:|---:|---|");
    for o in outcomes {
        let r = o.rows as f64;
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.2} ({}) | {:.1} ({}) | {} |",
            o.format,
            o.rows,
            r / o.applying.as_secs_f64(),
            r / o.theirs.as_secs_f64(),
            o.ratio(),
            verdict(o.ratio() <= RATIO_LIMIT),
            mib(o.peak_rss_kb),
            verdict(o.peak_rss_kb <= RSS_LIMIT_KB),
            if o.verified.is_ok() {
                "equal"
            } else {
                "MISSED"
            }
        );
    }
}

/// Appends the figures to `target/cdc-bench/results.jsonl`.
fn record(root: &Path, o: &SinkOutcome, cli: &Cli) -> anyhow::Result<()> {
    let line = serde_json::json!({
        "at": SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        "workload": "sink",
        "format": o.format,
        "rows": o.rows,
        "source_rows_per_s": o.source_rows_per_s,
        "startup_s": o.startup.as_secs_f64(),
        "applying_s": o.applying.as_secs_f64(),
        "mariadb_client_s": o.theirs.as_secs_f64(),
        "mysql_async_text_s": o.text.as_secs_f64(),
        "mysql_async_bulk_s": o.bulk.as_secs_f64(),
        "ratio": o.ratio(),
        "peak_rss_kb": o.peak_rss_kb,
        "start_rss_kb": o.start_rss_kb,
        "cpu_s": o.cpu.processes.iter().map(|(n, s)| (n.clone(), serde_json::json!(s))).collect::<serde_json::Map<_, _>>(),
        "machine_busy": o.cpu.machine_busy,
        "verified": o.verified.is_ok(),
        "sink_set": cli.sink_set,
    });
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(root.join("target/cdc-bench/results.jsonl"))
        .context("open results.jsonl")?;
    writeln!(f, "{line}")?;
    Ok(())
}
