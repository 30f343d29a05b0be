//! `cdc-bench --e2e`: latency from the source commit to the mirror commit, through the
//! release-built `cdc-source` and `jdbc-sink`, under a steady paced load on `orders`.
//!
//! **Method.** The run's copy of `orders` gets a column `committed_at DATETIME(6)`, which every
//! change sets to `NOW(6)` (autocommit, so the commit follows in the same statement). The sink
//! creates the mirror table itself (`auto.create`, from a first load of `--rate` rows); then the
//! bench adds to the mirror database a log table and two triggers (`AFTER INSERT`, `AFTER UPDATE`
//! on the mirror table) that log, for every row the sink writes, its `committed_at` and
//! `SYSDATE(6)`. Latency = `SYSDATE(6)` at the mirror − `committed_at`, one sample per row change.
//! Both timestamps come from the same MariaDB server clock (same time zone, UTC), with
//! microsecond resolution; no clock skew and no polling is involved.
//!
//! Caveats: `committed_at` is taken when the statement starts, before its commit (binlog write
//! and group commit), so the figure includes the source's own commit time; `SYSDATE(6)` is taken
//! when the sink's statement writes the row, before the sink's transaction commits (offsets row
//! and `COMMIT` follow), so the figure excludes that last step — the sink's mean batch duration is
//! printed to bound it. Changes of one key collapsed inside one sink batch leave one sample; the
//! load updates only rows inserted about two seconds earlier to make that rare.
//!
//! **Where the time goes.** A `read_committed` consumer in the bench follows the topic like the
//! sink does and notes for each record its Kafka timestamp (the source's produce time, ms
//! resolution) and when it became readable (the bench's clock, the same system clock as the
//! server's). Per sample this splits the latency into: commit → produced (binlog read, decoding,
//! encoding, the source's batching), produced → readable (the Kafka transaction commit and the
//! fetch), readable → mirror (the sink's fetch, batching and upsert).
//!
//! **Load.** `--rate` changes/s for `--seconds`, written by two connections on a 10 ms schedule:
//! one inserts new orders, the other updates (qty, total_price, committed_at) the order inserted
//! `--rate` inserts earlier. A writer that falls behind catches up; the achieved rate is printed.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use cdc_source::offsets::StoredOffset;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::cpu::{CpuMeter, CpuUse};
use crate::process::{describe_histogram, Service};
use crate::sink::SinkSpec;
use cdc_testkit::Stack;
use crate::{kafka, mib, source, verdict, workload, Cli};

/// p99 latency from source commit to mirror commit must stay below this at up to 2,000
/// changes/s, and below [`P99_LIMIT_HIGH`] above that (the targets at 2,000 and 10,000/s).
pub const P99_LIMIT: Duration = Duration::from_millis(50);
pub const P99_LIMIT_HIGH: Duration = Duration::from_millis(100);

/// The p99 limit for a load of `rate` changes/s.
pub fn p99_limit(rate: u64) -> Duration {
    if rate > 2000 {
        P99_LIMIT_HIGH
    } else {
        P99_LIMIT
    }
}
/// Writer connections (one inserting, one updating).
pub(crate) const WRITERS: u64 = 2;
/// Schedule step of the writers.
const TICK: Duration = Duration::from_millis(10);
/// The log table the mirror triggers fill.
const LOG_TABLE: &str = "bench_latency";

/// Latency percentiles of one series, µs.
#[derive(Debug, Clone, Default)]
pub(crate) struct Percentiles {
    pub n: usize,
    pub p50: i64,
    pub p99: i64,
    pub max: i64,
    pub mean: f64,
}

impl Percentiles {
    pub fn of(mut v: Vec<i64>) -> Percentiles {
        if v.is_empty() {
            return Percentiles::default();
        }
        v.sort_unstable();
        let at = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        Percentiles {
            n: v.len(),
            p50: at(0.50),
            p99: at(0.99),
            max: v[v.len() - 1],
            mean: v.iter().sum::<i64>() as f64 / v.len() as f64,
        }
    }

    pub fn describe(&self) -> String {
        format!(
            "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, mean {:.1} ms ({} samples)",
            self.p50 as f64 / 1000.0,
            self.p99 as f64 / 1000.0,
            self.max as f64 / 1000.0,
            self.mean / 1000.0,
            self.n
        )
    }
}

