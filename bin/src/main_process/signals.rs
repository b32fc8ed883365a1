//! Signals: SIGHUP reloads the config file, SIGUSR1 reopens the access log, SIGTERM stops
//! softly, SIGINT at once.
//!
//! The signals are blocked in every thread (before any is spawned) and
//! received synchronously by one dedicated thread, so no code runs in a
//! signal handler.

use std::sync::Arc;
use std::thread;

use anyhow::Context;
use log::{error, info};

use super::{lock, reload, MainProcess, StopKind};
use crate::sys::SignalSet;

/// The blocked set of signals the main process handles.
pub(crate) type Signals = SignalSet;

/// Blocks SIGHUP, SIGUSR1, SIGTERM and SIGINT; call before spawning any thread.
pub(crate) fn block_signals() -> std::io::Result<Signals> {
    SignalSet::block(&[libc::SIGHUP, libc::SIGUSR1, libc::SIGTERM, libc::SIGINT])
}

/// Spawns the thread that acts on the signals.
pub(crate) fn spawn_handler(main: Arc<MainProcess>, signals: Signals) -> anyhow::Result<()> {
    thread::Builder::new()
        .name("signals".to_owned())
        .spawn(move || loop {
            match signals.wait() {
                Ok(libc::SIGHUP) => {
                    info!("SIGHUP: reloading the configuration");
                    // A refused reload is logged at error level and sent as an event.
                    let response = reload::reload(&main, None, false);
                    sluice_lib::sys::release_free_memory();
                    if response.status == sluice_command::proto::ResponseStatus::Ok as i32 {
                        info!("reload: {}", response.message);
                    }
                }
                Ok(libc::SIGUSR1) => {
                    info!("SIGUSR1: reopening the access log");
                    let config = lock(&main.config).clone();
                    if let Err(error) = main.apply_logging(&config) {
                        error!("{error}");
                    }
                }
                Ok(libc::SIGTERM) => main.request_stop(StopKind::Soft),
                Ok(libc::SIGINT) => main.request_stop(StopKind::Hard),
                Ok(other) => error!("unexpected signal {other}"),
                Err(error) => {
                    error!("cannot wait for signals: {error}");
                    return;
                }
            }
        })
        .context("cannot spawn the signal thread")?;
    Ok(())
}
