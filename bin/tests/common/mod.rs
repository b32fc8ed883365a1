//! Helpers for the `sluice` integration tests: a main process in a temp
//! folder killed on drop, `sluice ctl` against it, an echo backend, and waits
//! with deadlines.
#![allow(dead_code)]

pub(crate) mod classified_load;
pub(crate) mod http;
pub(crate) mod https_load;
pub(crate) mod load_clients;
pub(crate) mod loopback;
pub(crate) mod tls;
pub(crate) mod upgrade;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

/// The binary under test.
pub(crate) fn sluice_bin() -> &'static str {
    env!("CARGO_BIN_EXE_sluice")
}

/// A port that was free a moment ago on 127.0.0.1.
pub(crate) fn free_port() -> u16 {
    sluice_e2e::free_port()
}

/// Polls `condition` until it holds or `timeout` passes; panics naming `what`.
pub(crate) fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// A config with `workers` workers, a short grace period and one TCP listener per address.
pub(crate) fn config_with_tcp_listeners(workers: u32, listeners: &[String]) -> String {
    let mut config = format!(
        "command_socket = \"sluice.sock\"\nworker_count = {workers}\nlog_level = \"info\"\n\
         access_log = \"off\"\nshutdown_grace_period = \"2s\"\n"
    );
    for address in listeners {
        config.push_str(&format!(
            "\n[[listeners]]\nprotocol = \"tcp\"\naddress = \"{address}\"\n"
        ));
    }
    config
}

/// A running `sluice start` in its own temp folder; killed on drop.
pub(crate) struct Sluice {
    child: Option<Child>,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) socket: PathBuf,
}

impl Sluice {
    /// Starts on `config` and waits until `ctl status` answers.
    pub(crate) fn start(config: &str) -> Sluice {
        Sluice::start_with_env(config, &[])
    }

    /// Starts on `config` with the environment variables `env` added.
    pub(crate) fn start_with_env(config: &str, env: &[(&str, &std::ffi::OsStr)]) -> Sluice {
        let dir = tempfile::tempdir().expect("temp dir");
        let config_path = dir.path().join("sluice.toml");
        std::fs::write(&config_path, config).expect("write config");
        let log = std::fs::File::create(dir.path().join("sluice.log")).expect("log file");
        let child = Command::new(sluice_bin())
            .args(["start", "-c"])
            .arg(&config_path)
            .current_dir(dir.path())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("spawn sluice start");
        let socket = dir.path().join("sluice.sock");
        let mut sluice = Sluice {
            child: Some(child),
            dir,
            socket,
        };
        sluice.wait_ready();
        sluice
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.try_wait() {
                panic!("sluice start exited with {status}:\n{}", self.log());
            }
            if self.ctl(&["status"]).status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "sluice did not answer `ctl status` in time:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The config file main was started with (rewrite it, then reload).
    pub(crate) fn config_path(&self) -> PathBuf {
        self.dir.path().join("sluice.toml")
    }

    /// The main process's pid.
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Everything main and its workers logged.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sluice.log")).unwrap_or_default()
    }

    /// The exit status, if main exited.
    pub(crate) fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().expect("try_wait")
    }

    /// Waits up to `timeout` for main to exit.
    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "sluice did not exit within {timeout:?}:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs `sluice ctl -s SOCKET args…`.
    pub(crate) fn ctl(&self, args: &[&str]) -> Output {
        ctl_at(&self.socket, self.dir.path(), args)
    }

    /// Runs a ctl command that must succeed and returns its stdout.
    pub(crate) fn ctl_ok(&self, args: &[&str]) -> String {
        let output = self.ctl(args);
        assert!(
            output.status.success(),
            "ctl {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            self.log()
        );
        String::from_utf8(output.stdout).expect("utf-8 output")
    }

    /// Runs a ctl command with `--json` that must succeed and parses its answer.
    pub(crate) fn ctl_json(&self, args: &[&str]) -> serde_json::Value {
        let mut with_json = vec!["--json"];
        with_json.extend_from_slice(args);
        serde_json::from_str(&self.ctl_ok(&with_json)).expect("one JSON document")
    }

    /// `(id, pid, restarts)` of each worker, from `ctl status --json`.
    pub(crate) fn workers(&self) -> Vec<(u64, u64, u64)> {
        let status = self.ctl_json(&["status"]);
        status["workers"]
            .as_array()
            .expect("a worker list")
            .iter()
            .map(|w| {
                (
                    w["id"].as_u64().unwrap_or(0),
                    w["pid"].as_u64().unwrap_or(0),
                    w["restarts"].as_u64().unwrap_or(0),
                )
            })
            .collect()
    }

    /// Sends a signal to main with `kill`.
    pub(crate) fn signal(&self, signal: &str) {
        send_signal(signal, self.pid());
    }
}

