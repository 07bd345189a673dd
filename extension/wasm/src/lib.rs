//! wasm glue (being written).
