//! The `sluice` binary: `sluice start` runs the main process, which spawns
//! and supervises the workers (`sluice worker`, hidden) and serves the command
//! socket that `sluice ctl` talks to. See `shared/ARCHITECTURE.md`, "Processes".
#![deny(unsafe_code)]

mod ctl;
mod demo;
mod main_process;
mod sys;
mod worker_command;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Command line of `sluice`.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about = "A reverse proxy and load balancer for TCP and HTTP/1.1")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands of `sluice`.
#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the main process and its workers.
    Start {
        /// The config file (default: the embedded default config).
        #[arg(short = 'c', long)]
        config: Option<PathBuf>,
    },
    /// Talks to a running main process.
    Ctl(ctl::CtlArgs),
    /// Runs Sluice on the default config with two built-in demo backends.
    Demo,
    /// A worker process (started by the main process).
    #[command(hide = true)]
    Worker(worker_command::WorkerArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Start { config } => main_process::start(config.as_deref()),
        Command::Ctl(args) => ctl::run(args),
        Command::Demo => demo::run(),
        Command::Worker(args) => worker_command::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr with `level` unless `RUST_LOG` says otherwise; each line
/// names the process (`main` or `worker N`) because workers share the terminal.
fn init_logging(level: &str, process: &str) {
    let process = process.to_owned();
    let mut builder = env_logger::Builder::new();
    builder.parse_filters(level);
    if let Ok(filters) = std::env::var("RUST_LOG") {
        builder.parse_filters(&filters);
    }
    builder.format(move |buf, record| {
        writeln!(
            buf,
            "{} {:<5} [{}] {}",
            buf.timestamp_millis(),
            record.level(),
            process,
            record.args()
        )
    });
    // A second initialization (the demo starts the main process in-process) keeps the first.
    let _ = builder.try_init();
}
