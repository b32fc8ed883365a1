//! The worker's entry point, called by the `sluice worker` subcommand.

use sluice_command::channel::Channel;
use sluice_command::proto::{WorkerMessage, WorkerRequest};

use crate::server::{Server, ServerError, WorkerOptions};

/// Runs a worker on `channel` until it is told to stop or the main process goes away.
pub fn run(
    channel: Channel<WorkerMessage, WorkerRequest>,
    options: WorkerOptions,
) -> Result<(), ServerError> {
    log::info!(
        "worker {} starting (pid {})",
        options.id,
        std::process::id()
    );
    let id = options.id;
    let mut server = Server::new(options, channel.accepting_fds())?;
    server.run()?;
    log::info!("worker {id} stopped");
    Ok(())
}
