//! Broker library (being written).
