//! The incremental workload: how fast the source copies a table with an incremental snapshot
//! while it streams, alone and under a paced writer, and what the snapshot costs the writer's
//! end-to-end latency.
//!
//! In a fresh database (name = topic prefix = source name, as the other workloads):
//! 1. `orders` (DDL of `sql/01-databases.sql`, plus a column `committed_at DATETIME(6)` the
//!    writer sets) gets `--rows` rows (default 1,000,000), inserted as in W1; not timed. Two
//!    floors are timed on it: `mariadb --quick -e "SELECT * FROM orders"`, and the chunk reader's
//!    statements alone from the bench (per chunk of `incremental.snapshot.chunk.size` rows: a read
//!    view, its binlog position, `@@gtid_binlog_pos` and `SHOW MASTER STATUS`, the table's columns
//!    and key from `information_schema`, the next rows by key, `COMMIT`).
//! 2. The source starts with `snapshot.mode = "never"` (nothing is copied at start) and is
//!    waited for until `/status` says `streaming`.
//! 3. **Alone**: an `execute-snapshot` signal for `orders` is posted to `POST /signals`. Timed from
//!    the post until a `read_committed` reader of the offsets topic sees the first committed
//!    record without that snapshot in its progress (the record committed with the last chunk:
//!    every snapshot record is committed then). The orders topic must then hold every id once as
//!    `cdc.op=r`, and nothing else.
//! 4. **Under a writer**: the paced writer of `--e2e` (`--rate` changes/s, default 2,000: half
//!    inserts of new orders, half updates of existing ones, each setting `committed_at = NOW(6)`)
//!    runs; a `read_committed` consumer follows the topic and notes when each change became
//!    readable. After [`BASELINE`] of writes a second signal is posted and timed as in 3; the
//!    writer stops when the snapshot's end is committed. Latency of a change = readable (the
//!    bench's clock) − `committed_at` (the server's clock, the same machine), split into the
//!    changes committed in the baseline window and during the snapshot. On the topic, from where
//!    step 3 ended: every writer change once, and every id once as `r` except ids whose update
//!    won over the chunk's copy (their `u` record is the newer row).
//! 5. Peak RSS is `VmHWM` after step 3 and at the end.
//!
//! Limits: peak RSS ≤ 64 MiB; every record check passes. Rows/s and the extra p99 are printed,
//! not limited.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use cdc_source::offsets::OffsetRecord;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::cpu::{CpuMeter, CpuUse};
use crate::e2e::{paced_writer, Percentiles, WRITERS};
use crate::process::{self, Service};
use crate::source::RunSpec;
use cdc_testkit::Stack;
use crate::workload::{self, Workload};
use crate::{kafka, mib, snapshot_bench, verdict, Cli, RSS_LIMIT_KB};

/// Writer latency measured before the second signal.
const BASELINE: Duration = Duration::from_secs(20);
/// Writes before the baseline window opens (connections, first commits).
const WARMUP: Duration = Duration::from_secs(2);
/// Longest wait for the writer's last change to be committed after it stopped.
const CATCH_UP: Duration = Duration::from_secs(60);
/// The source's default `incremental.snapshot.chunk.size`.
const DEFAULT_CHUNK: u64 = 1024;

/// One incremental snapshot as measured.
#[derive(Debug)]
struct Phase {
    /// Records read (`r`) by this snapshot.
    rows: u64,
    /// Signal posted until its end is committed.
    took: Duration,
    /// Signal posted until the first committed progress of it.
    first_chunk: Option<Duration>,
    chunks: u64,
    /// Kafka transactions meanwhile: (count, mean seconds).
    commits: (f64, f64),
    cpu: CpuUse,
    verified: Result<(), String>,
}

impl Phase {
    fn rate(&self) -> f64 {
        self.rows as f64 / self.took.as_secs_f64().max(1e-9)
    }
}

