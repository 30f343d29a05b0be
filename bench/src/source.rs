//! One run of the release-built `cdc-source` over a prepared range: its config, the process, and
//! what is measured around it without slowing it down.
//!
//! - **start-up**: from spawning the process until `/status` says `streaming` (preflight, fencing
//!   with `init_transactions`, reading the stored offset, connecting as a replica).
//! - **streaming**: from then until a `read_committed` consumer of the offsets topic sees a
//!   committed position at or after the end of the workload ([`crate::kafka::watch_committed`]).
//!   Every record of the range is committed at that moment, since the offset record is written
//!   in the same Kafka transaction as the records it covers.
//! - **peak RSS**: `VmHWM` of `/proc/<pid>/status` (the kernel's own high-water mark of the
//!   resident set), read once the range is committed, before the process is stopped.
//! - **CPU** of the source, MariaDB, Kafka and the registry during the streaming window, and how
//!   busy the machine was (see [`crate::cpu`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::cpu::{CpuMeter, CpuUse};
use crate::kafka;
use crate::process::{self, Service};
use cdc_testkit::Stack;
use crate::workload::Prepared;

/// Everything that identifies one run: its own database, topics, source name and server id.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub tag: String,
    pub database: String,
    pub format: String,
    /// `snapshot.mode`: `never` for the streaming workloads (they start at a stored position),
    /// `initial` for the snapshot workload.
    pub snapshot_mode: &'static str,
    pub server_id: u32,
    pub http_port: u16,
    /// Extra top-level source keys (`key = value` TOML lines), e.g. `"batch.max.rows" = 20000`.
    pub source_keys: Vec<(String, String)>,
    /// Extra librdkafka settings for the source's `[kafka]` table.
    pub kafka_keys: Vec<(String, String)>,
    pub binary: PathBuf,
    pub dir: PathBuf,
    /// Longest the source may take for the range before the run counts as failed.
    pub timeout: Duration,
    /// Record the source with `perf record` (199 Hz, DWARF call graphs from `.eh_frame`; written to
    /// `<dir>/perf.data`).
    pub perf: bool,
    /// The stack's home (`CDC_STACK_HOME`), where its PID files are.
    pub stack_home: PathBuf,
}

impl RunSpec {
    pub fn prefix(&self) -> String {
        format!("{}_", self.tag)
    }

    pub fn offsets_topic(&self) -> String {
        format!("{}_offsets", self.tag)
    }

    /// The source's config file.
    pub fn config(&self, stack: &Stack) -> String {
        let (prefix, offsets) = (self.prefix(), self.offsets_topic());
        let names = cdc_testkit::config::SourceNames {
            name: &self.tag,
            database: &self.database,
            server_id: self.server_id,
            topic_prefix: &prefix,
            offsets_topic: &offsets,
            format: &self.format,
        };
        let mut top = cdc_testkit::config::source_config_head(stack, &names);
        top.push_str(&format!("\"snapshot.mode\" = \"{}\"\n\"http.listen\" = \"127.0.0.1:{}\"\n", self.snapshot_mode, self.http_port));
        for (k, v) in &self.source_keys {
            top.push_str(&format!("\"{k}\" = {v}\n"));
        }
        top.push_str(&format!(
            "[kafka]\n\"bootstrap.servers\" = \"{}\"\n",
            stack.kafka_bootstrap
        ));
        for (k, v) in &self.kafka_keys {
            top.push_str(&format!("\"{k}\" = \"{v}\"\n"));
        }
        top
    }
}

/// What one source run measured.
#[derive(Debug, Clone)]
pub struct SourceFigures {
    pub startup: Duration,
    pub streaming: Duration,
    pub peak_rss_kb: u64,
    /// RSS when streaming began (connections, librdkafka threads, buffers; no data yet).
    pub start_rss_kb: u64,
    /// CPU of the source and the stack's services during the streaming window.
    pub cpu: CpuUse,
    pub exit_code: Option<i32>,
}

impl SourceFigures {
    pub fn total(&self) -> Duration {
        self.startup + self.streaming
    }
}

