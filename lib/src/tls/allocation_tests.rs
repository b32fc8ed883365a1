//! An HTTPS keep-alive connection allocates nothing per request once warm: records are
//! decrypted in place in the layer's incoming buffer and encrypted in place into its
//! outgoing buffer, and both are lent from the thread's spares. A counting global
//! allocator checks it over many requests, counting only inside the server's reads and
//! writes (the test's rustls client allocates as it likes).
//!
//! The TLS layer is private to the crate, so this test lives beside it; the allocator
//! counts only on a thread that asked, only while it asks, so the other unit tests of
//! this binary are not disturbed (the backends' selection test counts with it too).

use std::io::{Read, Write};

use super::tests::connected;

// The crate denies `unsafe` but in its OS module; a counting allocator needs it too.
#[allow(unsafe_code)]
pub(crate) mod sys {
    //! The only `unsafe` of these tests: a global allocator that forwards to the
    //! system allocator and counts allocations. Its contract is the one of
    //! `GlobalAlloc`, met by delegating every call unchanged.

    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        /// Whether this thread counts now, and what it counted.
        static COUNTING: Cell<bool> = const { Cell::new(false) };
        static COUNTED: Cell<usize> = const { Cell::new(0) };
    }

    fn count() {
        if COUNTING.try_with(Cell::get).unwrap_or(false) {
            let _ = COUNTED.try_with(|counted| counted.set(counted.get() + 1));
        }
    }

    /// The allocations `f` made on this thread.
    pub(crate) fn allocations_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
        let before = COUNTED.with(Cell::get);
        COUNTING.with(|counting| counting.set(true));
        let result = f();
        COUNTING.with(|counting| counting.set(false));
        (result, COUNTED.with(Cell::get) - before)
    }

    /// Counts allocations and reallocations, then lets `System` do them.
    pub(super) struct Counting;

    // SAFETY: every method forwards its arguments unchanged to `System`, which
    // upholds the `GlobalAlloc` contract; counting touches no memory it hands out
    // (const-initialised thread locals of `Copy` types allocate nothing).
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            count();
            // SAFETY: the caller's guarantees for `alloc` are passed on as they are.
            unsafe { System.alloc(layout) }
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            count();
            // SAFETY: as for `alloc`.
            unsafe { System.alloc_zeroed(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: `ptr` was allocated by `System` with `layout` (every allocation is).
            unsafe { System.dealloc(ptr, layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            count();
            // SAFETY: as for `dealloc`, and the caller's guarantees on `new_size` hold.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }
}

#[global_allocator]
static ALLOCATOR: sys::Counting = sys::Counting;

const REQUEST: &[u8] =
    b"GET /x HTTP/1.1\r\nHost: a.test\r\nUser-Agent: t\r\nCookie: SLUICEID=b1\r\n\r\n";
const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: b\r\n\r\nhello";

#[test]
fn https_keep_alive_requests_allocate_nothing_once_warm() {
    let (mut server, mut client) = connected();
    let mut space = vec![0u8; 16 * 1024];
    let mut answer = [0u8; RESPONSE.len()];
    let mut counted = 0;
    for round in 0..1010 {
        client.write_all(REQUEST).expect("request");
        client.flush().expect("flush");
        let mut received = 0;
        while received < REQUEST.len() {
            server.assume_readable();
            let (read, made) = sys::allocations_of(|| server.read(&mut space[received..]));
            match read.expect("read") {
                Some(0) => panic!("end of stream in the middle of a request"),
                Some(n) => received += n,
                None => std::thread::yield_now(),
            }
            if round >= 10 {
                counted += made;
            }
        }
        assert_eq!(&space[..received], REQUEST);
        let (written, made) = sys::allocations_of(|| server.write(RESPONSE));
        assert_eq!(written.expect("write"), Some(RESPONSE.len()));
        assert!(!server.holds_output(), "a small answer is sent at once");
        if round >= 10 {
            counted += made;
        }
        client.read_exact(&mut answer).expect("answer");
        assert_eq!(&answer, RESPONSE);
    }
    assert_eq!(
        counted, 0,
        "allocations over 1000 HTTPS keep-alive requests"
    );
}
