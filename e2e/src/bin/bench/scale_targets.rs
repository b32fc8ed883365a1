//! What `bench scale` starts: `sluice start` on a generated configuration
//! (main process and workers, driven with `sluice ctl`) and HAProxy on the same
//! routes. Each is stopped on drop.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use sluice_e2e::binary::find_sluice_binary;
use sluice_e2e::process::{child_pids, rss_kib_of};
use sluice_e2e::scale::ScaleRoutes;
use sluice_e2e::{http_get, wait, ChildGuard};
use tempfile::TempDir;

use crate::targets::find_on_path;

/// Longest wait for a proxy to serve, after its start or a worker's kill.
const SERVE_DEADLINE: Duration = Duration::from_secs(120);
/// Pause between two checks of whether a proxy serves yet, the same for every proxy.
const SERVE_POLL: Duration = Duration::from_millis(2);

/// `sluice start` on generated routes, in its own temp folder.
pub(crate) struct SluiceScale {
    binary: PathBuf,
    guard: ChildGuard,
    dir: TempDir,
    /// Time from the spawn of `sluice start` until every worker serves.
    pub(crate) start_time: Duration,
}

impl SluiceScale {
    /// Starts Sluice with `workers` workers on `routes` and waits until each
    /// worker is running and `probe_host` is answered 200; its start time is that of
    /// the first answer.
    pub(crate) fn start(
        routes: &ScaleRoutes,
        workers: u32,
        probe_host: &str,
    ) -> Result<SluiceScale, String> {
        let binary = find_sluice_binary().ok_or(
            "the sluice binary is missing: build it first with `cargo build --release -p sluice`",
        )?;
        let dir = tempfile::tempdir().map_err(|e| format!("cannot create a temp dir: {e}"))?;
        let config = dir.path().join("sluice.toml");
        fs::write(&config, routes.sluice_config(workers))
            .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
        let mut command = Command::new(&binary);
        command.args(["start", "-c"]).arg(&config);
        let started = Instant::now();
        let guard =
            ChildGuard::spawn_in(command, "sluice", dir.path()).map_err(|e| e.to_string())?;
        let mut sluice = SluiceScale {
            binary,
            guard,
            dir,
            start_time: Duration::ZERO,
        };
        // Serving from the first answer on: a worker takes connections only once it holds
        // the whole state, so that every request from then on is served. That each worker
        // runs is checked after, and not counted.
        let listener = routes.listener;
        let answered = wait::poll_every(SERVE_DEADLINE, SERVE_POLL, || {
            sluice.guard.has_exited()
                || matches!(http_get(listener, probe_host, "/"), Ok(r) if r.status == 200)
        });
        sluice.start_time = started.elapsed();
        if !answered {
            return Err(format!(
                "sluice did not serve {probe_host} within {SERVE_DEADLINE:?}:\n{}",
                sluice.guard.logs()
            ));
        }
        sluice.wait_serving(routes.listener, probe_host, workers as usize, None)?;
        Ok(sluice)
    }

    /// The folder holding the configuration and the command socket.
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The main process's pid.
    pub(crate) fn main_pid(&self) -> u32 {
        self.guard.pid()
    }

    /// The pids of the workers, by worker id, from `ctl status`.
    pub(crate) fn worker_pids(&self) -> Vec<u32> {
        running_workers(&self.ctl(&["status"]))
    }

    /// Resident memory of main and of each worker, in KiB.
    pub(crate) fn rss_kib(&self) -> (u64, Vec<u64>) {
        let main = rss_kib_of(self.main_pid()).unwrap_or(0);
        let workers = child_pids(self.main_pid())
            .into_iter()
            .filter_map(|pid| rss_kib_of(pid).ok())
            .collect();
        (main, workers)
    }

    /// Runs `sluice ctl` with `args`, with a long timeout.
    pub(crate) fn ctl(&self, args: &[&str]) -> Output {
        Command::new(&self.binary)
            .arg("ctl")
            .arg("-s")
            .arg(self.dir.path().join("sluice.sock"))
            .args(["--timeout", "120"])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run sluice ctl: {e}"))
    }

