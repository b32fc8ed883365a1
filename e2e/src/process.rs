//! Child processes owned by a test: killed and reaped when the test ends,
//! however it ends, with their output kept in files for the failure report.

use std::fs::{self, File};
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::sys;
use crate::wait::poll_until;

/// Errors of spawning and inspecting a child process.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The log folder or files could not be created.
    #[error("cannot create log files for {name}: {source}")]
    Logs {
        /// Name given to the process.
        name: String,
        /// What the OS said.
        source: io::Error,
    },
    /// The program could not be started.
    #[error("cannot start {name} ({program}): {source}")]
    Spawn {
        /// Name given to the process.
        name: String,
        /// The program's path as given to `Command`.
        program: String,
        /// What the OS said.
        source: io::Error,
    },
    /// A `/proc` file could not be read (the process may be gone).
    #[error("cannot read {path}: {source}")]
    Proc {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// A `/proc` file did not have the expected shape.
    #[error("unexpected content in {path}")]
    ProcFormat {
        /// The file.
        path: PathBuf,
    },
    /// A signal could not be delivered.
    #[error("cannot send signal {signal} to pid {pid}: {source}")]
    Signal {
        /// Target process.
        pid: u32,
        /// Signal number.
        signal: i32,
        /// What the OS said.
        source: io::Error,
    },
}

/// Where a guarded process's output goes: a temp folder of its own, or a
/// folder the test chose (and owns).
enum LogDir {
    Owned(TempDir),
    Borrowed(PathBuf),
}

impl LogDir {
    fn path(&self) -> &Path {
        match self {
            LogDir::Owned(dir) => dir.path(),
            LogDir::Borrowed(path) => path,
        }
    }
}

/// Owns a running child process; on drop it is sent SIGKILL and reaped, so a
/// panicking test leaves nothing behind. Its stdout and stderr are written to
/// `<name>.stdout` / `<name>.stderr` in its log folder; when the guard is
/// dropped during a panic, they are printed to stderr.
pub struct ChildGuard {
    name: String,
    child: Child,
    exit: Option<ExitStatus>,
    log_dir: LogDir,
    /// It leads a process group of its own, killed whole with it.
    group: bool,
}

