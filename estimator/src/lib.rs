//! Resource Estimator (being written).
