//! `cdc-bench`: throughput and memory of the release-built `cdc-source` on the local stack,
//! printed against the limits of the source issue.
//!
//! For each workload (see [`workload`]) and record format, in a fresh database, topic prefix,
//! source name and server id:
//! 1. the workload is written to MariaDB while no source runs, in a fresh binlog file; its range
//!    (file:pos and GTID position at both ends) is noted;
//! 2. `mariadb-binlog --read-from-remote-server` reads the range to /dev/null (timed);
//! 3. the range's start is stored as the source's committed position, the source is started and
//!    timed until a `read_committed` consumer sees the range's end committed (see [`source`]);
//! 4. `mariadb-binlog` reads the range once more (its time is the mean of both reads);
//! 5. the committed records are counted by table and `cdc.op` and compared with the workload.
//!
//! Limits: ratio of our streaming time to `mariadb-binlog`'s time ≤ 2 on W1 and W2; peak RSS of the
//! source ≤ 64 MiB on every workload. Each run is bounded (`--timeout-s`) and stops by itself.

mod cpu;
mod e2e;
mod floor;
mod incremental_bench;
mod kafka;
mod process;
mod reference;
mod sink;
mod sink_bench;
mod snapshot_bench;
mod source;
mod upsert;
mod verify_bench;
mod workload;

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::bail;
use cdc_source::offsets::StoredOffset;
use cdc_source::position::FilePos;
use clap::Parser;

use crate::source::{RunSpec, SourceFigures};
use cdc_testkit::Stack;
use crate::workload::{Prepared, Workload};

/// Our time / mariadb-binlog's time must not exceed this on W1 and W2.
const RATIO_LIMIT: f64 = 2.0;
/// Peak RSS of the source, KiB.
const RSS_LIMIT_KB: u64 = 64 * 1024;

#[derive(Parser, Debug)]
#[command(
    name = "cdc-bench",
    about = "cdc-source throughput and memory against mariadb-binlog, on the local stack"
)]
struct Cli {
    /// Workloads to run (w1, w2, w3, snapshot, incremental); none means w1, w2 and w3.
    #[arg(value_enum)]
    workloads: Vec<Workload>,
    /// Record formats, in order.
    #[arg(long, value_delimiter = ',', default_value = "json,avro")]
    format: Vec<String>,
    /// Row changes per workload instead of the standard size (for quick runs).
    #[arg(long)]
    rows: Option<u64>,
    /// The source binary.
    #[arg(long)]
    source_bin: Option<PathBuf>,
    /// Extra source config keys, `key=value` with a TOML value (e.g. `batch.max.rows=20000`).
    #[arg(long = "set")]
    set: Vec<String>,
    /// Extra librdkafka settings of the source, `key=value`.
    #[arg(long = "kafka")]
    kafka: Vec<String>,
    /// Record a `perf` profile of the source with call graphs (`perf.data` in the run's directory).
    #[arg(long)]
    perf: bool,
    /// Keep the run's database and topics.
    #[arg(long)]
    keep: bool,
    /// Instead of the workloads, time the source's building blocks alone: binlog reading, row
    /// decoding, and publishing through its transactional producer.
    #[arg(long)]
    floors: bool,
    /// Instead of the workloads, benchmark jdbc-sink: `--rows` (default 1,000,000) records on a
    /// topic into the mirror, against the `mariadb` client upserting the same rows.
    #[arg(long)]
    sink: bool,
    /// Instead of the workloads, latency from the source commit to the mirror commit through
    /// cdc-source and jdbc-sink under a steady `--rate` for `--seconds`.
    #[arg(long)]
    e2e: bool,
    /// Instead of the workloads, time `jdbc-sink verify` over `--rows` (default 1,000,000) rows of
    /// `orders` against an exact mirror copy (target ≥ 100,000 rows/s).
    #[arg(long)]
    verify: bool,
    /// Row changes per second of the `--e2e` load.
    #[arg(long, default_value_t = 2000)]
    rate: u64,
    /// Seconds of the `--e2e` load.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// The sink binary.
    #[arg(long)]
    sink_bin: Option<PathBuf>,
    /// Extra sink config keys, `key=value` with a TOML value (e.g. `flush.interval.ms=50`).
    #[arg(long = "sink-set")]
    sink_set: Vec<String>,
    /// Extra librdkafka settings of the sink, `key=value`.
    #[arg(long = "sink-kafka")]
    sink_kafka: Vec<String>,
    /// Longest one source run may take, seconds.
    #[arg(long, default_value_t = 1200)]
    timeout_s: u64,
}