    /// Runs `sluice ctl` and times it; an error says what ctl said.
    pub(crate) fn timed_ctl(&self, args: &[&str]) -> Result<(Duration, Output), String> {
        let started = Instant::now();
        let output = self.ctl(args);
        let elapsed = started.elapsed();
        if output.status.success() {
            Ok((elapsed, output))
        } else {
            Err(format!(
                "ctl {} failed after {:.3}s: {}{}",
                args.join(" "),
                elapsed.as_secs_f64(),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }

    /// Runs `sluice` (not ctl) with `args` in the temp folder and times it.
    pub(crate) fn timed_command(&self, args: &[&str]) -> (Duration, Output) {
        let started = Instant::now();
        let output = Command::new(&self.binary)
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run sluice: {e}"));
        (started.elapsed(), output)
    }

    /// Waits until `workers` workers run (none of them `replaced`, the pid of a
    /// killed one) and `probe_host` is answered 200.
    pub(crate) fn wait_serving(
        &mut self,
        listener: SocketAddr,
        probe_host: &str,
        workers: usize,
        replaced: Option<u32>,
    ) -> Result<(), String> {
        // The route first: it is the cheaper check, and ctl status, a process of its
        // own, only runs once the route answers.
        let serving = wait::poll_every(SERVE_DEADLINE, SERVE_POLL, || {
            if self.guard.has_exited() {
                return true;
            }
            if !matches!(http_get(listener, probe_host, "/"), Ok(r) if r.status == 200) {
                return false;
            }
            let pids = self.worker_pids();
            pids.len() == workers && replaced.is_none_or(|old| !pids.contains(&old))
        });
        if !serving || self.guard.has_exited() {
            return Err(format!(
                "sluice did not serve {probe_host} within {SERVE_DEADLINE:?}:\n{}",
                self.guard.logs()
            ));
        }
        Ok(())
    }

    /// The logs of main and its workers.
    pub(crate) fn logs(&self) -> String {
        self.guard.logs()
    }
}

/// The pids of the running workers in a `ctl status` table
/// (`WORKER PID STATE RESTARTS SESSIONS`).
fn running_workers(output: &Output) -> Vec<u32> {
    if !output.status.success() {
        return Vec::new();
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .skip(1)
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                [_, pid, "running", ..] => pid.parse().ok(),
                _ => None,
            }
        })
        .collect()
}

/// HAProxy (one thread) on the same routes.
pub(crate) struct HaproxyScale {
    guard: ChildGuard,
    _dir: TempDir,
    /// Time from the spawn until `probe_host` is answered 200.
    pub(crate) start_time: Duration,
}

impl HaproxyScale {
    /// Starts HAProxy on `routes`; `Ok(None)` when it is not installed.
    pub(crate) fn start(
        routes: &ScaleRoutes,
        probe_host: &str,
    ) -> Result<Option<HaproxyScale>, String> {
        let Some(program) = find_on_path("haproxy") else {
            return Ok(None);
        };
        let dir = tempfile::tempdir().map_err(|e| format!("cannot create a temp dir: {e}"))?;
        let map = dir.path().join("hosts.map");
        let (config, hosts) = routes.haproxy_config(&map.display().to_string());
        let config_path = dir.path().join("haproxy.cfg");
        fs::write(&map, hosts).map_err(|e| format!("cannot write the map: {e}"))?;
        fs::write(&config_path, config).map_err(|e| format!("cannot write the config: {e}"))?;
        let mut command = Command::new(program);
        command.arg("-f").arg(&config_path).arg("-db");
        let started = Instant::now();
        let mut guard =
            ChildGuard::spawn_in(command, "haproxy", dir.path()).map_err(|e| e.to_string())?;
        let listener = routes.listener;
        let serving = wait::poll_every(SERVE_DEADLINE, SERVE_POLL, || {
            guard.has_exited()
                || matches!(http_get(listener, probe_host, "/"), Ok(r) if r.status == 200)
        });
        let start_time = started.elapsed();
        if !serving || guard.has_exited() {
            return Err(format!("haproxy did not serve:\n{}", guard.logs()));
        }
        Ok(Some(HaproxyScale {
            guard,
            _dir: dir,
            start_time,
        }))
    }

    /// Its resident memory, in KiB.
    pub(crate) fn rss_kib(&self) -> u64 {
        rss_kib_of(self.guard.pid()).unwrap_or(0)
    }
}
