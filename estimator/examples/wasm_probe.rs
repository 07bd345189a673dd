//! A raw wasm export of [`estimate`] for measuring the estimator inside a real wasm engine
//! (stack headroom, speed) without the extension's wasm-bindgen glue.
//!
//! ```text
//! cargo build -p foresight-estimator --example wasm_probe --target wasm32-unknown-unknown --profile wasm-release
//! node estimator/examples/wasm_probe.mjs
//! ```
//!
//! The JS side copies a script into memory from [`probe_alloc`] and calls [`probe_estimate`],
//! which estimates a page made of that one classic script and returns the number of warnings.

use foresight_estimator::ir::{BodyKind, Collected};
use foresight_estimator::{Calibration, collect, estimate, parse};
use foresight_shared::protocol::demand::{PageSources, ScriptKind, ScriptSource};

/// Allocates `len` bytes for the caller to fill (leaked on purpose: the probe is one-shot).
#[unsafe(no_mangle)]
pub extern "C" fn probe_alloc(len: usize) -> *mut u8 {
    let mut v = vec![0u8; len];
    let p = v.as_mut_ptr();
    std::mem::forget(v);
    p
}

/// Estimates a page of one classic script held in `ptr..ptr+len` (UTF-8); returns the
/// number of warnings, or `u32::MAX` for invalid UTF-8.
///
/// # Safety
/// `ptr` must come from [`probe_alloc`] with at least `len` bytes written.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn probe_estimate(ptr: *const u8, len: usize) -> u32 {
    // SAFETY: the caller guarantees `ptr..ptr+len` is an initialised allocation.
    let bytes = unsafe { std::slice::from_raw_parts(ptr, len) };
    let Ok(src) = std::str::from_utf8(bytes) else {
        return u32::MAX;
    };
    let sources = PageSources {
        url: "http://127.0.0.1/".into(),
        scripts: vec![ScriptSource {
            url: None,
            kind: ScriptKind::Classic,
            source: Some(src.to_string()),
            bytes: len as u64,
        }],
        ..Default::default()
    };
    let d = estimate(&sources, &Calibration::default());
    u32::try_from(d.warnings.len()).unwrap_or(u32::MAX)
}

/// Parses and collects the script at `ptr..ptr+len` WITHOUT the nesting prescan, to measure
/// how deep swc and the collect walk can go before the wasm stack runs out. Returns 0 when
/// parsed, 1 when swc rejected it, `u32::MAX` for invalid UTF-8.
///
/// # Safety
/// As for [`probe_estimate`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn probe_unguarded(ptr: *const u8, len: usize) -> u32 {
    // SAFETY: the caller guarantees `ptr..ptr+len` is an initialised allocation.
    let bytes = unsafe { std::slice::from_raw_parts(ptr, len) };
    let Ok(src) = std::str::from_utf8(bytes) else {
        return u32::MAX;
    };
    let program = match parse::parse(src, parse::Goal::Script) {
        parse::Parsed::Ok(p) | parse::Parsed::Recovered(p, _) => p,
        parse::Parsed::Failed(_) => return 1,
    };
    let mut c = Collected::default();
    let realm = c.new_scope(None);
    collect::collect(
        &mut c,
        &program,
        collect::Target {
            script: Some(0),
            src,
            realm,
            kind: BodyKind::Script,
            name: None,
            label: "probe",
            worker: false,
        },
    );
    drop(program);
    0
}
