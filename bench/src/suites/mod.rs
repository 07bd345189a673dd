//! The bench suites, one file each.

pub mod framing;