#[derive(Debug)]
struct LatencyOutcome {
    format: String,
    /// The p99 limit of the load asked for.
    limit: Duration,
    settings: String,
    changes: u64,
    achieved_rate: f64,
    total: Percentiles,
    to_produced: Percentiles,
    to_readable: Percentiles,
    to_mirror: Percentiles,
    source_rss_kb: u64,
    sink_rss_kb: u64,
    cpu: CpuUse,
    source_commits: String,
    sink_batches: String,
    sink_batch_duration: String,
    exit_codes: (Option<i32>, Option<i32>),
}

impl LatencyOutcome {
    fn passes(&self) -> bool {
        self.total.n > 0 && self.total.p99 < self.limit.as_micros() as i64
    }
}

pub async fn run(
    cli: &Cli,
    stack: &Stack,
    source_bin: &Path,
    sink_bin: &Path,
    root: &Path,
) -> anyhow::Result<bool> {
    let mut outcomes = Vec::new();
    for (n, format) in cli.format.iter().enumerate() {
        let o = one(cli, stack, source_bin, sink_bin, root, format, n as u32).await?;
        report(&o);
        record(root, &o, cli)?;
        outcomes.push(o);
    }
    println!("\n| format | settings | changes/s | p50 ms | p99 ms (< {}) | max ms | commit→produced p50/p99 | produced→readable p50/p99 | readable→mirror p50/p99 |", p99_limit(cli.rate).as_millis());
    println!("|---|---|---:|---:|---:|---:|---|---|---|");
    for o in &outcomes {
        let ms = |us: i64| us as f64 / 1000.0;
        println!(
            "| {} | {} | {:.0} | {:.1} | {:.1} ({}) | {:.1} | {:.0} / {:.0} | {:.0} / {:.0} | {:.0} / {:.0} |",
            o.format,
            o.settings,
            o.achieved_rate,
            ms(o.total.p50),
            ms(o.total.p99),
            verdict(o.passes()),
            ms(o.total.max),
            ms(o.to_produced.p50),
            ms(o.to_produced.p99),
            ms(o.to_readable.p50),
            ms(o.to_readable.p99),
            ms(o.to_mirror.p50),
            ms(o.to_mirror.p99),
        );
    }
    Ok(outcomes.iter().all(LatencyOutcome::passes))
}

/// The source and sink keys that decide latency, as this run uses them.
fn settings(cli: &Cli, sink: &SinkSpec) -> anyhow::Result<String> {
    let keys = source::parse_pairs(&cli.set)?;
    let get = |k: &str, default: &str| {
        keys.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| format!("{default} (default)"))
    };
    Ok(format!(
        "source batch.max.ms={}, batch.max.rows={}; sink {}",
        get("batch.max.ms", "20"),
        get("batch.max.rows", "5000"),
        sink.describe_keys()
    ))
}