/// The figures of one run.
#[derive(Debug)]
struct Outcome {
    workload: Workload,
    format: String,
    range: Prepared,
    ours: SourceFigures,
    theirs: [Duration; 2],
    verified: Result<(), String>,
}

impl Outcome {
    fn theirs(&self) -> f64 {
        (self.theirs[0] + self.theirs[1]).as_secs_f64() / 2.0
    }

    fn ratio(&self) -> f64 {
        self.ours.streaming.as_secs_f64() / self.theirs()
    }

    fn ratio_limited(&self) -> bool {
        matches!(self.workload, Workload::W1 | Workload::W2)
    }

    fn passes(&self) -> bool {
        self.verified.is_ok()
            && self.ours.peak_rss_kb <= RSS_LIMIT_KB
            && (!self.ratio_limited() || self.ratio() <= RATIO_LIMIT)
    }
}

fn mib(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "MISSED"
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run(Cli::parse()).await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(e) => {
            eprintln!("cdc-bench: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<bool> {
    let stack = Stack::try_from_env().map_err(anyhow::Error::msg)?;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    if cli.verify {
        let sink_bin = cli.sink_bin.clone().unwrap_or_else(|| root.join("target/release/jdbc-sink"));
        if !sink_bin.exists() {
            bail!("{} is missing: build it first with cargo build --release -p jdbc-sink", sink_bin.display());
        }
        return verify_bench::run(&stack, &sink_bin, &root, cli.rows.unwrap_or(1_000_000), cli.keep).await;
    }
    let binary = cli
        .source_bin
        .clone()
        .unwrap_or_else(|| root.join("target/release/cdc-source"));
    if !binary.exists() {
        bail!(
            "{} is missing: build it first with cargo build --release -p cdc-source",
            binary.display()
        );
    }
    for f in &cli.format {
        if f != "json" && f != "avro" {
            bail!("--format: `{f}` is neither json nor avro");
        }
    }
    if cli.floors {
        floors(&cli, &stack).await?;
        return Ok(true);
    }
    if cli.sink || cli.e2e {
        let sink_bin = cli
            .sink_bin
            .clone()
            .unwrap_or_else(|| root.join("target/release/jdbc-sink"));
        if !sink_bin.exists() {
            bail!(
                "{} is missing: build it first with cargo build --release -p jdbc-sink",
                sink_bin.display()
            );
        }
        std::fs::create_dir_all(root.join("target/cdc-bench"))?;
        let mut ok = true;
        if cli.sink {
            ok &= sink_bench::run(&cli, &stack, &binary, &sink_bin, &root).await?;
        }
        if cli.e2e {
            ok &= e2e::run(&cli, &stack, &binary, &sink_bin, &root).await?;
        }
        return Ok(ok);
    }
    let workloads = if cli.workloads.is_empty() {
        vec![Workload::W1, Workload::W2, Workload::W3]
    } else {
        cli.workloads.clone()
    };
    let out_dir = root.join("target/cdc-bench");
    std::fs::create_dir_all(&out_dir)?;
    println!(
        "cdc-bench: source {}, MariaDB {}:{}, Kafka {}",
        binary.display(),
        stack.mariadb_host,
        stack.mariadb_port,
        stack.kafka_bootstrap
    );
    let mut outcomes = Vec::new();
    let mut n = 0u32;
    let mut snapshots_ok = true;
    for w in &workloads {
        for format in &cli.format {
            n += 1;
            if *w == Workload::Snapshot {
                snapshots_ok &= snapshot_bench::run(&cli, &stack, &binary, &root, format, n).await?;
                continue;
            }
            if *w == Workload::Incremental {
                snapshots_ok &= incremental_bench::run(&cli, &stack, &binary, &root, format, n).await?;
                continue;
            }
            let o = one(&cli, &stack, &binary, &root, *w, format, n).await?;
            report(&o);
            if *w == Workload::W1 {
                publisher_floor(&stack, &o).await?;
            }
            record(&out_dir, &o, &cli)?;
            outcomes.push(o);
        }
    }
    if !outcomes.is_empty() {
        summary(&outcomes);
    }
    Ok(snapshots_ok && outcomes.iter().all(Outcome::passes))
}

/// W1's rows/s against the source's own Publisher alone sending as many records of the same
/// format (commits of [`FLOOR_BATCH`], its best measured size), timed right after the workload.
async fn publisher_floor(stack: &Stack, o: &Outcome) -> anyhow::Result<()> {
    let rows = o.range.rows;
    let took = floor::kafka(stack, rows, FLOOR_BATCH, o.format == "avro").await?;
    let floor = rows as f64 / took.as_secs_f64();
    let ours = rows as f64 / o.ours.streaming.as_secs_f64();
    let ratio = ours / floor;
    println!(
        "   Publisher floor ({} records, commits of {FLOOR_BATCH}): {:.2} s -> {floor:.0} rows/s; source / floor = {ratio:.2} (target >= {FLOOR_TARGET}: {})",
        o.format,
        took.as_secs_f64(),
        verdict(ratio >= FLOOR_TARGET)
    );
    Ok(())
}

/// Commit size of the Publisher floor W1 is compared with.
const FLOOR_BATCH: u64 = 50_000;
/// W1 source rows/s ÷ Publisher floor rows/s must reach this.
const FLOOR_TARGET: f64 = 0.8;

/// Prints the floors for W1's size (see [`floor`]).
async fn floors(cli: &Cli, stack: &Stack) -> anyhow::Result<()> {
    let rows = cli.rows.unwrap_or_else(|| Workload::W1.default_rows());
    let commits = 50;
    println!("\n== one Kafka transaction commit, median of {commits}");
    let (publisher, in_flight, delivered) = floor::commit_cost(stack, commits).await?;
    println!(
        "   source Publisher::commit (offset record in flight): {:>7.1} ms",
        publisher.as_secs_f64() * 1000.0
    );
    println!(
        "   commit_transaction, a record still in flight:       {:>7.1} ms",
        in_flight.as_secs_f64() * 1000.0
    );
    println!(
        "   commit_transaction after awaiting its delivery:     {:>7.1} ms",
        delivered.as_secs_f64() * 1000.0
    );
    println!("\n== floors for {rows} rows of orders");
    let (range, read_only, decoding, own, decoded) = floor::binlog(stack, rows).await?;
    let theirs = reference::time_mariadb_binlog(stack, &range)?;
    let r = rows as f64;
    println!(
        "   mariadb-binlog (same range):                 {:>7.2} s -> {:>9.0} rows/s",
        theirs.as_secs_f64(),
        r / theirs.as_secs_f64()
    );
    println!(
        "   BinlogReader, events only:                   {:>7.2} s -> {:>9.0} rows/s",
        read_only.as_secs_f64(),
        r / read_only.as_secs_f64()
    );
    println!(
        "   BinlogReader + row decoding ({decoded} rows): {:>7.2} s -> {:>9.0} rows/s",
        decoding.as_secs_f64(),
        r / decoding.as_secs_f64()
    );
    println!(
        "   BinlogReader + own RowsDecoder ({decoded} rows): {:>7.2} s -> {:>9.0} rows/s",
        own.as_secs_f64(),
        r / own.as_secs_f64()
    );
    for (avro, batch) in [
        (false, 5_000),
        (false, 50_000),
        (true, 5_000),
        (true, 50_000),
    ] {
        let took = floor::kafka(stack, rows, batch, avro).await?;
        let kind = if avro { "Avro" } else { "JSON" };
        println!("   Publisher, {kind}-sized records, commit every {batch:>6}: {:>7.2} s -> {:>9.0} rows/s", took.as_secs_f64(), r / took.as_secs_f64());
    }
    Ok(())
}

/// One workload in one format, from a fresh database to the verified count.
async fn one(
    cli: &Cli,
    stack: &Stack,
    binary: &std::path::Path,
    root: &std::path::Path,
    w: Workload,
    format: &str,
    n: u32,
) -> anyhow::Result<Outcome> {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let tag = format!("bench_{}_{format}_{secs}", w.name().to_ascii_lowercase());
    let rows = cli.rows.unwrap_or_else(|| w.default_rows());
    println!(
        "\n== {} {format}: {} (database and topic prefix {tag})",
        w.name(),
        w.describe(rows)
    );
    let spec = run_spec(cli, binary, root, &tag, &tag, format, n)?;
    workload::create_database(stack, &tag).await?;
    let range = workload::prepare(stack, &tag, w, rows).await?;
    println!(
        "   prepared in {:.1} s: binlog {}:{} .. {}:{} ({:.1} MiB), GTID {} .. {}",
        range.prepare_time.as_secs_f64(),
        range.start.file,
        range.start.pos,
        range.end.file,
        range.end.pos,
        range.bytes as f64 / 1048576.0,
        range.start.gtid,
        range.end.gtid
    );
    let theirs0 = reference::time_mariadb_binlog(stack, &range)?;
    let start = StoredOffset {
        gtid: range.start.gtid.clone(),
        binlog: FilePos {
            file: range.start.file.clone(),
            pos: range.start.pos,
        },
        ts_ms: 0,
    };
    kafka::seed_offset(&stack.kafka(), &spec.offsets_topic(), &tag, &start).await?;
    let ours = source::run(stack, &spec, &range).await?;
    let theirs1 = reference::time_mariadb_binlog(stack, &range)?;
    let verified = verify(stack, &spec, &range);
    if !cli.keep {
        let mut topics = source::topics(&spec, &range.expected);
        topics.push(spec.offsets_topic());
        if let Err(e) = kafka::delete_topics(&stack.kafka(), &topics).await {
            eprintln!("   (could not delete the run's topics: {e})");
        }
        workload::drop_database(stack, &tag).await?;
    }
    println!("   {}", reference::command_line(stack, &range));
    Ok(Outcome {
        workload: w,
        format: format.to_string(),
        range,
        ours,
        theirs: [theirs0, theirs1],
        verified,
    })
}

/// The source's run: names from `tag`, captured database `database`, the CLI's source keys.
fn run_spec(
    cli: &Cli,
    binary: &std::path::Path,
    root: &std::path::Path,
    tag: &str,
    database: &str,
    format: &str,
    n: u32,
) -> anyhow::Result<RunSpec> {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Ok(RunSpec {
        tag: tag.to_string(),
        database: database.to_string(),
        format: format.to_string(),
        snapshot_mode: "never",
        server_id: 100_000 + (secs % 1_000_000) as u32 * 8 + n % 8,
        http_port: cdc_testkit::free_port(),
        source_keys: source::parse_pairs(&cli.set)?,
        kafka_keys: source::parse_pairs(&cli.kafka)?,
        binary: binary.to_path_buf(),
        dir: root.join("target/cdc-bench").join(tag),
        timeout: Duration::from_secs(cli.timeout_s),
        perf: cli.perf,
        stack_home: stack_home(root),
    })
}

/// The stack's home (`CDC_STACK_HOME`, else `.stack` in the repository), where its PID files are.
fn stack_home(root: &std::path::Path) -> PathBuf {
    std::env::var_os("CDC_STACK_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".stack"))
}

/// Every row change of the range is on its table's topic exactly once, with the right `cdc.op`.
fn verify(stack: &Stack, spec: &RunSpec, range: &Prepared) -> Result<(), String> {
    for (table, ops) in &range.expected {
        let topic = format!("{}{table}", spec.prefix());
        let counts = kafka::count_ops(&stack.kafka(), &topic, Duration::from_secs(300))
            .map_err(|e| e.to_string())?;
        let want: std::collections::BTreeMap<String, u64> =
            ops.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        if counts != want {
            return Err(format!(
                "{topic}: committed records by op {counts:?}, expected {want:?}"
            ));
        }
    }
    Ok(())
}

fn report(o: &Outcome) {
    let rows = o.range.rows as f64;
    let ours = &o.ours;
    println!(
        "   cdc-source:     start-up {:.2} s, streaming {:.2} s -> {:.0} rows/s (with start-up {:.0} rows/s); exit code {:?}",
        ours.startup.as_secs_f64(),
        ours.streaming.as_secs_f64(),
        rows / ours.streaming.as_secs_f64(),
        rows / ours.total().as_secs_f64(),
        ours.exit_code
    );
    println!("   CPU while streaming: {}", ours.cpu.describe());
    println!(
        "   mariadb-binlog: {:.2} s and {:.2} s, mean {:.2} s -> {:.0} rows/s",
        o.theirs[0].as_secs_f64(),
        o.theirs[1].as_secs_f64(),
        o.theirs(),
        rows / o.theirs()
    );
    let limit = if o.ratio_limited() {
        format!("limit {RATIO_LIMIT}: {}", verdict(o.ratio() <= RATIO_LIMIT))
    } else {
        "no limit".into()
    };
    println!(
        "   ratio ours/theirs: {:.2} ({limit}); with start-up {:.2}",
        o.ratio(),
        ours.total().as_secs_f64() / o.theirs()
    );
    println!(
        "   peak RSS (VmHWM): {:.1} MiB (limit {} MiB: {}); RSS when streaming began {:.1} MiB",
        mib(ours.peak_rss_kb),
        RSS_LIMIT_KB / 1024,
        verdict(ours.peak_rss_kb <= RSS_LIMIT_KB),
        mib(ours.start_rss_kb)
    );
    match &o.verified {
        Ok(()) => println!(
            "   records: every row change committed exactly once ({:?})",
            o.range.expected
        ),
        Err(e) => println!("   records: MISSED: {e}"),
    }
}

fn summary(outcomes: &[Outcome]) {
    println!("\n| workload | format | rows | binlog MiB | cdc-source rows/s | mariadb-binlog rows/s | ratio (limit) | peak RSS MiB (limit 64) | records |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---|");
    for o in outcomes {
        let rows = o.range.rows as f64;
        println!(
            "| {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.2} ({}) | {:.1} ({}) | {} |",
            o.workload.name(),
            o.format,
            o.range.rows,
            o.range.bytes as f64 / 1048576.0,
            rows / o.ours.streaming.as_secs_f64(),
            rows / o.theirs(),
            o.ratio(),
            if o.ratio_limited() {
                format!("≤ {RATIO_LIMIT}: {}", verdict(o.ratio() <= RATIO_LIMIT))
            } else {
                "–".into()
            },
            mib(o.ours.peak_rss_kb),
            verdict(o.ours.peak_rss_kb <= RSS_LIMIT_KB),
            if o.verified.is_ok() {
                "exactly once"
            } else {
                "MISSED"
            },
        );
    }
}

/// Appends one run's figures to `target/cdc-bench/results.jsonl` under `root`: `fields`, with
/// the time, the workload, the run's tag and its format.
fn append_result(
    root: &std::path::Path,
    workload: &str,
    tag: &str,
    format: &str,
    fields: serde_json::Value,
) -> anyhow::Result<()> {
    let mut line = serde_json::json!({
        "at": SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        "workload": workload,
        "tag": tag,
        "format": format,
    });
    if let (Some(head), serde_json::Value::Object(fields)) = (line.as_object_mut(), fields) {
        head.extend(fields);
    }
    let dir = root.join("target/cdc-bench");
    std::fs::create_dir_all(&dir)?;
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("results.jsonl"))?;
    writeln!(file, "{line}")?;
    Ok(())
}

/// Appends the run's figures to `target/cdc-bench/results.jsonl`.
fn record(dir: &std::path::Path, o: &Outcome, cli: &Cli) -> anyhow::Result<()> {
    let line = serde_json::json!({
        "at": SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        "workload": o.workload.name(),
        "format": o.format,
        "rows": o.range.rows,
        "binlog_bytes": o.range.bytes,
        "startup_s": o.ours.startup.as_secs_f64(),
        "streaming_s": o.ours.streaming.as_secs_f64(),
        "mariadb_binlog_s": [o.theirs[0].as_secs_f64(), o.theirs[1].as_secs_f64()],
        "ratio": o.ratio(),
        "peak_rss_kb": o.ours.peak_rss_kb,
        "start_rss_kb": o.ours.start_rss_kb,
        "cpu_s": o.ours.cpu.processes.iter().map(|(n, s)| (n.clone(), serde_json::json!(s))).collect::<serde_json::Map<_, _>>(),
        "machine_busy": o.ours.cpu.machine_busy,
        "verified": o.verified.is_ok(),
        "set": cli.set,
        "kafka": cli.kafka,
    });
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("results.jsonl"))?;
    writeln!(f, "{line}")?;
    Ok(())
}
