//! Script texts from JS strings into Rust `String`s, encoded by the engine's `TextEncoder`
//! straight into wasm memory.
//!
//! wasm-bindgen's own string passing copies the ASCII prefix of a string in a JS loop, one
//! `charCodeAt` per byte, and only hands the rest to `TextEncoder.encodeInto`: 2.6 ms for the
//! 1.9 MB bench page in Node 20, against 1.0 ms when `encodeInto` does all of it. Script
//! texts are most of the bytes a page estimate receives, so they come through here.

use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// A JS string, for its UTF-16 length and slices.
    #[wasm_bindgen(js_name = String)]
    type JsText;
    #[wasm_bindgen(method, getter)]
    fn length(this: &JsText) -> u32;
    #[wasm_bindgen(method)]
    fn slice(this: &JsText, start: u32) -> JsText;

    type TextEncoder;
    #[wasm_bindgen(constructor)]
    fn new() -> TextEncoder;
    #[wasm_bindgen(method, js_name = encodeInto)]
    fn encode_into(this: &TextEncoder, text: &JsText, into: &Uint8Array) -> EncodeResult;

    type EncodeResult;
    #[wasm_bindgen(method, getter)]
    fn read(this: &EncodeResult) -> u32;
    #[wasm_bindgen(method, getter)]
    fn written(this: &EncodeResult) -> u32;

    type Uint8Array;
    #[wasm_bindgen(constructor)]
    fn new_view(buffer: &JsValue, offset: u32, length: u32) -> Uint8Array;

    type Memory;
    #[wasm_bindgen(method, getter)]
    fn buffer(this: &Memory) -> JsValue;
}

thread_local! {
    static ENCODER: TextEncoder = TextEncoder::new();
}

/// The UTF-8 text of `value` if it is a string, else `None`.
pub fn string_of(value: &JsValue) -> Option<String> {
    if !value.is_string() {
        return None;
    }
    let text: &JsText = value.unchecked_ref();
    let units = text.length() as usize;
    // Every UTF-16 unit is at most 3 UTF-8 bytes, and ASCII (most code) exactly 1: reserve
    // for ASCII and grow only if the encoder stops short.
    let mut bytes: Vec<u8> = Vec::with_capacity(units);
    let (read, written) = ENCODER.with(|encoder| encode(encoder, text, &mut bytes));
    let mut read = read as usize;
    // SAFETY: `encodeInto` wrote `written` bytes into the spare capacity.
    unsafe { bytes.set_len(written as usize) };
    if read < units {
        let rest = text.slice(read as u32);
        bytes.reserve((units - read) * 3);
        let (more, written) = ENCODER.with(|encoder| encode(encoder, &rest, &mut bytes));
        read += more as usize;
        // SAFETY: as above; the second write went after the first.
        unsafe { bytes.set_len(bytes.len() + written as usize) };
    }
    debug_assert_eq!(read, units);
    // SAFETY: `TextEncoder` produces UTF-8 by specification (lone surrogates become U+FFFD),
    // and both writes ended on character boundaries. This is the guarantee wasm-bindgen's own
    // string passing relies on; the encoder is the extension's own global, out of reach of
    // page code.
    Some(unsafe { String::from_utf8_unchecked(bytes) })
}

/// Encodes `text` into the spare capacity of `bytes`; returns (UTF-16 units read, bytes
/// written).
fn encode(encoder: &TextEncoder, text: &JsText, bytes: &mut Vec<u8>) -> (u32, u32) {
    let spare = bytes.spare_capacity_mut();
    // The view is made after the allocation above: growing wasm memory detaches old views.
    let memory: Memory = wasm_bindgen::memory().unchecked_into();
    let view = Uint8Array::new_view(
        &memory.buffer(),
        spare.as_mut_ptr() as usize as u32,
        spare.len() as u32,
    );
    let result = encoder.encode_into(text, &view);
    (result.read(), result.written())
}
