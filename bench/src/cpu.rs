//! CPU seconds spent by the source and by the stack's services during the streaming window, and
//! how busy the whole machine was (other work on a shared machine shows up here).

use std::path::Path;

/// User + system CPU seconds of a process (fields 14 and 15 of `/proc/<pid>/stat`).
pub fn process_seconds(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0) // USER_HZ
}

/// (busy, total) jiffies of all CPUs, from the first line of `/proc/stat`.
fn machine_jiffies() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let v: Vec<u64> = text
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4)?;
    Some((total - idle, total))
}

/// CPU counters at one moment.
#[derive(Debug, Clone)]
pub struct CpuSnapshot {
    processes: Vec<(String, Option<f64>)>,
    machine: Option<(u64, u64)>,
}

/// The processes to watch: the services under test and the stack's services (PIDs from `<stack home>/run/`).
#[derive(Debug, Clone)]
pub struct CpuMeter {
    pids: Vec<(String, u32)>,
}

impl CpuMeter {
    /// `services`: (name, PID) of the processes under test.
    pub fn new(services: &[(&str, u32)], stack_home: &Path) -> Self {
        let mut pids: Vec<(String, u32)> =
            services.iter().map(|(n, p)| (n.to_string(), *p)).collect();
        for name in ["mariadb", "kafka", "registry"] {
            let pid = std::fs::read_to_string(stack_home.join("run").join(format!("{name}.pid")))
                .ok()
                .and_then(|t| t.trim().parse().ok());
            if let Some(pid) = pid {
                pids.push((name.to_string(), pid));
            }
        }
        CpuMeter { pids }
    }

    pub fn snapshot(&self) -> CpuSnapshot {
        CpuSnapshot {
            processes: self
                .pids
                .iter()
                .map(|(n, p)| (n.clone(), process_seconds(*p)))
                .collect(),
            machine: machine_jiffies(),
        }
    }
}

/// CPU used between two snapshots.
#[derive(Debug, Clone, Default)]
pub struct CpuUse {
    /// (process, CPU seconds).
    pub processes: Vec<(String, f64)>,
    /// Share of all cores that were busy, 0..1.
    pub machine_busy: f64,
    pub cores: usize,
}

impl CpuUse {
    pub fn between(a: &CpuSnapshot, b: &CpuSnapshot) -> CpuUse {
        let processes = a
            .processes
            .iter()
            .zip(&b.processes)
            .filter_map(|((n, x), (_, y))| Some((n.clone(), (*y)? - (*x)?)))
            .collect();
        let machine_busy = match (a.machine, b.machine) {
            (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => (b1 - b0) as f64 / (t1 - t0) as f64,
            _ => 0.0,
        };
        CpuUse {
            processes,
            machine_busy,
            cores: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
        }
    }

    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .processes
            .iter()
            .map(|(n, s)| format!("{n} {s:.1} s"))
            .collect();
        format!(
            "{}; machine {:.0}% busy of {} cores",
            parts.join(", "),
            self.machine_busy * 100.0,
            self.cores
        )
    }
}
