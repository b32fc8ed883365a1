//! `worker_count` changed by a reload, applied live: new workers are started (each gets
//! the listening sockets and the whole state, like a respawned one) and the answer waits
//! until they serve; surplus workers are retired with a soft stop: they stop accepting
//! (the listening sockets stay with main and the other workers, so no connection waiting
//! to be accepted is lost), finish their sessions, and are killed if some remain after
//! `shutdown_grace_period`. The highest ids go first; a retired slot's supervisor ends with
//! its worker, unless a later reload wants the slot again, in which case it respawns it.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use log::{info, warn};
use sluice_command::proto::{request::RequestType, Request, WorkerRunState};

use super::{lock, WorkerPool};
use crate::main_process::MainProcess;

impl WorkerPool {
    /// Runs `wanted` workers from now on; returns what changed, in a few words.
    pub(crate) fn resize(
        &self,
        main: &Arc<MainProcess>,
        wanted: usize,
        grace: Duration,
    ) -> Result<String, String> {
        let wanted = wanted.clamp(1, self.slots.len());
        let current = self.wanted.swap(wanted, Ordering::SeqCst);
        if wanted > current {
            info!("worker_count {current} → {wanted}: starting workers {current}..{wanted}");
            self.start_range(main, current..wanted)
                .map_err(|error| format!("worker_count {wanted}: {error:#}"))?;
            return Ok(format!("{} workers started", wanted - current));
        }
        if wanted < current {
            info!("worker_count {current} → {wanted}: retiring workers {wanted}..{current}");
            for id in wanted..current {
                self.retire(main, id as u32, grace);
            }
            return Ok(format!("{} workers retired", current - wanted));
        }
        Ok(String::new())
    }

    /// Soft-stops worker `id` and kills it if it still runs after `grace`.
    fn retire(&self, main: &Arc<MainProcess>, id: u32, grace: Duration) {
        let request = Request {
            request_type: Some(RequestType::SoftStop(super::soft_stop(grace))),
        };
        if let Some(reason) = self.ask_one(id, &request, Duration::from_secs(2)).failure() {
            warn!("worker {id} did not accept its soft stop: {reason}");
        }
        let pid = {
            let mut slot = lock(&self.slots[id as usize]);
            if slot.child.is_none() {
                return;
            }
            slot.run_state = WorkerRunState::Stopping;
            slot.pid
        };
        let main = Arc::clone(main);
        let deadline = Instant::now() + grace;
        let spawned = thread::Builder::new()
            .name(format!("retire-{id}"))
            .spawn(move || {
                while Instant::now() < deadline {
                    if !main.workers.runs(id, pid) {
                        return;
                    }
                    thread::sleep(Duration::from_millis(50));
                }
                main.workers.kill_if_runs(id, pid);
            });
        if let Err(error) = spawned {
            warn!("cannot watch retired worker {id}: {error}");
        }
    }

    /// Whether worker `id` is still process `pid`.
    fn runs(&self, id: u32, pid: u32) -> bool {
        let slot = lock(&self.slots[id as usize]);
        slot.pid == pid && slot.child.is_some()
    }

    /// Kills worker `id` if it is still process `pid` (a retired worker past its grace).
    fn kill_if_runs(&self, id: u32, pid: u32) {
        let mut slot = lock(&self.slots[id as usize]);
        if slot.pid != pid {
            return;
        }
        if let Some(child) = slot.child.as_mut() {
            warn!("retired worker {id} (pid {pid}) still has sessions after the grace period: killing it");
            let _ = child.kill();
        }
    }

    /// Upgrade: the new main's worker `id` serves, so this main's worker `id` is
    /// soft-stopped and not respawned (one at a time, each after its successor serves).
    pub(crate) fn hand_over_worker(&self, main: &Arc<MainProcess>, id: u32, grace: Duration) {
        if id as usize >= self.len() {
            return;
        }
        lock(&self.slots[id as usize]).handed_over = true;
        info!("worker {id}: its successor serves, soft-stopping it");
        self.retire(main, id, grace);
    }

    /// A failed upgrade: the workers handed over are respawned (each once it drained),
    /// without waiting for them.
    pub(crate) fn take_back_workers(&self, main: &Arc<MainProcess>) {
        for id in 0..self.len() {
            let mut slot = lock(&self.slots[id]);
            if !slot.handed_over {
                continue;
            }
            slot.handed_over = false;
            let supervised = slot.supervised;
            drop(slot);
            warn!("worker {id} was handed over to a failed upgrade: respawning it");
            if !supervised {
                if let Err(error) = self.spawn_supervisors(main, id..id + 1) {
                    warn!("cannot respawn worker {id}: {error:#}");
                }
            }
        }
    }

    /// Called by a slot's supervisor once its worker is gone: true (and the slot left
    /// unsupervised) if the slot is beyond `worker_count` or was handed over.
    pub(super) fn retire_supervisor(&self, id: u32) -> bool {
        let mut slot = lock(&self.slots[id as usize]);
        if (id as usize) < self.len() && !slot.handed_over {
            return false;
        }
        slot.supervised = false;
        true
    }
}
