//! The bench suites, one file each.

pub mod estimator;
pub mod framing;
