//! The bench suites, one file each.

pub mod framing;
pub mod planner;
pub mod sampler;
