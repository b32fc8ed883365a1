//! The operating-system calls the binary needs and `std` does not offer.
//!
//! Contract: every function here is safe to call; each `unsafe` block states
//! why its call is sound. What is provided:
//! - blocking a set of signals in the calling thread (and the threads it
//!   spawns afterwards) and waiting for one of them synchronously;
//! - preparing a freshly forked worker before `exec`: default signal mask,
//!   death signal when the main process goes away, and an inheritable channel fd;
//! - turning the inherited channel fd back into a `UnixStream` in the worker;
//! - starting a new main process (upgrade) with inherited descriptors, and taking them
//!   over in it;
//! - raising the soft limit of open files to the hard limit;
//! - reading `CLOCK_MONOTONIC` in microseconds, the clock systemd's notify
//!   protocol uses.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Signals blocked in every thread of the main process and received by [`SignalSet::wait`].
#[derive(Debug)]
pub(crate) struct SignalSet {
    set: libc::sigset_t,
}

impl SignalSet {
    /// Blocks `signals` in the calling thread; threads spawned afterwards inherit the mask,
    /// so the signals are only ever received through [`SignalSet::wait`].
    pub(crate) fn block(signals: &[libc::c_int]) -> io::Result<SignalSet> {
        // SAFETY: `set` is a plain C struct initialized by sigemptyset before any other use;
        // sigaddset and pthread_sigmask only read or write that struct and the thread's mask.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for &signal in signals {
                if libc::sigaddset(&mut set, signal) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            let result = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            if result != 0 {
                return Err(io::Error::from_raw_os_error(result));
            }
            Ok(SignalSet { set })
        }
    }

    /// Waits until one of the blocked signals is pending and returns it.
    pub(crate) fn wait(&self) -> io::Result<libc::c_int> {
        let mut signal: libc::c_int = 0;
        // SAFETY: `self.set` is an initialized signal set and `signal` a valid out-pointer.
        let result = unsafe { libc::sigwait(&self.set, &mut signal) };
        if result != 0 {
            return Err(io::Error::from_raw_os_error(result));
        }
        Ok(signal)
    }
}

/// Makes `command` run [`prepare_worker_child`] in the child before `exec`.
pub(crate) fn prepare_worker_command(
    command: &mut Command,
    parent_pid: libc::pid_t,
    channel_fd: RawFd,
) {
    // SAFETY: the hook runs between fork and exec and only makes async-signal-safe
    // calls on values copied into the closure (see prepare_worker_child).
    unsafe {
        command.pre_exec(move || prepare_worker_child(parent_pid, channel_fd));
    }
}

/// Runs in a forked worker between `fork` and `exec` (so it only makes
/// async-signal-safe calls): restores the default signal mask that the main
/// process blocked, asks for SIGKILL when the parent thread goes away, and
/// lets `channel_fd` survive `exec`.
///
/// The death signal fires when the *thread* that forked exits; the main
/// process spawns workers from supervisor threads that live as long as it does.
fn prepare_worker_child(parent_pid: libc::pid_t, channel_fd: RawFd) -> io::Result<()> {
    // SAFETY: only async-signal-safe calls on a locally initialized sigset and on an fd
    // the parent handed to this child; no allocation, no locks.
    unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        if libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
            return Err(io::Error::last_os_error());
        }
        // The parent may have died before the death signal was armed.
        if libc::getppid() != parent_pid {
            libc::_exit(1);
        }
        let flags = libc::fcntl(channel_fd, libc::F_GETFD);
        if flags < 0 || libc::fcntl(channel_fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The process id of the caller.
pub(crate) fn current_pid() -> libc::pid_t {
    // SAFETY: getpid has no preconditions and cannot fail.
    unsafe { libc::getpid() }
}

/// Takes ownership of the channel fd a worker inherited from the main process.
pub(crate) fn inherited_stream(fd: RawFd) -> io::Result<UnixStream> {
    Ok(UnixStream::from(inherited_fd(fd)?))
}

/// Makes `command` (a new main process, see `main_process::upgrade`) start with the
/// default signal mask and inherit `fds` under their numbers.
pub(crate) fn prepare_upgrade_command(command: &mut Command, fds: Vec<RawFd>) {
    // SAFETY: the hook runs between fork and exec and only makes async-signal-safe calls
    // (sigemptyset, pthread_sigmask, fcntl) on a local sigset and on the fds moved in.
    unsafe {
        command.pre_exec(move || {
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            if libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
            for &fd in &fds {
                let flags = libc::fcntl(fd, libc::F_GETFD);
                if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// Takes ownership of a descriptor this process inherited (a worker's channel, or what an
/// upgrading main process hands over), checking that it is open; it becomes close-on-exec.
pub(crate) fn inherited_fd(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_GETFD only inspects the descriptor table; it tells whether `fd` is open.
    if fd < 0 || unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("file descriptor {fd} is not open"),
        ));
    }
    // SAFETY: `fd` is open (checked above) and was passed by the parent process for this
    // process's exclusive use; nothing else in this process owns or closes it.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: F_SETFD on an open descriptor only changes its close-on-exec flag.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    Ok(owned)
}

/// `CLOCK_MONOTONIC` in microseconds (what systemd's `MONOTONIC_USEC=` expects).
pub(crate) fn monotonic_usec() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid out-pointer; CLOCK_MONOTONIC is always available on Linux,
    // so the call cannot fail (on failure `now` keeps zero, which systemd tolerates).
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    (now.tv_sec as u64) * 1_000_000 + (now.tv_nsec as u64) / 1_000
}
