//! Asking the workers: a request (or a batch of them) encoded once, sent to the
//! chosen workers, and their answers matched by worker and request id, waited for up
//! to a timeout; answers routed by each worker's supervisor as they arrive.

use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use log::debug;
use sluice_command::channel::EncodedFrame;
use sluice_command::proto::{self, Request, WorkerResponse, WorkerRunState};

use super::{flush_blocking, lock, WorkerOutcome, WorkerPool};

/// A worker's answer (or why there is none), by the worker's id.
pub(super) type Delivery = (u32, Result<WorkerResponse, String>);

/// What [`WorkerPool::send`] sends: one request, or several as one batch.
#[derive(Debug, Clone, Copy)]
enum Outgoing<'a> {
    One(&'a Request),
    Batch(&'a [Request]),
}

impl<'a> Outgoing<'a> {
    /// The requests sent, for the listening sockets they hand over.
    fn requests(self) -> &'a [Request] {
        match self {
            Outgoing::One(one) => std::slice::from_ref(one),
            Outgoing::Batch(many) => many,
        }
    }
}

/// A request sent to some workers, whose answers [`WorkerPool::collect`] waits for.
struct Asked {
    request_id: String,
    /// The workers it was sent to.
    expected: Vec<u32>,
    /// The workers it could not be sent to, and why.
    outcomes: Vec<WorkerOutcome>,
    answers: mpsc::Receiver<Delivery>,
}

impl WorkerPool {
    /// Sends `request` to every running worker and waits for all answers, up to `timeout`.
    pub(crate) fn broadcast(&self, request: &Request, timeout: Duration) -> Vec<WorkerOutcome> {
        self.ask(Outgoing::One(request), timeout, |_| true)
    }

    /// Sends `requests` as one batch to every running worker and waits for all answers,
    /// up to `timeout`. The batch is encoded from `requests`, never copied.
    pub(crate) fn broadcast_batch(
        &self,
        requests: &[Request],
        timeout: Duration,
    ) -> Vec<WorkerOutcome> {
        self.ask(Outgoing::Batch(requests), timeout, |_| true)
    }

    /// Sends `request` to worker `worker_id` only; a worker that is not running fails it.
    pub(crate) fn ask_one(
        &self,
        worker_id: u32,
        request: &Request,
        timeout: Duration,
    ) -> WorkerOutcome {
        self.ask(Outgoing::One(request), timeout, |id| id == worker_id)
            .pop()
            .unwrap_or(WorkerOutcome {
                worker_id,
                result: Err("not running".to_owned()),
            })
    }

    /// Sends `request` to the running workers whose id passes `chosen` and
    /// waits for their answers, up to `timeout`.
    fn ask(
        &self,
        request: Outgoing<'_>,
        timeout: Duration,
        chosen: impl Fn(u32) -> bool,
    ) -> Vec<WorkerOutcome> {
        let asked = self.send(request, chosen);
        self.collect(asked, timeout)
    }

    /// Sends `request`, encoded once for all of them, to the running workers whose id
    /// passes `chosen`, without waiting for their answers.
    fn send(&self, request: Outgoing<'_>, chosen: impl Fn(u32) -> bool) -> Asked {
        let (tx, answers) = mpsc::channel();
        let request_id = self
            .next_request
            .fetch_add(1, Ordering::Relaxed)
            .to_string();
        let mut asked = Asked {
            request_id: request_id.clone(),
            expected: Vec::new(),
            outcomes: Vec::new(),
            answers,
        };
        let chosen_ids = (0..self.slots.len() as u32).filter(|&id| chosen(id));
        let frame = lock(&self.sockets)
            .handed_over_by(request.requests())
            .map_err(|error| error.to_string())
            .and_then(|sockets| {
                let frame = match request {
                    Outgoing::One(one) => EncodedFrame::worker_request(&request_id, one),
                    Outgoing::Batch(many) => EncodedFrame::worker_batch(&request_id, many),
                };
                Ok((sockets, frame.map_err(|error| error.to_string())?))
            });
        let (sockets, frame) = match frame {
            Ok(encoded) => encoded,
            Err(error) => {
                asked.outcomes = chosen_ids
                    .map(|worker_id| WorkerOutcome {
                        worker_id,
                        result: Err(format!("cannot send: {error}")),
                    })
                    .collect();
                return asked;
            }
        };
        let borrowed: Vec<_> = sockets.iter().map(AsFd::as_fd).collect();
        for id in chosen_ids {
            let mut slot = lock(&self.slots[id as usize]);
            if slot.run_state != WorkerRunState::Running {
                continue;
            }
            let Some(writer) = slot.writer.as_mut() else {
                continue;
            };
            let key = (id, asked.request_id.clone());
            lock(&self.pending).insert(key.clone(), tx.clone());
            let sent = writer
                .write_encoded_with_fds(&frame, &borrowed)
                .and_then(|()| flush_blocking(writer));
            match sent {
                Ok(()) => asked.expected.push(id),
                Err(error) => {
                    lock(&self.pending).remove(&key);
                    asked.outcomes.push(WorkerOutcome {
                        worker_id: id,
                        result: Err(format!("cannot send: {error}")),
                    });
                }
            }
        }
        asked
    }

    /// The answers to `asked`, waited for up to `timeout`, by worker id.
    fn collect(&self, asked: Asked, timeout: Duration) -> Vec<WorkerOutcome> {
        let Asked {
            request_id,
            mut expected,
            mut outcomes,
            answers,
        } = asked;
        let deadline = Instant::now() + timeout;
        while !expected.is_empty() {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let Ok((worker_id, result)) = answers.recv_timeout(remaining) else {
                break;
            };
            if let Some(at) = expected.iter().position(|id| *id == worker_id) {
                expected.swap_remove(at);
                outcomes.push(WorkerOutcome { worker_id, result });
            }
        }
        let mut pending = lock(&self.pending);
        for worker_id in expected {
            pending.remove(&(worker_id, request_id.clone()));
            outcomes.push(WorkerOutcome {
                worker_id,
                result: Err(format!("no answer within {}s", timeout.as_secs())),
            });
        }
        outcomes.sort_by_key(|outcome| outcome.worker_id);
        outcomes
    }

    /// Hands worker `worker_id`'s answer to the request waiting for it.
    pub(super) fn deliver(&self, worker_id: u32, response: WorkerResponse) {
        if response.status == proto::ResponseStatus::Processing as i32 {
            debug!("request {} in progress: {}", response.id, response.message);
            return;
        }
        match lock(&self.pending).remove(&(worker_id, response.id.clone())) {
            Some(sender) => {
                let _ = sender.send((worker_id, Ok(response)));
            }
            None => debug!(
                "answer to request {} arrived after its timeout",
                response.id
            ),
        }
    }

    /// Fails every request still waiting for a worker that died.
    pub(super) fn fail_pending(&self, worker_id: u32) {
        let mut pending = lock(&self.pending);
        let orphans: Vec<(u32, String)> = pending
            .keys()
            .filter(|(id, _)| *id == worker_id)
            .cloned()
            .collect();
        for key in orphans {
            if let Some(sender) = pending.remove(&key) {
                let _ = sender.send((worker_id, Err("the worker died".to_owned())));
            }
        }
    }
}
