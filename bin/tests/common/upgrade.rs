//! Helpers for tests of `sluice ctl upgrade`: the main process that took over (not the
//! test's child) and what `ctl status` says about the generation in charge.

use std::time::Duration;

use super::{child_pids, process_alive, wait_until, Sluice};

/// A main process that is not the test's child (it was started by an upgrade): killed with
/// its workers when dropped.
pub(crate) struct Successor(pub(crate) u32);

impl Drop for Successor {
    fn drop(&mut self) {
        let workers = child_pids(self.0);
        // It may have exited already (a test that stopped it): nothing to kill then.
        for pid in std::iter::once(self.0).chain(workers) {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

/// `(main pid, generation, worker pids)` from `ctl status`.
pub(crate) fn status(sluice: &Sluice) -> (u64, u64, Vec<u64>) {
    let status = sluice.ctl_json(&["status"]);
    let workers = status["workers"]
        .as_array()
        .expect("a worker list")
        .iter()
        .map(|w| w["pid"].as_u64().unwrap_or(0))
        .collect();
    (
        status["main_pid"].as_u64().unwrap_or(0),
        status["generation"].as_u64().unwrap_or(0),
        workers,
    )
}

/// What an upgrade left: the new main (killed on drop) and the old processes.
pub(crate) struct Upgraded {
    pub(crate) successor: Successor,
    pub(crate) old_main: u32,
    pub(crate) old_workers: Vec<u32>,
}

impl Upgraded {
    /// Waits until the old workers finished their sessions and exited.
    pub(crate) fn wait_old_workers_gone(&self, timeout: Duration) {
        wait_until("the old workers to exit", timeout, || {
            self.old_workers.iter().all(|&pid| !process_alive(pid))
        });
    }
}

/// `sluice ctl upgrade` to the binary `sluice` was started from; checks that the answer
/// names the next generation, that the old main exits, and that `ctl status` then shows
/// the new main with as many workers as before, none of them an old one.
pub(crate) fn upgrade_in_place(sluice: &mut Sluice) -> Upgraded {
    let (old_main, generation, old_workers) = status(sluice);
    let answer = sluice.ctl_ok(&["upgrade"]);
    assert!(
        answer.contains(&format!("generation {}", generation + 1)),
        "{answer}"
    );
    let exit = sluice.wait_exit(Duration::from_secs(20));
    assert!(exit.success(), "the old main exited with {exit}");
    let (new_main, new_generation, new_workers) = status(sluice);
    let successor = Successor(u32::try_from(new_main).expect("a pid"));
    assert_ne!(new_main, old_main);
    assert_eq!(new_generation, generation + 1);
    assert_eq!(new_workers.len(), old_workers.len(), "{new_workers:?}");
    assert!(
        new_workers.iter().all(|pid| !old_workers.contains(pid)),
        "old workers {old_workers:?}, new ones {new_workers:?}"
    );
    Upgraded {
        successor,
        old_main: u32::try_from(old_main).expect("a pid"),
        old_workers: old_workers
            .iter()
            .map(|&pid| u32::try_from(pid).expect("a pid"))
            .collect(),
    }
}
