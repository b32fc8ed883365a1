//! Load generators: bulk streams through an echo, and a connection rate.
//! Each one is bounded in time whatever the target does.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

/// Size of each write and read of the bulk streams.
const IO_SIZE: usize = 256 * 1024;
/// How long a reader waits for the echo of the last bytes after the writer
/// stopped, before calling the target stuck.
const DRAIN_GRACE: Duration = Duration::from_secs(5);
/// Read timeout used to re-check the end conditions of a reader.
const READ_POLL: Duration = Duration::from_millis(200);
/// Connect timeout of the connection-rate clients.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Streams `total_bytes` (split evenly over `connections` connections)
/// through the echo at `addr` and back; returns the echoed payload rate in
/// MB/s (10^6 bytes). Writers stop early once `max_run` has passed.
pub(crate) fn stream_throughput(
    addr: SocketAddr,
    connections: usize,
    total_bytes: u64,
    max_run: Duration,
) -> io::Result<f64> {
    let per_connection = total_bytes / connections as u64;
    let streams = (0..connections)
        .map(|_| TcpStream::connect(addr))
        .collect::<io::Result<Vec<_>>>()?;
    let barrier = Arc::new(Barrier::new(connections + 1));
    let mut readers = Vec::with_capacity(connections);
    for stream in streams {
        let writer_stream = stream.try_clone()?;
        let written = Arc::new(AtomicU64::new(0));
        let writer_done = Arc::new(AtomicBool::new(false));
        {
            let (barrier, written, done) = (
                Arc::clone(&barrier),
                Arc::clone(&written),
                Arc::clone(&writer_done),
            );
            thread::spawn(move || {
                barrier.wait();
                write_stream(writer_stream, per_connection, max_run, &written);
                done.store(true, Ordering::SeqCst);
            });
        }
        readers.push(thread::spawn(move || {
            read_echo(stream, &written, &writer_done)
        }));
    }
    barrier.wait();
    let start = Instant::now();
    let mut received = 0;
    for reader in readers {
        received += reader
            .join()
            .map_err(|_| io::Error::other("a reader thread panicked"))??;
    }
    Ok(received as f64 / start.elapsed().as_secs_f64() / 1e6)
}

fn write_stream(mut stream: TcpStream, bytes: u64, max_run: Duration, written: &AtomicU64) {
    let chunk = vec![0x5a_u8; IO_SIZE];
    let deadline = Instant::now() + max_run;
    let mut left = bytes;
    while left > 0 && Instant::now() < deadline {
        let n = left.min(IO_SIZE as u64) as usize;
        if stream.write_all(&chunk[..n]).is_err() {
            break;
        }
        written.fetch_add(n as u64, Ordering::SeqCst);
        left -= n as u64;
    }
    let _ = stream.shutdown(Shutdown::Write);
}

/// Reads the echo until the end of stream, or until everything written came
/// back (a target that does not pass half-closes on), or until it is stuck.
fn read_echo(
    mut stream: TcpStream,
    written: &AtomicU64,
    writer_done: &AtomicBool,
) -> io::Result<u64> {
    stream.set_read_timeout(Some(READ_POLL))?;
    let mut buffer = vec![0; IO_SIZE];
    let mut received = 0;
    let mut stuck_since: Option<Instant> = None;
    loop {
        if writer_done.load(Ordering::SeqCst) {
            if received >= written.load(Ordering::SeqCst) {
                return Ok(received);
            }
            let since = *stuck_since.get_or_insert_with(Instant::now);
            if since.elapsed() > DRAIN_GRACE {
                return Err(io::Error::other(format!(
                    "echo stuck: {received} of {} bytes came back",
                    written.load(Ordering::SeqCst)
                )));
            }
        }
        match stream.read(&mut buffer) {
            Ok(0) => return Ok(received),
            Ok(n) => received += n as u64,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// What the connection-rate run counted.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RateResult {
    /// Completed connect + 1-byte echo + close per second.
    pub(crate) per_second: f64,
    /// Attempts that failed.
    pub(crate) errors: u64,
}

/// Opens connections to the echo at `addr` as fast as `threads` clients
/// can, each one sending and reading back one byte, for `duration`.
pub(crate) fn connection_rate(addr: SocketAddr, threads: usize, duration: Duration) -> RateResult {
    let barrier = Arc::new(Barrier::new(threads));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                barrier.wait();
                let deadline = Instant::now() + duration;
                let (mut done, mut errors) = (0_u64, 0_u64);
                while Instant::now() < deadline {
                    match one_echo_connection(addr) {
                        Ok(()) => done += 1,
                        Err(_) => errors += 1,
                    }
                }
                (done, errors)
            })
        })
        .collect();
    let (mut done, mut errors) = (0, 0);
    for worker in workers {
        let (d, e) = worker.join().unwrap_or((0, 1));
        done += d;
        errors += e;
    }
    RateResult {
        per_second: done as f64 / duration.as_secs_f64(),
        errors,
    }
}

fn one_echo_connection(addr: SocketAddr) -> io::Result<()> {
    let mut stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(CONNECT_TIMEOUT))?;
    stream.write_all(b"x")?;
    let mut byte = [0; 1];
    stream.read_exact(&mut byte)?;
    Ok(())
}
