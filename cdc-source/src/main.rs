//! `cdc-source`: the binary. `cdc-source --config F` runs the source; `cdc-source check --config F`
//! runs only the preflight checks; `cdc-source watch TOPIC…` prints the records of topics decoded
//! (see [`cdc_source::watch`]; it reads only the Kafka and registry addresses of the config, so it
//! needs neither a config file nor a `connection.url`). Exit codes: 0 after a clean shutdown
//! (SIGTERM/SIGINT), 1 on a definite error (the message says what to do), 2 on a config error.

use std::path::PathBuf;
use std::sync::Arc;

use cdc_source::config::SourceConfig;
use cdc_source::metrics::SourceMetrics;
use cdc_source::status::Status;
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "cdc-source", version, about = "MariaDB binlog to Kafka change-data-capture source")]
struct Cli {
    /// TOML config file, or a Kafka Connect connector JSON.
    #[arg(long, global = true, env = "CDC_SOURCE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the source (the default).
    Run,
    /// Validate the config and run the preflight checks, then exit.
    Check,
    /// Print the records of topics decoded, one JSON object per line.
    Watch(cdc_source::watch::WatchArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Watch(args)) = &cli.command {
        return cdc_source::watch::main(cli.config.as_deref(), args);
    }
    let cfg = match SourceConfig::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cdc-source: config error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    cdc_common::init_logging(cfg.log_format);
    if !cfg.ignored.is_empty() {
        tracing::warn!(keys = %cfg.ignored.join(", "), "config keys ignored: they have no meaning for a binlog source");
    }
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cdc-source: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        match cli.command {
            Some(Command::Check) => cdc_source::app::check(&cfg).await.map(|stored| {
                match stored {
                    Some(s) => println!("ok: preflight passed; will resume after GTID {} ({})", s.gtid, s.binlog),
                    None => println!("ok: preflight passed; no stored position, snapshot.mode={:?}", cfg.snapshot_mode),
                }
            }),
            _ => serve(cfg).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "cdc-source stopped");
            eprintln!("cdc-source: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(cfg: SourceConfig) -> Result<(), cdc_source::error::SourceError> {
    let shutdown = cdc_common::shutdown_on_signals();
    let mut registry = cdc_common::Registry::default();
    let metrics = SourceMetrics::register(&mut registry);
    let status = Arc::new(Status::default());
    let connector = cdc_source::status::connector(&cfg);
    let (signal_routes, posted) = cdc_source::incremental::http::routes(metrics.clone());
    let http = cdc_common::serve_http(&cfg.http_listen, Arc::new(registry), status.clone(), connector, signal_routes, shutdown.clone())
        .await
        .map_err(cdc_source::error::SourceError::Http)?;
    tracing::info!(name = %cfg.name, http = %http.local_addr, "cdc-source starting");
    let result = cdc_source::app::run(&cfg, metrics, &status, &shutdown, Some(posted)).await;
    if let Err(e) = &result {
        let text = e.to_string();
        status.update(|s| {
            s.state = "failed";
            s.last_error = Some(text);
        });
        http.linger_after_failure(cfg.http_failed_linger, &shutdown).await;
    }
    shutdown.cancel();
    let _ = http.task.await;
    result
}
