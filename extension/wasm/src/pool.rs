//! A size-class pool in front of the wasm module's general allocator (talc), for the small
//! blocks that parsing allocates by the million.
//!
//! swc builds its AST from small boxes (a `Box<Expr>` is 16–80 bytes) and the estimator drops
//! each script's AST before parsing the next, so allocation speed is parse speed: talc's
//! allocate, deallocate and bin search were 11–13% of a whole estimate in wasm. Blocks of up
//! to [`MAX_SMALL`] bytes (alignment at most [`GRAIN`]) are served here instead: one free list
//! per 8-byte size class, refilled by bumping through [`CHUNK`]-sized chunks taken from the
//! general allocator. An allocation is a list pop or a pointer bump; a free is a list push.
//!
//! Freed small blocks stay in their class's list and are never returned to the general
//! allocator. wasm memory never shrinks anyway, and the next page's AST reuses the same blocks,
//! so the module's memory is bounded by the peak of each class, not by their sum over time.
//!
//! Sound only where no two threads can call it at once: the global instance exists only on
//! wasm32 without the `atomics` feature (one thread per module instance), and the tests use
//! their own instances from one thread.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::ptr;

/// Size-class granularity, and the largest alignment the pool serves.
pub const GRAIN: usize = 8;
/// Number of size classes: blocks of 8, 16, ..., `GRAIN * CLASSES` bytes.
const CLASSES: usize = 16;
/// Largest block the pool serves; larger or more aligned requests go to the general allocator.
pub const MAX_SMALL: usize = GRAIN * CLASSES;
/// Bytes taken from the general allocator at a time for new small blocks.
pub const CHUNK: usize = 64 * 1024;

struct State {
    /// Head of each class's free list; a free block's first word points to the next.
    free: [*mut u8; CLASSES],
    /// The unused rest of the current chunk.
    bump: *mut u8,
    end: *mut u8,
}

/// A [`GlobalAlloc`] that serves small blocks from size-class pools and the rest from `A`.
pub struct Pooled<A> {
    inner: A,
    state: UnsafeCell<State>,
}

// SAFETY: a wasm32 module without the atomics feature runs on exactly one thread, so the
// state is never touched concurrently. Elsewhere `Pooled` is not `Sync`.
#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
unsafe impl<A: Sync> Sync for Pooled<A> {}

/// The size class serving `layout`, if the pool serves it.
#[inline(always)]
fn class_of(layout: Layout) -> Option<usize> {
    if layout.size() <= MAX_SMALL && layout.align() <= GRAIN {
        // Size 0 never reaches a GlobalAlloc; it would fall in class 0 anyway.
        Some(layout.size().saturating_sub(1) / GRAIN)
    } else {
        None
    }
}

impl<A> Pooled<A> {
    pub const fn new(inner: A) -> Self {
        Pooled {
            inner,
            state: UnsafeCell::new(State {
                free: [ptr::null_mut(); CLASSES],
                bump: ptr::null_mut(),
                end: ptr::null_mut(),
            }),
        }
    }
}

impl<A: GlobalAlloc> Pooled<A> {
    /// A block of class `class`, from its free list or else from the current chunk.
    ///
    /// # Safety
    /// No other call on this pool may run at the same time.
    #[inline(always)]
    unsafe fn small(&self, class: usize) -> *mut u8 {
        // SAFETY: single-threaded (the caller's contract), and no reference into the state
        // outlives this call.
        let state = unsafe { &mut *self.state.get() };
        let head = state.free[class];
        if !head.is_null() {
            // SAFETY: `head` is a free block of this class; its first word holds the next one.
            state.free[class] = unsafe { head.cast::<*mut u8>().read() };
            return head;
        }
        let bytes = (class + 1) * GRAIN;
        if (state.end as usize) - (state.bump as usize) < bytes {
            // The old chunk's tail (under MAX_SMALL bytes) is left unused.
            // SAFETY: CHUNK is non-zero and GRAIN a power of two.
            let chunk = unsafe {
                self.inner
                    .alloc(Layout::from_size_align_unchecked(CHUNK, GRAIN))
            };
            if chunk.is_null() {
                return chunk;
            }
            state.bump = chunk;
            // SAFETY: the chunk is CHUNK bytes long.
            state.end = unsafe { chunk.add(CHUNK) };
        }
        let block = state.bump;
        // SAFETY: at least `bytes` remain before `end`.
        state.bump = unsafe { block.add(bytes) };
        block
    }

    /// Returns a block of class `class` to its free list.
    ///
    /// # Safety
    /// `block` came from [`Self::small`] for the same class and is no longer used; no other
    /// call on this pool may run at the same time.
    #[inline(always)]
    unsafe fn free_small(&self, block: *mut u8, class: usize) {
        // SAFETY: as in `small`.
        let state = unsafe { &mut *self.state.get() };
        // SAFETY: blocks are at least one word long and GRAIN-aligned.
        unsafe { block.cast::<*mut u8>().write(state.free[class]) };
        state.free[class] = block;
    }
}

