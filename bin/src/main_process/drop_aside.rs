//! Large values that main no longer needs, freed on a thread of their own: at 10 000
//! clusters, freeing a parsed configuration or a list of requests takes milliseconds
//! that a start or a reload would otherwise wait for, while the machine's other cores
//! are idle.

use log::debug;

/// Frees `value` on a short-lived thread (here, when no thread can be started), then
/// hands the freed memory back to the system: the request that gave it away may have
/// done so already, before this thread was done.
pub(crate) fn drop_aside<T: Send + 'static>(value: T) {
    let spawned = std::thread::Builder::new()
        .name("drop-aside".to_owned())
        .spawn(move || {
            drop(value);
            sluice_lib::sys::release_free_memory();
        });
    if let Err(error) = spawned {
        debug!("freed in place: cannot start a thread ({error})");
    }
}
