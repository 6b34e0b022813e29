//! A counting global allocator for the no-allocation tests: include it with
//! `#[path = "support/counting_alloc.rs"] mod counting_alloc;` and it becomes the test
//! binary's allocator; allocations are counted between [`start`] and [`stop`].

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Starts counting from zero, after proving that the counter counts (a test whose counter
/// sees nothing would prove nothing).
pub fn start() {
    ALLOCATIONS.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    let probe: Vec<u64> = std::hint::black_box(Vec::with_capacity(16));
    COUNTING.store(false, Ordering::SeqCst);
    drop(probe);
    assert_eq!(ALLOCATIONS.swap(0, Ordering::SeqCst), 1, "the counting allocator must count");
    COUNTING.store(true, Ordering::SeqCst);
}

/// Stops counting; returns the allocations since [`start`].
pub fn stop() -> u64 {
    COUNTING.store(false, Ordering::SeqCst);
    ALLOCATIONS.load(Ordering::SeqCst)
}