async fn one(
    cli: &Cli,
    stack: &Stack,
    source_bin: &Path,
    sink_bin: &Path,
    root: &Path,
    format: &str,
    n: u32,
) -> anyhow::Result<LatencyOutcome> {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let tag = format!("bench_e2e_{format}_{secs}");
    let mirror = format!("{tag}_mirror");
    let rate = cli.rate;
    let changes = rate * cli.seconds;
    let spec = crate::run_spec(cli, source_bin, root, &tag, &tag, format, n)?;
    let topic = format!("{}orders", spec.prefix());
    let sink_spec = SinkSpec {
        name: tag.clone(),
        database: mirror.clone(),
        topics: vec![topic.clone()],
        http_port: cdc_testkit::free_port(),
        sink_keys: source::parse_pairs(&cli.sink_set)?,
        kafka_keys: source::parse_pairs(&cli.sink_kafka)?,
        binary: sink_bin.to_path_buf(),
        dir: spec.dir.clone(),
    };
    let settings = settings(cli, &sink_spec)?;
    println!(
        "\n== e2e {format}: {rate} changes/s into orders for {} s ({settings}; database and topic prefix {tag})",
        cli.seconds
    );
    workload::create_database(stack, &tag).await?;
    let mut conn = Conn::new(stack.root_opts(Some(&tag))).await?;
    conn.query_drop("ALTER TABLE orders ADD COLUMN committed_at DATETIME(6) NULL")
        .await?;
    conn.query_drop(format!("CREATE DATABASE `{mirror}` CHARACTER SET utf8mb4"))
        .await?;
    let at = workload::point(&mut conn).await?;
    let start = StoredOffset {
        gtid: at.gtid.clone(),
        binlog: cdc_source::position::FilePos {
            file: at.file.clone(),
            pos: at.pos,
        },
        ts_ms: 0,
    };
    kafka::seed_offset(&stack.kafka(), &spec.offsets_topic(), &tag, &start).await?;
    let timeout = Duration::from_secs(cli.timeout_s);
    let mut src = source::start(stack, &spec)?;
    let mut sink = sink_spec.start(stack)?;
    let result = measure(
        stack, &spec, &tag, &mirror, &topic, &mut src, &mut sink, timeout, changes, rate,
    )
    .await;
    let source_metrics = src.save_metrics(&spec.dir);
    let sink_metrics = sink.save_metrics(&spec.dir);
    let (source_rss_kb, sink_rss_kb) = (src.status_kb("VmHWM"), sink.status_kb("VmHWM"));
    let tails = format!("{}\n{}", src.log_tail(), sink.log_tail());
    let exit_codes = (
        src.stop(Duration::from_secs(30)),
        sink.stop(Duration::from_secs(30)),
    );
    let (samples, arrivals, achieved_rate, cpu) = result.map_err(|e| e.context(tails))?;
    let mut total = Vec::new();
    let (mut to_produced, mut to_readable, mut to_mirror) = (Vec::new(), Vec::new(), Vec::new());
    for (id, op, source_us, mirror_us) in &samples {
        total.push(mirror_us - source_us);
        if let Some(a) = arrivals.get(&(*id, op.clone())) {
            to_produced.push(a.produced_ms * 1000 - source_us);
            to_readable.push(a.readable_us - a.produced_ms * 1000);
            to_mirror.push(mirror_us - a.readable_us);
        }
    }
    if !cli.keep {
        let topics = vec![topic, spec.offsets_topic()];
        if let Err(e) = kafka::delete_topics(&stack.kafka(), &topics).await {
            eprintln!("   (could not delete the run's topics: {e})");
        }
        workload::drop_database(stack, &mirror).await?;
        workload::drop_database(stack, &tag).await?;
    }
    Ok(LatencyOutcome {
        format: format.to_string(),
        limit: p99_limit(cli.rate),
        settings,
        changes,
        achieved_rate,
        total: Percentiles::of(total),
        to_produced: Percentiles::of(to_produced),
        to_readable: Percentiles::of(to_readable),
        to_mirror: Percentiles::of(to_mirror),
        source_rss_kb,
        sink_rss_kb,
        cpu,
        source_commits: describe_histogram(
            source_metrics.as_deref(),
            "cdc_source_kafka_transaction_duration_seconds",
            true,
        ),
        sink_batches: describe_histogram(sink_metrics.as_deref(), "cdc_sink_batch_records", false),
        sink_batch_duration: describe_histogram(
            sink_metrics.as_deref(),
            "cdc_sink_batch_duration_seconds",
            true,
        ),
        exit_codes,
    })
}

/// (id, op, source µs, mirror µs) per logged row change.
type Samples = Vec<(i64, String, i64, i64)>;