/// What one incremental run measured.
#[derive(Debug)]
struct Figures {
    rows: u64,
    chunk: u64,
    client: Duration,
    reads: Reads,
    alone: Phase,
    loaded: Phase,
    baseline: Percentiles,
    during: Percentiles,
    /// Changes/s the writer achieved in the baseline window and during the snapshot.
    rates: (f64, f64),
    /// Writer changes with no readable record noted.
    unseen: usize,
    start_rss_kb: u64,
    alone_rss_kb: u64,
    peak_rss_kb: u64,
    exit_code: Option<i32>,
}

impl Figures {
    fn extra_p99_ms(&self) -> f64 {
        (self.during.p99 - self.baseline.p99) as f64 / 1000.0
    }

    fn passes(&self) -> bool {
        self.alone.verified.is_ok() && self.loaded.verified.is_ok() && self.peak_rss_kb <= RSS_LIMIT_KB
    }
}

/// Runs the incremental workload in `format`; whether it met its limits.
pub async fn run(cli: &Cli, stack: &Stack, binary: &Path, root: &Path, format: &str, n: u32) -> anyhow::Result<bool> {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let tag = format!("bench_incremental_{format}_{secs}");
    let rows = cli.rows.unwrap_or_else(|| Workload::Incremental.default_rows());
    if rows < 30 * cli.rate {
        // The writer updates ids 1, 2, … once each: they must stay within the table.
        bail!("the incremental workload needs --rows of at least 30 × --rate ({})", 30 * cli.rate);
    }
    let spec = crate::run_spec(cli, binary, root, &tag, &tag, format, n)?;
    let chunk = spec
        .source_keys
        .iter()
        .find(|(k, _)| k == "incremental.snapshot.chunk.size")
        .map_or(Ok(DEFAULT_CHUNK), |(_, v)| v.parse().context("incremental.snapshot.chunk.size"))?;
    println!(
        "\n== incremental {format}: {} at {} changes/s, chunks of {chunk} rows (database and topic prefix {tag})",
        Workload::Incremental.describe(rows),
        cli.rate
    );
    workload::create_database(stack, &tag).await?;
    let began = Instant::now();
    let mut conn = Conn::new(stack.root_opts(Some(&tag))).await?;
    conn.query_drop("ALTER TABLE orders ADD COLUMN committed_at DATETIME(6) NULL").await?;
    workload::insert_orders(&mut conn, rows).await?;
    conn.disconnect().await?;
    println!("   prepared in {:.1} s (not timed)", began.elapsed().as_secs_f64());
    let client = snapshot_bench::time_select(stack, &tag)?;
    let reads = chunked_reads(stack, &tag, chunk).await?;
    let measured = measure(cli, stack, &spec, rows).await;
    if !cli.keep {
        snapshot_bench::drop_run(stack, &spec).await?;
    }
    let mut f = measured?;
    f.rows = rows;
    f.chunk = chunk;
    f.client = client;
    f.reads = reads;
    report(&f);
    record(root, &tag, format, &f, cli)?;
    Ok(f.passes())
}

/// The chunk reader's statements alone, over the whole table: per chunk a read view with its
/// binlog position and GTID position, the table's schema, the next `chunk` rows by key, `COMMIT`.
async fn chunked_reads(stack: &Stack, db: &str, chunk: u64) -> anyhow::Result<Reads> {
    let mut conn = Conn::new(stack.root_opts(Some(db))).await?;
    let sql = format!("SELECT * FROM orders WHERE id > ? ORDER BY id LIMIT {chunk}");
    let started = Instant::now();
    let (mut last, mut chunks) = (0i64, 0u64);
    loop {
        conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY").await?;
        let _: Vec<(String, String)> = conn.query("SHOW STATUS LIKE 'binlog_snapshot_%'").await?;
        let _: Option<String> = conn.query_first("SELECT @@gtid_binlog_pos").await?;
        let _: Vec<mysql_async::Row> = conn.query("SHOW MASTER STATUS").await?;
        let _: cdc_schema::TableSchema = cdc_schema::TableSchema::load(&mut conn, db, "orders").await?;
        let rows: Vec<mysql_async::Row> = conn.exec(sql.as_str(), (last,)).await?;
        conn.query_drop("COMMIT").await?;
        chunks += 1;
        last = rows.last().and_then(|r| r.get(0)).unwrap_or(last);
        if (rows.len() as u64) < chunk {
            break;
        }
    }
    let took = started.elapsed();
    conn.disconnect().await?;
    Ok(Reads { took, chunks })
}

