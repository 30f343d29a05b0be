//! The snapshot workload: how fast the source copies an existing table, against the `mariadb`
//! client reading the same rows.
//!
//! In a fresh database (name = topic prefix = source name, as the other workloads):
//! 1. `orders` (DDL of `sql/01-databases.sql`) gets `--rows` rows (default 1,000,000), inserted
//!    as in W1; not timed.
//! 2. `mariadb --quick -e "SELECT * FROM orders" > /dev/null` is timed (the whole client run,
//!    connection included).
//! 3. The source starts with no stored position and `snapshot.mode = "initial"`; it is timed from
//!    the spawn until a `read_committed` reader of its offsets topic sees the record that ends
//!    the snapshot (the position without snapshot progress, committed after the last chunk): at
//!    that moment every snapshot record is committed. Its peak RSS is `VmHWM` read then.
//! 4. The client read is timed once more (its time is the mean of both reads).
//! 5. The orders topic is read to its end (`read_committed`): every id must be there exactly
//!    once, as `cdc.op=r`, and nothing else.
//!
//! Limits: snapshot time (from the spawn) ÷ client time ≤ 2; peak RSS ≤ 64 MiB.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use cdc_source::offsets::OffsetRecord;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::cpu::{CpuMeter, CpuUse};
use crate::process::{self, Service};
use cdc_testkit::Stack;
use crate::workload::{self, Workload};
use crate::{kafka, mib, source, verdict, Cli, RATIO_LIMIT, RSS_LIMIT_KB};

/// What one snapshot run measured.
#[derive(Debug)]
struct Figures {
    rows: u64,
    /// Spawn until `/status` says `snapshot` (preflight, fencing, offsets read).
    startup: Duration,
    /// Spawn until the snapshot's end is committed.
    total: Duration,
    client: [Duration; 2],
    peak_rss_kb: u64,
    cpu: CpuUse,
    verified: Result<(), String>,
}

impl Figures {
    fn client(&self) -> f64 {
        (self.client[0] + self.client[1]).as_secs_f64() / 2.0
    }

    fn ratio(&self) -> f64 {
        self.total.as_secs_f64() / self.client()
    }

    fn passes(&self) -> bool {
        self.verified.is_ok() && self.peak_rss_kb <= RSS_LIMIT_KB && self.ratio() <= RATIO_LIMIT
    }
}

/// Runs the snapshot workload in `format`; whether it met its limits.
pub async fn run(cli: &Cli, stack: &Stack, binary: &Path, root: &Path, format: &str, n: u32) -> anyhow::Result<bool> {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let tag = format!("bench_snapshot_{format}_{secs}");
    let rows = cli.rows.unwrap_or_else(|| Workload::Snapshot.default_rows());
    println!("\n== snapshot {format}: {} (database and topic prefix {tag})", Workload::Snapshot.describe(rows));
    let mut spec = crate::run_spec(cli, binary, root, &tag, &tag, format, n)?;
    spec.snapshot_mode = "initial";
    workload::create_database(stack, &tag).await?;
    let began = Instant::now();
    let mut conn = mysql_async::Conn::new(stack.root_opts(Some(&tag))).await?;
    workload::insert_orders(&mut conn, rows).await?;
    conn.disconnect().await?;
    println!("   prepared in {:.1} s (not timed)", began.elapsed().as_secs_f64());

    let client0 = time_select(stack, &tag)?;
    let measured = measure(stack, &spec).await;
    let client1 = time_select(stack, &tag)?;
    let (startup, total, peak_rss_kb, cpu) = measured?;
    let verified = verify(stack, &format!("{}orders", spec.prefix()), rows);
    if !cli.keep {
        drop_run(stack, &spec).await?;
    }
    let f = Figures { rows, startup, total, client: [client0, client1], peak_rss_kb, cpu, verified };
    report(&f);
    record(root, &tag, format, &f, cli)?;
    Ok(f.passes())
}

/// Deletes the run's topics (orders, users, offsets) and drops its database.
pub(crate) async fn drop_run(stack: &Stack, spec: &source::RunSpec) -> anyhow::Result<()> {
    let topics: Vec<String> =
        vec![format!("{}orders", spec.prefix()), format!("{}users", spec.prefix()), spec.offsets_topic()];
    if let Err(e) = kafka::delete_topics(&stack.kafka(), &topics).await {
        eprintln!("   (could not delete the run's topics: {e})");
    }
    workload::drop_database(stack, &spec.database).await
}

