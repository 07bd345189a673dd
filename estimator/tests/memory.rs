//! Memory across estimates, as the extension runs them: one long-lived instance estimating
//! page after page. Whatever one estimate allocates must be freed by the time the next has run
//! (swc's thread-wide atom store is released once per page), or the extension's wasm memory
//! (which never shrinks) grows with every page the user visits.
//!
//! Live bytes are counted by this test binary's own allocator, across all its threads: keep
//! this file to one test, or tests running beside it would count too.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

mod common;

use common::{inline, page};
use foresight_estimator::{Calibration, estimate};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// A page of 8,000 literals (numbers and strings, long enough not to be stored inline) that
/// no other page repeats.
fn page_number(k: usize) -> String {
    let items: Vec<String> = (0..4_000)
        .flat_map(|i| [format!("{k}.{i}5"), format!("\"text {k} {i}\"")])
        .collect();
    format!(
        "var a = [{}]; function f(x) {{ return a.length + x; }} f(1);",
        items.join(",")
    )
}

/// swc interns every literal's raw text in a thread-wide store (hstr's); each estimate must
/// leave it as it found it. Before the estimator let go of them, 20 such pages kept 6.6 MB.
#[test]
fn estimates_of_different_pages_do_not_accumulate_memory() {
    let calibration = Calibration::default();
    let run = |k: usize| {
        let sources = page(vec![inline(&page_number(k))]);
        let demand = estimate(&sources, &calibration);
        assert!(!demand.paths.is_empty());
    };
    // The first estimates initialise what lives for the process (lazily built tables, a
    // store's table grown to the size of these pages, whose literals are all as long).
    for k in 10..14 {
        run(k);
    }
    let before = LIVE.load(Ordering::Relaxed);
    for k in 14..34 {
        run(k);
    }
    let grown = LIVE.load(Ordering::Relaxed) - before;
    assert!(
        grown < 64 * 1024,
        "20 estimates of distinct pages left {grown} bytes behind"
    );
}