/// The chunk reader's statements timed alone.
#[derive(Debug, Default)]
struct Reads {
    took: Duration,
    chunks: u64,
}

/// Starts the source, runs both snapshots, stops it.
async fn measure(cli: &Cli, stack: &Stack, spec: &RunSpec, rows: u64) -> anyhow::Result<Figures> {
    std::fs::create_dir_all(&spec.dir)?;
    let stop = Arc::new(AtomicBool::new(false));
    let offsets = kafka::follow_offsets(&stack.kafka(), &spec.offsets_topic(), &spec.tag, stop.clone()).await?;
    let mut service = crate::source::start(stack, spec)?;
    let perf = if spec.perf { Some(process::start_perf(service.pid, &spec.dir)?) } else { None };
    let result = phases(cli, stack, spec, &mut service, &offsets, rows).await;
    stop.store(true, Ordering::Relaxed);
    let (peak_rss_kb, tail, exit_code) = service.finish(&spec.dir, perf);
    let mut f = result.map_err(|e| e.context(tail))?;
    f.peak_rss_kb = peak_rss_kb;
    f.exit_code = exit_code;
    Ok(f)
}

fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

/// Kafka transactions and chunks so far, from `/metrics`: (commits, commit seconds, chunks).
fn counters(service: &Service) -> (f64, f64, f64) {
    let text = process::http_get(service.http_port, "/metrics").unwrap_or_default();
    let (n, sum) = process::histogram(&text, "cdc_source_kafka_transaction_duration_seconds").unwrap_or_default();
    (n, sum, process::series_sum(&text, "cdc_source_snapshot_chunks_total").unwrap_or(0.0))
}

