//! A keep-alive HTTP session allocates nothing per request once warm: buffers
//! come from the pool, heads are parsed into the worker's header array, actions
//! and records go to the worker's reused output. A counting global allocator
//! checks it over many requests.
//!
//! This file is its own test binary, with this one test, so that nothing else
//! allocates while it counts.

use sluice_lib::http::session::SessionAction;

#[path = "support/session_driver.rs"]
#[allow(dead_code)]
mod session_driver;

mod sys {
    //! The only `unsafe` of this test: a global allocator that forwards to the
    //! system allocator and counts allocations. Its contract is the one of
    //! `GlobalAlloc`, met by delegating every call unchanged.

    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

    thread_local! {
        /// Only the test's own thread counts: the test harness's threads allocate
        /// whenever they like.
        static COUNTING: Cell<bool> = const { Cell::new(false) };
    }

    fn count() {
        if COUNTING.try_with(Cell::get).unwrap_or(false) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Starts counting the allocations of the calling thread.
    pub(crate) fn count_this_thread() {
        COUNTING.with(|counting| counting.set(true));
    }

    /// Counts allocations and reallocations, then lets `System` do them.
    pub(crate) struct Counting;

    // SAFETY: every method forwards its arguments unchanged to `System`, which
    // upholds the `GlobalAlloc` contract; counting touches no memory it hands out.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            count();
            // SAFETY: the caller's guarantees for `alloc` are passed on as they are.
            unsafe { System.alloc(layout) }
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

    /// Allocations counted so far (on threads that asked to be counted).
    pub(crate) fn allocations() -> usize {
        ALLOCATIONS.load(Ordering::Relaxed)
    }
}

#[global_allocator]
static ALLOCATOR: sys::Counting = sys::Counting;

#[test]
fn keep_alive_requests_allocate_nothing_once_warm() {
    let (mut worker, mut session) = session_driver::Worker::with_session();
    let mut actions: Vec<SessionAction> = Vec::with_capacity(16);
    for _ in 0..10 {
        worker.exchange(&mut session, &mut actions);
        actions.clear();
    }
    sys::count_this_thread();
    let before = sys::allocations();
    for _ in 0..1000 {
        worker.exchange(&mut session, &mut actions);
        actions.clear();
    }
    let made = sys::allocations() - before;
    assert_eq!(made, 0, "allocations over 1000 keep-alive requests");
}
