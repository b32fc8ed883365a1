//! The only place of this crate that calls the OS directly (`unsafe`).
//!
//! Contract:
//! - [`send_signal`] delivers a signal to one process id, and nothing else
//!   (never a process group, never pid 0 or -1).
//! - [`inherit_fd_as`] makes one file descriptor of the parent appear in a
//!   child spawned from a `Command` under a chosen number, without leaking
//!   it to any other child: the parent's copy keeps `FD_CLOEXEC`, only the
//!   duplicate made in the forked child (after `fork`, before `exec`) loses
//!   it. Tests spawn processes from parallel threads, so clearing the flag in
//!   the parent would leak the descriptor to unrelated children and keep a
//!   channel open after its owner dropped it.
//! - [`clock_ticks_per_second`] says what unit `/proc/PID/stat` times are in.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Sends `signal` to every process of the process group `group` (the pid of its leader).
pub(crate) fn signal_group(group: u32, signal: i32) -> io::Result<()> {
    let group = libc::pid_t::try_from(group)
        .ok()
        .filter(|group| *group > 1)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "group out of range"))?;
    // SAFETY: kill(2) takes plain integers and touches no memory of ours; a negative pid
    // names the process group, checked above to be neither 0 nor init's.
    let rc = unsafe { libc::kill(-group, signal) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sends `signal` to the process `pid`.
pub(crate) fn send_signal(pid: u32, signal: i32) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid)
        .ok()
        .filter(|pid| *pid > 0)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "pid out of range"))?;
    // SAFETY: kill(2) takes plain integers and touches no memory of ours; the
    // pid was checked to be positive so it names exactly one process.
    let rc = unsafe { libc::kill(pid, signal) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Arranges for `fd` (open in this process) to be open as `target` in the
/// child that `command` spawns, and nowhere else.
pub(crate) fn inherit_fd_as(command: &mut Command, fd: RawFd, target: RawFd) {
    let in_child = move || {
        if fd == target {
            // SAFETY: fcntl on a descriptor number with integer arguments only;
            // async-signal-safe, as required between fork and exec.
            let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
            if flags < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: as above.
            if unsafe { libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) } < 0 {
                return Err(io::Error::last_os_error());
            }
        } else {
            // SAFETY: dup2 with integer arguments; async-signal-safe. The
            // duplicate is created without FD_CLOEXEC, which is the point.
            if unsafe { libc::dup2(fd, target) } < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    };
    // SAFETY: the closure only calls async-signal-safe functions (fcntl,
    // dup2), allocates nothing and takes no lock, as `pre_exec` requires.
    unsafe {
        command.pre_exec(in_child);
    }
}

/// Clock ticks per second (`_SC_CLK_TCK`), the unit of the CPU times in
/// `/proc/PID/stat`.
pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf takes an integer name and touches no memory of ours.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|t| *t > 0).unwrap_or(100)
}
