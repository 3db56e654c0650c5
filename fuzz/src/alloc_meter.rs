//! Counts the heap bytes allocated and not yet freed by the current thread,
//! so that a check can measure what a value holds on to. The fuzz targets and
//! `tests/fuzz_corpus.rs` install [`Meter`] as their global allocator.
#![allow(unsafe_code)] // a GlobalAlloc is unsafe by definition; it only forwards to System

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

thread_local! {
    // `const` and `Cell<isize>`: no lazy init, no destructor, so no allocation
    // from inside the allocator.
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

static INSTALLED: AtomicBool = AtomicBool::new(false);

/// The system allocator, counting per thread.
#[derive(Debug)]
pub struct Meter;

fn count(delta: isize) {
    // `try_with`: during thread teardown the counter may be gone already.
    let _ = LIVE.try_with(|live| live.set(live.get() + delta));
    INSTALLED.store(true, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to `System`; counting touches no memory
// the caller owns.
unsafe impl GlobalAlloc for Meter {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            count(layout.size() as isize);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            count(layout.size() as isize);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        new
    }
}

/// Heap bytes this thread holds now; only differences mean anything.
///
/// # Panics
///
/// When [`Meter`] is not the global allocator, rather than measure nothing.
pub fn live_bytes() -> isize {
    // The first counted allocation sets INSTALLED (black_box: keep it from being elided).
    drop(std::hint::black_box(Box::new(0u8)));
    assert!(
        INSTALLED.load(Ordering::Relaxed),
        "install alloc_meter::Meter as the #[global_allocator]"
    );
    LIVE.with(Cell::get)
}
