//! `verify --repair`: verify, ask cdc-source to re-copy what differs, verify again.
//!
//! Each mismatching range becomes one `execute-snapshot` signal (Debezium's shape) for the keys
//! of its differing rows: `{"data-collections": ["db.t"], "type": "incremental",
//! "additional-conditions": [{"data-collection": "db.t", "keys": [[…], …]}]}`. The source reads
//! those keys in a read view of its own while it streams and publishes each row it holds as a
//! `cdc.op=r` record and, for a key it does not hold (a row only in the mirror), a tombstone
//! (with its `delete.enabled`); the sink applies them like any other change, so nothing is
//! written to the mirror behind the sink's back. The signal goes to `POST /signals` of the
//! source (`--signal-url`; its `/status` then tells when the snapshots are done) or into its
//! signal table (`--signal-table`). The tables that differed are then verified again, with the
//! usual re-checks of rows in flight; the exit code is that of the second verify.
//!
//! A range lists at most 1,000 keys (`MAX_KEYS`); a range with more differing rows is repaired
//! for those and the next verify shows the rest.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use cdc_common::ConnectionUrl;
use jdbc_sink::config::Settings;
use mysql_async::prelude::Queryable;
use serde::Serialize;
use serde_json::json;

use super::{text_report, verify, Report, VerifyArgs};

/// What `--repair` asked for, per table.
#[derive(Debug, Serialize)]
struct Asked {
    table: String,
    signals: Vec<String>,
    keys: usize,
}

#[derive(Debug, Serialize)]
struct RepairReport {
    before: Report,
    repair: Vec<Asked>,
    after: Option<Report>,
    error: Option<String>,
}

pub async fn run(settings: &Settings, args: &VerifyArgs) -> ExitCode {
    if args.signal_url.is_none() && args.signal_table.is_none() {
        eprintln!("jdbc-sink verify --repair needs a way to signal cdc-source: --signal-url http://<source http.listen> (its POST /signals) or --signal-table db.table (its signal.data.collection)");
        return ExitCode::from(2);
    }
    let before = verify(settings, args).await;
    if !args.json {
        print!("{}", text_report(&before));
    }
    if before.result != "mismatch" {
        let code = if before.result == "equal" { 0 } else { 2 };
        if args.json {
            print_json(&RepairReport { before, repair: Vec::new(), after: None, error: None });
        } else if code == 0 {
            println!("nothing to repair");
        }
        return ExitCode::from(code);
    }
    let (repair, error) = match ask(args, &before).await {
        Ok(asked) => (asked, None),
        Err(e) => (Vec::new(), Some(e)),
    };
    if let Some(e) = &error {
        if args.json {
            print_json(&RepairReport { before, repair, after: None, error: error.clone() });
        } else {
            eprintln!("jdbc-sink verify --repair: {e}");
        }
        return ExitCode::from(2);
    }
    if !args.json {
        for a in &repair {
            println!("REPAIR   {}: {} keys asked for in {} signal(s): {}", a.table, a.keys, a.signals.len(), a.signals.join(", "));
        }
    }
    let ids: Vec<String> = repair.iter().flat_map(|a| a.signals.clone()).collect();
    let waited = match &args.signal_url {
        Some(url) => wait_done(url, &ids, Duration::from_secs(args.repair_wait_secs)).await,
        None => Ok(()),
    };
    if let Err(e) = waited {
        if args.json {
            print_json(&RepairReport { before, repair, after: None, error: Some(e) });
        } else {
            eprintln!("jdbc-sink verify --repair: {e}");
        }
        return ExitCode::from(2);
    }
    let mut again = args.clone();
    again.tables = before.tables.iter().filter(|t| t.mismatching_rows > 0).map(|t| t.table.clone()).collect();
    let after = verify(settings, &again).await;
    let code = match after.result {
        "equal" => 0,
        "mismatch" => 1,
        _ => 2,
    };
    if args.json {
        print_json(&RepairReport { before, repair, after: Some(after), error: None });
    } else {
        println!("after the repair:");
        print!("{}", text_report(&after));
    }
    ExitCode::from(code)
}

