//! The bench suites, one file each.

pub mod broker;
pub mod estimator;
pub mod framing;
pub mod offload;
pub mod planner;
pub mod remote_worker;
pub mod sampler;