impl Drop for Sluice {
    /// Kills main and waits (bounded) until its workers, which follow it (death signal),
    /// are gone too: they hold the listening sockets, which a next instance binds.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let workers = child_pids(child.id());
            let _ = child.kill();
            let _ = child.wait();
            let deadline = Instant::now() + Duration::from_secs(10);
            while workers.iter().any(|&pid| process_alive(pid)) && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// The children of process `pid` (from `/proc`).
pub(crate) fn child_pids(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|children| {
            children
                .split_whitespace()
                .filter_map(|pid| pid.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// Whether process `pid` runs (a zombie, which holds no descriptors, does not).
pub(crate) fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Runs `sluice ctl -s socket args…` from `cwd`.
pub(crate) fn ctl_at(socket: &Path, cwd: &Path, args: &[&str]) -> Output {
    Command::new(sluice_bin())
        .arg("ctl")
        .arg("-s")
        .arg(socket)
        .args(["--timeout", "20"])
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .expect("run sluice ctl")
}

/// `kill -SIGNAL pid`.
pub(crate) fn send_signal(signal: &str, pid: u32) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// A TCP echo server on 127.0.0.1 that can be stopped (its port then refuses connections).
pub(crate) struct EchoBackend {
    pub(crate) address: String,
    running: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl EchoBackend {
    /// Starts echoing on a free port.
    pub(crate) fn start() -> EchoBackend {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind echo");
        let address = listener.local_addr().expect("echo address").to_string();
        let running = Arc::new(AtomicBool::new(true));
        let flag = Arc::clone(&running);
        let thread = thread::spawn(move || {
            for stream in listener.incoming() {
                if !flag.load(Ordering::SeqCst) {
                    return;
                }
                if let Ok(stream) = stream {
                    thread::spawn(move || echo(stream));
                }
            }
        });
        EchoBackend {
            address,
            running,
            thread: Some(thread),
        }
    }

    /// Stops accepting and closes the listening socket.
    pub(crate) fn stop(&mut self) {
        self.running.store(false, Ordering::SeqCst);
        // Wakes the blocking accept so that the thread sees the flag and drops the listener.
        let _ = TcpStream::connect(&self.address);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for EchoBackend {
    fn drop(&mut self) {
        self.stop();
    }
}

fn echo(mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut buffer = [0u8; 4096];
    while let Ok(read) = stream.read(&mut buffer) {
        if read == 0 || stream.write_all(&buffer[..read]).is_err() {
            return;
        }
    }
}

/// Sends `payload` through `address` and returns what came back (bounded in time).
pub(crate) fn round_trip(address: &str, payload: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(payload)?;
    let mut received = vec![0u8; payload.len()];
    stream.read_exact(&mut received)?;
    Ok(received)
}

/// `sluice ctl events` running in the background, its lines collected.
pub(crate) struct EventStream {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: std::cell::RefCell<Vec<String>>,
}

impl EventStream {
    /// Subscribes to `sluice`'s events, merged across workers.
    pub(crate) fn subscribe(sluice: &Sluice) -> EventStream {
        EventStream::subscribe_with(sluice, &[])
    }

    /// Subscribes to `sluice`'s events with more `ctl events` arguments.
    pub(crate) fn subscribe_with(sluice: &Sluice, args: &[&str]) -> EventStream {
        let mut child = Command::new(sluice_bin())
            .arg("ctl")
            .arg("-s")
            .arg(&sluice.socket)
            .arg("events")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ctl events");
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        EventStream {
            child,
            lines,
            seen: Default::default(),
        }
    }

    /// Waits until the subscription is in place: `ctl reload` of the unchanged
    /// file publishes CONFIGURATION_RELOADED once the subscriber is registered.
    /// Reloads are spaced by seconds, so that the event of a reload issued here does
    /// not arrive after the lines seen so far are forgotten.
    pub(crate) fn wait_subscribed(&self, sluice: &Sluice) {
        let mut last = Instant::now();
        sluice.ctl_ok(&["reload"]);
        self.wait_for("CONFIGURATION_RELOADED", Duration::from_secs(30), || {
            if last.elapsed() >= Duration::from_secs(2) {
                sluice.ctl_ok(&["reload"]);
                last = Instant::now();
            }
        });
        self.clear();
    }

    /// Forgets every line received so far.
    pub(crate) fn clear(&self) {
        let mut seen = self.seen.borrow_mut();
        seen.extend(self.lines.try_iter());
        seen.clear();
    }

    /// Every line received so far.
    pub(crate) fn lines(&self) -> Vec<String> {
        let mut seen = self.seen.borrow_mut();
        seen.extend(self.lines.try_iter());
        seen.clone()
    }

    /// Waits for a line (seen before or arriving) containing `needle`, doing
    /// `meanwhile` between checks.
    pub(crate) fn wait_for(
        &self,
        needle: &str,
        timeout: Duration,
        mut meanwhile: impl FnMut(),
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let mut seen = self.seen.borrow_mut();
            seen.extend(self.lines.try_iter());
            if let Some(line) = seen.iter().find(|line| line.contains(needle)) {
                return line.clone();
            }
            drop(seen);
            assert!(
                Instant::now() < deadline,
                "no `{needle}` event within {timeout:?}; got {:?}",
                self.seen.borrow()
            );
            meanwhile();
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(100)) {
                self.seen.borrow_mut().push(line);
            }
        }
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