/// From both services running to the samples: first load, triggers, the paced load, catching up.
#[allow(clippy::too_many_arguments)]
async fn measure(
    stack: &Stack,
    spec: &source::RunSpec,
    tag: &str,
    mirror: &str,
    topic: &str,
    src: &mut Service,
    sink: &mut Service,
    timeout: Duration,
    changes: u64,
    rate: u64,
) -> anyhow::Result<(
    Samples,
    BTreeMap<(i64, String), kafka::Arrival>,
    f64,
    CpuUse,
)> {
    src.wait_state("streaming", timeout).await?;
    sink.wait_state("running", timeout).await?;
    // First load: `rate` rows, which the updates of the paced load start with; the sink creates
    // the mirror table from them.
    let mut conn = Conn::new(stack.root_opts(Some(tag))).await?;
    conn.query_drop("SET time_zone = '+00:00'").await?;
    let first: Vec<String> = (1..=rate).map(insert_values).collect();
    conn.query_drop(format!("{} {}", INSERT_HEAD, first.join(",")))
        .await?;
    let mut mconn = Conn::new(stack.root_opts(Some(mirror))).await?;
    mconn.query_drop("SET time_zone = '+00:00'").await?;
    wait_for(
        &mut mconn,
        &format!("SELECT COUNT(*) >= {rate} FROM `{topic}`"),
        timeout,
        &mut [src, sink],
    )
    .await
    .context("the first load did not reach the mirror")?;
    mconn
        .query_drop(format!(
            "CREATE TABLE `{LOG_TABLE}` (id INT NOT NULL, op CHAR(1) NOT NULL, \
             source_at DATETIME(6), mirror_at DATETIME(6) NOT NULL)"
        ))
        .await?;
    for (event, op) in [("INSERT", "c"), ("UPDATE", "u")] {
        mconn
            .query_drop(format!(
                "CREATE TRIGGER `bench_after_{op}` AFTER {event} ON `{topic}` FOR EACH ROW \
                 INSERT INTO `{LOG_TABLE}` VALUES (NEW.id, '{op}', NEW.committed_at, SYSDATE(6))"
            ))
            .await?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let follower = kafka::follow_arrivals(&stack.kafka(), topic, &["c", "u"], stop.clone())?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let meter = CpuMeter::new(
        &[("cdc-source", src.pid), ("jdbc-sink", sink.pid)],
        &spec.stack_home,
    );
    let cpu0 = meter.snapshot();
    let t0 = Instant::now();
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let opts = stack.root_opts(Some(tag));
        let never = Arc::new(AtomicBool::new(false));
        writers.push(tokio::spawn(paced_writer(opts, w, changes, rate, rate, t0, never)));
    }
    for w in writers {
        w.await.context("writer")??;
    }
    let written = t0.elapsed();
    let cpu = CpuUse::between(&cpu0, &meter.snapshot());
    let probe = "SELECT COUNT(*), COALESCE(SUM(qty), 0), MAX(committed_at) FROM ";
    let want: Option<(u64, i64, Option<String>)> =
        conn.query_first(format!("{probe} orders")).await?;
    let want = want.context("empty probe")?;
    let deadline = Instant::now() + timeout;
    loop {
        src.alive()?;
        sink.alive()?;
        let got: Option<(u64, i64, Option<String>)> =
            mconn.query_first(format!("{probe} `{topic}`")).await?;
        if got.as_ref() == Some(&want) {
            break;
        }
        if Instant::now() > deadline {
            bail!("the mirror did not catch up within {timeout:?}: {got:?}, source {want:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let arrivals = follower
        .join()
        .map_err(|_| anyhow::anyhow!("the topic follower panicked"))?;
    let samples: Vec<(i64, String, i64, i64)> = mconn
        .query(format!(
            "SELECT id, op, CAST(UNIX_TIMESTAMP(source_at) * 1000000 AS SIGNED), \
             CAST(UNIX_TIMESTAMP(mirror_at) * 1000000 AS SIGNED) FROM `{LOG_TABLE}`"
        ))
        .await?;
    conn.disconnect().await?;
    mconn.disconnect().await?;
    Ok((
        samples,
        arrivals,
        changes as f64 / written.as_secs_f64(),
        cpu,
    ))
}

const INSERT_HEAD: &str = "INSERT INTO orders (id, product_id, qty, unit_price, total_price, \
                           user_id, order_id, committed_at) VALUES";

fn insert_values(id: u64) -> String {
    let (qty, price) = (1 + id % 9, 100 + id % 997);
    format!(
        "({id}, 'product-{:05}', {qty}, {price}, {}, 'user-{:07}', 'order-{id:010}', NOW(6))",
        id % 50_000,
        qty * price,
        id % 1_000_003
    )
}

/// Writer `w` of the paced load: change `k` (`k % WRITERS == w`) is due at `t0 + k / rate`;
/// every [`TICK`] the due changes are sent as one multi-statement query of autocommit
/// statements. Even changes insert order `base + k/2 + 1`, odd ones update order `k/2 + 1`.
/// Stops after `changes` or once `stop` is set; returns how many changes it wrote.
pub(crate) async fn paced_writer(
    opts: mysql_async::Opts,
    w: u64,
    changes: u64,
    rate: u64,
    base: u64,
    t0: Instant,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<u64> {
    let mut conn = Conn::new(opts).await?;
    conn.query_drop("SET time_zone = '+00:00'").await?;
    let mut k = w;
    let mut written = 0;
    while k < changes && !stop.load(Ordering::Relaxed) {
        let now = t0.elapsed();
        let due = ((now.as_secs_f64() * rate as f64) as u64 + 1).min(changes);
        let mut sql = String::new();
        while k < due {
            let j = k / 2 + 1;
            if k.is_multiple_of(2) {
                sql.push_str(&format!("{INSERT_HEAD} {};", insert_values(base + j)));
            } else {
                sql.push_str(&format!(
                    "UPDATE orders SET qty = qty + 1, total_price = total_price + unit_price, \
                     committed_at = NOW(6) WHERE id = {j};"
                ));
            }
            k += WRITERS;
            written += 1;
        }
        if !sql.is_empty() {
            conn.query_drop(sql).await?;
        }
        let next = now + TICK;
        if let Some(wait) = next.checked_sub(t0.elapsed()) {
            tokio::time::sleep(wait).await;
        }
    }
    conn.disconnect().await?;
    Ok(written)
}

/// Polls `query` (one boolean) until true, while the services are alive.
async fn wait_for(
    conn: &mut Conn,
    query: &str,
    timeout: Duration,
    services: &mut [&mut Service],
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        for s in services.iter_mut() {
            s.alive()?;
        }
        let ok: Option<Option<i64>> = conn.query_first(query).await.ok().flatten();
        if ok.flatten() == Some(1) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("`{query}` still false after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn report(o: &LatencyOutcome) {
    println!(
        "   load: {} changes at {:.0} changes/s achieved",
        o.changes, o.achieved_rate
    );
    println!(
        "   source commit -> mirror: {} (p99 limit {} ms: {})",
        o.total.describe(),
        o.limit.as_millis(),
        verdict(o.passes())
    );
    println!(
        "     commit -> produced (Kafka timestamp, ms resolution): {}",
        o.to_produced.describe()
    );
    println!(
        "     produced -> readable (read_committed):              {}",
        o.to_readable.describe()
    );
    println!(
        "     readable -> mirror row written:                      {}",
        o.to_mirror.describe()
    );
    println!(
        "   source Kafka transactions: {}; sink batches: {} records, {} each",
        o.source_commits, o.sink_batches, o.sink_batch_duration
    );
    println!(
        "   peak RSS: cdc-source {:.1} MiB, jdbc-sink {:.1} MiB; exit codes {:?}",
        mib(o.source_rss_kb),
        mib(o.sink_rss_kb),
        o.exit_codes
    );
    println!("   CPU during the load: {}", o.cpu.describe());
}

fn record(root: &Path, o: &LatencyOutcome, cli: &Cli) -> anyhow::Result<()> {
    let p = |x: &Percentiles| serde_json::json!({"n": x.n, "p50_us": x.p50, "p99_us": x.p99, "max_us": x.max, "mean_us": x.mean});
    let line = serde_json::json!({
        "at": SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        "workload": "e2e",
        "format": o.format,
        "changes": o.changes,
        "achieved_rate": o.achieved_rate,
        "latency": p(&o.total),
        "commit_to_produced": p(&o.to_produced),
        "produced_to_readable": p(&o.to_readable),
        "readable_to_mirror": p(&o.to_mirror),
        "source_peak_rss_kb": o.source_rss_kb,
        "sink_peak_rss_kb": o.sink_rss_kb,
        "cpu_s": o.cpu.processes.iter().map(|(n, s)| (n.clone(), serde_json::json!(s))).collect::<serde_json::Map<_, _>>(),
        "set": cli.set,
        "sink_set": cli.sink_set,
    });
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(root.join("target/cdc-bench/results.jsonl"))?;
    writeln!(f, "{line}")?;
    Ok(())
}
