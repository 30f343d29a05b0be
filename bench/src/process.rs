//! The services under test as child processes: spawned with their config and a log file in the
//! run's directory, asked over their loopback HTTP (`/status`, `/metrics`), measured through
//! `/proc` (peak RSS), and stopped with SIGTERM (SIGKILL only after a grace period).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// A running service: `cdc-source` or `jdbc-sink`.
#[derive(Debug)]
pub struct Service {
    pub name: &'static str,
    pub child: Child,
    pub pid: u32,
    pub http_port: u16,
    pub log: PathBuf,
}

impl Service {
    /// Writes `config` to `<dir>/<name>.toml` and starts `binary --config` it, logging to
    /// `<dir>/<name>.log` (`RUST_LOG` as set, else `info`).
    pub fn spawn(
        name: &'static str,
        binary: &Path,
        config: &str,
        dir: &Path,
        http_port: u16,
    ) -> anyhow::Result<Service> {
        std::fs::create_dir_all(dir)?;
        let config_path = dir.join(format!("{name}.toml"));
        std::fs::write(&config_path, config)?;
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log)?;
        let child = Command::new(binary)
            .arg("--config")
            .arg(&config_path)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| {
                format!(
                    "start {} (build it: cargo build --release -p {name})",
                    binary.display()
                )
            })?;
        Ok(Service {
            name,
            pid: child.id(),
            child,
            http_port,
            log,
        })
    }

    /// `GET /status`, or None while the service is not listening.
    pub fn status(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&http_get(self.http_port, "/status")?).ok()
    }

    /// Fails when the process has exited.
    pub fn alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited early ({status})", self.name);
        }
        Ok(())
    }

    /// Waits until `/status` reports `state`; fails on `failed`, on exit, or after `timeout`.
    pub async fn wait_state(&mut self, state: &str, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            self.alive().map_err(|e| e.context(self.log_tail()))?;
            if let Some(doc) = self.status() {
                match doc["state"].as_str() {
                    Some(s) if s == state => return Ok(()),
                    Some("failed") => bail!("{} failed: {}", self.name, doc["last_error"]),
                    _ => {}
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not reach `{state}` within {timeout:?}; {}",
                    self.name,
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A `kB` field of the process's `/proc/<pid>/status` (`VmHWM`, `VmRSS`).
    pub fn status_kb(&self, field: &str) -> u64 {
        proc_status_kb(self.pid, field).unwrap_or(0)
    }

    /// Saves `/metrics` as `<dir>/<name>-metrics.txt` and returns it.
    pub fn save_metrics(&self, dir: &Path) -> Option<String> {
        let text = http_get(self.http_port, "/metrics")?;
        let _ = std::fs::write(dir.join(format!("{}-metrics.txt", self.name)), &text);
        Some(text)
    }

    /// SIGTERM, then SIGKILL after `grace`; returns the exit code.
    pub fn stop(self, grace: Duration) -> Option<i32> {
        stop(self.child, grace)
    }

    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }

    /// The end of a measured run: saves `/metrics` to `dir`, reads the peak RSS, stops `perf`
    /// (if it recorded), then the service; (peak RSS KiB, the log's last lines, exit code).
    pub fn finish(self, dir: &Path, perf: Option<Child>) -> (u64, String, Option<i32>) {
        self.save_metrics(dir);
        let peak_rss_kb = self.status_kb("VmHWM");
        if let Some(p) = perf {
            stop(p, Duration::from_secs(30));
        }
        let tail = self.log_tail();
        (peak_rss_kb, tail, self.stop(Duration::from_secs(30)))
    }
}

/// The body of a plain HTTP/1.0 `GET` on loopback.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    http_request(port, "GET", path, None, Duration::from_secs(2)).map(|(_, body)| body)
}

/// `POST` of a JSON `body` on loopback, answered within `timeout`: (status code, body).
pub fn http_post(port: u16, path: &str, body: &str, timeout: Duration) -> Option<(u16, String)> {
    http_request(port, "POST", path, Some(body), timeout)
}

/// One plain HTTP/1.0 request on loopback: (status code, body).
fn http_request(port: u16, method: &str, path: &str, body: Option<&str>, timeout: Duration) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    let mut request = format!("{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n");
    if let Some(body) = body {
        request.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()));
    } else {
        request.push_str("\r\n");
    }
    s.write_all(request.as_bytes()).ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

/// A `kB` field of `/proc/<pid>/status`.
pub fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// SIGTERM, then SIGKILL after `grace`; returns the exit code.
pub fn stop(mut child: Child, grace: Duration) -> Option<i32> {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    child.wait().ok().and_then(|s| s.code())
}

pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    format!(
        "last lines of {}:\n{}",
        path.display(),
        lines[lines.len().saturating_sub(15)..].join("\n")
    )
}

/// (count, sum) of a Prometheus histogram in `/metrics` text, over all its label sets.
pub fn histogram(metrics: &str, name: &str) -> Option<(f64, f64)> {
    Some((
        series_sum(metrics, &format!("{name}_count"))?,
        series_sum(metrics, &format!("{name}_sum"))?,
    ))
}

/// The sum of series `name` (e.g. a counter's `…_total`) in `/metrics` text, over all its label
/// sets.
pub fn series_sum(metrics: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !(rest.starts_with(' ') || rest.starts_with('{')) {
            continue;
        }
        let v: f64 = rest.rsplit(' ').next()?.parse().ok()?;
        *found.get_or_insert(0.0) += v;
    }
    found
}

/// "n × mean" of a histogram, for the reports.
pub fn describe_histogram(metrics: Option<&str>, name: &str, unit_ms: bool) -> String {
    match metrics.and_then(|m| histogram(m, name)) {
        Some((count, sum)) if count > 0.0 => {
            if unit_ms {
                format!("{count:.0} × mean {:.1} ms", sum / count * 1000.0)
            } else {
                format!("{count:.0} × mean {:.0}", sum / count)
            }
        }
        _ => "–".into(),
    }
}

/// `perf record` of `pid` (199 Hz, DWARF call graphs from `.eh_frame`) into `<dir>/perf.data`.
pub fn start_perf(pid: u32, dir: &Path) -> anyhow::Result<Child> {
    Command::new("perf")
        .args(["record", "-F", "199", "--call-graph", "dwarf,16384", "-o"])
        .arg(dir.join("perf.data"))
        .args(["-p", &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("start perf record")
}

