//! `sluice worker` (hidden): the entry point of a worker process that the main
//! process re-executes with one end of a socketpair as its channel.

use std::os::fd::RawFd;

use anyhow::Context;
use clap::Args;
use sluice_command::channel::{Channel, CONTROL_MAX_FRAME_SIZE};
use sluice_command::config::{AccessLogFormat, AccessLogTarget};
use sluice_lib::server::WorkerOptions;

use crate::sys;

/// Arguments of `sluice worker`, set by the main process.
#[derive(Debug, Args)]
pub(crate) struct WorkerArgs {
    /// The worker's id, kept across respawns.
    #[arg(long)]
    pub(crate) id: u32,
    /// The inherited file descriptor of the channel to the main process.
    #[arg(long)]
    pub(crate) channel_fd: RawFd,
    /// Most client connections open at once.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) max_connections: usize,
    /// Size of each pooled buffer, in bytes.
    #[arg(long, default_value_t = 16_384)]
    pub(crate) buffer_size: usize,
    /// Log filter (`error`, `warn`, `info`, `debug`, `trace`); RUST_LOG wins when set.
    #[arg(long, default_value = "info")]
    pub(crate) log_level: String,
    /// Access log: `stdout`, `off` or a file path.
    #[arg(long, default_value = "off")]
    pub(crate) access_log: String,
    /// Access log format: `text` or `json`.
    #[arg(long, default_value = "text")]
    pub(crate) access_log_format: String,
}

/// Runs the worker until its channel closes or it is told to stop.
pub(crate) fn run(args: WorkerArgs) -> anyhow::Result<()> {
    crate::init_logging(&args.log_level, &format!("worker {}", args.id));
    let stream = sys::inherited_stream(args.channel_fd)
        .context("cannot open the channel to the main process")?;
    let channel = Channel::new(stream).with_max_frame_size(CONTROL_MAX_FRAME_SIZE);
    let options = WorkerOptions {
        id: args.id,
        buffer_size: args.buffer_size,
        max_connections: args.max_connections,
        access_log: AccessLogTarget::from_arg(&args.access_log),
        access_log_format: AccessLogFormat::from_arg(&args.access_log_format),
    };
    sluice_lib::worker::run(channel, options).with_context(|| format!("worker {} failed", args.id))
}