/// `mariadb --quick -e "SELECT * FROM orders" > /dev/null` in `db`: its wall time.
pub(crate) fn time_select(stack: &Stack, db: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let out = Command::new("mariadb")
        .arg(format!("--host={}", stack.mariadb_host))
        .arg(format!("--port={}", stack.mariadb_port))
        .arg(format!("--user={}", stack.root_user))
        .arg(format!("--password={}", stack.root_password))
        .args(["--protocol=TCP", "--quick", "-e", "SELECT * FROM orders", db])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .context("run mariadb (Debian package mariadb-client)")?;
    let took = started.elapsed();
    if !out.status.success() {
        bail!("mariadb -e 'SELECT * FROM orders' failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(took)
}

/// Starts the source, waits until its snapshot's end is committed, stops it; returns
/// (start-up, total, peak RSS, CPU from the spawn to the end).
async fn measure(stack: &Stack, spec: &source::RunSpec) -> anyhow::Result<(Duration, Duration, u64, CpuUse)> {
    std::fs::create_dir_all(&spec.dir)?;
    let stop_watch = Arc::new(AtomicBool::new(false));
    let done = kafka::follow_offsets(&stack.kafka(), &spec.offsets_topic(), &spec.tag, stop_watch.clone()).await?;
    let spawned = Instant::now();
    let mut service = source::start(stack, spec)?;
    let perf = if spec.perf { Some(process::start_perf(service.pid, &spec.dir)?) } else { None };
    let meter = CpuMeter::new(&[("cdc-source", service.pid)], &spec.stack_home);
    let cpu_start = meter.snapshot();
    let result = wait(spec, &mut service, spawned, &done).await;
    let cpu = CpuUse::between(&cpu_start, &meter.snapshot());
    stop_watch.store(true, Ordering::Relaxed);
    let (peak_rss_kb, tail, _) = service.finish(&spec.dir, perf);
    let (startup, total) = result.map_err(|e| e.context(tail))?;
    Ok((startup, total, peak_rss_kb, cpu))
}

/// Polls the source until the snapshot's end is committed; (start-up, total).
async fn wait(
    spec: &source::RunSpec,
    service: &mut Service,
    spawned: Instant,
    done: &mpsc::Receiver<(Instant, OffsetRecord)>,
) -> anyhow::Result<(Duration, Duration)> {
    let mut startup = None;
    loop {
        service.alive()?;
        if spawned.elapsed() > spec.timeout {
            bail!("the snapshot was not committed within {:?}", spec.timeout);
        }
        // The first committed record without snapshot progress ends the snapshot.
        if let Some((at, _)) = done.try_iter().find(|(_, r)| r.snapshot.is_none()) {
            let total = at - spawned;
            return Ok((startup.unwrap_or(total), total));
        }
        if startup.is_none() {
            if let Some(doc) = service.status() {
                match doc["state"].as_str() {
                    Some("snapshot" | "streaming") => startup = Some(spawned.elapsed()),
                    Some("failed") => bail!("cdc-source failed: {}", doc["last_error"]),
                    _ => {}
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(if startup.is_none() { 10 } else { 50 })).await;
    }
}

fn client(kafka: &BTreeMap<String, String>, group: String) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    for (k, v) in kafka {
        cfg.set(k, v);
    }
    cfg.set("group.id", group).set("enable.auto.commit", "false").set("isolation.level", "read_committed");
    cfg
}

/// Every id `1..=rows` is on `topic` exactly once as `cdc.op=r`, and nothing else is.
pub(crate) fn verify(stack: &Stack, topic: &str, rows: u64) -> Result<(), String> {
    count_reads(&stack.kafka(), topic, rows, &[]).map_err(|e| e.to_string()).and_then(|(seen, other)| {
        let missing = seen.iter().skip(1).filter(|n| **n == 0).count();
        let twice = seen.iter().filter(|n| **n > 1).count();
        if missing == 0 && twice == 0 && other == 0 {
            Ok(())
        } else {
            Err(format!("{topic}: {missing} ids missing, {twice} ids more than once, {other} other records"))
        }
    })
}

/// Reads `topic` to its end, from the offsets `from` (partition, offset; a partition not named
/// from its start): times each id `1..=rows` was read as `r`, and other records.
pub(crate) fn count_reads(
    kafka: &BTreeMap<String, String>,
    topic: &str,
    rows: u64,
    from: &[(i32, i64)],
) -> anyhow::Result<(Vec<u8>, u64)> {
    let consumer: BaseConsumer =
        client(kafka, format!("cdc-bench-count-{topic}")).set("enable.partition.eof", "true").create()?;
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let partitions: Vec<i32> =
        md.topics().iter().filter(|t| t.error().is_none()).flat_map(|t| t.partitions().iter().map(|p| p.id())).collect();
    let mut tpl = TopicPartitionList::new();
    for p in &partitions {
        let start = from.iter().find(|(q, _)| q == p).map_or(Offset::Beginning, |(_, o)| Offset::Offset(*o));
        tpl.add_partition_offset(topic, *p, start)?;
    }
    consumer.assign(&tpl)?;
    let mut seen = vec![0u8; rows as usize + 1];
    let mut other = 0u64;
    let mut open = partitions.len();
    let deadline = Instant::now() + Duration::from_secs(300);
    while open > 0 {
        if Instant::now() > deadline {
            bail!("reading {topic} took over 300 s");
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(_))) => open -= 1,
            Some(Err(e)) => bail!("reading {topic}: {e}"),
            Some(Ok(m)) => {
                let read = m
                    .headers()
                    .and_then(|h| h.iter().find(|h| h.key == "cdc.op").and_then(|h| h.value))
                    .is_some_and(|v| v == b"r");
                match m.key().and_then(kafka::key_id) {
                    Some(id) if read && id >= 1 && id as u64 <= rows => {
                        let n = &mut seen[id as usize];
                        *n = n.saturating_add(1);
                    }
                    _ => other += 1,
                }
            }
        }
    }
    Ok((seen, other))
}

fn report(f: &Figures) {
    let rows = f.rows as f64;
    let snapshot = f.total.saturating_sub(f.startup);
    println!(
        "   cdc-source:     {:.2} s from the spawn -> {:.0} rows/s (start-up {:.2} s; snapshot alone {:.2} s -> {:.0} rows/s)",
        f.total.as_secs_f64(),
        rows / f.total.as_secs_f64(),
        f.startup.as_secs_f64(),
        snapshot.as_secs_f64(),
        rows / snapshot.as_secs_f64().max(1e-9)
    );
    println!("   CPU from the spawn to the end: {}", f.cpu.describe());
    println!(
        "   mariadb --quick SELECT: {:.2} s and {:.2} s, mean {:.2} s -> {:.0} rows/s",
        f.client[0].as_secs_f64(),
        f.client[1].as_secs_f64(),
        f.client(),
        rows / f.client()
    );
    println!("   ratio ours/theirs: {:.2} (limit {RATIO_LIMIT}: {})", f.ratio(), verdict(f.ratio() <= RATIO_LIMIT));
    println!(
        "   peak RSS (VmHWM): {:.1} MiB (limit {} MiB: {})",
        mib(f.peak_rss_kb),
        RSS_LIMIT_KB / 1024,
        verdict(f.peak_rss_kb <= RSS_LIMIT_KB)
    );
    match &f.verified {
        Ok(()) => println!("   records: every row exactly once as r ({} rows)", f.rows),
        Err(e) => println!("   records: MISSED: {e}"),
    }
}

/// Appends the run's figures to `target/cdc-bench/results.jsonl`.
fn record(root: &Path, tag: &str, format: &str, f: &Figures, cli: &Cli) -> anyhow::Result<()> {
    let fields = serde_json::json!({
        "rows": f.rows,
        "startup_s": f.startup.as_secs_f64(),
        "total_s": f.total.as_secs_f64(),
        "mariadb_select_s": [f.client[0].as_secs_f64(), f.client[1].as_secs_f64()],
        "ratio": f.ratio(),
        "peak_rss_kb": f.peak_rss_kb,
        "cpu_s": f.cpu.processes.iter().map(|(n, s)| (n.clone(), serde_json::json!(s))).collect::<serde_json::Map<_, _>>(),
        "machine_busy": f.cpu.machine_busy,
        "verified": f.verified.is_ok(),
        "set": cli.set,
        "kafka": cli.kafka,
    });
    crate::append_result(root, "snapshot", tag, format, fields)
}
