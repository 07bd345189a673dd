//! A CPU and memory hog for the end-to-end tests: a separate process beside the browser, so
//! the native host sees it as "everything else", exactly as it would see a compiler or a video
//! export.
//!
//! `foresight-hog --cpu-threads N --memory-mib M [--nice K]` spins N threads, allocates M MiB
//! and writes every page of it (so it is resident, not merely reserved), prints `ready` on
//! stdout, and runs until its stdin closes: a test that dies cannot leave it behind.
//! `--nice` lowers its priority so the browser under test still gets the CPU it needs while
//! the machine looks saturated to anything that measures it.

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Parser;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 0)]
    cpu_threads: usize,
    #[arg(long, default_value_t = 0)]
    memory_mib: usize,
    #[arg(long, default_value_t = 0)]
    nice: i32,
}

fn main() {
    let args = Args::parse();
    // Memory first, at full priority: faulting in gigabytes while niced behind our own
    // spinners on a busy machine could take minutes.
    let mut memory = vec![0u8; args.memory_mib * 1024 * 1024];
    for (i, page) in memory.chunks_mut(4096).enumerate() {
        page[0] = (i % 251) as u8 + 1;
    }
    std::hint::black_box(&memory);
    if args.nice != 0 {
        // Before any spinner starts: new threads inherit the calling thread's nice value.
        // SAFETY: setpriority on this thread; no memory is involved.
        unsafe {
            libc::setpriority(libc::PRIO_PROCESS, 0, args.nice);
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let spinners: Vec<_> = (0..args.cpu_threads)
        .map(|i| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut x = i as u64 | 1;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..100_000 {
                        x = x
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                    }
                    std::hint::black_box(x);
                }
            })
        })
        .collect();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "ready");
    let _ = out.flush();
    // Until the test closes our stdin (or dies, which closes it too).
    let mut sink = [0u8; 64];
    while matches!(std::io::stdin().read(&mut sink), Ok(n) if n > 0) {}
    stop.store(true, Ordering::Relaxed);
    for s in spinners {
        let _ = s.join();
    }
    std::hint::black_box(memory);
}