impl ChildGuard {
    /// Spawns `command` with its output captured in a fresh temp folder.
    pub fn spawn(command: Command, name: &str) -> Result<Self, ProcessError> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("sluice-e2e-{name}-"))
            .tempdir()
            .map_err(|source| ProcessError::Logs {
                name: name.to_owned(),
                source,
            })?;
        Self::spawn_logging(command, name, LogDir::Owned(dir))
    }

    /// Spawns `command` with its output captured in `dir` (which the caller
    /// keeps, e.g. the test's own temp folder).
    pub fn spawn_in(command: Command, name: &str, dir: &Path) -> Result<Self, ProcessError> {
        Self::spawn_logging(command, name, LogDir::Borrowed(dir.to_owned()))
    }

    /// Like [`ChildGuard::spawn_in`], for a program that starts processes of its own
    /// (nginx's workers): it leads a new process group, and killing it kills the whole
    /// group, so that none of them outlives it.
    pub fn spawn_group_in(
        mut command: Command,
        name: &str,
        dir: &Path,
    ) -> Result<Self, ProcessError> {
        command.process_group(0);
        let mut guard = Self::spawn_in(command, name, dir)?;
        guard.group = true;
        Ok(guard)
    }

    fn spawn_logging(
        mut command: Command,
        name: &str,
        log_dir: LogDir,
    ) -> Result<Self, ProcessError> {
        let logs = |source| ProcessError::Logs {
            name: name.to_owned(),
            source,
        };
        let stdout = File::create(log_dir.path().join(format!("{name}.stdout"))).map_err(logs)?;
        let stderr = File::create(log_dir.path().join(format!("{name}.stderr"))).map_err(logs)?;
        command.stdin(Stdio::null()).stdout(stdout).stderr(stderr);
        let child = command.spawn().map_err(|source| ProcessError::Spawn {
            name: name.to_owned(),
            program: command.get_program().to_string_lossy().into_owned(),
            source,
        })?;
        log::debug!("started {name} as pid {}", child.id());
        Ok(Self {
            name: name.to_owned(),
            child,
            exit: None,
            log_dir,
            group: false,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The name given at spawn time.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The folder holding the output files.
    pub fn log_dir(&self) -> &Path {
        self.log_dir.path()
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`) to the process.
    pub fn send_signal(&self, signal: i32) -> Result<(), ProcessError> {
        let pid = self.pid();
        sys::send_signal(pid, signal).map_err(|source| ProcessError::Signal {
            pid,
            signal,
            source,
        })
    }

    /// Whether the process has exited (and was reaped), without waiting.
    pub fn has_exited(&mut self) -> bool {
        self.try_reap().is_some()
    }

    /// Waits up to `timeout` for the process to exit; `None` if it is still
    /// running then.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        poll_until(timeout, || self.try_reap().is_some());
        self.exit
    }

    /// Kills the process (SIGKILL) and waits for it; returns its status.
    pub fn kill(&mut self) -> Option<ExitStatus> {
        if self.group {
            // Its children may outlive it otherwise; once it is reaped, its pid (the
            // group's) may name someone else's group.
            if self.exit.is_none() {
                let _ = sys::signal_group(self.pid(), libc::SIGKILL);
            }
        }
        if self.try_reap().is_none() {
            // An error means it exited meanwhile; `wait` below still reaps.
            let _ = self.child.kill();
            self.exit = self.child.wait().ok();
        }
        self.exit
    }

    fn try_reap(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().ok().flatten();
        }
        self.exit
    }

    /// Resident memory, from `VmRSS` in `/proc/PID/status`, in KiB.
    pub fn rss_kib(&self) -> Result<u64, ProcessError> {
        rss_kib_of(self.pid())
    }

    /// CPU time used so far (user + system), in clock ticks, from
    /// `/proc/PID/stat`.
    pub fn cpu_ticks(&self) -> Result<u64, ProcessError> {
        cpu_ticks_of(self.pid())
    }

    /// The captured stdout and stderr, as text, for failure messages.
    pub fn logs(&self) -> String {
        let read = |stream: &str| {
            let path = self.log_dir().join(format!("{}.{stream}", self.name));
            fs::read(&path)
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                .unwrap_or_else(|e| format!("<cannot read {}: {e}>", path.display()))
        };
        format!(
            "----- {name} stdout -----\n{}\n----- {name} stderr -----\n{}",
            read("stdout"),
            read("stderr"),
            name = self.name
        )
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            // The test harness shows a failing test's stderr: this is the
            // report the test author needs, not library logging.
            eprintln!("{}", self.logs());
        }
    }
}

/// Makes `fd` (e.g. one end of a `UnixStream::pair()`) open as descriptor
/// number `target` in the process that `command` spawns, and in no other
/// child: this process's copy keeps its close-on-exec flag, so children
/// spawned by parallel tests do not inherit it. `fd` must stay open until
/// the spawn is done.
pub fn inherit_fd(command: &mut Command, fd: &impl AsFd, target: RawFd) {
    sys::inherit_fd_as(command, fd.as_fd().as_raw_fd(), target);
}

/// Resident memory of any process, from `VmRSS` in `/proc/PID/status`, in KiB.
pub fn rss_kib_of(pid: u32) -> Result<u64, ProcessError> {
    let path = PathBuf::from(format!("/proc/{pid}/status"));
    let status = read_proc(&path)?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .ok_or(ProcessError::ProcFormat { path })
}

/// CPU time (user + system) used so far by any process, in clock ticks
/// (see [`crate::clock_ticks_per_second`]), from `/proc/PID/stat`.
pub fn cpu_ticks_of(pid: u32) -> Result<u64, ProcessError> {
    let path = PathBuf::from(format!("/proc/{pid}/stat"));
    let stat = read_proc(&path)?;
    parse_cpu_ticks(&stat).ok_or(ProcessError::ProcFormat { path })
}

/// The processes whose parent is `pid` (read from every `/proc/*/stat`).
pub fn child_pids(pid: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|candidate| {
            fs::read_to_string(format!("/proc/{candidate}/stat"))
                .ok()
                .and_then(|stat| parse_parent_pid(&stat))
                == Some(pid)
        })
        .collect()
}

/// The parent pid (field 4) of a `/proc/PID/stat` line.
fn parse_parent_pid(stat: &str) -> Option<u32> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(1)?.parse().ok()
}

fn read_proc(path: &Path) -> Result<String, ProcessError> {
    fs::read_to_string(path).map_err(|source| ProcessError::Proc {
        path: path.to_owned(),
        source,
    })
}

/// utime + stime of a `/proc/PID/stat` line. The command name (field 2) is
/// in parentheses and may hold spaces or ')' itself, so fields are counted
/// from the last ')'.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    // Fields after the name start at field 3 (state); utime is field 14.
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::{parse_cpu_ticks, parse_parent_pid};

    #[test]
    fn parent_pid_is_the_field_after_the_state() {
        assert_eq!(parse_parent_pid("42 (a) b) R 7 42 42 0"), Some(7));
        assert_eq!(parse_parent_pid("42 (a) R"), None);
    }

    #[test]
    fn cpu_ticks_count_fields_after_the_last_parenthesis() {
        let stat = "42 (a) b) c) S 1 42 42 0 -1 4194560 100 0 0 0 7 5 0 0 20 0 1 0";
        assert_eq!(parse_cpu_ticks(stat), Some(12));
    }

    #[test]
    fn cpu_ticks_of_a_truncated_line_is_none() {
        assert_eq!(parse_cpu_ticks("42 (a) S 1 2"), None);
        assert_eq!(parse_cpu_ticks("no parenthesis"), None);
    }
}
