//! The Unix command socket: each `sluice ctl` connection is a
//! `Channel<Response, Request>` served by its own thread.

use std::io::{ErrorKind, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use anyhow::{bail, Context};
use log::{debug, error, warn};
use sluice_command::channel::{Channel, ChannelError, CONTROL_MAX_FRAME_SIZE};
use sluice_command::proto::{self, request::RequestType, Request, Response};

use super::{dispatch, MainProcess, StopKind};

type ClientChannel = Channel<Response, Request>;

/// How often an idle event subscriber is checked for having gone away.
const SUBSCRIBER_CHECK: Duration = Duration::from_secs(1);

/// Binds the command socket with mode 0600. A socket file left by a dead
/// instance is replaced; one a live instance answers on is refused.
pub(crate) fn bind(path: &Path) -> anyhow::Result<UnixListener> {
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            bail!(
                "another Sluice main process is running: it answers on {}; stop it first \
                 (`sluice ctl -s {} shutdown`) or use another command_socket",
                path.display(),
                path.display()
            );
        }
        warn!("removing the stale command socket {}", path.display());
        std::fs::remove_file(path).with_context(|| format!("cannot remove {}", path.display()))?;
    }
    let listener = UnixListener::bind(path)
        .with_context(|| format!("cannot bind the command socket {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot restrict the permissions of {}", path.display()))?;
    Ok(listener)
}

/// Identifies the socket file this process bound, so that exiting never
/// removes the socket of an instance that replaced a stale one meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SocketIdentity {
    device: u64,
    inode: u64,
}

/// The identity of the socket file at `path`, if it exists.
pub(crate) fn identity(path: &Path) -> Option<SocketIdentity> {
    let metadata = std::fs::symlink_metadata(path).ok()?;
    Some(SocketIdentity {
        device: metadata.dev(),
        inode: metadata.ino(),
    })
}

/// Removes the command socket file at exit, if it is still the one bound.
pub(crate) fn remove_socket(path: &Path, bound: Option<SocketIdentity>) {
    if identity(path) != bound {
        return;
    }
    if let Err(error) = std::fs::remove_file(path) {
        if error.kind() != ErrorKind::NotFound {
            warn!(
                "cannot remove the command socket {}: {error}",
                path.display()
            );
        }
    }
}

/// Accepts clients on a thread of its own.
pub(crate) fn serve(main: Arc<MainProcess>, listener: UnixListener) -> anyhow::Result<()> {
    thread::Builder::new()
        .name("command-socket".to_owned())
        .spawn(move || {
            for stream in listener.incoming() {
                match stream {
                    Ok(stream) => spawn_client(Arc::clone(&main), stream),
                    Err(error) => error!("command socket: cannot accept: {error}"),
                }
            }
        })
        .context("cannot spawn the command socket thread")?;
    Ok(())
}

fn spawn_client(main: Arc<MainProcess>, stream: UnixStream) {
    let spawned = thread::Builder::new()
        .name("ctl-client".to_owned())
        .spawn(move || {
            let channel = Channel::new(stream).with_max_frame_size(CONTROL_MAX_FRAME_SIZE);
            serve_client(&main, channel)
        });
    if let Err(error) = spawned {
        error!("cannot spawn a thread for a ctl client: {error}");
    }
}

fn serve_client(main: &MainProcess, mut channel: ClientChannel) {
    loop {
        let request = match channel.read_message() {
            Ok(request) => request,
            Err(ChannelError::Eof) => return,
            Err(error) => {
                debug!("ctl client: {error}");
                return;
            }
        };
        if let Some(RequestType::SubscribeEvents(subscribe)) = &request.request_type {
            stream_events(main, channel, subscribe.per_worker.unwrap_or(false));
            return;
        }
        let response = super::keep_alive::serve_with_progress(
            super::keep_alive::KEEP_ALIVE_INTERVAL,
            || dispatch::dispatch(main, &request),
            |frame| write(&mut channel, &frame).is_ok(),
        );
        if let Err(error) = write(&mut channel, &response) {
            debug!("ctl client went away before its answer: {error}");
            return;
        }
        let succeeded = response.status == proto::ResponseStatus::Ok as i32;
        // Freed before the memory is handed back below: the metrics of 10 000 clusters
        // are hundreds of thousands of small allocations.
        drop(response);
        if matches!(
            request.request_type,
            Some(
                RequestType::QueryMetrics(_)
                    | RequestType::QueryClusters(_)
                    | RequestType::ReloadConfiguration(_)
                    | RequestType::LoadState(_)
            )
        ) {
            // The answer and what it was built from (every worker's metrics of 10 000
            // clusters, a reload's parse) are gone: the resident size should not stay at
            // this peak. Done after answering, so that the answer does not wait for it.
            sluice_lib::sys::release_free_memory();
        }
        // Only now, so that the client gets its answer before main exits.
        if succeeded {
            match request.request_type {
                Some(RequestType::SoftStop(_)) => main.request_stop(StopKind::Soft),
                Some(RequestType::HardStop(_)) => main.request_stop(StopKind::Hard),
                Some(RequestType::UpgradeMain(_)) => main.request_stop(StopKind::HandedOver),
                _ => {}
            }
        }
    }
}

fn stream_events(main: &MainProcess, mut channel: ClientChannel, per_worker: bool) {
    let events = main.events.subscribe(per_worker);
    let ack = dispatch::ok("subscribed to events");
    if write(&mut channel, &ack).is_err() {
        return;
    }
    loop {
        match events.recv_timeout(SUBSCRIBER_CHECK) {
            Ok(event) => {
                let response = dispatch::with_content(
                    dispatch::ok(""),
                    proto::response_content::ContentType::Event(event),
                );
                let written = write(&mut channel, &response);
                main.events.delivered();
                if written.is_err() {
                    return;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) if peer_is_open(channel.stream()) => {}
            Err(_) => return,
        }
    }
}

/// A subscriber sends nothing after subscribing: a readable end of stream means it left.
fn peer_is_open(stream: &UnixStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return false;
    }
    let mut byte = [0u8; 1];
    let open = match (&*stream).read(&mut byte) {
        Ok(0) => false,
        Ok(_) => true,
        Err(error) => error.kind() == ErrorKind::WouldBlock,
    };
    open && stream.set_nonblocking(false).is_ok()
}

fn write(channel: &mut ClientChannel, response: &Response) -> Result<(), ChannelError> {
    channel.write_message(response)?;
    while !channel.flush()? {}
    Ok(())
}
