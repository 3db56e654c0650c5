//! Giving freed heap back to the operating system after searches.
//!
//! A search with large engine answers allocates and frees tens of MB. glibc's malloc
//! keeps freed memory in its per-thread arenas for reuse and returns to the system only
//! what lies at the top of a heap, so with several worker threads the process's RSS
//! climbed run after run although nothing stayed allocated (`bench/soak.py`; a
//! `malloc_trim(0)` brought it back down). So each ended search asks for a trim, done
//! on a thread of its own at most once a second, a second after the last request, so a
//! burst of searches costs one trim.

use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::OnceLock;
use std::time::Duration;

/// Requests coalesce over this long before one trim.
const COALESCE: Duration = Duration::from_secs(1);

/// Asks for the freed heap to be returned to the system soon. Cheap: it never waits.
pub fn release_soon() {
    static TRIMMER: OnceLock<Option<SyncSender<()>>> = OnceLock::new();
    let trimmer = TRIMMER.get_or_init(|| {
        if !TRIM_SUPPORTED {
            return None;
        }
        let (tx, rx) = sync_channel::<()>(1);
        std::thread::Builder::new()
            .name("deepsearch-trim".into())
            .spawn(move || {
                while rx.recv().is_ok() {
                    std::thread::sleep(COALESCE);
                    // Requests that came during the wait are served by this trim.
                    while rx.try_recv().is_ok() {}
                    trim();
                }
            })
            .ok()
            .map(|_| tx)
    });
    if let Some(tx) = trimmer {
        // Full: a trim is already due.
        let _ = tx.try_send(());
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_SUPPORTED: bool = true;
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
const TRIM_SUPPORTED: bool = false;

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn trim() {
    // SAFETY: malloc_trim takes no pointer and only walks glibc's own arenas under
    // their locks; it is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