/// Starts the source with `spec`'s config (its log, config and metrics go to `spec.dir`).
pub fn start(stack: &Stack, spec: &RunSpec) -> anyhow::Result<Service> {
    Service::spawn(
        "cdc-source",
        &spec.binary,
        &spec.config(stack),
        &spec.dir,
        spec.http_port,
    )
}

/// Starts the source, waits until the end of `range` is committed, stops it with SIGTERM.
pub async fn run(stack: &Stack, spec: &RunSpec, range: &Prepared) -> anyhow::Result<SourceFigures> {
    std::fs::create_dir_all(&spec.dir)?;
    let stop_watch = Arc::new(AtomicBool::new(false));
    let committed = kafka::watch_committed(
        &stack.kafka(),
        &spec.offsets_topic(),
        &spec.tag,
        range.end.gtid.clone(),
        stop_watch.clone(),
    )
    .await?;
    let spawned = Instant::now();
    let mut service = start(stack, spec)?;
    let perf = if spec.perf {
        Some(process::start_perf(service.pid, &spec.dir)?)
    } else {
        None
    };
    let meter = CpuMeter::new(&[("cdc-source", service.pid)], &spec.stack_home);
    let result = monitor(spec, range, &mut service, spawned, &committed, &meter).await;
    stop_watch.store(true, Ordering::Relaxed);
    let (peak_rss_kb, tail, exit_code) = service.finish(&spec.dir, perf);
    let (startup, streaming, start_rss_kb, cpu) = result.map_err(|e| e.context(tail))?;
    Ok(SourceFigures {
        startup,
        streaming,
        peak_rss_kb,
        start_rss_kb,
        cpu,
        exit_code,
    })
}

/// Waits for `streaming`, then for the committed end; returns (start-up, streaming, RSS at
/// start, CPU used while streaming).
async fn monitor(
    spec: &RunSpec,
    range: &Prepared,
    service: &mut Service,
    spawned: Instant,
    committed: &std::sync::mpsc::Receiver<Instant>,
    meter: &CpuMeter,
) -> anyhow::Result<(Duration, Duration, u64, CpuUse)> {
    let mut streaming_at: Option<(Instant, u64, crate::cpu::CpuSnapshot)> = None;
    loop {
        service.alive()?;
        if spawned.elapsed() > spec.timeout {
            bail!("the range was not committed within {:?}", spec.timeout);
        }
        if streaming_at.is_none() {
            if let Some(doc) = service.status() {
                match doc["state"].as_str() {
                    Some("streaming") => {
                        let resumed = doc["committed_gtid"].as_str().unwrap_or_default();
                        if resumed != range.start.gtid.to_string() {
                            bail!("the source resumed at `{resumed}`, not at the workload's start `{}`", range.start.gtid);
                        }
                        streaming_at =
                            Some((Instant::now(), service.status_kb("VmRSS"), meter.snapshot()));
                    }
                    Some("failed") => bail!("cdc-source failed: {}", doc["last_error"]),
                    _ => {}
                }
            }
        }
        if let Ok(done) = committed.try_recv() {
            let cpu_end = meter.snapshot();
            let (at, rss, cpu_start) = streaming_at.unwrap_or_else(|| (done, 0, cpu_end.clone()));
            return Ok((
                at - spawned,
                done.saturating_duration_since(at),
                rss,
                CpuUse::between(&cpu_start, &cpu_end),
            ));
        }
        tokio::time::sleep(Duration::from_millis(if streaming_at.is_none() {
            10
        } else {
            50
        }))
        .await;
    }
}

/// Librdkafka settings `k=v` as given on the command line.
pub fn parse_pairs(items: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    items
        .iter()
        .map(|s| {
            s.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .with_context(|| format!("`{s}` is not key=value"))
        })
        .collect()
}

/// The topics of a run.
pub fn topics(
    spec: &RunSpec,
    expected: &BTreeMap<&'static str, BTreeMap<&'static str, u64>>,
) -> Vec<String> {
    expected
        .keys()
        .map(|t| format!("{}{t}", spec.prefix()))
        .collect()
}
