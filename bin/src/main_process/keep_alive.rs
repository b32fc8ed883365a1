//! Answers that take long keep their ctl connection alive: while a request is being
//! served, the client gets a PROCESSING frame every [`KEEP_ALIVE_INTERVAL`], so that
//! `sluice ctl --timeout` counts silence, not the length of the work (a reload of
//! 10 000 clusters, workers that are slow to answer).

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use sluice_command::proto::{self, Response};

/// How often a client waiting for a long answer hears that main is still working.
/// Below ctl's smallest useful timeout (a second), cheap enough to send often.
pub(crate) const KEEP_ALIVE_INTERVAL: Duration = Duration::from_millis(250);

/// A frame that only says the work goes on.
pub(crate) fn processing(elapsed: Duration) -> Response {
    Response {
        status: proto::ResponseStatus::Processing as i32,
        message: format!("still working ({:.1}s)", elapsed.as_secs_f64()),
        content: None,
    }
}

/// Runs `work` on a thread of its own and calls `send_progress` with a PROCESSING
/// frame every `interval` until it returns; gives its answer. If `send_progress` fails
/// (the client left), the work still runs to its end: a change is never cut half-way.
pub(crate) fn serve_with_progress<F, P>(
    interval: Duration,
    work: F,
    mut send_progress: P,
) -> Response
where
    F: FnOnce() -> Response + Send,
    P: FnMut(Response) -> bool,
{
    let started = std::time::Instant::now();
    thread::scope(|scope| {
        let (done, answer) = mpsc::sync_channel(1);
        let spawned = thread::Builder::new()
            .name("ctl-work".to_owned())
            .spawn_scoped(scope, move || {
                let _ = done.send(work());
            });
        if let Err(error) = spawned {
            return crate::main_process::dispatch::failure(&format!(
                "cannot start serving the request: {error}"
            ));
        }
        let mut client_here = true;
        loop {
            match answer.recv_timeout(interval) {
                Ok(response) => return response,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if client_here {
                        client_here = send_progress(processing(started.elapsed()));
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return crate::main_process::dispatch::failure(
                        "the request failed while it was served",
                    )
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::main_process::dispatch::ok;

    #[test]
    fn a_quick_answer_sends_no_progress() {
        let mut frames = 0;
        let response = serve_with_progress(
            Duration::from_secs(5),
            || ok("done"),
            |_| {
                frames += 1;
                true
            },
        );
        assert_eq!(response.message, "done");
        assert_eq!(frames, 0);
    }

    #[test]
    fn a_long_answer_is_preceded_by_processing_frames() {
        let mut frames = Vec::new();
        let response = serve_with_progress(
            Duration::from_millis(10),
            || {
                thread::sleep(Duration::from_millis(200));
                ok("done")
            },
            |frame| {
                frames.push(frame.status);
                true
            },
        );
        assert_eq!(response.message, "done");
        assert!(!frames.is_empty());
        assert!(frames
            .iter()
            .all(|status| *status == proto::ResponseStatus::Processing as i32));
    }

    #[test]
    fn a_client_gone_stops_the_frames_not_the_work() {
        let mut frames = 0;
        let response = serve_with_progress(
            Duration::from_millis(10),
            || {
                thread::sleep(Duration::from_millis(100));
                ok("done")
            },
            |_| {
                frames += 1;
                false
            },
        );
        assert_eq!(response.message, "done");
        assert_eq!(frames, 1);
    }
}
