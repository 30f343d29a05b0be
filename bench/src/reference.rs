//! The yardstick: `mariadb-binlog --read-from-remote-server` reading the same binlog range to
//! /dev/null. It asks the server for the same dump a replica gets and prints every event (row
//! events as base64 `BINLOG` statements), so it bounds what reading the binlog costs on this
//! machine.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use cdc_testkit::Stack;
use crate::workload::Prepared;

/// The command line, for the report (password masked).
pub fn command_line(stack: &Stack, range: &Prepared) -> String {
    args(stack, range)
        .into_iter()
        .map(|a| {
            if a.starts_with("--password=") {
                "--password=…".to_string()
            } else {
                a
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn args(stack: &Stack, range: &Prepared) -> Vec<String> {
    let mut a = vec![
        "mariadb-binlog".to_string(),
        "--read-from-remote-server".to_string(),
        format!("--host={}", stack.mariadb_host),
        format!("--port={}", stack.mariadb_port),
        format!("--user={}", stack.root_user),
        format!("--password={}", stack.root_password),
        // Positions: --start-position applies to the first file named, --stop-position to the last.
        format!("--start-position={}", range.start.pos),
        format!("--stop-position={}", range.end.pos),
    ];
    a.extend(range.files.iter().cloned());
    a
}

/// Runs `mariadb-binlog` over the range with stdout to /dev/null; returns its wall time.
pub fn time_mariadb_binlog(stack: &Stack, range: &Prepared) -> anyhow::Result<Duration> {
    let a = args(stack, range);
    let started = Instant::now();
    let out = Command::new(&a[0])
        .args(&a[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .context("run mariadb-binlog (Debian package mariadb-client)")?;
    let took = started.elapsed();
    if !out.status.success() {
        bail!(
            "mariadb-binlog failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(took)
}