fn print_json<T: Serialize>(v: &T) {
    match serde_json::to_string_pretty(v) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("jdbc-sink verify: cannot write the report: {e}"),
    }
}

/// Sends one signal per mismatching range; what was asked, per table.
async fn ask(args: &VerifyArgs, report: &Report) -> Result<Vec<Asked>, String> {
    let url = ConnectionUrl::parse(&args.source_url).map_err(|e| format!("--source-url: {e}"))?;
    let db = url.database.clone().ok_or("--source-url names no database")?;
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    let mut conn = match &args.signal_table {
        Some(_) => Some(
            mysql_async::Conn::new(url.opts(args.source_user.as_deref(), args.source_password.as_ref()))
                .await
                .map_err(|e| format!("cannot connect to the source to write signals: {e}"))?,
        ),
        None => None,
    };
    let client = reqwest::Client::new();
    let mut out = Vec::new();
    for t in report.tables.iter().filter(|t| t.mismatching_rows > 0) {
        let collection = format!("{db}.{}", t.table);
        let mut asked = Asked { table: t.table.clone(), signals: Vec::new(), keys: 0 };
        for (i, range) in t.mismatches.iter().enumerate().filter(|(_, r)| !r.key_values.is_empty()) {
            let id = format!("verify-repair-{stamp}-{}-{i}", t.table);
            let data = json!({
                "data-collections": [collection],
                "type": "incremental",
                "additional-conditions": [{"data-collection": collection, "keys": range.key_values}],
            });
            match (&args.signal_url, &args.signal_table, conn.as_mut()) {
                (Some(base), _, _) => post(&client, base, &id, &data).await?,
                (None, Some(table), Some(c)) => insert(c, &db, table, &id, &data).await?,
                _ => unreachable!("checked in run"),
            }
            asked.keys += range.key_values.len();
            asked.signals.push(id);
        }
        out.push(asked);
    }
    Ok(out)
}

async fn post(client: &reqwest::Client, base: &str, id: &str, data: &serde_json::Value) -> Result<(), String> {
    let url = format!("{}/signals", base.trim_end_matches('/'));
    let body = json!({"id": id, "type": "execute-snapshot", "data": data});
    let r = client.post(&url).json(&body).send().await.map_err(|e| format!("POST {url}: {e} (check --signal-url: cdc-source's http.listen)"))?;
    let code = r.status();
    let answer: serde_json::Value = r.json().await.unwrap_or_default();
    if !code.is_success() {
        return Err(format!("POST {url} answered {code}: {}", answer["error"].as_str().unwrap_or("")));
    }
    Ok(())
}

async fn insert(conn: &mut mysql_async::Conn, db: &str, table: &str, id: &str, data: &serde_json::Value) -> Result<(), String> {
    let (sdb, stable) = table.split_once('.').unwrap_or((db, table));
    let sql = format!("INSERT INTO {}.{} (id, type, data) VALUES (?, 'execute-snapshot', ?)", cdc_schema::quote_ident(sdb), cdc_schema::quote_ident(stable));
    conn.exec_drop(sql, (id, data.to_string()))
        .await
        .map_err(|e| format!("cannot insert the signal into {sdb}.{stable}: {e} (check --signal-table and that the source account may INSERT into it)"))
}

/// Waits until the source's `/status` lists none of the incremental snapshots `ids` asked for.
async fn wait_done(base: &str, ids: &[String], within: Duration) -> Result<(), String> {
    let url = format!("{}/status", base.trim_end_matches('/'));
    let deadline = Instant::now() + within;
    loop {
        let pending = match reqwest::get(&url).await {
            Ok(r) => r.json::<serde_json::Value>().await.ok().map(|s| {
                s["incremental_snapshots"]
                    .as_array()
                    .map(|a| a.iter().filter(|x| x["id"].as_str().is_some_and(|i| ids.iter().any(|id| id == i))).count())
                    .unwrap_or(0)
            }),
            Err(_) => None,
        };
        if pending == Some(0) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("the source had not finished the repair snapshots after {within:?} (GET {url}); verify again later"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
