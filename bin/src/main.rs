//! The `sluice` binary: one executable for the main process, its workers and
//! the `ctl` client. `sluice start` runs the main process, which spawns and
//! supervises the workers (`sluice worker`, hidden) and serves the command
//! socket that `sluice ctl` talks to (see `shared/ARCHITECTURE.md`,
//! "Processes"). Each subcommand lives in its own module; this file only
//! declares the command line and dispatches.
// Denied rather than forbidden so that `sys`, the one module of OS calls, can allow it.
#![deny(unsafe_code)]

mod cli_docs;
mod config_check;
mod ctl;
mod demo;
mod main_process;
mod notify;
mod stdout;
mod sys;
mod worker_command;

use std::io::Write;
use std::{path::PathBuf, process::ExitCode};

use clap::{CommandFactory, Parser, Subcommand};

/// Sluice, a reverse proxy and load balancer for TCP and HTTP/1.1.
#[derive(Debug, Parser)]
#[command(name = "sluice", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// What to do. One variant per top-level subcommand.
#[derive(Debug, Subcommand)]
enum Command {
    /// Run the main process and its workers.
    Start {
        /// The config file (default: the embedded default config).
        #[arg(short = 'c', long)]
        config: Option<PathBuf>,
    },
    /// Talk to a running main process.
    Ctl(Box<ctl::CtlArgs>),
    /// Run Sluice on the default config with two built-in demo backends.
    Demo,
    /// Work with configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print a shell completion script.
    ///
    /// For example: `sluice completions bash > /etc/bash_completion.d/sluice`.
    Completions {
        /// The shell: bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page sluice(1) in roff.
    ///
    /// With --dir, write it and one page per subcommand (sluice-ctl.1, …) there.
    Man {
        /// Write the pages into this folder instead.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Work with etcd, the source of clusters shared by several instances.
    #[command(subcommand)]
    Etcd(EtcdCommand),
    /// A worker process (started by the main process).
    #[command(hide = true)]
    Worker(worker_command::WorkerArgs),
}

/// `sluice etcd …`
#[derive(Debug, Subcommand)]
enum EtcdCommand {
    /// Write every cluster of a config file to etcd (its `[etcd]` table says where), each
    /// as the document of its key, in one transaction.
    Push {
        /// The TOML configuration file.
        #[arg(short = 'c', long)]
        config: PathBuf,
    },
}

/// `sluice config …`
#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Check a configuration file and print what it sets up.
    ///
    /// Exits 0 when the file is valid, 1 with FILE:LINE:COLUMN: KEY: message
    /// on stderr when it is not.
    Check {
        /// The TOML configuration file.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Config(ConfigCommand::Check { file }) => return config_check::run(&file),
        Command::Start { config } => main_process::start(config.as_deref()),
        Command::Ctl(args) => ctl::run(*args),
        Command::Demo => demo::run(),
        Command::Completions { shell } => cli_docs::print_completions(Cli::command(), shell),
        Command::Man { dir } => cli_docs::man(Cli::command(), dir.as_deref()),
        Command::Etcd(EtcdCommand::Push { config }) => main_process::etcd_push(&config),
        Command::Worker(args) => worker_command::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // Already printed as `{"error": "…"}` by `ctl --json`.
        Err(error) if error.downcast_ref::<ctl::Reported>().is_some() => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr with `level` unless `RUST_LOG` says otherwise; each line
/// names the process (`main` or `worker N`) because workers share the terminal.
/// Without `RUST_LOG`, the level is the `log` crate's maximum level, which a reload
/// changes live (`log::set_max_level`).
fn init_logging(level: &str, process: &str) {
    let process = process.to_owned();
    let mut builder = env_logger::Builder::new();
    let rust_log = std::env::var("RUST_LOG").ok();
    match &rust_log {
        Some(filters) => {
            builder.parse_filters(level);
            builder.parse_filters(filters);
        }
        None => {
            builder.filter_level(log::LevelFilter::Trace);
        }
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
    // A second initialization keeps the first.
    if builder.try_init().is_ok() && rust_log.is_none() {
        log::set_max_level(level.parse().unwrap_or(log::LevelFilter::Info));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn config_check_takes_a_file() {
        let cli = Cli::try_parse_from(["sluice", "config", "check", "a.toml"]).expect("valid");
        let Command::Config(ConfigCommand::Check { file }) = cli.command else {
            panic!("not config check");
        };
        assert_eq!(file, PathBuf::from("a.toml"));
        assert!(Cli::try_parse_from(["sluice", "config", "check"]).is_err());
    }

    #[test]
    fn worker_takes_its_id_and_channel_fd() {
        let cli = Cli::try_parse_from(["sluice", "worker", "--id", "3", "--channel-fd", "7"])
            .expect("valid");
        let Command::Worker(args) = cli.command else {
            panic!("not worker");
        };
        assert_eq!((args.id, args.channel_fd, args.buffer_size), (3, 7, 16_384));
    }
}
