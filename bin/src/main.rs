//! The `sluice` binary: one executable for the main process, its workers and
//! the `ctl` client. Each subcommand lives in its own module; this file only
//! declares the command line and dispatches.
#![forbid(unsafe_code)]

mod config_check;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

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
    /// Work with configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
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
    match Cli::parse().command {
        Command::Config(ConfigCommand::Check { file }) => config_check::run(&file),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn config_check_takes_a_file() {
        let cli = Cli::try_parse_from(["sluice", "config", "check", "a.toml"]).expect("valid");
        let Command::Config(ConfigCommand::Check { file }) = cli.command;
        assert_eq!(file, PathBuf::from("a.toml"));
        assert!(Cli::try_parse_from(["sluice", "config", "check"]).is_err());
    }
}