// SAFETY: small blocks are distinct GRAIN-aligned ranges of at least the requested size, carved
// from chunks the inner allocator handed out and never returned; a block is reused only after
// it was deallocated with a layout of the same class. Everything else is the inner allocator's.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Pooled<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match class_of(layout) {
            // SAFETY: GlobalAlloc callers do not call concurrently here (see `Sync` above).
            Some(class) => unsafe { self.small(class) },
            // SAFETY: forwarded with the caller's guarantees.
            None => unsafe { self.inner.alloc(layout) },
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match class_of(layout) {
            // SAFETY: `ptr` was allocated with this layout, so by `small` for this class.
            Some(class) => unsafe { self.free_small(ptr, class) },
            // SAFETY: forwarded with the caller's guarantees.
            None => unsafe { self.inner.dealloc(ptr, layout) },
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match class_of(layout) {
            Some(class) => {
                // SAFETY: as in `alloc`; a reused block is dirty, so it is cleared.
                let block = unsafe { self.small(class) };
                if !block.is_null() {
                    unsafe { block.write_bytes(0, layout.size()) };
                }
                block
            }
            // SAFETY: forwarded; the inner allocator may know its fresh memory is zero.
            None => unsafe { self.inner.alloc_zeroed(layout) },
        }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size` with the old alignment is a valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (class_of(layout), class_of(new_layout)) {
            // The block already has room for the new size.
            (Some(old), Some(new)) if old == new => ptr,
            // SAFETY: both layouts are the inner allocator's; forwarded with the caller's
            // guarantees.
            (None, None) => unsafe { self.inner.realloc(ptr, layout, new_size) },
            _ => {
                // SAFETY: a fresh block of the new layout, then the old one's bytes that fit,
                // then the old block freed, as GlobalAlloc's default realloc does.
                unsafe {
                    let block = self.alloc(new_layout);
                    if !block.is_null() {
                        ptr::copy_nonoverlapping(ptr, block, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                    block
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::System;

    /// A deterministic xorshift generator, so a failure replays.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    struct Live {
        ptr: *mut u8,
        layout: Layout,
        fill: u8,
    }

    fn check(block: &Live) {
        for i in 0..block.layout.size() {
            // SAFETY: the block is live and `layout.size()` bytes long.
            let byte = unsafe { block.ptr.add(i).read() };
            assert_eq!(byte, block.fill, "block {:p} was overwritten", block.ptr);
        }
    }

    /// Blocks handed out never overlap, keep their contents until freed, honour their
    /// alignment, and survive growing and shrinking across classes and into the general
    /// allocator: the properties every Rust collection in the module relies on.
    #[test]
    fn blocks_stay_distinct_aligned_and_intact_through_alloc_free_and_realloc() {
        let pool = Pooled::new(System);
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut live: Vec<Live> = Vec::new();
        for step in 0..60_000u32 {
            let fill = (step % 251) as u8 + 1;
            match rng.next() % 4 {
                0 | 1 => {
                    let size = 1 + (rng.next() % 300) as usize;
                    let align = [1, 2, 4, 8, 16][(rng.next() % 5) as usize];
                    let layout = Layout::from_size_align(size, align).unwrap();
                    // SAFETY: non-zero size.
                    let ptr = unsafe {
                        if step % 7 == 0 {
                            pool.alloc_zeroed(layout)
                        } else {
                            pool.alloc(layout)
                        }
                    };
                    assert!(!ptr.is_null());
                    assert_eq!(ptr as usize % align, 0, "misaligned for {layout:?}");
                    if step % 7 == 0 {
                        // SAFETY: freshly allocated, `size` bytes.
                        assert!((0..size).all(|i| unsafe { ptr.add(i).read() } == 0));
                    }
                    // SAFETY: as above.
                    unsafe { ptr.write_bytes(fill, size) };
                    live.push(Live { ptr, layout, fill });
                }
                2 if !live.is_empty() => {
                    let block = live.swap_remove((rng.next() % live.len() as u64) as usize);
                    check(&block);
                    // SAFETY: allocated by this pool with this layout.
                    unsafe { pool.dealloc(block.ptr, block.layout) };
                }
                _ if !live.is_empty() => {
                    let i = (rng.next() % live.len() as u64) as usize;
                    check(&live[i]);
                    let new_size = 1 + (rng.next() % 300) as usize;
                    let old = live[i].layout;
                    // SAFETY: allocated by this pool with `old`; `new_size` is non-zero.
                    let ptr = unsafe { pool.realloc(live[i].ptr, old, new_size) };
                    assert!(!ptr.is_null());
                    assert_eq!(ptr as usize % old.align(), 0);
                    let kept = old.size().min(new_size);
                    // SAFETY: the block now holds `new_size` bytes.
                    unsafe {
                        assert!((0..kept).all(|j| ptr.add(j).read() == live[i].fill));
                        ptr.write_bytes(fill, new_size);
                    }
                    live[i] = Live {
                        ptr,
                        layout: Layout::from_size_align(new_size, old.align()).unwrap(),
                        fill,
                    };
                }
                _ => {}
            }
        }
        let mut ranges: Vec<(usize, usize)> = live
            .iter()
            .map(|b| (b.ptr as usize, b.ptr as usize + b.layout.size()))
            .collect();
        ranges.sort_unstable();
        for pair in ranges.windows(2) {
            assert!(pair[0].1 <= pair[1].0, "blocks overlap: {pair:?}");
        }
        for block in live {
            check(&block);
            // SAFETY: allocated by this pool with this layout.
            unsafe { pool.dealloc(block.ptr, block.layout) };
        }
        // The chunks themselves are leaked to System here, as they are for good in wasm.
    }

    /// Freed small blocks are reused by the next allocation of their class, so repeated
    /// estimates do not grow the module's memory.
    #[test]
    fn a_freed_block_is_reused_by_its_class() {
        let pool = Pooled::new(System);
        let layout = Layout::from_size_align(40, 8).unwrap();
        // SAFETY: non-zero sizes; every block is freed with the layout it was allocated with.
        unsafe {
            let a = pool.alloc(layout);
            pool.dealloc(a, layout);
            let b = pool.alloc(Layout::from_size_align(33, 4).unwrap());
            assert_eq!(a, b, "a block of the same class is reused");
            let c = pool.alloc(Layout::from_size_align(16, 8).unwrap());
            assert_ne!(b, c);
        }
    }
}
