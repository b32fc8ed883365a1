//! Signals: SIGHUP reloads the config file, SIGTERM stops softly, SIGINT at once.
//!
//! The signals are blocked in every thread (before any is spawned) and
//! received synchronously by one dedicated thread, so no code runs in a
//! signal handler.

use std::sync::Arc;
use std::thread;

use anyhow::Context;
use log::{error, info};

use super::{reload, MainProcess, StopKind};
use crate::sys::SignalSet;

/// The blocked set of signals the main process handles.
pub(crate) type Signals = SignalSet;

/// Blocks SIGHUP, SIGTERM and SIGINT; call before spawning any thread.
pub(crate) fn block_signals() -> std::io::Result<Signals> {
    SignalSet::block(&[libc::SIGHUP, libc::SIGTERM, libc::SIGINT])
}

/// Spawns the thread that acts on the signals.
pub(crate) fn spawn_handler(main: Arc<MainProcess>, signals: Signals) -> anyhow::Result<()> {
    thread::Builder::new()
        .name("signals".to_owned())
        .spawn(move || loop {
            match signals.wait() {
                Ok(libc::SIGHUP) => {
                    info!("SIGHUP: reloading the configuration");
                    let response = reload::reload(&main, None, false);
                    info!("reload: {}", response.message);
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
