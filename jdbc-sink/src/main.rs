//! `jdbc-sink`: the binary. `jdbc-sink --config sink.toml` runs the sink;
//! `jdbc-sink check --config sink.toml` validates the config and reachability and exits;
//! `jdbc-sink verify --config sink.toml --source-url …` compares the source tables with their
//! mirror tables (see [`verify`]).
//! The config may also be a Kafka Connect connector JSON; see the library's `config` module.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use jdbc_sink::config::Settings;

mod verify;

#[derive(Debug, Parser)]
#[command(
    name = "jdbc-sink",
    version,
    about = "Kafka topics to MariaDB mirror tables, exactly once"
)]
struct Cli {
    /// TOML config or Kafka Connect connector JSON; keys can be overridden by CDC_SINK_* variables.
    #[arg(long, short, env = "CDC_SINK_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the sink (the default).
    Run,
    /// Validate the config and check that the database, Kafka and the registry are reachable.
    Check,
    /// Compare source tables with their mirror tables, chunk by chunk, while the pipeline runs;
    /// exit 0 (equal), 1 (rows differ) or 2 (could not verify).
    Verify(Box<verify::VerifyArgs>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("jdbc-sink: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    // verify writes its report to stdout, alone.
    if !matches!(cli.command, Some(Command::Verify(_))) {
        cdc_common::init_logging(settings.log_format);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("jdbc-sink: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command.unwrap_or(Command::Run) {
        Command::Check => runtime.block_on(check(&settings)),
        Command::Run => runtime.block_on(run(settings)),
        Command::Verify(args) => runtime.block_on(verify::run(&settings, &args)),
    }
}

async fn check(settings: &Settings) -> ExitCode {
    println!("config: valid (consumer group {})", settings.group_id());
    if !settings.ignored.is_empty() {
        println!(
            "config: ignored keys without meaning here: {}",
            settings.ignored.join(", ")
        );
    }
    let mut ok = true;
    for r in jdbc_sink::check::run_checks(settings).await {
        match r.outcome {
            Ok(msg) => println!("ok    {}: {msg}", r.what),
            Err(msg) => {
                ok = false;
                println!("FAIL  {}: {msg}", r.what);
            }
        }
        for note in r.notes {
            println!("note  {}: {note}", r.what);
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn run(settings: Settings) -> ExitCode {
    if !settings.ignored.is_empty() {
        tracing::warn!(keys = %settings.ignored.join(", "), "config keys ignored: they have no meaning for this sink");
    }
    tracing::info!(
        name = settings.name,
        group = settings.group_id(),
        database = settings.database,
        "starting jdbc-sink"
    );
    let shutdown = cdc_common::shutdown_on_signals();
    match jdbc_sink::run(settings, shutdown).await {
        Ok(()) => {
            tracing::info!("stopped cleanly");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "jdbc-sink stopped");
            eprintln!("jdbc-sink: {e}");
            ExitCode::FAILURE
        }
    }
}
