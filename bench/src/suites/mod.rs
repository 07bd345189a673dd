//! The bench suites, one file each.

pub mod framing;
pub mod remote_worker;
