//! `foresight-estimate`: Foresight's Resource Estimator on the command line, for a local HTML
//! file or a page served on loopback. The estimator itself stays a pure library
//! (`foresight-estimator`); this crate is its I/O edge: reading files, a minimal loopback HTTP
//! client, a small HTML scanner standing in for the extension's content script, the Chromium
//! calibration run, and the report. `main.rs` only parses arguments and prints.
//!
//! The library half is also what other tools use to load a page the way the CLI does (the
//! accuracy corpus in `cargo xtask accuracy`).

pub mod calibrate;
pub mod html;
pub mod http;
pub mod page;
pub mod report;