/// Both snapshots, the source streaming.
async fn phases(
    cli: &Cli,
    stack: &Stack,
    spec: &RunSpec,
    service: &mut Service,
    offsets: &mpsc::Receiver<(Instant, OffsetRecord)>,
    rows: u64,
) -> anyhow::Result<Figures> {
    service.wait_state("streaming", spec.timeout).await?;
    let start_rss_kb = service.status_kb("VmRSS");
    let meter = CpuMeter::new(&[("cdc-source", service.pid)], &spec.stack_home);
    let topic = format!("{}orders", spec.prefix());

    let mut alone = snapshot(spec, service, offsets, &meter, "bench-alone").await?;
    alone.rows = rows;
    alone.verified = snapshot_bench::verify(stack, &topic, rows);
    let alone_rss_kb = service.status_kb("VmHWM");
    println!(
        "   alone: {rows} rows in {:.2} s -> {:.0} rows/s",
        alone.took.as_secs_f64(),
        alone.rate()
    );

    // Under the writer: from here on the topic is checked again.
    let from = kafka::end_offsets(&stack.kafka(), &topic)?;
    let stop_follow = Arc::new(AtomicBool::new(false));
    let follower = kafka::follow_arrivals(&stack.kafka(), &topic, &["c", "u"], stop_follow.clone())?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stop_writers = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let most = cli.rate * (spec.timeout.as_secs() + 60);
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let opts = stack.root_opts(Some(&spec.database));
            tokio::spawn(paced_writer(opts, w, most, cli.rate, rows, t0, stop_writers.clone()))
        })
        .collect();
    let loaded = async {
        tokio::time::sleep(WARMUP).await;
        let baseline_from = now_us();
        while t0.elapsed() < WARMUP + BASELINE {
            service.alive()?;
            if writers.iter().any(|w| w.is_finished()) {
                bail!("a writer stopped early");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let signal_at = now_us();
        let phase = snapshot(spec, service, offsets, &meter, "bench-loaded").await?;
        anyhow::Ok((baseline_from, signal_at, now_us(), phase))
    }
    .await;
    stop_writers.store(true, Ordering::Relaxed);
    let mut written = 0;
    for w in writers {
        written += w.await.context("writer")??;
    }
    let (baseline_from, signal_at, ended_at, mut loaded) = loaded?;

    // The writer's last change committed, then what it wrote and when.
    let mut conn = Conn::new(stack.root_opts(Some(&spec.database))).await?;
    conn.query_drop("SET time_zone = '+00:00'").await?;
    let end = workload::point(&mut conn).await?;
    let deadline = Instant::now() + CATCH_UP;
    while !offsets.try_iter().any(|(_, r)| kafka::reached(&r.position.gtid, &end.gtid)) {
        service.alive()?;
        if Instant::now() > deadline {
            eprintln!("   (the writer's last change was not committed within {CATCH_UP:?})");
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop_follow.store(true, Ordering::Relaxed);
    let arrivals = follower.join().map_err(|_| anyhow::anyhow!("the topic follower panicked"))?;
    let changed: Vec<(i64, i64)> = conn
        .query("SELECT id, CAST(UNIX_TIMESTAMP(committed_at) * 1000000 AS SIGNED) FROM orders WHERE committed_at IS NOT NULL")
        .await?;
    let max_id: Option<u64> = conn.query_first("SELECT MAX(id) FROM orders").await?;
    conn.disconnect().await?;

    let (mut baseline, mut during, mut unseen) = (Vec::new(), Vec::new(), 0);
    let (mut in_baseline, mut in_during) = (0u64, 0u64);
    for (id, at) in &changed {
        let op = if *id as u64 > rows { "c" } else { "u" };
        let window = if (baseline_from..signal_at).contains(at) {
            in_baseline += 1;
            Some(&mut baseline)
        } else if (signal_at..=ended_at).contains(at) {
            in_during += 1;
            Some(&mut during)
        } else {
            None
        };
        match arrivals.get(&(*id, op.to_string())) {
            Some(a) => window.into_iter().for_each(|w| w.push(a.readable_us - at)),
            None => unseen += 1,
        }
    }
    let secs = |from: i64, to: i64| (to - from) as f64 / 1e6;
    let rates = (
        in_baseline as f64 / secs(baseline_from, signal_at),
        in_during as f64 / secs(signal_at, ended_at).max(1e-9),
    );
    let updated: HashSet<u64> = changed.iter().map(|(id, _)| *id as u64).filter(|id| *id <= rows).collect();
    let max_id = max_id.unwrap_or(rows).max(rows);
    let checked = check_loaded(stack, &topic, rows, max_id, &from, &updated, written);
    if let Ok(read) = &checked {
        loaded.rows = *read;
    }
    loaded.verified = checked.map(|_| ());
    Ok(Figures {
        rows,
        chunk: 0,
        client: Duration::ZERO,
        reads: Reads::default(),
        alone,
        loaded,
        baseline: Percentiles::of(baseline),
        during: Percentiles::of(during),
        rates,
        unseen,
        start_rss_kb,
        alone_rss_kb,
        peak_rss_kb: 0,
        exit_code: None,
    })
}

/// The topic from `from` on, after the snapshot under the writer: every writer change once (`c`
/// or `u`), no id read twice, and every id `1..=rows` read unless the writer updated it (its
/// update then won over the chunk's copy). Returns the rows read.
fn check_loaded(
    stack: &Stack,
    topic: &str,
    rows: u64,
    max_id: u64,
    from: &[(i32, i64)],
    updated: &HashSet<u64>,
    written: u64,
) -> Result<u64, String> {
    let (seen, other) = snapshot_bench::count_reads(&stack.kafka(), topic, max_id, from).map_err(|e| e.to_string())?;
    let twice = seen.iter().filter(|n| **n > 1).count();
    let missing = (1..=rows).filter(|id| seen[*id as usize] == 0 && !updated.contains(id)).count();
    let read = seen.iter().map(|n| u64::from(*n)).sum();
    if twice == 0 && missing == 0 && other == written {
        Ok(read)
    } else {
        Err(format!(
            "{topic}: {missing} ids neither read nor changed, {twice} ids read more than once, {other} change records for {written} changes written"
        ))
    }
}

/// Posts an `execute-snapshot` signal `id` for `orders` and waits until the source has committed
/// the snapshot's end.
async fn snapshot(
    spec: &RunSpec,
    service: &mut Service,
    offsets: &mpsc::Receiver<(Instant, OffsetRecord)>,
    meter: &CpuMeter,
    id: &str,
) -> anyhow::Result<Phase> {
    let body = serde_json::json!({
        "id": id,
        "type": "execute-snapshot",
        "data": {"data-collections": [format!("{}.orders", spec.database)], "type": "incremental"},
    })
    .to_string();
    let (counters0, cpu0) = (counters(service), meter.snapshot());
    let port = service.http_port;
    let posted = Instant::now();
    let answer =
        tokio::task::spawn_blocking(move || process::http_post(port, "/signals", &body, Duration::from_secs(30))).await?;
    match answer {
        Some((200, _)) => {}
        Some((code, text)) => bail!("POST /signals answered {code}: {text}"),
        None => bail!("POST /signals: no answer"),
    }
    // The snapshot ends with the first committed record without it, after one with it or after
    // `/status` stopped listing it (a snapshot of one commit is never seen in progress).
    let (mut seen, mut first_chunk, mut unlisted) = (false, None, None::<Instant>);
    let took = loop {
        service.alive()?;
        if posted.elapsed() > spec.timeout {
            bail!("incremental snapshot {id} did not end within {:?}", spec.timeout);
        }
        let ended = offsets.try_iter().find_map(|(at, r)| match r.incremental.snapshots.iter().find(|s| s.id == id) {
            Some(s) => {
                seen = true;
                if s.chunks > 0 && first_chunk.is_none() {
                    first_chunk = Some(at - posted);
                }
                None
            }
            None if seen || unlisted.is_some_and(|t| at > t) => Some(at - posted),
            None => None,
        });
        if let Some(took) = ended {
            break took;
        }
        if unlisted.is_none() {
            if let Some(doc) = service.status() {
                if doc["state"] == "failed" {
                    bail!("cdc-source failed: {}", doc["last_error"]);
                }
                let listed = doc["incremental_snapshots"].as_array().is_some_and(|l| l.iter().any(|s| s["id"] == id));
                if !listed {
                    unlisted = Some(Instant::now());
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let cpu = CpuUse::between(&cpu0, &meter.snapshot());
    let counters1 = counters(service);
    let commits = counters1.0 - counters0.0;
    Ok(Phase {
        rows: 0,
        took,
        first_chunk,
        chunks: (counters1.2 - counters0.2) as u64,
        commits: (commits, (counters1.1 - counters0.1) / commits.max(1.0)),
        cpu,
        verified: Ok(()),
    })
}

fn describe(name: &str, p: &Phase) {
    println!(
        "   {name}: {} rows in {:.2} s -> {:.0} rows/s; {} chunks, {:.1} ms each; first chunk committed after {:.0} ms",
        p.rows,
        p.took.as_secs_f64(),
        p.rate(),
        p.chunks,
        p.took.as_secs_f64() * 1000.0 / p.chunks.max(1) as f64,
        p.first_chunk.map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    );
    println!(
        "     Kafka transactions: {:.0} × mean {:.1} ms; CPU: {}",
        p.commits.0,
        p.commits.1 * 1000.0,
        p.cpu.describe()
    );
    match &p.verified {
        Ok(()) => println!("     records: checked"),
        Err(e) => println!("     records: MISSED: {e}"),
    }
}

fn report(f: &Figures) {
    let rows = f.rows as f64;
    let r = &f.reads;
    let per_chunk = |d: Duration| d.as_secs_f64() * 1000.0 / r.chunks.max(1) as f64;
    println!(
        "   floors: mariadb --quick SELECT {:.2} s -> {:.0} rows/s; the reader's statements alone, {} chunks: {:.2} s -> {:.0} rows/s ({:.1} ms per chunk)",
        f.client.as_secs_f64(),
        rows / f.client.as_secs_f64(),
        r.chunks,
        r.took.as_secs_f64(),
        rows / r.took.as_secs_f64(),
        per_chunk(r.took),
    );
    describe("incremental snapshot alone", &f.alone);
    describe("incremental snapshot under the writer", &f.loaded);
    println!(
        "   writer (achieved {:.0} changes/s before, {:.0} during), commit -> readable in Kafka:",
        f.rates.0, f.rates.1
    );
    println!("     {} s before the signal: {}", BASELINE.as_secs(), f.baseline.describe());
    println!("     during the snapshot:   {}", f.during.describe());
    println!(
        "     extra p99: {:+.1} ms (p50 {:+.1} ms){}",
        f.extra_p99_ms(),
        (f.during.p50 - f.baseline.p50) as f64 / 1000.0,
        if f.unseen > 0 { format!("; {} changes never seen readable", f.unseen) } else { String::new() }
    );
    println!(
        "   peak RSS (VmHWM): {:.1} MiB (limit {} MiB: {}); after the snapshot alone {:.1} MiB; when streaming began {:.1} MiB; exit code {:?}",
        mib(f.peak_rss_kb),
        RSS_LIMIT_KB / 1024,
        verdict(f.peak_rss_kb <= RSS_LIMIT_KB),
        mib(f.alone_rss_kb),
        mib(f.start_rss_kb),
        f.exit_code
    );
}

/// Appends the run's figures to `target/cdc-bench/results.jsonl`.
fn record(root: &Path, tag: &str, format: &str, f: &Figures, cli: &Cli) -> anyhow::Result<()> {
    let phase = |p: &Phase| {
        serde_json::json!({
            "rows": p.rows,
            "seconds": p.took.as_secs_f64(),
            "rows_per_s": p.rate(),
            "chunks": p.chunks,
            "first_chunk_s": p.first_chunk.map(|d| d.as_secs_f64()),
            "kafka_commits": p.commits.0,
            "kafka_commit_mean_s": p.commits.1,
            "cpu_s": p.cpu.processes.iter().map(|(n, s)| (n.clone(), serde_json::json!(s))).collect::<serde_json::Map<_, _>>(),
            "machine_busy": p.cpu.machine_busy,
            "verified": p.verified.is_ok(),
        })
    };
    let lat = |x: &Percentiles| serde_json::json!({"n": x.n, "p50_us": x.p50, "p99_us": x.p99, "max_us": x.max, "mean_us": x.mean});
    let fields = serde_json::json!({
        "rows": f.rows,
        "chunk_size": f.chunk,
        "rate": cli.rate,
        "mariadb_select_s": f.client.as_secs_f64(),
        "chunked_reads_s": f.reads.took.as_secs_f64(),
        "alone": phase(&f.alone),
        "loaded": phase(&f.loaded),
        "achieved_rate": [f.rates.0, f.rates.1],
        "latency_baseline": lat(&f.baseline),
        "latency_during": lat(&f.during),
        "extra_p99_ms": f.extra_p99_ms(),
        "unseen": f.unseen,
        "peak_rss_kb": f.peak_rss_kb,
        "alone_rss_kb": f.alone_rss_kb,
        "start_rss_kb": f.start_rss_kb,
        "set": cli.set,
        "kafka": cli.kafka,
    });
    crate::append_result(root, "incremental", tag, format, fields)
}
