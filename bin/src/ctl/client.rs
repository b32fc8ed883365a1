//! Talking to the main process over its command socket.

use std::io::{ErrorKind, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use sluice_command::channel::{Channel, ChannelError, CONTROL_MAX_FRAME_SIZE};
use sluice_command::proto::{self, response_content::ContentType, Request, Response};

use super::output;

type CtlChannel = Channel<Request, Response>;

/// Sends one request and waits up to `timeout` for its final answer.
pub(crate) fn send(
    socket: &Path,
    request: &Request,
    timeout: Duration,
) -> anyhow::Result<Response> {
    let mut channel = connect(socket)?;
    write(&mut channel, request)?;
    loop {
        let response = match channel.read_message_timeout(timeout) {
            Ok(response) => response,
            Err(ChannelError::Timeout) => {
                bail!(
                    "timeout: no answer from the main process within {}s",
                    timeout.as_secs()
                )
            }
            Err(ChannelError::Eof) => {
                bail!("the main process closed the connection without answering")
            }
            Err(error) => return Err(error).context("cannot read the answer"),
        };
        // A PROCESSING answer only says that work goes on: wait for the final one.
        if response.status != proto::ResponseStatus::Processing as i32 {
            return Ok(response);
        }
    }
}

/// Subscribes to events and prints each as it arrives until the main process goes away.
pub(crate) fn stream_events(socket: &Path, request: &Request, json: bool) -> anyhow::Result<()> {
    let mut channel = connect(socket)?;
    write(&mut channel, request)?;
    let stdout = std::io::stdout();
    loop {
        let response = match channel.read_message() {
            Ok(response) => response,
            Err(ChannelError::Eof) => bail!("the main process closed the event stream"),
            Err(error) => return Err(error).context("cannot read events"),
        };
        if response.status == proto::ResponseStatus::Failure as i32 {
            bail!("{}", response.message);
        }
        let event = match response.content.and_then(|c| c.content_type) {
            Some(ContentType::Event(event)) => event,
            // The acknowledgement of the subscription carries no event.
            _ => continue,
        };
        let line = if json {
            super::json::event_json(&event).to_string()
        } else {
            output::event_line(&event)
        };
        let mut out = stdout.lock();
        // A closed stdout (e.g. `| head`) ends the stream quietly.
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            return Ok(());
        }
    }
}

fn connect(socket: &Path) -> anyhow::Result<CtlChannel> {
    match UnixStream::connect(socket) {
        Ok(stream) => Ok(Channel::new(stream).with_max_frame_size(CONTROL_MAX_FRAME_SIZE)),
        Err(error)
            if matches!(
                error.kind(),
                ErrorKind::NotFound | ErrorKind::ConnectionRefused
            ) =>
        {
            bail!(
                "no Sluice main process answers on {} ({error}); start one with `sluice start`, \
                 or point at its socket with -s SOCKET or -c CONFIG",
                display_path(socket)
            )
        }
        Err(error) => {
            Err(error).with_context(|| format!("cannot connect to {}", display_path(socket)))
        }
    }
}

fn write(channel: &mut CtlChannel, request: &Request) -> anyhow::Result<()> {
    channel
        .write_message(request)
        .context("cannot send the request")?;
    while !channel.flush().context("cannot send the request")? {}
    Ok(())
}

/// The socket path as the user should read it: absolute when it was relative.
fn display_path(socket: &Path) -> String {
    if socket.is_relative() {
        if let Ok(cwd) = std::env::current_dir() {
            return cwd.join(socket).display().to_string();
        }
    }
    socket.display().to_string()
}
